/**
 * Turns per-window speech probabilities into utterances, with hysteresis (speech from `threshold`,
 * non-speech below `threshold - 0.15`, as Silero's own iterator does): speech starts once
 * `minSpeechWindows` windows scored as speech since the first of them, with no run of more than
 * `onsetGapWindows` non-speech windows between (the pauses inside a word or between syllables),
 * and ends after `silenceWindows` windows from the first non-speech window with no speech window
 * since.
 */

/** Gap between the speech threshold and the non-speech one. */
export const VAD_HYSTERESIS = 0.15;

/** Options for {@link SpeechSegmenter}. */
export interface SpeechSegmenterOptions {
  /** Probability at or above which a window is speech. */
  threshold: number;
  /** Speech windows needed to start an utterance (>= 1). */
  minSpeechWindows: number;
  /** Windows of non-speech that end an utterance (>= 1). */
  silenceWindows: number;
  /** Longest run of non-speech windows an onset survives (default 0). */
  onsetGapWindows?: number;
}

/** What one window changed: nothing, an utterance started at window `at`, or one ended at window `at`. */
export type SegmenterChange = { kind: 'none' } | { kind: 'start'; at: number } | { kind: 'end'; at: number };

const NONE: SegmenterChange = { kind: 'none' };

/** The utterance state of one stream of windows, fed in order. */
export class SpeechSegmenter {
  readonly #threshold: number;
  readonly #negative: number;
  readonly #minSpeech: number;
  readonly #silence: number;
  readonly #onsetGap: number;
  #speaking = false;
  /** Non-speech windows in a row since the candidate onset's last speech window. */
  #gap = 0;
  /** First window of the candidate onset (silence) or of the current non-speech run (speech); -1: none. */
  #mark = -1;
  #speechWindows = 0;

  constructor(o: SpeechSegmenterOptions) {
    this.#threshold = o.threshold;
    this.#negative = Math.max(0, o.threshold - VAD_HYSTERESIS);
    this.#minSpeech = Math.max(1, Math.ceil(o.minSpeechWindows));
    this.#silence = Math.max(1, Math.ceil(o.silenceWindows));
    this.#onsetGap = Math.max(0, Math.floor(o.onsetGapWindows ?? 0));
  }

  /** Inside an utterance. */
  get speaking(): boolean {
    return this.#speaking;
  }

  /** Account window `index` (consecutive from 0) scored `probability`. */
  feed(index: number, probability: number): SegmenterChange {
    const speech = probability >= this.#threshold;
    const nonSpeech = probability < this.#negative;
    if (!this.#speaking) {
      if (speech) {
        if (this.#mark < 0) this.#mark = index;
        this.#gap = 0;
        if (++this.#speechWindows >= this.#minSpeech) {
          const at = this.#mark;
          this.#speaking = true;
          this.#mark = -1;
          return { kind: 'start', at };
        }
      } else if (nonSpeech && this.#mark >= 0 && ++this.#gap > this.#onsetGap) {
        this.#mark = -1;
        this.#speechWindows = 0;
        this.#gap = 0;
      }
      return NONE;
    }
    if (speech) this.#mark = -1;
    else if (nonSpeech && this.#mark < 0) this.#mark = index;
    if (this.#mark >= 0 && index + 1 - this.#mark >= this.#silence) {
      const at = this.#mark;
      this.#speaking = false;
      this.#mark = -1;
      this.#speechWindows = 0;
      return { kind: 'end', at };
    }
    return NONE;
  }
}

/**
 * Energy voice activity detection with utterance capture, for the echo backend. It works on the
 * received-audio timeline (bytes pushed), never on wall-clock time, so audio appended faster or
 * slower than real time is cut the same way. Input stays in its wire format (PCM16 or G.711 codes)
 * and is kept as received, so an echo in the same format is bit-exact.
 *
 * Bounded: the pre-roll holds at most the onset window plus padding, an utterance at most
 * `maxUtteranceMs`; audio past the cap is ignored (and counted) until the caller pauses.
 */
import type { AiAudioFormat } from '../audioFormat';
import { aiAudioFormatInfo } from '../audioFormat';
import { dbfsToMeanSquare, meanSquare } from './codec';

/** Analysis frame length, ms. */
export const VAD_FRAME_MS = 10;

/** Settings of the echo VAD (durations in ms). */
export interface UtteranceDetectorOptions {
  /** Frame energy (RMS) at or above which a frame counts as speech, dBFS (default -40). */
  thresholdDbfs: number;
  /** Consecutive speech needed before an utterance starts, ms; rejects clicks (default 100). */
  minSpeechMs: number;
  /** Silence that ends an utterance, ms (default 600). */
  silenceMs: number;
  /** Longest utterance kept, ms; speech beyond it is cut off there (default 10000). */
  maxUtteranceMs: number;
  /** Audio kept before the first and after the last speech frame, ms (default 40). */
  paddingMs: number;
}

/** Defaults of {@link UtteranceDetectorOptions}. */
export const DEFAULT_UTTERANCE_DETECTOR_OPTIONS: Readonly<UtteranceDetectorOptions> = Object.freeze({
  thresholdDbfs: -40,
  minSpeechMs: 100,
  silenceMs: 600,
  maxUtteranceMs: 10_000,
  paddingMs: 40,
});

/** Upper bound of maxUtteranceMs (memory per call). */
export const MAX_UTTERANCE_MS_LIMIT = 60_000;

/** What a push found, in received-timeline milliseconds. */
export type UtteranceEvent =
  | { type: 'start'; audioStartMs: number }
  | {
      type: 'end';
      audioStartMs: number;
      audioEndMs: number;
      /** The utterance in the input format, padding included. */
      audio: Buffer;
      /** True when it was cut at maxUtteranceMs rather than ended by silence. */
      capped: boolean;
    };

type Phase = 'idle' | 'speech' | 'capped';

/** Streaming utterance detector over one input format. */
export class UtteranceDetector {
  readonly #opts: UtteranceDetectorOptions;
  readonly #format: AiAudioFormat;
  readonly #frameBytes: number;
  readonly #threshold: number;
  readonly #minSpeechFrames: number;
  readonly #silenceFrames: number;
  readonly #maxFrames: number;
  readonly #padFrames: number;
  readonly #prerollCap: number;

  readonly #partial: Buffer;
  #partialFill = 0;
  #frameIndex = 0;
  #phase: Phase = 'idle';
  #preroll: Buffer[] = [];
  #run = 0;
  #utterance: Buffer[] = [];
  #startFrame = 0;
  #lastVoiced = 0;
  #quiet = 0;
  #ignoredFrames = 0;

  /**
   * @throws RangeError when an option is out of range.
   */
  constructor(format: AiAudioFormat, options: Partial<UtteranceDetectorOptions> = {}) {
    const o: UtteranceDetectorOptions = { ...DEFAULT_UTTERANCE_DETECTOR_OPTIONS };
    for (const [k, v] of Object.entries(options) as [keyof UtteranceDetectorOptions, number | undefined][]) if (v !== undefined) o[k] = v;
    checkRange('thresholdDbfs', o.thresholdDbfs, -96, 0);
    checkRange('minSpeechMs', o.minSpeechMs, VAD_FRAME_MS, 2000);
    checkRange('silenceMs', o.silenceMs, VAD_FRAME_MS, 10_000);
    checkRange('maxUtteranceMs', o.maxUtteranceMs, 200, MAX_UTTERANCE_MS_LIMIT);
    checkRange('paddingMs', o.paddingMs, 0, 1000);
    this.#opts = o;
    this.#format = format;
    this.#frameBytes = aiAudioFormatInfo(format).bytesPerMs * VAD_FRAME_MS;
    this.#threshold = dbfsToMeanSquare(o.thresholdDbfs);
    this.#minSpeechFrames = Math.ceil(o.minSpeechMs / VAD_FRAME_MS);
    this.#silenceFrames = Math.ceil(o.silenceMs / VAD_FRAME_MS);
    this.#maxFrames = Math.floor(o.maxUtteranceMs / VAD_FRAME_MS);
    this.#padFrames = Math.ceil(o.paddingMs / VAD_FRAME_MS);
    this.#prerollCap = this.#minSpeechFrames + this.#padFrames;
    this.#partial = Buffer.alloc(this.#frameBytes);
  }

  /** The settings in force. */
  get options(): Readonly<UtteranceDetectorOptions> {
    return this.#opts;
  }

  /** Milliseconds of audio analysed so far (complete frames). */
  get positionMs(): number {
    return this.#frameIndex * VAD_FRAME_MS;
  }

  /** True between a `start` and its `end`. */
  get speaking(): boolean {
    return this.#phase === 'speech';
  }

  /** Milliseconds of speech ignored because an utterance hit maxUtteranceMs and the caller went on talking. */
  get ignoredMs(): number {
    return this.#ignoredFrames * VAD_FRAME_MS;
  }

  /** Analyse `bytes` (input format) and append any start/end found to `out`; returns `out`. */
  push(bytes: Uint8Array, out: UtteranceEvent[] = []): UtteranceEvent[] {
    let i = 0;
    while (i < bytes.length) {
      const n = Math.min(this.#frameBytes - this.#partialFill, bytes.length - i);
      this.#partial.set(bytes.subarray(i, i + n), this.#partialFill);
      this.#partialFill += n;
      i += n;
      if (this.#partialFill === this.#frameBytes) {
        this.#partialFill = 0;
        this.#frame(Buffer.from(this.#partial), out);
      }
    }
    return out;
  }

  /** Forget any utterance in progress and the pre-roll (the timeline keeps counting). */
  reset(): void {
    this.#phase = 'idle';
    this.#preroll = [];
    this.#utterance = [];
    this.#run = 0;
    this.#quiet = 0;
  }

  #frame(frame: Buffer, out: UtteranceEvent[]): void {
    const f = this.#frameIndex++;
    const voiced = meanSquare(frame, this.#format) >= this.#threshold;
    switch (this.#phase) {
      case 'idle': {
        this.#preroll.push(frame);
        if (this.#preroll.length > this.#prerollCap) this.#preroll.shift();
        this.#run = voiced ? this.#run + 1 : 0;
        if (this.#run < this.#minSpeechFrames) return;
        const keep = Math.min(this.#preroll.length, this.#run + this.#padFrames);
        this.#utterance = this.#preroll.slice(this.#preroll.length - keep);
        this.#preroll = [];
        this.#startFrame = f + 1 - keep;
        this.#lastVoiced = f;
        this.#phase = 'speech';
        out.push({ type: 'start', audioStartMs: this.#startFrame * VAD_FRAME_MS });
        if (this.#utterance.length >= this.#maxFrames) this.#end(out, true);
        return;
      }
      case 'speech':
        this.#utterance.push(frame);
        if (voiced) this.#lastVoiced = f;
        if (f - this.#lastVoiced >= this.#silenceFrames) this.#end(out, false);
        else if (this.#utterance.length >= this.#maxFrames) this.#end(out, true);
        return;
      case 'capped':
        this.#ignoredFrames += 1;
        this.#quiet = voiced ? 0 : this.#quiet + 1;
        if (this.#quiet >= this.#silenceFrames) this.reset();
        return;
    }
  }

  #end(out: UtteranceEvent[], capped: boolean): void {
    const keep = Math.min(this.#utterance.length, this.#lastVoiced - this.#startFrame + 1 + this.#padFrames);
    const audio = Buffer.concat(this.#utterance.slice(0, keep));
    out.push({
      type: 'end',
      audioStartMs: this.#startFrame * VAD_FRAME_MS,
      audioEndMs: (this.#startFrame + keep) * VAD_FRAME_MS,
      audio,
      capped,
    });
    this.reset();
    if (capped) this.#phase = 'capped';
  }
}

function checkRange(name: string, v: number, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new RangeError(`echo VAD option out of range [option:${name}, value:${String(v)}, min:${min}, max:${max}]`);
  }
}

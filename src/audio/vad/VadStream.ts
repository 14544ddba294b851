/**
 * One call's detector ({@link CallVad}): cuts the call's PCM into the model's 32 ms windows,
 * gates them by energy against the line's noise floor, has the rest scored (by the shared model,
 * or by energy), and turns the scores, in window order, into `speechStart` / `speechEnd`.
 *
 * Cost on the JS thread per push: one copy into the window, one into the pre-roll history, and a
 * sum of squares; per window: one log10, and for a window the model scores, one copy into a shared
 * slot. Every buffer has a fixed size: the history holds the pre-roll and the longest onset, the
 * score ring {@link SCORE_RING} windows; past those, the pre-roll is cut short (`audioStartSample`
 * says so) and stale windows are dropped and counted.
 *
 * Threading: JS thread only; the model's answers arrive through {@link VadStream.scored}.
 */
import { Resampler, type ResamplerKernelFactory } from '../Resampler';
import { TypedEmitter } from '../../util/TypedEmitter';
import { NoiseFloor, energyDbfs, sumOfSquares } from './NoiseFloor';
import { SpeechSegmenter } from './SpeechSegmenter';
import { SILERO_GEOMETRY } from './sileroWorker';
import type { CallVad, CallVadEvents, VadBackendName, VadStats } from './types';

/** Windows whose scores may be outstanding at once; a window older than that is given up (dropped). */
export const SCORE_RING = 64;

/** Pauses an onset survives, ms: stop closures and the gaps between syllables (the gate scores them 0). */
export const ONSET_GAP_MS = 100;

/** How a window was decided; counted when it reaches the segmenter. */
const WAITING = 0;
const INFERRED = 1;
const GATED = 2;
const ENERGY = 3;
/** Dropped: repeats the previous window's score. */
const DROPPED = 4;
const COUNTED = [null, 'inferred', 'gated', 'energyScored', 'dropped'] as const;

/** The detector settings a stream runs with (every option resolved). */
export interface VadStreamSettings {
  threshold: number;
  minSpeechMs: number;
  silenceMs: number;
  preRollMs: number;
  /** `null`: no gate. */
  gate: { marginDb: number; floorDbfs: number } | null;
  energy: { speechDb: number; speechFloorDbfs: number };
  maxQueuedWindowsPerCall: number;
  resamplerKernel?: ResamplerKernelFactory;
}

/** What a stream needs from the process's detector. */
export interface VadStreamHost {
  /** The model scores windows now. */
  readonly modelReady: boolean;
  /** Totals over every call, counted by each stream as it goes (but `calls`, `queued`, `batches` and `modelUs`). */
  readonly totals: VadStats;
  /** Queue window `seq` of call `id` for the model (`pcm` holds it after its context); false when no slot is free. */
  submit(id: number, seq: number, pcm: Int16Array): boolean;
  /** Call `id` was closed. */
  release(id: number): void;
}

/** A call's detector; built by the process's {@link Vad}. */
export class VadStream extends TypedEmitter<CallVadEvents> implements CallVad {
  readonly sampleRate: number;
  /** Rate the windows are cut at: 8000 or 16000. */
  readonly modelRate: 8000 | 16000;
  readonly #id: number;
  readonly #host: VadStreamHost;
  readonly #s: VadStreamSettings;
  readonly #stats: VadStats = { calls: 1, windows: 0, inferred: 0, gated: 0, energyScored: 0, dropped: 0, queued: 0, batches: 0, modelUs: 0 };
  readonly #resampler: Resampler | undefined;
  #resampled = new Int16Array(0);
  /** Delay of the resampler in model-rate samples (0 without one). */
  readonly #delay: number;
  // Window being filled: context (the previous window's tail), then the window itself.
  readonly #window: Int16Array;
  readonly #context: number;
  readonly #windowSamples: number;
  #fill = 0;
  #energy = 0;
  readonly #floor = new NoiseFloor();
  // Scores by window sequence, fed to the segmenter in order.
  readonly #scores = new Float32Array(SCORE_RING);
  readonly #how = new Uint8Array(SCORE_RING);
  #head = 0;
  #next = 0;
  #last = 0;
  readonly #segmenter: SpeechSegmenter;
  // Pushed PCM at the call's rate, for the pre-roll.
  readonly #history: Int16Array;
  #pushed = 0;
  #closed = false;

  constructor(id: number, sampleRate: number, settings: VadStreamSettings, host: VadStreamHost) {
    super();
    if (!Number.isInteger(sampleRate) || sampleRate < 8000 || sampleRate > 48000) {
      throw new RangeError(`VAD sample rate out of range [sampleRate:${sampleRate}]`);
    }
    this.#id = id;
    this.sampleRate = sampleRate;
    this.#host = host;
    this.#s = settings;
    this.modelRate = sampleRate === 8000 ? 8000 : 16000;
    if (sampleRate !== this.modelRate) {
      this.#resampler = Resampler.create(sampleRate, this.modelRate, { kernel: settings.resamplerKernel });
      this.#delay = this.#resampler.delaySamples;
    } else {
      this.#delay = 0;
    }
    const g = SILERO_GEOMETRY[this.modelRate];
    this.#context = g.context;
    this.#windowSamples = g.window;
    this.#window = new Int16Array(g.context + g.window);
    const windowMs = (g.window * 1000) / this.modelRate;
    const minSpeechWindows = Math.ceil(settings.minSpeechMs / windowMs);
    const gapWindows = Math.floor(ONSET_GAP_MS / windowMs);
    this.#segmenter = new SpeechSegmenter({
      threshold: settings.threshold,
      minSpeechWindows,
      silenceWindows: settings.silenceMs / windowMs,
      onsetGapWindows: gapWindows,
    });
    // Pre-roll, the longest onset (its speech windows with the longest gaps between), and the
    // windows that may still wait for a score when speech starts.
    const onsetWindows = minSpeechWindows + (minSpeechWindows - 1) * gapWindows;
    const heldMs = settings.preRollMs + (onsetWindows + settings.maxQueuedWindowsPerCall + 4) * windowMs;
    let size = 1024;
    while (size < (heldMs * sampleRate) / 1000 + this.#delay * (sampleRate / this.modelRate)) size *= 2;
    this.#history = new Int16Array(size);
  }

  get speaking(): boolean {
    return this.#segmenter.speaking;
  }

  get pushedSamples(): number {
    return this.#pushed;
  }

  get backend(): VadBackendName {
    return this.#host.modelReady ? 'silero' : 'energy';
  }

  get stats(): VadStats {
    return { ...this.#stats, calls: this.#closed ? 0 : 1 };
  }

  get closed(): boolean {
    return this.#closed;
  }

  push(pcm: Int16Array): void {
    if (this.#closed || pcm.length === 0) return;
    this.#remember(pcm);
    let src = pcm;
    if (this.#resampler) {
      const need = this.#resampler.maxOutputLength(pcm.length);
      if (this.#resampled.length < need) this.#resampled = new Int16Array(need);
      src = this.#resampler.process(pcm, this.#resampled);
    }
    const win = this.#windowSamples;
    const ctx = this.#context;
    for (let i = 0; i < src.length; ) {
      const n = Math.min(win - this.#fill, src.length - i);
      this.#window.set(src.subarray(i, i + n), ctx + this.#fill);
      this.#energy += sumOfSquares(src, i, i + n);
      this.#fill += n;
      i += n;
      if (this.#fill === win) {
        this.#decide();
        // Listeners of the window just decided may have closed the call.
        if (this.#closed) return;
        this.#window.copyWithin(0, win, win + ctx);
        this.#fill = 0;
        this.#energy = 0;
      }
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stats.queued = 0;
    this.#host.release(this.#id);
    this.emit('close');
    this.removeAllListeners();
  }

  /** The model's score for window `seq` (NaN: not scored). */
  scored(seq: number, probability: number): void {
    if (this.#closed || seq < this.#head || this.#how[seq % SCORE_RING] !== WAITING) return;
    this.#stats.queued--;
    if (Number.isNaN(probability)) this.#resolve(seq % SCORE_RING, 0, DROPPED);
    else this.#resolve(seq % SCORE_RING, probability, INFERRED);
    this.#drain();
  }

  /** The model is gone: windows still waiting for it are dropped. */
  modelLost(): void {
    if (this.#closed) return;
    for (let seq = this.#head; seq < this.#next; seq++) {
      if (this.#how[seq % SCORE_RING] === WAITING) this.#resolve(seq % SCORE_RING, 0, DROPPED);
    }
    this.#stats.queued = 0;
    this.#drain();
  }

  #remember(pcm: Int16Array): void {
    const h = this.#history;
    const mask = h.length - 1;
    // Only the newest history.length samples can ever be read back.
    const src = pcm.length > h.length ? pcm.subarray(pcm.length - h.length) : pcm;
    const start = (this.#pushed + pcm.length - src.length) & mask;
    const first = Math.min(src.length, h.length - start);
    h.set(src.subarray(0, first), start);
    if (first < src.length) h.set(src.subarray(first), 0);
    this.#pushed += pcm.length;
  }

  /** A copy of the pushed audio in [from, #pushed); `from` must be within the history. */
  #recall(from: number): Int16Array {
    const h = this.#history;
    const out = new Int16Array(this.#pushed - from);
    const start = from & (h.length - 1);
    const first = Math.min(out.length, h.length - start);
    out.set(h.subarray(start, start + first), 0);
    if (first < out.length) out.set(h.subarray(0, out.length - first), first);
    return out;
  }

  /** Score (or queue) the window that just filled. */
  #decide(): void {
    if (this.#next - this.#head === SCORE_RING) this.#giveUpOldest();
    const seq = this.#next++;
    const slot = seq % SCORE_RING;
    const db = energyDbfs(this.#energy, this.#windowSamples);
    const floor = this.#floor.update(db);
    if (!this.#host.modelReady) {
      const e = this.#s.energy;
      this.#resolve(slot, db >= Math.max(floor + e.speechDb, e.speechFloorDbfs) ? 1 : 0, ENERGY);
    } else if (this.#s.gate && db < Math.max(floor + this.#s.gate.marginDb, this.#s.gate.floorDbfs)) {
      this.#resolve(slot, 0, GATED);
    } else if (this.#stats.queued >= this.#s.maxQueuedWindowsPerCall || !this.#host.submit(this.#id, seq, this.#window)) {
      this.#resolve(slot, 0, DROPPED);
    } else {
      this.#how[slot] = WAITING;
      this.#stats.queued++;
      return;
    }
    this.#drain();
  }

  #resolve(slot: number, score: number, how: number): void {
    this.#scores[slot] = score;
    this.#how[slot] = how;
  }

  /** The oldest window has waited {@link SCORE_RING} windows: decide it without the model. */
  #giveUpOldest(): void {
    const slot = this.#head % SCORE_RING;
    if (this.#how[slot] !== WAITING) return;
    this.#stats.queued--;
    this.#resolve(slot, 0, DROPPED);
    this.#drain();
  }

  /** Feed every decided window at the head to the segmenter, in order, and count it. */
  #drain(): void {
    while (this.#head < this.#next && this.#how[this.#head % SCORE_RING] !== WAITING) {
      const seq = this.#head++;
      const how = this.#how[seq % SCORE_RING];
      const p = how === DROPPED ? this.#last : this.#scores[seq % SCORE_RING];
      this.#last = p;
      const key = COUNTED[how]!;
      this.#stats[key]++;
      this.#host.totals[key]++;
      this.#stats.windows++;
      this.#host.totals.windows++;
      const change = this.#segmenter.feed(seq, p);
      if (change.kind === 'start') this.#speechStart(change.at);
      else if (change.kind === 'end') this.emit('speechEnd', { atSample: this.#toCallSample(change.at), endSample: this.#pushed });
      if (this.#closed) return;
    }
  }

  #speechStart(window: number): void {
    const atSample = this.#toCallSample(window);
    const held = Math.max(0, this.#pushed - this.#history.length);
    const preRoll = Math.floor((this.#s.preRollMs * this.sampleRate) / 1000);
    const audioStartSample = Math.min(this.#pushed, Math.max(held, atSample - preRoll));
    this.emit('speechStart', { atSample, audioStartSample, endSample: this.#pushed, audio: this.#recall(audioStartSample) });
  }

  /** First call-rate sample of window `seq`. */
  #toCallSample(seq: number): number {
    const modelSample = seq * this.#windowSamples - this.#delay;
    return Math.max(0, Math.round((modelSample * this.sampleRate) / this.modelRate));
  }
}

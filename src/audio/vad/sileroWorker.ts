/**
 * The Silero v5 worker thread: loads onnxruntime and the model, keeps each call's recurrent state,
 * and scores windows in batches (one model run scores one window of every call that has one
 * waiting, which costs a fraction of a run per call).
 *
 * Windows travel in a SharedArrayBuffer of fixed slots, each holding a window with the model's
 * context (the previous window's last samples) before it; messages carry only slot numbers. The
 * main thread owns the free list: a slot is reused only after the worker's answer for it came back.
 *
 * Threading: {@link sileroWorkerMain} runs in the worker and nowhere else; it is shipped to the
 * worker as source text, so it uses nothing from this module's scope, only `workerData`.
 */

/** Model geometry at one sample rate (Silero v5 takes 8 and 16 kHz). */
export interface SileroGeometry {
  /** Samples scored per window (32 ms). */
  window: number;
  /** Samples of the previous window prepended as context. */
  context: number;
}

/** Silero v5 windows: 256 samples at 8 kHz, 512 at 16 kHz, each after 32/64 samples of context. */
export const SILERO_GEOMETRY: Readonly<Record<8000 | 16000, SileroGeometry>> = {
  8000: { window: 256, context: 32 },
  16000: { window: 512, context: 64 },
};

/** Int16 samples per slot of the shared window buffer (the largest window with its context). */
export const SILERO_SLOT_SAMPLES = 576;

/** Size of the model's recurrent state per call (2 x 128 floats). */
export const SILERO_STATE_SIZE = 256;

/** What the worker is started with. */
export interface SileroWorkerData {
  ortPath: string;
  modelPath: string;
  /** `slots * slotSamples` Int16 samples. */
  windows: SharedArrayBuffer;
  slotSamples: number;
  stateSize: number;
  /** Samples the model takes per window (context included), by sample rate. */
  inputLengths: Record<number, number>;
}

/** Main thread to worker. `run` holds triples (call id, window sequence, slot). */
export type SileroRequest =
  | { t: 'open'; id: number; sampleRate: 8000 | 16000 }
  | { t: 'close'; id: number }
  | { t: 'run'; windows: Int32Array };

/** Worker to main thread. `scored` answers `run` triples, one probability each (NaN: the call was closed), each call's in order. */
export type SileroReply =
  | { t: 'ready'; loadMs: number }
  | { t: 'failed'; message: string }
  | { t: 'scored'; windows: Int32Array; probabilities: Float32Array; batches: number; workUs: number };

/** The part of onnxruntime-node's API the worker uses (the package is optional). */
interface OrtTensor {
  readonly data: unknown;
}
interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
}
interface OrtModule {
  InferenceSession: { create(path: string, options: object): Promise<OrtSession> };
  Tensor: new (type: string, data: Float32Array | BigInt64Array, dims: readonly number[]) => OrtTensor;
}

/** The worker's body (runs as source text: no reference to anything outside it). */
/* istanbul ignore next */
export function sileroWorkerMain(): void {
  const { parentPort, workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  const data = workerData as SileroWorkerData;
  const port = parentPort!;
  const pcm = new Int16Array(data.windows);
  const slotSamples = data.slotSamples;
  const stateSize = data.stateSize;
  const half = stateSize / 2;
  interface CallState {
    sampleRate: number;
    state: Float32Array;
  }
  const calls = new Map<number, CallState>();
  const queue: Int32Array[] = [];
  let ort: OrtModule | undefined;
  let session: OrtSession | undefined;
  let running = false;
  const rates = new Map<number, OrtTensor>();

  port.on('message', (m: SileroRequest) => {
    if (m.t === 'open') {
      calls.set(m.id, { sampleRate: m.sampleRate, state: new Float32Array(stateSize) });
    } else if (m.t === 'close') {
      calls.delete(m.id);
    } else {
      queue.push(m.windows);
      if (session && !running) void pump();
    }
  });

  async function load(): Promise<void> {
    const t0 = Date.now();
    try {
      ort = require(data.ortPath) as OrtModule;
      session = await ort.InferenceSession.create(data.modelPath, {
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
      const inputs = session.inputNames.join(',');
      const outputs = session.outputNames.join(',');
      if (inputs !== 'input,state,sr' || outputs !== 'output,stateN') {
        throw new Error(`not a Silero v5 model [inputs:${inputs}, outputs:${outputs}]`);
      }
      for (const rate of [8000, 16000]) rates.set(rate, new ort.Tensor('int64', BigInt64Array.from([BigInt(rate)]), []));
    } catch (err) {
      port.postMessage({ t: 'failed', message: err instanceof Error ? err.message : String(err) } satisfies SileroReply);
      port.close();
      return;
    }
    port.postMessage({ t: 'ready', loadMs: Date.now() - t0 } satisfies SileroReply);
    if (queue.length > 0) void pump();
  }

  /** Send back the answers for `entries[picked]` (one model run that took `workUs`, or none: `batches` 0). */
  function answer(entries: Int32Array, picked: number[], probabilities: ArrayLike<number>, batches: number, workUs: number): void {
    const windows = new Int32Array(picked.length * 3);
    const p = new Float32Array(picked.length);
    for (let k = 0; k < picked.length; k++) {
      windows.set(entries.subarray(picked[k] * 3, picked[k] * 3 + 3), k * 3);
      p[k] = probabilities[k];
    }
    const reply: SileroReply = { t: 'scored', windows, probabilities: p, batches, workUs };
    port.postMessage(reply, [windows.buffer, p.buffer]);
  }

  /** Answer, unscored, the windows of calls that are gone. */
  function answerOrphans(entries: Int32Array, done: Uint8Array): number {
    const orphans: number[] = [];
    for (let i = 0; i < done.length; i++) {
      if (done[i] || calls.has(entries[i * 3])) continue;
      done[i] = 1;
      orphans.push(i);
    }
    if (orphans.length > 0) answer(entries, orphans, new Float32Array(orphans.length).fill(NaN), 0, 0);
    return orphans.length;
  }

  // One model run per round, answered as soon as it is done: each round takes at most one window
  // per call (a call's windows depend on each other through its state) and one sample rate.
  async function score(entries: Int32Array): Promise<void> {
    const n = entries.length / 3;
    const done = new Uint8Array(n);
    let left = n - answerOrphans(entries, done);
    while (left > 0) {
      const t0 = process.hrtime.bigint();
      const taken = new Set<number>();
      const picked: number[] = [];
      let rate = 0;
      for (let i = 0; i < n; i++) {
        if (done[i]) continue;
        const id = entries[i * 3];
        const call = calls.get(id)!;
        if (taken.has(id) || (rate !== 0 && call.sampleRate !== rate)) continue;
        rate = call.sampleRate;
        taken.add(id);
        picked.push(i);
      }
      const b = picked.length;
      const length = data.inputLengths[rate];
      const input = new Float32Array(b * length);
      const state = new Float32Array(b * stateSize);
      for (let k = 0; k < b; k++) {
        const i = picked[k];
        const base = entries[i * 3 + 2] * slotSamples;
        const off = k * length;
        for (let j = 0; j < length; j++) input[off + j] = pcm[base + j] / 32768;
        // State is [2, batch, 128]: each call's two halves land in the two layers.
        const s = calls.get(entries[i * 3])!.state;
        state.set(s.subarray(0, half), k * half);
        state.set(s.subarray(half), (b + k) * half);
      }
      const feeds = {
        input: new ort!.Tensor('float32', input, [b, length]),
        state: new ort!.Tensor('float32', state, [2, b, half]),
        sr: rates.get(rate)!,
      };
      // onnxruntime-node runs the model on this thread (in a setImmediate): the round's time is the thread's work.
      const out = await session!.run(feeds);
      const next = out.stateN.data as Float32Array;
      for (let k = 0; k < b; k++) {
        const i = picked[k];
        done[i] = 1;
        // A call closed while the run was in flight has no state to update.
        const call = calls.get(entries[i * 3]);
        if (!call) continue;
        call.state.set(next.subarray(k * half, (k + 1) * half), 0);
        call.state.set(next.subarray((b + k) * half, (b + k + 1) * half), half);
      }
      answer(entries, picked, out.output.data as Float32Array, 1, Number(process.hrtime.bigint() - t0) / 1000);
      left -= b;
      left -= answerOrphans(entries, done);
    }
  }

  async function pump(): Promise<void> {
    running = true;
    while (queue.length > 0) {
      const parts = queue.splice(0, queue.length);
      const entries = parts.length === 1 ? parts[0] : new Int32Array(parts.reduce((t, p) => t + p.length, 0));
      if (parts.length > 1) {
        let at = 0;
        for (const p of parts) {
          entries.set(p, at);
          at += p.length;
        }
      }
      await score(entries);
    }
    running = false;
  }

  void load();
}

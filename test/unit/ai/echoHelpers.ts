/** Signals and an event recorder for the echo backend tests. */
import { silentLogger } from '../../../src/logging/logger';
import { EchoBackend, type EchoBackendOptions, type EchoSession } from '../../../src/ai/EchoBackend';
import { aiAudioFormatInfo, type AiAudioFormat } from '../../../src/ai/audioFormat';
import { encodeAiAudio } from '../../../src/ai/echo/codec';
import type { AiSessionOptions, ResponseOutcome, TranscriptEvent } from '../../../src/ai/types';

/** Session options as the daemon would pass them, formats aside. */
export const BASE_SESSION: AiSessionOptions = {
  instructions: 'Echo test.',
  voice: 'marin',
  inputFormat: 'pcm',
  outputFormat: 'pcm',
  turnDetection: { type: 'server_vad', createResponse: true, interruptResponse: true },
  noiseReduction: null,
  transcription: null,
};

/** Digital silence. */
export function silence(ms: number, rate: number): Int16Array {
  return new Int16Array(Math.round((ms * rate) / 1000));
}

/** Deterministic white noise at about `dbfs` RMS. */
export function noise(ms: number, rate: number, dbfs: number, seed = 1): Int16Array {
  const n = Math.round((ms * rate) / 1000);
  const out = new Int16Array(n);
  const peak = 32768 * Math.pow(10, dbfs / 20) * Math.sqrt(3);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = Math.round(((x / 0x100000000) * 2 - 1) * peak);
  }
  return out;
}

/** Segments back to back. */
export function concat(...parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The sample rate of a format. */
export function rateOf(format: AiAudioFormat): number {
  return aiAudioFormatInfo(format).sampleRate;
}

/** `pcm` (at the format's rate) in the wire bytes of `format`. */
export function wire(pcm: Int16Array, format: AiAudioFormat): Buffer {
  return encodeAiAudio(pcm, format);
}

/** Append `bytes` in chunks of `chunkMs` (20 ms by default), all at once, as a call's pump would after a stall. */
export function appendChunked(s: EchoSession, bytes: Buffer, format: AiAudioFormat, chunkMs = 20): number {
  const step = aiAudioFormatInfo(format).bytesPerMs * chunkMs;
  let n = 0;
  for (let i = 0; i < bytes.length; i += step, n++) s.appendAudio(bytes.subarray(i, Math.min(bytes.length, i + step)));
  return n;
}

/** Everything a session emitted, in order. */
export interface Recording {
  /** Event names in emission order, with the response id where there is one. */
  order: string[];
  audio: { responseId: string; itemId: string; data: Buffer }[];
  transcripts: TranscriptEvent[];
  done: ResponseOutcome[];
  created: { responseId: string; requested: boolean }[];
  speechStarted: { itemId: string; audioStartMs: number }[];
  speechStopped: { itemId: string; audioEndMs: number }[];
  errors: { code: string; message: string }[];
  died: number;
  closes: number;
}

/** Subscribe to every event a test looks at. */
export function record(s: EchoSession): Recording {
  const r: Recording = { order: [], audio: [], transcripts: [], done: [], created: [], speechStarted: [], speechStopped: [], errors: [], died: 0, closes: 0 };
  s.on('audio', (e) => {
    r.audio.push(e);
    r.order.push(`audio:${e.responseId}`);
  });
  s.on('audioDone', (e) => r.order.push(`audioDone:${e.responseId}`));
  s.on('responseCreated', (e) => {
    r.created.push(e);
    r.order.push(`responseCreated:${e.responseId}`);
  });
  s.on('responseDone', (e) => {
    r.done.push(e);
    r.order.push(`responseDone:${e.responseId}:${e.status}`);
  });
  s.on('transcript', (e) => {
    r.transcripts.push(e);
    r.order.push(`transcript:${e.role}`);
  });
  s.on('speechStarted', (e) => {
    r.speechStarted.push(e);
    r.order.push('speechStarted');
  });
  s.on('speechStopped', (e) => {
    r.speechStopped.push(e);
    r.order.push('speechStopped');
  });
  s.on('error', (e) => r.errors.push(e));
  s.on('died', () => (r.died += 1));
  s.on('close', () => (r.closes += 1));
  return r;
}

/** Audio bytes of one response, back to back. */
export function audioOf(r: Recording, responseId: string): Buffer {
  return Buffer.concat(r.audio.filter((a) => a.responseId === responseId).map((a) => a.data));
}

const open: EchoSession[] = [];

/** A started session (closed again by {@link closeAll}). */
export async function startedSession(
  formats: { inputFormat: AiAudioFormat; outputFormat: AiAudioFormat },
  backendOpts: EchoBackendOptions = {},
  session: Partial<AiSessionOptions> = {},
): Promise<{ s: EchoSession; rec: Recording }> {
  const s = new EchoBackend(backendOpts).createSession({ ...BASE_SESSION, ...formats, ...session }, silentLogger());
  open.push(s);
  const rec = record(s);
  await s.start();
  return { s, rec };
}

/** Close every session the tests opened. */
export function closeAll(): void {
  for (const s of open.splice(0)) s.close();
}

/**
 * Await `p` on the fake clock: fire the session's timers one at a time until `p` settles, so what
 * a test awaits next is subscribed before anything further happens.
 */
export async function settle<T>(p: Promise<T>): Promise<T> {
  let pending = true;
  p.then(
    () => (pending = false),
    () => (pending = false),
  );
  await Promise.resolve();
  while (pending) {
    if (jest.getTimerCount() === 0) throw new Error('nothing left to run and the awaited promise is still pending');
    await jest.advanceTimersToNextTimerAsync();
  }
  return p;
}

/** Resolve on the next `responseDone` with this status. */
export function doneWith(s: EchoSession, status: ResponseOutcome['status'], timeoutMs = 5000): Promise<ResponseOutcome> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      s.off('responseDone', on);
      reject(new Error(`no responseDone with status ${status} within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (o: ResponseOutcome): void => {
      if (o.status !== status) return;
      clearTimeout(timer);
      s.off('responseDone', on);
      resolve(o);
    };
    s.on('responseDone', on);
  });
}

/**
 * Signals for the VAD tests: a recorded utterance, seeded noise, clicks, knocks, speech-like tone
 * bursts, and a pusher that feeds a call 20 ms frames the way the audio wake does.
 */
import * as path from 'node:path';
import { concatInt16 } from '../../../src/audio/pcm';
import { loadWavFile } from '../../../src/audio/wav';
import type { CallVad, Vad } from '../../../src/audio/vad';

/**
 * "Hello, I would like to check the status of my order." spoken by espeak-ng (en-us, 160 wpm),
 * 16 kHz, leading and trailing silence trimmed: speech runs from the first sample to the last.
 * Made with `espeak-ng -v en-us -s 160 -w u.wav "..."` and
 * `sox u.wav -r 16000 -b 16 out.wav silence 1 0.005 0.3% reverse silence 1 0.005 0.3% reverse`.
 */
export const UTTERANCE_WAV = path.join(__dirname, 'fixtures', 'utterance-16k.wav');

/** The utterance at `sampleRate`. */
export function utterance(sampleRate: number): Int16Array {
  return loadWavFile(UTTERANCE_WAV, sampleRate).pcm;
}

/** Samples in `ms` at `rate`. */
export function samples(ms: number, rate: number): number {
  return Math.round((ms * rate) / 1000);
}

/** A deterministic generator of uniform numbers in [0, 1). */
export function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

/** White noise at an RMS of `dbfs`. */
export function noise(ms: number, rate: number, dbfs: number, seed = 1): Int16Array {
  const rnd = prng(seed);
  const out = new Int16Array(samples(ms, rate));
  // Uniform in [-a, a] has RMS a / sqrt(3).
  const a = Math.sqrt(3) * 32768 * 10 ** (dbfs / 20);
  for (let i = 0; i < out.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round((rnd() * 2 - 1) * a)));
  return out;
}

/** `pcm` with `background` (looped) added. */
export function mix(pcm: Int16Array, background: Int16Array): Int16Array {
  const out = new Int16Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = Math.max(-32768, Math.min(32767, pcm[i] + background[i % background.length]));
  return out;
}

/** Loud clicks every `everyMs` (single-sample impulses with a short ring). */
export function clicks(ms: number, rate: number, everyMs: number): Int16Array {
  const out = new Int16Array(samples(ms, rate));
  const every = samples(everyMs, rate);
  for (let at = every >> 1; at < out.length; at += every) {
    for (let k = 0; k < 8 && at + k < out.length; k++) out[at + k] = Math.round(28000 * (k % 2 ? -1 : 1) * Math.exp(-k / 2));
  }
  return out;
}

/** Knocks and door slams: loud noise bursts with a fast decay, every `everyMs`. */
export function knocks(ms: number, rate: number, everyMs: number, seed = 7): Int16Array {
  const rnd = prng(seed);
  const out = new Int16Array(samples(ms, rate));
  const every = samples(everyMs, rate);
  const decay = samples(40, rate);
  for (let at = every >> 1; at < out.length; at += every) {
    for (let k = 0; k < decay * 5 && at + k < out.length; k++) out[at + k] = Math.round((rnd() * 2 - 1) * 24000 * Math.exp(-k / decay));
  }
  return out;
}

/** Tone bursts at a syllable rate (on `onMs`, off `offMs`): loud like speech to an energy detector. */
export function bursts(ms: number, rate: number, onMs = 180, offMs = 60, freq = 300): Int16Array {
  const out = new Int16Array(samples(ms, rate));
  const period = samples(onMs + offMs, rate);
  const on = samples(onMs, rate);
  for (let i = 0; i < out.length; i++) if (i % period < on) out[i] = Math.round(8000 * Math.sin((2 * Math.PI * freq * i) / rate));
  return out;
}

/** Concatenate. */
export function concat(...parts: Int16Array[]): Int16Array {
  return concatInt16(parts);
}

/** Resolves once no window of any call waits for the model. */
export async function settled(vad: Vad): Promise<void> {
  while (vad.stats.queued > 0) await new Promise((r) => setTimeout(r, 1));
}

/**
 * Push `pcm` into `call` in 20 ms frames. With `vad`, waits after each frame until the model has
 * answered, as a real-time call (32 ms per window) would let it.
 */
export async function pushFrames(call: CallVad, pcm: Int16Array, vad?: Vad): Promise<void> {
  const frame = samples(20, call.sampleRate);
  for (let at = 0; at < pcm.length; at += frame) {
    call.push(pcm.subarray(at, Math.min(pcm.length, at + frame)));
    if (vad) await settled(vad);
  }
}

/** Every speechStart / speechEnd of a call, in order. */
export function record(call: CallVad): { kind: 'start' | 'end'; atSample: number; endSample: number; audio?: Int16Array }[] {
  const events: { kind: 'start' | 'end'; atSample: number; endSample: number; audio?: Int16Array }[] = [];
  call.on('speechStart', (e) => events.push({ kind: 'start', atSample: e.atSample, endSample: e.endSample, audio: e.audio }));
  call.on('speechEnd', (e) => events.push({ kind: 'end', atSample: e.atSample, endSample: e.endSample }));
  return events;
}

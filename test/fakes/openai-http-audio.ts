/**
 * Deterministic audio of the fake OpenAI HTTP server: what its speech-to-text "hears" (the
 * dominant tone of an upload) and what its text-to-speech "says" (a tone whose frequency tells
 * sentences apart, its length following the text).
 */
import { WaveFile } from 'wavefile';
import { dominantFrequency, rms } from '../helpers/audio-analysis';

/** Sample rate of `pcm` speech output: 24 kHz, 16-bit little-endian, mono. */
export const SPEECH_SAMPLE_RATE = 24_000;

/** Loudest 10 ms frame below this RMS level (fraction of full scale, -50 dBFS) counts as silence. */
const SILENCE_RMS = 10 ** (-50 / 20);

/**
 * The default transcript: `tone <Hz rounded to 50>` for the dominant frequency of the loud part
 * of the audio (frames within 20 dB of the loudest, at most 2 s of it), or "" for silence.
 */
export function hearTone(pcm: Int16Array, sampleRate: number): string {
  const frame = Math.max(1, Math.round(sampleRate / 100));
  const levels: number[] = [];
  let loudest = 0;
  for (let start = 0; start < pcm.length; start += frame) {
    const level = rms(pcm, start, frame);
    levels.push(level);
    if (level > loudest) loudest = level;
  }
  if (loudest < SILENCE_RMS) return '';
  const first = levels.findIndex((l) => l >= loudest / 10);
  let last = first;
  for (let i = levels.length - 1; i > first; i--) {
    if (levels[i]! >= loudest / 10) {
      last = i;
      break;
    }
  }
  const start = first * frame;
  const len = Math.min(Math.min(pcm.length, (last + 1) * frame) - start, 2 * sampleRate);
  const { freq } = dominantFrequency(pcm, sampleRate, { start, len, maxHz: Math.min(4000, 0.45 * sampleRate) });
  return freq > 0 ? `tone ${Math.round(freq / 50) * 50}` : '';
}

/** The default voice: a stable hash (FNV-1a) of the text mapped to 300..1500 Hz in 50 Hz steps. */
export function voiceHz(input: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(input, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return 300 + (h % 25) * 50;
}

/** Length of the speech for `input`: 60 ms a character (at least 300 ms) divided by `speed`, at most 10 s. */
export function speechDurationMs(input: string, speed = 1): number {
  return Math.min(10_000, Math.max(300, Math.round((60 * Array.from(input).length) / speed)));
}

/** A tone of `ms` at `hz` with 10 ms linear ramps in and out, peak 0.3 of full scale. */
export function speechTone(hz: number, ms: number, sampleRate = SPEECH_SAMPLE_RATE): Int16Array {
  const n = Math.round((ms * sampleRate) / 1000);
  const ramp = Math.max(1, Math.min(n >> 1, Math.round(sampleRate / 100)));
  const peakAmp = 0.3 * 32767;
  const omega = (2 * Math.PI * hz) / sampleRate;
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const gain = Math.min(1, i / ramp, (n - 1 - i) / ramp);
    out[i] = Math.round(peakAmp * gain * Math.sin(omega * i));
  }
  return out;
}

/** PCM as little-endian bytes. */
export function pcmBytes(pcm: Int16Array): Buffer {
  const out = Buffer.alloc(pcm.length * 2);
  pcm.forEach((v, i) => out.writeInt16LE(v, i * 2));
  return out;
}

/** Mono PCM16 as a complete RIFF/WAVE file. */
export function wavFile(pcm: Int16Array, sampleRate: number): Buffer {
  const wav = new WaveFile();
  wav.fromScratch(1, sampleRate, '16', pcm);
  return Buffer.from(wav.toBuffer());
}

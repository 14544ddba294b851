/** The AI side's audio formats and what the call layer needs to know about them (rate, bytes per ms). */
import { AI_PCM_BYTES_PER_MS, AI_SAMPLE_RATE, G711_SAMPLE_RATE } from '../audio/format';
import type { WireAudioFormat } from './events';

/** Audio format negotiated with the AI backend: 24 kHz PCM16, or 8 kHz G.711 µ-law / A-law. */
export type AiAudioFormat = 'pcm' | 'pcmu' | 'pcma';

/** Every supported AI audio format. */
export const AI_AUDIO_FORMATS: readonly AiAudioFormat[] = ['pcm', 'pcmu', 'pcma'];

/** A format with its sample rate and byte rate, so the call layer knows whether to resample. */
export interface AiAudioFormatInfo {
  format: AiAudioFormat;
  /** 24000 for `pcm`, 8000 for G.711. */
  sampleRate: 24000 | 8000;
  /** Bytes per millisecond of audio in this format (48 for 24 kHz PCM16, 8 for G.711). */
  bytesPerMs: number;
  /** True when samples are 16-bit PCM (Int16Array); false for 8-bit G.711 codes. */
  linear: boolean;
}

/** Describe an AI audio format. */
export function aiAudioFormatInfo(format: AiAudioFormat): AiAudioFormatInfo {
  if (format === 'pcm') return { format, sampleRate: AI_SAMPLE_RATE as 24000, bytesPerMs: AI_PCM_BYTES_PER_MS, linear: true };
  return { format, sampleRate: G711_SAMPLE_RATE as 8000, bytesPerMs: G711_SAMPLE_RATE / 1000, linear: false };
}

/** The GA wire object for a format (`audio/pcm` always carries rate 24000). */
export function wireAudioFormat(format: AiAudioFormat): WireAudioFormat {
  if (format === 'pcm') return { type: 'audio/pcm', rate: 24000 };
  return format === 'pcmu' ? { type: 'audio/pcmu' } : { type: 'audio/pcma' };
}

/** Audio format constants shared by the whole audio path. PCM is always 16-bit signed mono. */

/** Sample rate of the OpenAI Realtime `audio/pcm` format (the only rate it accepts). */
export const AI_SAMPLE_RATE = 24000;

/** Sample rate of G.711 (`audio/pcmu`, `audio/pcma`). */
export const G711_SAMPLE_RATE = 8000;

/** Bridge (conference clock) rates the native side supports. */
export const BRIDGE_SAMPLE_RATES = [8000, 16000, 24000] as const;

/** A supported bridge rate. */
export type BridgeSampleRate = (typeof BRIDGE_SAMPLE_RATES)[number];

/** Default bridge rate: narrowband telephony. */
export const DEFAULT_BRIDGE_SAMPLE_RATE: BridgeSampleRate = 8000;

/** Frame duration of the conference bridge and every PCM frame handed to JS. */
export const PTIME_MS = 20;

/** Samples in one frame at the given rate (20 ms). */
export function samplesPerFrame(sampleRate: number, ptimeMs: number = PTIME_MS): number {
  return (sampleRate * ptimeMs) / 1000;
}

/** Milliseconds of audio in `samples` at `sampleRate`. */
export function samplesToMs(samples: number, sampleRate: number): number {
  return (samples * 1000) / sampleRate;
}

/** Samples in `ms` milliseconds at `sampleRate` (rounded down). */
export function msToSamples(ms: number, sampleRate: number): number {
  return Math.floor((ms * sampleRate) / 1000);
}

/** Bytes per millisecond of 24 kHz PCM16 (a classic truncate bug uses 24 here). */
export const AI_PCM_BYTES_PER_MS = 48;

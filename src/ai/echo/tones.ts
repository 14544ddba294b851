/**
 * Synthesised prompts of the echo backend: a short sequence of sine beeps with raised-cosine edges
 * (no clicks), so an operator hears at once that the echo test is live.
 */

/** One beep, or a pause when `freqHz` is 0. */
export interface ToneSegment {
  /** Frequency in Hz; 0 for silence. */
  freqHz: number;
  /** Duration in ms. */
  durationMs: number;
}

/** The opening prompt: 600 Hz then 900 Hz, 150 ms each, 100 ms apart. */
export const OPENING_BEEPS: readonly ToneSegment[] = Object.freeze([
  { freqHz: 600, durationMs: 150 },
  { freqHz: 0, durationMs: 100 },
  { freqHz: 900, durationMs: 150 },
]);

/** Peak level of the beeps: -12 dBFS, clearly audible without clipping a codec. */
export const BEEP_PEAK = Math.round(32767 * Math.pow(10, -12 / 20));

/** Fade-in and fade-out of each beep, ms. */
const EDGE_MS = 5;

/** PCM of the segments back to back at `sampleRate`. */
export function synthesizeTones(segments: readonly ToneSegment[], sampleRate: number, peak: number = BEEP_PEAK): Int16Array {
  let total = 0;
  const lengths = segments.map((s) => {
    const n = Math.max(0, Math.round((s.durationMs * sampleRate) / 1000));
    total += n;
    return n;
  });
  const out = new Int16Array(total);
  let offset = 0;
  segments.forEach((s, k) => {
    const n = lengths[k];
    if (s.freqHz > 0) {
      const edge = Math.min(Math.floor(n / 2), Math.round((EDGE_MS * sampleRate) / 1000));
      const w = (2 * Math.PI * s.freqHz) / sampleRate;
      for (let i = 0; i < n; i++) {
        let gain = 1;
        if (i < edge) gain = 0.5 - 0.5 * Math.cos((Math.PI * i) / edge);
        else if (i >= n - edge) gain = 0.5 - 0.5 * Math.cos((Math.PI * (n - 1 - i)) / edge);
        out[offset + i] = Math.round(peak * gain * Math.sin(w * i));
      }
    }
    offset += n;
  });
  return out;
}

/** Test tones: tests and their helpers make sine tones here. */

/** Peak of a full-scale tone in 16-bit sample units. */
export const FULL_SCALE = 32767;

/** `n` samples of a sine at `freq` Hz sampled at `rate`, peaking at `peak` sample units (0 Hz is silence). */
export function sineSamples(freq: number, rate: number, n: number, peak: number): Int16Array {
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(peak * Math.sin((2 * Math.PI * freq * i) / rate));
  return out;
}

/** `ms` of a sine at `freq` Hz sampled at `sampleRate`, peaking at `amplitude` of full scale (0 Hz is silence). */
export function sine(freq: number, ms: number, sampleRate: number, amplitude = 0.5): Int16Array {
  return sineSamples(freq, sampleRate, Math.round((sampleRate * ms) / 1000), amplitude * FULL_SCALE);
}

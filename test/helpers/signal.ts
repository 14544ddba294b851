/** Signal measurement shared by the resampler's quality tests and its benchmarks. */

/** Least-squares fit of a sine at `freq` over y[start, start+len): amplitude, phase, residual RMS. */
export function fitSine(y: Int16Array, rate: number, freq: number, start: number, len: number) {
  let s = 0;
  let c = 0;
  let mean = 0;
  for (let i = start; i < start + len; i++) mean += y[i];
  mean /= len;
  for (let i = start; i < start + len; i++) {
    const w = (2 * Math.PI * freq * i) / rate;
    s += (y[i] - mean) * Math.sin(w);
    c += (y[i] - mean) * Math.cos(w);
  }
  const a = (2 * s) / len;
  const b = (2 * c) / len;
  let res = 0;
  for (let i = start; i < start + len; i++) {
    const w = (2 * Math.PI * freq * i) / rate;
    const r = y[i] - mean - a * Math.sin(w) - b * Math.cos(w);
    res += r * r;
  }
  return { amplitude: Math.hypot(a, b), phase: Math.atan2(b, a), residualRms: Math.sqrt(res / len) };
}

/** RMS of y[start, start+len). */
export function rms(y: Int16Array, start: number, len: number): number {
  let acc = 0;
  for (let i = start; i < start + len; i++) acc += y[i] * y[i];
  return Math.sqrt(acc / len);
}

/** Amplitude ratio in dB. */
export const db = (x: number): number => 20 * Math.log10(x);

/** Speech-like test signal: a few tones plus noise, deterministic (benchmarks feed it in frames). */
export function speechLike(rate: number, seconds: number): Int16Array {
  const n = rate * seconds;
  const out = new Int16Array(n);
  let s = 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const t = i / rate;
    const v = 6000 * Math.sin(2 * Math.PI * 220 * t) + 4000 * Math.sin(2 * Math.PI * 1230 * t) + 3000 * Math.sin(2 * Math.PI * 3100 * t);
    out[i] = Math.round(v + ((s / 0x100000000) * 2 - 1) * 2000);
  }
  return out;
}

/**
 * Streaming rational-ratio resampler for mono Int16 PCM: a polyphase FIR (Kaiser-windowed sinc)
 * that upsamples by L and decimates by M without ever building the zero-stuffed signal.
 *
 * Two designs:
 * - `telephony` (default for bridge rate <-> 24 kHz): short linear-phase filters whose stopband
 *   starts where an image or alias would land inside the telephone passband (8000 - 3400 = 4600 Hz
 *   for the 8 kHz bridge, 16000 - 7000 = 9000 Hz for 16 kHz), which keeps the group delay under 2 ms.
 * - `offline` (default for every other pair, e.g. WAV files at load time): alias-free up to the
 *   lower Nyquist, 80 dB stopband, latency does not matter.
 */

/** Which filter family a {@link Resampler} uses. */
export type ResamplerDesignName = 'telephony' | 'offline';

/** Options for {@link Resampler.create}. */
export interface ResamplerOptions {
  /** Filter family; default `telephony` for 8000/16000 <-> 24000, `offline` otherwise. */
  design?: ResamplerDesignName;
}

/** The filter a resampler runs, for inspection (tests, benchmarks, logs). */
export interface ResamplerDesign {
  /** Filter family. */
  readonly name: ResamplerDesignName | 'passthrough';
  /** Interpolation factor. */
  readonly up: number;
  /** Decimation factor. */
  readonly down: number;
  /** Prototype filter length at the intermediate rate `fromRate * up` (taps). */
  readonly taps: number;
  /** Taps per polyphase branch (multiply-adds per output sample). */
  readonly tapsPerPhase: number;
  /** -6 dB cutoff of the prototype filter in Hz. */
  readonly cutoffHz: number;
  /** Kaiser window beta. */
  readonly beta: number;
  /** Passband edge the design targets, Hz. */
  readonly passbandHz: number;
  /** Frequency from which images and aliases are meant to be suppressed, Hz. */
  readonly stopbandHz: number;
}

/** Largest polyphase table accepted (coefficients); rate pairs needing more are rejected. */
export const MAX_RESAMPLER_COEFFICIENTS = 1 << 20;

const TELEPHONY_8K = { taps: 85, beta: 6.5, passbandHz: 3400, stopbandHz: 4600 };
const TELEPHONY_16K = { taps: 109, beta: 7.0, passbandHz: 7000, stopbandHz: 9000 };
const OFFLINE_ATTENUATION_DB = 80;

/**
 * Streaming resampler from `fromRate` to `toRate`. Feeding a signal in any chunking yields the
 * same samples as feeding it at once; the output is the filtered signal delayed by
 * {@link delaySamples} (no compensation, so the stream stays causal).
 */
export class Resampler {
  /** Input sample rate in Hz. */
  readonly fromRate: number;
  /** Output sample rate in Hz. */
  readonly toRate: number;
  /** The filter in use. */
  readonly design: ResamplerDesign;

  readonly #up: number;
  readonly #down: number;
  readonly #k: number;
  /** Per phase p, taps in input order oldest -> newest: coef[p*K + m] multiplies x[i - (K-1) + m]. */
  readonly #coef: Float64Array;
  /** Half the prototype length in intermediate-rate samples (the linear-phase delay). */
  readonly #delayHigh: number;
  /** History (K-1 samples) followed by not-yet-consumed input, as float. */
  #buf: Float64Array;
  /** Valid samples in #buf. */
  #fill: number;
  /** Index in #buf of the newest input sample the next output needs. */
  #pos: number;
  /** Polyphase branch of the next output. */
  #phase: number;
  #clipped = 0;

  private constructor(fromRate: number, toRate: number, design: ResamplerDesign, coef: Float64Array) {
    this.fromRate = fromRate;
    this.toRate = toRate;
    this.design = design;
    this.#up = design.up;
    this.#down = design.down;
    this.#k = design.tapsPerPhase;
    this.#coef = coef;
    this.#delayHigh = (design.taps - 1) / 2;
    this.#buf = new Float64Array(this.#k - 1 + 1024);
    this.#fill = this.#k - 1;
    this.#pos = this.#k - 1;
    this.#phase = 0;
  }

  /**
   * Build a resampler. Any pair of positive integer rates is accepted as long as the exact
   * polyphase table stays under {@link MAX_RESAMPLER_COEFFICIENTS}; equal rates pass through.
   * @throws RangeError for non-integer or non-positive rates, or a ratio too irregular to tabulate.
   */
  static create(fromRate: number, toRate: number, options: ResamplerOptions = {}): Resampler {
    if (!Number.isInteger(fromRate) || !Number.isInteger(toRate) || fromRate <= 0 || toRate <= 0) {
      throw new RangeError(`invalid resampler rates [from:${fromRate}, to:${toRate}]`);
    }
    const { design, coef } = designFilter(fromRate, toRate, options.design);
    return new Resampler(fromRate, toRate, design, coef);
  }

  /** Group delay in output samples (exact for linear phase; 0 for pass-through). */
  get delaySamples(): number {
    return this.#delayHigh / this.#down;
  }

  /** Group delay in milliseconds. */
  get delayMs(): number {
    return (this.#delayHigh * 1000) / (this.fromRate * this.#up);
  }

  /** Output samples that saturated at the Int16 limits since creation. */
  get clippedSamples(): number {
    return this.#clipped;
  }

  /** Most output samples a {@link process} call can produce for `inputLength` input samples (size for `out`). */
  maxOutputLength(inputLength: number): number {
    return Math.ceil(((inputLength + 1) * this.#up) / this.#down) + 1;
  }

  /**
   * Resample the next chunk of the stream. With `out`, writes into it and returns a subarray view
   * of the written part (it must hold {@link maxOutputLength} samples); without, allocates.
   * @throws RangeError when `out` is too small.
   */
  process(input: Int16Array, out?: Int16Array): Int16Array {
    if (this.#up === 1 && this.#down === 1) {
      if (!out) return input.slice();
      if (out.length < input.length) throw tooSmall(out.length, input.length);
      out.set(input);
      return out.subarray(0, input.length);
    }
    this.#append(input, 0);
    return this.#run(this.#fill * this.#up, out);
  }

  /**
   * End the stream: emit the filter's tail (the last {@link delaySamples} of output that the
   * input still owes), then {@link reset}. Total output of a stream is then
   * `ceil((inputSamples * up + delay) / down)`, delay in intermediate-rate samples.
   */
  flush(): Int16Array {
    if (this.#up === 1 && this.#down === 1) return new Int16Array(0);
    const end = this.#fill * this.#up + this.#delayHigh;
    // Zeros stand in for the input after the end; they only feed the filter's trailing taps.
    this.#append(undefined, Math.ceil(this.#delayHigh / this.#up) + 1);
    const result = this.#run(end);
    this.reset();
    return result;
  }

  /** Forget all history: the next sample starts a new stream. */
  reset(): void {
    this.#buf.fill(0, 0, this.#k - 1);
    this.#fill = this.#k - 1;
    this.#pos = this.#k - 1;
    this.#phase = 0;
  }

  #append(input: Int16Array | undefined, zeros: number): void {
    const n = input ? input.length : zeros;
    const need = this.#fill + n;
    if (need > this.#buf.length) {
      // Grows only when a chunk larger than any before arrives; steady state never allocates.
      const bigger = new Float64Array(Math.max(need, this.#buf.length * 2));
      bigger.set(this.#buf.subarray(0, this.#fill));
      this.#buf = bigger;
    }
    const buf = this.#buf;
    let w = this.#fill;
    if (input) {
      for (let i = 0; i < n; i++) buf[w++] = input[i];
    } else {
      buf.fill(0, w, w + n);
    }
    this.#fill = need;
  }

  /** Emit every output whose intermediate-rate time (relative to #buf) is below `limit`. */
  #run(limit: number, out?: Int16Array): Int16Array {
    const up = this.#up;
    const down = this.#down;
    const k = this.#k;
    const coef = this.#coef;
    const buf = this.#buf;
    const t0 = this.#pos * up + this.#phase;
    const count = limit > t0 ? Math.ceil((limit - t0) / down) : 0;
    let dst: Int16Array;
    if (out) {
      if (out.length < count) throw tooSmall(out.length, count);
      dst = out;
    } else {
      dst = new Int16Array(count);
    }
    let pos = this.#pos;
    let phase = this.#phase;
    let clipped = 0;
    for (let n = 0; n < count; n++) {
      const c0 = phase * k;
      const b0 = pos - k + 1;
      // Four partial sums break the add dependency chain; see bench/resampler.ts for the gain.
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      let m = 0;
      for (; m + 3 < k; m += 4) {
        a0 += coef[c0 + m] * buf[b0 + m];
        a1 += coef[c0 + m + 1] * buf[b0 + m + 1];
        a2 += coef[c0 + m + 2] * buf[b0 + m + 2];
        a3 += coef[c0 + m + 3] * buf[b0 + m + 3];
      }
      for (; m < k; m++) a0 += coef[c0 + m] * buf[b0 + m];
      let v = Math.round(a0 + a1 + (a2 + a3));
      if (v > 32767) {
        v = 32767;
        clipped++;
      } else if (v < -32768) {
        v = -32768;
        clipped++;
      }
      dst[n] = v;
      phase += down;
      while (phase >= up) {
        phase -= up;
        pos++;
      }
    }
    this.#clipped += clipped;
    this.#phase = phase;
    // Keep only the K-1 samples of history the next output needs (pos may run past fill by < down/up).
    const start = Math.min(pos - k + 1, this.#fill);
    if (start > 0) {
      buf.copyWithin(0, start, this.#fill);
      this.#fill -= start;
      pos -= start;
    }
    this.#pos = pos;
    return out ? dst.subarray(0, count) : dst;
  }
}

function tooSmall(have: number, need: number): RangeError {
  return new RangeError(`output buffer too small [length:${have}, needed:${need}]`);
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function designFilter(
  fromRate: number,
  toRate: number,
  requested: ResamplerDesignName | undefined,
): { design: ResamplerDesign; coef: Float64Array } {
  const g = gcd(fromRate, toRate);
  const up = toRate / g;
  const down = fromRate / g;
  if (up === 1 && down === 1) {
    const design: ResamplerDesign = {
      name: 'passthrough', up, down, taps: 1, tapsPerPhase: 1, cutoffHz: fromRate / 2, beta: 0,
      passbandHz: fromRate / 2, stopbandHz: fromRate / 2,
    };
    return { design, coef: new Float64Array([1]) };
  }
  const high = fromRate * up;
  const low = Math.min(fromRate, toRate);
  const isBridge = Math.max(fromRate, toRate) === 24000 && (low === 8000 || low === 16000);
  const name = requested ?? (isBridge ? 'telephony' : 'offline');
  let taps: number;
  let beta: number;
  let passbandHz: number;
  let stopbandHz: number;
  if (name === 'telephony') {
    if (!isBridge) {
      throw new RangeError(`telephony design only covers 8000/16000 <-> 24000 [from:${fromRate}, to:${toRate}]`);
    }
    ({ taps, beta, passbandHz, stopbandHz } = low === 8000 ? TELEPHONY_8K : TELEPHONY_16K);
  } else {
    // Kaiser's formulas (Oppenheim & Schafer 7.6): length and beta for the wanted attenuation.
    passbandHz = 0.45 * low;
    stopbandHz = 0.5 * low;
    const a = OFFLINE_ATTENUATION_DB;
    beta = 0.1102 * (a - 8.7);
    const dw = (2 * Math.PI * (stopbandHz - passbandHz)) / high;
    taps = Math.ceil((a - 7.95) / (2.285 * dw)) + 1;
    if (taps % 2 === 0) taps++;
  }
  const cutoffHz = (passbandHz + stopbandHz) / 2;
  // Every branch needs at least ceil(down/up)+1 taps so history trimming never outruns the input.
  const k = Math.max(Math.ceil(taps / up), Math.ceil(down / up) + 1);
  if (k * up > MAX_RESAMPLER_COEFFICIENTS) {
    throw new RangeError(
      `rate ratio needs too large a filter table [from:${fromRate}, to:${toRate}, up:${up}, down:${down}]`,
    );
  }
  const h = kaiserSinc(taps, cutoffHz / high, beta);
  const coef = new Float64Array(k * up);
  for (let p = 0; p < up; p++) {
    // Branch p weighs x[i - j] by h[p + up*j]; store oldest-first so the inner loop walks forward.
    let sum = 0;
    for (let j = 0; j < k; j++) {
      const idx = p + up * j;
      const c = idx < taps ? h[idx] : 0;
      coef[p * k + (k - 1 - j)] = c;
      sum += c;
    }
    // Unit DC gain per branch: a constant input then leaves no image at multiples of the input rate.
    if (sum !== 0) for (let m = 0; m < k; m++) coef[p * k + m] /= sum;
  }
  const design: ResamplerDesign = { name, up, down, taps, tapsPerPhase: k, cutoffHz, beta, passbandHz, stopbandHz };
  return { design, coef };
}

/** Kaiser-windowed sinc low-pass of `n` taps, cutoff `fc` as a fraction of the sample rate. */
function kaiserSinc(n: number, fc: number, beta: number): Float64Array {
  const h = new Float64Array(n);
  const mid = (n - 1) / 2;
  const norm = besselI0(beta);
  for (let i = 0; i < n; i++) {
    const u = i - mid;
    const x = 2 * Math.PI * fc * u;
    const sinc = u === 0 ? 1 : Math.sin(x) / x;
    const r = mid === 0 ? 0 : u / mid;
    h[i] = 2 * fc * sinc * (besselI0(beta * Math.sqrt(Math.max(0, 1 - r * r))) / norm);
  }
  return h;
}

/** Modified Bessel function of the first kind, order 0 (power series). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const half = x / 2;
  for (let k = 1; k < 100; k++) {
    term *= (half / k) * (half / k);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return sum;
}

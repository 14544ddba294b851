/**
 * Streaming rational-ratio resampler for mono Int16 PCM: a polyphase FIR (Kaiser-windowed sinc)
 * that upsamples by L and decimates by M without ever building the zero-stuffed signal.
 *
 * Two designs:
 * - `telephony` (default for bridge rate <-> 24 kHz): linear-phase filters whose stopband starts
 *   where an image or alias would land inside the telephone passband (8000 - 3400 = 4600 Hz for the
 *   8 kHz bridge, 16000 - 7000 = 9000 Hz for 16 kHz) and reaches below Int16 rounding noise there
 *   (about -99 dB), passband ripple about 0.0002 dB, group delay 2.75 ms (8 kHz) and 1.625 ms
 *   (16 kHz): deeper, flatter and quicker than speexdsp quality 5 with fewer multiply-adds.
 * - `offline` (default for every other pair, e.g. WAV files at load time): alias-free up to the
 *   lower Nyquist, 80 dB stopband, latency does not matter.
 *
 * The filter is designed here, once, in TypeScript; the per-sample work runs in a
 * {@link ResamplerKernel}. The built-in kernel ({@link jsResamplerKernel}) is the reference
 * implementation; a faster one (the native addon's) can be injected through
 * {@link ResamplerOptions.kernel} and must give the same samples within one LSB.
 */

/** Which filter family a {@link Resampler} uses. */
export type ResamplerDesignName = 'telephony' | 'offline';

/** Options for {@link Resampler.create}. */
export interface ResamplerOptions {
  /** Filter family; default `telephony` for 8000/16000 <-> 24000, `offline` otherwise. */
  design?: ResamplerDesignName;
  /** Builds the engine that runs the filter; default {@link jsResamplerKernel}. */
  kernel?: ResamplerKernelFactory;
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

/**
 * Everything a {@link ResamplerKernel} needs to run a design: the polyphase table and the stream
 * geometry. Kernels must keep these exact sample semantics: output n is the dot product of branch
 * `phase` with the `tapsPerPhase` newest input samples up to `pos`, after which `phase += down` and
 * every wrap past `up` advances `pos` by one; history starts as zeros.
 */
export interface ResamplerKernelSpec {
  /** Interpolation factor L (number of polyphase branches). */
  readonly up: number;
  /** Decimation factor M. */
  readonly down: number;
  /** Taps per branch K; at least `ceil(down / up) + 1`. */
  readonly tapsPerPhase: number;
  /** Linear-phase delay in intermediate-rate samples (`(taps - 1) / 2`, an integer): what flush() owes. */
  readonly delay: number;
  /** `up * tapsPerPhase` coefficients, branch by branch, each branch oldest input first. */
  readonly coefficients: Float64Array;
}

/** The per-sample engine of a {@link Resampler}: one stream's history and position. */
export interface ResamplerKernel {
  /**
   * Consume `input`, write every output it completes to the start of `out`, return how many.
   * @throws RangeError when `out` is too small for them or overlaps `input` (nothing is consumed then).
   */
  process(input: Int16Array, out: Int16Array): number;
  /**
   * End the stream: write the filter's tail (at most `ceil(delay / down) + 1` samples) to `out`,
   * return how many, and start over as after {@link reset}.
   * @throws RangeError when `out` is too small (the stream is left as it was).
   */
  flush(out: Int16Array): number;
  /** Forget all history: the next sample starts a new stream. */
  reset(): void;
  /** Output samples that saturated at the Int16 limits since creation. */
  readonly clippedSamples: number;
}

/** Builds a {@link ResamplerKernel} for a design (the JS reference, or the native addon's). */
export type ResamplerKernelFactory = (spec: ResamplerKernelSpec) => ResamplerKernel;

/** Largest polyphase table accepted (coefficients); rate pairs needing more are rejected. */
export const MAX_RESAMPLER_COEFFICIENTS = 1 << 20;

/** Input samples a kernel takes in one internal pass: bounds its buffer whatever the chunk size. */
export const RESAMPLER_BLOCK_SAMPLES = 1024;

// Kaiser designs tuned (taps, beta) for a stopband below Int16 rounding noise from the stopband
// edge on, passband ripple under 0.001 dB, and (taps - 1) / 2 divisible by both decimation factors
// so the delay is a whole number of output samples in each direction.
const TELEPHONY_8K = { taps: 133, beta: 10.25, passbandHz: 3400, stopbandHz: 4600 };
const TELEPHONY_16K = { taps: 157, beta: 10.0, passbandHz: 7000, stopbandHz: 9000 };
const OFFLINE_ATTENUATION_DB = 80;
/** Allocating process() calls up to this many output samples go through one reused scratch buffer. */
const SCRATCH_SAMPLES = 8192;

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
  /** Half the prototype length in intermediate-rate samples (the linear-phase delay). */
  readonly #delayHigh: number;
  /** Undefined for pass-through. */
  readonly #kernel: ResamplerKernel | undefined;
  #scratch: Int16Array | undefined;

  private constructor(fromRate: number, toRate: number, design: ResamplerDesign, kernel: ResamplerKernel | undefined) {
    this.fromRate = fromRate;
    this.toRate = toRate;
    this.design = design;
    this.#up = design.up;
    this.#down = design.down;
    this.#delayHigh = (design.taps - 1) / 2;
    this.#kernel = kernel;
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
    if (design.name === 'passthrough') return new Resampler(fromRate, toRate, design, undefined);
    const spec: ResamplerKernelSpec = {
      up: design.up,
      down: design.down,
      tapsPerPhase: design.tapsPerPhase,
      delay: (design.taps - 1) / 2,
      coefficients: coef,
    };
    return new Resampler(fromRate, toRate, design, (options.kernel ?? jsResamplerKernel)(spec));
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
    return this.#kernel ? this.#kernel.clippedSamples : 0;
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
    const kernel = this.#kernel;
    if (!kernel) {
      if (!out) return input.slice();
      if (out.length < input.length) throw tooSmall(out.length, input.length);
      out.set(input);
      return out.subarray(0, input.length);
    }
    if (out) return out.subarray(0, kernel.process(input, out));
    const max = this.maxOutputLength(input.length);
    if (max > SCRATCH_SAMPLES) {
      const dst = new Int16Array(max);
      return dst.slice(0, kernel.process(input, dst));
    }
    this.#scratch ??= new Int16Array(SCRATCH_SAMPLES);
    return this.#scratch.slice(0, kernel.process(input, this.#scratch));
  }

  /**
   * End the stream: emit the filter's tail (the last {@link delaySamples} of output that the
   * input still owes), then {@link reset}. Total output of a stream is then
   * `ceil((inputSamples * up + delay) / down)`, delay in intermediate-rate samples.
   */
  flush(): Int16Array {
    if (!this.#kernel) return new Int16Array(0);
    const dst = new Int16Array(Math.ceil(this.#delayHigh / this.#down) + 1);
    return dst.slice(0, this.#kernel.flush(dst));
  }

  /** Forget all history: the next sample starts a new stream. */
  reset(): void {
    this.#kernel?.reset();
  }
}

/**
 * The reference kernel, in JavaScript: Float64 history and coefficients, input taken in blocks of
 * {@link RESAMPLER_BLOCK_SAMPLES} so its buffer has a fixed size whatever the chunk size.
 */
export const jsResamplerKernel: ResamplerKernelFactory = (spec) => new JsResamplerKernel(spec);

class JsResamplerKernel implements ResamplerKernel {
  readonly #up: number;
  readonly #down: number;
  readonly #k: number;
  /** Per phase p, taps in input order oldest -> newest: coef[p*K + m] multiplies x[i - (K-1) + m]. */
  readonly #coef: Float64Array;
  readonly #delay: number;
  /** History (K-1 samples) followed by not-yet-consumed input, as float. */
  readonly #buf: Float64Array;
  /** Valid samples in #buf. */
  #fill: number;
  /** Index in #buf of the newest input sample the next output needs. */
  #pos: number;
  /** Polyphase branch of the next output. */
  #phase: number;
  #clipped = 0;

  constructor(spec: ResamplerKernelSpec) {
    checkSpec(spec);
    this.#up = spec.up;
    this.#down = spec.down;
    this.#k = spec.tapsPerPhase;
    this.#coef = spec.coefficients;
    this.#delay = spec.delay;
    // The flush tail appends up to ceil(delay/up)+1 zeros in one go; delay < up*K keeps that under K+1.
    this.#buf = new Float64Array(this.#k - 1 + Math.max(RESAMPLER_BLOCK_SAMPLES, Math.ceil(this.#delay / this.#up) + 1));
    this.#fill = this.#k - 1;
    this.#pos = this.#k - 1;
    this.#phase = 0;
  }

  get clippedSamples(): number {
    return this.#clipped;
  }

  process(input: Int16Array, out: Int16Array): number {
    const need = this.#count((this.#fill + input.length) * this.#up);
    if (out.length < need) throw tooSmall(out.length, need);
    // The input is read block by block while outputs are written: shared memory would be overwritten.
    if (need > 0 && input.length > 0 && out.buffer === input.buffer &&
        input.byteOffset < out.byteOffset + out.byteLength && out.byteOffset < input.byteOffset + input.byteLength) {
      throw new RangeError(`process(input, out) failed: out overlaps input [input:${input.length}, out:${out.length}]`);
    }
    let written = 0;
    for (let i = 0; i < input.length; i += RESAMPLER_BLOCK_SAMPLES) {
      const block = input.subarray(i, Math.min(input.length, i + RESAMPLER_BLOCK_SAMPLES));
      this.#append(block, 0);
      written = this.#run(this.#fill * this.#up, out, written);
    }
    return written;
  }

  flush(out: Int16Array): number {
    const end = this.#fill * this.#up + this.#delay;
    const need = this.#count(end);
    if (out.length < need) throw tooSmall(out.length, need);
    // Zeros stand in for the input after the end; they only feed the filter's trailing taps.
    this.#append(undefined, Math.ceil(this.#delay / this.#up) + 1);
    const written = this.#run(end, out, 0);
    this.reset();
    return written;
  }

  reset(): void {
    this.#buf.fill(0, 0, this.#k - 1);
    this.#fill = this.#k - 1;
    this.#pos = this.#k - 1;
    this.#phase = 0;
  }

  /** Outputs whose intermediate-rate time (relative to #buf) lies below `limit`. */
  #count(limit: number): number {
    const t0 = this.#pos * this.#up + this.#phase;
    return limit > t0 ? Math.ceil((limit - t0) / this.#down) : 0;
  }

  #append(input: Int16Array | undefined, zeros: number): void {
    const buf = this.#buf;
    const w = this.#fill;
    if (input) {
      for (let i = 0; i < input.length; i++) buf[w + i] = input[i];
      this.#fill = w + input.length;
    } else {
      buf.fill(0, w, w + zeros);
      this.#fill = w + zeros;
    }
  }

  /** Emit every output below `limit` into dst from `offset`; returns the new offset. */
  #run(limit: number, dst: Int16Array, offset: number): number {
    const up = this.#up;
    const down = this.#down;
    const k = this.#k;
    const coef = this.#coef;
    const buf = this.#buf;
    const end = offset + this.#count(limit);
    let pos = this.#pos;
    let phase = this.#phase;
    let clipped = 0;
    for (let n = offset; n < end; n++) {
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
    return end;
  }
}

/** Validate a kernel spec (every kernel takes the same ones). */
function checkSpec(spec: ResamplerKernelSpec): void {
  const { up, down, tapsPerPhase: k, delay, coefficients } = spec;
  const ctx = `[up:${up}, down:${down}, tapsPerPhase:${k}, delay:${delay}, coefficients:${coefficients.length}]`;
  if (![up, down, k, delay].every(Number.isInteger) || up < 1 || down < 1 || k < 1 || delay < 0) {
    throw new RangeError(`invalid resampler kernel spec ${ctx}`);
  }
  if (k < Math.ceil(down / up) + 1 || delay >= up * k || coefficients.length !== up * k || up * k > MAX_RESAMPLER_COEFFICIENTS) {
    throw new RangeError(`inconsistent resampler kernel spec ${ctx}`);
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

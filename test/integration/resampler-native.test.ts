/**
 * The addon's resampler kernel against the JavaScript reference kernel: the same design, the same
 * input in the same random chunks, the same samples within one LSB (float against Float64
 * arithmetic), flush and reset included; and the argument errors of the addon's Resampler class.
 */
import { jsResamplerKernel, Resampler, type ResamplerKernelSpec } from '../../src/audio/Resampler';
import { loadNativeBinding, nativeResamplerKernel } from '../../src/native/binding';
import type { NativeBinding } from '../../src/native/NativeBinding';

/** Deterministic pseudo-random source (LCG), so failures reproduce. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

/** Noise plus a loud sweep: exercises every branch, rounding and (at full scale) clipping. */
function signal(n: number, rate: number, seed: number): Int16Array {
  const rnd = lcg(seed);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    const v = 20000 * Math.sin(2 * Math.PI * (100 + 1500 * t) * t) + (rnd() * 2 - 1) * 12000;
    out[i] = Math.max(-32768, Math.min(32767, Math.round(v)));
  }
  return out;
}

/** Chunk sizes from 0 to 3000, so some chunks span several of the kernels' internal blocks. */
function chunkSizes(seed: number, count: number): number[] {
  const rnd = lcg(seed);
  return Array.from({ length: count }, () => {
    const r = rnd();
    return r < 0.1 ? 0 : r < 0.7 ? Math.floor(rnd() * 40) : Math.floor(rnd() * 3000);
  });
}

/** Feed `input` in the given chunks (cycled), then flush; returns every output sample in order. */
function runStream(r: Resampler, input: Int16Array, sizes: number[]): Int16Array {
  const parts: Int16Array[] = [];
  const out = new Int16Array(r.maxOutputLength(3000));
  let i = 0;
  for (let k = 0; i < input.length; k++) {
    const n = Math.min(sizes[k % sizes.length], input.length - i);
    parts.push(r.process(input.subarray(i, i + n), out).slice());
    i += n;
  }
  parts.push(r.flush());
  const total = parts.reduce((a, p) => a + p.length, 0);
  const all = new Int16Array(total);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return all;
}

function maxAbsDiff(a: Int16Array, b: Int16Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** The spec Resampler.create hands its kernel for a rate pair. */
function specFor(from: number, to: number): ResamplerKernelSpec {
  let spec: ResamplerKernelSpec | undefined;
  Resampler.create(from, to, { kernel: (s) => ((spec = s), jsResamplerKernel(s)) });
  return spec!;
}

let binding: NativeBinding;
beforeAll(() => {
  binding = loadNativeBinding();
});

describe('native resampler kernel', () => {
  describe.each([
    [8000, 24000],
    [24000, 8000],
    [16000, 24000],
    [24000, 16000],
    [44100, 16000],
  ])('%i -> %i', (from, to) => {
    it('matches the JavaScript kernel within one LSB for random signals in random chunks, flush included', () => {
      for (const seed of [1, 2, 3]) {
        const input = signal(from + Math.floor(lcg(seed)() * from), from, seed);
        const sizes = chunkSizes(seed * 7, 50);
        const js = runStream(Resampler.create(from, to), input, sizes);
        const native = runStream(Resampler.create(from, to, { kernel: nativeResamplerKernel }), input, sizes);
        expect(native.length).toBe(js.length);
        expect(maxAbsDiff(native, js)).toBeLessThanOrEqual(1);
        // Both kernels produce the whole, exactly sized stream.
        const { up, down, taps } = Resampler.create(from, to).design;
        expect(native.length).toBe(Math.ceil((input.length * up + (taps - 1) / 2) / down));
      }
    });

    it('starts over after reset() and after flush() exactly like a new stream', () => {
      const input = signal(3 * from, from, 9);
      const fresh = runStream(Resampler.create(from, to, { kernel: nativeResamplerKernel }), input, [441, 17]);
      const r = Resampler.create(from, to, { kernel: nativeResamplerKernel });
      r.process(signal(777, from, 10));
      r.reset();
      expect(Array.from(runStream(r, input, [441, 17]))).toEqual(Array.from(fresh));
      // runStream ended with flush(): the same resampler is a new stream again.
      expect(Array.from(runStream(r, input, [160, 3001]))).toEqual(Array.from(fresh));
    });

    it('counts the same clipped samples as the JavaScript kernel', () => {
      const x = new Int16Array(from);
      for (let i = 0; i < x.length; i++) x[i] = Math.floor((i * 50) / from) % 2 === 0 ? 32767 : -32768;
      const js = Resampler.create(from, to);
      const native = Resampler.create(from, to, { kernel: nativeResamplerKernel });
      js.process(x);
      native.process(x);
      expect(js.clippedSamples).toBeGreaterThan(0);
      // A sample sitting on the rounding boundary of the rail may go either way in float.
      expect(Math.abs(native.clippedSamples - js.clippedSamples)).toBeLessThanOrEqual(2);
    });
  });

  it('turns every 20 ms frame into exactly one 20 ms frame through Resampler', () => {
    for (const [from, to] of [[8000, 24000], [24000, 8000], [16000, 24000], [24000, 16000]]) {
      const r = Resampler.create(from, to, { kernel: nativeResamplerKernel });
      const frame = from / 50;
      const out = new Int16Array(r.maxOutputLength(frame));
      for (let f = 0; f < 20; f++) expect(r.process(signal(frame, from, f), out).length).toBe(to / 50);
    }
  });
});

/** The addon throws the process's own error classes (jest's sandbox has another realm's): compare names. */
function thrown(fn: () => unknown): { name: string; message: string } {
  try {
    fn();
  } catch (e) {
    return { name: (e as Error).name, message: (e as Error).message };
  }
  throw new Error('expected a throw');
}

describe('addon Resampler arguments', () => {
  const spec = (): ResamplerKernelSpec => specFor(8000, 24000);

  it('rejects a missing or non-object spec with TypeError', () => {
    // @ts-expect-error deliberately wrong
    expect(thrown(() => binding.createResampler(undefined))).toEqual({
      name: 'TypeError', message: 'Resampler(spec) failed: spec must be an object [spec:undefined]',
    });
    // @ts-expect-error deliberately wrong
    expect(thrown(() => binding.createResampler(3)).message).toMatch(/spec must be an object \[spec:number\]/);
  });

  it('rejects non-numeric geometry with TypeError naming the field', () => {
    // @ts-expect-error deliberately wrong
    expect(thrown(() => binding.createResampler({ ...spec(), up: '3' }))).toEqual({
      name: 'TypeError', message: 'Resampler(spec) failed: up must be a number [up:string]',
    });
    // @ts-expect-error deliberately wrong
    expect(thrown(() => binding.createResampler({ ...spec(), delay: undefined })).message).toMatch(/delay must be a number \[delay:undefined\]/);
  });

  it('rejects out-of-range or inconsistent geometry with RangeError and its context', () => {
    expect(thrown(() => binding.createResampler({ ...spec(), up: 1.5 }))).toEqual({
      name: 'RangeError', message: 'Resampler(spec) failed: up must be an integer in 1..1048576 [up:1.5]',
    });
    expect(thrown(() => binding.createResampler({ ...spec(), down: 0 })).message).toMatch(/down must be an integer in 1\.\.\d+ \[down:0\]/);
    const { tapsPerPhase, coefficients } = spec();
    expect(thrown(() => binding.createResampler({ ...spec(), tapsPerPhase: tapsPerPhase + 1 }))).toEqual({
      name: 'RangeError',
      message: `Resampler(spec) failed: coefficients must hold up * tapsPerPhase values [up:3, tapsPerPhase:${tapsPerPhase + 1}, coefficients:${coefficients.length}]`,
    });
    // Decimating by 9 with 3 branches needs 4 taps per branch.
    const short = { up: 3, down: 9, tapsPerPhase: 3, delay: 1, coefficients: new Float64Array(9) };
    expect(thrown(() => binding.createResampler(short))).toEqual({
      name: 'RangeError',
      message: 'Resampler(spec) failed: inconsistent resampler kernel spec [up:3, down:9, tapsPerPhase:3, delay:1, coefficients:9]',
    });
    expect(thrown(() => binding.createResampler({ ...spec(), delay: coefficients.length })).name).toBe('RangeError');
  });

  it('rejects coefficients of the wrong type or not finite', () => {
    const s = spec();
    // @ts-expect-error deliberately wrong
    expect(thrown(() => binding.createResampler({ ...s, coefficients: new Int16Array(s.coefficients.length) }))).toEqual({
      name: 'TypeError',
      message: 'Resampler(spec) failed: coefficients must be a Float64Array or Float32Array [coefficients:Int16Array]',
    });
    const bad = Float64Array.from(s.coefficients);
    bad[5] = NaN;
    expect(thrown(() => binding.createResampler({ ...s, coefficients: bad }))).toEqual({
      name: 'RangeError', message: 'Resampler(spec) failed: coefficients must be finite [index:5, value:NaN]',
    });
    expect(() => binding.createResampler({ ...s, coefficients: Float32Array.from(s.coefficients) })).not.toThrow();
  });

  it('rejects buffers that are not Int16Array with TypeError', () => {
    const r = binding.createResampler(spec());
    expect(thrown(() => r.process(new Float32Array(160) as unknown as Int16Array, new Int16Array(600)))).toEqual({
      name: 'TypeError', message: 'process(input, out) failed: input must be an Int16Array [input:Float32Array]',
    });
    // @ts-expect-error deliberately wrong
    expect(thrown(() => r.process(new Int16Array(160))).message).toMatch(/out must be an Int16Array \[out:undefined\]/);
    expect(thrown(() => r.flush([] as unknown as Int16Array))).toEqual({
      name: 'TypeError', message: 'flush(out) failed: out must be an Int16Array [out:Array]',
    });
  });

  it('rejects a too small output buffer with RangeError and consumes nothing', () => {
    const input = signal(160, 8000, 4);
    const a = binding.createResampler(spec());
    const b = binding.createResampler(spec());
    expect(thrown(() => a.process(input, new Int16Array(479)))).toEqual({
      name: 'RangeError', message: 'output buffer too small [length:479, needed:480]',
    });
    const outA = new Int16Array(480);
    const outB = new Int16Array(480);
    expect(a.process(input, outA)).toBe(480);
    b.process(input, outB);
    expect(Array.from(outA)).toEqual(Array.from(outB));
    expect(thrown(() => a.flush(new Int16Array(3))).message).toMatch(/output buffer too small \[length:3, needed:\d+\]/);
    const tailA = new Int16Array(100);
    const tailB = new Int16Array(100);
    expect(a.flush(tailA)).toBe(b.flush(tailB));
    expect(Array.from(tailA)).toEqual(Array.from(tailB));
  });

  it('rejects an output buffer that overlaps the input with RangeError', () => {
    const r = binding.createResampler(spec());
    const mem = new Int16Array(2000);
    expect(thrown(() => r.process(mem.subarray(0, 160), mem.subarray(100, 700)))).toEqual({
      name: 'RangeError', message: 'process(input, out) failed: out overlaps input [input:160, out:600]',
    });
    expect(r.process(mem.subarray(0, 160), mem.subarray(160, 760))).toBe(480);
  });
});

import {
  jsResamplerKernel,
  Resampler,
  type ResamplerKernel,
  type ResamplerKernelSpec,
} from '../../../src/audio/Resampler';
import { db, fitSine, rms } from '../../helpers/signal';
import { sineSamples } from '../../helpers/tone';

/** Deterministic pseudo-random Int16 noise (LCG), so failures reproduce. */
function noise(n: number, seed = 12345, amp = 20000): Int16Array {
  const out = new Int16Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = Math.round(((s / 0x100000000) * 2 - 1) * amp);
  }
  return out;
}

function runChunked(r: Resampler, input: Int16Array, sizes: number[]): Int16Array {
  const parts: Int16Array[] = [];
  let i = 0;
  let k = 0;
  while (i < input.length) {
    const n = Math.min(sizes[k++ % sizes.length], input.length - i);
    parts.push(r.process(input.subarray(i, i + n)));
    i += n;
  }
  parts.push(r.flush());
  const total = parts.reduce((a, p) => a + p.length, 0);
  const out = new Int16Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const PAIRS: [number, number][] = [
  [8000, 24000],
  [24000, 8000],
  [16000, 24000],
  [24000, 16000],
];

/**
 * Per bridge rate: the passband, the group delay the design may not exceed (well under speexdsp
 * quality 5's 5 ms at 8 kHz and 2.5 ms at 16 kHz), and speexdsp quality 5's multiply-adds per
 * output up / down, which the telephony designs must stay under.
 */
const BAND: Record<number, { pass: number; maxDelayMs: number; q5MacsUp: number; q5MacsDown: number }> = {
  8000: { pass: 3400, maxDelayMs: 2.8, q5MacsUp: 80, q5MacsDown: 240 },
  16000: { pass: 7000, maxDelayMs: 1.7, q5MacsUp: 80, q5MacsDown: 120 },
};

/** The spec Resampler.create hands its kernel factory. */
function specFor(from: number, to: number): ResamplerKernelSpec {
  let spec: ResamplerKernelSpec | undefined;
  Resampler.create(from, to, { kernel: (s) => ((spec = s), jsResamplerKernel(s)) });
  return spec!;
}

/** Magnitude response (dB, unit DC gain) of the prototype a polyphase table came from, at `f` Hz. */
function responseDb(spec: ResamplerKernelSpec, highRate: number, f: number): number {
  const { up, tapsPerPhase: k, coefficients } = spec;
  let re = 0;
  let im = 0;
  for (let p = 0; p < up; p++) {
    for (let j = 0; j < k; j++) {
      // Branch p weighs x[i - j] by h[p + up*j], stored oldest first.
      const c = coefficients[p * k + (k - 1 - j)];
      const w = (2 * Math.PI * f * (p + up * j)) / highRate;
      re += c * Math.cos(w);
      im -= c * Math.sin(w);
    }
  }
  return db(Math.hypot(re, im) / up);
}

describe('Resampler', () => {
  describe.each(PAIRS)('%i -> %i', (from, to) => {
    const bridge = Math.min(from, to);

    it('gives identical output whether fed at once, in 20 ms frames or in odd chunks', () => {
      const input = noise(from); // one second
      const whole = runChunked(Resampler.create(from, to), input, [input.length]);
      const frames = runChunked(Resampler.create(from, to), input, [(from * 20) / 1000]);
      const odd = runChunked(Resampler.create(from, to), input, [1, 7, 13, 161, 2, 997, 3]);
      const { up, down, taps } = Resampler.create(from, to).design;
      // A flushed stream holds every output up to the end of the input plus the filter delay.
      expect(whole.length).toBe(Math.ceil((input.length * up + (taps - 1) / 2) / down));
      expect(Buffer.from(frames.buffer).equals(Buffer.from(whole.buffer))).toBe(true);
      expect(Buffer.from(odd.buffer).equals(Buffer.from(whole.buffer))).toBe(true);
    });

    it('turns every 20 ms input frame into exactly one 20 ms output frame', () => {
      const r = Resampler.create(from, to);
      const frame = (from * 20) / 1000;
      const input = noise(frame * 10, 7);
      for (let f = 0; f < 10; f++) {
        expect(r.process(input.subarray(f * frame, (f + 1) * frame)).length).toBe((to * 20) / 1000);
      }
    });

    it('writes into a caller-supplied buffer and returns the same samples as allocating', () => {
      const a = Resampler.create(from, to);
      const b = Resampler.create(from, to);
      const input = noise(777, 99);
      const out = new Int16Array(b.maxOutputLength(input.length));
      const got = b.process(input, out);
      expect(got.buffer).toBe(out.buffer);
      expect(Array.from(got)).toEqual(Array.from(a.process(input)));
      expect(() => Resampler.create(from, to).process(input, new Int16Array(3))).toThrow(RangeError);
    });

    it('restarts from silence after reset()', () => {
      const r = Resampler.create(from, to);
      const input = noise(1000, 5);
      const first = r.process(input);
      r.process(noise(333, 6));
      r.reset();
      expect(Array.from(r.process(input))).toEqual(Array.from(first));
    });

    /** One sweep of passband tones, shared by the flatness and image checks (fits are the slow part). */
    let sweep: { freq: number; gainDb: number; spurDb: number }[] = [];
    beforeAll(() => {
      const freqs: number[] = [];
      for (let f = 50; f < BAND[bridge].pass; f += 100) freqs.push(f);
      freqs.push(BAND[bridge].pass);
      sweep = freqs.map((f) => {
        const y = Resampler.create(from, to).process(sineSamples(f, from, from / 4, 16000));
        const fit = fitSine(y, to, f, to / 10, to / 10);
        return { freq: f, gainDb: db(fit.amplitude / 16000), spurDb: db(fit.residualRms / (fit.amplitude / Math.SQRT2)) };
      });
    });

    it(`keeps the passband (0-${BAND[bridge].pass} Hz) flat within 0.001 dB`, () => {
      const gains = sweep.map((s) => s.gainDb);
      const ripple = Math.max(...gains) - Math.min(...gains);
      report(`${from}->${to} passband gain dB`, `min ${Math.min(...gains).toFixed(4)} max ${Math.max(...gains).toFixed(4)} ripple ${ripple.toFixed(4)}`);
      expect(gains.length).toBeGreaterThan(30);
      expect(ripple).toBeLessThan(0.001);
      expect(Math.max(...gains.map(Math.abs))).toBeLessThan(0.001);
    });

    if (to > from) {
      it('keeps images of passband content down at the Int16 rounding floor (below -88 dB)', () => {
        // Everything in the output that is not the tone itself is an image or rounding noise: the
        // input's and the output's rounding together sit near -89 dB, whatever the filter.
        const worst = Math.max(...sweep.map((s) => s.spurDb));
        report(`${from}->${to} worst image dB`, worst.toFixed(1));
        expect(worst).toBeLessThan(-88);
      });
    } else {
      it('keeps passband tones free of spurs, and aliases landing in the passband below -90 dB', () => {
        const spur = Math.max(...sweep.map((s) => s.spurDb));
        report(`${from}->${to} worst tone spur dB`, spur.toFixed(1));
        expect(spur).toBeLessThan(-88);
        // Input content at f aliases to |f - k*to|; what lands in 0..pass comes from [to - pass, from/2).
        let worst = -Infinity;
        for (let f = to - BAND[bridge].pass; f < from / 2; f += 100) {
          const y = Resampler.create(from, to).process(sineSamples(f, from, from / 4, 16000));
          worst = Math.max(worst, db(rms(y, to / 10, to / 10) / (16000 / Math.SQRT2)));
        }
        report(`${from}->${to} worst alias dB`, worst.toFixed(1));
        expect(worst).toBeLessThan(-90);
      });
    }

    it('delays the signal by its reported group delay, below speexdsp quality 5', () => {
      const r = Resampler.create(from, to);
      // One period (25 ms) is longer than the delay, so the fitted phase does not wrap.
      const f = 40;
      const y = r.process(sineSamples(f, from, (from * 3) / 10, 16000));
      const fit = fitSine(y, to, f, to / 10, to / 5);
      // Input is sin(wt); output is G sin(w(t - tau)), so the fitted phase is -w*tau.
      const measuredMs = (-fit.phase / (2 * Math.PI * f)) * 1000;
      report(`${from}->${to} group delay ms`, `${measuredMs.toFixed(3)} (reported ${r.delayMs.toFixed(3)}, ${r.delaySamples} output samples)`);
      expect(Math.abs(measuredMs - r.delayMs)).toBeLessThan(0.01);
      expect(Number.isInteger(r.delaySamples)).toBe(true);
      expect(r.delayMs).toBeLessThan(BAND[bridge].maxDelayMs);
    });

    it('does fewer multiply-adds per output than speexdsp quality 5', () => {
      const { tapsPerPhase } = Resampler.create(from, to).design;
      report(`${from}->${to} taps per output`, String(tapsPerPhase));
      expect(tapsPerPhase).toBeLessThan(to > from ? BAND[bridge].q5MacsUp : BAND[bridge].q5MacsDown);
    });

    it('designs a stopband below -95 dB and a passband flat within 0.001 dB (before Int16 rounding)', () => {
      const spec = specFor(from, to);
      const high = from * spec.up;
      const { passbandHz, stopbandHz } = Resampler.create(from, to).design;
      let stop = -Infinity;
      for (let f = stopbandHz; f <= high / 2; f += 10) stop = Math.max(stop, responseDb(spec, high, f));
      const gains: number[] = [];
      for (let f = 0; f <= passbandHz; f += 50) gains.push(responseDb(spec, high, f));
      report(`${from}->${to} designed stopband dB`, `${stop.toFixed(1)} from ${stopbandHz} Hz; ripple ${(Math.max(...gains) - Math.min(...gains)).toFixed(5)} dB`);
      expect(stop).toBeLessThan(-95);
      expect(Math.max(...gains) - Math.min(...gains)).toBeLessThan(0.001);
    });
  });

  it('places an upsampled impulse at its group delay', () => {
    const r = Resampler.create(8000, 24000);
    const x = new Int16Array(800);
    x[100] = 30000;
    const y = r.process(x);
    let peak = 0;
    for (let i = 1; i < y.length; i++) if (Math.abs(y[i]) > Math.abs(y[peak])) peak = i;
    expect(peak - 300).toBe(r.delaySamples);
  });

  it('passes 24000 -> 24000 through unchanged with no delay', () => {
    const r = Resampler.create(24000, 24000);
    const x = noise(480);
    const y = r.process(x);
    expect(y).not.toBe(x);
    expect(Array.from(y)).toEqual(Array.from(x));
    expect(r.delayMs).toBe(0);
    expect(r.flush().length).toBe(0);
  });

  it('saturates instead of wrapping and counts clipped samples', () => {
    const r = Resampler.create(8000, 24000);
    const x = new Int16Array(800);
    for (let i = 0; i < x.length; i++) x[i] = Math.floor(i / 40) % 2 === 0 ? 32767 : -32768;
    const y = r.process(x);
    expect(r.clippedSamples).toBeGreaterThan(0);
    // Gibbs overshoot after each edge must stick at the rail, not flip sign.
    const d = r.delaySamples;
    for (let i = d + 3 * 5; i < d + 3 * 35; i++) expect(y[i]).toBeGreaterThan(20000);
  });

  it('resamples other rate pairs with the offline design, same frame-independence', () => {
    const input = noise(44100, 3);
    const whole = runChunked(Resampler.create(44100, 16000), input, [input.length]);
    const frames = runChunked(Resampler.create(44100, 16000), input, [441, 17]);
    expect(Resampler.create(44100, 16000).design.name).toBe('offline');
    expect(Array.from(frames)).toEqual(Array.from(whole));
    const y = Resampler.create(44100, 8000).process(sineSamples(1000, 44100, 22050, 16000));
    const fit = fitSine(y, 8000, 1000, 2000, 1600);
    expect(Math.abs(db(fit.amplitude / 16000))).toBeLessThan(0.1);
    expect(db(fit.residualRms / (fit.amplitude / Math.SQRT2))).toBeLessThan(-70);
  });

  it('runs the injected kernel factory with the design table and returns what it writes', () => {
    const specs: ResamplerKernelSpec[] = [];
    const calls: string[] = [];
    const fake: ResamplerKernel = {
      process: (input, out) => (calls.push(`process ${input.length}`), out.fill(7, 0, 3), 3),
      flush: (out) => (calls.push('flush'), out.fill(9, 0, 2), 2),
      reset: () => void calls.push('reset'),
      clippedSamples: 42,
    };
    const r = Resampler.create(8000, 24000, { kernel: (s) => (specs.push(s), fake) });
    expect(specs).toHaveLength(1);
    const { up, down, tapsPerPhase, delay, coefficients } = specs[0];
    expect({ up, down, tapsPerPhase, delay }).toEqual({ up: 3, down: 1, tapsPerPhase: r.design.tapsPerPhase, delay: (r.design.taps - 1) / 2 });
    expect(coefficients).toHaveLength(up * tapsPerPhase);
    for (let p = 0; p < up; p++) {
      // Unit DC gain per branch, so a constant input leaves no image.
      const sum = coefficients.subarray(p * tapsPerPhase, (p + 1) * tapsPerPhase).reduce((a, c) => a + c, 0);
      expect(Math.abs(sum - 1)).toBeLessThan(1e-12);
    }
    expect(Array.from(r.process(new Int16Array(160)))).toEqual([7, 7, 7]);
    expect(Array.from(r.process(new Int16Array(160), new Int16Array(600)))).toEqual([7, 7, 7]);
    expect(Array.from(r.flush())).toEqual([9, 9]);
    r.reset();
    expect(r.clippedSamples).toBe(42);
    expect(calls).toEqual(['process 160', 'process 160', 'flush', 'reset']);
    // Pass-through needs no kernel at all.
    Resampler.create(24000, 24000, { kernel: (s) => (specs.push(s), fake) });
    expect(specs).toHaveLength(1);
  });

  it('consumes nothing when the output buffer is too small or overlaps the input', () => {
    const input = noise(160, 8);
    const a = Resampler.create(8000, 24000);
    const b = Resampler.create(8000, 24000);
    expect(() => a.process(input, new Int16Array(479))).toThrow(/output buffer too small \[length:479, needed:480\]/);
    const mem = new Int16Array(1000);
    mem.set(input);
    expect(() => a.process(mem.subarray(0, 160), mem.subarray(100, 700))).toThrow(/out overlaps input \[input:160, out:600\]/);
    expect(Array.from(a.process(input))).toEqual(Array.from(b.process(input)));
    expect(Array.from(a.flush())).toEqual(Array.from(b.flush()));
  });

  it('rejects inconsistent kernel specs', () => {
    const spec = specFor(8000, 24000);
    expect(() => jsResamplerKernel({ ...spec, tapsPerPhase: spec.tapsPerPhase + 1 })).toThrow(/inconsistent resampler kernel spec/);
    expect(() => jsResamplerKernel({ ...spec, delay: 1.5 })).toThrow(RangeError);
    expect(() => jsResamplerKernel({ up: 3, down: 9, tapsPerPhase: 3, delay: 1, coefficients: new Float64Array(9) })).toThrow(
      /inconsistent resampler kernel spec \[up:3, down:9, tapsPerPhase:3, delay:1, coefficients:9\]/,
    );
  });

  it('rejects rates it cannot resample', () => {
    expect(() => Resampler.create(0, 8000)).toThrow(RangeError);
    expect(() => Resampler.create(8000.5, 8000)).toThrow(RangeError);
    expect(() => Resampler.create(47999, 8000)).toThrow(/too large a filter table/);
    expect(() => Resampler.create(44100, 8000, { design: 'telephony' })).toThrow(RangeError);
  });
});

/** Measured figures go to stderr only when asked for (AUDIO_FIGURES=1), so test output stays quiet. */
function report(what: string, value: string): void {
  if (process.env.AUDIO_FIGURES) process.stderr.write(`${what}: ${value}\n`);
}

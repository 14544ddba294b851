import { Resampler } from '../../../src/audio/Resampler';
import { db, fitSine, rms, tone } from '../../helpers/signal';

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

/** Band edges per bridge rate: passband, and where images/aliases must be 60 dB down. */
const BAND: Record<number, { pass: number }> = { 8000: { pass: 3400 }, 16000: { pass: 7000 } };

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
        const y = Resampler.create(from, to).process(tone(f, from, from / 4));
        const fit = fitSine(y, to, f, to / 10, to / 10);
        return { freq: f, gainDb: db(fit.amplitude / 16000), spurDb: db(fit.residualRms / (fit.amplitude / Math.SQRT2)) };
      });
    });

    it(`keeps the passband (0-${BAND[bridge].pass} Hz) flat within 0.5 dB`, () => {
      const gains = sweep.map((s) => s.gainDb);
      const ripple = Math.max(...gains) - Math.min(...gains);
      report(`${from}->${to} passband gain dB`, `min ${Math.min(...gains).toFixed(4)} max ${Math.max(...gains).toFixed(4)} ripple ${ripple.toFixed(4)}`);
      expect(gains.length).toBeGreaterThan(30);
      expect(Math.max(...gains.map(Math.abs))).toBeLessThan(0.5);
    });

    if (to > from) {
      it('keeps images of passband content at least 60 dB down', () => {
        // Everything in the output that is not the tone itself is an image (or rounding noise, ~-94 dB).
        const worst = Math.max(...sweep.map((s) => s.spurDb));
        report(`${from}->${to} worst image dB`, worst.toFixed(1));
        expect(worst).toBeLessThan(-60);
      });
    } else {
      it('keeps passband tones free of spurs and aliases landing in the passband at least 60 dB down', () => {
        expect(Math.max(...sweep.map((s) => s.spurDb))).toBeLessThan(-60);
        // Input content at f aliases to |f - k*to|; what lands in 0..pass comes from [to - pass, from/2).
        let worst = -Infinity;
        for (let f = to - BAND[bridge].pass; f < from / 2; f += 100) {
          const y = Resampler.create(from, to).process(tone(f, from, from / 4));
          worst = Math.max(worst, db(rms(y, to / 10, to / 10) / (16000 / Math.SQRT2)));
        }
        report(`${from}->${to} worst alias dB`, worst.toFixed(1));
        expect(worst).toBeLessThan(-60);
      });
    }

    it('delays the signal by its reported group delay, under 2 ms', () => {
      const r = Resampler.create(from, to);
      const f = 200;
      const y = r.process(tone(f, from, (from * 3) / 10));
      const fit = fitSine(y, to, f, to / 10, to / 5);
      // Input is sin(wt); output is G sin(w(t - tau)), so the fitted phase is -w*tau.
      const measuredMs = (-fit.phase / (2 * Math.PI * f)) * 1000;
      report(`${from}->${to} group delay ms`, `${measuredMs.toFixed(3)} (reported ${r.delayMs.toFixed(3)}, ${r.delaySamples} output samples)`);
      expect(Math.abs(measuredMs - r.delayMs)).toBeLessThan(0.01);
      expect(r.delayMs).toBeLessThan(2);
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
    const y = Resampler.create(44100, 8000).process(tone(1000, 44100, 22050));
    const fit = fitSine(y, 8000, 1000, 2000, 1600);
    expect(Math.abs(db(fit.amplitude / 16000))).toBeLessThan(0.1);
    expect(db(fit.residualRms / (fit.amplitude / Math.SQRT2))).toBeLessThan(-70);
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

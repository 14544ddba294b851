import { Histogram, quantileOf } from '../../../src/util/Histogram';

describe('Histogram', () => {
  test('counts each value in the first bucket whose bound it does not exceed', () => {
    const h = new Histogram([1, 2, 5]);
    for (const v of [0, 1, 1.5, 2, 4.9, 5, 7]) h.observe(v);
    expect(h.counts()).toEqual([2, 2, 2, 1]);
    expect(h.cumulative()).toEqual([2, 4, 6]);
    expect(h.count).toBe(7);
    expect(h.sum).toBeCloseTo(21.4);
    expect(h.max).toBe(7);
  });

  test('ignores NaN and infinities (an unknown time is not a measurement)', () => {
    const h = new Histogram([1]);
    h.observe(Number.NaN);
    h.observe(Number.POSITIVE_INFINITY);
    expect(h.count).toBe(0);
    expect(h.max).toBeNaN();
    expect(h.quantile(0.5)).toBeNaN();
  });

  test('interpolates quantiles inside a bucket and never reports above the maximum', () => {
    const h = new Histogram([10, 20, 30]);
    for (let i = 0; i < 100; i++) h.observe(10 + (i % 10) + 0.5); // all in (10, 20]
    expect(h.quantile(0.5)).toBeCloseTo(15, 5);
    expect(h.quantile(0.99)).toBeLessThanOrEqual(h.max);
    expect(h.quantile(1)).toBe(19.5);
  });

  test('the overflow bucket ends at the maximum', () => {
    const h = new Histogram([1]);
    h.observe(0.5);
    h.observe(100);
    expect(h.quantile(1)).toBe(100);
    expect(quantileOf([1], [1, 1], 1)).toBe(1);
  });

  test('rejects bounds that are not strictly ascending', () => {
    expect(() => new Histogram([])).toThrow(RangeError);
    expect(() => new Histogram([1, 1])).toThrow(/strictly ascending \[index:1, bound:1\]/);
    expect(() => new Histogram([Number.NaN])).toThrow(RangeError);
  });
});

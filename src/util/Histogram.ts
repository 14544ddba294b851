/**
 * A cumulative histogram with fixed bucket bounds: O(log buckets) per observation, no allocation,
 * never reset (readers take differences, the Prometheus way). Quantiles are read from the buckets
 * with linear interpolation inside the bucket, so they are exact to a bucket's width; the maximum
 * is exact.
 */
export class Histogram {
  /** Upper bounds of the buckets, ascending; values above the last land in the overflow bucket. */
  readonly bounds: readonly number[];
  readonly #counts: Float64Array;
  #count = 0;
  #sum = 0;
  #max = Number.NEGATIVE_INFINITY;

  /** @throws RangeError when the bounds are empty, not finite or not strictly ascending. */
  constructor(bounds: readonly number[]) {
    if (bounds.length === 0) throw new RangeError('a histogram needs at least one bucket bound');
    for (let i = 0; i < bounds.length; i++) {
      if (!Number.isFinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
        throw new RangeError(`histogram bounds must be finite and strictly ascending [index:${i}, bound:${bounds[i]}]`);
      }
    }
    this.bounds = [...bounds];
    this.#counts = new Float64Array(bounds.length + 1);
  }

  /** Record one value (NaN and infinities are ignored: an unknown time is not a measurement). */
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const b = this.bounds;
    let lo = 0;
    let hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (value <= b[mid]) hi = mid;
      else lo = mid + 1;
    }
    this.#counts[lo]++;
    this.#count++;
    this.#sum += value;
    if (value > this.#max) this.#max = value;
  }

  /** Observations so far. */
  get count(): number {
    return this.#count;
  }

  /** Sum of the observations. */
  get sum(): number {
    return this.#sum;
  }

  /** Largest observation (NaN before the first). */
  get max(): number {
    return this.#count === 0 ? Number.NaN : this.#max;
  }

  /** Per-bucket counts (not cumulative); the last entry is the overflow bucket. A copy. */
  counts(): number[] {
    return Array.from(this.#counts);
  }

  /** Cumulative counts per bound, as Prometheus `le` buckets want them (overflow excluded). */
  cumulative(): number[] {
    const out = new Array<number>(this.bounds.length);
    let acc = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      acc += this.#counts[i];
      out[i] = acc;
    }
    return out;
  }

  /** The q-quantile (0..1), NaN when empty. See {@link quantileOf}. */
  quantile(q: number): number {
    return quantileOf(this.bounds, this.counts(), q, this.max);
  }
}

/**
 * The q-quantile of bucketed counts (`counts[i]` in `(bounds[i-1], bounds[i]]`, the last entry above
 * every bound), interpolated linearly inside the bucket; the lowest bucket starts at 0 and the
 * overflow bucket ends at `max` (or reports the last bound when `max` is unknown). NaN when empty.
 */
export function quantileOf(bounds: readonly number[], counts: readonly number[], q: number, max = Number.NaN): number {
  const total = counts.reduce((s, c) => s + c, 0);
  if (total <= 0) return Number.NaN;
  const rank = Math.min(1, Math.max(0, q)) * total;
  let acc = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i];
    if (c <= 0) continue;
    if (acc + c >= rank) {
      const lo = i === 0 ? 0 : bounds[i - 1];
      const hi = i < bounds.length ? bounds[i] : Number.isFinite(max) ? max : bounds[bounds.length - 1];
      const v = lo + ((hi - lo) * Math.max(0, rank - acc)) / c;
      return Number.isFinite(max) ? Math.min(v, max) : v;
    }
    acc += c;
  }
  return Number.isFinite(max) ? max : bounds[bounds.length - 1];
}

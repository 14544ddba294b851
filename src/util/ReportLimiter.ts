/**
 * Reports an event at most once per key (e.g. a source address) per interval, counting what it
 * held back, in bounded memory: beyond `maxKeys` the quietest keys are forgotten first, and a
 * forgotten key simply reports again.
 */
export class ReportLimiter {
  readonly #intervalMs: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  // Insertion order = order of last report (re-inserted on each report).
  readonly #keys = new Map<string, { last: number; suppressed: number }>();

  constructor(o: { intervalMs: number; maxKeys?: number; now?: () => number }) {
    this.#intervalMs = o.intervalMs;
    this.#maxKeys = o.maxKeys ?? 1024;
    this.#now = o.now ?? Date.now;
  }

  /** Whether to report this occurrence now, and how many were held back since the last report. */
  check(key: string): { report: boolean; suppressed: number } {
    const now = this.#now();
    const e = this.#keys.get(key);
    if (e && now - e.last < this.#intervalMs) {
      e.suppressed++;
      return { report: false, suppressed: 0 };
    }
    const suppressed = e?.suppressed ?? 0;
    this.#keys.delete(key);
    this.#keys.set(key, { last: now, suppressed: 0 });
    while (this.#keys.size > this.#maxKeys) this.#keys.delete(this.#keys.keys().next().value as string);
    return { report: true, suppressed };
  }

  /** Keys tracked now. */
  get size(): number {
    return this.#keys.size;
  }
}

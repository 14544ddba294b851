/**
 * Event-loop delay as a cumulative histogram: a 10 ms timer measures how late it fires. Unlike
 * `perf_hooks.monitorEventLoopDelay` as prom-client exports it (a p99 gauge reset by every scrape),
 * this never resets, so any number of scrapers can take differences over their own windows.
 */
import { Histogram } from '../util/Histogram';

/** Timer period, ms; it is subtracted, so the histogram holds lateness only. */
export const EVENT_LOOP_PROBE_MS = 10;

/** Bucket bounds, ms. */
export const EVENT_LOOP_BOUNDS_MS: readonly number[] = [0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1000, 2500, 5000];

/** A running event-loop delay probe (its timer does not keep the process alive). */
export class EventLoopDelay {
  /** Lateness of each timer firing, ms. */
  readonly histogram = new Histogram(EVENT_LOOP_BOUNDS_MS);
  #timer: NodeJS.Timeout | undefined;
  #expected = 0;

  /** Start probing now. */
  constructor() {
    this.#arm();
  }

  /** True after close(). */
  get closed(): boolean {
    return this.#timer === undefined;
  }

  /** Stop probing. Idempotent. */
  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    this.#expected = performance.now() + EVENT_LOOP_PROBE_MS;
    this.#timer = setTimeout(() => {
      this.histogram.observe(Math.max(0, performance.now() - this.#expected));
      this.#arm();
    }, EVENT_LOOP_PROBE_MS);
    this.#timer.unref();
  }
}

/**
 * The last hours of the daemon's health at coarse resolution, for the console's charts: a bounded
 * ring of samples, one per interval (default one minute, 360 kept: six hours). Counts are what
 * happened during the interval; latency quantiles are read from the difference of cumulative
 * histograms between the interval's ends, so nothing per observation is kept.
 */
import { Histogram, quantileOf } from '../util/Histogram';

/** Bounds of the turn-latency histogram kept here, ms. */
export const TURN_LATENCY_BOUNDS_MS: readonly number[] = [10, 25, 50, 100, 150, 200, 300, 400, 500, 600, 700, 800, 1000, 1250, 1500, 2000, 2500, 3000, 4000, 5000, 7500, 10000];

/** Quantiles of one interval (null when nothing was observed). */
export interface QuantileSample {
  /** Observations in the interval. */
  n: number;
  p50: number | null;
  p99: number | null;
}

/** One interval of health. */
export interface HealthSample {
  /** Start of the interval (ISO). */
  t: string;
  /** Most calls up at once during the interval. */
  activeCalls: number;
  /** Calls ended during the interval, by outcome (end reason). */
  calls: Record<string, number>;
  /** End of caller speech to first agent audio, ms. */
  turnLatencyMs: QuantileSample;
  /** Audio path added latency: caller packet to the AI socket, ms. */
  uplinkMs: QuantileSample;
  /** Audio path added latency: agent audio arrival to its first RTP sample, ms. */
  downlinkMs: QuantileSample;
  /** Gaps inside agent replies: the reply ran out of audio, and more of it came after silence was played. */
  underruns: number;
  /** How late the JS thread ran its probe timer, ms. */
  eventLoopDelayMs: QuantileSample & { max: number | null };
  /** Errors reported by or about the AI backend. */
  aiErrors: number;
}

/** GET /health/history. */
export interface HealthHistoryReport {
  intervalSec: number;
  /** Closed intervals, oldest first. */
  samples: HealthSample[];
  /** The interval in progress. */
  current: HealthSample;
}

/** The cumulative histograms read at interval ends. */
type TrackedKey = 'turn' | 'uplink' | 'downlink' | 'loop';

/** A cumulative histogram read at interval ends. */
interface Tracked {
  source: () => Histogram | undefined;
  prev: number[] | undefined;
}

/** Options of {@link HealthHistory}. */
export interface HealthHistoryOptions {
  /** Interval, ms (default 60 000). */
  intervalMs?: number;
  /** Intervals kept (default 360). */
  capacity?: number;
  /** Clock (tests). */
  now?: () => number;
}

/** The ring of health samples; see the module comment. */
export class HealthHistory {
  readonly intervalMs: number;
  readonly #capacity: number;
  readonly #now: () => number;
  readonly #ring: HealthSample[] = [];
  readonly #turn = new Histogram(TURN_LATENCY_BOUNDS_MS);
  readonly #tracked: Record<TrackedKey, Tracked>;
  #start: number;
  #active = 0;
  #maxActive = 0;
  #calls: Record<string, number> = {};
  #underruns = 0;
  #aiErrors = 0;

  constructor(opts: HealthHistoryOptions = {}) {
    this.intervalMs = Math.max(1, opts.intervalMs ?? 60_000);
    this.#capacity = Math.max(1, opts.capacity ?? 360);
    this.#now = opts.now ?? Date.now;
    this.#start = this.#now();
    this.#tracked = {
      turn: { source: () => this.#turn, prev: undefined },
      uplink: { source: () => undefined, prev: undefined },
      downlink: { source: () => undefined, prev: undefined },
      loop: { source: () => undefined, prev: undefined },
    };
    for (const t of Object.values(this.#tracked)) t.prev = t.source()?.counts();
  }

  /** Read the audio path's cumulative latency histograms (ms) at every interval end. */
  trackAudio(uplink: () => Histogram, downlink: () => Histogram): void {
    this.#track('uplink', uplink);
    this.#track('downlink', downlink);
  }

  /** Read the event-loop delay histogram (ms) at every interval end. */
  trackEventLoop(loop: () => Histogram): void {
    this.#track('loop', loop);
  }

  #track(k: Exclude<TrackedKey, 'turn'>, source: () => Histogram): void {
    this.#tracked[k] = { source, prev: source().counts() };
  }

  /** Calls up now. */
  activeCalls(n: number): void {
    if (!Number.isFinite(n) || n < 0) return;
    this.#active = Math.floor(n);
    if (this.#active > this.#maxActive) this.#maxActive = this.#active;
  }

  /** A call ended with `outcome`; the caller caps the distinct outcomes. */
  callEnded(outcome: string): void {
    this.#calls[outcome] = (this.#calls[outcome] ?? 0) + 1;
  }

  /** One turn latency, ms. */
  turnLatency(ms: number): void {
    this.#turn.observe(ms);
  }

  /** Underrun frames. */
  underruns(n: number): void {
    if (Number.isFinite(n) && n > 0) this.#underruns += n;
  }

  /** One AI error. */
  aiError(): void {
    this.#aiErrors += 1;
  }

  /** Close the interval in progress and start the next (the owner calls this every intervalMs). */
  roll(): void {
    this.#ring.push(this.#sample(true));
    if (this.#ring.length > this.#capacity) this.#ring.shift();
    this.#start = this.#now();
    this.#maxActive = this.#active;
    this.#calls = {};
    this.#underruns = 0;
    this.#aiErrors = 0;
  }

  /** The last `intervals` closed samples (default all) and the one in progress. */
  report(intervals = this.#capacity): HealthHistoryReport {
    const n = Math.max(0, Math.min(this.#capacity, Math.floor(intervals)));
    return { intervalSec: this.intervalMs / 1000, samples: n === 0 ? [] : this.#ring.slice(-n), current: this.#sample(false) };
  }

  #sample(advance: boolean): HealthSample {
    const q = (k: TrackedKey): QuantileSample & { max: number | null } => this.#quantiles(k, advance);
    const loop = q('loop');
    return {
      t: new Date(this.#start).toISOString(),
      activeCalls: this.#maxActive,
      calls: { ...this.#calls },
      turnLatencyMs: strip(q('turn')),
      uplinkMs: strip(q('uplink')),
      downlinkMs: strip(q('downlink')),
      underruns: this.#underruns,
      eventLoopDelayMs: loop,
      aiErrors: this.#aiErrors,
    };
  }

  #quantiles(k: TrackedKey, advance: boolean): QuantileSample & { max: number | null } {
    const t = this.#tracked[k];
    const h = t.source();
    if (!h) return { n: 0, p50: null, p99: null, max: null };
    const now = h.counts();
    const prev = t.prev ?? now.map(() => 0);
    const delta = now.map((c, i) => Math.max(0, c - (prev[i] ?? 0)));
    if (advance) t.prev = now;
    const n = delta.reduce((s, c) => s + c, 0);
    const round = (v: number): number | null => (Number.isFinite(v) ? Math.round(v * 10) / 10 : null);
    // The highest non-empty bucket's upper bound: the interval's maximum, to a bucket's width.
    let top = -1;
    for (let i = delta.length - 1; i >= 0; i--) {
      if (delta[i] > 0) {
        top = i;
        break;
      }
    }
    const max = top < 0 ? null : top < h.bounds.length ? h.bounds[top] : Number.isFinite(h.max) ? h.max : h.bounds[h.bounds.length - 1];
    return { n, p50: round(quantileOf(h.bounds, delta, 0.5)), p99: round(quantileOf(h.bounds, delta, 0.99)), max: max === null ? null : round(max) };
  }
}

function strip(s: QuantileSample & { max: number | null }): QuantileSample {
  return { n: s.n, p50: s.p50, p99: s.p99 };
}

/**
 * Prometheus metrics of the daemon, on a registry of their own (never prom-client's global one, so
 * two daemons in one process, or tests, do not collide). The daemon calls the methods; /metrics
 * renders {@link Metrics.text}. Label values that come from outside (outcomes, error codes, account
 * names) are bounded: past a fixed number of distinct values they are folded into `other`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Histogram as CumulativeHistogram } from '../util/Histogram';
import { EventLoopDelay } from './eventLoop';
import { HealthHistory } from './HealthHistory';

/** Prefix of every daemon metric. */
export const METRIC_PREFIX = 'sip_ai_agent_';

/** Token kinds counted by `sip_ai_agent_tokens_total{kind}`. `cached_input` is a subset of the input kinds. */
export type TokenKind = 'input_audio' | 'input_text' | 'cached_input' | 'output_audio' | 'output_text';

/** Usage fields as the AI session reports them (any subset). */
export interface TokenUsage {
  inputAudioTokens?: number;
  inputTextTokens?: number;
  cachedTokens?: number;
  outputAudioTokens?: number;
  outputTextTokens?: number;
  costUsd?: number;
}

/** The audio path's latency histograms (in ms; frames for the stale count), as the call manager keeps them. */
export interface AudioLatencySource {
  readonly uplinkMs: CumulativeHistogram;
  readonly jitterBufferMs: CumulativeHistogram;
  readonly downlinkMs: CumulativeHistogram;
  readonly bargeInCutoffMs: CumulativeHistogram;
  readonly bargeInStaleFrames: CumulativeHistogram;
  /** Measurements given up (their tick fell out of the native history), by kind. */
  readonly unmeasured: Readonly<Record<string, number>>;
}

interface SampleValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** A metric whose values are read from elsewhere at scrape time (prom-client renders `get()`). */
function external(name: string, help: string, type: 'histogram' | 'counter', values: () => SampleValue[]): object {
  const get = async () => ({ name, help, type, aggregator: 'sum', values: values() });
  return { name, help, type, aggregator: 'sum', get, reset: () => undefined };
}

/**
 * A histogram kept elsewhere (cumulative, never reset), rendered as a Prometheus histogram with
 * values multiplied by `scale` (ms -> seconds).
 */
function externalHistogram(name: string, help: string, source: () => CumulativeHistogram, scale: number): object {
  return external(name, help, 'histogram', () => {
    const h = source();
    const cum = h.cumulative();
    const bucket = `${name}_bucket`;
    const values: SampleValue[] = h.bounds.map((b, i) => ({ labels: { le: +(b * scale).toPrecision(6) }, value: cum[i], metricName: bucket }));
    values.push({ labels: { le: '+Inf' }, value: h.count, metricName: bucket });
    values.push({ labels: {}, value: h.sum * scale, metricName: `${name}_sum` });
    values.push({ labels: {}, value: h.count, metricName: `${name}_count` });
    return values;
  });
}

/** Options of {@link Metrics}. */
export interface MetricsOptions {
  /** Label every series with `instance_id` (a named instance among several). */
  instanceId?: string;
  /** Also export Node's process metrics (CPU, memory, event loop lag, GC); default true. */
  defaultMetrics?: boolean;
  /** Distinct values allowed per external label before folding into `other` (default 50). */
  maxLabelValues?: number;
  /** Interval of the in-memory health history, ms (default 60 000). */
  historyIntervalMs?: number;
  /** Intervals the health history keeps (default 360: six hours of minutes). */
  historyCapacity?: number;
}

const CONNECT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10];
const LATENCY_BUCKETS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 5, 10];

/** Folds label values beyond a cap into `other`, so a misbehaving peer cannot explode the series count. */
class LabelCap {
  readonly #seen = new Set<string>();
  constructor(readonly max: number) {}
  value(v: string): string {
    const s = (v || 'unknown').slice(0, 64);
    if (this.#seen.has(s)) return s;
    if (this.#seen.size >= this.max) return 'other';
    this.#seen.add(s);
    return s;
  }
  forget(v: string): void {
    this.#seen.delete(v);
  }
}

function positive(n: number): boolean {
  return typeof n === 'number' && Number.isFinite(n) && n > 0;
}

/** The daemon's metrics; see the module comment. */
export class Metrics {
  /** The registry /metrics renders. */
  readonly registry = new Registry();
  readonly #activeCalls: Gauge;
  readonly #callsTotal: Counter<'outcome'>;
  readonly #registration: Gauge<'account'>;
  readonly #registrarUp: Gauge<'account'>;
  readonly #connect: Histogram;
  readonly #latency: Histogram;
  readonly #bargeIns: Counter;
  readonly #truncates: Counter;
  readonly #aiErrors: Counter<'code'>;
  readonly #underruns: Counter;
  readonly #overflows: Counter;
  readonly #tokens: Counter<'kind'>;
  readonly #cost: Counter;
  readonly #reconnects: Counter;
  readonly #toolCalls: Counter<'kind' | 'outcome'>;
  readonly #outcomes: LabelCap;
  readonly #codes: LabelCap;
  readonly #accounts: LabelCap;
  readonly #loop: EventLoopDelay;
  readonly #beforeScrape: (() => void)[] = [];
  readonly #historyTimer: NodeJS.Timeout;
  /** The last hours at coarse resolution (GET /health/history). */
  readonly history: HealthHistory;
  #active = 0;

  /** Create the metrics on a fresh registry. */
  constructor(opts: MetricsOptions = {}) {
    const registers = [this.registry];
    if (opts.instanceId) this.registry.setDefaultLabels({ instance_id: opts.instanceId });
    const cap = opts.maxLabelValues ?? 50;
    this.#outcomes = new LabelCap(cap);
    this.#codes = new LabelCap(cap);
    this.#accounts = new LabelCap(cap);
    this.#activeCalls = new Gauge({ name: `${METRIC_PREFIX}active_calls`, help: 'Calls in progress', registers });
    this.#callsTotal = new Counter({
      name: `${METRIC_PREFIX}calls_total`,
      help: 'Calls ended, by outcome (completed, failed, rejected, missed, ...)',
      labelNames: ['outcome'],
      registers,
    });
    this.#registration = new Gauge({
      name: `${METRIC_PREFIX}registration_state`,
      help: 'SIP registration per account: 1 registered, 0 not',
      labelNames: ['account'],
      registers,
    });
    this.#registrarUp = new Gauge({
      name: `${METRIC_PREFIX}registrar_reachable`,
      help: 'Registrar answers OPTIONS keepalives, per account: 1 yes, 0 not since the last probe (unset: never probed)',
      labelNames: ['account'],
      registers,
    });
    this.#connect = new Histogram({
      name: `${METRIC_PREFIX}realtime_connect_seconds`,
      help: 'Time to open the AI session (WebSocket connect to session.updated), seconds',
      buckets: CONNECT_BUCKETS,
      registers,
    });
    this.#latency = new Histogram({
      name: `${METRIC_PREFIX}response_latency_seconds`,
      help: 'End of caller speech to first agent audio, seconds',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#bargeIns = new Counter({ name: `${METRIC_PREFIX}barge_ins_total`, help: 'Caller speech that interrupted the agent', registers });
    this.#truncates = new Counter({ name: `${METRIC_PREFIX}truncates_total`, help: 'Agent replies truncated after a barge-in', registers });
    this.#aiErrors = new Counter({
      name: `${METRIC_PREFIX}ai_errors_total`,
      help: 'Errors reported by or about the AI backend, by code',
      labelNames: ['code'],
      registers,
    });
    this.#underruns = new Counter({ name: `${METRIC_PREFIX}audio_underruns_total`, help: 'Gaps inside agent replies: the reply ran out of audio, and more of it came after silence was played', registers });
    this.#overflows = new Counter({ name: `${METRIC_PREFIX}audio_overflows_total`, help: 'Frames dropped because an audio ring was full', registers });
    this.#tokens = new Counter({
      name: `${METRIC_PREFIX}tokens_total`,
      help: 'AI tokens used, by kind (cached_input is a subset of the input kinds)',
      labelNames: ['kind'],
      registers,
    });
    this.#cost = new Counter({ name: `${METRIC_PREFIX}cost_usd_total`, help: 'Estimated AI cost, USD (from the configured price table)', registers });
    this.#reconnects = new Counter({ name: `${METRIC_PREFIX}ai_reconnects_total`, help: 'AI sessions reconnected or rotated mid-call', registers });
    this.#toolCalls = new Counter({
      name: `${METRIC_PREFIX}tool_calls_total`,
      help: 'Tool calls the model made, by kind (function: the agent runs it; mcp: the AI service calls a remote MCP server) and outcome (ok, error, refused: an MCP call the approval policy did not grant)',
      labelNames: ['kind', 'outcome'],
      registers,
    });
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.#loop = new EventLoopDelay();
    this.#register(
      externalHistogram(
        `${METRIC_PREFIX}event_loop_delay_seconds`,
        'How late the JS thread ran a 10 ms timer (never reset, unlike nodejs_eventloop_lag_*): the audio path is late by as much',
        () => this.#loop.histogram,
        1e-3,
      ),
    );
    this.history = new HealthHistory({ intervalMs: opts.historyIntervalMs, capacity: opts.historyCapacity });
    this.history.trackEventLoop(() => this.#loop.histogram);
    this.#historyTimer = setInterval(() => {
      // Live calls' counter growth is folded in first, as for a scrape.
      for (const fn of this.#beforeScrape) fn();
      this.history.roll();
    }, this.history.intervalMs);
    this.#historyTimer.unref();
  }

  /** Export the audio path's latency histograms (call once, with the call manager's). */
  trackAudioLatency(src: AudioLatencySource): void {
    this.history.trackAudio(() => src.uplinkMs, () => src.downlinkMs);
    const h = (suffix: string, help: string, pick: (s: AudioLatencySource) => CumulativeHistogram, scale = 1e-3): void =>
      this.#register(externalHistogram(`${METRIC_PREFIX}${suffix}`, help, () => pick(src), scale));
    h('audio_uplink_latency_seconds', 'Caller RTP packet arriving (jitter buffer included) to its input_audio_buffer.append written to the AI socket, seconds', (s) => s.uplinkMs);
    h('audio_jitter_buffer_seconds', 'Caller audio waiting in a call jitter buffer, sampled once a second per call, seconds', (s) => s.jitterBufferMs);
    h('audio_downlink_latency_seconds', 'Agent audio arriving (nothing queued before it) to its first sample sent in RTP, seconds', (s) => s.downlinkMs);
    h('barge_in_cutoff_seconds', 'speech_started to the first frame sent without the interrupted reply, seconds', (s) => s.bargeInCutoffMs);
    h('barge_in_stale_frames', 'Frames of the interrupted reply still sent after speech_started', (s) => s.bargeInStaleFrames, 1);
    this.#register(
      external(`${METRIC_PREFIX}audio_latency_unmeasured_total`, 'Latency measurements given up because the JS thread came too late to find their clock tick, by kind', 'counter', () =>
        Object.entries(src.unmeasured).map(([kind, value]) => ({ labels: { kind }, value })),
      ),
    );
  }

  /**
   * Export the refusals counted elsewhere (the message guard, the call manager), by reason:
   * forbidden (403), not_found (404), busy (486), draining (503), rate_limited (503 with
   * Retry-After) and dropped (unanswered). Call once.
   */
  trackRefusals(source: () => Record<string, number>): void {
    this.#register(
      external(
        `${METRIC_PREFIX}refused_total`,
        'Requests refused before a call started, by reason: forbidden (403), not_found (404), busy (486), draining (503), rate_limited (503 Retry-After), dropped (no answer)',
        'counter',
        () => Object.entries(source()).map(([reason, value]) => ({ labels: { reason }, value })),
      ),
    );
  }

  /** Run `fn` before every rendering (e.g. to add live calls' counter growth since the last scrape). */
  beforeScrape(fn: () => void): void {
    this.#beforeScrape.push(fn);
  }

  /** Stop the event-loop probe timer (the daemon is stopping). Idempotent. */
  close(): void {
    clearInterval(this.#historyTimer);
    this.#loop.close();
  }

  #register(metric: object): void {
    this.registry.registerMetric(metric as Parameters<Registry['registerMetric']>[0]);
  }

  /** Content-Type of {@link text}. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** A call began (ringing in or dialling out). */
  callStarted(): void {
    this.#active += 1;
    this.#activeCalls.set(this.#active);
    this.history.activeCalls(this.#active);
  }

  /** A call ended with `outcome` (e.g. `completed`, `failed`, `rejected`, `missed`). */
  callEnded(outcome: string): void {
    this.#active = Math.max(0, this.#active - 1);
    this.#activeCalls.set(this.#active);
    this.history.activeCalls(this.#active);
    const label = this.#outcomes.value(outcome);
    this.#callsTotal.inc({ outcome: label });
    this.history.callEnded(label);
  }

  /** Correct the active-call gauge from the call registry (in case a start or end went unreported). */
  setActiveCalls(n: number): void {
    if (!Number.isFinite(n) || n < 0) return;
    this.#active = Math.floor(n);
    this.#activeCalls.set(this.#active);
    this.history.activeCalls(this.#active);
  }

  /** An account's registration changed. */
  setRegistration(account: string, registered: boolean): void {
    this.#registration.set({ account: this.#accounts.value(account) }, registered ? 1 : 0);
  }

  /** The registrar of an account stopped answering keepalives, or answers again. */
  setRegistrarReachable(account: string, up: boolean): void {
    this.#registrarUp.set({ account: this.#accounts.value(account) }, up ? 1 : 0);
  }

  /** An account was removed (config reload): drop its series. */
  removeAccount(account: string): void {
    this.#registration.remove({ account });
    this.#registrarUp.remove({ account });
    this.#accounts.forget(account);
  }

  /** Time to open an AI session, ms. */
  observeConnect(ms: number): void {
    if (Number.isFinite(ms) && ms >= 0) this.#connect.observe(ms / 1000);
  }

  /** End of caller speech to first agent audio, ms. */
  observeResponseLatency(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.#latency.observe(ms / 1000);
    this.history.turnLatency(ms);
  }

  /** The caller interrupted the agent. */
  bargeIn(n = 1): void {
    if (positive(n)) this.#bargeIns.inc(n);
  }

  /** An agent reply was truncated. */
  truncate(n = 1): void {
    if (positive(n)) this.#truncates.inc(n);
  }

  /** The AI side reported or caused an error with `code` (e.g. `session_expired`, `connect_failed`). */
  aiError(code: string): void {
    this.#aiErrors.inc({ code: this.#codes.value(code) });
    this.history.aiError();
  }

  /** An AI session reconnected or rotated. */
  aiReconnect(n = 1): void {
    if (positive(n)) this.#reconnects.inc(n);
  }

  /** One finished tool call. */
  toolCall(kind: 'function' | 'mcp', outcome: 'ok' | 'error' | 'refused'): void {
    this.#toolCalls.inc({ kind, outcome });
  }

  /** Add underrun frames (e.g. the per-call counter's growth since the last report). */
  underruns(n: number): void {
    if (!positive(n)) return;
    this.#underruns.inc(n);
    this.history.underruns(n);
  }

  /** Add overflow (dropped) frames. */
  overflows(n: number): void {
    if (positive(n)) this.#overflows.inc(n);
  }

  /** Add tokens of one kind. */
  tokens(kind: TokenKind, n: number): void {
    if (positive(n)) this.#tokens.inc({ kind }, n);
  }

  /** Add estimated cost, USD. */
  cost(usd: number): void {
    if (positive(usd)) this.#cost.inc(usd);
  }

  /** Add one call's (or one response's) usage: every token kind and the cost. */
  addUsage(u: TokenUsage): void {
    this.tokens('input_audio', u.inputAudioTokens ?? 0);
    this.tokens('input_text', u.inputTextTokens ?? 0);
    this.tokens('cached_input', u.cachedTokens ?? 0);
    this.tokens('output_audio', u.outputAudioTokens ?? 0);
    this.tokens('output_text', u.outputTextTokens ?? 0);
    this.cost(u.costUsd ?? 0);
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    for (const fn of this.#beforeScrape) fn();
    return this.registry.metrics();
  }
}

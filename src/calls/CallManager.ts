/**
 * CallManager: admission and the registry of live calls. It listens to the user agent's incoming
 * calls and audio ticks, admits or refuses each call (draining 503, allow-list 403, capacity 486 or
 * the busy prompt), runs one {@link CallSession} per admitted call, places outbound calls, and
 * keeps what the admin API and the record store need: live calls, recent summaries, events and
 * metrics (counters as plain numbers plus timing figures).
 *
 * The daemon constructs it with the real UserAgent and AI backend; tests inject fakes.
 */
import { randomUUID } from 'node:crypto';
import { TypedEmitter } from '../util/TypedEmitter';
import { ReportLimiter } from '../util/ReportLimiter';
import { InvalidStateError } from '../util/errors';
import type { Logger } from '../logging/logger';
import { BackendHealth } from './BackendHealth';
import type { AiBackend } from '../ai/AiBackend';
import { emptyUsage, summarizeUsage, type UsageSummary } from '../ai/usage';
import type { SipAccount } from '../sip/SipAccount';
import { CallSession, type CallTimingMetric } from './CallSession';
import { resolveCallOptions, type CallManagerOptions, type ResolvedCallOptions } from './options';
import { AudioLatency } from './latency';
import { promptAt } from './prompts';
import { END_REASONS, type CallState, type EndReason } from './state';
import { emptyCounters, type CallAgent, type CallCounters, type CallInfo, type CallLeg, type CallSummary, type ToolUse, type TranscriptEntry } from './types';

/** Events of a {@link CallManager}. */
export type CallManagerEvents = {
  /** A call was admitted (inbound) or placed (outbound). */
  callStarted: [CallInfo];
  /** An admitted call ended; the summary is final (what a call record needs). */
  callEnded: [CallSummary];
  /** A call was refused at admission (503 draining, 403 not allowed, 486 busy or the busy prompt). */
  callRejected: [CallSummary];
  /** A live call changed state. */
  stateChange: [{ callId: string; state: CallState; prev: CallState }];
  /** A tool call of a live call finished. */
  toolUse: [{ callId: string; use: ToolUse }];
  /** A finished transcript line of a live call. */
  transcript: [{ callId: string; entry: TranscriptEntry }];
  /** A timing figure of a live call (feed a histogram). */
  timing: [{ callId: string; metric: CallTimingMetric; valueMs: number }];
  /** close() finished. */
  close: [];
};

/** Running figures of one timing metric. */
export interface TimingStats {
  count: number;
  sumMs: number;
  maxMs: number;
  lastMs: number;
}

/** Metrics snapshot: plain numbers for the admin module to expose. Counters are cumulative. */
export interface CallMetrics {
  callsActive: number;
  /** Admitted calls since start (inbound and outbound). */
  callsTotal: number;
  callsInbound: number;
  callsOutbound: number;
  callsRejected: { busy: number; forbidden: number; draining: number; error: number };
  /** Ended calls by reason (every reason present, 0 when none). */
  callsEnded: Record<EndReason, number>;
  /** Sums of the per-call counters over ended and live calls. */
  counters: CallCounters;
  /** AI errors by code (fatal and non-fatal; at most 64 codes, the rest under `other`). */
  aiErrors: Record<string, number>;
  timings: Record<CallTimingMetric, TimingStats>;
  draining: boolean;
}

/** Options of {@link CallManager.placeCall}. */
export interface PlaceCallOptions {
  /** Instructions for this call, used as they are (default: the configured template). */
  instructions?: string;
  /** Extra INVITE headers (e.g. `X-Campaign`). */
  headers?: Record<string, string>;
  /** Account to call from (default: calls.outboundAccount). */
  account?: SipAccount;
  /** Variables merged over the configured ones for this call's templates. */
  variables?: Record<string, string>;
  /** Play the greeting when answered (default false: the model speaks first). */
  playGreeting?: boolean;
}

/** What the manager needs. */
export interface CallManagerInit {
  /** The user agent (or a fake with the same face). */
  agent: CallAgent;
  backend: AiBackend;
  options: CallManagerOptions;
  logger: Logger;
  /** Call id generator (default: random UUIDs). */
  newId?: () => string;
  /** While the AI backend is down, probe it this often, ms (default 10 000). */
  probeIntervalMs?: number;
}

const MAX_ERROR_CODES = 64;
const BUSY_WAIT_SLACK_MS = 3000;
/** Refused calls are logged at most once per source per this interval (all are counted). */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

/** Admission, registry and metrics of calls. */
export class CallManager extends TypedEmitter<CallManagerEvents> {
  readonly #agent: CallAgent;
  readonly #backend: AiBackend;
  readonly #log: Logger;
  readonly #newId: () => string;
  #opts: ResolvedCallOptions;
  readonly #sessions = new Map<string, CallSession>();
  readonly #recent: CallSummary[] = [];
  #placing = 0;
  #busyPlaying = 0;
  #draining = false;
  #closing: Promise<void> | undefined;
  #closed = false;
  #idleWaiters: (() => void)[] = [];

  readonly #refusalReports = new ReportLimiter({ intervalMs: REFUSAL_LOG_INTERVAL_MS });
  /** What the SIP layer answers new INVITEs with on our behalf (0: it offers them to us). */
  #refusalCode: 0 | 486 | 503 = 0;
  /** Why OPTIONS probes are told 503 ('' = we take calls). */
  #unavailable = '';
  readonly #health: BackendHealth;
  readonly #m = {
    callsTotal: 0,
    callsInbound: 0,
    callsOutbound: 0,
    callsRejected: { busy: 0, forbidden: 0, draining: 0, error: 0 },
    callsEnded: Object.fromEntries(END_REASONS.map((r) => [r, 0])) as Record<EndReason, number>,
    endedCounters: emptyCounters(),
    aiErrors: {} as Record<string, number>,
    timings: {
      ai_connect_ms: zeroTiming(),
      ai_start_ms: zeroTiming(),
      turn_latency_ms: zeroTiming(),
    } as Record<CallTimingMetric, TimingStats>,
  };

  // Calls are set up one per event-loop turn: a burst of INVITEs arrives as one batch of events,
  // and setting them all up in one go (a few ms each) would hold up the audio of the calls
  // already up for as long. Between two set-ups the loop runs its I/O: audio ticks, AI sockets.
  readonly #incoming: CallLeg[] = [];
  #incomingScheduled = false;
  readonly #onIncoming = (call: CallLeg): void => {
    this.#incoming.push(call);
    this.#scheduleIncoming();
  };

  #scheduleIncoming(): void {
    if (this.#incomingScheduled || this.#incoming.length === 0) return;
    this.#incomingScheduled = true;
    setImmediate(() => {
      this.#incomingScheduled = false;
      const call = this.#incoming.shift();
      if (call) {
        try {
          this.#admitIncoming(call);
        } catch (err) {
          this.#log.error({ err }, 'incoming call set-up failed');
          void call.reject(500).catch(() => undefined);
        }
      }
      this.#scheduleIncoming();
    });
  }
  readonly #onTick = (): void => {
    for (const s of this.#sessions.values()) s.tick();
  };

  /** Subscribe to the agent's calls and ticks. @throws RangeError / ConfigError on bad options. */
  constructor(init: CallManagerInit) {
    super();
    this.#agent = init.agent;
    this.#backend = init.backend;
    this.#log = init.logger.child({ component: 'calls' });
    this.#newId = init.newId ?? randomUUID;
    this.#opts = this.#resolve(init.options);
    this.#agent.on('incomingCall', this.#onIncoming);
    this.#agent.on('tick', this.#onTick);
    this.#health = new BackendHealth(init.backend, this.#log.child({ component: 'ai-health' }), init.probeIntervalMs);
    this.#health.on('change', () => this.#updateRefusal());
  }

  /** Why the AI backend counts as unreachable (sessions failed and probes too), or undefined. */
  get backendDown(): string | undefined {
    return this.#health.down;
  }

  /** What the audio path adds in latency, over every call of this manager (feeds /metrics). */
  readonly audioLatency = new AudioLatency();

  /** Live calls. */
  get active(): number {
    return this.#sessions.size;
  }

  /** True once drain() or close() began: new calls are refused with 503. */
  get draining(): boolean {
    return this.#draining;
  }

  /** True once close() finished. */
  get closed(): boolean {
    return this.#closed;
  }

  /** A live call by id. */
  get(callId: string): CallSession | undefined {
    return this.#sessions.get(callId);
  }

  /** Resolve options; every call's bridge records into this manager's latency histograms. */
  #resolve(options: CallManagerOptions): ResolvedCallOptions {
    const resolved = resolveCallOptions(options);
    return { ...resolved, audio: { ...resolved.audio, latency: this.audioLatency } };
  }

  /** Counters of every live call, by call id (cheap: no snapshot of the rest of the call). */
  *liveCounters(): IterableIterator<[string, CallCounters]> {
    for (const [id, s] of this.#sessions) yield [id, s.counters];
  }

  /** Snapshots of the live calls. */
  list(): CallInfo[] {
    return [...this.#sessions.values()].map((s) => s.info());
  }

  /** Summaries of the most recent finished (and refused) calls, newest last (bounded). */
  recent(): CallSummary[] {
    return [...this.#recent];
  }

  /** Hang up a live call (reason `admin_hangup`); false when no such call. */
  async hangup(callId: string): Promise<boolean> {
    const s = this.#sessions.get(callId);
    if (!s) return false;
    await s.hangup('admin_hangup');
    return true;
  }

  /** Use new options for calls that start from now on (live calls keep theirs). @throws like the constructor. */
  reload(options: CallManagerOptions): void {
    this.#opts = this.#resolve(options);
    this.#updateRefusal();
    this.#log.info('call options reloaded (new calls only)');
  }

  /**
   * Call `uri` and run the same AI conversation on it. Resolves once the INVITE is out, with the
   * session (its `ended` event or the manager's `callEnded` tell how it went).
   * @throws InvalidStateError when draining, closed, at capacity or without an account; SipError from the user agent.
   */
  async placeCall(uri: string, opts: PlaceCallOptions = {}): Promise<CallSession> {
    if (this.#draining) throw new InvalidStateError(`placeCall() refused: ${this.#closing ? 'closed' : 'draining'} [uri:${uri}]`);
    const o = this.#opts;
    if (this.#sessions.size + this.#placing >= o.maxConcurrent) {
      throw new InvalidStateError(`placeCall() refused: at capacity [uri:${uri}, active:${this.#sessions.size}, max:${o.maxConcurrent}]`);
    }
    const account = opts.account ?? o.outboundAccount;
    if (!account) throw new InvalidStateError(`placeCall() needs an account (calls.outboundAccount or options.account) [uri:${uri}]`);
    this.#placing++;
    this.#updateRefusal();
    let leg: CallLeg;
    try {
      leg = await this.#agent.call(account, uri, opts.headers ? { headers: opts.headers } : {});
    } finally {
      this.#placing--;
      this.#updateRefusal();
    }
    const session = this.#startSession(leg, {
      ...(opts.instructions !== undefined ? { instructions: opts.instructions } : {}),
      ...(opts.variables ? { variables: opts.variables } : {}),
      playGreeting: opts.playGreeting ?? false,
    });
    if (!session) throw new InvalidStateError(`placeCall() failed to set up the call [uri:${uri}]`);
    return session;
  }

  /**
   * Stop taking calls (503), let live calls finish for up to `timeoutMs`, then play the goodbye
   * prompt to the rest and hang up (reason `shutdown`). Resolves when every call has ended.
   */
  async drain(timeoutMs: number = this.#opts.drainTimeoutMs): Promise<void> {
    this.#draining = true;
    this.#updateRefusal();
    if (this.#sessions.size > 0) {
      this.#log.info({ active: this.#sessions.size, timeoutMs }, 'draining: waiting for calls to finish');
      if (timeoutMs > 0) await Promise.race([this.#whenIdle(), sleep(timeoutMs)]);
    }
    const left = [...this.#sessions.values()];
    if (left.length > 0) this.#log.info({ calls: left.length }, 'drain timeout: ending the remaining calls');
    await Promise.all(left.map((s) => s.shutdown()));
  }

  /** Metrics snapshot. */
  metrics(): CallMetrics {
    const counters = { ...this.#m.endedCounters };
    for (const s of this.#sessions.values()) addCounters(counters, s.counters);
    return {
      callsActive: this.#sessions.size,
      callsTotal: this.#m.callsTotal,
      callsInbound: this.#m.callsInbound,
      callsOutbound: this.#m.callsOutbound,
      callsRejected: { ...this.#m.callsRejected },
      callsEnded: { ...this.#m.callsEnded },
      counters,
      aiErrors: { ...this.#m.aiErrors },
      timings: {
        ai_connect_ms: { ...this.#m.timings.ai_connect_ms },
        ai_start_ms: { ...this.#m.timings.ai_start_ms },
        turn_latency_ms: { ...this.#m.timings.turn_latency_ms },
      },
      draining: this.#draining,
    };
  }

  /** Refuse new calls, hang up live ones (no prompt), unsubscribe from the agent. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#draining = true;
      this.#updateRefusal();
      this.#health.close();
      await Promise.all([...this.#sessions.values()].map((s) => s.close()));
      this.#agent.off('incomingCall', this.#onIncoming);
      this.#agent.off('tick', this.#onTick);
      this.#closed = true;
      this.emit('close');
      this.removeAllListeners();
    })();
    return this.#closing;
  }

  // ---------------------------------------------------------------------------------------------

  #admitIncoming(call: CallLeg): void {
    const o = this.#opts;
    const id = this.#newId();
    const info = call.info;
    if (this.#draining) {
      this.#refuse(id, call, 'rejected_draining', 503);
      return;
    }
    if (o.allows && !safeAllows(o.allows, { uri: info.remoteUri, address: hostOf(info.srcAddress) }, this.#log)) {
      this.#refuse(id, call, 'rejected_forbidden', 403);
      return;
    }
    if (this.#sessions.size + this.#placing >= o.maxConcurrent) {
      const busy = o.prompts.busy;
      if (busy && this.#busyPlaying < o.maxConcurrent) {
        void this.#playBusy(id, call, promptAt(busy, call.sampleRate));
        return;
      }
      this.#refuse(id, call, 'rejected_busy', 486);
      return;
    }
    this.#startSession(call, {}, id);
  }

  #startSession(
    call: CallLeg,
    extra: { instructions?: string; variables?: Record<string, string>; playGreeting?: boolean },
    id: string = this.#newId(),
  ): CallSession | undefined {
    let session: CallSession;
    try {
      session = new CallSession({ id, call, backend: this.#backend, options: this.#opts, logger: this.#log, ...extra });
    } catch (err) {
      this.#log.error({ err, callId: id }, `call setup failed [callId:${id}]`);
      this.#m.callsRejected.error++;
      if (call.info.direction === 'inbound') void call.reject(500).catch(() => undefined);
      else void call.hangup().catch(() => undefined);
      return undefined;
    }
    this.#sessions.set(id, session);
    this.#updateRefusal();
    this.#m.callsTotal++;
    if (call.info.direction === 'inbound') this.#m.callsInbound++;
    else this.#m.callsOutbound++;
    session.on('stateChange', (state, prev) => this.emit('stateChange', { callId: id, state, prev }));
    session.on('transcript', (entry) => this.emit('transcript', { callId: id, entry }));
    session.on('toolUse', (use) => this.emit('toolUse', { callId: id, use }));
    session.on('timing', (t) => {
      const s = this.#m.timings[t.metric];
      s.count++;
      s.sumMs += t.valueMs;
      s.lastMs = t.valueMs;
      if (t.valueMs > s.maxMs) s.maxMs = t.valueMs;
      if (t.metric === 'ai_connect_ms') this.#health.ok();
      this.emit('timing', { callId: id, metric: t.metric, valueMs: t.valueMs });
    });
    session.on('aiError', (e) => {
      this.#countAiError(e.code);
      if (e.fatal) this.#health.failed(e.code);
    });
    session.on('ended', (summary) => this.#onEnded(id, summary));
    this.#log.info({ callId: id, direction: call.info.direction, from: call.info.remoteUri, active: this.#sessions.size }, 'call admitted');
    this.emit('callStarted', session.info());
    void session.start();
    return session;
  }

  #onEnded(id: string, summary: CallSummary): void {
    this.#sessions.delete(id);
    this.#updateRefusal();
    const reason = summary.endReason ?? 'error';
    this.#m.callsEnded[reason]++;
    addCounters(this.#m.endedCounters, summary.counters);
    this.#remember(summary);
    this.emit('callEnded', summary);
    if (this.#sessions.size === 0) for (const w of this.#idleWaiters.splice(0)) w();
  }

  /**
   * Keep the SIP layer's answer to new INVITEs in step with what we would say: while full (and no
   * busy prompt is configured) or draining, a flood of INVITEs is refused there, before any call
   * object exists, instead of one by one here.
   */
  #updateRefusal(): void {
    const o = this.#opts;
    const full = this.#sessions.size + this.#placing >= o.maxConcurrent;
    // A dispatcher's OPTIONS probe hears why no call should be sent here; INVITEs that still come
    // are answered as below (an unreachable backend gets the fallback prompt and onAiFailure).
    const unavailable = this.#draining ? 'Draining' : full ? `Full (${o.maxConcurrent} calls)` : (this.#health.down ?? '');
    if (unavailable !== this.#unavailable) {
      this.#unavailable = unavailable;
      try {
        this.#agent.setUnavailable?.(unavailable);
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'could not pass the availability to the SIP layer');
      }
    }
    const code = this.#draining ? 503 : full && !o.prompts.busy ? 486 : 0;
    if (code === this.#refusalCode) return;
    this.#refusalCode = code;
    try {
      this.#agent.setCallRefusal?.(code);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'could not pass the call refusal to the SIP layer');
    }
  }

  #refuse(id: string, call: CallLeg, reason: EndReason, status: number): void {
    const key = reason === 'rejected_busy' ? 'busy' : reason === 'rejected_forbidden' ? 'forbidden' : 'draining';
    this.#m.callsRejected[key]++;
    // A flood must not become a log flood: one line per source per interval, with the count held back.
    const src = hostOf(call.info.srcAddress) ?? call.info.srcAddress;
    const r = this.#refusalReports.check(src);
    if (r.report) {
      this.#log.info(
        { callId: id, from: call.info.remoteUri, src: call.info.srcAddress, status, heldBack: r.suppressed || undefined },
        `call refused [reason:${reason}, status:${status}]${r.suppressed ? ` (+${r.suppressed} more from ${src} since the last report)` : ''}`,
      );
    }
    void call.reject(status).catch((err: unknown) => this.#log.debug({ err: (err as Error).message }, 'reject failed'));
    const summary = this.#refusedSummary(id, call, reason, status);
    this.emit('callRejected', summary);
  }

  /** Over capacity with a busy prompt: answer, play it, hang up. No AI session. */
  async #playBusy(id: string, call: CallLeg, pcm: Int16Array): Promise<void> {
    this.#busyPlaying++;
    this.#m.callsRejected.busy++;
    const started = new Date();
    let answeredAt: Date | undefined;
    try {
      await call.answer();
      answeredAt = new Date();
      const accepted = call.writeAudio(pcm);
      const [, target] = call.txIndex();
      const deadline = Date.now() + (accepted * 1000) / call.sampleRate + BUSY_WAIT_SLACK_MS;
      while (!call.ended && call.txIndex()[0] < target && Date.now() < deadline) await sleep(100);
      if (!call.ended) await sleep(this.#opts.hangupTailMs);
      if (!call.ended) await call.hangup();
    } catch (err) {
      this.#log.debug({ callId: id, err: (err as Error).message }, 'busy prompt call failed');
    } finally {
      this.#busyPlaying--;
    }
    const summary = this.#refusedSummary(id, call, 'rejected_busy', call.end?.sipCode ?? 486, started, answeredAt);
    this.emit('callRejected', summary);
  }

  #refusedSummary(id: string, call: CallLeg, reason: EndReason, status: number, startedAt = new Date(), answeredAt?: Date): CallSummary {
    const i = call.info;
    const inbound = i.direction === 'inbound';
    const endedAt = new Date();
    return {
      callId: id,
      sipCallId: i.sipCallId,
      direction: i.direction,
      from: inbound ? i.remoteUri : i.localUri,
      to: inbound ? i.localUri : i.remoteUri,
      account: call.account.uri,
      remoteAddress: i.srcAddress,
      startedAt,
      ...(answeredAt ? { answeredAt } : {}),
      endedAt,
      durationMs: answeredAt ? endedAt.getTime() - answeredAt.getTime() : 0,
      endReason: reason,
      sipStatus: status,
      sipReason: '',
      endedBy: 'local',
      ai: { backend: this.#backend.name, ...(this.#opts.ai.model ? { model: this.#opts.ai.model } : {}), voice: this.#opts.ai.voice, format: this.#opts.ai.audioFormat },
      tools: [],
      usage: zeroUsage(),
      counters: emptyCounters(),
      transcript: [],
    };
  }

  #remember(summary: CallSummary): void {
    this.#recent.push(summary);
    while (this.#recent.length > this.#opts.recentCalls) this.#recent.shift();
  }

  #countAiError(code: string): void {
    const m = this.#m.aiErrors;
    const key = code in m || Object.keys(m).length < MAX_ERROR_CODES ? code : 'other';
    m[key] = (m[key] ?? 0) + 1;
  }

  #whenIdle(): Promise<void> {
    if (this.#sessions.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }
}

function safeAllows(allows: (c: { uri: string; address?: string }) => boolean, caller: { uri: string; address?: string }, log: Logger): boolean {
  try {
    return allows(caller);
  } catch (err) {
    // A broken allow-list must not open the door.
    log.error({ err }, 'allow-list check threw; refusing the call');
    return false;
  }
}

/** `1.2.3.4:5060` -> `1.2.3.4`, `[::1]:5060` -> `::1`. */
function hostOf(srcAddress: string): string | undefined {
  if (!srcAddress) return undefined;
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(srcAddress);
  if (v6) return v6[1];
  const colon = srcAddress.lastIndexOf(':');
  if (colon > 0 && srcAddress.indexOf(':') === colon) return srcAddress.slice(0, colon);
  return srcAddress;
}

function addCounters(into: CallCounters, add: CallCounters): void {
  for (const k of Object.keys(add) as (keyof CallCounters)[]) into[k] += add[k];
}

function zeroTiming(): TimingStats {
  return { count: 0, sumMs: 0, maxMs: 0, lastMs: 0 };
}

function zeroUsage(): UsageSummary {
  return summarizeUsage(emptyUsage());
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref?.();
  });
}

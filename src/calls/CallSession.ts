/**
 * CallSession: one phone call with the AI agent, from INVITE to call record.
 *
 * Inbound: the AI session is created and started at once, in parallel with 180 Ringing and the
 * answer, so connecting overlaps with ringing. With a greeting the call is answered after the ring
 * delay and the greeting plays while the AI comes up; without one the answer also waits for the AI
 * (bounded) and the model speaks first (`openingLine`). Never dead air: if the AI is still starting
 * when the greeting ends, the caller is heard as soon as it is up (their words wait in a bounded
 * queue). An AI that cannot start, or dies after its own reconnect attempt, gets the fallback prompt
 * and a hang-up (or a transfer).
 *
 * One state machine ({@link CallState}) with a single setter that logs and emits `stateChange`;
 * one ending path ({@link CallSession.end} internals) used by every reason, so prompt, drain, tail,
 * BYE, AI close and the summary always happen in the same order.
 */
import { performance } from 'node:perf_hooks';
import { TypedEmitter } from '../util/TypedEmitter';
import { AiSessionError, InvalidStateError, SipError } from '../util/errors';
import { callTemplateValues, type TemplateGroup, type TemplateValues } from '../util/template';
import type { Logger } from '../logging/logger';
import type { AiBackend } from '../ai/AiBackend';
import type { AiServerError, AiSession, ToolCallRecord, TranscriptEvent } from '../ai/types';
import type { TransferResult } from '../sip/types';
import { AudioBridge, type BargeInReport } from './AudioBridge';
import { canTransition, type CallState, type EndReason } from './state';
import type { ResolvedCallOptions } from './options';
import { promptAt } from './prompts';
import { endCallTool } from './tools/endCall';
import { transferCallTool } from './tools/transferCall';
import { webhookTool } from './tools/webhook';
import type { ToolHost } from './tools/host';
import { emptyCounters, type CallCounters, type CallInfo, type CallLeg, type CallRecorderSink, type CallSummary, type ToolUse, type TranscriptEntry } from './types';

/** Timing figures a call reports (for histograms in the admin module). */
export type CallTimingMetric =
  /** Realtime WebSocket connect, to `session.created`. */
  | 'ai_connect_ms'
  /** AI session start, to `session.updated` (configuration accepted). */
  | 'ai_start_ms'
  /** Caller stopped speaking (speech_stopped) to the first agent audio queued for playout. */
  | 'turn_latency_ms';

/** Events of a {@link CallSession}. */
export type CallSessionEvents = {
  stateChange: [next: CallState, prev: CallState];
  /** A finished transcript line (caller or agent speech, or a DTMF digit). */
  transcript: [TranscriptEntry];
  /** The caller spoke over the agent. */
  bargeIn: [BargeInReport];
  /** A timing figure. */
  timing: [{ metric: CallTimingMetric; valueMs: number }];
  /** An AI error: non-fatal server errors, and the fatal failure that ends the call. */
  aiError: [{ code: string; message: string; fatal: boolean }];
  /** A tool call finished. */
  toolUse: [ToolUse];
  /** The call is over; the summary is final. Emitted once, then listeners are dropped. */
  ended: [CallSummary];
};

/** What it takes to build a call session (the manager builds them). */
export interface CallSessionInit {
  /** Our call id. */
  id: string;
  call: CallLeg;
  backend: AiBackend;
  options: ResolvedCallOptions;
  logger: Logger;
  /** Instructions used as they are instead of the template (placeCall()). */
  instructions?: string;
  /** Variables merged over the configured ones for this call's templates. */
  variables?: Readonly<Record<string, string>>;
  /** Outbound: play the greeting once answered (default false: the model speaks first). */
  playGreeting?: boolean;
}

/** How the call is wound down. */
interface EndPlan {
  /** Drop queued agent audio first. */
  flush?: boolean;
  /** Play this before hanging up. */
  prompt?: Int16Array;
  /** Wait for queued audio to play before hanging up. */
  drain?: boolean;
  /** Keep the line open briefly after the last audio so the far end plays it out. */
  tail?: boolean;
  /** Transfer there (REFER) before hanging up. */
  transferTo?: string;
  /** Status for an unanswered inbound call (default 503). */
  rejectStatus?: number;
  /** Error text kept in the record. */
  error?: string;
}

const TRANSFER_TIMEOUT_MS = 30_000;
const CALL_END_WAIT_MS = 5000;
/** Drain waits get the queued audio's length plus this. */
const DRAIN_SLACK_MS = 3000;
const INTERRUPTED_CAP = 64;

/** One call with the AI agent. */
export class CallSession extends TypedEmitter<CallSessionEvents> {
  /** Our call id (also in every log line of the call). */
  readonly id: string;
  readonly call: CallLeg;
  readonly direction: 'inbound' | 'outbound';
  /** When the INVITE arrived (or was sent). */
  readonly startedAt = new Date();

  readonly #t0 = performance.now();
  readonly #opts: ResolvedCallOptions;
  readonly #log: Logger;
  readonly #ai: AiSession;
  readonly #bridge: AudioBridge;
  readonly #backendName: string;
  readonly #format: 'pcm' | 'pcmu' | 'pcma';
  readonly #values: TemplateValues;
  readonly #playGreeting: boolean;
  #state: CallState = { name: 'ringing' };
  #answeredAt: Date | undefined;
  #endedAt: Date | undefined;
  #started = false;
  #ending: Promise<void> | undefined;
  #endReason: EndReason | undefined;
  #endClaim: EndReason | undefined;
  #finished = false;
  #aiError: AiSessionError | undefined;
  #error: string | undefined;
  #rejectStatus: number | undefined;
  #transferredTo: string | undefined;
  #aiConnectMs: number | undefined;
  #aiStartMs: number | undefined;
  readonly #timers = new Set<NodeJS.Timeout>();
  #dtmfTimer: NodeJS.Timeout | undefined;
  readonly #transcript: TranscriptEntry[] = [];
  readonly #interrupted = new Map<string, number>();
  readonly #tools: ToolUse[] = [];
  readonly #c = { dtmfDigits: 0, toolCalls: 0, toolErrors: 0, aiErrors: 0, transcriptEvicted: 0 };
  /** Native ring counters, last read while the call was up. */
  #native = { rxDroppedSamples: 0, txOverflowSamples: 0 };
  #resolveStop!: () => void;
  /** Resolves when the call starts ending (any reason) or the far end hangs up. */
  readonly #stop = new Promise<void>((r) => (this.#resolveStop = r));
  #resolveCallEnded!: () => void;
  readonly #callEnded = new Promise<void>((r) => (this.#resolveCallEnded = r));
  readonly #onCallEnded = (): void => this.#callGone();
  readonly #onDtmf = (d: { digit: string }): void => this.#dtmf(d.digit);

  /** Build the session: AI session (not started), tools, audio bridge. Call start() next. */
  constructor(init: CallSessionInit) {
    super();
    this.id = init.id;
    this.call = init.call;
    this.direction = init.call.info.direction;
    this.#opts = init.options;
    this.#playGreeting = this.direction === 'inbound' || init.playGreeting === true;
    this.#log = init.logger.child({ callId: this.id });
    this.#backendName = init.backend.name;
    const rate = this.call.sampleRate;
    let format = this.#opts.ai.audioFormat;
    if (format !== 'pcm' && rate !== 8000) {
      this.#log.warn({ audioFormat: format, sampleRate: rate }, `G.711 passthrough needs an 8 kHz bridge; using pcm [audioFormat:${format}, sampleRate:${rate}]`);
      format = 'pcm';
    }
    this.#format = format;

    const info = this.call.info;
    const inbound = this.direction === 'inbound';
    this.#values = callTemplateValues({
      caller: inbound ? info.remoteUri : info.localUri,
      callee: inbound ? info.localUri : info.remoteUri,
      callId: this.id,
      headers: headerGroup(info.rawHeaders),
      variables: { ...this.#opts.variables, ...(init.variables ?? {}) },
      now: this.startedAt,
      timeZone: this.#opts.timeZone,
    });
    const instructions = init.instructions ?? this.#opts.instructions.render(this.#values);
    const p = this.#opts.prompt;
    const prompt = p && {
      id: p.id,
      ...(p.version !== undefined ? { version: p.version } : {}),
      variables: Object.fromEntries(Object.entries(p.variables).map(([k, t]) => [k, t.render(this.#values)])),
    };
    const { audioFormat: _f, model: _m, ...aiRest } = this.#opts.ai;
    const webhookMax = Math.max(0, ...this.#opts.webhooks.map((w) => w.timeoutMs ?? 5000));
    this.#ai = init.backend.createSession(
      {
        ...aiRest,
        instructions,
        ...(prompt ? { prompt } : {}),
        inputFormat: format,
        outputFormat: format,
        // A webhook allowed to run longer than the tool timeout would always be cut off.
        toolTimeoutMs: Math.max(aiRest.toolTimeoutMs ?? 20_000, webhookMax + 1000),
      },
      this.#log,
    );
    this.#registerTools();

    this.#bridge = new AudioBridge({
      call: this.call,
      session: this.#ai,
      aiFormat: format,
      logger: this.#log,
      recorder: this.#makeRecorder(),
      options: { ...this.#opts.audio, prebufferMs: this.#ai.playoutPrebufferMs ?? 0 },
    });
    this.#bridge.on('bargeIn', (r) => this.#onBargeIn(r));
    this.#bridge.on('turnLatency', (t) => this.emit('timing', { metric: 'turn_latency_ms', valueMs: t.latencyMs }));

    this.#ai.on('transcript', (t) => this.#onTranscript(t));
    this.#ai.on('toolCall', (r) => this.#onToolCall(r));
    this.#ai.on('error', (e) => this.#onAiServerError(e));
    this.#ai.on('died', (err) => this.#onAiFailure(err));
    // The reply watchdog: a turn ended or a response started, and the model must show signs of life.
    this.#ai.on('speechStopped', () => {
      if (this.#opts.ai.turnDetection?.createResponse !== false && this.#ai.repliesToEveryTurn !== false) this.#armReplyWatchdog('the caller finished speaking');
    });
    this.#ai.on('responseCreated', () => this.#armReplyWatchdog('a response started'));
    this.#ai.on('audio', this.#disarmReplyWatchdog);
    this.#ai.on('responseDone', this.#disarmReplyWatchdog);
    this.#ai.on('speechStarted', this.#disarmReplyWatchdog);
    this.#ai.on('reconnecting', this.#disarmReplyWatchdog);
    this.#ai.on('reconnected', (r) => this.#log.info({ reason: r.reason, durationMs: r.durationMs, reseeded: r.reseededItems }, 'AI session reconnected; the call goes on'));

    this.call.on('ended', this.#onCallEnded);
    this.call.on('dtmf', this.#onDtmf);
    if (this.call.ended) this.#callGone();
  }

  #makeRecorder(): CallRecorderSink | undefined {
    try {
      return this.#opts.recorder?.(this.info());
    } catch (err) {
      // A recording that cannot start must not cost the caller the call.
      this.#log.error({ err }, 'recorder could not start; the call goes on unrecorded');
      return undefined;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Public face

  /** Current state. */
  get state(): CallState {
    return this.#state;
  }

  /** True once the call has ended and its summary was emitted. */
  get closed(): boolean {
    return this.#finished;
  }

  /** When the call was answered. */
  get answeredAt(): Date | undefined {
    return this.#answeredAt;
  }

  /** The AI session of this call (read-only use: stats, usage, state). */
  get ai(): AiSession {
    return this.#ai;
  }

  /** Live counters. */
  get counters(): CallCounters {
    const b = this.#bridge.stats;
    const a = this.#ai.stats;
    return {
      ...emptyCounters(),
      bargeIns: b.bargeIns,
      bargeInsIgnored: b.bargeInsIgnored,
      truncates: b.truncates,
      underruns: b.underruns,
      playoutDroppedSamples: b.playoutDroppedSamples,
      playoutDiscardedSamples: b.playoutDiscardedSamples,
      inputBatches: b.inputBatches,
      inputDroppedSamples: b.inputDroppedSamples,
      aiDroppedChunks: a.droppedAudioChunks,
      aiReconnects: a.reconnects + a.rotations,
      aiErrors: this.#c.aiErrors,
      dtmfDigits: this.#c.dtmfDigits,
      toolCalls: this.#c.toolCalls,
      toolErrors: this.#c.toolErrors,
      recorderDroppedSamples: b.recorderDroppedSamples,
      ...this.#nativeCounters(),
      transcriptEvicted: this.#c.transcriptEvicted,
    };
  }

  #nativeCounters(): { rxDroppedSamples: number; txOverflowSamples: number } {
    if (!this.#finished) {
      const st = this.call.audioStats();
      if (st) this.#native = { rxDroppedSamples: st.rxDroppedSamples, txOverflowSamples: st.txOverflowSamples };
    }
    return this.#native;
  }

  /** Transcript so far (finished lines, oldest first; bounded). */
  get transcript(): readonly TranscriptEntry[] {
    return this.#transcript;
  }

  /** A snapshot for the admin API. */
  info(): CallInfo {
    const i = this.call.info;
    const inbound = this.direction === 'inbound';
    return {
      callId: this.id,
      sipCallId: i.sipCallId,
      direction: this.direction,
      from: inbound ? i.remoteUri : i.localUri,
      to: inbound ? i.localUri : i.remoteUri,
      account: this.call.account.uri,
      remoteAddress: i.srcAddress,
      state: this.#state,
      startedAt: this.startedAt,
      ...(this.#answeredAt ? { answeredAt: this.#answeredAt } : {}),
    };
  }

  /** Everything a call record needs; final once the call has ended (live values before). */
  summary(): CallSummary {
    const base = this.info();
    const end = this.call.end;
    const endedAt = this.#endedAt;
    const durationMs = this.#answeredAt ? Math.max(0, (endedAt ?? new Date()).getTime() - this.#answeredAt.getTime()) : 0;
    const ended = this.#state.name === 'ended' ? this.#state : undefined;
    return {
      callId: base.callId,
      sipCallId: base.sipCallId,
      direction: base.direction,
      from: base.from,
      to: base.to,
      account: base.account,
      remoteAddress: base.remoteAddress,
      startedAt: this.startedAt,
      ...(this.#answeredAt ? { answeredAt: this.#answeredAt } : {}),
      ...(endedAt ? { endedAt } : {}),
      durationMs,
      ...(this.#endReason ? { endReason: this.#endReason } : {}),
      sipStatus: ended?.sipStatus ?? end?.sipCode ?? this.#rejectStatus ?? 0,
      sipReason: ended?.sipReason ?? end?.reason ?? '',
      endedBy: end?.by ?? 'local',
      ...(this.#transferredTo ? { transferredTo: this.#transferredTo } : {}),
      ai: { backend: this.#backendName, ...(this.#opts.ai.model ? { model: this.#opts.ai.model } : {}), voice: this.#opts.ai.voice, format: this.#format },
      tools: [...this.#tools],
      usage: this.#ai.usage,
      counters: this.counters,
      transcript: [...this.#transcript],
      ...(this.#aiConnectMs !== undefined ? { aiConnectMs: this.#aiConnectMs } : {}),
      ...(this.#aiStartMs !== undefined ? { aiStartMs: this.#aiStartMs } : {}),
      ...(this.#error ? { error: this.#error } : {}),
    };
  }

  /**
   * Run the call: AI start in parallel with ringing/answering, greeting, then the conversation.
   * Resolves once the call is conversing or ending; never rejects (failures end the call).
   * @throws InvalidStateError when called twice.
   */
  async start(): Promise<void> {
    if (this.#started) throw new InvalidStateError(`start() called twice [callId:${this.id}]`);
    this.#started = true;
    try {
      if (this.direction === 'inbound') await this.#runInbound();
      else await this.#runOutbound();
    } catch (err) {
      this.#log.error({ err }, 'call flow failed');
      void this.#end('error', { error: (err as Error).message });
    }
  }

  /** Once per user-agent audio tick (the manager calls it for every live call). */
  tick(): void {
    this.#bridge.tick();
  }

  /** Hang up now (queued agent audio is dropped). Resolves when the call has ended. */
  hangup(reason: EndReason = 'admin_hangup'): Promise<void> {
    return this.#end(reason, { flush: true });
  }

  /** Shutdown: drop queued agent audio, play the goodbye prompt (if any), hang up. Resolves when ended. */
  shutdown(): Promise<void> {
    const goodbye = this.#opts.prompts.goodbye;
    const prompt = goodbye && this.#answeredAt ? promptAt(goodbye, this.call.sampleRate) : undefined;
    return this.#end('shutdown', { flush: true, prompt, tail: prompt !== undefined, rejectStatus: 503 });
  }

  /** Lifecycle: hang up (reason `shutdown`, no prompt) and release everything. Idempotent. */
  close(): Promise<void> {
    return this.#end('shutdown', { flush: true, rejectStatus: 503 });
  }

  // ---------------------------------------------------------------------------------------------
  // Flows

  async #runInbound(): Promise<void> {
    const opts = this.#opts;
    const aiUp = this.#startAi();
    this.call.ringing().catch((err: unknown) => this.#log.debug({ err: (err as Error).message }, '180 Ringing not sent'));
    const greeting = opts.greeting ? promptAt(opts.greeting, this.call.sampleRate) : undefined;
    if (opts.ringingMs > 0) await this.#race(sleep(opts.ringingMs));
    // Without a greeting the caller would hear silence until the AI is up: keep ringing instead.
    if (!greeting) await this.#race(aiUp);
    if (this.#ending) return;
    if (this.#aiError && !opts.prompts.fallback && opts.onAiFailure !== 'transfer') {
      void this.#end('ai_failure', { rejectStatus: 503, error: this.#aiError.message });
      return;
    }
    this.#setState({ name: 'connecting' });
    try {
      await this.call.answer();
    } catch (err) {
      if (!this.#ending) void this.#end(this.call.ended ? 'caller_hangup' : 'error', { error: `answer failed: ${(err as Error).message}` });
      return;
    }
    if (this.#ending) return;
    this.#answered();
    if (this.#aiError) {
      this.#failOver();
      return;
    }
    if (greeting) {
      this.#setState({ name: 'greeting' });
      await this.#race(this.#bridge.playGreeting(greeting));
      if (this.#ending) return;
      await this.#race(aiUp);
      if (this.#ending || this.#aiError) return;
    } else {
      this.#speakFirst();
    }
    this.#setState({ name: 'conversing' });
  }

  async #runOutbound(): Promise<void> {
    const opts = this.#opts;
    const aiUp = this.#startAi();
    const answered = await this.#race(
      this.call.waitForState('confirmed', opts.outboundAnswerTimeoutMs).then(
        () => true,
        () => false,
      ),
    );
    if (this.#ending) return;
    if (!answered) {
      void this.#end('not_answered', { error: `not answered within ${opts.outboundAnswerTimeoutMs} ms` });
      return;
    }
    this.#answered();
    this.#setState({ name: 'connecting' });
    if (this.#aiError) {
      this.#failOver();
      return;
    }
    const greeting = this.#playGreeting && opts.greeting ? promptAt(opts.greeting, this.call.sampleRate) : undefined;
    if (greeting) {
      this.#setState({ name: 'greeting' });
      await this.#race(this.#bridge.playGreeting(greeting));
      if (this.#ending) return;
    }
    await this.#race(aiUp);
    if (this.#ending || this.#aiError) return;
    if (!greeting) this.#speakFirst();
    this.#setState({ name: 'conversing' });
  }

  #answered(): void {
    this.#answeredAt = new Date();
    const t = setTimeout(() => {
      this.#log.info({ maxDurationMs: this.#opts.maxDurationMs }, 'maximum call duration reached');
      const goodbye = this.#opts.prompts.goodbye;
      const prompt = goodbye ? promptAt(goodbye, this.call.sampleRate) : undefined;
      void this.#end('max_duration', { flush: true, prompt, tail: prompt !== undefined });
    }, this.#opts.maxDurationMs);
    t.unref?.();
    this.#timers.add(t);
  }

  #speakFirst(): void {
    const line = this.#opts.openingLine?.render(this.#values);
    void this.#ai.createResponse(line ? { instructions: line } : {}).then((o) => {
      if (o.status === 'failed' || o.status === 'not_sent') this.#log.warn({ status: o.status, reason: o.reason }, 'opening response failed');
    });
  }

  /** Start the AI session; resolves true when ready, false when it failed (the failure is handled). */
  async #startAi(): Promise<boolean> {
    const ms = this.#opts.aiStartTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const guard = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AiSessionError(`AI session start timed out [callId:${this.id}, timeoutMs:${ms}]`, 'start_timeout')), ms);
    });
    const started = this.#ai.start();
    started.catch(() => undefined);
    try {
      await Promise.race([started, guard]);
    } catch (err) {
      this.#onAiFailure(err instanceof AiSessionError ? err : new AiSessionError(String((err as Error).message ?? err), 'start_failed', { cause: err }));
      return false;
    } finally {
      clearTimeout(timer);
    }
    const s = this.#ai.stats;
    this.#aiConnectMs = s.connectMs;
    this.#aiStartMs = s.startMs;
    if (s.connectMs !== undefined) this.emit('timing', { metric: 'ai_connect_ms', valueMs: s.connectMs });
    if (s.startMs !== undefined) this.emit('timing', { metric: 'ai_start_ms', valueMs: s.startMs });
    return true;
  }

  #replyTimer: NodeJS.Timeout | undefined;

  #armReplyWatchdog(after: string): void {
    const ms = this.#opts.aiReplyTimeoutMs;
    if (!(ms > 0) || this.#aiError || this.#ending) return;
    if (this.#replyTimer) clearTimeout(this.#replyTimer);
    this.#replyTimer = setTimeout(() => {
      this.#replyTimer = undefined;
      this.#onAiFailure(new AiSessionError(`the model sent nothing for ${ms} ms after ${after} (ai.replyTimeoutMs)`, 'ai_stalled'));
    }, ms);
    this.#replyTimer.unref();
  }

  readonly #disarmReplyWatchdog = (): void => {
    if (this.#replyTimer) clearTimeout(this.#replyTimer);
    this.#replyTimer = undefined;
  };

  #onAiFailure(err: AiSessionError): void {
    // Failures after we started ending are the session being closed by us.
    if (this.#aiError || this.#ending) return;
    this.#aiError = err;
    this.#error = err.message;
    const code = err.aiCode ?? 'ai_failure';
    this.#log.error({ aiCode: code }, `AI backend failed [callId:${this.id}, aiCode:${code}]: ${err.message}`);
    this.emit('aiError', { code, message: err.message, fatal: true });
    this.#bridge.detachAi();
    if (this.#answeredAt) this.#failOver();
    else if (this.direction === 'outbound') void this.#end('ai_failure', { error: err.message });
    // Inbound and not yet answered: the flow decides (answer for the fallback prompt, or 503).
  }

  #failOver(): void {
    const fallback = this.#opts.prompts.fallback;
    const prompt = fallback ? promptAt(fallback, this.call.sampleRate) : undefined;
    const transferTo = this.#opts.onAiFailure === 'transfer' ? this.#opts.failureTransferTo : undefined;
    // Queued audio (the greeting, the end of a sentence) finishes first, then the fallback prompt.
    void this.#end('ai_failure', { prompt, drain: true, tail: prompt !== undefined, transferTo, error: this.#aiError?.message });
  }

  // ---------------------------------------------------------------------------------------------
  // The one ending path

  #end(reason: EndReason, plan: EndPlan = {}): Promise<void> {
    if (this.#ending) return this.#ending;
    this.#disarmReplyWatchdog();
    this.#endReason = reason;
    if (plan.error && !this.#error) this.#error = plan.error;
    let done!: () => void;
    // Set before running: the SIP actions below can report the call's end synchronously.
    this.#ending = new Promise<void>((r) => (done = r));
    this.#runEnd(reason, plan)
      .catch((err: unknown) => {
        this.#log.error({ err }, 'ending the call failed');
        this.#finish();
      })
      .finally(done);
    return this.#ending;
  }

  async #runEnd(reason: EndReason, plan: EndPlan): Promise<void> {
    this.#resolveStop();
    this.#clearTimers();
    if (this.#state.name !== 'ended') this.#setState({ name: 'ending', reason });
    this.#bridge.detachAi();
    this.#ai.close();
    const call = this.call;
    if (!call.ended) {
      if (!this.#answeredAt) {
        if (this.direction === 'inbound') {
          this.#rejectStatus = plan.rejectStatus ?? 503;
          await call.reject(this.#rejectStatus).catch((err: unknown) => this.#logSipFailure('reject', err));
        } else {
          await call.hangup().catch((err: unknown) => this.#logSipFailure('cancel', err));
        }
      } else {
        if (plan.flush) this.#bridge.flush();
        if (plan.prompt) void this.#bridge.playPrompt(plan.prompt, 'prompt');
        if (plan.prompt || plan.drain) await this.#waitDrained();
        if (plan.tail && this.#opts.hangupTailMs > 0 && !call.ended) {
          await Promise.race([sleep(this.#opts.hangupTailMs), this.#callEnded]);
        }
        if (plan.transferTo && !call.ended) {
          const r = await this.#transfer(plan.transferTo);
          if (!r.ok) this.#log.warn({ sipCode: r.sipCode }, `fallback transfer failed [status:${r.sipCode}] ${r.reason}`);
        }
        if (!call.ended) await call.hangup().catch((err: unknown) => this.#logSipFailure('hangup', err));
      }
    }
    await Promise.race([this.#callEnded, sleep(CALL_END_WAIT_MS)]);
    this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#nativeCounters();
    this.#finished = true;
    this.#clearTimers();
    this.#endedAt = new Date();
    this.#bridge.close();
    this.#ai.close();
    this.call.off('ended', this.#onCallEnded);
    this.call.off('dtmf', this.#onDtmf);
    const end = this.call.end;
    const reason = this.#endReason ?? 'error';
    this.#setState({
      name: 'ended',
      reason,
      sipStatus: end?.sipCode ?? this.#rejectStatus ?? 0,
      sipReason: end?.reason ?? '',
    });
    const summary = this.summary();
    this.#log.info(
      { reason, sipStatus: summary.sipStatus, durationMs: summary.durationMs, costUsd: summary.usage.costUsd, counters: summary.counters },
      `call ended [reason:${reason}]`,
    );
    this.emit('ended', summary);
    this.removeAllListeners();
  }

  /** The far end is gone (BYE, CANCEL, failure). */
  #callGone(): void {
    this.#resolveCallEnded();
    if (this.#ending) return;
    let reason: EndReason = 'caller_hangup';
    if (this.#transferredTo) reason = 'transferred';
    else if (!this.#answeredAt && this.direction === 'outbound') reason = 'not_answered';
    void this.#end(reason);
  }

  #setState(next: CallState): void {
    const prev = this.#state;
    if (prev.name === next.name) return;
    if (!canTransition(prev.name, next.name)) {
      this.#log.warn({ from: prev.name, to: next.name }, `ignored call state change [from:${prev.name}, to:${next.name}]`);
      return;
    }
    this.#state = next;
    this.#log.info({ from: prev.name, to: next.name, ...('reason' in next ? { reason: next.reason } : {}) }, `call ${prev.name} -> ${next.name}`);
    this.emit('stateChange', next, prev);
  }

  /** Await `p` unless the call starts ending first. */
  #race<T>(p: Promise<T>): Promise<T | undefined> {
    return Promise.race([p, this.#stop.then(() => undefined)]);
  }

  async #waitDrained(): Promise<void> {
    const bound = this.#bridge.pendingPlayoutMs + DRAIN_SLACK_MS;
    await Promise.race([this.#bridge.whenDrained(), this.#callEnded, sleep(bound)]);
  }

  async #transfer(uri: string): Promise<TransferResult> {
    let r: TransferResult;
    try {
      r = await this.call.transfer(uri, TRANSFER_TIMEOUT_MS);
    } catch (err) {
      r = { ok: false, sipCode: err instanceof SipError ? err.status : 0, reason: (err as Error).message };
    }
    if (r.ok) this.#transferredTo = uri;
    this.#log.info({ target: uri, ok: r.ok, sipCode: r.sipCode }, 'transfer finished');
    return r;
  }

  #clearTimers(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    if (this.#dtmfTimer) clearTimeout(this.#dtmfTimer);
    this.#dtmfTimer = undefined;
  }

  #logSipFailure(what: string, err: unknown): void {
    if (this.call.ended) return;
    this.#log.warn({ err: (err as Error).message }, `${what} failed [callId:${this.id}]`);
  }

  // ---------------------------------------------------------------------------------------------
  // Tools

  #registerTools(): void {
    const self = this;
    const host: ToolHost = {
      callId: this.id,
      log: this.#log,
      get endClaimed() {
        return self.#endClaim !== undefined || self.#ending !== undefined;
      },
      claimEnd(reason) {
        if (self.#endClaim !== undefined || self.#ending !== undefined) return false;
        self.#endClaim = reason;
        return true;
      },
      releaseEnd() {
        self.#endClaim = undefined;
      },
      whenPlayoutDrained: () => this.#waitDrained(),
      end: (reason) => this.#end(reason, { tail: reason === 'agent_hangup' }),
      transfer: async (uri) => {
        // As before a BYE: the far end's jitter buffer still holds the announcement's last ~0.5 s.
        if (this.#opts.hangupTailMs > 0 && !this.call.ended) await Promise.race([sleep(this.#opts.hangupTailMs), this.#callEnded]);
        return this.#transfer(uri);
      },
      tellModel: (text) => {
        if (this.#ai.closed || this.#ending) return;
        try {
          this.#ai.sendSystemText(text);
          void this.#ai.createResponse();
        } catch (err) {
          this.#log.debug({ err: (err as Error).message }, 'could not tell the model');
        }
      },
    };
    const o = this.#opts;
    if (o.endCall) this.#ai.registerTool(endCallTool(host, o.endCall));
    if (o.transferCall) this.#ai.registerTool(transferCallTool(host, o.transferCall));
    for (const w of o.webhooks) this.#ai.registerTool(webhookTool(w, { callId: this.id, log: this.#log }));
  }

  #onToolCall(r: ToolCallRecord): void {
    this.#c.toolCalls++;
    if (r.error !== undefined) this.#c.toolErrors++;
    const use: ToolUse = {
      name: r.name,
      args: r.args,
      durationMs: r.durationMs,
      at: new Date(),
      ...(r.error !== undefined ? { error: r.error } : {}),
      ...(r.refused ? { refused: true as const } : {}),
    };
    this.#tools.push(use);
    if (this.#tools.length > this.#opts.toolUses) this.#tools.shift();
    this.emit('toolUse', use);
  }

  // ---------------------------------------------------------------------------------------------
  // Conversation side events

  #onAiServerError(e: AiServerError): void {
    this.#c.aiErrors++;
    this.emit('aiError', { code: e.code, message: e.message, fatal: false });
  }

  #onTranscript(t: TranscriptEvent): void {
    if (!t.final) return;
    const text = t.text.trim();
    if (text === '') return;
    this.#log.debug({ speaker: t.role === 'user' ? 'caller' : 'agent', itemId: t.itemId, text }, 'transcript');
    const entry: TranscriptEntry = {
      speaker: t.role === 'user' ? 'caller' : 'agent',
      text,
      at: new Date(),
      offsetMs: Math.round(performance.now() - this.#t0),
      itemId: t.itemId,
    };
    const heard = this.#interrupted.get(t.itemId);
    if (heard !== undefined) {
      entry.interrupted = true;
      entry.heardMs = heard;
    }
    this.#pushTranscript(entry);
  }

  #pushTranscript(entry: TranscriptEntry): void {
    this.#transcript.push(entry);
    if (this.#transcript.length > this.#opts.transcriptLines) {
      this.#transcript.shift();
      this.#c.transcriptEvicted++;
    }
    this.emit('transcript', entry);
  }

  #onBargeIn(r: BargeInReport): void {
    for (const t of r.truncated) {
      this.#interrupted.set(t.itemId, t.audioEndMs);
      if (this.#interrupted.size > INTERRUPTED_CAP) this.#interrupted.delete(this.#interrupted.keys().next().value as string);
      // The line may already be in the transcript when the interruption comes late in the item.
      for (let i = this.#transcript.length - 1; i >= 0 && i >= this.#transcript.length - 8; i--) {
        const e = this.#transcript[i];
        if (e.itemId === t.itemId) {
          e.interrupted = true;
          e.heardMs = t.audioEndMs;
        }
      }
    }
    this.emit('bargeIn', r);
  }

  #dtmf(digit: string): void {
    this.#c.dtmfDigits++;
    this.#pushTranscript({ speaker: 'caller', text: digit, at: new Date(), offsetMs: Math.round(performance.now() - this.#t0), kind: 'dtmf' });
    const d = this.#opts.dtmf;
    if (!d.toModel || this.#ending || this.#ai.closed) return;
    try {
      this.#ai.sendUserText(d.template.render({ ...this.#values, digit }));
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'DTMF not sent to the model');
      return;
    }
    if (!d.respond) return;
    // One response for a burst of digits (a number typed in), not one per key.
    if (this.#dtmfTimer) clearTimeout(this.#dtmfTimer);
    this.#dtmfTimer = setTimeout(() => {
      this.#dtmfTimer = undefined;
      if (!this.#ending && !this.#ai.closed) void this.#ai.createResponse();
    }, d.respondDelayMs);
  }
}

/** INVITE headers as a template group (first occurrence of each name wins). */
function headerGroup(raw: readonly [string, string][]): TemplateGroup {
  const out: Record<string, string> = {};
  for (const [k, v] of raw) if (!(k in out)) out[k] = v;
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref?.();
  });
}

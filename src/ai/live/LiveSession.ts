/**
 * One GPT-Live conversation, one per call, over a {@link LiveClient}, behind the same
 * {@link AiSession} surface as the Realtime backend, so the call layer does not know which it has.
 *
 * GPT-Live is full duplex and server-driven: the voice model listens while it speaks and decides
 * itself when to start and stop; no client event creates, cancels or truncates its speech, and its
 * audio carries no response or item ids. This session therefore derives what the call layer expects:
 *
 * - An agent turn ("response") is a run of model audio. It opens with the first chunk that is not
 *   silence (or the first transcript fragment), and ends once no voiced audio has come for `turnGapMs`
 *   and what came has had time to play. Each gets its own item id, so the playout ring, barge-in
 *   accounting and transcripts work per turn as they do with Realtime. Transcript words arriving
 *   just after their turn ended still belong to it.
 * - A caller turn is a run of input transcript fragments; a gap over `turnGapMs` on the session
 *   timeline, or `turnGapMs` of wall-clock quiet, ends it (`speechStopped`).
 * - Barge-in: while the caller talks over an agent turn (their audio is loud, or their words arrive
 *   as transcript), the turn ends as soon as the model's audio stops arriving for `turnGapMs`: the
 *   model stopped for the caller. `speechStarted` is emitted then, so the call layer flushes what
 *   the model had sent ahead of real time and reports (truncate()) how much the caller actually
 *   heard. The protocol has no event to tell the server; that played-sample count is kept as the
 *   truth of what the agent said: the transcript in the call record and the history a new server
 *   session is seeded with hold only the words heard (by the output transcript's timeline).
 * - createResponse() asks the model to speak with `session.commentary.append` (its instructions, or
 *   a plain "reply now"); it resolves when the next agent turn ends.
 * - sendUserText() (DTMF) is silent context (`session.thinking.append`); sendSystemText() is
 *   `session.instructions.append`. cancelResponse() has no protocol equivalent: the model stops when
 *   the caller talks.
 * - Tools: with `responses` delegation the service's Responses model calls our function tools; the
 *   calls arrive as wrapped Responses events, run here, and go back with `response.item.create`
 *   then `response.create`. With `client` delegation the voice model hands work to us
 *   (`session.delegation.created`, no task text): a chat model of ours reads the conversation, runs
 *   our tools, and its answer goes back as `session.commentary.append` for that delegation.
 * - A lost connection, or the server session reaching its end (`expires_at`, `session.closed`
 *   reason `expired`), is survived by starting a new server session seeded with the conversation
 *   as text (`session.input`); sessions are also rotated while idle before they expire. Appends
 *   asked for meanwhile are held (bounded) for the new session.
 * - Caller audio goes up as it comes, every frame, silence included: a full-duplex model hears a
 *   live line; audio is dropped (and counted) only while no session is up or the socket is backed up.
 * - Usage: cumulative audio seconds per server session (`session.usage.updated`, `session.closed`),
 *   plus the backend model's tokens; cost from configurable prices.
 */
import { performance } from 'node:perf_hooks';
import { decodeALaw, decodeMuLaw } from '../../audio/g711';
import type { Logger } from '../../logging/logger';
import { AiSessionError, InvalidStateError } from '../../util/errors';
import { ReportLimiter } from '../../util/ReportLimiter';
import { chat, type ChatMessage, type ServiceEndpoint } from '../pipeline/services';
import { assertToolName } from '../realtime/ToolRunner';
import { notSent, SessionLifecycle, toAiError, type SessionEnd } from '../SessionLifecycle';
import { aiAudioFormatInfo, type AiAudioFormat, type AiAudioFormatInfo } from '../audioFormat';
import { runToolCall, type ToolCallEnv } from '../toolCall';
import type {
  AiServerError,
  AiSession,
  AiSessionOptions,
  AiSessionStats,
  FunctionToolDefinition,
  ResponseCreateOptions,
  ResponseOutcome,
  ToolCallRecord,
  ToolRegistration,
} from '../types';
import { emptySessionStats } from '../types';
import { addUsage, emptyUsage, estimateCostUsd, resolvePrices, type UsageSummary } from '../usage';
import { LiveClient, type LiveClientOptions } from './LiveClient';
import {
  backendUsageOf,
  functionCallOf,
  LIVE_MAX_INPUT_ITEMS,
  type LiveBackendUsage,
  type LiveClientEvent,
  type LiveReasoningEffort,
  type LiveServerEvent,
  type LiveSessionStartedEvent,
  type LiveWireAudioFormat,
  type LiveWireDelegation,
  type LiveWireInputItem,
  type LiveWireSessionConfig,
  type LiveWireTool,
} from './wire';

/** Delegation to the service's Responses backend. */
export interface LiveResponsesDelegation {
  type: 'responses';
  /** Backend model (Azure: its deployment). */
  model: string;
  /** Backend prompt (business rules, tool use); unset: the agent's instructions. */
  instructions?: string;
  maxOutputTokens?: number;
  reasoningEffort?: LiveReasoningEffort;
  /** Hosted tools passed through as given (e.g. `{type: 'web_search'}`); the agent's function tools are added. */
  hostedTools?: LiveWireTool[];
  toolChoice?: 'auto' | 'none' | 'required';
  parallelToolCalls?: boolean;
}

/** Delegation to this agent: a chat model of ours (OpenAI-compatible) does the work with our tools. */
export interface LiveClientDelegation {
  type: 'client';
  endpoint: ServiceEndpoint;
  model: string;
  /** Prompt of the chat model; unset: the agent's instructions. */
  instructions?: string;
  maxTokens?: number;
  /** Chat rounds with tool calls before the answer must be text (default 3). */
  maxToolRounds?: number;
}

/** Prices of a GPT-Live call, USD. */
export interface LivePrices {
  /** Per minute of session audio (default 0.05). */
  audioPerMinute: number;
  /** Backend model, per 1M input tokens. */
  backendInput: number;
  /** Backend model, per 1M cached input tokens. */
  backendCachedInput: number;
  /** Backend model, per 1M output tokens. */
  backendOutput: number;
}

/** Default prices: gpt-live-1 active session time; backend tokens unpriced until configured. */
export const DEFAULT_LIVE_PRICES: Readonly<LivePrices> = Object.freeze({ audioPerMinute: 0.05, backendInput: 0, backendCachedInput: 0, backendOutput: 0 });

/** What a GPT-Live session needs beyond the backend-neutral options. */
export interface LiveOptions {
  /** Voice model, e.g. `gpt-live-1`. */
  model: string;
  /** Voice (a GPT-Live voice name); unset: the session options' voice. */
  voice?: string;
  delegation: LiveResponsesDelegation | LiveClientDelegation;
  /** Quiet that ends a turn (agent audio, caller transcript), ms (default 700). */
  turnGapMs?: number;
  /** Model audio the playout gathers before a reply starts (jitter tolerance for paced audio), ms (default 200). */
  prebufferMs?: number;
  /** Rotate this long before the server session expires, when idle, ms (default 120000). */
  expiryMarginMs?: number;
  /** How long close() waits for the final usage (`session.closed`), ms (default 2000). */
  closeGraceMs?: number;
  /** A requested reply that has not started within this long resolves as `incomplete`, ms (default 15000). */
  replyTimeoutMs?: number;
  prices?: Partial<LivePrices>;
}

/** Options of a LiveSession. */
export interface LiveSessionInit {
  session: AiSessionOptions;
  connection: LiveClientOptions;
  live: LiveOptions;
}

const DEFAULTS = {
  turnGapMs: 700,
  prebufferMs: 200,
  expiryMarginMs: 120_000,
  closeGraceMs: 2_000,
  replyTimeoutMs: 15_000,
  maxReconnects: 5,
  historyMaxItems: 200,
  reseedMaxChars: 16_000,
  responseQueueMax: 8,
  toolTimeoutMs: 20_000,
} as const;

/** `session.input` holds at most 8,192 tokens (Live reference): this many characters stay under it even at 2 a token. */
const MAX_INPUT_CHARS = 16_000;
/** Appends carry at most 500 tokens (Live reference); ~4 characters a token, with room to spare. */
const MAX_APPEND_CHARS = 1800;
/** Model audio this loud (mean absolute sample) or louder is voiced: about -60 dBFS. */
const VOICED_LEVEL = 32;
/** Caller audio this loud (mean absolute sample) is the caller talking: about -36 dBFS, over line noise. */
const CALLER_LOUD_LEVEL = 500;
/** Error codes that no new server session can cure. */
const FATAL_CODES = new Set(['invalid_api_key', 'insufficient_quota', 'account_deactivated', 'billing_hard_limit_reached', 'model_not_found']);
const SPEAK_NOW = 'Reply to the caller now.';
/** Backend responses followed at once (Responses delegation). */
const MAX_BACKEND_RESPONSES = 32;
/** Appends held while a new server session starts. */
const MAX_HELD_APPENDS = 16;

type AppendType = 'session.instructions.append' | 'session.thinking.append' | 'session.commentary.append';

interface Reply {
  resolve(o: ResponseOutcome): void;
  timer: NodeJS.Timeout;
}

interface AgentTurn {
  itemId: string;
  responseId: string;
  startedAt: number;
  /** Audio received, ms, and where it stood at the last voiced chunk. */
  receivedMs: number;
  voicedEndMs: number;
  lastVoicedAt: number;
  /** Transcript fragments with their session-timeline start. */
  parts: { text: string; startMs: number }[];
  firstStartMs: number | undefined;
  callerSpoke: boolean;
  /** End of the latest transcript fragment on the session timeline, ms. */
  lastEndMs: number;
  replies: Reply[];
  requested: boolean;
  timer: NodeJS.Timeout | undefined;
  ending?: boolean;
}

interface CallerTurn {
  itemId: string;
  text: string;
  startMs: number;
  endMs: number;
  timer: NodeJS.Timeout | undefined;
}

type HistoryEntry = { role: 'user' | 'assistant' | 'developer'; text: string };

/** One backend response's function calls (Responses delegation). */
interface BackendCalls {
  calls: Map<string, Promise<ToolCallRecord>>;
  completed: boolean;
  generation: number;
}

/** A GPT-Live conversation (see the file header). */
export class LiveSession extends SessionLifecycle implements AiSession {
  /** Formats of appendAudio() input and `audio` output (one format both ways in GPT-Live). */
  readonly audioFormat: { input: AiAudioFormatInfo; output: AiAudioFormatInfo };
  /** The model decides by itself whether a caller's words need an answer. */
  readonly repliesToEveryTurn = false;
  /** The service's output pacing is not documented: audio may come at about real time, so replies start on a small buffer. */
  readonly playoutPrebufferMs: number;

  readonly #opts: AiSessionOptions;
  readonly #live: LiveOptions;
  readonly #connection: LiveClientOptions;
  readonly #log: Logger;
  readonly #limits: { [K in keyof typeof DEFAULTS]: number };
  readonly #prices: LivePrices;
  readonly #stats: AiSessionStats = emptySessionStats();
  readonly #declared = new Map<string, FunctionToolDefinition>();
  readonly #tools = new Map<string, ToolRegistration>();
  readonly #toolEnv: ToolCallEnv;
  readonly #wireFormat: LiveWireAudioFormat;

  #client: LiveClient | undefined;
  #generation = 0;
  #t0 = 0;
  #reconnectsUsed = 0;
  #rotationTimer: NodeJS.Timeout | undefined;
  #rotationDue = false;
  #serverStartedAt = 0;

  #agent: AgentTurn | undefined;
  /** The agent turn that ended last, for its transcript fragments arriving after its audio. */
  #lastAgent: { itemId: string; endMs: number; interrupted: boolean; entry: HistoryEntry | undefined } | undefined;
  #caller: CallerTurn | undefined;
  #turnSeq = 0;
  #heard = new Map<string, number>();
  #waitingReplies: Reply[] = [];
  #heldAppends: { type: AppendType; content: string }[] = [];
  #history: HistoryEntry[] = [];
  #backend = new Map<string, BackendCalls>();
  #delegations = new Set<AbortController>();
  /** Every running tool call's controller, aborted when the session ends. */
  #toolAborts = new Set<AbortController>();
  #busyTools = 0;
  /** Server errors are logged once a minute per code (they are all emitted). */
  readonly #errorReports = new ReportLimiter({ intervalMs: 60_000, maxKeys: 64 });
  #silentChunks = 0;
  #scratch = new Int16Array(0);
  /** When caller audio over CALLER_LOUD_LEVEL was last sent (performance.now()). */
  #callerLoudAt = 0;
  /** The id the next caller turn takes (given out early by a barge-in seen in the audio). */
  #nextCallerItemId: string | undefined;

  /** Audio seconds per server session (cumulative totals), and backend tokens. */
  #seconds = new Map<string, number>();
  #tokens = emptyUsage();

  /**
   * An idle session; nothing is sent until start().
   * @throws TypeError when input and output formats differ (GPT-Live has one) or a tool name is invalid.
   */
  constructor(init: LiveSessionInit, logger: Logger) {
    super(logger);
    this.#opts = init.session;
    this.#live = init.live;
    this.#connection = init.connection;
    this.#log = logger;
    const o = init.session;
    const l = init.live;
    this.playoutPrebufferMs = l.prebufferMs ?? DEFAULTS.prebufferMs;
    this.#limits = {
      turnGapMs: l.turnGapMs ?? DEFAULTS.turnGapMs,
      prebufferMs: l.prebufferMs ?? DEFAULTS.prebufferMs,
      expiryMarginMs: l.expiryMarginMs ?? DEFAULTS.expiryMarginMs,
      closeGraceMs: l.closeGraceMs ?? DEFAULTS.closeGraceMs,
      replyTimeoutMs: l.replyTimeoutMs ?? DEFAULTS.replyTimeoutMs,
      maxReconnects: o.maxReconnects ?? DEFAULTS.maxReconnects,
      historyMaxItems: Math.max(1, o.historyMaxItems ?? DEFAULTS.historyMaxItems),
      reseedMaxChars: o.reseedMaxChars ?? DEFAULTS.reseedMaxChars,
      responseQueueMax: Math.max(1, o.responseQueueMax ?? DEFAULTS.responseQueueMax),
      toolTimeoutMs: o.toolTimeoutMs ?? DEFAULTS.toolTimeoutMs,
    };
    if (o.inputFormat !== o.outputFormat) {
      throw new TypeError(`GPT-Live uses one audio format both ways [input:${o.inputFormat}, output:${o.outputFormat}]`);
    }
    this.#wireFormat = liveWireFormat(o.inputFormat);
    this.audioFormat = { input: aiAudioFormatInfo(o.inputFormat), output: aiAudioFormatInfo(o.outputFormat) };
    this.#prices = { ...DEFAULT_LIVE_PRICES };
    for (const k of Object.keys(this.#prices) as (keyof LivePrices)[]) {
      const v = l.prices?.[k];
      if (typeof v === 'number' && Number.isFinite(v) && v >= 0) this.#prices[k] = v;
    }
    for (const t of o.tools ?? []) {
      assertToolName(t.name);
      this.#declared.set(t.name, { name: t.name, description: t.description, parameters: t.parameters });
    }
    this.#toolEnv = { tool: (n) => this.#tools.get(n), declared: (n) => this.#declared.has(n), timeoutMs: this.#limits.toolTimeoutMs, stats: this.#stats, log: logger };
  }

  // -------------------------------------------------------------------------------------------------
  // Lifecycle

  /** Audio seconds and backend tokens so far (all server sessions of this call), with the estimated cost. */
  get usage(): UsageSummary {
    const audioSeconds = [...this.#seconds.values()].reduce((a, b) => a + b, 0);
    const p = this.#prices;
    const tokenPrices = resolvePrices({ textInput: p.backendInput, textCachedInput: p.backendCachedInput, textOutput: p.backendOutput });
    const costUsd = (audioSeconds / 60) * p.audioPerMinute + estimateCostUsd(this.#tokens, tokenPrices);
    return { ...this.#tokens, audioSeconds, costUsd };
  }

  /** A snapshot of the counters. */
  get stats(): AiSessionStats {
    return { ...this.#stats };
  }

  /** Server session id of the current connection. */
  get serverSessionId(): string | undefined {
    return this.#client?.sessionId;
  }

  /**
   * Connect and start the server session; resolves on `session.started`. Rejects with
   * AiSessionError (no `died` event) when the connection fails or the server refuses the
   * configuration or runs on another format or voice than asked.
   */
  async start(): Promise<void> {
    this.#t0 = performance.now();
    await this.startWith(() => this.#openClient());
    this.#stats.startMs = Math.round(performance.now() - this.#t0);
    this.#log.info({ connectMs: this.#stats.connectMs, startMs: this.#stats.startMs, delegation: this.#live.delegation.type }, 'AI session ready');
    this.#becomeReady();
  }

  /** Socket, timers, turns, waiting replies and tool work go. */
  protected release(end: SessionEnd): void {
    const reason = end === 'closed' ? 'session_closed' : end === 'died' ? 'session_died' : 'start_failed';
    if (this.#rotationTimer) clearTimeout(this.#rotationTimer);
    this.#rotationTimer = undefined;
    this.#endAgentTurn('lost', reason);
    this.#endCallerTurn();
    for (const r of this.#waitingReplies.splice(0)) settle(r, notSent(reason));
    this.#heldAppends = [];
    for (const d of this.#delegations) d.abort(new AiSessionError(`delegation abandoned [reason:${reason}]`, reason));
    this.#delegations.clear();
    for (const a of this.#toolAborts) a.abort(new AiSessionError(`tool call abandoned [reason:${reason}]`, reason));
    this.#toolAborts.clear();
    this.#backend.clear();
    if (this.#silentChunks > 0) this.#log.debug({ silentChunks: this.#silentChunks }, 'silent model audio between turns skipped');
    this.#dropClient(end === 'closed' ? this.#limits.closeGraceMs : 0);
  }

  /** Logged as an error, then the shared ending. */
  protected override die(err: AiSessionError): void {
    if (this.ending) return;
    this.#log.error({ aiCode: err.aiCode }, err.message);
    super.die(err);
  }

  #dropClient(graceMs = 0): void {
    const c = this.#client;
    this.#client = undefined;
    this.#generation += 1;
    if (!c) return;
    c.removeAllListeners();
    const id = c.sessionId;
    // The final usage comes with session.closed, after we asked for it (and maybe after the call record).
    c.close({
      graceMs,
      onClosed: (ev) => {
        this.#applySeconds(id, ev);
        if (ev.type === 'session.closed') this.#log.info({ sessionId: id, reason: ev.reason, audioSeconds: ev.usage.seconds }, 'GPT-Live session closed');
      },
    });
  }

  #applySeconds(sessionId: string | undefined, ev: LiveServerEvent): void {
    if (sessionId === undefined || (ev.type !== 'session.usage.updated' && ev.type !== 'session.closed')) return;
    // Cumulative per server session: keep the largest total seen.
    this.#seconds.set(sessionId, Math.max(this.#seconds.get(sessionId) ?? 0, ev.usage.seconds));
    this.emit('usage', this.usage);
  }

  #becomeReady(): void {
    this.setState({ name: 'ready' });
    this.#rotationDue = false;
    if (this.#rotationTimer) clearTimeout(this.#rotationTimer);
    this.#rotationTimer = undefined;
    // Rotate while idle before the server ends the session: by its expiry, or our own age limit.
    const expiresAt = this.#client?.expiresAt;
    const left = expiresAt !== undefined ? expiresAt * 1000 - Date.now() : Infinity;
    // A session shorter than twice the margin rotates at half its life, so rotations cannot loop.
    const margin = Math.min(this.#limits.expiryMarginMs, left / 2);
    const byAge = (this.#opts.maxSessionAgeMs ?? 0) > 0 ? this.#opts.maxSessionAgeMs! : Infinity;
    const due = Math.min(Number.isFinite(left) ? left - margin : Infinity, byAge);
    if (Number.isFinite(due)) {
      const startedAt = Date.now();
      this.#rotationTimer = setTimeout(() => {
        this.#rotationDue = true;
        this.#maybeRotate();
        // Not idle by the end: the margin's last tenth is for rotating anyway, mid-turn.
        const hard = Number.isFinite(left) ? left - margin / 10 - (Date.now() - startedAt) : Infinity;
        if (this.#rotationDue && this.state.name === 'ready' && Number.isFinite(hard)) {
          this.#rotationTimer = setTimeout(() => void this.#reconnect('rotation', true), Math.max(0, hard));
          this.#rotationTimer.unref();
        }
      }, Math.max(0, due));
      this.#rotationTimer.unref();
    }
  }

  async #openClient(): Promise<void> {
    const client = new LiveClient(this.#connection, this.#log);
    this.#client = client;
    this.#generation += 1;
    client.on('event', (ev) => {
      if (this.#client === client) this.#onEvent(ev);
    });
    client.on('died', (err) => {
      if (this.#client === client) this.#onLost(err);
    });
    try {
      const started = await client.connect(this.#sessionConfig());
      if (this.#client !== client) throw new AiSessionError('AI session closed while connecting', 'closed');
      this.#stats.connectMs ??= client.connectMs;
      this.#serverStartedAt = performance.now();
      this.#checkStarted(started);
    } catch (err) {
      if (this.#client === client) this.#dropClient();
      throw err;
    }
  }

  /** Refuse to run on another audio format or voice than asked for (the call would sound wrong). */
  #checkStarted(ev: LiveSessionStartedEvent): void {
    const audio = ev.session.audio as { format?: { type?: unknown; rate?: unknown }; output?: { voice?: unknown } } | undefined;
    const checks: [string, unknown, unknown][] = [
      ['session.audio.format.type', audio?.format?.type, this.#wireFormat.type],
      ['session.audio.format.rate', audio?.format?.rate, this.#wireFormat.rate],
      ['session.audio.output.voice', audio?.output?.voice, this.#voice],
    ];
    for (const [param, got, want] of checks) {
      if (got !== undefined && typeof got !== 'object' && got !== want) {
        throw new AiSessionError(`session.started reports a different configuration [param:${param}, wanted:${String(want)}, got:${String(got)}]`, 'session_config_mismatch');
      }
    }
  }

  get #voice(): string {
    return this.#live.voice ?? this.#opts.voice;
  }

  /** The `session` of session.start: model, instructions, format, voice, delegation, and the history to resume from. */
  #sessionConfig(): LiveWireSessionConfig {
    const input = this.#reseedItems();
    const instructions = this.#opts.instructions.trim();
    return {
      model: this.#live.model,
      ...(instructions !== '' ? { instructions } : {}),
      audio: { format: this.#wireFormat, output: { voice: this.#voice } },
      delegation: this.#wireDelegation(),
      ...(input.length > 0 ? { input } : {}),
    };
  }

  #wireDelegation(): LiveWireDelegation {
    const d = this.#live.delegation;
    if (d.type === 'client') return { type: 'client' };
    const tools: LiveWireTool[] = [...(d.hostedTools ?? []), ...this.#functionTools()];
    return {
      type: 'responses',
      responses: {
        model: d.model,
        instructions: d.instructions ?? this.#opts.instructions,
        ...(d.maxOutputTokens !== undefined ? { max_output_tokens: d.maxOutputTokens } : {}),
        ...(d.reasoningEffort !== undefined ? { reasoning: { effort: d.reasoningEffort } } : {}),
        ...(d.toolChoice !== undefined ? { tool_choice: d.toolChoice } : {}),
        ...(d.parallelToolCalls !== undefined ? { parallel_tool_calls: d.parallelToolCalls } : {}),
        ...(tools.length > 0 ? { tools } : {}),
      },
    };
  }

  /** The agent's function tools, as the Responses backend declares them. */
  #functionTools(): LiveWireTool[] {
    const all = new Map(this.#declared);
    for (const [name, t] of this.#tools) all.set(name, { name, description: t.description, parameters: t.parameters });
    return [...all.values()].map((t) => ({ type: 'function', name: t.name, description: t.description, parameters: t.parameters, strict: false }));
  }

  /** The conversation so far as `session.input`: newest first kept, within the item and character caps. */
  #reseedItems(): LiveWireInputItem[] {
    const out: LiveWireInputItem[] = [];
    let chars = 0;
    const cap = Math.min(LIVE_MAX_INPUT_ITEMS, this.#opts.reseedMaxItems ?? LIVE_MAX_INPUT_ITEMS);
    for (let i = this.#history.length - 1; i >= 0 && out.length < cap; i--) {
      const e = this.#history[i];
      if (chars + e.text.length > Math.min(this.#limits.reseedMaxChars, MAX_INPUT_CHARS)) break;
      chars += e.text.length;
      out.push(
        e.role === 'assistant'
          ? { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: e.text }] }
          : { type: 'message', role: e.role, content: [{ type: 'input_text', text: e.text }] },
      );
    }
    return out.reverse();
  }

  #remember(entry: HistoryEntry): void {
    if (entry.text.trim() === '') return;
    this.#history.push(entry);
    if (this.#history.length > this.#limits.historyMaxItems) {
      this.#history.shift();
      this.#stats.historyEvicted += 1;
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Losing and rotating the server session

  #onLost(err: AiSessionError): void {
    if (this.ending) return;
    if (err.aiCode !== undefined && FATAL_CODES.has(err.aiCode)) {
      this.#dropClient();
      this.die(err);
      return;
    }
    void this.#reconnect(err.aiCode ?? 'connection_lost', false);
  }

  #maybeRotate(): void {
    if (!this.#rotationDue || this.state.name !== 'ready' || !this.#idle()) return;
    void this.#reconnect('rotation', true);
  }

  #idle(): boolean {
    return this.#agent === undefined && this.#caller === undefined && this.#busyTools === 0 && this.#delegations.size === 0;
  }

  /** A new server session seeded with the conversation; one attempt per incident, `maxReconnects` in all. */
  async #reconnect(reason: string, rotation: boolean): Promise<void> {
    if (this.ending || this.state.name !== 'ready') return;
    if (!rotation && this.#reconnectsUsed >= this.#limits.maxReconnects) {
      this.#dropClient();
      this.die(new AiSessionError(`GPT-Live session lost and no reconnects left [reason:${reason}, used:${this.#reconnectsUsed}]`, reason));
      return;
    }
    if (this.#rotationTimer) clearTimeout(this.#rotationTimer);
    this.#rotationTimer = undefined;
    const t0 = performance.now();
    if (rotation) this.#stats.rotations += 1;
    else {
      this.#reconnectsUsed += 1;
      this.#stats.reconnects += 1;
    }
    this.setState({ name: 'reconnecting', reason });
    this.emit('reconnecting', { reason });
    this.#log.warn({ reason, rotation }, rotation ? 'rotating the GPT-Live session' : 'GPT-Live session lost; starting a new one');
    this.#endAgentTurn('lost', 'session_lost');
    this.#endCallerTurn();
    // Delegations and backend calls belong to the old server session; their results cannot reach the new one.
    this.#backend.clear();
    this.#dropClient(rotation ? this.#limits.closeGraceMs : 0);
    try {
      await this.#openClient();
    } catch (err) {
      if (this.ending) return;
      const e = toAiError(err, 'reconnect_failed');
      this.die(new AiSessionError(`GPT-Live reconnect failed [reason:${reason}]: ${e.message}`, e.aiCode ?? 'reconnect_failed', { cause: e }));
      return;
    }
    if (this.ending) return;
    const reseededItems = this.#reseedItems().length;
    this.#becomeReady();
    for (const a of this.#heldAppends.splice(0)) this.#append(a.type, a.content, null);
    this.emit('reconnected', { reason, durationMs: Math.round(performance.now() - t0), reseededItems });
  }

  // -------------------------------------------------------------------------------------------------
  // Server events

  #onEvent(ev: LiveServerEvent): void {
    switch (ev.type) {
      case 'session.output_audio.delta':
        this.#onAudio(Buffer.from(ev.delta, 'base64'));
        break;
      case 'session.output_transcript.delta':
        this.#onAgentText(ev.delta, ev.start_ms, ev.end_ms);
        break;
      case 'session.input_transcript.delta':
        this.#onCallerText(ev.delta, ev.start_ms, ev.end_ms);
        break;
      case 'session.delegation.created':
        this.#log.info({ delegationId: ev.delegation.id, target: ev.delegation.target, responseId: ev.delegation.response_id }, 'work delegated');
        if (ev.delegation.target === 'client') this.#runClientDelegation(ev.delegation.id);
        break;
      case 'response.event':
        this.#onBackendEvent(ev.delegation_id ?? null, ev.event);
        break;
      case 'session.usage.updated':
        this.#applySeconds(this.#client?.sessionId, ev);
        if (ev.context_window !== undefined) this.#log.debug({ usageRatio: ev.context_window.usage_ratio }, 'GPT-Live context window');
        break;
      case 'session.closed':
        this.#onServerClosed(ev.reason, ev);
        break;
      case 'error':
        this.#onServerError(ev);
        break;
      case 'session.updated':
        this.#log.debug({ sessionId: ev.session.id }, 'GPT-Live session updated');
        break;
      case 'info':
        this.#log.debug({ code: ev.code }, `GPT-Live notice: ${ev.message}`);
        break;
      default:
        break;
    }
  }

  #onServerClosed(reason: string, ev: LiveServerEvent): void {
    this.#applySeconds(this.#client?.sessionId, ev);
    // The session is over on the server; the socket closing next must not count as a second loss.
    this.#dropClient();
    if (reason === 'expired' || reason === 'connection_lost') {
      void this.#reconnect(reason === 'expired' ? 'session_expired' : reason, reason === 'expired');
      return;
    }
    const code = reason === 'content' ? 'content_filter' : reason;
    this.die(new AiSessionError(`GPT-Live ended the session [reason:${reason}]`, code));
  }

  #onServerError(ev: Extract<LiveServerEvent, { type: 'error' }>): void {
    const code = ev.error.code || ev.error.type || 'server_error';
    const causeId = ev.error.client_event_id ?? ev.client_event_id;
    const cause = this.#client?.sentEvent(causeId);
    if (FATAL_CODES.has(code)) {
      this.#dropClient();
      this.die(new AiSessionError(`GPT-Live error [code:${code}]: ${ev.error.message}`, code));
      return;
    }
    const err: AiServerError = {
      code,
      type: ev.error.type,
      message: ev.error.message,
      ...(ev.error.param !== undefined ? { param: ev.error.param } : {}),
      ...(cause !== undefined ? { causeType: cause.type } : {}),
      ...(causeId !== undefined ? { causeEventId: causeId } : {}),
    };
    const report = this.#errorReports.check(code);
    if (report.report) this.#log.warn({ code, param: err.param, causeType: err.causeType, suppressed: report.suppressed }, `GPT-Live error: ${err.message}`);
    this.emit('error', err);
  }

  // -------------------------------------------------------------------------------------------------
  // Agent turns

  #onAudio(data: Buffer): void {
    const voiced = this.#level(data) >= VOICED_LEVEL;
    let t = this.#agent;
    if (!t) {
      if (!voiced) {
        this.#silentChunks += 1;
        return;
      }
      t = this.#openAgentTurn();
    }
    const now = performance.now();
    t.receivedMs += data.length / this.audioFormat.output.bytesPerMs;
    if (voiced) {
      t.lastVoicedAt = now;
      t.voicedEndMs = t.receivedMs;
    }
    this.emit('audio', { responseId: t.responseId, itemId: t.itemId, data });
    this.#armAgentEnd(t);
  }

  #onAgentText(delta: string, startMs: number, endMs: number): void {
    const last = this.#lastAgent;
    if (!this.#agent && last && startMs <= last.endMs + this.#limits.turnGapMs) {
      // Words of the turn that just ended, arriving after its audio: its line is written, so they
      // go only into the history (unless the caller cut that turn short and never heard them).
      last.endMs = Math.max(last.endMs, endMs);
      if (!last.interrupted && last.entry) last.entry.text += delta;
      this.#log.debug({ itemId: last.itemId }, 'late transcript of an ended agent turn');
      return;
    }
    const t = this.#agent ?? this.#openAgentTurn();
    t.lastEndMs = Math.max(t.lastEndMs, endMs);
    t.parts.push({ text: delta, startMs });
    t.firstStartMs ??= startMs;
    t.lastVoicedAt = Math.max(t.lastVoicedAt, performance.now());
    this.emit('transcript', { role: 'assistant', itemId: t.itemId, text: delta, final: false, atMs: this.#atMs() });
    this.#armAgentEnd(t);
  }

  #openAgentTurn(): AgentTurn {
    const n = ++this.#turnSeq;
    const replies = this.#waitingReplies.splice(0);
    for (const r of replies) clearTimeout(r.timer);
    const t: AgentTurn = {
      itemId: `live_item_${n}`,
      responseId: `live_resp_${n}`,
      startedAt: performance.now(),
      receivedMs: 0,
      voicedEndMs: 0,
      lastVoicedAt: performance.now(),
      parts: [],
      firstStartMs: undefined,
      callerSpoke: false,
      lastEndMs: 0,
      replies,
      requested: replies.length > 0,
      timer: undefined,
    };
    this.#agent = t;
    this.emit('responseCreated', { responseId: t.responseId, requested: t.requested });
    return t;
  }

  /**
   * The turn ends once no voiced audio came for turnGapMs and what came has had time to play. While
   * the caller talks over it, no voiced audio arriving for turnGapMs is enough: the model has
   * stopped for the caller, and what it sent ahead of real time is not to be played any more.
   */
  #armAgentEnd(t: AgentTurn): void {
    if (t.timer) clearTimeout(t.timer);
    t.timer = setTimeout(() => {
      t.timer = undefined;
      // Re-checked when due: the caller may have gone quiet, or begun to talk, meanwhile.
      if (this.#agentEndAt(t) > performance.now() + 1) this.#armAgentEnd(t);
      else this.#endAgentTurn('quiet');
    }, Math.max(0, this.#agentEndAt(t) - performance.now()));
    t.timer.unref();
  }

  #agentEndAt(t: AgentTurn): number {
    const overTalked = this.#callerTalking(t);
    return (overTalked ? t.lastVoicedAt : Math.max(t.lastVoicedAt, t.startedAt + t.voicedEndMs)) + this.#limits.turnGapMs;
  }

  #endAgentTurn(why: 'quiet' | 'lost', lostReason?: string): void {
    const t = this.#agent;
    // Once: a listener of the events below may end the session, which ends this turn again.
    if (!t || t.ending) return;
    t.ending = true;
    if (t.timer) clearTimeout(t.timer);
    const interrupted = why === 'quiet' && this.#callerTalking(t);
    if (interrupted) {
      // The model stopped while the caller was talking: a barge-in. The call layer flushes what is
      // still queued and reports (truncate) how much was heard, before the transcript is final.
      const c = this.#caller;
      this.#nextCallerItemId ??= `live_caller_${++this.#turnSeq}`;
      this.emit('speechStarted', c ? { itemId: c.itemId, audioStartMs: c.startMs } : { itemId: this.#nextCallerItemId, audioStartMs: Math.round(performance.now() - this.#serverStartedAt) });
    }
    this.#agent = undefined;
    this.emit('audioDone', { responseId: t.responseId, itemId: t.itemId });
    const text = this.#heardText(t);
    if (t.parts.length > 0) this.emit('transcript', { role: 'assistant', itemId: t.itemId, text, final: true, atMs: this.#atMs() });
    const entry: HistoryEntry = { role: 'assistant', text };
    this.#remember(entry);
    this.#lastAgent = t.parts.length > 0 ? { itemId: t.itemId, endMs: t.lastEndMs, interrupted, entry: this.#history.at(-1) === entry ? entry : undefined } : undefined;
    const outcome: ResponseOutcome =
      why === 'lost'
        ? { responseId: t.responseId, status: 'failed', reason: lostReason ?? 'session_lost', requested: t.requested, error: { code: lostReason ?? 'session_lost', message: 'the server session ended during the turn' } }
        : interrupted
          ? { responseId: t.responseId, status: 'cancelled', reason: 'turn_detected', requested: t.requested }
          : { responseId: t.responseId, status: 'completed', requested: t.requested };
    for (const r of t.replies) settle(r, outcome);
    this.emit('responseDone', outcome);
    this.#maybeRotate();
  }

  /** The turn's words the caller heard: all of them, or those begun before the heard length (truncate()). */
  #heardText(t: AgentTurn): string {
    const heard = this.#heard.get(t.itemId);
    this.#heard.delete(t.itemId);
    const parts = heard === undefined || t.firstStartMs === undefined ? t.parts : t.parts.filter((p) => p.startMs < t.firstStartMs! + heard);
    return parts.map((p) => p.text).join('').trim();
  }

  /** Mean absolute sample value of a chunk in the session format (G.711 decoded). */
  #level(data: Buffer): number {
    let pcm: Int16Array;
    if (this.audioFormat.output.linear) {
      const n = data.length >> 1;
      // An Int16Array view needs an even offset; a Buffer from the pool may not have one.
      pcm = data.byteOffset % 2 === 0 ? new Int16Array(data.buffer, data.byteOffset, n) : new Int16Array(Uint8Array.prototype.slice.call(data, 0, n * 2).buffer);
    } else {
      if (this.#scratch.length < data.length) this.#scratch = new Int16Array(data.length);
      const out = this.#scratch.subarray(0, data.length);
      pcm = this.audioFormat.output.format === 'pcmu' ? decodeMuLaw(data, out) : decodeALaw(data, out);
    }
    let sum = 0;
    for (let i = 0; i < pcm.length; i++) sum += pcm[i] < 0 ? -pcm[i] : pcm[i];
    return pcm.length > 0 ? sum / pcm.length : 0;
  }

  /** True when the caller is audibly talking now, or their words are arriving as transcript. */
  #callerTalking(t: AgentTurn): boolean {
    const heardAt = this.#callerLoudAt;
    const loud = heardAt > t.startedAt && performance.now() - heardAt < this.#limits.turnGapMs;
    return loud || (t.callerSpoke && this.#caller !== undefined);
  }

  // -------------------------------------------------------------------------------------------------
  // Caller turns

  #onCallerText(delta: string, startMs: number, endMs: number): void {
    let c = this.#caller;
    if (c && startMs - c.endMs > this.#limits.turnGapMs) {
      this.#endCallerTurn();
      c = undefined;
    }
    if (!c) {
      c = { itemId: this.#nextCallerItemId ?? `live_caller_${++this.#turnSeq}`, text: '', startMs, endMs, timer: undefined };
      this.#nextCallerItemId = undefined;
      this.#caller = c;
    }
    c.text += delta;
    c.endMs = Math.max(c.endMs, endMs);
    if (this.#agent && !this.#agent.ending) {
      this.#agent.callerSpoke = true;
      this.#armAgentEnd(this.#agent);
    }
    this.emit('transcript', { role: 'user', itemId: c.itemId, text: delta, final: false, atMs: this.#atMs() });
    if (c.timer) clearTimeout(c.timer);
    c.timer = setTimeout(() => this.#endCallerTurn(), this.#limits.turnGapMs);
    c.timer.unref();
  }

  #endCallerTurn(): void {
    const c = this.#caller;
    if (!c) return;
    this.#caller = undefined;
    if (c.timer) clearTimeout(c.timer);
    this.emit('speechStopped', { itemId: c.itemId, audioEndMs: c.endMs });
    this.emit('transcript', { role: 'user', itemId: c.itemId, text: c.text.trim(), final: true, atMs: this.#atMs() });
    this.#remember({ role: 'user', text: c.text.trim() });
    this.#maybeRotate();
  }

  #atMs(): number {
    return Math.round(performance.now() - this.#t0);
  }

  // -------------------------------------------------------------------------------------------------
  // Tools: Responses delegation

  #onBackendEvent(delegationId: string | null, event: { type: string } & Record<string, unknown>): void {
    const key = delegationId ?? '';
    const usage = backendUsageOf(event);
    switch (event.type) {
      case 'response.created':
        this.#trackBackend(key);
        return;
      case 'response.output_item.done': {
        const call = functionCallOf(event);
        if (call === undefined) return;
        if ('problem' in call) {
          this.#log.warn({ delegationId }, `GPT-Live backend event refused: ${call.problem}`);
          return;
        }
        const b = this.#backend.get(key) ?? this.#trackBackend(key);
        if (b.calls.has(call.callId)) return;
        b.calls.set(call.callId, this.#runCall(call.name, call.callId, call.arguments));
        return;
      }
      case 'response.completed':
      case 'response.failed':
      case 'response.incomplete': {
        if (usage) this.#addBackendUsage(usage);
        const b = this.#backend.get(key);
        if (!b) return;
        b.completed = true;
        if (event.type !== 'response.completed') {
          // Nothing waits for the outputs of a response that failed: what the tools did is told as context.
          this.#log.warn({ delegationId, type: event.type }, 'GPT-Live backend response did not complete');
          b.generation = -1;
        }
        void this.#returnOutputs(key, b);
        return;
      }
      default:
        // New Responses event types are tolerated (Live reference: ServerEvent).
        return;
    }
  }

  /** A backend response to follow; the oldest is forgotten past MAX_BACKEND_RESPONSES (one that never ended). */
  #trackBackend(key: string): BackendCalls {
    const b: BackendCalls = { calls: new Map(), completed: false, generation: this.#generation };
    this.#backend.delete(key);
    this.#backend.set(key, b);
    while (this.#backend.size > MAX_BACKEND_RESPONSES) this.#backend.delete(this.#backend.keys().next().value as string);
    return b;
  }

  /** Once the backend response is done and every call has finished: the outputs, then `response.create`. */
  async #returnOutputs(key: string, b: BackendCalls): Promise<void> {
    if (b.calls.size === 0) {
      this.#backend.delete(key);
      return;
    }
    const records = await Promise.all(b.calls.values());
    if (this.#backend.get(key) === b) this.#backend.delete(key);
    const client = this.#client;
    if (this.ending || !client || b.generation !== this.#generation || this.state.name !== 'ready') {
      // Nothing waits for these outputs (the server session that asked is gone, or its response
      // failed): what the tools did is told to the current session as context.
      this.#tellResults(records, null);
      return;
    }
    try {
      for (const r of records) client.send({ type: 'response.item.create', item: { type: 'function_call_output', call_id: r.callId, output: r.result.output } });
      client.send({ type: 'response.create' });
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'tool outputs not sent');
      return;
    }
    // What a result wants said next (end_call's goodbye, transfer_call's announcement) steers the
    // voice model as silent context: the backend's continued answer is what it speaks.
    const steer = records.flatMap((r) => (typeof r.result.followUp === 'object' ? [r.result.followUp.instructions] : []));
    if (steer.length > 0) this.#append('session.thinking.append', steer.join('\n'), null);
  }

  // -------------------------------------------------------------------------------------------------
  // Tools: client delegation

  /** A chat model of ours does the delegated work with our tools; its answer goes back for the delegation. */
  #runClientDelegation(delegationId: string): void {
    const d = this.#live.delegation;
    if (d.type !== 'client') {
      this.#log.warn({ delegationId }, 'client delegation on a session configured for responses delegation; ignored');
      return;
    }
    const ac = new AbortController();
    this.#delegations.add(ac);
    const generation = this.#generation;
    void (async () => {
      let answer = '';
      const toolRecords: ToolCallRecord[] = [];
      try {
        const messages: ChatMessage[] = [
          { role: 'system', content: `${d.instructions ?? this.#opts.instructions}\n\nYou work behind the voice agent of a phone call: it asked you to act on the conversation below. Use the tools when needed; answer in a few words with what the agent should tell the caller.` },
          ...this.#history.slice(-40).map((e): ChatMessage => (e.role === 'developer' ? { role: 'system', content: e.text } : { role: e.role, content: e.text })),
        ];
        if (this.#caller && this.#caller.text.trim() !== '') messages.push({ role: 'user', content: this.#caller.text.trim() });
        const tools = [...this.#tools.values()].map(({ name, description, parameters }) => ({ name, description, parameters }));
        const rounds = d.maxToolRounds ?? 3;
        for (let round = 0; ; round++) {
          const res = await chat(d.endpoint, { model: d.model, messages, maxTokens: d.maxTokens, ...(round < rounds && tools.length > 0 ? { tools } : {}) }, ac.signal, () => undefined);
          if (res.usage) this.#addBackendUsage({ input_tokens: res.usage.prompt_tokens, output_tokens: res.usage.completion_tokens });
          if (res.toolCalls.length === 0 || round >= rounds) {
            answer = res.text.trim();
            break;
          }
          messages.push({ role: 'assistant', content: res.text || null, tool_calls: res.toolCalls });
          const recs = await Promise.all(res.toolCalls.map((c) => this.#runCall(c.function.name, c.id, c.function.arguments, ac)));
          for (const r of recs) messages.push({ role: 'tool', tool_call_id: r.callId, content: r.result.output });
          toolRecords.push(...recs);
        }
      } catch (err) {
        if (ac.signal.aborted || this.ending) return;
        const message = err instanceof Error ? err.message : String(err);
        this.#log.warn({ delegationId }, `client delegation failed: ${message}`);
        this.emit('error', { code: 'delegation_failed', message });
        answer = 'The request could not be completed just now. Tell the caller briefly and offer to try again.';
      } finally {
        this.#delegations.delete(ac);
      }
      if (this.ending) return;
      const sameSession = generation === this.#generation;
      const instructions = toolRecords.flatMap((r) => (typeof r.result.followUp === 'object' ? [r.result.followUp.instructions] : []));
      const silent = toolRecords.length > 0 && toolRecords.every((r) => r.result.followUp === 'none') && answer === '';
      const content = [...instructions, answer].filter((s) => s !== '').join('\n') || 'The task is done.';
      // A delegation id is valid only on the connection that created it.
      this.#append(silent ? 'session.thinking.append' : 'session.commentary.append', silent ? summarize(toolRecords) : content, sameSession ? delegationId : null);
      this.#maybeRotate();
    })();
  }

  /** Run one call; its `followUp` is the agent turn that follows the result (or none, per the result). */
  async #runCall(name: string, callId: string, argsText: string, parent?: AbortController): Promise<ToolCallRecord> {
    const abort = new AbortController();
    const onParent = (): void => abort.abort(parent!.signal.reason);
    parent?.signal.addEventListener('abort', onParent, { once: true });
    let resolveFollowUp!: (o: ResponseOutcome | undefined) => void;
    const followUp = new Promise<ResponseOutcome | undefined>((r) => (resolveFollowUp = r));
    this.#busyTools += 1;
    this.#toolAborts.add(abort);
    try {
      const record = await runToolCall(this.#toolEnv, { name, callId, argsText, abort, followUp });
      this.emit('toolCall', record);
      if (record.result.followUp === 'none') resolveFollowUp(undefined);
      else this.#awaitReply().then(resolveFollowUp, () => resolveFollowUp(undefined));
      return record;
    } finally {
      parent?.signal.removeEventListener('abort', onParent);
      this.#toolAborts.delete(abort);
      this.#busyTools -= 1;
      this.#maybeRotate();
    }
  }

  /** Tell a (new) server session what tools did, as silent context. */
  #tellResults(records: ToolCallRecord[], delegationId: string | null): void {
    if (records.length === 0) return;
    const text = summarize(records);
    this.#remember({ role: 'developer', text });
    if (this.state.name === 'ready') this.#append('session.thinking.append', text, delegationId);
  }

  #addBackendUsage(u: LiveBackendUsage): void {
    const input = nonNeg(u.input_tokens);
    const output = nonNeg(u.output_tokens);
    const cached = nonNeg(u.input_tokens_details?.cached_tokens);
    addUsage(this.#tokens, {
      input_tokens: input,
      output_tokens: output,
      total_tokens: nonNeg(u.total_tokens) || input + output,
      input_token_details: { text_tokens: input, cached_tokens: cached, cached_tokens_details: { text_tokens: cached } },
      output_token_details: { text_tokens: output },
    });
    this.emit('usage', this.usage);
  }

  // -------------------------------------------------------------------------------------------------
  // The AiSession surface

  /** Send caller audio (the session format); dropped and counted unless ready or over the socket backlog. */
  appendAudio(chunk: Buffer | Uint8Array | Int16Array): void {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const client = this.#client;
    if (this.state.name !== 'ready' || !client || bytes.length === 0) {
      if (bytes.length > 0) this.#dropAudio(bytes.length);
      return;
    }
    let sent: boolean;
    try {
      sent = client.appendAudio(bytes);
    } catch {
      sent = false;
    }
    if (!sent) {
      this.#dropAudio(bytes.length);
      return;
    }
    const t = this.#agent;
    if (t && !t.ending && this.#level(bytes) >= CALLER_LOUD_LEVEL) {
      // Talked over: the agent turn may now end as soon as the model stops sending.
      const wasTalking = this.#callerTalking(t);
      this.#callerLoudAt = performance.now();
      if (!wasTalking) this.#armAgentEnd(t);
    }
    this.#stats.appendedChunks += 1;
    this.#stats.appendedBytes += bytes.length;
  }

  #dropAudio(n: number): void {
    this.#stats.droppedAudioChunks += 1;
    this.#stats.droppedAudioBytes += n;
  }

  /**
   * Ask the model to speak (its instructions, or "reply now") with `session.commentary.append`;
   * resolves when the next agent turn ends, `incomplete` when none starts within `replyTimeoutMs`,
   * `not_sent` when the session is not ready or too many replies wait. Never rejects.
   */
  createResponse(opts: ResponseCreateOptions = {}): Promise<ResponseOutcome> {
    if (this.closed || this.ending) return Promise.resolve(notSent('session_closed'));
    if (this.state.name !== 'ready' && this.state.name !== 'reconnecting') return Promise.resolve(notSent('not_ready'));
    if (this.#waitingReplies.length >= this.#limits.responseQueueMax) {
      this.#stats.responsesDropped += 1;
      return Promise.resolve(notSent('queue_full'));
    }
    const content = opts.instructions !== undefined && opts.instructions.trim() !== '' ? `${SPEAK_NOW} ${opts.instructions.trim()}` : SPEAK_NOW;
    if (!this.#append('session.commentary.append', content, null)) return Promise.resolve(notSent('session_lost'));
    this.#stats.responsesRequested += 1;
    return this.#awaitReply();
  }

  /** Resolves with the outcome of the next agent turn (or `incomplete` after replyTimeoutMs). */
  #awaitReply(): Promise<ResponseOutcome> {
    return new Promise<ResponseOutcome>((resolve) => {
      const reply: Reply = {
        resolve,
        timer: setTimeout(() => {
          const i = this.#waitingReplies.indexOf(reply);
          if (i >= 0) this.#waitingReplies.splice(i, 1);
          resolve({ responseId: undefined, status: 'incomplete', reason: 'no_speech', requested: true });
        }, this.#limits.replyTimeoutMs),
      };
      reply.timer.unref();
      this.#waitingReplies.push(reply);
    });
  }

  /** GPT-Live has no client cancel: the voice model stops when the caller talks. Logged only. */
  cancelResponse(): void {
    this.#log.debug('cancelResponse(): GPT-Live decides itself when to stop speaking');
  }

  /** What the caller heard of an agent turn (from the playout): trims that turn's transcript and history. */
  truncate(itemId: string, audioEndMs: number): void {
    const known = this.#agent?.itemId === itemId;
    if (!known) {
      this.#stats.truncatesSkipped += 1;
      return;
    }
    this.#heard.set(itemId, Math.max(0, Math.floor(audioEndMs)));
    this.#stats.truncates += 1;
  }

  /** Caller input as text (DTMF): silent context the model acts on when asked to reply. */
  sendUserText(text: string): void {
    if (this.closed) throw new InvalidStateError(`sendUserText() on a ${this.state.name} AI session`);
    this.#remember({ role: 'user', text });
    this.#append('session.thinking.append', text, null);
  }

  /** A note for the model (`session.instructions.append`). */
  sendSystemText(text: string): void {
    if (this.closed) throw new InvalidStateError(`sendSystemText() on a ${this.state.name} AI session`);
    this.#remember({ role: 'developer', text });
    this.#append('session.instructions.append', text, null);
  }

  /** Send an append (content capped at ~500 tokens); false when there is no server session to take it. */
  #append(type: AppendType, content: string, delegationId: string | null): boolean {
    let text = content;
    if (text.length > MAX_APPEND_CHARS) {
      this.#log.warn({ type, chars: text.length }, `${type} over ${MAX_APPEND_CHARS} characters cut`);
      text = text.slice(0, MAX_APPEND_CHARS);
    }
    if (this.state.name === 'reconnecting' && delegationId === null) {
      // Held for the new server session (a delegation id would not be valid there), in bounded memory.
      if (this.#heldAppends.length >= MAX_HELD_APPENDS) {
        this.#log.warn({ type, held: this.#heldAppends.length }, 'append dropped while reconnecting (too many held)');
        return false;
      }
      this.#heldAppends.push({ type, content: text });
      return true;
    }
    const client = this.#client;
    if (this.state.name !== 'ready' || !client) return false;
    try {
      client.send({ type, content: text, delegation_id: delegationId } as LiveClientEvent);
      return true;
    } catch (err) {
      this.#log.debug({ err: (err as Error).message, type }, 'append not sent');
      return false;
    }
  }

  /** Declare a tool with its handler; with Responses delegation a started session gets the new tool list. */
  registerTool(tool: ToolRegistration): void {
    if (this.closed) throw new InvalidStateError(`registerTool() on a ${this.state.name} AI session [tool:${tool.name}]`);
    if (typeof tool.handler !== 'function') throw new TypeError(`registerTool() needs a handler [tool:${tool.name}]`);
    assertToolName(tool.name);
    this.#tools.set(tool.name, tool);
    const client = this.#client;
    if (this.#live.delegation.type === 'responses' && this.state.name === 'ready' && client) {
      try {
        client.send({ type: 'session.update', session: { delegation: this.#wireDelegation() } });
      } catch (err) {
        this.#log.debug({ err: (err as Error).message }, 'tool update not sent');
      }
    }
  }
}

/** Our format as the Live wire object (G.711 at 8000 Hz, PCM16 at 24000 Hz). */
export function liveWireFormat(f: AiAudioFormat): LiveWireAudioFormat {
  if (f === 'pcm') return { type: 'audio/pcm', rate: 24000 };
  return f === 'pcmu' ? { type: 'audio/pcmu', rate: 8000 } : { type: 'audio/pcma', rate: 8000 };
}

function settle(r: Reply, o: ResponseOutcome): void {
  clearTimeout(r.timer);
  r.resolve(o);
}

function summarize(records: ToolCallRecord[]): string {
  return records.map((r) => `Tool ${r.name} ${r.error ? 'failed' : 'returned'}: ${r.result.output}`).join('\n');
}

function nonNeg(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
}

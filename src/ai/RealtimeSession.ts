/**
 * Protocol logic of one OpenAI Realtime (GA) conversation, one per call, over a {@link RealtimeClient}:
 * configuration (`session.update`, checked), caller audio, one-at-a-time responses, barge-in
 * truncation, function tools, transcripts, usage and cost, and survival of a dropped or expired
 * server session by reconnecting and re-seeding the conversation from its transcript.
 */
import { performance } from 'node:perf_hooks';
import { AiSessionError, InvalidStateError } from '../util/errors';
import { TypedEmitter } from '../util/TypedEmitter';
import { ReportLimiter } from '../util/ReportLimiter';
import type { Logger } from '../logging/logger';
import { aiAudioFormatInfo, wireAudioFormat, type AiAudioFormatInfo } from './audioFormat';
import type {
  ClientEvent,
  ErrorEvent,
  ResponseCreatedEvent,
  ResponseDoneEvent,
  ServerEvent,
  SessionUpdatedEvent,
  WireFunctionTool,
  WireItem,
  WireNewItem,
  WireResponseCreateBody,
  WireSessionConfig,
  WireToolChoice,
  WireTruncation,
  WireTurnDetection,
} from './events';
import { RealtimeClient, type RealtimeClientOptions } from './RealtimeClient';
import type {
  AiServerError,
  AiSession,
  AiSessionEvents,
  AiSessionOptions,
  AiSessionState,
  AiSessionStats,
  FunctionToolDefinition,
  ResponseCreateOptions,
  ResponseOutcome,
  ToolCallRecord,
  ToolChoice,
  ToolRegistration,
  ToolResult,
  TruncationOptions,
  TurnDetectionOptions,
} from './types';
import { emptySessionStats } from './types';
import { addUsage, emptyUsage, resolvePrices, summarizeUsage, type PriceTable, type UsageSummary } from './usage';

const DEFAULTS = {
  maxSessionAgeMs: 55 * 60_000,
  sessionUpdateTimeoutMs: 10_000,
  toolTimeoutMs: 20_000,
  maxReconnects: 5,
  reseedMaxItems: 40,
  reseedMaxChars: 16_000,
  historyMaxItems: 200,
  responseQueueMax: 8,
  maxSendBufferBytes: 1024 * 1024,
} as const;

/** Server limit for one `input_audio_buffer.append` (realtime-protocol.md §3). */
const MAX_APPEND_BYTES = 15 * 1024 * 1024;
/** Metadata key that ties a `response.created` to the response.create that asked for it. */
const REQUEST_TAG = 'sip_ai_request';
/** Retries of a response.create that lost a race with a server (VAD) response. */
const MAX_CREATE_RETRIES = 3;
/** Tool call ids remembered to ignore duplicates (output_item.done and response.done both carry them). */
const SEEN_CALLS_CAP = 512;
/** Text items accepted before the session is ready. */
const UNSENT_TEXT_CAP = 32;
const TOOL_NAME_RE = /^[a-zA-Z0-9_-]{1,64}$/;

interface ResponseRequest {
  id: string;
  opts: ResponseCreateOptions;
  resolve: (o: ResponseOutcome) => void;
  eventId?: string;
  retries: number;
  cancelOnCreate: boolean;
}

interface ActiveResponse {
  id: string;
  req: ResponseRequest | undefined;
}

interface PendingCall {
  callId: string;
  result: Promise<ToolResult>;
  abort: AbortController;
}

interface ToolBatch {
  responseId: string;
  generation: number;
  calls: PendingCall[];
  reason: string | undefined;
  /** #flushBatch has started on it (once). */
  flushing?: boolean;
  resolveFollowUp: (o: ResponseOutcome | undefined) => void;
  followUp: Promise<ResponseOutcome | undefined>;
}

interface HistoryEntry {
  key: string;
  role: 'user' | 'assistant' | 'system' | 'tool';
  text: string;
  /** Decoded output audio bytes received for this (assistant) item. */
  audioBytes: number;
  /** Set by truncate(): how much of the item the caller heard. */
  heardMs?: number;
  /** A tool call (role 'tool'): what the model asked for and, once it finished, the output. */
  call?: { callId: string; name: string; arguments: string; output?: string };
  /** Generation of the server session this tool call's pair was last sent to. */
  sentGeneration?: number;
}

/** Item ids of one server session remembered for truncate() at most. */
const SESSION_ITEMS_CAP = 4096;

/** History key of a tool call. */
const toolKey = (callId: string): string => `tool_${callId}`;

interface PendingUpdate {
  eventId: string;
  resolve: (ev: SessionUpdatedEvent) => void;
  reject: (err: AiSessionError) => void;
}

type Resolved = Required<Pick<AiSessionOptions, keyof typeof DEFAULTS>>;

/** Options of a RealtimeSession: the backend-neutral session options plus the connection. */
export interface RealtimeSessionInit {
  session: AiSessionOptions;
  connection: RealtimeClientOptions;
}

/**
 * One Realtime conversation. Call start() as soon as the INVITE arrives so connecting overlaps with
 * ringing; it resolves once the server has accepted the whole configuration.
 */
export class RealtimeSession extends TypedEmitter<AiSessionEvents> implements AiSession {
  /** Formats of appendAudio() input and `audio` output. */
  readonly audioFormat: { input: AiAudioFormatInfo; output: AiAudioFormatInfo };

  readonly #opts: AiSessionOptions;
  readonly #limits: Resolved;
  readonly #connection: RealtimeClientOptions;
  readonly #log: Logger;
  readonly #prices: PriceTable;
  #client: RealtimeClient | undefined;
  #generation = 0;
  #state: AiSessionState = { name: 'idle' };
  #t0 = 0;

  readonly #declared = new Map<string, FunctionToolDefinition>();
  readonly #tools = new Map<string, ToolRegistration>();
  #toolsVersion = 0;
  #toolsVersionSent = 0;

  #queue: ResponseRequest[] = [];
  #inFlight: ResponseRequest | undefined;
  readonly #active = new Map<string, ActiveResponse>();
  #reqSeq = 0;

  readonly #batches = new Map<string, ToolBatch>();
  readonly #seenCalls = new Set<string>();
  #toolsFlushing = 0;

  readonly #history = new Map<string, HistoryEntry>();
  #localSeq = 0;
  #unsent: HistoryEntry[] = [];

  #pendingUpdate: PendingUpdate | undefined;
  #userSpeaking = false;
  #rotationTimer: NodeJS.Timeout | undefined;
  #rotationDue = false;
  #reconnectsUsed = 0;
  readonly #errorReports = new ReportLimiter({ intervalMs: 60_000, maxKeys: 64 });
  /** Item ids the current server session knows (cleared when a new one opens): truncate only these. */
  readonly #sessionItems = new Set<string>();
  /** Waiting for the session to be ready again after a reconnect (or to end). */
  #readyWaiters: (() => void)[] = [];
  #dropping = false;
  #droppedInStreak = 0;

  #usage = emptyUsage();
  readonly #stats: AiSessionStats = emptySessionStats();

  /** Create an idle session; nothing is sent until start(). */
  constructor(init: RealtimeSessionInit, logger: Logger) {
    super();
    this.#opts = init.session;
    this.#connection = init.connection;
    this.#log = logger;
    this.#prices = resolvePrices(init.session.prices);
    const o = init.session;
    this.#limits = {
      maxSessionAgeMs: o.maxSessionAgeMs ?? DEFAULTS.maxSessionAgeMs,
      sessionUpdateTimeoutMs: o.sessionUpdateTimeoutMs ?? DEFAULTS.sessionUpdateTimeoutMs,
      toolTimeoutMs: o.toolTimeoutMs ?? DEFAULTS.toolTimeoutMs,
      maxReconnects: o.maxReconnects ?? DEFAULTS.maxReconnects,
      reseedMaxItems: o.reseedMaxItems ?? DEFAULTS.reseedMaxItems,
      reseedMaxChars: o.reseedMaxChars ?? DEFAULTS.reseedMaxChars,
      historyMaxItems: Math.max(1, o.historyMaxItems ?? DEFAULTS.historyMaxItems),
      responseQueueMax: Math.max(1, o.responseQueueMax ?? DEFAULTS.responseQueueMax),
      maxSendBufferBytes: o.maxSendBufferBytes ?? DEFAULTS.maxSendBufferBytes,
    };
    this.audioFormat = { input: aiAudioFormatInfo(o.inputFormat), output: aiAudioFormatInfo(o.outputFormat) };
    for (const t of o.tools ?? []) {
      assertToolName(t.name);
      this.#declared.set(t.name, { name: t.name, description: t.description, parameters: t.parameters });
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Lifecycle

  /** Current state. */
  get state(): AiSessionState {
    return this.#state;
  }

  /** True once closed or died. */
  get closed(): boolean {
    return this.#state.name === 'closed' || this.#state.name === 'died';
  }

  /** Token totals and estimated cost so far (all server sessions of this call). */
  get usage(): UsageSummary {
    return summarizeUsage(this.#usage, this.#prices);
  }

  /** A snapshot of the counters. */
  get stats(): AiSessionStats {
    return { ...this.#stats };
  }

  /** Server session id of the current connection. */
  get serverSessionId(): string | undefined {
    return this.#client?.sessionId;
  }

  #setState(next: AiSessionState): void {
    const prev = this.#state;
    this.#state = next;
    if (next.name === 'ready' || next.name === 'closed' || next.name === 'died') for (const w of this.#readyWaiters.splice(0)) w();
    this.#log.debug({ from: prev.name, to: next.name }, `AI session ${prev.name} -> ${next.name}`);
    this.emit('stateChange', next, prev);
  }

  /**
   * Connect and send the configuration; resolves on `session.updated`. Rejects with AiSessionError
   * (no 'died' event) when the connection fails or the server rejects any part of the configuration:
   * the call must not continue on a default voice or audio format.
   */
  async start(): Promise<void> {
    if (this.#state.name !== 'idle') throw new InvalidStateError(`start() on a ${this.#state.name} AI session`);
    this.#t0 = performance.now();
    this.#setState({ name: 'starting' });
    try {
      await this.#openClient();
    } catch (err) {
      const e = toAiError(err, 'start_failed');
      if (!this.closed) {
        this.#cleanup('start_failed');
        this.#setState({ name: 'died', reason: e.aiCode ?? 'start_failed', error: e });
      }
      throw e;
    }
    if (this.closed) throw new AiSessionError('AI session closed during start()', 'closed');
    this.#stats.startMs = Math.round(performance.now() - this.#t0);
    this.#log.info({ connectMs: this.#stats.connectMs, startMs: this.#stats.startMs }, 'AI session ready');
    this.#becomeReady();
    for (const e of this.#unsent.splice(0)) this.#sendTextItem(e);
    this.#pump();
  }

  /** Close the socket and end the session (idempotent). Pending responses resolve as not sent. */
  close(): void {
    if (this.closed) return;
    this.#pendingUpdate?.reject(new AiSessionError('AI session closed while configuring', 'closed'));
    this.#cleanup('session_closed');
    this.#setState({ name: 'closed' });
    this.emit('close');
  }

  #die(err: AiSessionError): void {
    if (this.closed) return;
    this.#log.error({ aiCode: err.aiCode }, err.message);
    this.#cleanup('session_died');
    this.#setState({ name: 'died', reason: err.aiCode ?? 'died', error: err });
    this.emit('died', err);
  }

  #cleanup(reason: string): void {
    this.#dropClient();
    if (this.#rotationTimer) clearTimeout(this.#rotationTimer);
    this.#rotationTimer = undefined;
    this.#loseResponses(reason);
    for (const req of this.#queue.splice(0)) req.resolve(notSent(reason));
    this.#dropBatches(reason);
  }

  /** Tool calls of a lost server session can never be answered there: abort them and release their waiters. */
  #dropBatches(reason: string): void {
    for (const batch of this.#batches.values()) {
      for (const c of batch.calls) c.abort.abort(new AiSessionError(`tool call abandoned [callId:${c.callId}, reason:${reason}]`, reason));
      batch.resolveFollowUp(undefined);
    }
    this.#batches.clear();
  }

  #dropClient(): void {
    const c = this.#client;
    this.#client = undefined;
    this.#generation += 1;
    if (c) c.close();
  }

  #becomeReady(): void {
    this.#setState({ name: 'ready' });
    this.#rotationDue = false;
    if (this.#rotationTimer) clearTimeout(this.#rotationTimer);
    this.#rotationTimer = undefined;
    const age = this.#limits.maxSessionAgeMs;
    if (age > 0) {
      this.#rotationTimer = setTimeout(() => {
        this.#rotationDue = true;
        this.#maybeRotate();
      }, age);
      this.#rotationTimer.unref();
    }
    if (this.#toolsVersionSent !== this.#toolsVersion) this.#sendToolsUpdate();
  }

  async #openClient(): Promise<void> {
    const client = new RealtimeClient(this.#connection, this.#log);
    this.#client = client;
    this.#generation += 1;
    this.#sessionItems.clear();
    client.on('event', (ev) => {
      if (this.#client === client) this.#onEvent(ev);
    });
    client.on('died', (err) => {
      if (this.#client === client) this.#onClientDied(err);
    });
    try {
      await client.connect();
      if (this.#client !== client) throw new AiSessionError('AI session closed while connecting', 'closed');
      this.#stats.connectMs ??= client.connectMs;
      await this.#configure(client);
    } catch (err) {
      if (this.#client === client) this.#dropClient();
      throw err;
    }
  }

  #configure(client: RealtimeClient): Promise<void> {
    const session = this.buildSessionConfig();
    const version = this.#toolsVersion;
    return new Promise<void>((resolve, reject) => {
      let eventId: string;
      try {
        eventId = client.send({ type: 'session.update', session });
      } catch (err) {
        reject(toAiError(err, 'connection_lost'));
        return;
      }
      const timeoutMs = this.#limits.sessionUpdateTimeoutMs;
      const timer = setTimeout(() => {
        this.#pendingUpdate = undefined;
        reject(new AiSessionError(`session.update not acknowledged [timeoutMs:${timeoutMs}]`, 'session_update_timeout'));
      }, timeoutMs);
      this.#pendingUpdate = {
        eventId,
        resolve: (ev) => {
          clearTimeout(timer);
          this.#pendingUpdate = undefined;
          const mismatch = this.#checkEffectiveConfig(ev);
          if (mismatch) {
            this.#log.error({ param: mismatch.param }, mismatch.message);
            reject(mismatch);
            return;
          }
          this.#toolsVersionSent = version;
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          this.#pendingUpdate = undefined;
          reject(err);
        },
      };
    });
  }

  /** The server may echo its effective config: refuse to run on anything but the format and voice asked for. */
  #checkEffectiveConfig(ev: SessionUpdatedEvent): (AiSessionError & { param: string }) | undefined {
    const audio = (ev.session as { audio?: { input?: { format?: { type?: unknown } }; output?: { format?: { type?: unknown }; voice?: unknown } } }).audio;
    const checks: [string, unknown, string][] = [
      ['session.audio.input.format.type', audio?.input?.format?.type, wireAudioFormat(this.#opts.inputFormat).type],
      ['session.audio.output.format.type', audio?.output?.format?.type, wireAudioFormat(this.#opts.outputFormat).type],
      ['session.audio.output.voice', audio?.output?.voice, this.#opts.voice],
    ];
    for (const [param, got, want] of checks) {
      if (typeof got === 'string' && got !== want) {
        const err = new AiSessionError(
          `session.updated reports a different configuration [param:${param}, wanted:${want}, got:${got}]`,
          'session_config_mismatch',
        ) as AiSessionError & { param: string };
        err.param = param;
        return err;
      }
    }
    return undefined;
  }

  /** The GA `session` object this session sends in `session.update` (exposed for tests and logs). */
  buildSessionConfig(): WireSessionConfig {
    const o = this.#opts;
    const session: WireSessionConfig = {
      type: 'realtime',
      output_modalities: ['audio'],
      instructions: o.instructions,
      audio: {
        input: {
          format: wireAudioFormat(o.inputFormat),
          noise_reduction: o.noiseReduction ? { type: o.noiseReduction } : null,
          transcription: o.transcription
            ? omitUndefined({ model: o.transcription.model, language: o.transcription.language, prompt: o.transcription.prompt })
            : null,
          turn_detection: wireTurnDetection(o.turnDetection),
        },
        output: omitUndefined({ format: wireAudioFormat(o.outputFormat), voice: o.voice, speed: o.speed }),
      },
    };
    const tools = this.#toolList();
    if (tools.length > 0) session.tools = tools;
    if (o.toolChoice !== undefined) session.tool_choice = wireToolChoice(o.toolChoice);
    if (o.maxOutputTokens !== undefined) session.max_output_tokens = o.maxOutputTokens;
    if (o.truncation !== undefined) session.truncation = wireTruncation(o.truncation);
    return session;
  }

  #toolList(): WireFunctionTool[] {
    const byName = new Map<string, FunctionToolDefinition>(this.#declared);
    for (const [name, t] of this.#tools) byName.set(name, t);
    return [...byName.values()].map((t) => ({ type: 'function', name: t.name, description: t.description, parameters: t.parameters }));
  }

  // -------------------------------------------------------------------------------------------------
  // Audio in

  /**
   * Send caller audio (in the input format) as one `input_audio_buffer.append`. Nothing is buffered:
   * while the session is not ready, or the socket backlog is over its cap, the chunk is dropped and
   * counted. Int16Array samples are sent in host order, which is little-endian on every supported host.
   */
  appendAudio(chunk: Buffer | Uint8Array | Int16Array): void {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (bytes.length === 0) return;
    if (bytes.length > MAX_APPEND_BYTES) {
      throw new RangeError(`appendAudio() chunk too large [bytes:${bytes.length}, max:${MAX_APPEND_BYTES}]`);
    }
    const client = this.#client;
    if (this.#state.name !== 'ready' || client === undefined) {
      this.#dropAudio(bytes.length, this.#state.name);
      return;
    }
    if (client.bufferedAmount > this.#limits.maxSendBufferBytes) {
      this.#dropAudio(bytes.length, 'send_backlog');
      return;
    }
    if (this.#dropping) {
      this.#log.info({ droppedChunks: this.#droppedInStreak }, 'caller audio flowing again');
      this.#dropping = false;
      this.#droppedInStreak = 0;
    }
    this.#tryClient('input_audio_buffer.append', (c) => c.appendAudio(bytes));
    this.#stats.appendedChunks += 1;
    this.#stats.appendedBytes += bytes.length;
  }

  #dropAudio(bytes: number, why: string): void {
    this.#stats.droppedAudioChunks += 1;
    this.#stats.droppedAudioBytes += bytes;
    this.#droppedInStreak += 1;
    if (!this.#dropping) {
      this.#dropping = true;
      // Logged once per streak: 50 lines a second would drown the journal.
      this.#log.debug({ why }, `dropping caller audio [why:${why}]`);
    }
  }

  #trySend(event: ClientEvent): string | undefined {
    return this.#tryClient(event.type, (c) => c.send(event));
  }

  /** Run one send on the client, if any; a socket that just went away is not an error here. */
  #tryClient(type: string, send: (client: RealtimeClient) => string): string | undefined {
    const client = this.#client;
    if (!client) return undefined;
    try {
      return send(client);
    } catch (err) {
      // The socket just went away; its 'died' drives the reconnect.
      this.#log.debug({ type, err: (err as Error).message }, 'send skipped: socket not open');
      return undefined;
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Responses

  /**
   * Ask the model to respond. Only one response is active at a time: the request waits until the
   * active one's `response.done`. Resolves with the outcome once this response is done; never
   * rejects (`not_sent` when it could not be sent), so fire-and-forget is safe.
   */
  createResponse(opts: ResponseCreateOptions = {}): Promise<ResponseOutcome> {
    if (this.closed) return Promise.resolve(notSent('session_closed'));
    if (this.#queue.length >= this.#limits.responseQueueMax) {
      this.#stats.responsesDropped += 1;
      this.#log.warn({ queued: this.#queue.length }, `response.create refused [reason:queue_full, queued:${this.#queue.length}]`);
      return Promise.resolve(notSent('queue_full'));
    }
    return this.#enqueue(opts, false);
  }

  #enqueue(opts: ResponseCreateOptions, front: boolean): Promise<ResponseOutcome> {
    return new Promise<ResponseOutcome>((resolve) => {
      const req: ResponseRequest = { id: `req_${++this.#reqSeq}`, opts, resolve, retries: 0, cancelOnCreate: false };
      if (front) this.#queue.unshift(req);
      else this.#queue.push(req);
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#state.name !== 'ready' || this.#client === undefined) return;
    if (this.#inFlight || this.#active.size > 0 || this.#toolsFlushing > 0) return;
    const req = this.#queue.shift();
    if (!req) return;
    const body: WireResponseCreateBody = omitUndefined({
      instructions: req.opts.instructions,
      conversation: req.opts.conversation,
      tool_choice: req.opts.toolChoice === undefined ? undefined : wireToolChoice(req.opts.toolChoice),
      max_output_tokens: req.opts.maxOutputTokens,
      metadata: { ...(req.opts.metadata ?? {}), [REQUEST_TAG]: req.id },
    });
    const eventId = this.#trySend({ type: 'response.create', response: body });
    if (eventId === undefined) {
      this.#queue.unshift(req);
      return;
    }
    req.eventId = eventId;
    this.#inFlight = req;
    this.#stats.responsesRequested += 1;
  }

  /** Cancel the active response (`response.cancel`); a request not yet created is cancelled on creation. */
  cancelResponse(): void {
    if (this.#state.name !== 'ready') return;
    const active = [...this.#active.keys()];
    if (active.length === 0) {
      if (this.#inFlight) this.#inFlight.cancelOnCreate = true;
      else this.#log.debug('cancelResponse(): nothing active');
      return;
    }
    for (const id of active) this.#trySend({ type: 'response.cancel', response_id: id });
  }

  #onResponseCreated(ev: ResponseCreatedEvent): void {
    const id = ev.response.id;
    const tag = ev.response.metadata?.[REQUEST_TAG];
    let req: ResponseRequest | undefined;
    // Without the metadata echo, the next creation after our request is taken to be ours.
    if (this.#inFlight && (tag === this.#inFlight.id || tag === undefined)) {
      req = this.#inFlight;
      this.#inFlight = undefined;
    }
    this.#active.set(id, { id, req });
    this.emit('responseCreated', { responseId: id, requested: req !== undefined });
    if (req?.cancelOnCreate) this.#trySend({ type: 'response.cancel', response_id: id });
  }

  #onResponseDone(ev: ResponseDoneEvent): void {
    const r = ev.response;
    const act = this.#active.get(r.id);
    this.#active.delete(r.id);
    let req = act?.req;
    if (!act && this.#inFlight && r.metadata?.[REQUEST_TAG] === this.#inFlight.id) {
      req = this.#inFlight;
      this.#inFlight = undefined;
    }
    if (r.usage) {
      addUsage(this.#usage, r.usage);
      this.emit('usage', this.usage);
    }
    const status = r.status === 'in_progress' || r.status === undefined ? 'completed' : r.status;
    const reason = r.status_details?.reason ?? undefined;
    const outcome: ResponseOutcome = {
      responseId: r.id,
      status,
      requested: req !== undefined,
      ...(reason ? { reason } : {}),
      ...(r.usage ? { usage: r.usage } : {}),
      ...(status === 'failed'
        ? { error: { code: r.status_details?.error?.code ?? 'response_failed', message: r.status_details?.error?.message ?? 'response failed' } }
        : {}),
    };
    this.#log.debug({ responseId: r.id, status, reason }, 'response done');
    this.emit('responseDone', outcome);
    req?.resolve(outcome);

    for (const item of r.output ?? []) this.#onFunctionCall(r.id, item);
    const batch = this.#batches.get(r.id);
    if (batch) {
      batch.reason = reason;
      void this.#flushBatch(batch);
    }
    this.#pump();
    this.#maybeRotate();
  }

  #loseResponses(reason: string): void {
    const error = { code: reason, message: `response lost [reason:${reason}]` };
    for (const a of this.#active.values()) {
      const outcome: ResponseOutcome = { responseId: a.id, status: 'failed', reason, requested: a.req !== undefined, error };
      this.emit('responseDone', outcome);
      a.req?.resolve(outcome);
    }
    this.#active.clear();
    if (this.#inFlight) {
      this.#inFlight.resolve({ responseId: undefined, status: 'failed', reason, requested: true, error });
      this.#inFlight = undefined;
    }
    // Their response.done will never come: tool calls they carried are flushed when they finish.
    if (reason === 'session_lost') {
      for (const batch of this.#batches.values()) {
        if (batch.flushing) continue;
        batch.reason = reason;
        void this.#flushBatch(batch);
      }
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Barge-in

  /**
   * Tell the server how much of an assistant item the caller heard: `conversation.item.truncate` with
   * content_index 0 and `audio_end_ms` floored and clamped at 0. A server error here is logged (warn)
   * and counted, never fatal.
   */
  truncate(itemId: string, audioEndMs: number): void {
    const ms = Number.isFinite(audioEndMs) ? Math.max(0, Math.floor(audioEndMs)) : 0;
    const entry = this.#history.get(itemId);
    if (entry) entry.heardMs = ms;
    if (this.#state.name !== 'ready') {
      this.#log.debug({ itemId, audioEndMs: ms }, 'truncate skipped: session not ready');
      return;
    }
    // Audio of a session lost to a reconnect can still be playing when the caller barges in: that
    // item is not in this session (the server would answer item_truncate_invalid_item_id). What the
    // caller heard of it is kept in the history for the next re-seed.
    if (!this.#sessionItems.has(itemId)) {
      this.#stats.truncatesSkipped += 1;
      this.#log.debug({ itemId, audioEndMs: ms }, 'truncate skipped: the item belongs to an earlier server session');
      return;
    }
    const id = this.#trySend({ type: 'conversation.item.truncate', item_id: itemId, content_index: 0, audio_end_ms: ms });
    if (id !== undefined) this.#stats.truncates += 1;
  }

  // -------------------------------------------------------------------------------------------------
  // Text input

  /** Add a user text item (e.g. DTMF digits). Before start() completes it is sent once ready. */
  sendUserText(text: string): void {
    this.#addText('user', text);
  }

  /** Add a system note to the conversation. */
  sendSystemText(text: string): void {
    this.#addText('system', text);
  }

  #addText(role: 'user' | 'system', text: string): void {
    if (this.closed) throw new InvalidStateError(`send${role === 'user' ? 'User' : 'System'}Text() on a ${this.#state.name} AI session`);
    const entry = this.#remember(`local_${++this.#localSeq}`, role);
    entry.text = text;
    if (this.#state.name === 'ready') this.#sendTextItem(entry);
    else if (this.#state.name !== 'reconnecting') {
      // While reconnecting the history entry is enough: the re-seed replays it.
      if (this.#unsent.length >= UNSENT_TEXT_CAP) {
        this.#unsent.shift();
        this.#stats.historyEvicted += 1;
      }
      this.#unsent.push(entry);
    }
  }

  /** Send a finished tool call as its pair of items (function_call, function_call_output) to this session. */
  #sendToolPair(e: HistoryEntry): boolean {
    const c = e.call;
    if (!c || c.output === undefined || e.sentGeneration === this.#generation) return false;
    const a = this.#trySend({ type: 'conversation.item.create', item: { type: 'function_call', call_id: c.callId, name: c.name, arguments: c.arguments } });
    const b = this.#trySend({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: c.callId, output: c.output } });
    if (a === undefined || b === undefined) return false;
    e.sentGeneration = this.#generation;
    return true;
  }

  #sendTextItem(e: HistoryEntry, text: string = e.text): boolean {
    if (e.role === 'tool') return this.#sendToolPair(e);
    const item: WireNewItem =
      e.role === 'assistant'
        ? { type: 'message', role: 'assistant', content: [{ type: 'output_text', text }] }
        : { type: 'message', role: e.role, content: [{ type: 'input_text', text }] };
    return this.#trySend({ type: 'conversation.item.create', item }) !== undefined;
  }

  // -------------------------------------------------------------------------------------------------
  // Tools

  /** Declare a tool with its handler. After start() the server is sent the new tool list. */
  registerTool(tool: ToolRegistration): void {
    if (this.closed) throw new InvalidStateError(`registerTool() on a ${this.#state.name} AI session [tool:${tool.name}]`);
    assertToolName(tool.name);
    if (typeof tool.handler !== 'function') throw new TypeError(`registerTool() needs a handler [tool:${tool.name}]`);
    this.#tools.set(tool.name, tool);
    this.#toolsVersion += 1;
    if (this.#state.name === 'ready') this.#sendToolsUpdate();
  }

  #sendToolsUpdate(): void {
    const id = this.#trySend({ type: 'session.update', session: { type: 'realtime', tools: this.#toolList() } });
    if (id !== undefined) this.#toolsVersionSent = this.#toolsVersion;
  }

  #onFunctionCall(responseId: string, item: WireItem): void {
    if (item.type !== 'function_call') return;
    if (item.status !== undefined && item.status !== 'completed') return;
    const callId = item.call_id;
    if (typeof callId !== 'string' || callId === '' || this.#seenCalls.has(callId)) return;
    this.#seenCalls.add(callId);
    if (this.#seenCalls.size > SEEN_CALLS_CAP) this.#seenCalls.delete(this.#seenCalls.values().next().value as string);

    let batch = this.#batches.get(responseId);
    if (!batch) {
      let resolveFollowUp!: (o: ResponseOutcome | undefined) => void;
      const followUp = new Promise<ResponseOutcome | undefined>((r) => (resolveFollowUp = r));
      batch = { responseId, generation: this.#generation, calls: [], reason: undefined, resolveFollowUp, followUp };
      this.#batches.set(responseId, batch);
    }
    const entry = this.#remember(toolKey(callId), 'tool');
    entry.call = { callId, name: item.name ?? '', arguments: item.arguments ?? '' };
    entry.sentGeneration = this.#generation;
    const abort = new AbortController();
    const result = this.#runTool(item.name ?? '', callId, item.arguments ?? '', abort, batch.followUp);
    batch.calls.push({ callId, result, abort });
  }

  async #runTool(
    name: string,
    callId: string,
    argsText: string,
    abort: AbortController,
    followUp: Promise<ResponseOutcome | undefined>,
  ): Promise<ToolResult> {
    const t0 = performance.now();
    let args: unknown;
    let error: string | undefined;
    let result: ToolResult | undefined;
    const tool = this.#tools.get(name);
    if (!tool) {
      error = this.#declared.has(name) ? `no handler registered for tool '${name}'` : `unknown tool '${name}'`;
    } else {
      try {
        args = argsText.trim() === '' ? {} : JSON.parse(argsText);
      } catch (err) {
        error = `invalid JSON arguments for tool '${name}': ${(err as Error).message}`;
      }
    }
    if (tool && error === undefined) {
      const timeoutMs = this.#limits.toolTimeoutMs;
      const timer = setTimeout(
        () => abort.abort(new AiSessionError(`tool timed out [tool:${name}, callId:${callId}, timeoutMs:${timeoutMs}]`, 'tool_timeout')),
        timeoutMs,
      );
      try {
        // Race the abort so a handler that ignores its signal cannot hold the batch forever.
        const got = await Promise.race([tool.handler(args, { callId, signal: abort.signal, followUp }), rejectOnAbort(abort.signal)]);
        if (got === null || typeof got !== 'object' || typeof got.output !== 'string') {
          error = `tool '${name}' returned no output string`;
        } else {
          result = got;
        }
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
      } finally {
        clearTimeout(timer);
      }
    }
    if (result === undefined) result = { output: JSON.stringify({ error: error ?? 'tool failed' }) };
    const durationMs = Math.round(performance.now() - t0);
    this.#stats.toolCalls += 1;
    if (error !== undefined) this.#stats.toolErrors += 1;
    const record: ToolCallRecord = { name, callId, args, result, durationMs, ...(error !== undefined ? { error } : {}) };
    if (error !== undefined) this.#log.warn({ tool: name, callId, durationMs }, `tool call failed [tool:${name}, callId:${callId}]: ${error}`);
    else this.#log.info({ tool: name, callId, durationMs }, 'tool call done');
    this.emit('toolCall', record);
    return result;
  }

  /** After the carrying response is done: every output, then at most one response.create. */
  async #flushBatch(batch: ToolBatch): Promise<void> {
    if (batch.flushing) return;
    batch.flushing = true;
    this.#toolsFlushing += 1;
    try {
      const results = await Promise.all(batch.calls.map((c) => c.result));
      this.#batches.delete(batch.responseId);
      batch.calls.forEach((c, i) => {
        const e = this.#history.get(toolKey(c.callId));
        if (e?.call) e.call.output = results[i].output;
      });
      // Lost mid-call: the new session gets the finished pairs (from the re-seed, or here), then the follow-up.
      if (this.#state.name === 'reconnecting') await new Promise<void>((r) => this.#readyWaiters.push(r));
      if (this.#state.name !== 'ready') {
        batch.resolveFollowUp(undefined);
        return;
      }
      if (batch.generation === this.#generation) {
        batch.calls.forEach((c, i) => {
          this.#trySend({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: c.callId, output: results[i].output } });
        });
      } else {
        let carried = 0;
        for (const c of batch.calls) {
          const e = this.#history.get(toolKey(c.callId));
          if (e && this.#sendToolPair(e)) carried += 1;
        }
        this.#log.info({ responseId: batch.responseId, calls: results.length, carried }, 'tool calls carried over to the new server session');
      }
      const instructions = results.flatMap((r) => (typeof r.followUp === 'object' && r.followUp !== null ? [r.followUp.instructions] : []));
      let wanted = !results.every((r) => r.followUp === 'none');
      // A barge-in cancelled the carrying response: the caller's new turn brings its own reply.
      if (wanted && instructions.length === 0 && batch.reason === 'turn_detected' && this.#vadCreatesResponses()) wanted = false;
      if (!wanted) {
        batch.resolveFollowUp(undefined);
        return;
      }
      const opts: ResponseCreateOptions = instructions.length > 0 ? { instructions: instructions.join('\n\n') } : {};
      void this.#enqueue(opts, true).then(batch.resolveFollowUp);
    } finally {
      this.#toolsFlushing -= 1;
      this.#pump();
      this.#maybeRotate();
    }
  }

  #vadCreatesResponses(): boolean {
    const td = this.#opts.turnDetection;
    return td !== null && td.createResponse !== false;
  }

  // -------------------------------------------------------------------------------------------------
  // Server events

  /** Note an item id this server session has told us about (bounded). */
  #sawItem(id: unknown): void {
    if (typeof id !== 'string' || id === '') return;
    this.#sessionItems.add(id);
    if (this.#sessionItems.size > SESSION_ITEMS_CAP) this.#sessionItems.delete(this.#sessionItems.values().next().value as string);
  }

  #onEvent(ev: ServerEvent): void {
    const e = ev as { item_id?: unknown; item?: { id?: unknown } };
    this.#sawItem(e.item_id);
    this.#sawItem(e.item?.id);
    switch (ev.type) {
      case 'session.updated':
        if (this.#pendingUpdate) this.#pendingUpdate.resolve(ev);
        return;
      case 'error':
        this.#onServerError(ev);
        return;
      case 'input_audio_buffer.speech_started':
        this.#userSpeaking = true;
        this.#remember(ev.item_id, 'user');
        this.emit('speechStarted', { itemId: ev.item_id, audioStartMs: ev.audio_start_ms });
        return;
      case 'input_audio_buffer.speech_stopped':
        this.#userSpeaking = false;
        this.emit('speechStopped', { itemId: ev.item_id, audioEndMs: ev.audio_end_ms });
        this.#maybeRotate();
        return;
      case 'input_audio_buffer.committed':
        this.#remember(ev.item_id, 'user');
        return;
      case 'input_audio_buffer.timeout_triggered':
        this.emit('inputTimeout', omitUndefined({ itemId: ev.item_id, audioStartMs: ev.audio_start_ms, audioEndMs: ev.audio_end_ms }));
        return;
      case 'conversation.item.added':
        if (ev.item.type === 'message' && ev.item.role === 'user' && ev.item.id && ev.item.content?.some((c) => c.type === 'input_audio')) {
          this.#remember(ev.item.id, 'user');
        }
        return;
      case 'conversation.item.input_audio_transcription.delta':
        this.#remember(ev.item_id, 'user');
        this.#emitTranscript('user', ev.item_id, ev.delta, false);
        return;
      case 'conversation.item.input_audio_transcription.completed':
        this.#remember(ev.item_id, 'user').text = ev.transcript;
        this.#emitTranscript('user', ev.item_id, ev.transcript, true);
        return;
      case 'conversation.item.input_audio_transcription.failed':
        this.#log.debug({ itemId: ev.item_id, code: ev.error?.code }, 'caller transcription failed');
        return;
      case 'response.created':
        this.#onResponseCreated(ev);
        return;
      case 'response.output_item.added':
        if (ev.item.type === 'message' && ev.item.id) this.#remember(ev.item.id, 'assistant');
        return;
      case 'response.output_item.done':
        this.#onFunctionCall(ev.response_id, ev.item);
        return;
      case 'response.output_audio.delta': {
        const data = Buffer.from(ev.delta, 'base64');
        this.#remember(ev.item_id, 'assistant').audioBytes += data.length;
        this.emit('audio', { responseId: ev.response_id, itemId: ev.item_id, data });
        return;
      }
      case 'response.output_audio.done':
        this.emit('audioDone', { responseId: ev.response_id, itemId: ev.item_id });
        return;
      case 'response.output_audio_transcript.delta':
      case 'response.output_text.delta':
        this.#remember(ev.item_id, 'assistant');
        this.#emitTranscript('assistant', ev.item_id, ev.delta, false);
        return;
      case 'response.output_audio_transcript.done':
        this.#remember(ev.item_id, 'assistant').text = ev.transcript;
        this.#emitTranscript('assistant', ev.item_id, ev.transcript, true);
        return;
      case 'response.output_text.done':
        this.#remember(ev.item_id, 'assistant').text = ev.text;
        this.#emitTranscript('assistant', ev.item_id, ev.text, true);
        return;
      case 'response.done':
        this.#onResponseDone(ev);
        return;
      default:
        return;
    }
  }

  #emitTranscript(role: 'user' | 'assistant', itemId: string, text: string, final: boolean): void {
    this.emit('transcript', { role, itemId, text, final, atMs: Math.round(performance.now() - this.#t0) });
  }

  #onServerError(ev: ErrorEvent): void {
    const e = ev.error;
    const code = e.code ?? e.type ?? 'server_error';
    const cause = this.#client?.sentEvent(e.event_id);
    const pending = this.#pendingUpdate;
    if (pending && (e.event_id === pending.eventId || (!e.event_id && (e.param ?? '').startsWith('session')))) {
      const param = e.param ?? 'unknown';
      const msg = `session.update rejected [param:${param}, code:${code}]: ${e.message}`;
      this.#log.error({ param, code }, msg);
      pending.reject(new AiSessionError(msg, code));
      return;
    }
    if (code === 'response_cancel_not_active') {
      this.#log.debug({ code }, 'response.cancel raced the end of the response');
      return;
    }
    if (code === 'session_expired') {
      this.#log.info({ code }, 'server session expired; reconnecting');
      void this.#reconnect('session_expired');
      return;
    }
    if (cause?.type === 'response.create' && this.#onCreateFailed(e.event_id ?? '', code, e.message)) return;

    const info: AiServerError = omitUndefined({
      code,
      type: e.type,
      message: e.message,
      param: e.param ?? undefined,
      causeType: cause?.type,
      causeEventId: e.event_id ?? undefined,
    });
    if (cause?.type === 'conversation.item.truncate') {
      this.#stats.truncateErrors += 1;
      const t = cause.event as { item_id?: string; audio_end_ms?: number };
      this.#log.warn({ code, itemId: t.item_id, audioEndMs: t.audio_end_ms }, `truncate failed [itemId:${t.item_id}, audioEndMs:${t.audio_end_ms}, code:${code}]: ${e.message}`);
    } else {
      // An error storm is counted in full but logged once per code per minute.
      const r = this.#errorReports.check(code);
      if (r.report) {
        this.#log.warn(
          { code, param: e.param, causeType: cause?.type, heldBack: r.suppressed || undefined },
          `Realtime error [code:${code}, cause:${cause?.type ?? 'none'}]: ${e.message}${r.suppressed ? ` (+${r.suppressed} more since the last report)` : ''}`,
        );
      }
    }
    this.emit('error', info);
  }

  /** A response.create of ours failed; true when handled (re-queued behind a racing server response). */
  #onCreateFailed(eventId: string, code: string, message: string): boolean {
    let req: ResponseRequest | undefined;
    if (this.#inFlight?.eventId === eventId) {
      req = this.#inFlight;
      this.#inFlight = undefined;
    } else {
      // A server response was mistaken for ours (no metadata echo): it keeps running, unowned.
      for (const a of this.#active.values()) {
        if (a.req?.eventId === eventId) {
          req = a.req;
          a.req = undefined;
        }
      }
    }
    if (!req) return false;
    if (code === 'conversation_already_has_active_response' && req.retries < MAX_CREATE_RETRIES) {
      req.retries += 1;
      this.#log.debug({ request: req.id, retries: req.retries }, 'response.create raced an active response; re-queued');
      this.#queue.unshift(req);
    } else {
      this.#log.warn({ code }, `response.create failed [request:${req.id}, code:${code}]: ${message}`);
      req.resolve({ responseId: undefined, status: 'failed', requested: true, error: { code, message } });
    }
    this.#pump();
    return true;
  }

  #onClientDied(err: AiSessionError): void {
    if (this.#pendingUpdate) {
      this.#pendingUpdate.reject(err);
      return;
    }
    if (this.#state.name === 'ready') void this.#reconnect(err.aiCode ?? 'connection_lost', err);
  }

  // -------------------------------------------------------------------------------------------------
  // Resilience

  #maybeRotate(): void {
    if (!this.#rotationDue || this.#state.name !== 'ready') return;
    if (this.#active.size > 0 || this.#inFlight || this.#toolsFlushing > 0 || this.#batches.size > 0 || this.#userSpeaking) return;
    void this.#reconnect('rotation');
  }

  async #reconnect(reason: string, cause?: AiSessionError): Promise<void> {
    if (this.#state.name !== 'ready') return;
    // Planned rotations do not count against the limit: a long call rotates every maxSessionAgeMs.
    if (reason !== 'rotation' && this.#reconnectsUsed >= this.#limits.maxReconnects) {
      this.#die(
        new AiSessionError(`AI session lost and reconnect limit reached [reason:${reason}, reconnects:${this.#reconnectsUsed}]`, cause?.aiCode ?? reason, { cause }),
      );
      return;
    }
    if (reason === 'rotation') {
      this.#stats.rotations += 1;
    } else {
      this.#reconnectsUsed += 1;
      this.#stats.reconnects += 1;
    }
    const t0 = performance.now();
    this.#log.warn({ reason, reconnects: this.#reconnectsUsed }, `AI session reconnecting [reason:${reason}]`);
    this.#setState({ name: 'reconnecting', reason });
    this.emit('reconnecting', { reason });
    this.#dropClient();
    this.#rotationDue = false;
    this.#userSpeaking = false;
    this.#loseResponses('session_lost');
    // Tool calls keep running: their results go to the new session (#flushBatch).
    let reseeded = 0;
    try {
      await this.#openClient();
      reseeded = this.#reseed();
    } catch (err) {
      if (this.closed) return;
      const e = toAiError(err, 'reconnect_failed');
      this.#die(new AiSessionError(`AI session reconnect failed [reason:${reason}, aiCode:${e.aiCode ?? 'none'}]: ${e.message}`, e.aiCode ?? 'reconnect_failed', { cause: e }));
      return;
    }
    if (this.closed) return;
    this.#unsent = [];
    const durationMs = Math.round(performance.now() - t0);
    this.#log.info({ reason, durationMs, reseeded }, 'AI session reconnected');
    this.#becomeReady();
    this.emit('reconnected', { reason, durationMs, reseededItems: reseeded });
    this.#pump();
  }

  /** Replay the transcript so far as text items (tool calls as their pairs), oldest first, within the item and character caps. */
  #reseed(): number {
    const picked: { entry: HistoryEntry; text: string }[] = [];
    let chars = 0;
    const entries = [...this.#history.values()];
    for (let i = entries.length - 1; i >= 0 && picked.length < this.#limits.reseedMaxItems; i--) {
      const e = entries[i];
      // A finished tool call goes back as its pair (a running one is carried over when it finishes).
      const text = e.role === 'tool' ? (e.call?.output !== undefined ? `${e.call.arguments}${e.call.output}` : '') : this.#heardText(e).trim();
      if (text === '') continue;
      if (chars + text.length > this.#limits.reseedMaxChars) break;
      chars += text.length;
      picked.push({ entry: e, text });
    }
    picked.reverse();
    let sent = 0;
    for (const p of picked) if (this.#sendTextItem(p.entry, p.text)) sent += 1;
    return sent;
  }

  /** An interrupted assistant item is replayed only as far as the caller heard it (by audio share). */
  #heardText(e: HistoryEntry): string {
    if (e.role !== 'assistant' || e.heardMs === undefined || e.audioBytes === 0) return e.text;
    const receivedMs = e.audioBytes / this.audioFormat.output.bytesPerMs;
    const share = receivedMs > 0 ? e.heardMs / receivedMs : 1;
    if (share >= 1) return e.text;
    let cut = Math.floor(e.text.length * share);
    const space = e.text.lastIndexOf(' ', cut);
    if (space > 0) cut = space;
    return cut > 0 ? `${e.text.slice(0, cut).trimEnd()}…` : '';
  }

  #remember(key: string, role: HistoryEntry['role']): HistoryEntry {
    let e = this.#history.get(key);
    if (!e) {
      e = { key, role, text: '', audioBytes: 0 };
      this.#history.set(key, e);
      if (this.#history.size > this.#limits.historyMaxItems) {
        this.#history.delete(this.#history.keys().next().value as string);
        this.#stats.historyEvicted += 1;
      }
    }
    return e;
  }
}

// ---------------------------------------------------------------------------------------------------
// Mapping helpers

function notSent(reason: string): ResponseOutcome {
  return { responseId: undefined, status: 'not_sent', reason, requested: true, error: { code: reason, message: `response not sent [reason:${reason}]` } };
}

function toAiError(err: unknown, fallbackCode: string): AiSessionError {
  if (err instanceof AiSessionError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AiSessionError(message, fallbackCode, { cause: err });
}

function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise<never>((_, reject) => {
    const fail = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, { once: true });
  });
}

function assertToolName(name: string): void {
  if (typeof name !== 'string' || !TOOL_NAME_RE.test(name)) {
    throw new TypeError(`invalid tool name [name:${String(name)}] (letters, digits, _ and -, at most 64)`);
  }
}

function omitUndefined<T extends object>(obj: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[k] = v;
  return out as T;
}

/** Map turn-detection options to the GA wire shape. */
export function wireTurnDetection(td: TurnDetectionOptions): WireTurnDetection | null {
  if (td === null) return null;
  if (td.type === 'server_vad') {
    return omitUndefined({
      type: 'server_vad',
      threshold: td.threshold,
      prefix_padding_ms: td.prefixPaddingMs,
      silence_duration_ms: td.silenceDurationMs,
      idle_timeout_ms: td.idleTimeoutMs,
      create_response: td.createResponse,
      interrupt_response: td.interruptResponse,
    }) as WireTurnDetection;
  }
  return omitUndefined({
    type: 'semantic_vad',
    eagerness: td.eagerness,
    create_response: td.createResponse,
    interrupt_response: td.interruptResponse,
  }) as WireTurnDetection;
}

function wireToolChoice(c: ToolChoice): WireToolChoice {
  return typeof c === 'string' ? c : { type: 'function', name: c.name };
}

function wireTruncation(t: TruncationOptions): WireTruncation {
  if (typeof t === 'string') return t;
  return omitUndefined({
    type: 'retention_ratio',
    retention_ratio: t.retentionRatio,
    token_limits: t.postInstructionsTokens === undefined ? undefined : { post_instructions: t.postInstructionsTokens },
  }) as WireTruncation;
}

/**
 * Protocol logic of one OpenAI Realtime (GA) conversation, one per call, over a {@link RealtimeClient}:
 * configuration (`session.update`, checked), caller audio, server events, barge-in truncation,
 * transcripts, usage and cost, and survival of a dropped or expired server session by reconnecting
 * and re-seeding the conversation. It composes four parts of its own (src/ai/realtime/): the
 * {@link ResponseQueue} (one response at a time), the {@link ToolRunner} (function calls), the
 * {@link McpRunner} (remote MCP servers: calls reported, approval requests answered) and the
 * {@link ConversationHistory} (what a new server session is re-seeded with); its lifecycle is the
 * one every backend shares ({@link SessionLifecycle}).
 */
import { performance } from 'node:perf_hooks';
import { AiSessionError, InvalidStateError } from '../util/errors';
import { ReportLimiter } from '../util/ReportLimiter';
import type { Logger } from '../logging/logger';
import { aiAudioFormatInfo, wireAudioFormat, type AiAudioFormatInfo } from './audioFormat';
import type { ClientEvent, ErrorEvent, ServerEvent, SessionUpdatedEvent, WireSessionConfig, WireTool } from './events';
import { RealtimeClient, type RealtimeClientOptions } from './RealtimeClient';
import { ConversationHistory } from './realtime/ConversationHistory';
import { ResponseQueue } from './realtime/ResponseQueue';
import { McpRunner } from './realtime/McpRunner';
import { ToolRunner } from './realtime/ToolRunner';
import { omitUndefined, wireToolChoice, wireTruncation, wireTurnDetection, type ServerLink } from './realtime/wire';
import { notSent, SessionLifecycle, toAiError, type SessionEnd } from './SessionLifecycle';
import type {
  AiServerError,
  AiSession,
  AiSessionOptions,
  AiSessionStats,
  ResponseCreateOptions,
  ResponseOutcome,
  ToolRegistration,
} from './types';
import { emptySessionStats } from './types';
import { addUsage, emptyUsage, resolvePrices, summarizeUsage, type PriceTable, type UsageSummary } from './usage';

export { wireTurnDetection } from './realtime/wire';

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
export class RealtimeSession extends SessionLifecycle implements AiSession {
  /** Formats of appendAudio() input and `audio` output. */
  readonly audioFormat: { input: AiAudioFormatInfo; output: AiAudioFormatInfo };

  readonly #opts: AiSessionOptions;
  readonly #limits: Resolved;
  readonly #connection: RealtimeClientOptions;
  readonly #log: Logger;
  readonly #prices: PriceTable;
  #client: RealtimeClient | undefined;
  #generation = 0;
  #t0 = 0;
  /** The current server session, as the parts send on it. */
  readonly #link: ServerLink;

  readonly #responses: ResponseQueue;
  readonly #tools: ToolRunner;
  readonly #mcp: McpRunner;
  readonly #history: ConversationHistory;
  #toolsVersion = 0;
  #toolsVersionSent = 0;

  #pendingUpdate: PendingUpdate | undefined;
  #userSpeaking = false;
  #rotationTimer: NodeJS.Timeout | undefined;
  #rotationDue = false;
  #reconnectsUsed = 0;
  readonly #errorReports = new ReportLimiter({ intervalMs: 60_000, maxKeys: 64 });
  #dropping = false;
  #droppedInStreak = 0;

  #usage = emptyUsage();
  readonly #stats: AiSessionStats = emptySessionStats();

  /**
   * Create an idle session; nothing is sent until start().
   * @throws TypeError when a declared tool has an invalid name.
   */
  constructor(init: RealtimeSessionInit, logger: Logger) {
    super(logger);
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

    const session = this;
    this.#link = {
      get generation(): number {
        return session.#generation;
      },
      send: (event) => this.#trySend(event),
    };
    this.#history = new ConversationHistory(this.#limits, this.audioFormat.output.bytesPerMs, this.#stats);
    this.#responses = new ResponseQueue(
      {
        maxQueued: this.#limits.responseQueueMax,
        link: this.#link,
        mayCreate: () => this.state.name === 'ready' && this.#client !== undefined && !this.#tools.flushing,
        onCreated: (info) => this.emit('responseCreated', info),
        onUsage: (usage) => {
          addUsage(this.#usage, usage);
          this.emit('usage', this.usage);
        },
        onDone: (outcome) => this.emit('responseDone', outcome),
      },
      this.#stats,
      logger,
    );
    const td = o.turnDetection;
    this.#tools = new ToolRunner(
      {
        declared: o.tools ?? [],
        timeoutMs: this.#limits.toolTimeoutMs,
        vadResponds: td !== null && td.createResponse !== false,
        history: this.#history,
        link: this.#link,
        state: () => this.state.name,
        settled: () => this.settled(),
        followUp: (opts) => this.#responses.requestFirst(opts),
        onToolCall: (record) => this.emit('toolCall', record),
        onFlushed: () => {
          this.#responses.pump();
          this.#maybeRotate();
        },
      },
      this.#stats,
      logger,
    );
    this.#mcp = new McpRunner(
      {
        servers: o.mcpServers ?? [],
        link: this.#link,
        vadResponds: td !== null && td.createResponse !== false,
        followUp: (opts) => this.#responses.requestFirst(opts),
        onToolCall: (record) => this.emit('toolCall', record),
        onError: (error) => this.emit('error', error),
      },
      this.#stats,
      logger,
    );
  }

  // -------------------------------------------------------------------------------------------------
  // Lifecycle

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

  /**
   * Connect and send the configuration; resolves on `session.updated`. Rejects with AiSessionError
   * (no 'died' event) when the connection fails or the server rejects any part of the configuration:
   * the call must not continue on a default voice or audio format.
   */
  async start(): Promise<void> {
    this.#t0 = performance.now();
    await this.startWith(() => this.#openClient());
    this.#stats.startMs = Math.round(performance.now() - this.#t0);
    this.#log.info({ connectMs: this.#stats.connectMs, startMs: this.#stats.startMs }, 'AI session ready');
    this.#becomeReady();
    for (const e of this.#history.takeHeld()) this.#history.send(e, this.#link);
    this.#responses.pump();
  }

  /** Socket, rotation timer, responses and tool calls go; a configuration still waiting is refused. */
  protected release(end: SessionEnd): void {
    if (end === 'closed') this.#pendingUpdate?.reject(new AiSessionError('AI session closed while configuring', 'closed'));
    const reason = end === 'closed' ? 'session_closed' : end === 'died' ? 'session_died' : 'start_failed';
    this.#dropClient();
    if (this.#rotationTimer) clearTimeout(this.#rotationTimer);
    this.#rotationTimer = undefined;
    this.#responses.lose(reason);
    this.#responses.dropWaiting(reason);
    this.#tools.abandon(reason);
  }

  /** Logged as an error, then the shared ending. */
  protected override die(err: AiSessionError): void {
    if (this.ending) return;
    this.#log.error({ aiCode: err.aiCode }, err.message);
    super.die(err);
  }

  #dropClient(): void {
    const c = this.#client;
    this.#client = undefined;
    this.#generation += 1;
    if (c) c.close();
  }

  #becomeReady(): void {
    this.setState({ name: 'ready' });
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
    this.#history.newServerSession();
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
            ? omitUndefined({ model: o.transcription.model, language: o.transcription.language, prompt: o.transcription.prompt, delay: o.transcription.delay })
            : null,
          turn_detection: wireTurnDetection(o.turnDetection),
        },
        output: omitUndefined({ format: wireAudioFormat(o.outputFormat), voice: o.voice, speed: o.speed }),
      },
    };
    const tools = this.#wireTools();
    if (tools.length > 0) session.tools = tools;
    if (o.toolChoice !== undefined) session.tool_choice = wireToolChoice(o.toolChoice);
    if (o.maxOutputTokens !== undefined) session.max_output_tokens = o.maxOutputTokens;
    if (o.truncation !== undefined) session.truncation = wireTruncation(o.truncation);
    if (o.reasoning?.effort !== undefined) session.reasoning = { effort: o.reasoning.effort };
    if (o.parallelToolCalls !== undefined) session.parallel_tool_calls = o.parallelToolCalls;
    if (o.prompt !== undefined) {
      session.prompt = omitUndefined({
        id: o.prompt.id,
        version: o.prompt.version,
        variables: o.prompt.variables && Object.keys(o.prompt.variables).length > 0 ? { ...o.prompt.variables } : undefined,
      });
    }
    return session;
  }

  /** Function tools, then MCP servers: `session.tools` is replaced as a whole on every update. */
  #wireTools(): WireTool[] {
    return [...this.#tools.wireTools(), ...this.#mcp.wireTools()];
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
    if (this.state.name !== 'ready' || client === undefined) {
      this.#dropAudio(bytes.length, this.state.name);
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
    return this.#responses.request(opts);
  }

  /** Cancel the active response (`response.cancel`); a request not yet created is cancelled on creation. */
  cancelResponse(): void {
    if (this.state.name !== 'ready') return;
    this.#responses.cancel();
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
    this.#history.heard(itemId, ms);
    if (this.state.name !== 'ready') {
      this.#log.debug({ itemId, audioEndMs: ms }, 'truncate skipped: session not ready');
      return;
    }
    // Audio of a session lost to a reconnect can still be playing when the caller barges in: that
    // item is not in this session (the server would answer item_truncate_invalid_item_id). What the
    // caller heard of it is kept in the history for the next re-seed.
    if (!this.#history.inServerSession(itemId)) {
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
    if (this.closed) throw new InvalidStateError(`send${role === 'user' ? 'User' : 'System'}Text() on a ${this.state.name} AI session`);
    const entry = this.#history.addLocal(role, text);
    if (this.state.name === 'ready') this.#history.send(entry, this.#link);
    // While reconnecting the history entry is enough: the re-seed replays it.
    else if (this.state.name !== 'reconnecting') this.#history.hold(entry);
  }

  // -------------------------------------------------------------------------------------------------
  // Tools

  /** Declare a tool with its handler. After start() the server is sent the new tool list. */
  registerTool(tool: ToolRegistration): void {
    if (this.closed) throw new InvalidStateError(`registerTool() on a ${this.state.name} AI session [tool:${tool.name}]`);
    this.#tools.register(tool);
    this.#toolsVersion += 1;
    if (this.state.name === 'ready') this.#sendToolsUpdate();
  }

  #sendToolsUpdate(): void {
    const id = this.#trySend({ type: 'session.update', session: { type: 'realtime', tools: this.#wireTools() } });
    if (id !== undefined) this.#toolsVersionSent = this.#toolsVersion;
  }

  // -------------------------------------------------------------------------------------------------
  // Server events

  #onEvent(ev: ServerEvent): void {
    const e = ev as { item_id?: unknown; item?: { id?: unknown } };
    const h = this.#history;
    h.sawItem(e.item_id);
    h.sawItem(e.item?.id);
    if (this.#mcp.enabled) this.#mcp.onEvent(ev);
    switch (ev.type) {
      case 'session.updated':
        if (this.#pendingUpdate) this.#pendingUpdate.resolve(ev);
        return;
      case 'error':
        this.#onServerError(ev);
        return;
      case 'input_audio_buffer.speech_started':
        this.#userSpeaking = true;
        h.remember(ev.item_id, 'user');
        this.emit('speechStarted', { itemId: ev.item_id, audioStartMs: ev.audio_start_ms });
        return;
      case 'input_audio_buffer.speech_stopped':
        this.#userSpeaking = false;
        this.emit('speechStopped', { itemId: ev.item_id, audioEndMs: ev.audio_end_ms });
        this.#maybeRotate();
        return;
      case 'input_audio_buffer.committed':
        h.remember(ev.item_id, 'user');
        return;
      case 'input_audio_buffer.timeout_triggered':
        this.emit('inputTimeout', omitUndefined({ itemId: ev.item_id, audioStartMs: ev.audio_start_ms, audioEndMs: ev.audio_end_ms }));
        return;
      case 'conversation.item.added':
        if (ev.item.type === 'message' && ev.item.role === 'user' && ev.item.id && ev.item.content?.some((c) => c.type === 'input_audio')) {
          h.remember(ev.item.id, 'user');
        }
        return;
      case 'conversation.item.input_audio_transcription.delta':
        h.remember(ev.item_id, 'user');
        this.#emitTranscript('user', ev.item_id, ev.delta, false);
        return;
      case 'conversation.item.input_audio_transcription.completed':
        h.remember(ev.item_id, 'user').text = ev.transcript;
        this.#emitTranscript('user', ev.item_id, ev.transcript, true);
        return;
      case 'conversation.item.input_audio_transcription.failed':
        this.#log.debug({ itemId: ev.item_id, code: ev.error?.code }, 'caller transcription failed');
        return;
      case 'response.created':
        this.#responses.created(ev);
        return;
      case 'response.output_item.added':
        if (ev.item.type === 'message' && ev.item.id) h.remember(ev.item.id, 'assistant');
        return;
      case 'response.output_item.done':
        this.#tools.call(ev.response_id, ev.item);
        return;
      case 'response.output_audio.delta': {
        const data = Buffer.from(ev.delta, 'base64');
        h.remember(ev.item_id, 'assistant').audioBytes += data.length;
        this.emit('audio', { responseId: ev.response_id, itemId: ev.item_id, data });
        return;
      }
      case 'response.output_audio.done':
        this.emit('audioDone', { responseId: ev.response_id, itemId: ev.item_id });
        return;
      case 'response.output_audio_transcript.delta':
      case 'response.output_text.delta':
        h.remember(ev.item_id, 'assistant');
        this.#emitTranscript('assistant', ev.item_id, ev.delta, false);
        return;
      case 'response.output_audio_transcript.done':
        h.remember(ev.item_id, 'assistant').text = ev.transcript;
        this.#emitTranscript('assistant', ev.item_id, ev.transcript, true);
        return;
      case 'response.output_text.done':
        h.remember(ev.item_id, 'assistant').text = ev.text;
        this.#emitTranscript('assistant', ev.item_id, ev.text, true);
        return;
      case 'response.done': {
        const r = ev.response;
        const outcome = this.#responses.done(r);
        for (const item of r.output ?? []) this.#tools.call(r.id, item);
        this.#tools.responseDone(r.id, outcome.reason);
        this.#responses.pump();
        this.#maybeRotate();
        return;
      }
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
    if (cause?.type === 'response.create' && this.#responses.createFailed(e.event_id ?? '', code, e.message)) return;

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

  #onClientDied(err: AiSessionError): void {
    if (this.#pendingUpdate) {
      this.#pendingUpdate.reject(err);
      return;
    }
    if (this.state.name === 'ready') void this.#reconnect(err.aiCode ?? 'connection_lost', err);
  }

  // -------------------------------------------------------------------------------------------------
  // Resilience

  #maybeRotate(): void {
    if (!this.#rotationDue || this.state.name !== 'ready') return;
    if (this.#responses.busy || this.#tools.busy || this.#userSpeaking) return;
    void this.#reconnect('rotation');
  }

  async #reconnect(reason: string, cause?: AiSessionError): Promise<void> {
    if (this.state.name !== 'ready') return;
    // Planned rotations do not count against the limit: a long call rotates every maxSessionAgeMs.
    if (reason !== 'rotation' && this.#reconnectsUsed >= this.#limits.maxReconnects) {
      this.die(
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
    this.setState({ name: 'reconnecting', reason });
    this.emit('reconnecting', { reason });
    this.#dropClient();
    this.#rotationDue = false;
    this.#userSpeaking = false;
    this.#responses.lose('session_lost');
    // Tool calls keep running: their results go to the new session (ToolRunner), flushed as they finish.
    this.#tools.sessionLost();
    this.#mcp.sessionLost();
    let reseeded = 0;
    try {
      await this.#openClient();
      reseeded = this.#history.reseed(this.#link);
    } catch (err) {
      if (this.closed) return;
      const e = toAiError(err, 'reconnect_failed');
      this.die(new AiSessionError(`AI session reconnect failed [reason:${reason}, aiCode:${e.aiCode ?? 'none'}]: ${e.message}`, e.aiCode ?? 'reconnect_failed', { cause: e }));
      return;
    }
    if (this.closed) return;
    this.#history.dropHeld();
    const durationMs = Math.round(performance.now() - t0);
    this.#log.info({ reason, durationMs, reseeded }, 'AI session reconnected');
    this.#becomeReady();
    this.emit('reconnected', { reason, durationMs, reseededItems: reseeded });
    this.#responses.pump();
  }
}

/**
 * WebSocket lifecycle for one Realtime API (GA) session: connect with the right auth, wait for
 * `session.created`, send client events with sequential `event_id`s, parse server events, and tell
 * an asked-for `close` from an unexpected `died`. Knows nothing about conversations or calls.
 */
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { AiSessionError, InvalidStateError } from '../util/errors';
import { TypedEmitter } from '../util/TypedEmitter';
import type { Logger } from '../logging/logger';
import { connectError, frameText, keepAlive, openAiSocket, refusedUpgrade, releaseSocket } from './wsHandshake';
import {
  isUnknownServerEvent,
  parseServerEvent,
  type ClientEvent,
  type ClientEventType,
  type ServerEvent,
  type SessionCreatedEvent,
} from './events';

/** How the API key is presented: OpenAI uses a bearer token, Azure an `api-key` header. */
export type RealtimeAuth = 'bearer' | 'api-key';

/** Connection options for {@link RealtimeClient}. */
export interface RealtimeClientOptions {
  /** WebSocket URL, e.g. `wss://api.openai.com/v1/realtime`; an existing query string is kept. */
  url: string;
  /** Model (or Azure deployment) set as the `model` query parameter; omitted when undefined. */
  model?: string;
  /** API key or bearer token. Never logged. */
  apiKey: string;
  /** Header used for the key (default `bearer`). */
  auth?: RealtimeAuth;
  /** Extra handshake headers (e.g. `OpenAI-Project`). An `OpenAI-Beta` header is always dropped. */
  headers?: Record<string, string>;
  /** Time allowed from connect() to `session.created`, in ms (default 10000). */
  connectTimeoutMs?: number;
  /** How many recently sent events are remembered to explain server errors (default 256). */
  sentEventHistory?: number;
  /** Ping interval in ms to detect a dead peer; a missed pong kills the socket (default 15000, 0 = off). */
  pingIntervalMs?: number;
  /** Largest server frame accepted, in bytes (default 16 MiB). */
  maxPayloadBytes?: number;
}

/** A client event remembered so a later `error` can name what caused it (audio payloads are not kept). */
export interface SentEventRecord {
  eventId: string;
  type: ClientEventType;
  /** The event as sent, except `input_audio_buffer.append` whose audio is replaced by its length. */
  event: Record<string, unknown>;
  /** performance.now() when sent. */
  sentAtMs: number;
}

/** Why the socket ended without being asked to, and how. */
export interface DiedInfo {
  /** WebSocket close code (1006 when the TCP connection just vanished). */
  closeCode: number;
  /** Close reason sent by the server, if any. */
  reason: string;
}

/** Events of {@link RealtimeClient}. */
export type RealtimeClientEvents = {
  /** A parsed, known server event (unknown and malformed frames are logged at debug and dropped). */
  event: [ServerEvent];
  /** close() was called and the socket is released. */
  close: [];
  /** The socket ended unexpectedly after `session.created`. */
  died: [error: AiSessionError, info: DiedInfo];
};

/** Lifecycle states of {@link RealtimeClient}. */
export type RealtimeClientState = 'idle' | 'connecting' | 'open' | 'closed';

/** Counters exposed for metrics. */
export interface RealtimeClientStats {
  sentEvents: number;
  receivedEvents: number;
  /** Frames with an unknown event type (ignored). */
  unknownEvents: number;
  /** Frames that were not JSON or lacked fields we rely on (ignored). */
  malformedEvents: number;
  /** Binary frames (the protocol has none; ignored). */
  binaryFrames: number;
  /** Sent-event records evicted from the bounded history. */
  evictedSentRecords: number;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_SENT_HISTORY = 256;
/** Appends sent by appendAudio() remembered apart (5 s at one a frame), so they never crowd out other events. */
const APPEND_HISTORY = 256;
const DEFAULT_PING_INTERVAL_MS = 15_000;
const DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024;
/** An `error` this recent explains a following close better than the close code does. */
const ERROR_EXPLAINS_CLOSE_MS = 5_000;

/** Close code the GA server uses after `beta_api_shape_disabled` (realtime-protocol.md §1, §8.7). */
const CLOSE_BETA_SHAPE_DISABLED = 4000;

/** Build the connection URL: keep the given query, set `model`. Throws AiSessionError(invalid_url). */
export function buildRealtimeUrl(url: string, model?: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new AiSessionError(`invalid Realtime URL [url:${url}]`, 'invalid_url');
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw new AiSessionError(`Realtime URL must be ws:// or wss:// [url:${url}]`, 'invalid_url');
  }
  if (model !== undefined && model !== '') u.searchParams.set('model', model);
  return u;
}

/** Build the handshake headers for an auth mode; any `OpenAI-Beta` header is removed (GA only). */
export function buildRealtimeHeaders(
  apiKey: string,
  auth: RealtimeAuth = 'bearer',
  extra: Record<string, string> = {},
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(extra)) {
    const lower = k.toLowerCase();
    // The beta header selects the legacy event shape, which the GA server now refuses (close 4000).
    if (lower === 'openai-beta' || lower === 'authorization' || lower === 'api-key') continue;
    headers[k] = v;
  }
  if (auth === 'api-key') headers['api-key'] = apiKey;
  else headers.Authorization = `Bearer ${apiKey}`;
  return headers;
}

export { aiCodeForHttpStatus } from './wsHandshake';

/**
 * One WebSocket to the Realtime API. `connect()` resolves with `session.created`; `send()` stamps
 * `evt_<n>` ids; server `error`s can be traced to the client event that caused them with
 * {@link sentEvent}. Unknown server events are logged at debug and ignored.
 */
export class RealtimeClient extends TypedEmitter<RealtimeClientEvents> {
  readonly #opts: RealtimeClientOptions;
  readonly #log: Logger;
  readonly #sent = new Map<string, SentEventRecord>();
  readonly #sentCap: number;
  // appendAudio()'s own history: id number, base64 length and send time per slot, no allocation per append.
  readonly #appendSeq = new Float64Array(APPEND_HISTORY).fill(-1);
  readonly #appendChars = new Float64Array(APPEND_HISTORY);
  readonly #appendAt = new Float64Array(APPEND_HISTORY);
  #appendCount = 0;
  #ws: WebSocket | undefined;
  #state: RealtimeClientState = 'idle';
  #nextId = 1;
  #connectMs: number | undefined;
  #sessionId: string | undefined;
  #stopPing: () => void = () => undefined;
  #killReason: string | undefined;
  #lastError: { code: string; atMs: number } | undefined;
  #stats: RealtimeClientStats = {
    sentEvents: 0,
    receivedEvents: 0,
    unknownEvents: 0,
    malformedEvents: 0,
    binaryFrames: 0,
    evictedSentRecords: 0,
  };

  /** Create an idle client; nothing happens until connect(). */
  constructor(opts: RealtimeClientOptions, logger: Logger) {
    super();
    this.#opts = opts;
    this.#log = logger;
    this.#sentCap = Math.max(1, opts.sentEventHistory ?? DEFAULT_SENT_HISTORY);
  }

  /** Current lifecycle state. */
  get state(): RealtimeClientState {
    return this.#state;
  }

  /** True once closed (asked for or died). */
  get closed(): boolean {
    return this.#state === 'closed';
  }

  /** Milliseconds from connect() to `session.created`; undefined until connected. */
  get connectMs(): number | undefined {
    return this.#connectMs;
  }

  /** Server session id (`sess_…`) from `session.created`. */
  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  /** Bytes queued in the socket but not yet written (for send-side backpressure). */
  get bufferedAmount(): number {
    return this.#ws?.bufferedAmount ?? 0;
  }

  /** A snapshot of the counters. */
  get stats(): RealtimeClientStats {
    return { ...this.#stats };
  }

  /**
   * Open the socket and resolve with `session.created`. Rejects with AiSessionError whose `aiCode` is
   * `invalid_api_key` (401), `rate_limited` (429), `connect_timeout`, `unreachable`,
   * `beta_api_shape_disabled`, the server's error code, or `closed` when close() interrupts it.
   */
  connect(): Promise<SessionCreatedEvent> {
    if (this.#state !== 'idle') {
      return Promise.reject(new InvalidStateError(`connect() on a ${this.#state} Realtime client`));
    }
    let url: URL;
    try {
      url = buildRealtimeUrl(this.#opts.url, this.#opts.model);
    } catch (err) {
      this.#state = 'closed';
      return Promise.reject(err);
    }
    this.#state = 'connecting';
    const t0 = performance.now();
    const timeoutMs = this.#opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const where = `${url.host}${url.pathname}`;
    this.#log.debug({ url: where, auth: this.#opts.auth ?? 'bearer' }, 'connecting to Realtime API');

    return new Promise<SessionCreatedEvent>((resolve, reject) => {
      let settled = false;
      const headers = buildRealtimeHeaders(this.#opts.apiKey, this.#opts.auth, this.#opts.headers);
      const ws = openAiSocket(url, headers, timeoutMs, this.#opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD);
      this.#ws = ws;

      const fail = (err: AiSessionError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#teardown();
        this.#log.warn({ aiCode: err.aiCode, url: where, ms: Math.round(performance.now() - t0) }, err.message);
        reject(err);
      };
      const timer = setTimeout(() => {
        fail(new AiSessionError(`Realtime connect timed out [url:${where}, timeoutMs:${timeoutMs}]`, 'connect_timeout'));
      }, timeoutMs);
      this.#abortConnect = () =>
        fail(new AiSessionError(`Realtime connect aborted by close() [url:${where}]`, 'closed'));

      ws.on('unexpected-response', (req, res: IncomingMessage) => {
        void refusedUpgrade('Realtime', res, where).then((err) => {
          fail(err);
          req.destroy();
        });
      });
      ws.on('error', (err: Error & { code?: string }) => {
        if (this.#state === 'connecting') {
          fail(connectError('Realtime', err, where, timeoutMs));
        } else {
          // After session.created an error is always followed by 'close', which decides what happens.
          this.#log.debug({ err: err.message, errno: err.code }, 'Realtime socket error');
        }
      });
      ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
        if (isBinary) {
          this.#stats.binaryFrames += 1;
          this.#log.debug('ignored binary frame from Realtime API');
          return;
        }
        const ev = this.#parse(data);
        if (ev === undefined) return;
        if (this.#state === 'connecting') {
          if (ev.type === 'session.created') {
            settled = true;
            clearTimeout(timer);
            this.#abortConnect = undefined;
            this.#state = 'open';
            this.#connectMs = Math.round(performance.now() - t0);
            this.#sessionId = typeof ev.session.id === 'string' ? ev.session.id : undefined;
            this.#stopPing = keepAlive(ws, this.#opts.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS, () => (this.#killReason = 'ping_timeout'));
            this.#log.info({ connectMs: this.#connectMs, sessionId: this.#sessionId }, 'Realtime session created');
            resolve(ev);
            this.emit('event', ev);
          } else if (ev.type === 'error') {
            const code = ev.error.code ?? ev.error.type ?? 'server_error';
            fail(new AiSessionError(`Realtime session refused [code:${code}, url:${where}]: ${ev.error.message}`, code));
          } else {
            this.#log.debug({ type: ev.type }, 'event before session.created ignored');
          }
          return;
        }
        if (this.#state !== 'open') return;
        if (ev.type === 'error') {
          this.#lastError = { code: ev.error.code ?? ev.error.type ?? 'server_error', atMs: performance.now() };
        }
        this.emit('event', ev);
      });
      ws.on('close', (code: number, reasonBuf: Buffer) => {
        const reason = reasonBuf.toString('utf8');
        if (this.#state === 'connecting') {
          const aiCode = code === CLOSE_BETA_SHAPE_DISABLED ? 'beta_api_shape_disabled' : 'closed_before_ready';
          fail(new AiSessionError(`Realtime socket closed before session.created [closeCode:${code}, reason:${reason || 'none'}, url:${where}]`, aiCode));
          return;
        }
        if (this.#state !== 'open') return;
        this.#teardown();
        const recent = this.#lastError && performance.now() - this.#lastError.atMs < ERROR_EXPLAINS_CLOSE_MS ? this.#lastError.code : undefined;
        const aiCode =
          this.#killReason ?? recent ?? (code === CLOSE_BETA_SHAPE_DISABLED ? 'beta_api_shape_disabled' : 'connection_lost');
        const err = new AiSessionError(
          `Realtime socket closed unexpectedly [closeCode:${code}, reason:${reason || 'none'}, aiCode:${aiCode}, sessionId:${this.#sessionId ?? 'none'}]`,
          aiCode,
        );
        this.#log.warn({ closeCode: code, aiCode }, err.message);
        this.emit('died', err, { closeCode: code, reason });
      });
    });
  }

  #abortConnect: (() => void) | undefined;

  #parse(data: WebSocket.RawData): ServerEvent | undefined {
    const text = frameText(data);
    const ev = parseServerEvent(text);
    if (isUnknownServerEvent(ev)) {
      if (ev.reason === 'unknown_type') this.#stats.unknownEvents += 1;
      else this.#stats.malformedEvents += 1;
      this.#log.debug({ reason: ev.reason, rawType: ev.rawType, detail: ev.detail }, 'ignored Realtime event');
      return undefined;
    }
    this.#stats.receivedEvents += 1;
    return ev;
  }

  /**
   * Send a client event. Assigns `event_id` (`evt_<n>`) when absent and returns it. Throws
   * InvalidStateError unless connected (after `session.created` and before close).
   */
  send(event: ClientEvent): string {
    const ws = this.#openSocket(event.type);
    const eventId = event.event_id ?? `evt_${this.#nextId++}`;
    const stamped = { ...event, event_id: eventId } as ClientEvent;
    this.#remember(eventId, stamped);
    return this.#write(ws, eventId, event.type, JSON.stringify(stamped));
  }

  /**
   * Send `input_audio_buffer.append` with these bytes (the session's input format). The hot path,
   * 25-50 times a second per call: the base64 is ours, so it needs no JSON escaping and the frame
   * is assembled directly, without building, copying or stringifying an event object. Returns the
   * event id; throws InvalidStateError unless connected.
   */
  appendAudio(bytes: Buffer): string {
    const ws = this.#openSocket('input_audio_buffer.append');
    const seq = this.#nextId++;
    const eventId = `evt_${seq}`;
    const audio = bytes.toString('base64');
    const slot = this.#appendCount++ % APPEND_HISTORY;
    this.#appendSeq[slot] = seq;
    this.#appendChars[slot] = audio.length;
    this.#appendAt[slot] = performance.now();
    return this.#write(ws, eventId, 'input_audio_buffer.append', `{"type":"input_audio_buffer.append","event_id":"${eventId}","audio":"${audio}"}`);
  }

  #openSocket(type: string): WebSocket {
    const ws = this.#ws;
    if (this.#state !== 'open' || ws === undefined || ws.readyState !== WebSocket.OPEN) {
      throw new InvalidStateError(`send() on a ${this.#state} Realtime client [type:${type}]`);
    }
    return ws;
  }

  #write(ws: WebSocket, eventId: string, type: string, text: string): string {
    ws.send(text, (err) => {
      // A failed write is followed by 'close', which reports the death; nothing else to do here.
      if (err) this.#log.debug({ err: err.message, type }, 'Realtime send failed');
    });
    this.#stats.sentEvents += 1;
    return eventId;
  }

  #remember(eventId: string, event: ClientEvent): void {
    const copy: Record<string, unknown> =
      event.type === 'input_audio_buffer.append' ? { type: event.type, event_id: eventId, audio_base64_chars: event.audio.length } : { ...event };
    this.#sent.set(eventId, { eventId, type: event.type, event: copy, sentAtMs: performance.now() });
    while (this.#sent.size > this.#sentCap) {
      const oldest = this.#sent.keys().next().value as string;
      this.#sent.delete(oldest);
      this.#stats.evictedSentRecords += 1;
    }
  }

  /** The recently sent event with this id, if still remembered (to explain an `error`). */
  sentEvent(eventId: string | null | undefined): SentEventRecord | undefined {
    if (eventId === undefined || eventId === null) return undefined;
    return this.#sent.get(eventId) ?? this.#sentAppend(eventId);
  }

  #sentAppend(eventId: string): SentEventRecord | undefined {
    const m = /^evt_(\d+)$/.exec(eventId);
    if (!m) return undefined;
    const slot = this.#appendSeq.indexOf(Number(m[1]));
    if (slot < 0) return undefined;
    const type = 'input_audio_buffer.append';
    return { eventId, type, event: { type, event_id: eventId, audio_base64_chars: this.#appendChars[slot] }, sentAtMs: this.#appendAt[slot] };
  }

  #teardown(): void {
    this.#state = 'closed';
    this.#abortConnect = undefined;
    this.#stopPing();
    this.#stopPing = () => undefined;
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws) releaseSocket(ws);
    this.#sent.clear();
  }

  /** Close the socket (idempotent). Emits 'close' once; a pending connect() rejects with aiCode `closed`. */
  close(): void {
    if (this.#state === 'closed') return;
    if (this.#state === 'connecting' && this.#abortConnect) {
      this.#abortConnect();
    } else {
      this.#teardown();
    }
    this.#log.debug('Realtime client closed');
    this.emit('close');
  }
}

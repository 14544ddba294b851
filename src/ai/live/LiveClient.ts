/**
 * One WebSocket to GPT-Live: connect with the right auth (no query parameters; the model goes in
 * `session.start`), send `session.start` first and resolve on `session.started`, stamp client event
 * ids, parse every server frame strictly, keep the socket alive with pings, and tell an asked-for
 * `close` from an unexpected `died`. Knows nothing about calls or conversations.
 *
 * Audio is the hot path: appendAudio() writes the frame directly, and while more than
 * `maxSendBufferBytes` wait in the socket it refuses (the session drops and counts the chunk), so a
 * stalled connection cannot grow memory without bound. Control events are never refused for the
 * backlog: they are few and small.
 */
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import type { Logger } from '../../logging/logger';
import { AiSessionError, InvalidStateError } from '../../util/errors';
import { ReportLimiter } from '../../util/ReportLimiter';
import { TypedEmitter } from '../../util/TypedEmitter';
import { buildRealtimeHeaders, type RealtimeAuth } from '../RealtimeClient';
import { connectError, frameText, keepAlive, openAiSocket, refusedUpgrade, releaseSocket } from '../wsHandshake';
import {
  parseLiveServerEvent,
  type LiveClientEvent,
  type LiveClientEventType,
  type LiveServerEvent,
  type LiveSessionStartedEvent,
  type LiveWireSessionConfig,
} from './wire';

/** Connection options of a {@link LiveClient}. */
export interface LiveClientOptions {
  /** `wss://api.openai.com/v1/live/sessions` or `wss://<resource>.openai.azure.com/openai/v1/live/sessions`. */
  url: string;
  /** API key or bearer token. Never logged. */
  apiKey: string;
  /** `bearer` (OpenAI, Entra tokens) or `api-key` (Azure keys); default `bearer`. */
  auth?: RealtimeAuth;
  /** Extra handshake headers (e.g. `OpenAI-Project`). */
  headers?: Record<string, string>;
  /** Time allowed from connect() to `session.started`, ms (default 10000). */
  connectTimeoutMs?: number;
  /** Ping interval; a missed pong kills the socket, ms (default 15000, 0 = off). */
  pingIntervalMs?: number;
  /** Largest server frame accepted, bytes (default 16 MiB). */
  maxPayloadBytes?: number;
  /** Audio is refused while this many bytes wait in the socket (default 1 MiB). */
  maxSendBufferBytes?: number;
  /** Recently sent control events remembered to explain a server `error` (default 128). */
  sentEventHistory?: number;
}

/** A sent control event, remembered so an `error` can name what caused it. */
export interface LiveSentRecord {
  eventId: string;
  type: LiveClientEventType;
  sentAtMs: number;
}

/** Counters of one client. */
export interface LiveClientStats {
  sentEvents: number;
  receivedEvents: number;
  /** Frames of a type the protocol does not define (ignored). */
  unknownEvents: number;
  /** Frames that were not JSON objects, or a known type with a bad field (ignored). */
  malformedEvents: number;
  binaryFrames: number;
  /** Audio appends refused because the socket backlog was over the cap. */
  backlogRefusals: number;
}

/** Events of a {@link LiveClient}. */
export type LiveClientEvents = {
  /** A parsed server event (after `session.started`, which connect() resolves with). */
  event: [LiveServerEvent];
  /** The socket ended without close() (or was killed by a missed pong). */
  died: [AiSessionError, { closeCode: number; reason: string }];
  /** close() finished. */
  close: [];
};

/** Lifecycle of a client. */
export type LiveClientState = 'idle' | 'connecting' | 'open' | 'closed';

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_PING_INTERVAL_MS = 15_000;
const DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024;
const DEFAULT_MAX_SEND_BUFFER = 1024 * 1024;
const DEFAULT_SENT_HISTORY = 128;
/** An `error` this recent explains a following close better than the close code does. */
const ERROR_EXPLAINS_CLOSE_MS = 5_000;

/** The connection URL: ws(s) only, and no query (the Live endpoint takes none). Throws AiSessionError(invalid_url). */
export function buildLiveUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new AiSessionError(`invalid GPT-Live URL [url:${url}]`, 'invalid_url');
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new AiSessionError(`GPT-Live URL must be ws:// or wss:// [url:${url}]`, 'invalid_url');
  if (u.search !== '') throw new AiSessionError(`GPT-Live URL takes no query parameters [url:${u.host}${u.pathname}]`, 'invalid_url');
  return u;
}

/** One GPT-Live WebSocket (see the file header). */
export class LiveClient extends TypedEmitter<LiveClientEvents> {
  readonly #opts: LiveClientOptions;
  readonly #log: Logger;
  readonly #sent = new Map<string, LiveSentRecord>();
  readonly #sentCap: number;
  readonly #maxBacklog: number;
  readonly #badFrames = new ReportLimiter({ intervalMs: 60_000, maxKeys: 32 });
  #ws: WebSocket | undefined;
  #state: LiveClientState = 'idle';
  #nextId = 1;
  #connectMs: number | undefined;
  #started: LiveSessionStartedEvent | undefined;
  #stopPing: () => void = () => undefined;
  #killReason: string | undefined;
  #lastError: { code: string; atMs: number } | undefined;
  #abortConnect: (() => void) | undefined;
  readonly #stats: LiveClientStats = { sentEvents: 0, receivedEvents: 0, unknownEvents: 0, malformedEvents: 0, binaryFrames: 0, backlogRefusals: 0 };

  /** An idle client; nothing happens until connect(). */
  constructor(opts: LiveClientOptions, logger: Logger) {
    super();
    this.#opts = opts;
    this.#log = logger;
    this.#sentCap = Math.max(1, opts.sentEventHistory ?? DEFAULT_SENT_HISTORY);
    this.#maxBacklog = opts.maxSendBufferBytes ?? DEFAULT_MAX_SEND_BUFFER;
  }

  /** Lifecycle state. */
  get state(): LiveClientState {
    return this.#state;
  }

  /** True once closed or died. */
  get closed(): boolean {
    return this.#state === 'closed';
  }

  /** ms from connect() to `session.started`. */
  get connectMs(): number | undefined {
    return this.#connectMs;
  }

  /** The server session id from `session.started`. */
  get sessionId(): string | undefined {
    return this.#started?.session.id;
  }

  /** When the server session expires, Unix seconds (from `session.started`). */
  get expiresAt(): number | undefined {
    return this.#started?.session.expires_at;
  }

  /** Bytes waiting in the socket. */
  get bufferedAmount(): number {
    return this.#ws?.bufferedAmount ?? 0;
  }

  /** A snapshot of the counters. */
  get stats(): LiveClientStats {
    return { ...this.#stats };
  }

  /**
   * Open the socket, send `session.start` with `session`, resolve with `session.started`. Rejects
   * with AiSessionError: `invalid_url`, `invalid_api_key` (401), `rate_limited` (429), other HTTP
   * refusals, `connect_timeout`, `unreachable`, `tls_error`, the server's error code (an `error`
   * answering session.start), `closed_before_ready`, or `closed` when close() interrupts it.
   */
  connect(session: LiveWireSessionConfig): Promise<LiveSessionStartedEvent> {
    if (this.#state !== 'idle') return Promise.reject(new InvalidStateError(`connect() on a ${this.#state} GPT-Live client`));
    let url: URL;
    try {
      url = buildLiveUrl(this.#opts.url);
    } catch (err) {
      this.#state = 'closed';
      return Promise.reject(err);
    }
    this.#state = 'connecting';
    const t0 = performance.now();
    const timeoutMs = this.#opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const where = `${url.host}${url.pathname}`;
    this.#log.debug({ url: where, auth: this.#opts.auth ?? 'bearer' }, 'connecting to GPT-Live');

    return new Promise<LiveSessionStartedEvent>((resolve, reject) => {
      let settled = false;
      let startId: string | undefined;
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
      const timer = setTimeout(() => fail(new AiSessionError(`GPT-Live start timed out [url:${where}, timeoutMs:${timeoutMs}]`, 'connect_timeout')), timeoutMs);
      this.#abortConnect = () => fail(new AiSessionError(`GPT-Live connect aborted by close() [url:${where}]`, 'closed'));

      ws.on('unexpected-response', (req, res: IncomingMessage) => {
        void refusedUpgrade('GPT-Live', res, where).then((err) => {
          fail(err);
          req.destroy();
        });
      });
      ws.on('open', () => {
        // session.start must be the first message (Live reference: SessionStartEvent).
        startId = this.#sendNow(ws, { type: 'session.start', session });
      });
      ws.on('error', (err: Error & { code?: string }) => {
        if (this.#state === 'connecting') fail(connectError('GPT-Live', err, where, timeoutMs));
        else this.#log.debug({ err: err.message, errno: err.code }, 'GPT-Live socket error');
      });
      ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
        const ev = this.#parse(data, isBinary);
        if (ev === undefined) return;
        if (this.#state === 'connecting') {
          if (ev.type === 'session.started') {
            settled = true;
            clearTimeout(timer);
            this.#abortConnect = undefined;
            this.#state = 'open';
            this.#started = ev;
            this.#connectMs = Math.round(performance.now() - t0);
            this.#stopPing = keepAlive(ws, this.#opts.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS, () => (this.#killReason = 'ping_timeout'));
            this.#log.info({ connectMs: this.#connectMs, sessionId: ev.session.id, expiresAt: ev.session.expires_at }, 'GPT-Live session started');
            resolve(ev);
          } else if (ev.type === 'error') {
            const cause = ev.error.client_event_id ?? ev.client_event_id;
            const param = ev.error.param ? `, param:${ev.error.param}` : '';
            fail(
              new AiSessionError(
                `GPT-Live refused the session [code:${ev.error.code}${param}${cause === startId ? ', event:session.start' : ''}, url:${where}]: ${ev.error.message}`,
                ev.error.code || ev.error.type || 'server_error',
              ),
            );
          } else {
            this.#log.debug({ type: ev.type }, 'GPT-Live event before session.started ignored');
          }
          return;
        }
        if (this.#state !== 'open') return;
        if (ev.type === 'error') this.#lastError = { code: ev.error.code || ev.error.type || 'server_error', atMs: performance.now() };
        this.emit('event', ev);
      });
      ws.on('close', (code: number, reasonBuf: Buffer) => {
        const reason = reasonBuf.toString('utf8');
        if (this.#state === 'connecting') {
          fail(new AiSessionError(`GPT-Live socket closed before session.started [closeCode:${code}, reason:${reason || 'none'}, url:${where}]`, 'closed_before_ready'));
          return;
        }
        if (this.#state !== 'open') return;
        this.#teardown();
        const recent = this.#lastError && performance.now() - this.#lastError.atMs < ERROR_EXPLAINS_CLOSE_MS ? this.#lastError.code : undefined;
        const aiCode = this.#killReason ?? recent ?? 'connection_lost';
        const err = new AiSessionError(
          `GPT-Live socket closed unexpectedly [closeCode:${code}, reason:${reason || 'none'}, aiCode:${aiCode}, sessionId:${this.sessionId ?? 'none'}]`,
          aiCode,
        );
        this.#log.warn({ closeCode: code, aiCode }, err.message);
        this.emit('died', err, { closeCode: code, reason });
      });
    });
  }

  #parse(data: WebSocket.RawData, isBinary: boolean): LiveServerEvent | undefined {
    if (isBinary) {
      this.#stats.binaryFrames += 1;
      this.#report('binary', 'GPT-Live sent a binary frame (ignored)');
      return undefined;
    }
    const res = parseLiveServerEvent(frameText(data));
    if (!res.ok) {
      if (res.reason === 'unknown_type') this.#stats.unknownEvents += 1;
      else this.#stats.malformedEvents += 1;
      this.#report(`${res.reason}:${res.type ?? ''}`, `GPT-Live frame ignored [reason:${res.reason}]: ${res.message}`);
      return undefined;
    }
    this.#stats.receivedEvents += 1;
    return res.event;
  }

  /** Warn about a refused frame, once a minute per kind (a misbehaving server must not flood the log). */
  #report(key: string, message: string): void {
    const r = this.#badFrames.check(key);
    if (r.report) this.#log.warn({ suppressed: r.suppressed }, message);
  }

  /**
   * Send a control event; stamps `event_id` (`evt_<n>`) when absent and returns it. Throws
   * InvalidStateError unless the session has started and the client is not closed.
   */
  send(event: LiveClientEvent): string {
    return this.#sendNow(this.#openSocket(event.type), event);
  }

  /**
   * Send `session.input_audio.append` with these bytes (the session's format). Returns false, and
   * sends nothing, while the socket backlog is over `maxSendBufferBytes`. Throws InvalidStateError
   * unless the session has started.
   */
  appendAudio(bytes: Buffer): boolean {
    const ws = this.#openSocket('session.input_audio.append');
    if (ws.bufferedAmount > this.#maxBacklog) {
      this.#stats.backlogRefusals += 1;
      return false;
    }
    // Our own base64 needs no JSON escaping: the frame is assembled directly (25-50 times a second).
    ws.send(`{"type":"session.input_audio.append","audio":"${bytes.toString('base64')}"}`, this.#onWritten);
    this.#stats.sentEvents += 1;
    return true;
  }

  /** The recently sent control event with this id, if still remembered. */
  sentEvent(eventId: string | undefined): LiveSentRecord | undefined {
    return eventId === undefined ? undefined : this.#sent.get(eventId);
  }

  #sendNow(ws: WebSocket, event: LiveClientEvent): string {
    const eventId = event.event_id ?? `evt_${this.#nextId++}`;
    ws.send(JSON.stringify({ ...event, event_id: eventId }), this.#onWritten);
    this.#stats.sentEvents += 1;
    this.#sent.set(eventId, { eventId, type: event.type, sentAtMs: performance.now() });
    while (this.#sent.size > this.#sentCap) this.#sent.delete(this.#sent.keys().next().value as string);
    return eventId;
  }

  readonly #onWritten = (err?: Error): void => {
    // A failed write is followed by 'close', which reports the death.
    if (err) this.#log.debug({ err: err.message }, 'GPT-Live send failed');
  };

  #openSocket(type: string): WebSocket {
    const ws = this.#ws;
    if (this.#state !== 'open' || ws === undefined || ws.readyState !== WebSocket.OPEN) {
      throw new InvalidStateError(`send() on a ${this.#state} GPT-Live client [type:${type}]`);
    }
    return ws;
  }

  #teardown(): void {
    this.#state = 'closed';
    this.#abortConnect = undefined;
    this.#stopPing();
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws) releaseSocket(ws);
    this.#sent.clear();
  }

  /**
   * Close (idempotent); emits 'close' once. An open session is asked to finish first
   * (`session.close`, whose `session.closed` carries the final usage): `onClosed` gets that event
   * if it arrives within `graceMs` (default 0: the socket closes right after the request), then the
   * socket closes. A pending connect() rejects with `closed`.
   */
  close(opts: { graceMs?: number; onClosed?: (ev: LiveServerEvent) => void } = {}): void {
    if (this.#state === 'closed') return;
    const ws = this.#ws;
    if (this.#state === 'connecting' && this.#abortConnect) {
      this.#abortConnect();
    } else if (this.#state === 'open' && ws && ws.readyState === WebSocket.OPEN) {
      this.#state = 'closed';
      this.#stopPing();
      this.#sendNow(ws, { type: 'session.close' });
      ws.removeAllListeners('close');
      const finish = (): void => {
        clearTimeout(grace);
        this.#teardown();
      };
      const grace = setTimeout(finish, opts.graceMs ?? 0);
      grace.unref();
      ws.removeAllListeners('message');
      ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
        const ev = this.#parse(data, isBinary);
        if (ev?.type === 'session.usage.updated' || ev?.type === 'session.closed') opts.onClosed?.(ev);
        if (ev?.type === 'session.closed') finish();
      });
      ws.on('close', finish);
    } else {
      this.#teardown();
    }
    this.#log.debug('GPT-Live client closed');
    this.emit('close');
  }
}

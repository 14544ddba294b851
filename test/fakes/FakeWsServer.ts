/**
 * What the fake OpenAI WebSocket servers (Realtime, GPT-Live) share: one HTTP listener on loopback
 * that answers 426 to plain requests, the handshake checks both services make (path, key as Bearer
 * or Azure `api-key`, rate limit), a bounded list of sessions with the waits tests need, and an
 * orderly close. Each server adds its own URL rules and builds its own sessions.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';

/** A refused or accepted upgrade request (auth headers redacted). */
export interface HandshakeRecord {
  url: string;
  status: number;
  code: string | null;
}

/** What a server needs of its sessions. */
export interface FakeWsSession<L> {
  readonly id: string;
  readonly closed: boolean;
  drop(): void;
  close(code: number, reason: string): void;
  onClosed(listener: () => void): void;
  onLog(listener: (e: L) => void): void;
}

/** Options every fake server takes. */
export interface FakeWsServerOptions {
  /** Bind address; default 127.0.0.1. */
  host?: string;
  /** Port; default 0 (any free port, see {@link FakeWsServer.port}). */
  port?: number;
  /** Expected API key (Bearer or api-key header). Undefined accepts any non-empty key. */
  apiKey?: string;
  /** Sessions kept in {@link FakeWsServer.sessions}; default 1000 (oldest closed ones evicted). */
  maxSessions?: number;
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 429: 'Too Many Requests' };

/** An OpenAI-style error body. */
export function jsonError(type: string, code: string, message: string, param: string | null = null): string {
  return JSON.stringify({ error: { message, type, param, code } });
}

export abstract class FakeWsServer<S extends FakeWsSession<L>, L extends { event: Record<string, unknown> }> {
  /** Accepted WebSocket connections since start. */
  connectionCount = 0;
  /** Every upgrade attempt with its outcome (bounded like sessions). */
  readonly handshakes: HandshakeRecord[] = [];
  /** Sessions evicted from {@link sessions} by the maxSessions cap. */
  droppedSessions = 0;
  /** Expected API key; may be changed while running. Undefined accepts any non-empty key. */
  apiKey: string | undefined;
  /** When true every handshake is refused with 429; may be toggled while running. */
  rateLimited = false;

  protected readonly wss: WebSocketServer;
  readonly #base: FakeWsServerOptions;
  readonly #http: Server;
  readonly #sessions: S[] = [];
  readonly #index = new WeakMap<S, number>();
  readonly #ee = new EventEmitter();
  #port = 0;
  #closed = false;
  #closing: Promise<void> | null = null;

  constructor(base: FakeWsServerOptions) {
    this.#base = base;
    this.apiKey = base.apiKey;
    this.#ee.setMaxListeners(0);
    // 15 MiB of audio is ~20 MiB of base64; leave room for the JSON around it.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 24 * 1024 * 1024, perMessageDeflate: false });
    this.#http = createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'application/json' });
      res.end(jsonError('invalid_request_error', 'upgrade_required', 'This endpoint only accepts WebSocket upgrades.'));
    });
    this.#http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => {
        // A client that vanishes mid-handshake is not the server's problem.
      });
      if (this.#closed) {
        socket.destroy();
        return;
      }
      this.onUpgrade(req, socket, head);
    });
  }

  /** The default session URL. */
  abstract get url(): string;

  /** Check one upgrade request and hand it to {@link accept} or {@link refuse}. */
  protected abstract onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;

  /** Start listening; resolves with the bound port and the default session URL. */
  async listen(): Promise<{ port: number; url: string }> {
    await new Promise<void>((resolve, reject) => {
      this.#http.once('error', reject);
      this.#http.listen(this.#base.port ?? 0, this.#base.host ?? '127.0.0.1', () => {
        this.#http.off('error', reject);
        resolve();
      });
    });
    this.#port = (this.#http.address() as AddressInfo).port;
    return { port: this.#port, url: this.url };
  }

  /** Bound port (0 before listen()). */
  get port(): number {
    return this.#port;
  }

  /** `ws://host:port` without path. */
  get baseUrl(): string {
    return `ws://${this.#base.host ?? '127.0.0.1'}:${this.#port}`;
  }

  /** Sessions in connection order (closed ones included until evicted by maxSessions). */
  get sessions(): readonly S[] {
    return this.#sessions;
  }

  /** True once close() has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Look a session up by its id. */
  session(id: string): S | undefined {
    return this.#sessions.find((s) => s.id === id);
  }

  /** Kill every TCP connection abruptly (no close frame). */
  dropAll(): void {
    for (const s of this.#sessions) if (!s.closed) s.drop();
  }

  /** Resolve with the session at `index` (default: the next one to connect) once it exists. */
  waitForSession(timeoutMs = 5000, index: number = this.connectionCount): Promise<S> {
    const at = (): S | undefined => this.#sessions.find((s) => this.#index.get(s) === index);
    const existing = at();
    if (existing) return Promise.resolve(existing);
    return this.#waitOn('session', () => at(), timeoutMs, () => `waitForSession timed out [index:${index}, timeoutMs:${timeoutMs}, connections:${this.connectionCount}]`);
  }

  /** Resolve with the next event (any session, either direction) matching `matcher`. */
  waitFor(matcher: string | ((o: L & { session: S }) => boolean), timeoutMs = 5000): Promise<L & { session: S }> {
    const test = typeof matcher === 'string' ? (o: L & { session: S }) => o.event['type'] === matcher : matcher;
    return this.#waitOn('event', (o: L & { session: S }) => (test(o) ? o : undefined), timeoutMs, () => `waitFor timed out [matcher:${String(matcher)}, timeoutMs:${timeoutMs}]`);
  }

  /** Subscribe to every logged event of every session. */
  onEvent(listener: (o: L & { session: S }) => void): () => void {
    this.#ee.on('event', listener);
    return () => this.#ee.off('event', listener);
  }

  /** Close every session (1001), stop listening. Idempotent; resolves when the port is released. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#closing = (async () => {
      const open = this.#sessions.filter((s) => !s.closed);
      await Promise.all(
        open.map(
          (s) =>
            new Promise<void>((resolve) => {
              const timer = setTimeout(() => {
                s.drop();
                resolve();
              }, 500);
              s.onClosed(() => {
                clearTimeout(timer);
                resolve();
              });
              s.close(1001, 'server closing');
            }),
        ),
      );
      for (const client of this.wss.clients) client.terminate();
      await new Promise<void>((resolve) => this.wss.close(() => resolve()));
      this.#http.closeAllConnections();
      await new Promise<void>((resolve) => this.#http.close(() => resolve()));
    })();
    return this.#closing;
  }

  /**
   * The checks both services make, in their order: the path, the key, the rate limit. Returns the
   * parsed URL, or undefined when the request was refused.
   */
  protected checkCommon(req: IncomingMessage, socket: Duplex, paths: readonly string[]): URL | undefined {
    const rawUrl = req.url ?? '/';
    const url = new URL(rawUrl, 'http://fake');
    if (!paths.includes(url.pathname)) {
      this.refuse(socket, rawUrl, 404, jsonError('invalid_request_error', 'not_found', `Invalid URL (GET ${url.pathname})`), 'not_found');
      return undefined;
    }
    const key = this.#keyOf(req);
    if (!key || (this.apiKey !== undefined && key !== this.apiKey)) {
      const msg = key ? 'Incorrect API key provided.' : "You didn't provide an API key. Provide it in an Authorization header (Bearer auth) or an api-key header.";
      this.refuse(socket, rawUrl, 401, jsonError('invalid_request_error', 'invalid_api_key', msg), 'invalid_api_key');
      return undefined;
    }
    if (this.rateLimited) {
      this.refuse(socket, rawUrl, 429, jsonError('requests', 'rate_limit_exceeded', 'Rate limit reached for requests. Please try again later.'), 'rate_limit_exceeded');
      return undefined;
    }
    return url;
  }

  /** Answer the upgrade with an HTTP error and record it. */
  protected refuse(socket: Duplex, url: string, status: number, body: string, code: string): void {
    this.#record({ url, status, code });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }

  /**
   * Complete the upgrade: `create` builds the session for the socket; it is listed (the oldest closed
   * ones evicted past maxSessions), its log observed, `started` runs, then waiters learn of it.
   */
  protected accept(req: IncomingMessage, socket: Duplex, head: Buffer, create: (ws: WebSocket) => S, started?: (s: S) => void): void {
    const rawUrl = req.url ?? '/';
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const index = this.connectionCount++;
      this.#record({ url: rawUrl, status: 101, code: null });
      const session = create(ws);
      this.#sessions.push(session);
      this.#index.set(session, index);
      const max = this.#base.maxSessions ?? 1000;
      while (this.#sessions.length > max) {
        const i = this.#sessions.findIndex((s) => s.closed);
        if (i < 0) break;
        this.#sessions.splice(i, 1);
        this.droppedSessions++;
      }
      session.onLog((e) => this.#ee.emit('event', { ...e, session }));
      started?.(session);
      this.#ee.emit('session', session);
    });
  }

  #record(h: HandshakeRecord): void {
    this.handshakes.push(h);
    if (this.handshakes.length > (this.#base.maxSessions ?? 1000)) this.handshakes.shift();
  }

  #keyOf(req: IncomingMessage): string | null {
    const auth = req.headers['authorization'];
    if (typeof auth === 'string') {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      return m ? m[1]! : null;
    }
    const apiKey = req.headers['api-key'];
    return typeof apiKey === 'string' && apiKey.trim() !== '' ? apiKey.trim() : null;
  }

  /** Resolve with the first `pick(...)` result of an `event` emission that is defined, or reject after timeoutMs. */
  #waitOn<A, R>(event: string, pick: (arg: A) => R | undefined, timeoutMs: number, timeoutMessage: () => string): Promise<R> {
    return new Promise((resolve, reject) => {
      const on = (arg: A): void => {
        const r = pick(arg);
        if (r === undefined) return;
        cleanup();
        resolve(r);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(timeoutMessage()));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.#ee.off(event, on);
      };
      this.#ee.on(event, on);
    });
  }
}

/**
 * The HTTP admin API (node:http, JSON in and out): the CLI's only door into a running daemon, and the
 * monitoring system's (/healthz, /metrics).
 *
 *   GET    /healthz              200 {"status":"ok"} | 503 {"status":"unhealthy","reasons":[...]}
 *   GET    /metrics              Prometheus text
 *   GET    /status               versions, registrations, calls, redacted config (from the daemon)
 *   GET    /calls                {"active":[...],"recent":[...]}
 *   GET    /calls?since=&until=&caller=&outcome=&minDuration=&maxDuration=&q=&limit=&offset=
 *                                 call history: {"recent":[...],"page":{limit,offset,next,complete}}
 *   POST   /calls                {"uri","instructions"?,"headers"?} -> 202 {"id"}
 *   GET    /calls/:id            the call, or 404
 *   DELETE /calls/:id            hang up, or 404
 *   GET    /calls/:id/events     server-sent events: state, transcript, ended (then the stream ends)
 *   GET    /calls/:id/recording  the stereo WAV (caller left, agent right), with Range support
 *   GET    /health/history       the last hours at one-minute resolution (?minutes=N)
 *   GET    /console/             the operator console (static files; see console/ in the repository)
 *   GET|POST|DELETE /console/session   the console's sign-in: token -> HttpOnly cookie + CSRF token
 *
 * Bound to 127.0.0.1 by default. A bearer token is required when one is configured, and a token is
 * mandatory for a non-loopback address; /healthz stays open unless `protectHealthz` is set. Without
 * a token, only loopback Host headers are accepted (no DNS rebinding from a browser), and POST needs
 * `Content-Type: application/json` (no cross-site form posts). Errors are `{"error": "..."}`.
 *
 * The console's browser signs in once (POST /console/session with the token) and is then known by
 * an HttpOnly, SameSite=Strict cookie; a request authenticated by that cookie that changes state
 * must also carry the session's CSRF token and a same-origin Origin (console/sessions.ts). The
 * cookie opens exactly what the token opens. Every response says nosniff and may not be framed.
 */
import { promises as fsp } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { silentLogger, type Logger } from '../logging/logger';
import { AgentError, AiSessionError, ConfigError, InvalidStateError, SipError } from '../util/errors';
import { bearerToken, isLoopback, isLoopbackHostHeader, tokenMatches } from './auth';
import { CONSOLE_CSP, consoleAsset, defaultConsoleDir, loadConsoleAssets, type ConsoleAsset } from './console/assets';
import { CSRF_HEADER, ConsoleSessions, SESSION_COOKIE, SignInLimiter, csrfProblem, sameOrigin, type ConsoleSession } from './console/sessions';
import { parseHistoryQuery } from './history';
import { parseRange } from './range';
import { Metrics } from './Metrics';
import { SseStream } from './SseStream';
import type { AdminCalls, CallEvent, CallView, HealthInput, MaybePromise, StatusReport } from './types';
import { HttpError, evaluateHealth, validatePlaceCall } from './validate';

/** Default admin port. */
export const DEFAULT_ADMIN_PORT = 8089;
/** Headers of every response: no MIME sniffing, no framing, no referrer; the API itself loads nothing. */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
};

/** How a request was let in. */
type Access = { kind: 'open' } | { kind: 'bearer' } | { kind: 'session'; session: ConsoleSession };

/** Default request body limit, bytes. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

/** Options of {@link AdminServer}. */
export interface AdminServerOptions {
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** Port (default 8089; 0 picks a free one). */
  port?: number;
  /** Bearer token; required for a non-loopback host. */
  token?: string;
  /** Call operations. */
  calls: AdminCalls;
  /** Registration and AI-endpoint facts for /healthz. */
  health: () => MaybePromise<HealthInput>;
  /** /status body. */
  status: () => MaybePromise<StatusReport>;
  /** Metrics rendered by /metrics (default: a fresh set). */
  metrics?: Metrics;
  logger?: Logger;
  /** Request body limit, bytes (default 64 KiB). */
  maxBodyBytes?: number;
  /** SSE heartbeat, ms (default 15000). */
  heartbeatMs?: number;
  /** Events queued per slow SSE client (default 256). */
  sseMaxQueue?: number;
  /** Concurrent SSE streams (default 32); more are refused with 503. */
  maxSseClients?: number;
  /** Require the token for /healthz too (default false: probes need no secret). */
  protectHealthz?: boolean;
  /**
   * Paths served without the token, to loopback Host headers only (e.g. /metrics when the token was
   * generated for the local CLI rather than configured for remote use).
   */
  openPaths?: readonly string[];
  /** Directory of the built console (default `<package>/dist/console`). */
  consoleDir?: string;
  /** Console sessions (default: up to 64, 12 h idle, 24 h in all, in a cookie named after the port). */
  sessions?: ConsoleSessions;
}

/** Where the server listens. */
export interface AdminAddress {
  host: string;
  port: number;
  /** Base URL, e.g. `http://127.0.0.1:8089`. */
  url: string;
}

type Handler = (req: IncomingMessage, res: ServerResponse, params: string[]) => Promise<void>;

interface Route {
  pattern: RegExp;
  methods: Partial<Record<string, Handler>>;
}

/** The admin HTTP server; see the module comment. */
export class AdminServer {
  readonly #opts: AdminServerOptions;
  readonly #log: Logger;
  readonly #host: string;
  readonly #port: number;
  readonly #token: string | undefined;
  readonly #maxBody: number;
  readonly #routes: Route[];
  readonly #streams = new Set<SseStream>();
  readonly #sockets = new Set<Socket>();
  readonly #sessions: ConsoleSessions;
  readonly #signIns = new SignInLimiter();
  readonly #consoleDir: string;
  #assets: Map<string, ConsoleAsset> | undefined;
  /** Metrics served on /metrics. */
  readonly metrics: Metrics;
  #server: Server | undefined;
  #address: AdminAddress | undefined;
  #closing: Promise<void> | undefined;

  /**
   * @throws ConfigError when the host is not loopback and no token is given.
   */
  constructor(opts: AdminServerOptions) {
    this.#opts = opts;
    this.#log = opts.logger ?? silentLogger();
    this.#host = opts.host ?? '127.0.0.1';
    this.#port = opts.port ?? DEFAULT_ADMIN_PORT;
    this.#token = opts.token || undefined;
    this.#maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.metrics = opts.metrics ?? new Metrics();
    if (!isLoopback(this.#host) && !this.#token) {
      throw new ConfigError([{ path: 'admin.token', message: `is required when admin.listen (${this.#host}) is not a loopback address` }]);
    }
    this.#sessions = opts.sessions ?? new ConsoleSessions();
    this.#consoleDir = opts.consoleDir ?? defaultConsoleDir();
    this.#routes = [
      { pattern: /^\/healthz$/, methods: { GET: (_q, s) => this.#healthz(s) } },
      { pattern: /^\/metrics$/, methods: { GET: (_q, s) => this.#metrics(s) } },
      { pattern: /^\/status$/, methods: { GET: (_q, s) => this.#status(s) } },
      { pattern: /^\/health\/history$/, methods: { GET: (q, s) => this.#healthHistory(q, s) } },
      { pattern: /^\/calls$/, methods: { GET: (q, s) => this.#list(q, s), POST: (q, s) => this.#place(q, s) } },
      { pattern: /^\/calls\/([^/]+)\/recording$/, methods: { GET: (q, s, p) => this.#recording(q, s, p[0]) } },
      { pattern: /^\/calls\/([^/]+)$/, methods: { GET: (_q, s, p) => this.#get(s, p[0]), DELETE: (_q, s, p) => this.#hangup(s, p[0]) } },
      { pattern: /^\/calls\/([^/]+)\/events$/, methods: { GET: (q, s, p) => this.#events(q, s, p[0]) } },
      { pattern: /^\/console$/, methods: { GET: (_q, s) => redirect(s, '/console/') } },
      {
        pattern: /^\/console\/session$/,
        methods: { GET: (q, s) => this.#sessionGet(q, s), POST: (q, s) => this.#signIn(q, s), DELETE: (q, s) => this.#signOut(q, s) },
      },
      { pattern: /^\/console\/(.*)$/, methods: { GET: (q, s, p) => this.#asset(q, s, p[0]) } },
    ];
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Where the server listens (after listen()). */
  get address(): AdminAddress | undefined {
    return this.#address;
  }

  /** Open SSE streams. */
  get sseClients(): number {
    return this.#streams.size;
  }

  /**
   * Start listening.
   * @throws AgentError `ERR_ADMIN_LISTEN` naming host:port when the address is in use, not local, or
   * not allowed; InvalidStateError when already listening or closed.
   */
  async listen(): Promise<AdminAddress> {
    if (this.#closing) throw new InvalidStateError('listen() after close() [admin]');
    if (this.#server) throw new InvalidStateError(`admin API already listening [${this.#address?.host}:${this.#address?.port}]`);
    // Read the console's files now (a few small files), not on a first request in the middle of calls.
    this.#assets ??= loadConsoleAssets(this.#consoleDir);
    const server = createServer((req, res) => void this.#handle(req, res));
    server.requestTimeout = 15_000;
    server.headersTimeout = 10_000;
    server.maxHeadersCount = 64;
    server.maxConnections = 256;
    server.on('connection', (sock: Socket) => {
      this.#sockets.add(sock);
      sock.on('close', () => this.#sockets.delete(sock));
    });
    server.on('clientError', (err, sock) => {
      if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      this.#log.debug({ err }, 'admin API client error');
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        server.off('listening', onListening);
        reject(listenError(err, this.#host, this.#port));
      };
      const onListening = (): void => {
        server.off('error', onError);
        resolve();
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen({ host: this.#host, port: this.#port, exclusive: true });
    }).catch((err: unknown) => {
      this.#server = undefined;
      throw err;
    });
    server.on('error', (err) => this.#log.error({ err }, 'admin API server error'));
    const a = server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    this.#address = { host: a.address, port: a.port, url: `http://${host}:${a.port}` };
    if (!this.#opts.sessions) this.#sessions.cookieName = `${SESSION_COOKIE}_${a.port}`;
    this.#log.info({ url: this.#address.url, auth: this.#token ? 'bearer' : 'none' }, 'admin API listening');
    return this.#address;
  }

  /** End every SSE stream and stop listening; open requests get two seconds. Idempotent; never rejects. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      for (const s of [...this.#streams]) s.end();
      const server = this.#server;
      if (!server) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          for (const sock of this.#sockets) sock.destroy();
        }, 2000);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      });
    })();
    return this.#closing;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const path = (req.url ?? '/').split('?')[0];
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    try {
      const route = this.#routes.find((r) => r.pattern.test(path));
      const isHealthz = path === '/healthz';
      // The console's files and its sign-in are open: they hold no secret, and sign-in checks the token itself.
      const isConsole = path === '/console' || path.startsWith('/console/');
      if ((this.#opts.openPaths ?? []).includes(path) || (isConsole && !this.#token)) this.#checkLoopbackHost(req);
      else if (!isConsole) {
        const access = this.#authorize(req, isHealthz && !this.#opts.protectHealthz);
        if (access.kind === 'session' && !SAFE_METHODS.has(req.method ?? 'GET')) this.#checkCsrf(req, access.session);
      }
      if (!route) throw new HttpError(404, `no such endpoint [path:${truncate(path, 100)}]`);
      const method = req.method === 'HEAD' && route.methods.GET && !path.endsWith('/events') ? 'GET' : req.method ?? 'GET';
      const handler = route.methods[method];
      if (!handler) {
        const allow = Object.keys(route.methods).join(', ');
        throw new HttpError(405, `method ${req.method} not allowed on ${path} (allowed: ${allow})`, { headers: { Allow: allow } });
      }
      const params = (route.pattern.exec(path) as RegExpExecArray).slice(1).map(decodeParam);
      await handler(req, res, params);
    } catch (err) {
      this.#fail(req, res, err);
    } finally {
      this.#log.debug(
        { method: req.method, path, status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 },
        'admin request',
      );
    }
  }

  /**
   * Let a request in by its bearer token or its console session (cookie), or refuse it. Without a
   * configured token the API is loopback-only and open to loopback Host names; a console session
   * there still binds its state-changing requests to the CSRF token.
   */
  #authorize(req: IncomingMessage, open: boolean): Access {
    if (this.#token) {
      if (open) return { kind: 'open' };
      const presented = bearerToken(req.headers.authorization);
      if (presented === undefined) {
        const session = this.#sessions.fromCookie(req.headers.cookie);
        if (session) return { kind: 'session', session };
        throw new HttpError(401, 'authentication required: send Authorization: Bearer <admin token>', {
          headers: { 'WWW-Authenticate': 'Bearer realm="sip-ai-agent"' },
        });
      }
      if (!tokenMatches(presented, this.#token)) {
        throw new HttpError(401, 'invalid admin token', {
          headers: { 'WWW-Authenticate': 'Bearer realm="sip-ai-agent", error="invalid_token"' },
        });
      }
      return { kind: 'bearer' };
    }
    // No token means a loopback bind (enforced in the constructor); refuse names a rebinding attack would use.
    this.#checkLoopbackHost(req);
    const session = req.headers.authorization ? undefined : this.#sessions.fromCookie(req.headers.cookie);
    return session ? { kind: 'session', session } : { kind: 'open' };
  }

  #checkCsrf(req: IncomingMessage, session: ConsoleSession): void {
    const csrf = req.headers[CSRF_HEADER];
    const problem = csrfProblem(session, { origin: req.headers.origin, host: req.headers.host, csrf: typeof csrf === 'string' ? csrf : undefined });
    if (problem) throw new HttpError(403, problem);
  }

  #checkLoopbackHost(req: IncomingMessage): void {
    if (!isLoopbackHostHeader(req.headers.host)) {
      throw new HttpError(403, `host not allowed [host:${truncate(req.headers.host ?? '', 100)}]; use 127.0.0.1 or localhost`);
    }
  }

  async #healthz(res: ServerResponse): Promise<void> {
    let input: HealthInput;
    try {
      input = await this.#opts.health();
    } catch (err) {
      sendJson(res, 503, { status: 'unhealthy', reasons: [`health check failed: ${messageOf(err)}`] });
      return;
    }
    const verdict = evaluateHealth(input);
    if (verdict.healthy) {
      sendJson(res, 200, {
        status: 'ok',
        accounts: input.accounts.map((a) => ({ name: a.name, registers: a.registers, registered: a.registered })),
      });
    } else {
      sendJson(res, 503, { status: 'unhealthy', reasons: verdict.reasons });
    }
  }

  async #metrics(res: ServerResponse): Promise<void> {
    const body = await this.metrics.text();
    res.writeHead(200, { 'Content-Type': this.metrics.contentType, 'Cache-Control': 'no-store' });
    res.end(body);
  }

  async #status(res: ServerResponse): Promise<void> {
    sendJson(res, 200, await this.#opts.status());
  }

  async #list(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const q = parseHistoryQuery(queryOf(req));
    if (!q) {
      const l = await this.#opts.calls.list();
      sendJson(res, 200, { active: l.active ?? [], recent: l.recent ?? [] });
      return;
    }
    if (!this.#opts.calls.history) throw new HttpError(501, 'call history queries are not available here');
    const page = await this.#opts.calls.history(q);
    sendJson(res, 200, { recent: page.calls, page: { limit: q.limit, offset: q.offset, next: page.next, complete: page.complete } });
  }

  async #healthHistory(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const search = queryOf(req);
    for (const k of search.keys()) {
      if (k !== 'minutes') throw new HttpError(400, `invalid query: ${truncate(k, 64)} is not a known parameter (minutes)`, { field: truncate(k, 64) });
    }
    const m = search.get('minutes');
    let n: number | undefined;
    if (m !== null) {
      n = /^\d{1,6}$/.test(m) ? Number(m) : Number.NaN;
      if (!(n >= 1 && n <= 100_000)) throw new HttpError(400, 'invalid query: minutes must be a whole number from 1 to 100000', { field: 'minutes' });
    }
    const h = this.metrics.history;
    const intervals = n === undefined ? undefined : Math.ceil((n * 60_000) / h.intervalMs);
    sendJson(res, 200, h.report(intervals));
  }

  async #recording(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const f = await this.#opts.calls.recording?.(id);
    if (!f) throw new HttpError(404, `no recording for call ${truncate(id, 128)}`);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(f.path, 'r');
    } catch {
      throw new HttpError(404, `no recording for call ${truncate(id, 128)}`);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new HttpError(404, `no recording for call ${truncate(id, 128)}`);
      const size = st.size;
      // With If-Range the client wants the range only of the version it has; we keep no validator
      // for it to compare, so it gets the whole file (RFC 9110 13.1.5).
      const range = req.headers['if-range'] ? ({ kind: 'whole' } as const) : parseRange(req.headers.range, size);
      const headers: Record<string, string> = {
        'Content-Type': f.contentType,
        'Accept-Ranges': 'bytes',
        'Cache-Control': 'private, no-cache',
        'Last-Modified': st.mtime.toUTCString(),
      };
      if (range.kind === 'unsatisfiable') {
        throw new HttpError(416, `range not satisfiable [size:${size}]`, { headers: { 'Content-Range': `bytes */${size}` } });
      }
      const [start, end] = range.kind === 'range' ? [range.start, range.end] : [0, size - 1];
      headers['Content-Length'] = String(Math.max(0, end - start + 1));
      if (range.kind === 'range') headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
      res.writeHead(range.kind === 'range' ? 206 : 200, headers);
      if (req.method === 'HEAD' || size === 0) {
        res.end();
        return;
      }
      const stream = fh.createReadStream({ start, end, autoClose: true });
      await new Promise<void>((resolve) => {
        stream.on('error', (err) => {
          this.#log.warn({ err, callId: id }, 'reading a recording failed');
          res.destroy();
          resolve();
        });
        res.on('close', () => {
          stream.destroy();
          resolve();
        });
        stream.pipe(res);
      });
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  async #sessionGet(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const session = this.#sessions.fromCookie(req.headers.cookie);
    sendJson(res, 200, { authenticated: session !== undefined, tokenRequired: this.#token !== undefined, ...(session ? { csrf: session.csrf } : {}) });
  }

  async #signIn(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Sign-in needs no CSRF token (there is no session yet) but must come from a page of this server.
    if (!sameOrigin(req.headers.origin, req.headers.host)) throw new HttpError(403, 'cross-origin request refused: the Origin header must name this server');
    const wait = this.#signIns.retryAfterSec();
    if (wait > 0) throw new HttpError(429, 'too many failed sign-ins; try again later', { headers: { 'Retry-After': String(wait) } });
    const body = await this.#readJson(req);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'invalid request: the body must be a JSON object like {"token": "..."}');
    const b = body as Record<string, unknown>;
    for (const k of Object.keys(b)) if (k !== 'token') throw new HttpError(400, `invalid request: ${truncate(k, 64)} is not a known field (token)`, { field: truncate(k, 64) });
    if (b.token !== undefined && typeof b.token !== 'string') throw new HttpError(400, 'invalid request: token must be a string', { field: 'token' });
    if (this.#token) {
      if (typeof b.token !== 'string' || b.token.length === 0 || b.token.length > 1024 || !tokenMatches(b.token.trim(), this.#token)) {
        this.#signIns.failed();
        this.#log.warn({ remote: req.socket.remoteAddress }, 'console sign-in with a wrong admin token');
        throw new HttpError(401, 'invalid admin token', { field: 'token' });
      }
    }
    const session = this.#sessions.create();
    this.#log.info({ remote: req.socket.remoteAddress }, 'console signed in');
    // Behind a TLS proxy the cookie must not travel in clear text (Secure only restricts: trusting the header costs nothing).
    const secure = String(req.headers['x-forwarded-proto'] ?? '').split(',')[0].trim().toLowerCase() === 'https';
    sendJson(res, 201, { csrf: session.csrf }, { 'Set-Cookie': this.#sessions.setCookie(session, secure) });
  }

  async #signOut(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const session = this.#sessions.fromCookie(req.headers.cookie);
    if (session) {
      this.#checkCsrf(req, session);
      this.#sessions.delete(session);
    }
    sendJson(res, 200, { authenticated: false }, { 'Set-Cookie': this.#sessions.setCookie(undefined) });
  }

  async #asset(req: IncomingMessage, res: ServerResponse, rest: string): Promise<void> {
    this.#assets ??= loadConsoleAssets(this.#consoleDir);
    if (this.#assets.size === 0) throw new HttpError(404, 'the console is not built here (npm run build:console)');
    const a = consoleAsset(this.#assets, rest);
    if (!a) throw new HttpError(404, `no such console file [path:${truncate(rest, 100)}]`);
    const headers = { 'Content-Type': a.contentType, ETag: a.etag, 'Cache-Control': 'no-cache', 'Content-Security-Policy': CONSOLE_CSP };
    if (req.headers['if-none-match'] === a.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Length': String(a.body.length) });
    res.end(req.method === 'HEAD' ? undefined : a.body);
  }

  async #get(res: ServerResponse, id: string): Promise<void> {
    const v = await this.#opts.calls.get(id);
    if (!v) throw noCall(id);
    sendJson(res, 200, v);
  }

  async #place(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await this.#readJson(req);
    const placeReq = validatePlaceCall(body);
    const placed = await this.#opts.calls.place(placeReq);
    this.#log.info({ callId: placed.id, uri: placeReq.uri }, 'outbound call requested through the admin API');
    sendJson(res, 202, placed, { Location: `/calls/${encodeURIComponent(placed.id)}` });
  }

  async #hangup(res: ServerResponse, id: string): Promise<void> {
    const ok = await this.#opts.calls.hangup(id);
    if (!ok) throw noCall(id);
    sendJson(res, 200, { id, status: 'hanging_up' });
  }

  async #events(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const max = this.#opts.maxSseClients ?? 32;
    if (this.#streams.size >= max) throw new HttpError(503, `too many event streams open [max:${max}]`, { headers: { 'Retry-After': '5' } });
    // Subscribe before taking the snapshot, so nothing said in between is lost; events wait here until
    // the snapshot is out, and `seq` removes lines the snapshot already had.
    let stream: SseStream | undefined;
    const early: CallEvent[] = [];
    let lastSeq = -1;
    let ended = false;
    const deliver = (ev: CallEvent): void => {
      if (!stream) {
        early.push(ev);
        if (early.length > 1024) early.shift();
        return;
      }
      if (stream.closed || ended) return;
      if (ev.type === 'transcript' && typeof ev.seq === 'number') {
        if (ev.seq <= lastSeq) return;
        lastSeq = ev.seq;
      }
      const { type, ...data } = ev;
      if (type === 'ended') {
        ended = true;
        stream.sendAndEnd('ended', data);
      } else {
        stream.send(type, data);
      }
    };
    const unsubscribe = this.#opts.calls.subscribe(id, deliver);
    let view: CallView | undefined;
    try {
      view = await this.#opts.calls.get(id);
    } catch (err) {
      unsubscribe?.();
      throw err;
    }
    if (!view && !unsubscribe) throw noCall(id);
    if (req.destroyed || this.#closing) {
      unsubscribe?.();
      return;
    }
    stream = new SseStream(res, { heartbeatMs: this.#opts.heartbeatMs, maxQueue: this.#opts.sseMaxQueue });
    const s = stream;
    this.#streams.add(s);
    s.onClose(() => {
      this.#streams.delete(s);
      unsubscribe?.();
    });
    if (view) {
      s.send('state', { state: view.state, ...(view.startedAt ? { at: view.startedAt } : {}) });
      for (const line of view.transcript ?? []) {
        s.send('transcript', line);
        if (typeof line.seq === 'number') lastSeq = Math.max(lastSeq, line.seq);
      }
    }
    for (const ev of early.splice(0)) deliver(ev);
    if (!ended && (!unsubscribe || view?.endedAt)) {
      ended = true;
      s.sendAndEnd('ended', { reason: view?.endReason ?? undefined, at: view?.endedAt ?? undefined });
    }
  }

  async #readJson(req: IncomingMessage): Promise<unknown> {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/json') {
      throw new HttpError(415, 'the body must be JSON (Content-Type: application/json)');
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > this.#maxBody) {
      throw new HttpError(413, `request body too large [limit:${this.#maxBody} bytes]`);
    }
    const raw = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let failed = false;
      req.on('data', (c: Buffer) => {
        if (failed) return;
        size += c.length;
        if (size > this.#maxBody) {
          failed = true;
          chunks.length = 0;
          reject(new HttpError(413, `request body too large [limit:${this.#maxBody} bytes]`));
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => {
        if (!failed) resolve(Buffer.concat(chunks));
      });
      req.on('error', (err) => {
        if (!failed) reject(err);
      });
    });
    if (raw.length === 0) throw new HttpError(400, 'invalid JSON: the body is empty');
    try {
      return JSON.parse(raw.toString('utf8'));
    } catch (err) {
      throw new HttpError(400, `invalid JSON: ${messageOf(err)}`);
    }
  }

  #fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    const e = toHttpError(err);
    if (e.status >= 500) this.#log.warn({ err, method: req.method, url: req.url }, `admin request failed: ${e.message}`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const headers: Record<string, string> = { ...e.headers };
    // A 413 leaves an unread body behind: close the connection rather than read it.
    if (e.status === 413) headers.Connection = 'close';
    const body: Record<string, unknown> = { error: e.message };
    if (e.field) body.field = e.field;
    sendJson(res, e.status, body, headers);
  }
}

/** Map any thrown error to an HTTP error, keeping what its type means. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  const status = (err as { httpStatus?: unknown } | null)?.httpStatus;
  if (typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 599) return new HttpError(status, messageOf(err));
  if (err instanceof ConfigError || err instanceof TypeError || err instanceof RangeError) return new HttpError(400, messageOf(err));
  if (err instanceof InvalidStateError) return new HttpError(409, messageOf(err));
  if (err instanceof SipError || err instanceof AiSessionError) return new HttpError(502, messageOf(err));
  return new HttpError(500, err instanceof AgentError ? err.message : 'internal error (see the daemon log)');
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(text)),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** Methods that change nothing (no CSRF check). */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

function queryOf(req: IncomingMessage): URLSearchParams {
  const url = req.url ?? '/';
  const i = url.indexOf('?');
  return new URLSearchParams(i < 0 ? '' : url.slice(i + 1));
}

async function redirect(res: ServerResponse, location: string): Promise<void> {
  res.writeHead(308, { Location: location, 'Content-Length': '0' });
  res.end();
}

function noCall(id: string): HttpError {
  return new HttpError(404, `no call with id ${truncate(id, 128)}`);
}

function decodeParam(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw new HttpError(400, 'invalid percent-encoding in the path');
  }
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number): AgentError {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const why: Record<string, string> = {
    EADDRINUSE: 'the address is already in use (is another sip-ai-agent running, or another service on this port?)',
    EADDRNOTAVAIL: 'the address does not belong to this host',
    EACCES: 'permission denied (ports below 1024 need privileges)',
  };
  return new AgentError(
    'ERR_ADMIN_LISTEN',
    `admin API cannot listen on ${where}: ${why[err.code ?? ''] ?? err.message} [code:${err.code ?? 'unknown'}]`,
    { cause: err },
  );
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function truncate(s: string, n: number): string {
  return s.length > n ? s.slice(0, n) + '…' : s;
}

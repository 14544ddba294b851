/**
 * A fake OpenAI Realtime server (GA protocol over WebSocket) for tests and benchmarks, written from
 * docs/realtime-protocol.md only. It is strict like the real service: GA shapes only, unknown
 * parameters rejected, `session.type` required, truncate beyond delivered audio is an error, audio
 * deltas come in bursts faster than real time, server VAD works by energy, function calls, and
 * `session_expired`. Listens on 127.0.0.1, port 0 by default.
 *
 * ```ts
 * const server = new FakeRealtimeServer({ apiKey: 'sk-test' });
 * const { url } = await server.listen();   // ws://127.0.0.1:PORT/v1/realtime?model=gpt-realtime
 * ...
 * await server.close();
 * ```
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { FakeSession, type LoggedEvent, type RespondScript, type SessionTuning, type Step } from './FakeSession';
import type { ToneSpec } from './audio';

// One import site for tests: the session types, audio helpers and VAD mapping.
export * from './FakeSession';
export { type ToneSpec, type WireFormat, synthTone, decodeWire, encodeWire, rmsDbfs } from './audio';
export { thresholdToDbfs } from './vad';

/** Paths the fake upgrades on: OpenAI's and Azure's GA endpoint. */
export const REALTIME_PATHS = ['/v1/realtime', '/openai/v1/realtime'] as const;

/** Options of {@link FakeRealtimeServer}; every field has a default. */
export interface FakeRealtimeServerOptions {
  /** Bind address; default 127.0.0.1. */
  host?: string;
  /** Port; default 0 (any free port, see {@link FakeRealtimeServer.port}). */
  port?: number;
  /** Expected API key (Bearer or api-key header). Undefined accepts any non-empty key. */
  apiKey?: string;
  /** Refuse every handshake with HTTP 429; default false. */
  rateLimited?: boolean;
  /** Audio delivery speed as a multiple of real time; default 4. Infinity sends every chunk back to back. */
  burstFactor?: number;
  /** Audio per output_audio.delta, ms of 24 kHz audio; default 100. */
  chunkMs?: number;
  /** Model "think time" between response.created and the first output item, ms; default 0. */
  responseLatencyMs?: number;
  /** What responses say; default {@link toneReply}() (a 1 kHz tone of 1.5 s per response). */
  respond?: RespondScript;
  /** End-of-turn silence used for semantic_vad, ms; default 800. */
  semanticVadSilenceMs?: number;
  /** Voiced audio needed before speech_started counts, ms; default 30. */
  vadMinSpeechMs?: number;
  /** Send session_expired and close after this long (wall clock), ms; default none. */
  sessionMaxMs?: number;
  /** Input audio kept per session for inspection, ms; default 600000 (oldest evicted, counted). */
  maxReceivedAudioMs?: number;
  /** Events kept in each session's log; default 20000 (oldest evicted, counted). */
  maxLoggedEvents?: number;
  /** Conversation items kept per session; default 2000 (oldest evicted, counted). */
  maxConversationItems?: number;
  /** Sessions kept in {@link FakeRealtimeServer.sessions}; default 1000 (oldest closed ones evicted). */
  maxSessions?: number;
  /** Audio streaming pauses while the socket has more than this queued, bytes; default 4 MiB. */
  maxSendBufferBytes?: number;
  /** Transcript for input audio transcription (when enabled); default `[user audio N ms]`. */
  transcribe?: SessionTuning['transcribe'];
}

/** A refused or accepted upgrade request (auth headers redacted). */
export interface HandshakeRecord {
  url: string;
  status: number;
  code: string | null;
}

/** A logged event together with the session it belongs to. */
export interface Observation extends LoggedEvent {
  session: FakeSession;
}

/** Matches an observation by event type or predicate. */
export type ObservationMatcher = string | ((o: Observation) => boolean);

/**
 * The default script: every response is one spoken message, a tone (1 kHz, 1.5 s, amplitude 0.3
 * unless overridden) with a transcript naming the response number.
 */
export function toneReply(tone: Partial<ToneSpec> = {}): RespondScript {
  const spec: ToneSpec = { toneHz: tone.toneHz ?? 1000, ms: tone.ms ?? 1500, amplitude: tone.amplitude ?? 0.3 };
  return (ctx): Step[] => [
    { audio: spec, transcript: `Reply ${ctx.index + 1}: this is a ${spec.toneHz} hertz test tone.` },
  ];
}

function jsonError(type: string, code: string, message: string, param: string | null = null): string {
  return JSON.stringify({ error: { message, type, param, code } });
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 429: 'Too Many Requests' };

/** The fake Realtime server. See the module comment for an example. */
export class FakeRealtimeServer {
  /** Accepted WebSocket connections since start. */
  connectionCount = 0;
  /** Every upgrade attempt with its outcome (bounded like sessions). */
  readonly handshakes: HandshakeRecord[] = [];
  /** Sessions evicted from {@link sessions} by the maxSessions cap. */
  droppedSessions = 0;
  /** Expected API key; may be changed while running. Undefined accepts any non-empty key. */
  apiKey: string | undefined;
  /** When true every handshake is refused with 429; may be toggled while running. */
  rateLimited: boolean;
  /** Response script for new sessions; may be changed while running. */
  respond: RespondScript;

  private readonly opts: FakeRealtimeServerOptions;
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly sessionList: FakeSession[] = [];
  private readonly connectionIndex = new WeakMap<FakeSession, number>();
  private readonly ee = new EventEmitter();
  private portValue = 0;
  private closedValue = false;
  private closing: Promise<void> | null = null;

  constructor(opts: FakeRealtimeServerOptions = {}) {
    this.opts = opts;
    this.apiKey = opts.apiKey;
    this.rateLimited = opts.rateLimited ?? false;
    this.respond = opts.respond ?? toneReply();
    this.ee.setMaxListeners(0);
    // 15 MiB of audio is ~20 MiB of base64; leave room for the JSON around it.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 24 * 1024 * 1024, perMessageDeflate: false });
    this.http = createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'application/json' });
      res.end(jsonError('invalid_request_error', 'upgrade_required', 'This endpoint only accepts WebSocket upgrades.'));
    });
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
  }

  /** Start listening; resolves with the bound port and the default session URL. */
  async listen(): Promise<{ port: number; url: string }> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    this.portValue = (this.http.address() as AddressInfo).port;
    return { port: this.portValue, url: this.url };
  }

  /** Bound port (0 before listen()). */
  get port(): number {
    return this.portValue;
  }

  /** `ws://host:port` without path. */
  get baseUrl(): string {
    return `ws://${this.opts.host ?? '127.0.0.1'}:${this.portValue}`;
  }

  /** Default session URL: `ws://host:port/v1/realtime?model=gpt-realtime`. */
  get url(): string {
    return `${this.baseUrl}/v1/realtime?model=gpt-realtime`;
  }

  /** Sessions in connection order (closed ones included until evicted by maxSessions). */
  get sessions(): readonly FakeSession[] {
    return this.sessionList;
  }

  /** True once close() has been called. */
  get closed(): boolean {
    return this.closedValue;
  }

  /** Look a session up by its `sess_...` id. */
  session(id: string): FakeSession | undefined {
    return this.sessionList.find((s) => s.id === id);
  }

  /** Kill every TCP connection abruptly (no close frame). */
  dropAll(): void {
    for (const s of this.sessionList) if (!s.closed) s.drop();
  }

  /** Kill one session's TCP connection abruptly. Returns false if it is unknown or already closed. */
  dropSession(id: string): boolean {
    const s = this.session(id);
    if (!s || s.closed) return false;
    s.drop();
    return true;
  }

  /** Send `session_expired` then close the session. Returns false if it is unknown or already closed. */
  expireSession(id: string): boolean {
    const s = this.session(id);
    if (!s || s.closed) return false;
    s.expire();
    return true;
  }

  /**
   * Resolve with the session at `index` (default: the next one to connect) once it exists and has
   * sent session.created.
   */
  waitForSession(timeoutMs = 5000, index: number = this.connectionCount): Promise<FakeSession> {
    const existing = this.sessionAt(index);
    if (existing) return Promise.resolve(existing);
    return new Promise((resolve, reject) => {
      const onSession = (): void => {
        const s = this.sessionAt(index);
        if (!s) return;
        cleanup();
        resolve(s);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`waitForSession timed out [index:${index}, timeoutMs:${timeoutMs}, connections:${this.connectionCount}]`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.ee.off('session', onSession);
      };
      this.ee.on('session', onSession);
    });
  }

  /** Resolve with the next event (any session, either direction) matching `matcher`. */
  waitFor(matcher: ObservationMatcher, timeoutMs = 5000): Promise<Observation> {
    const test = typeof matcher === 'string' ? (o: Observation) => o.event['type'] === matcher : matcher;
    return new Promise((resolve, reject) => {
      const onEvent = (o: Observation): void => {
        if (!test(o)) return;
        cleanup();
        resolve(o);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`waitFor timed out [matcher:${String(matcher)}, timeoutMs:${timeoutMs}]`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.ee.off('event', onEvent);
      };
      this.ee.on('event', onEvent);
    });
  }

  /** Subscribe to every logged event of every session. */
  onEvent(listener: (o: Observation) => void): () => void {
    this.ee.on('event', listener);
    return () => this.ee.off('event', listener);
  }

  /** Close every session (1001), stop listening. Idempotent; resolves when the port is released. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closedValue = true;
    this.closing = (async () => {
      const open = this.sessionList.filter((s) => !s.closed);
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
      this.http.closeAllConnections();
      await new Promise<void>((resolve) => this.http.close(() => resolve()));
    })();
    return this.closing;
  }

  private sessionAt(index: number): FakeSession | undefined {
    return this.sessionList.find((s) => this.connectionIndex.get(s) === index);
  }

  private record(h: HandshakeRecord): void {
    this.handshakes.push(h);
    if (this.handshakes.length > (this.opts.maxSessions ?? 1000)) this.handshakes.shift();
  }

  private refuse(socket: Duplex, url: string, status: number, body: string, code: string): void {
    this.record({ url, status, code });
    const head =
      `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n';
    socket.end(head + body);
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {
      // A client that vanishes mid-handshake is not the server's problem.
    });
    const rawUrl = req.url ?? '/';
    if (this.closedValue) {
      socket.destroy();
      return;
    }
    const url = new URL(rawUrl, 'http://fake');
    if (!(REALTIME_PATHS as readonly string[]).includes(url.pathname)) {
      this.refuse(socket, rawUrl, 404, jsonError('invalid_request_error', 'not_found', `Invalid URL (GET ${url.pathname})`), 'not_found');
      return;
    }
    const key = this.keyOf(req);
    if (!key) {
      this.refuse(
        socket,
        rawUrl,
        401,
        jsonError('invalid_request_error', 'invalid_api_key', "You didn't provide an API key. Provide it in an Authorization header (Bearer auth) or an api-key header."),
        'invalid_api_key',
      );
      return;
    }
    if (this.apiKey !== undefined && key !== this.apiKey) {
      this.refuse(socket, rawUrl, 401, jsonError('invalid_request_error', 'invalid_api_key', 'Incorrect API key provided.'), 'invalid_api_key');
      return;
    }
    if (this.rateLimited) {
      this.refuse(
        socket,
        rawUrl,
        429,
        jsonError('requests', 'rate_limit_exceeded', 'Rate limit reached for requests. Please try again later.'),
        'rate_limit_exceeded',
      );
      return;
    }
    const model = url.searchParams.get('model');
    if (!model) {
      this.refuse(
        socket,
        rawUrl,
        400,
        jsonError('invalid_request_error', 'missing_required_parameter', "Missing required parameter: 'model'.", 'model'),
        'missing_required_parameter',
      );
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => this.onConnection(ws, req, rawUrl, model));
  }

  private keyOf(req: IncomingMessage): string | null {
    const auth = req.headers['authorization'];
    if (typeof auth === 'string') {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      return m ? m[1]! : null;
    }
    const apiKey = req.headers['api-key'];
    return typeof apiKey === 'string' && apiKey.trim() !== '' ? apiKey.trim() : null;
  }

  private onConnection(ws: WebSocket, req: IncomingMessage, rawUrl: string, model: string): void {
    const index = this.connectionCount++;
    this.record({ url: rawUrl, status: 101, code: null });
    const session = new FakeSession(ws, rawUrl, model, req.headers, {
      respond: this.respond,
      burstFactor: this.opts.burstFactor ?? 4,
      chunkMs: this.opts.chunkMs ?? 100,
      responseLatencyMs: this.opts.responseLatencyMs ?? 0,
      semanticVadSilenceMs: this.opts.semanticVadSilenceMs ?? 800,
      vadMinSpeechMs: this.opts.vadMinSpeechMs ?? 30,
      maxReceivedAudioMs: this.opts.maxReceivedAudioMs ?? 600_000,
      maxLoggedEvents: this.opts.maxLoggedEvents ?? 20_000,
      maxConversationItems: this.opts.maxConversationItems ?? 2000,
      maxSendBufferBytes: this.opts.maxSendBufferBytes ?? 4 * 1024 * 1024,
      ...(this.opts.transcribe ? { transcribe: this.opts.transcribe } : {}),
    });
    this.sessionList.push(session);
    this.connectionIndex.set(session, index);
    const max = this.opts.maxSessions ?? 1000;
    while (this.sessionList.length > max) {
      const idx = this.sessionList.findIndex((s) => s.closed);
      if (idx < 0) break;
      this.sessionList.splice(idx, 1);
      this.droppedSessions++;
    }
    session.onLog((e) => this.ee.emit('event', { ...e, session }));
    const beta = req.headers['openai-beta'];
    if (typeof beta === 'string' && /realtime\s*=\s*v1/i.test(beta)) {
      session.rejectBeta();
    } else {
      session.start();
      if (this.opts.sessionMaxMs !== undefined) {
        const timer = setTimeout(() => session.expire(), this.opts.sessionMaxMs);
        session.onClosed(() => clearTimeout(timer));
      }
    }
    this.ee.emit('session', session);
  }
}

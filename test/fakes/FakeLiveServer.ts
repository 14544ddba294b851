/**
 * A fake OpenAI GPT-Live server (primary WebSocket) for tests and benchmarks, written from the
 * published Live reference (summary in live-schema.ts), not from our client. Strict like the
 * service: session.start first, unknown fields rejected, no query parameters, auth on the
 * handshake (Bearer or Azure `api-key`). Its "model" is a full-duplex script: it hears caller turns
 * by energy, answers with tones and transcripts sent faster than real time, stops when talked
 * over, and delegates work to the client or to an emulated Responses backend. It records what a
 * test needs to check: interruptions, input stalls, delegations, errors. Listens on 127.0.0.1.
 *
 * ```ts
 * const server = new FakeLiveServer({ apiKey: 'sk-test' });
 * const { url } = await server.listen();   // ws://127.0.0.1:PORT/v1/live/sessions
 * ...
 * await server.close();
 * ```
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { HandshakeRecord } from './FakeRealtimeServer';
import {
  LiveFakeSession,
  hearToneCheaply,
  liveSpeakTone,
  liveToneReply,
  type LiveLoggedEvent,
  type LiveRespondScript,
  type LiveSessionTuning,
  type LiveSpeakScript,
} from './LiveFakeSession';

export * from './LiveFakeSession';
export { validateLiveClientEvent, LIVE_VOICES } from './live-schema';

/** Paths the fake upgrades on: OpenAI's and Azure's. */
export const LIVE_PATHS = ['/v1/live/sessions', '/openai/v1/live/sessions'] as const;

/** Options of {@link FakeLiveServer}; every field has a default. */
export interface FakeLiveServerOptions {
  host?: string;
  port?: number;
  /** Expected API key (Bearer or api-key header). Undefined accepts any non-empty key. */
  apiKey?: string;
  /** Audio delivery speed as a multiple of real time; default 4. Infinity sends back to back. */
  burstFactor?: number;
  /** Audio per session.output_audio.delta, ms; default 100. */
  chunkMs?: number;
  /** Reply to each caller turn; default {@link liveToneReply}() (1 kHz, 1.5 s). */
  respond?: LiveRespondScript;
  /** Speech for commentary and Responses results; default {@link liveSpeakTone}() (1.2 kHz, 1 s). */
  speak?: LiveSpeakScript;
  /** VAD threshold 0..1 (0.5 ≈ -35 dBFS); default 0.5. */
  vadThreshold?: number;
  /** Silence that ends a caller turn, ms; default 500. */
  vadSilenceMs?: number;
  /** Audio before the onset included in a turn, ms; default 300. */
  vadPrefixMs?: number;
  /** Voiced audio needed before an onset counts, ms; default 30. */
  vadMinSpeechMs?: number;
  /** Input behind real time by more than this is recorded as a gap, ms; default 200. */
  gapThresholdMs?: number;
  /** session.usage.updated every this much input audio, ms; default 15000. */
  usageEveryMs?: number;
  /** Largest decoded append accepted, bytes; default 15 MiB. */
  maxAppendBytes?: number;
  /** Input audio kept per session, ms; default 600000. */
  maxReceivedAudioMs?: number;
  /** Events kept per session log; default 20000. */
  maxLoggedEvents?: number;
  /** Records kept per list (utterances, gaps, ...); default 1000. */
  maxRecords?: number;
  /** Sessions kept; default 1000 (oldest closed evicted). */
  maxSessions?: number;
  /** Audio streaming pauses while more than this is queued on the socket, bytes; default 4 MiB. */
  maxSendBufferBytes?: number;
  /** Caller audio per transcript fragment while the caller speaks, ms; default 400. */
  transcriptChunkMs?: number;
  /** What a chunk of caller audio says; default {@link hearToneCheaply} (`tone <Hz>`, '' for silence). */
  transcribe?: LiveSessionTuning['transcribe'];
  /** Session lifetime advertised in expires_at, s; default 3600. */
  expiresInSec?: number;
}

/** A logged event with its session. */
export interface LiveObservation extends LiveLoggedEvent {
  session: LiveFakeSession;
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 429: 'Too Many Requests' };

function jsonError(type: string, code: string, message: string, param: string | null = null): string {
  return JSON.stringify({ error: { message, type, param, code } });
}

/** The fake GPT-Live server. See the module comment. */
export class FakeLiveServer {
  /** Accepted WebSocket connections since start. */
  connectionCount = 0;
  /** Every upgrade attempt and its outcome (bounded). */
  readonly handshakes: HandshakeRecord[] = [];
  /** Sessions evicted by maxSessions. */
  droppedSessions = 0;
  /** Expected key; may change while running. */
  apiKey: string | undefined;
  /** Refuse every handshake with 429 while true. */
  rateLimited = false;
  /** Reply script for new sessions. */
  respond: LiveRespondScript;
  /** Speech for new sessions. */
  speak: LiveSpeakScript;

  private readonly opts: FakeLiveServerOptions;
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly sessionList: LiveFakeSession[] = [];
  private readonly indexOf = new WeakMap<LiveFakeSession, number>();
  private readonly ee = new EventEmitter();
  private portValue = 0;
  private closedValue = false;
  private closing: Promise<void> | null = null;

  constructor(opts: FakeLiveServerOptions = {}) {
    this.opts = opts;
    this.apiKey = opts.apiKey;
    this.respond = opts.respond ?? liveToneReply();
    this.speak = opts.speak ?? liveSpeakTone();
    this.ee.setMaxListeners(0);
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 24 * 1024 * 1024, perMessageDeflate: false });
    this.http = createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'application/json' });
      res.end(jsonError('invalid_request_error', 'upgrade_required', 'This endpoint only accepts WebSocket upgrades.'));
    });
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
  }

  /** Start listening; resolves with the port and the OpenAI-style session URL. */
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

  /** Bound port (0 before listen). */
  get port(): number {
    return this.portValue;
  }

  /** `ws://host:port`. */
  get baseUrl(): string {
    return `ws://${this.opts.host ?? '127.0.0.1'}:${this.portValue}`;
  }

  /** `ws://host:port/v1/live/sessions`. */
  get url(): string {
    return `${this.baseUrl}${LIVE_PATHS[0]}`;
  }

  /** `ws://host:port/openai/v1/live/sessions` (the Azure path). */
  get azureUrl(): string {
    return `${this.baseUrl}${LIVE_PATHS[1]}`;
  }

  /** Sessions in connection order. */
  get sessions(): readonly LiveFakeSession[] {
    return this.sessionList;
  }

  /** Sessions whose socket is still open. */
  get openSessions(): number {
    return this.sessionList.filter((s) => !s.closed).length;
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.closedValue;
  }

  /** Look a session up by id. */
  session(id: string): LiveFakeSession | undefined {
    return this.sessionList.find((s) => s.id === id);
  }

  /** Kill every open connection abruptly. */
  dropAll(): void {
    for (const s of this.sessionList) if (!s.closed) s.drop();
  }

  /** Resolve with the session at `index` (default: the next to connect) once it exists. */
  waitForSession(timeoutMs = 5000, index: number = this.connectionCount): Promise<LiveFakeSession> {
    const existing = this.sessionList.find((s) => this.indexOf.get(s) === index);
    if (existing) return Promise.resolve(existing);
    return new Promise((resolve, reject) => {
      const onSession = (s: LiveFakeSession): void => {
        if (this.indexOf.get(s) !== index) return;
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

  /** Resolve with the next event (any session) matching `matcher`. */
  waitFor(matcher: string | ((o: LiveObservation) => boolean), timeoutMs = 5000): Promise<LiveObservation> {
    const test = typeof matcher === 'string' ? (o: LiveObservation) => o.event['type'] === matcher : matcher;
    return new Promise((resolve, reject) => {
      const onEvent = (o: LiveObservation): void => {
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
  onEvent(listener: (o: LiveObservation) => void): () => void {
    this.ee.on('event', listener);
    return () => this.ee.off('event', listener);
  }

  /** Close every session (1001) and stop listening. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closedValue = true;
    this.closing = (async () => {
      await Promise.all(
        this.sessionList
          .filter((s) => !s.closed)
          .map(
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

  private record(h: HandshakeRecord): void {
    this.handshakes.push(h);
    if (this.handshakes.length > (this.opts.maxSessions ?? 1000)) this.handshakes.shift();
  }

  private refuse(socket: Duplex, url: string, status: number, body: string, code: string): void {
    this.record({ url, status, code });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
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

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {
      // A client vanishing mid-handshake is its own problem.
    });
    const rawUrl = req.url ?? '/';
    if (this.closedValue) {
      socket.destroy();
      return;
    }
    const url = new URL(rawUrl, 'http://fake');
    if (!(LIVE_PATHS as readonly string[]).includes(url.pathname)) {
      this.refuse(socket, rawUrl, 404, jsonError('invalid_request_error', 'not_found', `Invalid URL (GET ${url.pathname})`), 'not_found');
      return;
    }
    const key = this.keyOf(req);
    if (!key || (this.apiKey !== undefined && key !== this.apiKey)) {
      const msg = key ? 'Incorrect API key provided.' : "You didn't provide an API key. Provide it in an Authorization header (Bearer auth) or an api-key header.";
      this.refuse(socket, rawUrl, 401, jsonError('invalid_request_error', 'invalid_api_key', msg), 'invalid_api_key');
      return;
    }
    if (this.rateLimited) {
      this.refuse(socket, rawUrl, 429, jsonError('requests', 'rate_limit_exceeded', 'Rate limit reached. Please try again later.'), 'rate_limit_exceeded');
      return;
    }
    // "Connect without query parameters": the model goes in session.start.
    const firstParam = [...url.searchParams.keys()][0];
    if (firstParam !== undefined) {
      this.refuse(
        socket,
        rawUrl,
        400,
        jsonError('invalid_request_error', 'unknown_parameter', `Unknown query parameter: '${firstParam}'. Live takes no query parameters; put the model in session.start.`, firstParam),
        'unknown_parameter',
      );
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => this.onConnection(ws, req, rawUrl));
  }

  private onConnection(ws: WebSocket, req: IncomingMessage, rawUrl: string): void {
    const index = this.connectionCount++;
    this.record({ url: rawUrl, status: 101, code: null });
    const o = this.opts;
    const session = new LiveFakeSession(ws, rawUrl, req.headers, {
      respond: this.respond,
      speak: this.speak,
      burstFactor: o.burstFactor ?? 4,
      chunkMs: o.chunkMs ?? 100,
      vadThreshold: o.vadThreshold ?? 0.5,
      vadSilenceMs: o.vadSilenceMs ?? 500,
      vadPrefixMs: o.vadPrefixMs ?? 300,
      vadMinSpeechMs: o.vadMinSpeechMs ?? 30,
      gapThresholdMs: o.gapThresholdMs ?? 200,
      usageEveryMs: o.usageEveryMs ?? 15_000,
      maxAppendBytes: o.maxAppendBytes ?? 15 * 1024 * 1024,
      maxReceivedAudioMs: o.maxReceivedAudioMs ?? 600_000,
      maxLoggedEvents: o.maxLoggedEvents ?? 20_000,
      maxRecords: o.maxRecords ?? 1000,
      maxSendBufferBytes: o.maxSendBufferBytes ?? 4 * 1024 * 1024,
      transcriptChunkMs: o.transcriptChunkMs ?? 400,
      transcribe: o.transcribe ?? hearToneCheaply,
      expiresInSec: o.expiresInSec ?? 3600,
    });
    this.sessionList.push(session);
    this.indexOf.set(session, index);
    const max = o.maxSessions ?? 1000;
    while (this.sessionList.length > max) {
      const i = this.sessionList.findIndex((s) => s.closed);
      if (i < 0) break;
      this.sessionList.splice(i, 1);
      this.droppedSessions++;
    }
    session.onLog((e) => this.ee.emit('event', { ...e, session }));
    this.ee.emit('session', session);
  }
}

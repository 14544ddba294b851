/**
 * A fake of the three OpenAI HTTP APIs a cascaded voice pipeline uses, for tests and benchmarks:
 * speech-to-text (`POST /v1/audio/transcriptions`), chat completions (`POST /v1/chat/completions`)
 * and text-to-speech (`POST /v1/audio/speech`). One node:http server, strict like the service:
 * unknown fields are rejected, required fields, types and ranges checked, errors come as the
 * service's error bodies and streams in the service's SSE shapes. What it hears, answers and says
 * is scripted; by default it hears tones, echoes the caller and speaks tones. Every request is
 * logged with its timing and whether the client went away. Listens on 127.0.0.1, port 0 by default.
 *
 * Where it is stricter than the service (a client that passes here may still send something the
 * service would accept, never the reverse): uploads must be RIFF/WAVE PCM16; transcription takes
 * only file, model, language, prompt, response_format, temperature and stream; chat takes only the
 * top-level keys listed in openai-http-schema.ts; speech renders only `wav` and `pcm` (so a request
 * without response_format, mp3 by default, is refused); a wrong method gets 405 rather than 404.
 *
 * ```ts
 * const server = new FakeOpenAiHttp({ apiKey: 'sk-test' });
 * const { url } = await server.listen();   // http://127.0.0.1:PORT (API base: url + '/v1')
 * ...
 * server.requests;                          // what was asked, when, and how it ended
 * await server.close();
 * ```
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter, on, once } from 'node:events';
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseWav, type WavAudio } from '../helpers/audio-analysis';
import { formBoundary, parseMultipart, type FormPart } from './multipart';
import { SPEECH_SAMPLE_RATE, hearTone, pcmBytes, speechDurationMs, speechTone, voiceHz, wavFile } from './openai-http-audio';
import {
  messageText,
  missingParameter,
  problem,
  unrecognizedArgument,
  validateChatRequest,
  validateSpeechRequest,
  type OpenAiProblem,
} from './openai-http-schema';

// One import site for tests: the audio helpers and the speech limits.
export { SPEECH_SAMPLE_RATE, hearTone, pcmBytes, speechDurationMs, speechTone, voiceHz, wavFile } from './openai-http-audio';
export { MAX_SPEECH_INPUT, TTS_VOICES, type OpenAiProblem } from './openai-http-schema';

/** The three endpoints, as named in the request log and by {@link FakeOpenAiHttp.failNext}. */
export type OpenAiEndpoint = 'transcriptions' | 'chat' | 'speech';

/** Path of each endpoint. */
export const OPENAI_HTTP_PATHS: Readonly<Record<OpenAiEndpoint, string>> = {
  transcriptions: '/v1/audio/transcriptions',
  chat: '/v1/chat/completions',
  speech: '/v1/audio/speech',
};

/** What GET /v1/models lists. */
const MODELS = ['whisper-1', 'gpt-4o-mini-transcribe', 'gpt-4o-transcribe', 'gpt-4.1-mini', 'gpt-4o-mini-tts', 'tts-1'];

/** Largest request body, bytes (the service's 25 MB upload limit); larger ones get 413. */
export const MAX_BODY_BYTES = 25 * 1024 * 1024;

/** Form fields of a transcription request, parsed, as the transcribe script sees them. */
export interface TranscriptionFields {
  model: string;
  language?: string;
  prompt?: string;
  response_format: 'json' | 'text' | 'srt' | 'verbose_json' | 'vtt';
  temperature?: number;
  stream: boolean;
}

/** What the speech-to-text hears in mono PCM16 at `sampleRate`. */
export type TranscribeScript = (pcm: Int16Array, sampleRate: number, fields: TranscriptionFields) => string | Promise<string>;

/** A tool call as chat messages carry it. */
export interface ChatToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** A validated chat message (roles system, developer, user, assistant, tool). */
export interface ChatMessage {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
  content?: string | { type: string; [key: string]: unknown }[] | null;
  name?: string;
  tool_calls?: ChatToolCall[];
  tool_call_id?: string;
  [key: string]: unknown;
}

/** A validated chat completion request. */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean; include_obfuscation?: boolean } | null;
  tools?: { type: 'function'; function: { name: string; description?: string; parameters?: Record<string, unknown> } }[];
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  stop?: string | string[] | null;
  [key: string]: unknown;
}

/** What the model answers: text, tool calls (after any text), or an error response. */
export interface ChatReply {
  text?: string;
  toolCalls?: { name: string; arguments: object }[];
  error?: { status: number; message: string; type?: string; code?: string };
}

/** The chat script: the answer to a request. */
export type ReplyScript = (messages: readonly ChatMessage[], request: ChatRequest) => ChatReply | Promise<ChatReply>;

/** A validated speech request. */
export interface SpeechRequest {
  model: string;
  input: string;
  voice: string | { id: string };
  instructions?: string;
  response_format?: 'wav' | 'pcm';
  speed?: number;
  stream_format?: 'audio' | 'sse';
}

/** The speech script: the frequency, Hz, of the tone that speaks `input`. */
export type VoiceScript = (input: string, request: SpeechRequest) => number;

/** Delays and pacing; every field may be changed while running. */
export interface FakeOpenAiHttpTiming {
  /** Before a transcription's response (or, streamed, its first delta), ms; default 0. */
  sttMs: number;
  /** Between streamed transcription deltas, ms; default 0. */
  sttDeltaMs: number;
  /** Before a chat completion's first chunk (or, not streamed, its whole body), ms; default 0. */
  chatFirstTokenMs: number;
  /** Between streamed chat pieces, ms; default 0. */
  chatDeltaMs: number;
  /** Before the first byte of speech audio, ms; default 0. */
  ttsFirstByteMs: number;
  /** Audio per written chunk of speech, ms; default 40. */
  ttsChunkMs: number;
  /** Speech delivery speed as a multiple of real time; default Infinity (as fast as the socket takes it). */
  ttsPace: number;
}

/** Options of {@link FakeOpenAiHttp}; every field has a default. */
export interface FakeOpenAiHttpOptions {
  /** Bind address; default 127.0.0.1. */
  host?: string;
  /** Port; default 0 (any free port, see {@link FakeOpenAiHttp.port}). */
  port?: number;
  /** Expected API key (`Authorization: Bearer`). Undefined accepts any non-empty key. */
  apiKey?: string;
  /** What speech-to-text hears; default {@link hearTone}. */
  transcribe?: TranscribeScript;
  /** What the chat model answers; default {@link echoReply}. */
  reply?: ReplyScript;
  /** The tone frequency that speaks a text; default {@link voiceHz}. */
  voiceFor?: VoiceScript;
  /** Delays and pacing (see {@link FakeOpenAiHttpTiming}). */
  timing?: Partial<FakeOpenAiHttpTiming>;
  /** Requests kept in {@link FakeOpenAiHttp.requests}; default 10000 (oldest finished ones evicted, counted). */
  maxLoggedRequests?: number;
}

/** A scripted failure's body and headers; the defaults are the service's for the status. */
export interface FailureOptions {
  message?: string;
  type?: string;
  code?: string | null;
  /** `retry-after` header, seconds; default 1 on 429, none otherwise. */
  retryAfterS?: number;
}

/** The `error` object of an OpenAI error body. */
export interface OpenAiError {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

/** What a request produced, for assertions. */
export interface RequestOutput {
  /** Transcript, or chat text (after stop/max tokens). */
  text?: string;
  /** Chat tool calls with their arguments as sent (JSON text). */
  toolCalls?: { id: string; name: string; arguments: string }[];
  /** Chat `finish_reason`. */
  finishReason?: 'stop' | 'length' | 'tool_calls';
  /** Speech tone, Hz. */
  toneHz?: number;
  /** Speech duration, ms. */
  audioMs?: number;
}

/** One request, from its head arriving to its response ending. Times are epoch ms (fractional). */
export interface RequestRecord {
  /** 1-based arrival order. */
  id: number;
  /** The endpoint; null for an unknown path. */
  endpoint: OpenAiEndpoint | null;
  method: string;
  /** Path with query. */
  path: string;
  /** Response status; 0 until the head is written. */
  status: number;
  /** The parsed body: JSON as sent, or the form fields (the file summarised: name, type, bytes, audio). */
  fields: Record<string, unknown>;
  /** The response is a stream (SSE, or chunked speech audio). */
  stream: boolean;
  bytesReceived: number;
  /** Body bytes written. */
  bytesSent: number;
  receivedAt: number;
  /** First body byte written; null if none was. */
  firstByteAt: number | null;
  /** Response ended, or the connection closed; null while in flight. */
  finishedAt: number | null;
  /** The connection closed before the response was complete (client went away, or close()). */
  aborted: boolean;
  /** The error body sent, if any. */
  error: OpenAiError | null;
  output: RequestOutput | null;
}

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  rec: RequestRecord;
  signal: AbortSignal;
}

const FINGERPRINT = 'fp_fake0001';
const now = (): number => performance.timeOrigin + performance.now();

/** Words with their leading whitespace, in pieces of 1, 2, 3, 1, 2, 3... words. */
export function splitPieces(text: string): string[] {
  const words = text.match(/\s*\S+|\s+$/g) ?? [];
  const pieces: string[] = [];
  for (let i = 0, size = 1; i < words.length; i += size, size = (size % 3) + 1) pieces.push(words.slice(i, i + size).join(''));
  return pieces;
}

/** The default chat script: `You said: <last user message>. Anything else?` */
export const echoReply: ReplyScript = (messages) => {
  const lastUser = [...messages].reverse().find((m) => m.role === 'user');
  const said = messageText(lastUser?.content).trim().replace(/[.!?]+$/, '');
  return { text: said ? `You said: ${said}. Anything else?` : 'You said nothing. Anything else?' };
};

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (!(ms > 0)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (): void => {
      if (timer) clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve(!signal.aborted);
    };
    const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
    signal.addEventListener('abort', done, { once: true });
  });
}

function apiError(type: string, message: string, param: string | null = null, code: string | null = null): OpenAiError {
  return { message, type, param, code };
}

function invalid(p: OpenAiProblem): OpenAiError {
  return apiError('invalid_request_error', p.message, p.param, p.code);
}

function failureError(status: number, o: FailureOptions): OpenAiError {
  if (status === 429) {
    const message = o.message ?? 'Rate limit reached for requests. Please try again later.';
    return apiError(o.type ?? 'requests', message, null, o.code === undefined ? 'rate_limit_exceeded' : o.code);
  }
  if (status >= 500) {
    const message =
      status === 503
        ? 'The engine is currently overloaded, please try again later.'
        : 'The server had an error while processing your request. Sorry about that!';
    return apiError(o.type ?? 'server_error', o.message ?? message, null, o.code ?? null);
  }
  return apiError(o.type ?? 'invalid_request_error', o.message ?? `Request failed with status ${status}.`, null, o.code ?? null);
}

const TRANSCRIPTION_FIELDS = new Set(['file', 'model', 'language', 'prompt', 'response_format', 'temperature', 'stream']);
const TRANSCRIPTION_FORMATS = ['json', 'text', 'srt', 'verbose_json', 'vtt'] as const;

function timestamp(ms: number, sep: ',' | '.'): string {
  const t = Math.round(ms);
  const hh = String(Math.floor(t / 3_600_000)).padStart(2, '0');
  const mm = String(Math.floor(t / 60_000) % 60).padStart(2, '0');
  const ss = String(Math.floor(t / 1000) % 60).padStart(2, '0');
  return `${hh}:${mm}:${ss}${sep}${String(t % 1000).padStart(3, '0')}`;
}

/** The fake server. See the module comment for an example. */
export class FakeOpenAiHttp {
  /** Expected API key; may be changed while running. Undefined accepts any non-empty key. */
  apiKey: string | undefined;
  /** Speech-to-text script; may be changed while running. */
  transcribe: TranscribeScript;
  /** Chat script; may be changed while running. */
  reply: ReplyScript;
  /** Speech script; may be changed while running. */
  voiceFor: VoiceScript;
  /** Delays and pacing; its fields may be changed while running. */
  readonly timing: FakeOpenAiHttpTiming;
  /** Requests evicted from {@link requests} by maxLoggedRequests. */
  droppedRequests = 0;

  private nextId = 1;
  private closedValue = false;
  private closing: Promise<void> | null = null;
  private readonly log: RequestRecord[] = [];
  /** Scripted failures queued per endpoint. */
  private readonly failures: Record<OpenAiEndpoint, { status: number; options: FailureOptions }[]> = { transcriptions: [], chat: [], speech: [] };
  /** One controller per response in flight; aborting it stops the response. */
  private readonly inFlight = new Set<AbortController>();
  private readonly ee = new EventEmitter();
  private readonly opts: FakeOpenAiHttpOptions;
  private readonly http: Server;

  constructor(opts: FakeOpenAiHttpOptions = {}) {
    this.opts = opts;
    this.apiKey = opts.apiKey;
    this.transcribe = opts.transcribe ?? hearTone;
    this.reply = opts.reply ?? echoReply;
    this.voiceFor = opts.voiceFor ?? voiceHz;
    this.timing = {
      sttMs: 0,
      sttDeltaMs: 0,
      chatFirstTokenMs: 0,
      chatDeltaMs: 0,
      ttsFirstByteMs: 0,
      ttsChunkMs: 40,
      ttsPace: Infinity,
      ...opts.timing,
    };
    this.ee.setMaxListeners(0);
    this.http = createServer((req, res) => this.onRequest(req, res));
  }

  /** Start listening; resolves with the bound port and `http://host:port`. */
  async listen(): Promise<{ port: number; url: string }> {
    this.http.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1');
    await once(this.http, 'listening');
    return { port: this.port, url: this.url };
  }

  /** Bound port (0 while not listening). */
  get port(): number {
    const address = this.http.address() as AddressInfo | null;
    return address?.port ?? 0;
  }

  /** `http://host:port`, without path. */
  get url(): string {
    return `http://${this.opts.host ?? '127.0.0.1'}:${this.port}`;
  }

  /** The API base a client is configured with: `http://host:port/v1`. */
  get apiBase(): string {
    return `${this.url}/v1`;
  }

  /** Every request in arrival order, in flight ones included (see {@link RequestRecord}). */
  get requests(): readonly RequestRecord[] {
    return this.log;
  }

  /** True once close() has been called. */
  get closed(): boolean {
    return this.closedValue;
  }

  /**
   * Answer the next `n` requests to `endpoint` with `status` and the service's error body for it
   * (429 with `retry-after`), after authentication and before validation.
   */
  failNext(endpoint: OpenAiEndpoint, status: number, n = 1, options: FailureOptions = {}): void {
    if (!Number.isInteger(status) || status < 400 || status > 599) throw new RangeError(`failNext: status must be 4xx or 5xx [status:${status}]`);
    for (let i = 0; i < n; i++) this.failures[endpoint].push({ status, options });
  }

  /** Scripted failures still queued for `endpoint`. */
  pendingFailures(endpoint: OpenAiEndpoint): number {
    return this.failures[endpoint].length;
  }

  /** Resolve with the first finished request matching `match` (default: any), logged or to come. */
  async waitForRequest(match: (r: RequestRecord) => boolean = () => true, timeoutMs = 5000): Promise<RequestRecord> {
    const logged = this.log.find((r) => r.finishedAt !== null && match(r));
    if (logged) return logged;
    try {
      for await (const [r] of on(this.ee, 'finished', { signal: AbortSignal.timeout(timeoutMs) })) {
        if (match(r as RequestRecord)) return r as RequestRecord;
      }
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err;
    }
    throw new Error(`waitForRequest timed out [timeoutMs:${timeoutMs}, requests:${this.log.length}]`);
  }

  /** Subscribe to every request as it finishes. */
  onRequestFinished(listener: (r: RequestRecord) => void): () => void {
    this.ee.on('finished', listener);
    return () => this.ee.off('finished', listener);
  }

  /** Stop every response in flight (its connection closed), stop listening. Idempotent. */
  close(): Promise<void> {
    this.closedValue = true;
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const ac of this.inFlight) ac.abort();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const rec: RequestRecord = {
      id: this.nextId++,
      endpoint: null,
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      status: 0,
      fields: {},
      stream: false,
      bytesReceived: 0,
      bytesSent: 0,
      receivedAt: now(),
      firstByteAt: null,
      finishedAt: null,
      aborted: false,
      error: null,
      output: null,
    };
    this.keep(rec);
    const ac = new AbortController();
    this.inFlight.add(ac);
    const ctx: Ctx = { req, res, rec, signal: ac.signal };
    res.on('error', () => {
      // A client that went away mid-write; 'close' records it.
    });
    req.on('error', () => ac.abort());
    res.once('close', () => {
      rec.finishedAt = now();
      rec.aborted = !res.writableFinished;
      ac.abort();
      this.inFlight.delete(ac);
      this.ee.emit('finished', rec);
    });
    if (this.closedValue) {
      res.destroy();
      return;
    }
    this.handle(ctx).catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      if (!res.headersSent && !ac.signal.aborted) this.sendError(ctx, 500, apiError('server_error', `Fake server error: ${message}`));
      else res.destroy();
    });
  }

  private keep(rec: RequestRecord): void {
    // One in, at most one (the oldest finished) out.
    if (this.log.push(rec) <= (this.opts.maxLoggedRequests ?? 10_000)) return;
    const oldest = this.log.findIndex((r) => r.finishedAt !== null);
    if (oldest >= 0) this.droppedRequests += this.log.splice(oldest, 1).length;
  }

  private async handle(ctx: Ctx): Promise<void> {
    const { req, rec } = ctx;
    const pathname = new URL(rec.path, 'http://fake').pathname;
    const endpoint = (Object.keys(OPENAI_HTTP_PATHS) as OpenAiEndpoint[]).find((e) => OPENAI_HTTP_PATHS[e] === pathname) ?? null;
    rec.endpoint = endpoint;
    const body = await this.readBody(ctx);
    if (body === null) return;
    if (!endpoint && pathname === '/v1/models' && rec.method === 'GET') {
      // The model list: what a client asks to see that the service is up and the key is good.
      const authError = this.checkAuth(req);
      if (authError) this.sendError(ctx, 401, authError);
      else this.sendBody(ctx, 200, 'application/json', JSON.stringify({ object: 'list', data: MODELS.map((id) => ({ id, object: 'model', created: 1_700_000_000, owned_by: 'system' })) }));
      return;
    }
    if (!endpoint) {
      this.sendError(ctx, 404, apiError('invalid_request_error', `Invalid URL (${rec.method} ${pathname})`));
      return;
    }
    if (rec.method !== 'POST') {
      const notAllowed = apiError('invalid_request_error', `Method ${rec.method} is not allowed for ${pathname}; use POST.`);
      this.sendError(ctx, 405, notAllowed, { allow: 'POST' });
      return;
    }
    const authError = this.checkAuth(req);
    if (authError) {
      this.sendError(ctx, 401, authError);
      return;
    }
    if (body === 'too_large') {
      this.sendError(
        ctx,
        413,
        apiError('invalid_request_error', `Maximum content size limit (${MAX_BODY_BYTES}) exceeded (${rec.bytesReceived} bytes read)`),
      );
      return;
    }
    const failure = this.failures[endpoint].shift();
    if (failure) {
      const retryAfter = failure.options.retryAfterS ?? (failure.status === 429 ? 1 : undefined);
      const headers = retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : {};
      this.sendError(ctx, failure.status, failureError(failure.status, failure.options), headers);
      return;
    }
    if (endpoint === 'transcriptions') await this.transcriptions(ctx, body);
    else if (endpoint === 'chat') await this.chat(ctx, body);
    else await this.speech(ctx, body);
  }

  /** The whole body, 'too_large' past MAX_BODY_BYTES (drained, not kept), or null if the client went away. */
  private readBody(ctx: Ctx): Promise<Buffer | 'too_large' | null> {
    const { req, rec, signal } = ctx;
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let tooLarge = Number(req.headers['content-length']) > MAX_BODY_BYTES;
      req.on('data', (chunk: Buffer) => {
        rec.bytesReceived += chunk.length;
        if (rec.bytesReceived > MAX_BODY_BYTES) tooLarge = true;
        if (tooLarge) chunks.length = 0;
        else chunks.push(chunk);
      });
      req.once('end', () => resolve(tooLarge ? 'too_large' : Buffer.concat(chunks)));
      signal.addEventListener('abort', () => resolve(null), { once: true });
    });
  }

  private checkAuth(req: IncomingMessage): OpenAiError | null {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers['authorization'] ?? '');
    if (!m) {
      return apiError(
        'invalid_request_error',
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth " +
          '(i.e. Authorization: Bearer YOUR_KEY).',
      );
    }
    if (this.apiKey !== undefined && m[1] !== this.apiKey) {
      return apiError(
        'invalid_request_error',
        'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.',
        null,
        'invalid_api_key',
      );
    }
    return null;
  }

  private head(ctx: Ctx, status: number, headers: OutgoingHttpHeaders): void {
    ctx.rec.status = status;
    ctx.res.writeHead(status, { 'x-request-id': `req_${randomBytes(16).toString('hex')}`, ...headers });
  }

  private sendError(ctx: Ctx, status: number, error: OpenAiError, headers: OutgoingHttpHeaders = {}): void {
    ctx.rec.error = error;
    this.sendBody(ctx, status, 'application/json', JSON.stringify({ error }), headers);
  }

  private sendBody(ctx: Ctx, status: number, contentType: string, body: string, headers: OutgoingHttpHeaders = {}): void {
    if (ctx.signal.aborted) return;
    const bytes = Buffer.from(body, 'utf8');
    this.head(ctx, status, { 'content-type': contentType, 'content-length': bytes.length, ...headers });
    ctx.rec.firstByteAt = now();
    ctx.rec.bytesSent += bytes.length;
    ctx.res.end(bytes);
  }

  /** Start a streamed 200 response (chunked, head flushed at once). */
  private beginStream(ctx: Ctx, contentType: string): void {
    ctx.rec.stream = true;
    this.head(ctx, 200, { 'content-type': contentType, 'cache-control': 'no-cache' });
    ctx.res.flushHeaders();
  }

  /** Write one piece of a streamed body, waiting out backpressure; false once the client is gone. */
  private async write(ctx: Ctx, data: Buffer | string): Promise<boolean> {
    const { res, rec, signal } = ctx;
    if (signal.aborted) return false;
    rec.firstByteAt ??= now();
    rec.bytesSent += Buffer.byteLength(data);
    if (res.write(data)) return true;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        res.off('drain', done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      res.once('drain', done);
      signal.addEventListener('abort', done, { once: true });
    });
    return !signal.aborted;
  }

  private event(ctx: Ctx, payload: unknown): Promise<boolean> {
    return this.write(ctx, `data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`);
  }

  private endStream(ctx: Ctx): void {
    if (!ctx.signal.aborted) ctx.res.end();
  }

  /** Parse and check a JSON body; the request, or undefined once a 400 has been sent. */
  private jsonRequest<T>(ctx: Ctx, body: Buffer, check: (json: unknown) => OpenAiProblem | null): T | undefined {
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      const message =
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. " +
        'The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)';
      this.sendError(ctx, 400, apiError('invalid_request_error', message));
      return undefined;
    }
    if (typeof json === 'object' && json !== null && !Array.isArray(json)) ctx.rec.fields = json as Record<string, unknown>;
    const problem = check(json);
    if (!problem) return json as T;
    this.sendError(ctx, 400, invalid(problem));
    return undefined;
  }

  // ---- POST /v1/audio/transcriptions ---------------------------------------------------------

  private async transcriptions(ctx: Ctx, body: Buffer): Promise<void> {
    const contentType = ctx.req.headers['content-type'];
    const boundary = formBoundary(contentType);
    if (!boundary) {
      this.sendError(ctx, 400, invalid(problem(`Invalid Content-Type header (${contentType ?? 'none'}), expected multipart/form-data.`)));
      return;
    }
    let parts: FormPart[];
    try {
      parts = parseMultipart(body, boundary);
    } catch (err) {
      this.sendError(ctx, 400, apiError('invalid_request_error', `Could not parse multipart form: ${(err as Error).message}.`));
      return;
    }
    const text: Record<string, string> = {};
    let file: FormPart | undefined;
    for (const part of parts) {
      if (!TRANSCRIPTION_FIELDS.has(part.name)) {
        this.sendError(ctx, 400, invalid(unrecognizedArgument(part.name)));
        return;
      }
      if (part.name === 'file') file = part;
      else text[part.name] = part.data.toString('utf8');
    }
    ctx.rec.fields = { ...text };
    if (file) ctx.rec.fields['file'] = { filename: file.filename, contentType: file.contentType, bytes: file.data.length };
    const checked = this.transcriptionFields(text, file);
    if ('message' in checked) {
      this.sendError(ctx, 400, invalid(checked));
      return;
    }
    const fields = checked.fields;
    let wav: WavAudio;
    try {
      wav = parseWav(file!.data, file!.filename ?? 'file');
      if (wav.formatTag !== 1) throw new TypeError(`format tag ${wav.formatTag}`);
    } catch {
      this.sendError(ctx, 400, invalid(problem("Invalid file format. Supported formats: ['wav'] (RIFF/WAVE, 16-bit PCM).", 'file', 'invalid_value')));
      return;
    }
    Object.assign(ctx.rec.fields['file'] as object, { sampleRate: wav.sampleRate, channels: wav.channels, durationMs: wav.durationMs });
    if (wav.durationMs < 100) {
      this.sendError(ctx, 400, invalid(problem('Audio file is too short. Minimum audio length is 0.1 seconds.', 'file', 'audio_too_short')));
      return;
    }
    const transcript = await this.transcribe(wav.pcm, wav.sampleRate, fields);
    ctx.rec.output = { text: transcript };
    const audioTokens = Math.ceil(wav.durationMs / 100);
    const outputTokens = (transcript.match(/\S+/g) ?? []).length;
    const tokenUsage = {
      type: 'tokens',
      input_tokens: audioTokens,
      input_token_details: { text_tokens: 0, audio_tokens: audioTokens },
      output_tokens: outputTokens,
      total_tokens: audioTokens + outputTokens,
    };
    if (fields.stream) {
      this.beginStream(ctx, 'text/event-stream; charset=utf-8');
      if (!(await pause(this.timing.sttMs, ctx.signal))) return;
      const pieces = splitPieces(transcript);
      for (let i = 0; i < pieces.length; i++) {
        if (i > 0 && !(await pause(this.timing.sttDeltaMs, ctx.signal))) return;
        if (!(await this.event(ctx, { type: 'transcript.text.delta', delta: pieces[i] }))) return;
      }
      if (!(await this.event(ctx, { type: 'transcript.text.done', text: transcript, usage: tokenUsage }))) return;
      this.endStream(ctx);
      return;
    }
    if (!(await pause(this.timing.sttMs, ctx.signal))) return;
    const seconds = wav.durationMs / 1000;
    const cue = (sep: ',' | '.'): string => `${timestamp(0, sep)} --> ${timestamp(wav.durationMs, sep)}`;
    const usage = fields.model.includes('gpt-4o') ? tokenUsage : { type: 'duration', seconds: Math.ceil(seconds) };
    switch (fields.response_format) {
      case 'json':
        this.sendBody(ctx, 200, 'application/json', JSON.stringify({ text: transcript, usage }));
        return;
      case 'text':
        this.sendBody(ctx, 200, 'text/plain; charset=utf-8', `${transcript}\n`);
        return;
      case 'srt':
        this.sendBody(ctx, 200, 'text/plain; charset=utf-8', transcript ? `1\n${cue(',')}\n${transcript}\n\n` : '');
        return;
      case 'vtt':
        this.sendBody(ctx, 200, 'text/plain; charset=utf-8', `WEBVTT\n\n${transcript ? `${cue('.')}\n${transcript}\n\n` : ''}`);
        return;
      case 'verbose_json': {
        const segments = transcript
          ? [
              {
                id: 0,
                seek: 0,
                start: 0,
                end: seconds,
                text: transcript,
                tokens: [],
                temperature: fields.temperature ?? 0,
                avg_logprob: -0.1,
                compression_ratio: 1,
                no_speech_prob: 0.01,
              },
            ]
          : [];
        const verbose = { task: 'transcribe', language: fields.language ?? 'english', duration: seconds, text: transcript, segments, usage };
        this.sendBody(ctx, 200, 'application/json', JSON.stringify(verbose));
        return;
      }
    }
  }

  /** Check the text fields and the file's presence; the parsed fields or the first problem. */
  private transcriptionFields(text: Record<string, string>, file: FormPart | undefined): { fields: TranscriptionFields } | OpenAiProblem {
    const model = text['model'];
    if (!model) return missingParameter('model');
    if (!file) return missingParameter('file');
    if (file.filename === null) return problem("Invalid type for 'file': expected a file, but got a string instead.", 'file', 'invalid_type');
    const format = (text['response_format'] ?? 'json') as TranscriptionFields['response_format'];
    if (!TRANSCRIPTION_FORMATS.includes(format)) {
      const supported = TRANSCRIPTION_FORMATS.map((f) => `'${f}'`).join(', ');
      return problem(`Invalid value: '${format}'. Supported values are: ${supported}.`, 'response_format', 'invalid_value');
    }
    const gpt4o = model.includes('gpt-4o');
    if (gpt4o && format !== 'json' && format !== 'text') {
      const message = `response_format '${format}' is not compatible with model '${model}'. Use 'json' or 'text' instead.`;
      return problem(message, 'response_format', 'unsupported_value');
    }
    const stream = text['stream'];
    if (stream !== undefined && stream !== 'true' && stream !== 'false') {
      return problem("Invalid type for 'stream': expected a boolean, but got a string instead.", 'stream', 'invalid_type');
    }
    if (stream === 'true' && !gpt4o) {
      return problem(`Streaming is not supported for the ${model} model.`, 'stream', 'unsupported_value');
    }
    const fields: TranscriptionFields = { model, response_format: format, stream: stream === 'true' };
    if (text['temperature'] !== undefined) {
      const t = Number(text['temperature']);
      if (text['temperature'].trim() === '' || !Number.isFinite(t)) {
        return problem("Invalid type for 'temperature': expected a decimal, but got a string instead.", 'temperature', 'invalid_type');
      }
      if (t < 0 || t > 1) {
        const [side, bound, cmp] = t < 0 ? ['below minimum', 0, '>='] : ['above maximum', 1, '<='];
        const message = `Invalid 'temperature': decimal ${side} value. Expected a value ${cmp} ${bound}, but got ${t} instead.`;
        return problem(message, 'temperature', `decimal_${side.replace(' ', '_')}_value`);
      }
      fields.temperature = t;
    }
    if (text['language'] !== undefined) {
      if (!/^[a-z]{2}$/.test(text['language'])) {
        const message = `Invalid language '${text['language']}'. Language parameter must be specified in ISO-639-1 format.`;
        return problem(message, 'language', 'invalid_value');
      }
      fields.language = text['language'];
    }
    if (text['prompt'] !== undefined) fields.prompt = text['prompt'];
    return { fields };
  }

  // ---- POST /v1/chat/completions -------------------------------------------------------------

  private async chat(ctx: Ctx, body: Buffer): Promise<void> {
    const request = this.jsonRequest<ChatRequest>(ctx, body, validateChatRequest);
    if (!request) return;
    const reply = await this.reply(request.messages, request);
    if (reply.error) {
      const e = reply.error;
      const type = e.type ?? (e.status >= 500 ? 'server_error' : 'invalid_request_error');
      this.sendError(ctx, e.status, apiError(type, e.message, null, e.code ?? null));
      return;
    }
    const toolNames = new Set((request.tools ?? []).map((t) => t.function.name));
    const stray = (reply.toolCalls ?? []).find((c) => !toolNames.has(c.name));
    if (stray) throw new Error(`the reply script called '${stray.name}', which is not among the request's tools`);

    // Stop sequences cut the text; max tokens (a word counts as one) truncate it.
    let text = reply.text ?? '';
    let finishReason: RequestOutput['finishReason'] = 'stop';
    const stops = request.stop == null ? [] : typeof request.stop === 'string' ? [request.stop] : request.stop;
    for (const s of stops) if (s !== '' && text.includes(s)) text = text.slice(0, text.indexOf(s));
    let pieces = splitPieces(text);
    const words = text.match(/\S+/g) ?? [];
    const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? Infinity;
    if (words.length > maxTokens) {
      text = text.match(/\s*\S+/g)!.slice(0, maxTokens).join('');
      pieces = splitPieces(text);
      finishReason = 'length';
    }
    const calls = (finishReason === 'length' ? [] : (reply.toolCalls ?? [])).map((c) => ({
      id: `call_${randomBytes(12).toString('hex')}`,
      name: c.name,
      arguments: JSON.stringify(c.arguments),
    }));
    if (calls.length > 0) finishReason = 'tool_calls';
    ctx.rec.output = { text, finishReason, ...(calls.length > 0 ? { toolCalls: calls } : {}) };

    const completionTokens = (text.match(/\S+/g) ?? []).length + calls.reduce((n, c) => n + Math.ceil(c.arguments.length / 4), 0);
    const promptTokens = request.messages.reduce((n, m) => n + 4 + Math.ceil(messageText(m.content).length / 4), 0);
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    };
    const base = { id: `chatcmpl-${randomBytes(14).toString('hex')}`, created: Math.floor(Date.now() / 1000), model: request.model };
    const content = text === '' && calls.length > 0 ? null : text;

    if (request.stream !== true) {
      if (!(await pause(this.timing.chatFirstTokenMs, ctx.signal))) return;
      const message = {
        role: 'assistant',
        content,
        refusal: null,
        annotations: [],
        ...(calls.length > 0
          ? { tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) }
          : {}),
      };
      const completion = {
        ...base,
        object: 'chat.completion',
        choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason }],
        usage,
        service_tier: 'default',
        system_fingerprint: FINGERPRINT,
      };
      this.sendBody(ctx, 200, 'application/json', JSON.stringify(completion));
      return;
    }

    const includeUsage = request.stream_options?.include_usage === true;
    const obfuscate = request.stream_options?.include_obfuscation !== false;
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
      ...base,
      object: 'chat.completion.chunk',
      service_tier: 'default',
      system_fingerprint: FINGERPRINT,
      choices,
      ...(includeUsage ? { usage: null } : {}),
      ...extra,
      // The service pads chunks with random characters to hide their sizes.
      ...(obfuscate ? { obfuscation: randomBytes(6).toString('base64url').slice(0, 1 + (randomBytes(1)[0]! % 8)) } : {}),
    });
    const delta = (d: Record<string, unknown>, finish: string | null = null): Record<string, unknown> =>
      chunk([{ index: 0, delta: d, logprobs: null, finish_reason: finish }]);
    const deltas: Record<string, unknown>[] = pieces.map((p) => delta({ content: p }));
    calls.forEach((c, index) => {
      deltas.push(delta({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] }));
      for (const piece of c.arguments.match(/[\s\S]{1,8}/g) ?? []) deltas.push(delta({ tool_calls: [{ index, function: { arguments: piece } }] }));
    });

    this.beginStream(ctx, 'text/event-stream; charset=utf-8');
    if (!(await pause(this.timing.chatFirstTokenMs, ctx.signal))) return;
    if (!(await this.event(ctx, delta({ role: 'assistant', content: content === null ? null : '', refusal: null })))) return;
    for (let i = 0; i < deltas.length; i++) {
      if (i > 0 && !(await pause(this.timing.chatDeltaMs, ctx.signal))) return;
      if (!(await this.event(ctx, deltas[i]))) return;
    }
    if (!(await this.event(ctx, delta({}, finishReason)))) return;
    if (includeUsage && !(await this.event(ctx, chunk([], { usage })))) return;
    if (!(await this.event(ctx, '[DONE]'))) return;
    this.endStream(ctx);
  }

  // ---- POST /v1/audio/speech -----------------------------------------------------------------

  private async speech(ctx: Ctx, body: Buffer): Promise<void> {
    const request = this.jsonRequest<SpeechRequest>(ctx, body, validateSpeechRequest);
    if (!request) return;
    const hz = this.voiceFor(request.input, request);
    const ms = speechDurationMs(request.input, request.speed ?? 1);
    ctx.rec.output = { toneHz: hz, audioMs: ms };
    const pcm = speechTone(hz, ms);
    const wav = request.response_format === 'wav';
    const audio = wav ? wavFile(pcm, SPEECH_SAMPLE_RATE) : pcmBytes(pcm);
    const sse = request.stream_format === 'sse';
    this.beginStream(ctx, sse ? 'text/event-stream; charset=utf-8' : wav ? 'audio/wav' : 'audio/pcm');
    if (!(await pause(this.timing.ttsFirstByteMs, ctx.signal))) return;
    const chunkBytes = Math.max(2, Math.round((this.timing.ttsChunkMs * SPEECH_SAMPLE_RATE) / 1000) * 2);
    const header = wav ? audio.length - pcm.length * 2 : 0;
    const start = performance.now();
    for (let k = 0, at = 0; at < audio.length; k++) {
      if (k > 0) {
        const due = start + (k * this.timing.ttsChunkMs) / this.timing.ttsPace;
        if (!(await pause(due - performance.now(), ctx.signal))) return;
      }
      // The WAV header goes out with the first chunk of samples.
      const end = Math.min(audio.length, at + chunkBytes + (k === 0 ? header : 0));
      const piece = audio.subarray(at, end);
      at = end;
      const sent = sse ? await this.event(ctx, { type: 'speech.audio.delta', audio: piece.toString('base64') }) : await this.write(ctx, piece);
      if (!sent) return;
    }
    if (sse) {
      const inputTokens = Math.ceil(request.input.length / 4);
      const outputTokens = Math.ceil(ms / 50);
      const usage = { input_tokens: inputTokens, output_tokens: outputTokens, total_tokens: inputTokens + outputTokens };
      if (!(await this.event(ctx, { type: 'speech.audio.done', usage }))) return;
    }
    this.endStream(ctx);
  }
}

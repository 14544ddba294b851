/**
 * Clients of the three OpenAI-compatible HTTP APIs the pipeline backend cascades (any server that
 * speaks them: OpenAI, or speech and chat servers run on-premises):
 *  - POST /v1/audio/transcriptions: a WAV of the caller's turn -> text (streamed deltas where the
 *    model streams);
 *  - POST /v1/chat/completions with stream: true: text deltas and tool-call fragments;
 *  - POST /v1/audio/speech with response_format pcm: 24 kHz PCM16 as it is synthesised.
 * Every request has a timeout and an AbortSignal; a failure is a ServiceError naming the service,
 * the HTTP status and the server's own error code and message (never the API key).
 */
import { int16ToBytesLE } from '../../audio/pcm';

export type ServiceName = 'stt' | 'chat' | 'tts';

/** One service's connection settings. */
export interface ServiceEndpoint {
  /** Base URL up to and including `/v1`, e.g. `https://api.openai.com/v1` or `http://10.0.0.5:8000/v1`. */
  baseUrl: string;
  /** Bearer token (unset: no Authorization header, for local servers). */
  apiKey?: string;
  /** Time allowed to the answer's head, and between any two pieces of its body after that, ms. */
  timeoutMs: number;
}

/** A failed service request. `status` 0: no HTTP answer (network, timeout). */
export class ServiceError extends Error {
  constructor(
    readonly service: ServiceName,
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'ServiceError';
  }

  /** Worth one more try: rate limits, server errors, timeouts and lost connections. */
  get transient(): boolean {
    return this.status === 0 || this.status === 408 || this.status === 409 || this.status === 429 || this.status >= 500;
  }
}

/** Most bytes read from an error body or a JSON answer. */
const MAX_BODY = 1 << 20;
/** Most bytes of one SSE line (a chat chunk is far smaller). */
const MAX_SSE_LINE = 1 << 20;

function url(ep: ServiceEndpoint, path: string): string {
  return `${ep.baseUrl.replace(/\/+$/, '')}${path}`;
}

function headers(ep: ServiceEndpoint, extra: Record<string, string> = {}): Record<string, string> {
  return { ...(ep.apiKey ? { authorization: `Bearer ${ep.apiKey}` } : {}), ...extra };
}

/** An answer whose body is read under the service's idle timeout. */
interface Answer {
  res: Response;
  /** The body's pieces; a silence longer than the timeout ends it with a `timeout` ServiceError. */
  body(): AsyncGenerator<Uint8Array>;
}

/**
 * fetch with the service's timeout folded into `signal`: to the answer's head, then between any two
 * pieces of its body (a long reply may take as long as it likes, as long as it keeps coming).
 */
async function request(service: ServiceName, ep: ServiceEndpoint, path: string, init: RequestInit, signal: AbortSignal): Promise<Answer> {
  const timer = new AbortController();
  let t = setTimeout(() => timer.abort(), ep.timeoutMs);
  const both = AbortSignal.any([signal, timer.signal]);
  const timedOut = (what: string): ServiceError => new ServiceError(service, 0, 'timeout', `${service}: ${what} within ${ep.timeoutMs} ms`);
  let res: Response;
  try {
    res = await fetch(url(ep, path), { ...init, signal: both });
  } catch (err) {
    clearTimeout(t);
    if (signal.aborted) throw err;
    if (timer.signal.aborted) throw timedOut('no answer');
    throw new ServiceError(service, 0, 'unreachable', `${service}: cannot reach ${new URL(url(ep, path)).host}: ${causeOf(err)}`);
  }
  if (!res.ok) {
    try {
      throw await errorOf(service, res);
    } finally {
      clearTimeout(t);
    }
  }
  async function* body(): AsyncGenerator<Uint8Array> {
    try {
      if (!res.body) return;
      for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
        clearTimeout(t);
        t = setTimeout(() => timer.abort(), ep.timeoutMs);
        yield c;
      }
    } catch (err) {
      if (!signal.aborted && timer.signal.aborted) throw timedOut('nothing more of the answer');
      throw err;
    } finally {
      clearTimeout(t);
    }
  }
  return { res, body };
}

function causeOf(err: unknown): string {
  const e = err as { cause?: { code?: string; message?: string }; message?: string };
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

/** The server's error (OpenAI shape `{error: {message, code, type}}`, or text) as a ServiceError. */
async function errorOf(service: ServiceName, res: Response): Promise<ServiceError> {
  const text = await readText(res.body as unknown as AsyncIterable<Uint8Array> | null).catch(() => '');
  let code = `http_${res.status}`;
  let message = text.slice(0, 300);
  try {
    const j = JSON.parse(text) as { error?: { message?: unknown; code?: unknown; type?: unknown } | string };
    if (j.error && typeof j.error === 'object') {
      if (typeof j.error.code === 'string') code = j.error.code;
      else if (typeof j.error.type === 'string') code = j.error.type;
      if (typeof j.error.message === 'string') message = j.error.message.slice(0, 300);
    } else if (typeof j.error === 'string') {
      message = j.error.slice(0, 300);
    }
  } catch {
    // not JSON: the text as it is
  }
  const ra = Number(res.headers.get('retry-after'));
  return new ServiceError(service, res.status, code, `${service}: HTTP ${res.status} ${code}: ${message}`, Number.isFinite(ra) && ra >= 0 ? ra * 1000 : undefined);
}

async function readText(body: AsyncIterable<Uint8Array> | null): Promise<string> {
  if (!body) return '';
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > MAX_BODY) throw new Error(`answer over ${MAX_BODY} bytes`);
    chunks.push(Buffer.from(c));
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `data:` payloads of a text/event-stream body, as they arrive. */
async function* sseData(service: ServiceName, a: Answer): AsyncGenerator<string> {
  let buf = '';
  const decoder = new TextDecoder();
  for await (const c of a.body()) {
    buf += decoder.decode(c, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line.startsWith('data:')) yield line.slice(5).trimStart();
    }
    if (buf.length > MAX_SSE_LINE) throw new ServiceError(service, 0, 'bad_stream', `${service}: an event-stream line over ${MAX_SSE_LINE} bytes`);
  }
}

/** A mono PCM16 WAV file. */
export function wavFile(pcm: Int16Array, sampleRate: number): Buffer {
  const data = int16ToBytesLE(pcm);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVE', 8, 'ascii');
  h.write('fmt ', 12, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

// -------------------------------------------------------------------------------------------------
// Speech to text

export interface TranscribeOptions {
  model: string;
  /** ISO-639-1, e.g. `tr`. */
  language?: string;
  prompt?: string;
}

/** The text of one utterance; streamed models' deltas go to `onDelta` as they arrive. */
export async function transcribe(
  ep: ServiceEndpoint,
  pcm: Int16Array,
  sampleRate: number,
  o: TranscribeOptions,
  signal: AbortSignal,
  onDelta?: (text: string) => void,
): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob([wavFile(pcm, sampleRate)], { type: 'audio/wav' }), 'turn.wav');
  form.append('model', o.model);
  if (o.language) form.append('language', o.language);
  if (o.prompt) form.append('prompt', o.prompt);
  // Only the gpt-4o transcription models stream; whisper-1 refuses stream=true.
  const stream = /gpt-4o/.test(o.model) && onDelta !== undefined;
  form.append('response_format', 'json');
  if (stream) form.append('stream', 'true');
  const a = await request('stt', ep, '/audio/transcriptions', { method: 'POST', headers: headers(ep), body: form }, signal);
  if (!stream) {
    const j = parseJson('stt', await readText(a.body())) as { text?: unknown };
    if (typeof j.text !== 'string') throw new ServiceError('stt', a.res.status, 'bad_answer', 'stt: the answer has no text');
    return j.text;
  }
  let text = '';
  for await (const data of sseData('stt', a)) {
    if (data === '[DONE]') break;
    const ev = parseJson('stt', data) as { type?: string; delta?: unknown; text?: unknown };
    if (ev.type === 'transcript.text.delta' && typeof ev.delta === 'string') {
      text += ev.delta;
      onDelta?.(ev.delta);
    } else if (ev.type === 'transcript.text.done' && typeof ev.text === 'string') {
      return ev.text;
    }
  }
  return text;
}

function parseJson(service: ServiceName, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ServiceError(service, 0, 'bad_answer', `${service}: the answer is not JSON`);
  }
}

// -------------------------------------------------------------------------------------------------
// Chat

export type ChatMessage =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string | null; tool_calls?: ChatToolCall[] }
  | { role: 'tool'; tool_call_id: string; content: string };

export interface ChatToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  maxTokens?: number;
  tools?: { name: string; description: string; parameters: Record<string, unknown> }[];
}

/** What a streamed completion produced. */
export interface ChatResult {
  text: string;
  toolCalls: ChatToolCall[];
  finishReason: string | null;
  usage?: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number };
}

/** Stream one completion: text deltas to `onText` as they arrive; tool calls put back together. */
export async function chat(ep: ServiceEndpoint, req: ChatRequest, signal: AbortSignal, onText: (delta: string) => void): Promise<ChatResult> {
  const body: Record<string, unknown> = {
    model: req.model,
    messages: req.messages,
    stream: true,
    stream_options: { include_usage: true },
  };
  if (req.temperature !== undefined) body.temperature = req.temperature;
  if (req.maxTokens !== undefined) body.max_tokens = req.maxTokens;
  if (req.tools && req.tools.length > 0) {
    body.tools = req.tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters } }));
  }
  const a = await request('chat', ep, '/chat/completions', { method: 'POST', headers: headers(ep, { 'content-type': 'application/json' }), body: JSON.stringify(body) }, signal);
  const out: ChatResult = { text: '', toolCalls: [], finishReason: null };
  const calls: { id: string; name: string; args: string }[] = [];
  for await (const data of sseData('chat', a)) {
    if (data === '[DONE]') break;
    const chunk = parseJson('chat', data) as {
      choices?: { delta?: { content?: unknown; tool_calls?: { index?: number; id?: string; function?: { name?: string; arguments?: string } }[] }; finish_reason?: unknown }[];
      usage?: ChatResult['usage'];
      error?: { message?: string; code?: string };
    };
    if (chunk.error) throw new ServiceError('chat', 200, chunk.error.code ?? 'stream_error', `chat: ${chunk.error.message ?? 'error in the stream'}`);
    if (chunk.usage) out.usage = chunk.usage;
    const choice = chunk.choices?.[0];
    if (!choice) continue;
    const d = choice.delta;
    if (d && typeof d.content === 'string' && d.content.length > 0) {
      out.text += d.content;
      onText(d.content);
    }
    for (const tc of d?.tool_calls ?? []) {
      const i = typeof tc.index === 'number' && tc.index >= 0 && tc.index < 16 ? tc.index : calls.length;
      calls[i] ??= { id: '', name: '', args: '' };
      if (tc.id) calls[i].id = tc.id;
      if (tc.function?.name) calls[i].name += tc.function.name;
      if (tc.function?.arguments) calls[i].args += tc.function.arguments;
      if (calls[i].args.length > 100_000) throw new ServiceError('chat', 200, 'bad_stream', 'chat: tool-call arguments over 100000 characters');
    }
    if (typeof choice.finish_reason === 'string') out.finishReason = choice.finish_reason;
  }
  out.toolCalls = calls
    .filter((c) => c && c.name)
    .map((c, i) => ({ id: c.id || `call_${i}`, type: 'function' as const, function: { name: c.name, arguments: c.args || '{}' } }));
  return out;
}

// -------------------------------------------------------------------------------------------------
// Text to speech

export interface SpeechOptions {
  model: string;
  voice: string;
  speed?: number;
  instructions?: string;
}

/** Synthesise `text` as 24 kHz PCM16 (little-endian bytes), handed to `onAudio` as it arrives. */
export async function speak(ep: ServiceEndpoint, text: string, o: SpeechOptions, signal: AbortSignal, onAudio: (pcm: Buffer) => void): Promise<number> {
  const body: Record<string, unknown> = { model: o.model, input: text, voice: o.voice, response_format: 'pcm' };
  if (o.speed !== undefined && o.speed !== 1) body.speed = o.speed;
  if (o.instructions) body.instructions = o.instructions;
  const a = await request('tts', ep, '/audio/speech', { method: 'POST', headers: headers(ep, { 'content-type': 'application/json' }), body: JSON.stringify(body) }, signal);
  let bytes = 0;
  let odd: Buffer | undefined;
  for await (const c of a.body()) {
    let b = Buffer.from(c);
    // Keep samples whole across chunk boundaries.
    if (odd) {
      b = Buffer.concat([odd, b]);
      odd = undefined;
    }
    if (b.length % 2 === 1) {
      odd = b.subarray(b.length - 1);
      b = b.subarray(0, b.length - 1);
    }
    if (b.length === 0) continue;
    bytes += b.length;
    onAudio(b);
  }
  return bytes;
}

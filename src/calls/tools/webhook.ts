/**
 * Webhook tools: functions declared in the configuration and answered by an HTTP request. The
 * model's arguments go out as JSON (POST/PUT/PATCH body, or query parameters for GET) with a
 * timeout; a 2xx response body (bounded) goes back to the model as the function output. Timeouts,
 * network errors, non-2xx statuses and oversized bodies become a {@link WebhookError}, which the AI
 * session reports to the model as the output `{"error": ...}` so it can tell the caller.
 */
import { AgentError } from '../../util/errors';
import type { Logger } from '../../logging/logger';
import type { ToolRegistration } from '../../ai/types';

/** One webhook tool, as configured. */
export interface WebhookToolOptions {
  /** Function name the model sees, e.g. `lookup_order`. */
  name: string;
  /** What it does and when to call it (the model reads this). */
  description: string;
  /** JSON Schema of the arguments (an object schema). */
  parameters: Record<string, unknown>;
  /** URL the arguments are sent to. */
  url: string;
  /** HTTP method (default POST). */
  method?: 'POST' | 'PUT' | 'PATCH' | 'GET';
  /** Extra request headers (values may be secrets: never logged). */
  headers?: Readonly<Record<string, string>>;
  /** Give up after this long, ms (default 5000). */
  timeoutMs?: number;
  /** Most characters of the response body passed to the model (default 8000; longer bodies are cut and marked). */
  maxResponseChars?: number;
}

/** A webhook request failed; `status` is the HTTP status (0 when there was no response). */
export class WebhookError extends AgentError {
  readonly status: number;
  constructor(message: string, status = 0, options?: { cause?: unknown }) {
    super('ERR_WEBHOOK', message, options);
    this.status = status;
  }
}

/** What a successful webhook request returned. */
export interface WebhookResponse {
  status: number;
  /** The function output: the body (JSON as sent, other text wrapped as `{"result": ...}`), bounded. */
  output: string;
  /** True when the body was longer than the cap and was cut. */
  truncated: boolean;
}

/** Bytes read from a response at most, whatever the character cap (a runaway body is not read to its end). */
const MAX_READ_BYTES = 1024 * 1024;
/** Characters of an error body quoted in the error message. */
const ERROR_BODY_CHARS = 300;

/**
 * Send `args` to the webhook and return the function output.
 * @throws WebhookError on timeout, network failure or a non-2xx status (message carries the context).
 */
export async function callWebhook(
  opts: WebhookToolOptions,
  args: unknown,
  ctx: { callId: string; signal?: AbortSignal; fetchImpl?: typeof fetch },
): Promise<WebhookResponse> {
  const method = opts.method ?? 'POST';
  const timeoutMs = opts.timeoutMs ?? 5000;
  const maxChars = opts.maxResponseChars ?? 8000;
  const where = describeUrl(opts.url);
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, timeout]) : timeout;
  const headers: Record<string, string> = {
    accept: 'application/json, text/plain;q=0.9, */*;q=0.5',
    'user-agent': 'sip-ai-agent',
    'x-call-id': ctx.callId,
    ...(opts.headers ?? {}),
  };
  let url = opts.url;
  let body: string | undefined;
  if (method === 'GET') {
    url = withQuery(opts.url, args);
  } else {
    body = JSON.stringify(args ?? {});
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  }
  const doFetch = ctx.fetchImpl ?? fetch;
  let res: Response;
  try {
    // Never follow a redirect: the configured headers (often secrets) would go to wherever the
    // Location points, and the configured URL would no longer say where the call's data goes.
    res = await doFetch(url, { method, headers, body, signal, redirect: 'manual' });
  } catch (err) {
    throw requestError(err, timeout, timeoutMs, opts.name, where);
  }
  let text: string;
  let truncated: boolean;
  try {
    ({ text, truncated } = await readBounded(res, maxChars));
  } catch (err) {
    throw requestError(err, timeout, timeoutMs, opts.name, where);
  }
  if (res.status >= 300 && res.status <= 399) {
    const location = res.headers.get('location');
    throw new WebhookError(
      `webhook redirected and the redirect was not followed [tool:${opts.name}, url:${where}, status:${res.status}]${location ? ` to ${describeUrl(location, opts.url)}` : ''}: configure the final URL`,
      res.status,
    );
  }
  if (res.status < 200 || res.status > 299) {
    const snippet = oneLine(text).slice(0, ERROR_BODY_CHARS);
    throw new WebhookError(
      `webhook failed [tool:${opts.name}, url:${where}, status:${res.status}]${res.statusText ? ` ${res.statusText}` : ''}${snippet ? `: ${snippet}` : ''}`,
      res.status,
    );
  }
  return { status: res.status, output: toOutput(text, truncated, res.status), truncated };
}

/** A webhook tool with its handler, ready for AiSession.registerTool(). */
export function webhookTool(opts: WebhookToolOptions, ctx: { callId: string; log: Logger; fetchImpl?: typeof fetch }): ToolRegistration {
  return {
    name: opts.name,
    description: opts.description,
    parameters: opts.parameters,
    async handler(args, toolCtx) {
      const r = await callWebhook(opts, args, { callId: ctx.callId, signal: toolCtx.signal, fetchImpl: ctx.fetchImpl });
      ctx.log.debug({ tool: opts.name, status: r.status, chars: r.output.length, truncated: r.truncated }, 'webhook answered');
      return { output: r.output };
    },
  };
}

function requestError(err: unknown, timeout: AbortSignal, timeoutMs: number, name: string, where: string): WebhookError {
  if (timeout.aborted) return new WebhookError(`webhook timed out [tool:${name}, url:${where}, timeoutMs:${timeoutMs}]`, 0, { cause: err });
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'AbortError') return new WebhookError(`webhook aborted [tool:${name}, url:${where}]`, 0, { cause: err });
  const detail = e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
  return new WebhookError(`webhook request failed [tool:${name}, url:${where}]: ${detail}`, 0, { cause: err });
}

/** Read at most `maxChars` characters (and MAX_READ_BYTES bytes) of the body, then stop reading. */
async function readBounded(res: Response, maxChars: number): Promise<{ text: string; truncated: boolean }> {
  if (!res.body) return { text: '', truncated: false };
  const reader = res.body.getReader();
  const decoder = new TextDecoder('utf-8', { fatal: false });
  let text = '';
  let bytes = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    text += decoder.decode(value, { stream: true });
    if (text.length > maxChars || bytes > MAX_READ_BYTES) {
      truncated = true;
      await reader.cancel().catch(() => undefined);
      break;
    }
  }
  if (!truncated) text += decoder.decode();
  if (text.length > maxChars) {
    text = text.slice(0, maxChars);
    truncated = true;
  }
  return { text, truncated };
}

/** Function output: JSON bodies as they are, anything else (or a cut body) wrapped so the model always gets JSON. */
function toOutput(text: string, truncated: boolean, status: number): string {
  const trimmed = text.trim();
  if (trimmed === '') return JSON.stringify({ ok: true, status });
  if (!truncated) {
    try {
      JSON.parse(trimmed);
      return trimmed;
    } catch {
      // Not JSON: wrapped below.
    }
  }
  // eslint-disable-next-line no-control-regex
  const clean = trimmed.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '');
  return JSON.stringify(truncated ? { result: clean, truncated: true } : { result: clean });
}

function withQuery(url: string, args: unknown): string {
  const u = new URL(url);
  if (args !== null && typeof args === 'object' && !Array.isArray(args)) {
    for (const [k, v] of Object.entries(args as Record<string, unknown>)) {
      if (v === undefined || v === null) continue;
      u.searchParams.set(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
    }
  }
  return u.toString();
}

/** Host and path only: query strings may carry secrets. */
/** Host and path of a URL (no query, no credentials), relative to `base` when given. */
function describeUrl(url: string, base?: string): string {
  try {
    const u = new URL(url, base);
    return `${u.host}${u.pathname}`;
  } catch {
    return '<invalid url>';
  }
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/**
 * What the WebSocket clients of the AI backends (Realtime, GPT-Live) share about a handshake that
 * fails: reading a refused upgrade's body, its error code, and the stable aiCode of a socket error
 * before the session is up.
 */
import type { IncomingMessage } from 'node:http';
import { AiSessionError } from '../util/errors';

/** Socket errnos that mean the endpoint cannot be reached at all. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE']);

/** Read at most `cap` bytes of a refused upgrade's body (resolves on end, error or close). */
export function readBody(res: IncomingMessage, cap: number): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => resolve(Buffer.concat(chunks).toString('utf8'));
    res.on('data', (c: Buffer) => {
      if (size >= cap) return;
      const part = c.subarray(0, cap - size);
      chunks.push(part);
      size += part.length;
    });
    res.on('end', done);
    res.on('error', done);
    res.on('close', done);
  });
}

/** The `{error: {code, message}}` of an OpenAI-style error body, or its first 200 characters. */
export function parseErrorBody(body: string): { code?: string; message?: string } {
  try {
    const data = JSON.parse(body) as { error?: { code?: unknown; message?: unknown; type?: unknown } };
    const e = data?.error;
    if (e && typeof e === 'object') {
      return {
        code: typeof e.code === 'string' ? e.code : typeof e.type === 'string' ? e.type : undefined,
        message: typeof e.message === 'string' ? e.message.slice(0, 500) : undefined,
      };
    }
  } catch {
    // Not JSON: fall through and use the raw text.
  }
  const text = body.trim().slice(0, 200);
  return text ? { message: text } : {};
}

/**
 * A socket error while connecting, as an AiSessionError with a stable aiCode: `connect_timeout`,
 * `unreachable` or `tls_error`. `what` names the API in the message (`Realtime`, `GPT-Live`).
 */
export function connectError(what: string, err: Error & { code?: string }, where: string, timeoutMs: number): AiSessionError {
  const msg = err.message ?? String(err);
  if (/handshake has timed out/i.test(msg)) {
    return new AiSessionError(`${what} connect timed out [url:${where}, timeoutMs:${timeoutMs}]`, 'connect_timeout', { cause: err });
  }
  if (err.code !== undefined && UNREACHABLE_CODES.has(err.code)) {
    return new AiSessionError(`${what} API unreachable [url:${where}, errno:${err.code}]`, 'unreachable', { cause: err });
  }
  if (/certificate|tls|ssl/i.test(msg) || (err.code ?? '').startsWith('ERR_TLS') || (err.code ?? '').includes('CERT')) {
    return new AiSessionError(`${what} TLS failure [url:${where}, errno:${err.code ?? 'none'}]: ${msg}`, 'tls_error', { cause: err });
  }
  return new AiSessionError(`${what} connect failed [url:${where}, errno:${err.code ?? 'none'}]: ${msg}`, 'unreachable', { cause: err });
}

/**
 * What the WebSocket clients of the AI backends (Realtime, GPT-Live) share: opening the socket, a
 * refused upgrade's body and error code, the stable aiCode of a socket error before the session is
 * up, the ping keepalive, and letting go of a socket.
 */
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
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

/** Largest refused-upgrade body read, bytes. */
const MAX_REFUSAL_BODY_BYTES = 64 * 1024;

/** Open a socket the way the AI clients do: their headers, a handshake timeout, a frame cap, no compression. */
export function openAiSocket(url: URL, headers: Record<string, string>, timeoutMs: number, maxPayloadBytes: number): WebSocket {
  return new WebSocket(url, { headers, handshakeTimeout: timeoutMs, maxPayload: maxPayloadBytes, perMessageDeflate: false });
}

/** A refused upgrade as an AiSessionError: the HTTP status mapped to an aiCode, with the body's code and message. */
export async function refusedUpgrade(what: string, res: IncomingMessage, where: string): Promise<AiSessionError> {
  const parsed = parseErrorBody(await readBody(res, MAX_REFUSAL_BODY_BYTES));
  const status = res.statusCode ?? 0;
  const aiCode = aiCodeForHttpStatus(status, parsed.code);
  const detail = parsed.message ? `: ${parsed.message}` : '';
  return new AiSessionError(`${what} upgrade refused [status:${status}, code:${parsed.code ?? aiCode}, url:${where}]${detail}`, aiCode);
}

/** Map a refused upgrade (HTTP status + body code) to a stable aiCode. */
export function aiCodeForHttpStatus(status: number, bodyCode?: string): string {
  if (status === 401) return 'invalid_api_key';
  if (status === 429) return bodyCode === 'insufficient_quota' ? 'insufficient_quota' : 'rate_limited';
  if (status === 403) return 'forbidden';
  if (status === 404) return bodyCode === 'model_not_found' ? 'model_not_found' : 'not_found';
  if (status >= 500) return 'server_error';
  return bodyCode ?? `http_${status}`;
}

/**
 * Ping every `intervalMs`; a ping still unanswered when the next is due means a dead peer: `onDead`
 * runs, then the socket is terminated (its 'close' reports the death). Returns stop(). 0 = off.
 */
export function keepAlive(ws: WebSocket, intervalMs: number, onDead: () => void): () => void {
  if (intervalMs <= 0) return () => undefined;
  let awaitingPong = false;
  const onPong = (): void => {
    awaitingPong = false;
  };
  ws.on('pong', onPong);
  const timer = setInterval(() => {
    if (ws.readyState !== WebSocket.OPEN) return;
    if (awaitingPong) {
      onDead();
      ws.terminate();
      return;
    }
    awaitingPong = true;
    ws.ping();
  }, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    ws.off('pong', onPong);
  };
}

/** Let go of a socket: no more messages, a late 'error' swallowed (unhandled it would throw), closed or terminated. */
export function releaseSocket(ws: WebSocket): void {
  ws.removeAllListeners('message');
  ws.on('error', () => undefined);
  if (ws.readyState === WebSocket.OPEN) ws.close(1000, 'client closing');
  else if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
}

/** The text of a frame, however ws delivered it. */
export function frameText(data: WebSocket.RawData): string {
  return Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8');
}

/**
 * The admin API client the CLI uses to talk to a running daemon. Every failure is an
 * {@link AdminClientError} whose message is a sentence a sysadmin can act on, e.g.
 * `no daemon is listening on http://127.0.0.1:8089 (is sip-ai-agent running?)`.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { AgentError } from '../util/errors';
import { SseParser } from './sseParser';
import type { CallList, CallView, PlacedCall, TranscriptEntry } from './types';

/** Default base URL (the daemon's default admin.listen and admin.port). */
export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:8089';

/** Options of {@link AdminClient}. */
export interface AdminClientOptions {
  /** e.g. `http://127.0.0.1:8089` (default). */
  baseUrl?: string;
  /** Bearer token (admin.token). */
  token?: string;
  /** Time allowed for a request (and for a stream's headers), ms (default 10000). */
  timeoutMs?: number;
  /** A followed stream with no byte (not even a heartbeat) for this long is given up, ms (default 45000). */
  streamIdleMs?: number;
}

/** Why a request failed. `status` is the HTTP status, 0 when no response came. */
export class AdminClientError extends AgentError {
  readonly status: number;
  constructor(message: string, status = 0, options?: { cause?: unknown }) {
    super('ERR_ADMIN_CLIENT', message, options);
    this.status = status;
  }
}

/** /healthz answer (200 or 503 alike). */
export interface HealthAnswer {
  status: 'ok' | 'unhealthy';
  reasons?: string[];
  [key: string]: unknown;
}

/** Options of {@link AdminClient.transcript}. */
export interface TranscriptOptions {
  /** Keep streaming until the call ends (default false: what is there now). */
  follow?: boolean;
  /** Called for each line as it arrives. */
  onLine?: (line: TranscriptEntry) => void;
  /** Called for each state change while following. */
  onState?: (state: string) => void;
  /** Stop following (resolves with what arrived so far). */
  signal?: AbortSignal;
}

/** What {@link AdminClient.transcript} resolves with. */
export interface TranscriptResult {
  lines: TranscriptEntry[];
  /** Last known state. */
  state: string | undefined;
  /** Set when the call has ended (the stream's `ended` event, or the call's end). */
  ended: { reason?: string; at?: string } | undefined;
  /** The follow was stopped by the signal. */
  aborted: boolean;
}

interface Answer {
  status: number;
  type: string;
  body: string;
}

/** Client of the admin API; see the module comment. */
export class AdminClient {
  /** Base URL without a trailing slash. */
  readonly baseUrl: string;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  readonly #idleMs: number;

  /** @throws AdminClientError for a base URL that is not http(s). */
  constructor(opts: AdminClientOptions = {}) {
    const base = (opts.baseUrl ?? DEFAULT_ADMIN_URL).replace(/\/+$/, '');
    let u: URL;
    try {
      u = new URL(base);
    } catch {
      throw new AdminClientError(`invalid admin URL ${base} (expected e.g. ${DEFAULT_ADMIN_URL})`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new AdminClientError(`invalid admin URL ${base}: only http and https are supported`);
    this.baseUrl = base;
    this.#token = opts.token || undefined;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#idleMs = opts.streamIdleMs ?? 45_000;
  }

  /** /healthz: resolves for healthy and unhealthy daemons alike (check `status`). */
  async health(): Promise<HealthAnswer> {
    const a = await this.#request('GET', '/healthz');
    if (a.status !== 200 && a.status !== 503) throw this.#httpError(a);
    return this.#json(a) as HealthAnswer;
  }

  /** /status: versions, registrations, active calls, config summary. */
  async status(): Promise<Record<string, unknown>> {
    return this.#ok(await this.#request('GET', '/status')) as Record<string, unknown>;
  }

  /** Active and recent calls. */
  async calls(): Promise<CallList> {
    return this.#ok(await this.#request('GET', '/calls')) as CallList;
  }

  /** One call. @throws AdminClientError (status 404) when there is no such call. */
  async call(id: string): Promise<CallView> {
    return this.#ok(await this.#request('GET', `/calls/${encodeURIComponent(id)}`)) as CallView;
  }

  /** Start an outbound call; resolves with its id once the daemon accepted it. */
  async placeCall(uri: string, opts: { instructions?: string; headers?: Record<string, string> } = {}): Promise<PlacedCall> {
    const body: Record<string, unknown> = { uri };
    if (opts.instructions !== undefined) body.instructions = opts.instructions;
    if (opts.headers !== undefined) body.headers = opts.headers;
    return this.#ok(await this.#request('POST', '/calls', body)) as PlacedCall;
  }

  /** Hang up a call. @throws AdminClientError (status 404) when there is no such active call. */
  async hangup(id: string): Promise<void> {
    this.#ok(await this.#request('DELETE', `/calls/${encodeURIComponent(id)}`));
  }

  /** Prometheus text of /metrics. */
  async metrics(): Promise<string> {
    const a = await this.#request('GET', '/metrics');
    if (a.status !== 200) throw this.#httpError(a);
    return a.body;
  }

  /**
   * A call's transcript. Without `follow`: the lines so far (from GET /calls/:id). With `follow`: the
   * event stream, calling `onLine` per line until the call ends, the signal aborts, or the stream
   * breaks (rejects: the daemon went away before the call ended).
   */
  async transcript(id: string, opts: TranscriptOptions = {}): Promise<TranscriptResult> {
    if (!opts.follow) {
      const v = await this.call(id);
      const lines = Array.isArray(v.transcript) ? v.transcript : [];
      for (const l of lines) opts.onLine?.(l);
      const ended = v.endedAt ? { reason: v.endReason ?? undefined, at: v.endedAt } : undefined;
      return { lines, state: v.state, ended, aborted: false };
    }
    return this.#follow(id, opts);
  }

  #follow(id: string, opts: TranscriptOptions): Promise<TranscriptResult> {
    const result: TranscriptResult = { lines: [], state: undefined, ended: undefined, aborted: false };
    const path = `/calls/${encodeURIComponent(id)}/events`;
    const url = this.baseUrl + path;
    return new Promise<TranscriptResult>((resolve, reject) => {
      let settled = false;
      let idle: NodeJS.Timeout | undefined;
      const finish = (err?: Error): void => {
        if (settled) return;
        settled = true;
        if (idle) clearTimeout(idle);
        opts.signal?.removeEventListener('abort', onAbort);
        req.destroy();
        if (err) reject(err);
        else resolve(result);
      };
      const onAbort = (): void => {
        result.aborted = true;
        finish();
      };
      const bump = (): void => {
        if (idle) clearTimeout(idle);
        idle = setTimeout(
          () => finish(new AdminClientError(`the daemon at ${this.baseUrl} stopped sending events (nothing for ${Math.round(this.#idleMs / 1000)} s)`)),
          this.#idleMs,
        );
      };
      const req = this.#send('GET', path, { Accept: 'text/event-stream' });
      if (opts.signal?.aborted) {
        onAbort();
        return;
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      req.setTimeout(this.#timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', (err) => finish(this.#networkError(err)));
      req.on('response', (res: IncomingMessage) => {
        req.setTimeout(0);
        const type = String(res.headers['content-type'] ?? '');
        if (res.statusCode !== 200 || !type.startsWith('text/event-stream')) {
          collect(res).then(
            (body) => finish(this.#httpError({ status: res.statusCode ?? 0, type, body })),
            (err: Error) => finish(this.#networkError(err)),
          );
          return;
        }
        const parser = new SseParser();
        res.setEncoding('utf8');
        bump();
        res.on('data', (chunk: string) => {
          bump();
          let msgs;
          try {
            msgs = parser.push(chunk);
          } catch (err) {
            finish(new AdminClientError(`bad event stream from ${url}: ${(err as Error).message}`));
            return;
          }
          for (const m of msgs) {
            if (settled) return;
            let data: Record<string, unknown>;
            try {
              data = JSON.parse(m.data) as Record<string, unknown>;
            } catch {
              continue;
            }
            if (m.event === 'transcript') {
              const line = data as unknown as TranscriptEntry;
              result.lines.push(line);
              opts.onLine?.(line);
            } else if (m.event === 'state') {
              result.state = typeof data.state === 'string' ? data.state : result.state;
              if (result.state) opts.onState?.(result.state);
            } else if (m.event === 'ended') {
              result.ended = { reason: data.reason as string | undefined, at: data.at as string | undefined };
              finish();
            }
          }
        });
        res.on('end', () => {
          if (!result.ended) finish(new AdminClientError(`the daemon at ${this.baseUrl} closed the event stream before the call ended (is it stopping?)`));
          else finish();
        });
        res.on('error', (err) => finish(this.#networkError(err)));
      });
      req.end();
    });
  }

  #request(method: string, path: string, body?: unknown): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const headers: Record<string, string> = { Accept: 'application/json' };
      if (payload !== undefined) {
        headers['Content-Type'] = 'application/json';
        headers['Content-Length'] = String(Buffer.byteLength(payload));
      }
      const req = this.#send(method, path, headers);
      req.setTimeout(this.#timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', (err) => reject(this.#networkError(err)));
      req.on('response', (res) => {
        collect(res).then(
          (text) => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body: text }),
          (err: Error) => reject(this.#networkError(err)),
        );
      });
      req.end(payload);
    });
  }

  #send(method: string, path: string, headers: Record<string, string>): http.ClientRequest {
    const url = new URL(this.baseUrl + path);
    if (this.#token) headers.Authorization = `Bearer ${this.#token}`;
    const mod = url.protocol === 'https:' ? https : http;
    return mod.request(url, { method, headers, agent: false });
  }

  #ok(a: Answer): unknown {
    if (a.status < 200 || a.status > 299) throw this.#httpError(a);
    return this.#json(a);
  }

  #json(a: Answer): unknown {
    try {
      return JSON.parse(a.body);
    } catch {
      throw new AdminClientError(`unexpected answer from ${this.baseUrl} (HTTP ${a.status}, ${a.type || 'no content type'}): is this the sip-ai-agent admin API?`, a.status);
    }
  }

  #httpError(a: Answer): AdminClientError {
    let msg: string | undefined;
    try {
      const j = JSON.parse(a.body) as { error?: unknown };
      if (typeof j.error === 'string') msg = j.error;
    } catch {
      // Not our JSON: described below.
    }
    if (a.status === 401) {
      return new AdminClientError(
        this.#token
          ? `the daemon at ${this.baseUrl} refused the admin token (check admin.token)`
          : `the daemon at ${this.baseUrl} requires an admin token (set admin.token or pass --token)`,
        401,
      );
    }
    if (msg === undefined) {
      return new AdminClientError(`unexpected answer from ${this.baseUrl} (HTTP ${a.status}, ${a.type || 'no content type'}): is this the sip-ai-agent admin API?`, a.status);
    }
    return new AdminClientError(`${msg} (HTTP ${a.status})`, a.status);
  }

  #networkError(err: unknown): AdminClientError {
    const code = (err as NodeJS.ErrnoException).code;
    const host = new URL(this.baseUrl).hostname;
    switch (code) {
      case 'ECONNREFUSED':
        return new AdminClientError(`no daemon is listening on ${this.baseUrl} (is sip-ai-agent running?)`, 0, { cause: err });
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return new AdminClientError(`cannot resolve ${host} in the admin URL ${this.baseUrl}`, 0, { cause: err });
      case 'ETIMEDOUT':
        return new AdminClientError(`the daemon at ${this.baseUrl} did not answer within ${Math.round(this.#timeoutMs / 100) / 10} s`, 0, { cause: err });
      case 'ECONNRESET':
      case 'EPIPE':
        return new AdminClientError(`the daemon at ${this.baseUrl} closed the connection`, 0, { cause: err });
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
        return new AdminClientError(`cannot reach ${host} (${code}) for the admin URL ${this.baseUrl}`, 0, { cause: err });
      default:
        return new AdminClientError(`request to ${this.baseUrl} failed: ${(err as Error).message}${code ? ` [code:${code}]` : ''}`, 0, { cause: err });
    }
  }
}

const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

function collect(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_ANSWER_BYTES) {
        res.destroy(new Error(`answer larger than ${MAX_ANSWER_BYTES} bytes`));
        return;
      }
      chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
    res.on('aborted', () => reject(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })));
  });
}

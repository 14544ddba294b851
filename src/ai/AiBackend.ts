/**
 * The seam between the call layer and an AI backend: the call layer holds an {@link AiBackend} and asks
 * it for one {@link AiSession} per call, so the OpenAI Realtime backend and an offline echo backend are
 * interchangeable. Concrete backends are built by the daemon only.
 */
import type { Logger } from '../logging/logger';
import type { AiSession, AiSessionOptions } from './types';
import { RealtimeSession } from './RealtimeSession';
import { RealtimeClient, type RealtimeAuth, type RealtimeClientOptions } from './RealtimeClient';
import type { PriceTable } from './usage';

export type { AiSession, AiSessionOptions } from './types';
export { aiAudioFormatInfo, AI_AUDIO_FORMATS, type AiAudioFormat, type AiAudioFormatInfo } from './audioFormat';

/** A factory of AI sessions. */
export interface AiBackend {
  /** Short name for logs and metrics (`openai`, `echo`). */
  readonly name: string;
  /** Create an idle session for one call; the caller runs start() and owns close(). */
  createSession(opts: AiSessionOptions, logger: Logger): AiSession;
  /** Open a session and close it at once (no audio, no cost): rejects while the service cannot be reached. */
  probe?(logger: Logger): Promise<void>;
}

/** Connection settings of the OpenAI (or Azure OpenAI) Realtime backend. */
export interface OpenAiBackendOptions {
  /** e.g. `wss://api.openai.com/v1/realtime` or `wss://<res>.openai.azure.com/openai/v1/realtime`. */
  url: string;
  /** Model, or the Azure deployment name (sent as `?model=`). */
  model: string;
  /** API key (or Entra bearer token). Never logged. */
  apiKey: string;
  /** `bearer` for OpenAI and Entra tokens, `api-key` for Azure keys (default `bearer`). */
  auth?: RealtimeAuth;
  /** Extra handshake headers (`OpenAI-Project`, ...); `OpenAI-Beta` is never sent. */
  headers?: Record<string, string>;
  /** ms from connect to `session.created` (default 10000). */
  connectTimeoutMs?: number;
  /** ms between WebSocket pings; a missed pong drops the socket (default 15000, 0 = off). */
  pingIntervalMs?: number;
  /** Price overrides applied to every session that does not set its own. */
  prices?: Partial<PriceTable>;
}

/** The OpenAI Realtime (GA, WebSocket) backend. */
export class OpenAiBackend implements AiBackend {
  readonly name = 'openai';
  readonly #connection: RealtimeClientOptions;
  readonly #prices: Partial<PriceTable> | undefined;

  /** Keep the connection settings; nothing connects until a session starts. */
  constructor(opts: OpenAiBackendOptions) {
    this.#connection = {
      url: opts.url,
      model: opts.model,
      apiKey: opts.apiKey,
      auth: opts.auth ?? 'bearer',
      ...(opts.headers ? { headers: { ...opts.headers } } : {}),
      ...(opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
      ...(opts.pingIntervalMs !== undefined ? { pingIntervalMs: opts.pingIntervalMs } : {}),
    };
    this.#prices = opts.prices;
  }

  /** Connect, wait for `session.created`, close. */
  async probe(logger: Logger): Promise<void> {
    const client = new RealtimeClient(this.#connection, logger.child({ component: 'ai-probe', backend: this.name }));
    try {
      await client.connect();
    } finally {
      client.close();
    }
  }

  /** A new RealtimeSession for one call. */
  createSession(opts: AiSessionOptions, logger: Logger): RealtimeSession {
    const session: AiSessionOptions = opts.prices === undefined && this.#prices ? { ...opts, prices: this.#prices } : opts;
    return new RealtimeSession({ session, connection: this.#connection }, logger.child({ component: 'ai', backend: this.name }));
  }
}

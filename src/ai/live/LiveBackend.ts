/**
 * The `openai-live` AI backend: GPT-Live sessions (OpenAI or Azure) behind the same AiBackend seam
 * as the Realtime backend. Nothing connects until a call starts its session; probe() starts a
 * server session and closes it at once (no audio), so a load balancer hears when GPT-Live is down.
 */
import type { Logger } from '../../logging/logger';
import type { AiBackend } from '../AiBackend';
import type { AiSessionOptions } from '../types';
import { LiveClient, type LiveClientOptions } from './LiveClient';
import { LiveSession, liveWireFormat, type LiveOptions } from './LiveSession';

/** Settings of the backend: the connection, and the GPT-Live options every session gets. */
export interface LiveBackendOptions {
  connection: LiveClientOptions;
  live: LiveOptions;
}

export class LiveBackend implements AiBackend {
  readonly name = 'openai-live';

  constructor(readonly options: LiveBackendOptions) {}

  /** A new LiveSession for one call. */
  createSession(opts: AiSessionOptions, logger: Logger): LiveSession {
    return new LiveSession({ session: opts, connection: this.options.connection, live: this.options.live }, logger.child({ component: 'ai', backend: this.name }));
  }

  /** Start a server session with the configured model and voice, then close it: rejects while GPT-Live cannot be reached or refuses us. */
  async probe(logger: Logger): Promise<void> {
    const client = new LiveClient(this.options.connection, logger.child({ component: 'ai-probe', backend: this.name }));
    try {
      await client.connect({
        model: this.options.live.model,
        audio: { format: liveWireFormat('pcm'), output: { voice: this.options.live.voice ?? 'marin' } },
        delegation: { type: 'client' },
      });
    } finally {
      client.close({ graceMs: 1000 });
    }
  }
}

/**
 * The `pipeline` AI backend: sessions that cascade a local VAD, speech-to-text, a chat model and
 * text-to-speech over OpenAI-compatible HTTP APIs (PipelineSession). Nothing connects until a call
 * takes a turn; probe() asks each service for its model list, so a load balancer hears when one of
 * them is down.
 */
import type { Logger } from '../../logging/logger';
import type { AiBackend } from '../AiBackend';
import type { AiSessionOptions } from '../types';
import { PipelineSession, type PipelineOptions } from './PipelineSession';
import { ServiceError, type ServiceEndpoint, type ServiceName } from './services';

export class PipelineBackend implements AiBackend {
  readonly name = 'pipeline';

  constructor(readonly options: PipelineOptions) {}

  createSession(opts: AiSessionOptions, logger: Logger): PipelineSession {
    return new PipelineSession(opts, logger.child({ component: 'ai', backend: this.name }), this.options);
  }

  /** GET /models of each service: rejects with the first that does not answer 200. */
  async probe(): Promise<void> {
    const seen = new Set<string>();
    for (const [name, ep] of [['stt', this.options.stt], ['chat', this.options.chat], ['tts', this.options.tts]] as [ServiceName, ServiceEndpoint][]) {
      const key = `${ep.baseUrl}|${ep.apiKey ?? ''}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const res = await fetch(`${ep.baseUrl.replace(/\/+$/, '')}/models`, {
        headers: ep.apiKey ? { authorization: `Bearer ${ep.apiKey}` } : {},
        signal: AbortSignal.timeout(Math.min(ep.timeoutMs, 10_000)),
      }).catch((err: Error) => {
        throw new ServiceError(name, 0, 'unreachable', `${name}: ${err.message}`);
      });
      await res.body?.cancel();
      if (!res.ok) throw new ServiceError(name, res.status, `http_${res.status}`, `${name}: GET /models answered ${res.status}`);
    }
  }
}

/** `ai.live` (and the `ai` keys it falls back to) as the GPT-Live backend takes them. */
import type { LiveBackendOptions } from '../ai/live/LiveBackend';
import type { LiveWireTool } from '../ai/live/wire';
import type { AgentConfig } from '../config';

export function liveOptions(cfg: AgentConfig): LiveBackendOptions {
  const a = cfg.ai;
  const l = a.live;
  const r = l.delegation.responses;
  const c = l.delegation.client;
  return {
    connection: { url: l.url, apiKey: a.apiKey ?? '', auth: a.auth, connectTimeoutMs: a.connectTimeoutMs },
    live: {
      model: l.model,
      voice: l.voice,
      turnGapMs: l.turnGapMs,
      prebufferMs: l.prebufferMs,
      delegation:
        l.delegation.type === 'client'
          ? {
              type: 'client',
              endpoint: { baseUrl: c.url, apiKey: c.apiKey ?? a.apiKey, timeoutMs: c.timeoutMs },
              model: c.model,
              instructions: c.instructions,
              maxTokens: c.maxTokens,
            }
          : {
              type: 'responses',
              model: r.model,
              instructions: r.instructions,
              maxOutputTokens: r.maxOutputTokens,
              reasoningEffort: r.reasoningEffort,
              hostedTools: r.tools as LiveWireTool[],
            },
      prices: {
        audioPerMinute: l.pricePerMinute,
        backendInput: r.inputPricePerMTokens,
        backendCachedInput: r.cachedInputPricePerMTokens,
        backendOutput: r.outputPricePerMTokens,
      },
    },
  };
}

/** `ai.provider: openai-live` and `ai.live`: what --check accepts, refuses (naming the key) and warns about; how the daemon maps it. */
import { liveOptions } from '../../../src/daemon/liveOptions';
import { problems, valid, warnings, withBase } from './helpers';

const live = (ai: Record<string, unknown>): Record<string, unknown> => withBase({ ai: { provider: 'openai-live', apiKey: 'sk-live', ...ai } });

describe('openai-live configuration', () => {
  it('has working defaults: the OpenAI endpoint, gpt-live-1, Responses delegation', () => {
    const cfg = valid(live({}));
    expect(cfg.ai.live).toMatchObject({ url: 'wss://api.openai.com/v1/live/sessions', model: 'gpt-live-1', turnGapMs: 700, prebufferMs: 200, pricePerMinute: 0.05 });
    expect(cfg.ai.live.delegation.type).toBe('responses');
    expect(cfg.ai.live.delegation.responses.tools).toEqual([]);
  });

  it('takes the playout prebuffer in ms, 0 to 1000, and hands it to the sessions', () => {
    expect(liveOptions(valid(live({ live: { prebufferMs: 0 } }))).live.prebufferMs).toBe(0);
    expect(problems(live({ live: { prebufferMs: -1 } }))).toEqual([expect.stringMatching(/^ai\.live\.prebufferMs: /)]);
    expect(problems(live({ live: { prebufferMs: 5000 } }))).toEqual([expect.stringMatching(/^ai\.live\.prebufferMs: /)]);
    expect(problems(live({ live: { prebufferMs: 'lots' } }))).toEqual([expect.stringMatching(/^ai\.live\.prebufferMs: /)]);
  });

  it('requires an API key', () => {
    expect(problems(withBase({ ai: { provider: 'openai-live' } }))).toEqual(['ai.apiKey: required when ai.provider is openai-live (set apiKey or apiKeyFile)']);
  });

  it('refuses a URL with a query, and a Live URL that is not a WebSocket', () => {
    expect(problems(live({ live: { url: 'wss://api.openai.com/v1/live/sessions?model=gpt-live-1' } }))).toEqual([
      'ai.live.url: takes no query parameters (the model goes in ai.live.model)',
    ]);
    expect(problems(live({ live: { url: 'https://api.openai.com/v1/live/sessions' } }))).toHaveLength(1);
  });

  it('checks the hosted tools list: a list of objects of a known type, no function tools', () => {
    const tools = (t: unknown) => problems(live({ live: { delegation: { responses: { tools: t } } } }));
    expect(tools([{ type: 'web_search' }, { type: 'file_search', vector_store_ids: ['vs_1'] }])).toEqual([]);
    expect(tools({ type: 'web_search' })).toEqual(['ai.live.delegation.responses.tools: must be a JSON list of tool objects']);
    expect(tools(['web_search'])).toEqual(['ai.live.delegation.responses.tools: [0] must be an object']);
    expect(tools([{ type: 'web_search' }, { type: 'search_the_web' }])).toEqual([
      'ai.live.delegation.responses.tools: [1].type must be one of web_search, file_search, code_interpreter, shell, image_generation, mcp, custom, namespace, tool_search, programmatic_tool_calling, computer, apply_patch (got "search_the_web")',
    ]);
    expect(tools([{ type: 'function', name: 'x' }])[0]).toContain('function tools come from tools.endCall');
  });

  it('checks voice, reasoning effort and limits by name', () => {
    expect(problems(live({ live: { voice: 'nova', delegation: { responses: { reasoningEffort: 'max', maxOutputTokens: 4 } } } }))).toEqual([
      expect.stringMatching(/^ai\.live\.voice: must be one of alloy, ash, ballad, beacon/),
      'ai.live.delegation.responses.maxOutputTokens: must be between 16 and 128000 tokens (got 4)',
      expect.stringMatching(/^ai\.live\.delegation\.responses\.reasoningEffort: must be one of none, minimal, low, medium, high, xhigh/),
    ]);
  });

  it('client delegation on OpenAI needs a key for the chat model (its own or ai.apiKey)', () => {
    expect(problems(withBase({ ai: { provider: 'openai-live', apiKeyFile: undefined, live: { delegation: { type: 'client' } } } }))).toEqual([
      'ai.apiKey: required when ai.provider is openai-live (set apiKey or apiKeyFile)',
      'ai.live.delegation.client.apiKey: required for api.openai.com (set it, or ai.apiKey)',
    ]);
    expect(problems(live({ live: { delegation: { type: 'client', client: { url: 'http://127.0.0.1:8080/v1' } } } }))).toEqual([]);
  });

  it('warns about an unencrypted endpoint, the input gate, and bearer auth on Azure', () => {
    expect(warnings(live({ inputGate: 'vad', live: { url: 'ws://10.0.0.9/v1/live/sessions' } }))).toEqual(
      expect.arrayContaining([
        'ai.live.url: ws:// sends the API key and all audio unencrypted; use wss://',
        'ai.inputGate: applies to the openai provider only (openai-live hears the whole call, as a full-duplex model must)',
      ]),
    );
    expect(warnings(live({ live: { url: 'wss://res.openai.azure.com/openai/v1/live/sessions' } }))).toEqual(
      expect.arrayContaining(['ai.auth: an Azure endpoint with bearer auth needs an Entra token in ai.apiKey; for a resource key set api-key']),
    );
    expect(warnings(live({ auth: 'api-key', live: { url: 'wss://res.openai.azure.com/openai/v1/live/sessions' } })).filter((w) => w.startsWith('ai.auth'))).toEqual([]);
  });

  it('warns about Realtime keys that openai-live does not use', () => {
    expect(warnings(live({ url: 'wss://api.openai.com/v1/live/sessions', model: 'gpt-live-1', turnDetection: { type: 'semantic_vad' } })).filter((w) => !w.startsWith('ai.apiKey'))).toEqual([
      'ai.url: not used by openai-live (use ai.live.url)',
      'ai.model: not used by openai-live (use ai.live.model)',
      'ai.turnDetection: not used by openai-live (the model takes its own turns)',
    ]);
  });

  it('maps to the backend options: connection from ai.*, voice, delegation, prices', () => {
    const cfg = valid(
      live({
        auth: 'api-key',
        voice: 'cedar',
        live: {
          url: 'wss://res.openai.azure.com/openai/v1/live/sessions',
          model: 'my-live-deployment',
          voice: 'juni',
          delegation: { responses: { model: 'gpt-5.5', reasoningEffort: 'low', tools: [{ type: 'web_search' }], inputPricePerMTokens: 1.25 } },
        },
      }),
    );
    const o = liveOptions(cfg);
    expect(o.connection).toMatchObject({ url: 'wss://res.openai.azure.com/openai/v1/live/sessions', apiKey: 'sk-live', auth: 'api-key' });
    expect(o.live).toMatchObject({ model: 'my-live-deployment', voice: 'juni', delegation: { type: 'responses', model: 'gpt-5.5', reasoningEffort: 'low', hostedTools: [{ type: 'web_search' }] } });
    expect(o.live.prices).toEqual({ audioPerMinute: 0.05, backendInput: 1.25, backendCachedInput: 0, backendOutput: 0 });
    const client = liveOptions(valid(live({ live: { delegation: { type: 'client', client: { model: 'gpt-4.1-mini', timeoutMs: 9000 } } } })));
    expect(client.live.delegation).toEqual({ type: 'client', endpoint: { baseUrl: 'https://api.openai.com/v1', apiKey: 'sk-live', timeoutMs: 9000 }, model: 'gpt-4.1-mini', instructions: undefined, maxTokens: 400 });
  });
});

import { callManagerOptions } from '../../../src/daemon/callOptions';
import { loadPrompts } from '../../../src/daemon/prompts';
import { jsResamplerKernel } from '../../../src/audio/Resampler';
import { validateConfig } from '../../../src/config';
import { withBase } from '../config/helpers';

describe('callManagerOptions: the audio path', () => {
  test('ai.appendMs becomes the bridge batch; the resampler kernel is passed through', () => {
    const cfg = validateConfig(withBase({ ai: { appendMs: 40 } }));
    const o = callManagerOptions(cfg, { prompts: loadPrompts(cfg, 8000), resamplerKernel: jsResamplerKernel });
    expect(o.audio?.batchMs).toBe(40);
    expect(o.audio?.resamplerKernel).toBe(jsResamplerKernel);
  });

  test('ai.appendMs defaults to 20 and is refused outside 20-200 with its path named', () => {
    expect(validateConfig(withBase({})).ai.appendMs).toBe(20);
    expect(() => validateConfig(withBase({ ai: { appendMs: 10 } }))).toThrow(/ai\.appendMs/);
  });
});

describe('callManagerOptions: Realtime session features', () => {
  test('reasoning, parallel tool calls, truncation, prompt and MCP servers reach the session options', () => {
    const cfg = validateConfig(
      withBase({
        ai: {
          provider: 'openai',
          apiKey: '${K}',
          model: 'gpt-realtime-2',
          reasoning: { effort: 'medium' },
          parallelToolCalls: false,
          truncation: { type: 'retention_ratio', retentionRatio: 0.7 },
          prompt: { id: 'pmpt_1', variables: { who: '{{callerNumber}}' } },
        },
        tools: {
          mcp: [
            { label: 'orders', url: 'https://mcp.example.com/mcp', requireApproval: 'listed', alwaysAsk: ['cancel'], neverAsk: ['lookup'], approvedTools: ['cancel'] },
            { label: 'docs', url: 'https://docs.example.com/mcp', requireApproval: 'never' },
          ],
        },
      }),
      { env: { K: 'sk' } },
    );
    const o = callManagerOptions(cfg, { prompts: loadPrompts(cfg, 8000) });
    expect(o.ai).toMatchObject({ reasoning: { effort: 'medium' }, parallelToolCalls: false, truncation: { type: 'retention_ratio', retentionRatio: 0.7 } });
    expect(o.ai.mcpServers).toEqual([
      expect.objectContaining({ label: 'orders', requireApproval: { always: ['cancel'], never: ['lookup'] }, approvedTools: ['cancel'] }),
      expect.objectContaining({ label: 'docs', requireApproval: 'never', approvedTools: [] }),
    ]);
    expect(o.prompt?.id).toBe('pmpt_1');
    expect(Object.keys(o.prompt?.variables ?? {})).toEqual(['who']);
    const plain = callManagerOptions(validateConfig(withBase({})), { prompts: loadPrompts(validateConfig(withBase({})), 8000) });
    expect(plain.prompt).toBeUndefined();
    expect(plain.ai).not.toHaveProperty('truncation');
    expect(plain.ai).not.toHaveProperty('mcpServers');
  });
});

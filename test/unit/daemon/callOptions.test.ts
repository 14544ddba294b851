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

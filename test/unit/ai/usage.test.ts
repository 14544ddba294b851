import { addUsage, DEFAULT_PRICES, emptyUsage, estimateCostUsd, resolvePrices, summarizeUsage } from '../../../src/ai/usage';

describe('usage accounting', () => {
  const turn = {
    total_tokens: 1600,
    input_tokens: 1000,
    output_tokens: 600,
    input_token_details: {
      text_tokens: 400,
      audio_tokens: 600,
      cached_tokens: 300,
      cached_tokens_details: { text_tokens: 200, audio_tokens: 100 },
    },
    output_token_details: { text_tokens: 100, audio_tokens: 500 },
  };

  it('sums usage over responses by modality and direction', () => {
    const t = emptyUsage();
    addUsage(t, turn);
    addUsage(t, turn);
    expect(t).toMatchObject({
      responses: 2,
      inputTokens: 2000,
      outputTokens: 1200,
      totalTokens: 3200,
      inputTextTokens: 800,
      inputAudioTokens: 1200,
      cachedTokens: 600,
      cachedTextTokens: 400,
      cachedAudioTokens: 200,
      outputTextTokens: 200,
      outputAudioTokens: 1000,
    });
  });

  it('prices cached tokens at the cached rate and only the rest at the input rate', () => {
    const t = addUsage(emptyUsage(), turn);
    // text in: 200 fresh * $4 + 200 cached * $0.40; audio in: 500 * $32 + 100 * $0.40;
    // out: 100 * $16 + 500 * $64 (per 1M tokens)
    const expected = (200 * 4 + 200 * 0.4 + 500 * 32 + 100 * 0.4 + 100 * 16 + 500 * 64) / 1e6;
    expect(estimateCostUsd(t)).toBeCloseTo(expected, 12);
    expect(summarizeUsage(t).costUsd).toBeCloseTo(expected, 12);
  });

  it('apportions cached tokens by the input mix when no split is reported', () => {
    const t = addUsage(emptyUsage(), {
      input_tokens: 1000,
      input_token_details: { text_tokens: 250, audio_tokens: 750, cached_tokens: 400 },
    });
    expect(t.cachedAudioTokens).toBe(300);
    expect(t.cachedTextTokens).toBe(100);
  });

  it('ignores missing usage and nonsense values', () => {
    const t = emptyUsage();
    addUsage(t, null);
    addUsage(t, undefined);
    addUsage(t, { input_tokens: -5, output_tokens: Number.NaN });
    expect(t.inputTokens).toBe(0);
    expect(t.outputTokens).toBe(0);
  });

  it('applies price overrides over the defaults and skips invalid ones', () => {
    const p = resolvePrices({ audioOutput: 20, textInput: -1 });
    expect(p.audioOutput).toBe(20);
    expect(p.textInput).toBe(DEFAULT_PRICES.textInput);
    const t = addUsage(emptyUsage(), { output_tokens: 1_000_000, output_token_details: { audio_tokens: 1_000_000 } });
    expect(estimateCostUsd(t, p)).toBeCloseTo(20, 9);
    expect(estimateCostUsd(t)).toBeCloseTo(64, 9);
  });
});

/**
 * Token accounting for a Realtime session: sums `response.done.usage` and estimates the cost from a
 * per-million-token price table. Cached tokens are a subset of input tokens (Realtime usage docs), so
 * the cached part is priced at the cached rate and only the remainder at the full input rate.
 */
import type { WireUsage } from './events';

/** USD per one million tokens, by modality and direction. */
export interface PriceTable {
  audioInput: number;
  audioCachedInput: number;
  audioOutput: number;
  textInput: number;
  textCachedInput: number;
  textOutput: number;
  imageInput: number;
  imageCachedInput: number;
}

/** gpt-realtime list prices (model page, late 2025), USD per 1M tokens. */
export const DEFAULT_PRICES: Readonly<PriceTable> = Object.freeze({
  audioInput: 32,
  audioCachedInput: 0.4,
  audioOutput: 64,
  textInput: 4,
  textCachedInput: 0.4,
  textOutput: 16,
  imageInput: 5,
  imageCachedInput: 0.5,
});

/** Token totals summed over every `response.done` of a session (across reconnects). */
export interface UsageTotals {
  /** Responses that reported usage. */
  responses: number;
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  inputTextTokens: number;
  inputAudioTokens: number;
  inputImageTokens: number;
  /** Subset of inputTokens served from the prompt cache. */
  cachedTokens: number;
  cachedTextTokens: number;
  cachedAudioTokens: number;
  cachedImageTokens: number;
  outputTextTokens: number;
  outputAudioTokens: number;
}

/** Totals plus the estimated cost. */
export interface UsageSummary extends UsageTotals {
  /** Estimated cost in USD from the price table (not an invoice). */
  costUsd: number;
  /** Session audio billed by duration (GPT-Live), seconds; absent for token-billed backends. */
  audioSeconds?: number;
}

/** All-zero totals. */
export function emptyUsage(): UsageTotals {
  return {
    responses: 0,
    inputTokens: 0,
    outputTokens: 0,
    totalTokens: 0,
    inputTextTokens: 0,
    inputAudioTokens: 0,
    inputImageTokens: 0,
    cachedTokens: 0,
    cachedTextTokens: 0,
    cachedAudioTokens: 0,
    cachedImageTokens: 0,
    outputTextTokens: 0,
    outputAudioTokens: 0,
  };
}

function n(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
}

/** Add one `response.done.usage` to the totals (mutates and returns `totals`). */
export function addUsage(totals: UsageTotals, usage: WireUsage | null | undefined): UsageTotals {
  if (!usage || typeof usage !== 'object') return totals;
  const inD = usage.input_token_details ?? {};
  const outD = usage.output_token_details ?? {};
  const inText = n(inD.text_tokens);
  const inAudio = n(inD.audio_tokens);
  const inImage = n(inD.image_tokens);
  const cached = n(inD.cached_tokens);
  let cText = n(inD.cached_tokens_details?.text_tokens);
  let cAudio = n(inD.cached_tokens_details?.audio_tokens);
  let cImage = n(inD.cached_tokens_details?.image_tokens);
  if (cached > 0 && cText + cAudio + cImage === 0) {
    // No per-modality split reported: apportion the cached tokens by the input mix.
    const all = inText + inAudio + inImage;
    if (all > 0) {
      cAudio = Math.round((cached * inAudio) / all);
      cImage = Math.round((cached * inImage) / all);
      cText = cached - cAudio - cImage;
    } else {
      cText = cached;
    }
  }
  const input = n(usage.input_tokens) || inText + inAudio + inImage;
  const output = n(usage.output_tokens) || n(outD.text_tokens) + n(outD.audio_tokens);
  totals.responses += 1;
  totals.inputTokens += input;
  totals.outputTokens += output;
  totals.totalTokens += n(usage.total_tokens) || input + output;
  totals.inputTextTokens += inText;
  totals.inputAudioTokens += inAudio;
  totals.inputImageTokens += inImage;
  totals.cachedTokens += cached || cText + cAudio + cImage;
  totals.cachedTextTokens += cText;
  totals.cachedAudioTokens += cAudio;
  totals.cachedImageTokens += cImage;
  totals.outputTextTokens += n(outD.text_tokens);
  totals.outputAudioTokens += n(outD.audio_tokens);
  return totals;
}

/** Estimated cost in USD of the totals under a price table. */
export function estimateCostUsd(t: UsageTotals, prices: PriceTable = DEFAULT_PRICES): number {
  const fresh = (all: number, cached: number): number => Math.max(0, all - cached);
  const micro =
    fresh(t.inputTextTokens, t.cachedTextTokens) * prices.textInput +
    t.cachedTextTokens * prices.textCachedInput +
    fresh(t.inputAudioTokens, t.cachedAudioTokens) * prices.audioInput +
    t.cachedAudioTokens * prices.audioCachedInput +
    fresh(t.inputImageTokens, t.cachedImageTokens) * prices.imageInput +
    t.cachedImageTokens * prices.imageCachedInput +
    t.outputTextTokens * prices.textOutput +
    t.outputAudioTokens * prices.audioOutput;
  return micro / 1_000_000;
}

/** Merge a partial price table over the defaults (unknown or negative values are ignored). */
export function resolvePrices(overrides?: Partial<PriceTable>): PriceTable {
  const out: PriceTable = { ...DEFAULT_PRICES };
  if (!overrides) return out;
  for (const key of Object.keys(out) as (keyof PriceTable)[]) {
    const v = overrides[key];
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) out[key] = v;
  }
  return out;
}

/** Totals plus cost, as a fresh object safe to hand to listeners. */
export function summarizeUsage(t: UsageTotals, prices: PriceTable = DEFAULT_PRICES): UsageSummary {
  return { ...t, costUsd: estimateCostUsd(t, prices) };
}

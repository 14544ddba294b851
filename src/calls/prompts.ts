/** Fixed prompts at the bridge rate: converted once per rate and cached with the prompt. */
import { Resampler } from '../audio/Resampler';
import type { Prompt } from './types';

const cache = new WeakMap<Prompt, Map<number, Int16Array>>();

/**
 * The prompt's PCM at `sampleRate`: as it is when the rates match (the daemon loads prompts at the
 * bridge rate), otherwise resampled once (offline filter, delay removed) and cached.
 */
export function promptAt(prompt: Prompt, sampleRate: number): Int16Array {
  if (prompt.sampleRate === sampleRate) return prompt.pcm;
  let byRate = cache.get(prompt);
  const hit = byRate?.get(sampleRate);
  if (hit) return hit;
  const r = Resampler.create(prompt.sampleRate, sampleRate, { design: 'offline' });
  const body = r.process(prompt.pcm);
  const tail = r.flush();
  const skip = Math.round(r.delaySamples);
  const all = new Int16Array(body.length + tail.length);
  all.set(body);
  all.set(tail, body.length);
  const want = Math.round((prompt.pcm.length * sampleRate) / prompt.sampleRate);
  const out = all.slice(skip, skip + want);
  if (!byRate) {
    byRate = new Map();
    cache.set(prompt, byRate);
  }
  byRate.set(sampleRate, out);
  return out;
}

/** Duration of a prompt, ms. */
export function promptMs(prompt: Prompt): number {
  return (prompt.pcm.length * 1000) / prompt.sampleRate;
}

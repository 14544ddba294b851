/** Loads the configured WAV prompts once at start-up, converted to the bridge rate. */
import { loadWavFile } from '../audio/wav';
import type { AgentConfig } from '../config';
import type { Prompt } from '../calls/types';

/** Greeting and fixed prompts, ready to play. */
export interface LoadedPrompts {
  greeting?: Prompt;
  fallback?: Prompt;
  goodbye?: Prompt;
  busy?: Prompt;
}

/** Load every configured prompt; a bad file throws ConfigError naming its key. */
export function loadPrompts(cfg: AgentConfig, sampleRate: number): LoadedPrompts {
  const load = (file: string | undefined, key: string): Prompt | undefined => {
    if (!file) return undefined;
    const wav = loadWavFile(file, sampleRate, { configPath: key });
    return { pcm: wav.pcm, sampleRate: wav.sampleRate };
  };
  return {
    greeting: load(cfg.greeting.file, 'greeting.file'),
    fallback: load(cfg.prompts.fallbackFile, 'prompts.fallbackFile'),
    goodbye: load(cfg.prompts.goodbyeFile, 'prompts.goodbyeFile'),
    busy: load(cfg.prompts.busyFile, 'prompts.busyFile'),
  };
}

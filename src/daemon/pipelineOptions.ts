/** `ai.pipeline` (and the `ai` keys it falls back to) as the pipeline backend takes them. */
import type { PipelineOptions } from '../ai/pipeline/PipelineSession';
import type { Vad } from '../audio/vad';
import type { AgentConfig } from '../config';

export function pipelineOptions(cfg: AgentConfig, neuralVad?: Vad): PipelineOptions {
  const p = cfg.ai.pipeline;
  const key = (own: string | undefined): string | undefined => own ?? cfg.ai.apiKey;
  return {
    language: p.language,
    neuralVad,
    vad: { thresholdDbfs: p.vad.thresholdDbfs, minSpeechMs: p.vad.minSpeechMs, silenceMs: p.vad.silenceMs, paddingMs: p.vad.preRollMs, maxUtteranceMs: p.vad.maxTurnMs },
    stt: { baseUrl: p.stt.url, apiKey: key(p.stt.apiKey), timeoutMs: p.stt.timeoutMs, model: p.stt.model, prompt: p.stt.prompt },
    chat: {
      baseUrl: p.chat.url,
      apiKey: key(p.chat.apiKey),
      timeoutMs: p.chat.timeoutMs,
      model: p.chat.model,
      temperature: p.chat.temperature,
      maxTokens: p.chat.maxTokens,
      historyMessages: p.chat.historyMessages,
    },
    tts: {
      baseUrl: p.tts.url,
      apiKey: key(p.tts.apiKey),
      timeoutMs: p.tts.timeoutMs,
      model: p.tts.model,
      voice: p.tts.voice ?? cfg.ai.voice,
      speed: p.tts.speed ?? cfg.ai.speed,
      instructions: p.tts.instructions,
    },
    prices: { input: p.chat.inputPricePerMTokens, output: p.chat.outputPricePerMTokens },
  };
}

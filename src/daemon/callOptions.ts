/** Maps the configuration onto the call layer's options (the only place that knows both). */
import type { AgentConfig } from '../config';
import { compileAllowList, compileConfigTemplates } from '../config';
import type { CallAiOptions, CallManagerOptions } from '../calls/options';
import type { CallInfo, CallRecorderSink } from '../calls/types';
import type { SipAccount } from '../sip/SipAccount';
import type { AiAudioFormat } from '../ai/audioFormat';
import type { McpServerOptions, TruncationOptions, TurnDetectionOptions } from '../ai/types';
import type { McpServerConfig } from '../config/schema';
import type { LoadedPrompts } from './prompts';
import type { ResamplerKernelFactory } from '../audio/Resampler';
import type { CallVad } from '../audio/vad';

/** What besides the config the call options need. */
export interface CallOptionsContext {
  prompts: LoadedPrompts;
  outboundAccount?: SipAccount;
  recorder?: (call: CallInfo) => CallRecorderSink | undefined;
  /** The live path's resampler engine (the addon's native kernel); default the JS reference kernel. */
  resamplerKernel?: ResamplerKernelFactory;
  /** Whether a source address is trusted (a registrar's or proxy's; see daemon/admission). */
  trustedSource?: (address: string | undefined) => boolean;
  /** ai.inputGate: vad: a detector per call for the uplink gate. */
  inputGate?: (sampleRate: number) => CallVad;
}

function turnDetection(t: AgentConfig['ai']['turnDetection']): TurnDetectionOptions {
  if (t.type === 'none') return null;
  if (t.type === 'semantic_vad') {
    return { type: 'semantic_vad', eagerness: t.eagerness, createResponse: t.createResponse, interruptResponse: t.interruptResponse };
  }
  return {
    type: 'server_vad',
    threshold: t.threshold,
    prefixPaddingMs: t.prefixPaddingMs,
    silenceDurationMs: t.silenceDurationMs,
    idleTimeoutMs: t.idleTimeoutMs ?? null,
    createResponse: t.createResponse,
    interruptResponse: t.interruptResponse,
  };
}

function truncation(t: AgentConfig['ai']['truncation']): TruncationOptions | undefined {
  if (t.type === 'auto') return undefined;
  if (t.type === 'disabled') return 'disabled';
  return { type: 'retention_ratio', retentionRatio: t.retentionRatio ?? 1, postInstructionsTokens: t.postInstructionsTokens };
}

/** ai.reasoning, ai.parallelToolCalls, ai.truncation and tools.mcp as session options (only what is set). */
function realtimeFeatures(cfg: AgentConfig): Partial<CallAiOptions> {
  const ai = cfg.ai;
  const out: Partial<CallAiOptions> = {};
  if (ai.reasoning.effort !== undefined) out.reasoning = { effort: ai.reasoning.effort };
  if (ai.parallelToolCalls !== undefined) out.parallelToolCalls = ai.parallelToolCalls;
  const t = truncation(ai.truncation);
  if (t !== undefined) out.truncation = t;
  if (cfg.tools.mcp.length > 0) out.mcpServers = cfg.tools.mcp.map(mcpServer);
  return out;
}

function mcpServer(m: McpServerConfig): McpServerOptions {
  return {
    label: m.label,
    url: m.url,
    description: m.description,
    headers: m.headers,
    authorization: m.authorization,
    allowedTools: m.allowedTools,
    requireApproval: m.requireApproval === 'listed' ? { always: m.alwaysAsk, never: m.neverAsk } : m.requireApproval,
    approvedTools: m.approvedTools,
  };
}

/** CallManagerOptions for `cfg`. Throws ConfigError for templates naming unknown variables. */
export function callManagerOptions(cfg: AgentConfig, ctx: CallOptionsContext): CallManagerOptions {
  const templates = compileConfigTemplates(cfg);
  const ai = cfg.ai;
  const tc = cfg.tools.transferCall;
  const targets: Record<string, string> = { ...(tc.targets ?? {}) };
  const failureTarget = cfg.calls.transferTarget ? (targets[cfg.calls.transferTarget] ?? cfg.calls.transferTarget) : undefined;
  const allow = compileAllowList(cfg.calls.allow);
  const trusted = ctx.trustedSource ?? (() => false);
  return {
    ai: {
      audioFormat: ai.audioFormat as AiAudioFormat,
      model: ai.provider === 'openai-live' ? ai.live.model : ai.model,
      voice: ai.provider === 'openai-live' ? (ai.live.voice ?? ai.voice) : ai.voice,
      speed: ai.speed,
      turnDetection: turnDetection(ai.turnDetection),
      noiseReduction: ai.noiseReduction === 'off' ? null : (ai.noiseReduction as 'near_field' | 'far_field'),
      transcription: ai.transcription
        ? { model: ai.transcription.model, language: ai.transcription.language, prompt: ai.transcription.prompt, delay: ai.transcription.delay }
        : null,
      ...realtimeFeatures(cfg),
      maxSessionAgeMs: ai.maxSessionMinutes * 60_000,
      prices: {
        audioInput: ai.prices.audioInput,
        audioCachedInput: ai.prices.audioCachedInput,
        audioOutput: ai.prices.audioOutput,
        textInput: ai.prices.textInput,
        textCachedInput: ai.prices.textCachedInput,
        textOutput: ai.prices.textOutput,
      },
    },
    instructions: templates.instructions,
    openingLine: cfg.greeting.file ? undefined : templates.openingLine,
    prompt: ai.prompt.id === undefined ? undefined : { id: ai.prompt.id, version: ai.prompt.version, variables: templates.promptVariables },
    variables: cfg.variables,
    timeZone: cfg.calls.timeZone,
    greeting: { prompt: ctx.prompts.greeting, interruptible: cfg.greeting.interruptible },
    prompts: { fallback: ctx.prompts.fallback, goodbye: ctx.prompts.goodbye, busy: ctx.prompts.busy },
    tools: {
      endCall: cfg.tools.endCall.enabled,
      transferCall: tc.enabled && Object.keys(targets).length ? { enabled: true, targets, defaultTarget: tc.defaultTarget } : false,
      webhooks: cfg.tools.webhooks.map((w) => ({
        name: w.name,
        description: w.description,
        parameters: w.parameters as Record<string, unknown>,
        url: w.url,
        method: w.method as 'POST' | 'PUT' | 'PATCH' | 'GET',
        headers: w.headers,
        timeoutMs: w.timeoutMs,
      })),
    },
    calls: {
      maxConcurrent: cfg.calls.maxConcurrent,
      allows: (c) => trusted(c.address) || allow.allows(c),
      maxDurationMs: cfg.calls.maxDurationSec * 1000,
      ringingMs: cfg.calls.ringingMs,
      dtmf: { toModel: cfg.calls.dtmf.toModel, template: templates.dtmf },
      onAiFailure: cfg.calls.onAiFailure as 'hangup' | 'transfer',
      failureTransferTo: failureTarget,
      drainTimeoutMs: cfg.calls.drainTimeoutSec * 1000,
      aiStartTimeoutMs: ai.connectTimeoutMs + 10_000,
      aiReplyTimeoutMs: ai.replyTimeoutMs,
      outboundAccount: ctx.outboundAccount,
    },
    recorder: ctx.recorder,
    audio: { resamplerKernel: ctx.resamplerKernel, batchMs: cfg.ai.appendMs, inputGate: ctx.inputGate },
  };
}

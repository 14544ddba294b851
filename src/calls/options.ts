/**
 * Options of the call layer and their defaults. {@link CallManagerOptions} is what the daemon maps
 * its configuration to (one key per config key, see the doc lines); {@link resolveCallOptions}
 * fills the defaults once per (re)load so every call of that configuration shares one frozen copy.
 */
import type { AiSessionOptions } from '../ai/types';
import type { AiAudioFormat } from '../ai/audioFormat';
import type { SipAccount } from '../sip/SipAccount';
import { callTemplateAllowed, compileTemplate, type Template } from '../util/template';
import type { AudioBridgeOptions } from './AudioBridge';
import type { EndCallToolOptions } from './tools/endCall';
import type { TransferCallToolOptions } from './tools/transferCall';
import type { WebhookToolOptions } from './tools/webhook';
import type { CallInfo, CallRecorderSink, Prompt } from './types';

/** A compiled template (util/template), or its text (compiled by {@link resolveCallOptions}). */
export type TemplateLike = Pick<Template, 'render'> | string;

/** A compiled template. */
export type Renderable = Pick<Template, 'render'>;

/** AI session settings shared by every call (the instructions are rendered per call). */
export interface CallAiOptions extends Omit<AiSessionOptions, 'instructions' | 'tools' | 'inputFormat' | 'outputFormat' | 'prompt'> {
  /** ai.audioFormat: `pcm` (24 kHz, resampled) or `pcmu`/`pcma` (G.711 passthrough; needs an 8 kHz bridge). */
  audioFormat: AiAudioFormat;
  /** ai.model, kept in call records. */
  model?: string;
}

/** Who is calling, for the allow-list. */
export interface CallerIdentity {
  /** From URI (or the whole From value). */
  uri: string;
  /** Source IP address of the INVITE. */
  address?: string;
}

/** Everything the call layer needs; the daemon maps `AgentConfig` onto it. */
export interface CallManagerOptions {
  /** ai.* (voice, speed, audioFormat, turnDetection, noiseReduction, transcription, maxSessionMinutes → maxSessionAgeMs, prices). */
  ai: CallAiOptions;
  /** ai.instructions: the compiled template (`compileConfigTemplates(cfg).instructions`) or plain text. */
  instructions: TemplateLike;
  /** ai.openingLine: what the model is told to say first when there is no greeting. */
  openingLine?: TemplateLike;
  /** ai.prompt: a stored prompt; its variables are templates rendered per call like the instructions. */
  prompt?: { id: string; version?: string; variables?: Readonly<Record<string, TemplateLike>> };
  /** variables: values for `{{var.<name>}}`. */
  variables?: Readonly<Record<string, string>>;
  /** calls.timeZone: IANA zone for `{{date}}`, `{{time}}`, `{{weekday}}` (default: the process's). */
  timeZone?: string;
  /** greeting.file (loaded at the bridge rate) and greeting.interruptible (default false). */
  greeting?: { prompt?: Prompt; interruptible?: boolean };
  /** prompts.fallbackFile / goodbyeFile / busyFile, loaded. */
  prompts?: { fallback?: Prompt; goodbye?: Prompt; busy?: Prompt };
  /** tools.*: end_call (default on), transfer_call (off unless given targets), webhooks. */
  tools?: {
    endCall?: boolean | EndCallToolOptions;
    transferCall?: false | (TransferCallToolOptions & { enabled?: boolean });
    webhooks?: readonly WebhookToolOptions[];
  };
  /** calls.*. */
  calls?: {
    /** calls.maxConcurrent (default 8): more get 486 Busy Here (or the busy prompt). */
    maxConcurrent?: number;
    /** Whether a caller is admitted (trusted source or calls.allow); absent = everyone. Others get 403. */
    allows?: (caller: CallerIdentity) => boolean;
    /** calls.maxDurationSec × 1000 (default 1800000). */
    maxDurationMs?: number;
    /** calls.ringingMs (default 0): ring at least this long before answering. */
    ringingMs?: number;
    /** calls.dtmf: toModel (default true), template (default "Caller pressed {{digit}}"). */
    dtmf?: { toModel?: boolean; template?: TemplateLike; respond?: boolean; respondDelayMs?: number };
    /** calls.onAiFailure (default hangup). */
    onAiFailure?: 'hangup' | 'transfer';
    /** calls.transferTarget resolved to a SIP URI (a tools.transferCall.targets name mapped by the daemon). */
    failureTransferTo?: string;
    /** calls.drainTimeoutSec × 1000 (default 30000). */
    drainTimeoutMs?: number;
    /** ai.connectTimeoutMs plus the session.update wait: start() failing later counts as an AI failure (default 15000). */
    aiStartTimeoutMs?: number;
    /**
     * ai.replyTimeoutMs: after the caller ends a turn (or a response starts), the model must send
     * audio or finish a response within this long, else it counts as an AI failure (fallback
     * prompt, then onAiFailure); 0 disables (default 10000).
     */
    aiReplyTimeoutMs?: number;
    /** Account placeCall() uses when none is given. */
    outboundAccount?: SipAccount;
    /** placeCall(): give up when the callee has not answered after this long, ms (default 60000). */
    outboundAnswerTimeoutMs?: number;
  };
  /** Audio pump tunables, plus the wait between the last audio and a BYE. */
  audio?: AudioBridgeOptions & {
    /** Silence kept after the last prompt/goodbye before hanging up, so the far end's jitter buffer plays it out, ms (default 500). */
    hangupTailMs?: number;
  };
  /** records.recordAudio: a per-call stereo sink (caller left, agent right), or undefined for none. */
  recorder?: (call: CallInfo) => CallRecorderSink | undefined;
  /** Bounds of what is kept. */
  limits?: {
    /** Summaries kept for recent() (default 100). */
    recentCalls?: number;
    /** Transcript lines kept per call (default 2000; oldest evicted, counted). */
    transcriptLines?: number;
    /** Tool calls kept per call (default 200). */
    toolUses?: number;
  };
}

/** {@link CallManagerOptions} with every default filled. */
export interface ResolvedCallOptions {
  ai: CallAiOptions;
  instructions: Renderable;
  openingLine: Renderable | undefined;
  prompt: { id: string; version?: string; variables: Readonly<Record<string, Renderable>> } | undefined;
  variables: Readonly<Record<string, string>>;
  timeZone: string | undefined;
  greeting: Prompt | undefined;
  greetingInterruptible: boolean;
  prompts: { fallback?: Prompt; goodbye?: Prompt; busy?: Prompt };
  endCall: EndCallToolOptions | undefined;
  transferCall: TransferCallToolOptions | undefined;
  webhooks: readonly WebhookToolOptions[];
  maxConcurrent: number;
  allows: ((caller: CallerIdentity) => boolean) | undefined;
  maxDurationMs: number;
  ringingMs: number;
  dtmf: { toModel: boolean; template: Renderable; respond: boolean; respondDelayMs: number };
  onAiFailure: 'hangup' | 'transfer';
  failureTransferTo: string | undefined;
  drainTimeoutMs: number;
  aiStartTimeoutMs: number;
  aiReplyTimeoutMs: number;
  outboundAccount: SipAccount | undefined;
  outboundAnswerTimeoutMs: number;
  audio: AudioBridgeOptions;
  hangupTailMs: number;
  recorder: ((call: CallInfo) => CallRecorderSink | undefined) | undefined;
  recentCalls: number;
  transcriptLines: number;
  toolUses: number;
}

/**
 * Fill defaults, compile templates given as text, and check ranges.
 * @throws ConfigError for a template naming an unknown variable; RangeError on a nonsensical value.
 */
export function resolveCallOptions(o: CallManagerOptions): ResolvedCallOptions {
  const c = o.calls ?? {};
  const variables = o.variables ?? {};
  const allowed = callTemplateAllowed(Object.keys(variables));
  const tpl = (t: TemplateLike, path: string, extra: string[] = []): Renderable =>
    typeof t === 'string' ? compileTemplate(t, { allowed: [...allowed, ...extra], path }) : t;
  const t = o.tools ?? {};
  const transfer = t.transferCall && t.transferCall.enabled !== false && Object.keys(t.transferCall.targets).length > 0 ? t.transferCall : undefined;
  const endCall = t.endCall === false ? undefined : t.endCall === true || t.endCall === undefined ? {} : t.endCall;
  const r: ResolvedCallOptions = {
    ai: o.ai,
    instructions: tpl(o.instructions, 'ai.instructions'),
    openingLine: o.openingLine === undefined ? undefined : tpl(o.openingLine, 'ai.openingLine'),
    prompt:
      o.prompt === undefined
        ? undefined
        : {
            id: o.prompt.id,
            ...(o.prompt.version !== undefined ? { version: o.prompt.version } : {}),
            variables: Object.fromEntries(Object.entries(o.prompt.variables ?? {}).map(([k, v]) => [k, tpl(v, `ai.prompt.variables.${k}`)])),
          },
    variables,
    timeZone: o.timeZone,
    greeting: o.greeting?.prompt && o.greeting.prompt.pcm.length > 0 ? o.greeting.prompt : undefined,
    greetingInterruptible: o.greeting?.interruptible ?? false,
    prompts: { ...(o.prompts ?? {}) },
    endCall,
    transferCall: transfer,
    webhooks: t.webhooks ?? [],
    maxConcurrent: c.maxConcurrent ?? 8,
    allows: c.allows,
    maxDurationMs: c.maxDurationMs ?? 1_800_000,
    ringingMs: c.ringingMs ?? 0,
    dtmf: {
      toModel: c.dtmf?.toModel ?? true,
      template: tpl(c.dtmf?.template ?? 'Caller pressed {{digit}}', 'calls.dtmf.template', ['digit']),
      respond: c.dtmf?.respond ?? true,
      respondDelayMs: c.dtmf?.respondDelayMs ?? 800,
    },
    onAiFailure: c.onAiFailure ?? 'hangup',
    failureTransferTo: c.failureTransferTo,
    drainTimeoutMs: c.drainTimeoutMs ?? 30_000,
    aiStartTimeoutMs: c.aiStartTimeoutMs ?? 15_000,
    aiReplyTimeoutMs: c.aiReplyTimeoutMs ?? 10_000,
    outboundAccount: c.outboundAccount,
    outboundAnswerTimeoutMs: c.outboundAnswerTimeoutMs ?? 60_000,
    audio: {
      batchMs: o.audio?.batchMs,
      maxBacklogMs: o.audio?.maxBacklogMs,
      preReadyMs: o.audio?.preReadyMs,
      recorderQueueMs: o.audio?.recorderQueueMs,
      resamplerKernel: o.audio?.resamplerKernel,
      inputGate: o.audio?.inputGate,
      greetingInterruptible: o.greeting?.interruptible ?? false,
    },
    hangupTailMs: o.audio?.hangupTailMs ?? 500,
    recorder: o.recorder,
    recentCalls: o.limits?.recentCalls ?? 100,
    transcriptLines: o.limits?.transcriptLines ?? 2000,
    toolUses: o.limits?.toolUses ?? 200,
  };
  const positive: [string, number][] = [
    ['calls.maxConcurrent', r.maxConcurrent],
    ['calls.maxDurationMs', r.maxDurationMs],
    ['calls.aiStartTimeoutMs', r.aiStartTimeoutMs],
    ['calls.outboundAnswerTimeoutMs', r.outboundAnswerTimeoutMs],
    ['limits.recentCalls', r.recentCalls],
    ['limits.transcriptLines', r.transcriptLines],
    ['limits.toolUses', r.toolUses],
  ];
  for (const [name, v] of positive) if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`call option must be positive [option:${name}, value:${v}]`);
  const nonNegative: [string, number][] = [
    ['calls.ringingMs', r.ringingMs],
    ['calls.drainTimeoutMs', r.drainTimeoutMs],
    ['calls.aiReplyTimeoutMs', r.aiReplyTimeoutMs],
    ['audio.hangupTailMs', r.hangupTailMs],
  ];
  for (const [name, v] of nonNegative) if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`call option must be >= 0 [option:${name}, value:${v}]`);
  if (r.onAiFailure === 'transfer' && !r.failureTransferTo) throw new RangeError('calls.onAiFailure is transfer but no failureTransferTo URI is set');
  return r;
}

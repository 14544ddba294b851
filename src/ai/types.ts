/**
 * Backend-neutral types of an AI conversation session: the options the daemon maps its config to,
 * the events the call layer listens to, tools, and the {@link AiSession} surface every backend
 * (OpenAI Realtime, offline echo) implements.
 */
import type { AiSessionError } from '../util/errors';
import type { AiAudioFormat, AiAudioFormatInfo } from './audioFormat';
import type { ClientEventType, WireUsage } from './events';
import type { LiveClientEventType } from './live/wire';
import type { PriceTable, UsageSummary } from './usage';

/** server_vad turn detection (durations in ms). */
export interface ServerVadOptions {
  type: 'server_vad';
  /** Activation threshold 0–1 (server default 0.5). */
  threshold?: number;
  /** Audio kept before detected speech, ms (server default 300). */
  prefixPaddingMs?: number;
  /** Silence that ends a turn, ms (server default 500). */
  silenceDurationMs?: number;
  /** Silence after the model's reply that makes it nudge the caller, ms; null = off. */
  idleTimeoutMs?: number | null;
  /** Respond automatically when the caller stops speaking. */
  createResponse?: boolean;
  /** Cancel the model's reply when the caller starts speaking. */
  interruptResponse?: boolean;
}

/** semantic_vad turn detection. */
export interface SemanticVadOptions {
  type: 'semantic_vad';
  /** How soon the model answers: low waits up to 8 s, medium 4 s, high 2 s (auto = medium). */
  eagerness?: 'low' | 'medium' | 'high' | 'auto';
  createResponse?: boolean;
  interruptResponse?: boolean;
}

/** Turn detection; null means manual turns. */
export type TurnDetectionOptions = ServerVadOptions | SemanticVadOptions | null;

/** Input transcription (runs beside the model; the model does not depend on it). */
export interface TranscriptionOptions {
  /** e.g. `gpt-4o-mini-transcribe`, `whisper-1`. */
  model: string;
  /** ISO-639-1 language hint. */
  language?: string;
  /** Free-text prompt (a keyword list for whisper-1). */
  prompt?: string;
  /** gpt-realtime-whisper: how long it waits before emitting text. */
  delay?: ReasoningEffort;
}

/** A function tool the model may call. */
export interface FunctionToolDefinition {
  name: string;
  description: string;
  /** JSON Schema of the arguments object. */
  parameters: Record<string, unknown>;
}

/** Which tools the model may use. */
export type ToolChoice = 'auto' | 'none' | 'required' | { type: 'function'; name: string };

/** Context overflow policy. */
export type TruncationOptions =
  | 'auto'
  | 'disabled'
  | { type: 'retention_ratio'; retentionRatio: number; postInstructionsTokens?: number };

/** Reasoning effort of reasoning-capable Realtime models (gpt-realtime-2 and later). */
export type ReasoningEffort = 'minimal' | 'low' | 'medium' | 'high' | 'xhigh';

/** A stored prompt the session uses; its variables already rendered for this call. */
export interface PromptReference {
  id: string;
  version?: string;
  variables?: Record<string, string>;
}

/**
 * Which calls of an MCP server the API asks about before making them: all, none, or those listed
 * (`always`) while the others (`never`) go through.
 */
export type McpApprovalRequirement = 'always' | 'never' | { always: readonly string[]; never: readonly string[] };

/** A remote MCP server whose tools the model may call (the Realtime API calls it). */
export interface McpServerOptions {
  /** `server_label`: names the server to the model, and in call records (`mcp:<label>.<tool>`). */
  label: string;
  /** Streamable HTTP endpoint. */
  url: string;
  description?: string;
  /** Sent to the server by the API; secret, never logged. */
  headers?: Record<string, string>;
  /** OAuth access token the API presents to the server; secret, never logged. */
  authorization?: string;
  /** Tools the model may see (absent or empty: all). */
  allowedTools?: readonly string[];
  requireApproval: McpApprovalRequirement;
  /**
   * Tools whose calls this session approves when the API asks; every other request is refused.
   * There is nobody on a phone line to ask, so the configuration decides.
   */
  approvedTools: readonly string[];
}

/** Options of one AI session (one per call). The daemon maps its YAML config to these. */
export interface AiSessionOptions {
  /** System prompt, already rendered. */
  instructions: string;
  /** Voice name, e.g. `marin`; locked once the model has spoken. */
  voice: string;
  /** Playback speed 0.25–1.5 (server default 1.0). */
  speed?: number;
  /** Format of audio passed to appendAudio(). */
  inputFormat: AiAudioFormat;
  /** Format of the `audio` events. */
  outputFormat: AiAudioFormat;
  turnDetection: TurnDetectionOptions;
  /** Input noise reduction; null = off. */
  noiseReduction: 'near_field' | 'far_field' | null;
  /** Caller transcription; null = off (no user transcripts, so no user text in a re-seed). */
  transcription: TranscriptionOptions | null;
  /** Tools declared to the model; handlers are attached with registerTool(). */
  tools?: FunctionToolDefinition[];
  toolChoice?: ToolChoice;
  /** 1–4096 or `inf`. */
  maxOutputTokens?: number | 'inf';
  truncation?: TruncationOptions;
  /** Reasoning-capable models: how much the model thinks (server default `low`). */
  reasoning?: { effort?: ReasoningEffort };
  /** Reasoning-capable models: whether the model may call several tools in one response. */
  parallelToolCalls?: boolean;
  /** A stored prompt used beside the instructions. */
  prompt?: PromptReference;
  /** Remote MCP servers (OpenAI Realtime only; other backends ignore them). */
  mcpServers?: readonly McpServerOptions[];
  /** Rotate to a fresh server session when idle after this age, ms (default 55 min; 0 = never). */
  maxSessionAgeMs?: number;
  /** Time allowed for `session.updated` after `session.update`, ms (default 10000). */
  sessionUpdateTimeoutMs?: number;
  /** A tool handler running longer than this is aborted and reported to the model, ms (default 20000). */
  toolTimeoutMs?: number;
  /** Reconnects allowed over the session's life (default 5); each incident gets one attempt. */
  maxReconnects?: number;
  /** Most transcript items replayed into a new server session (default 40). */
  reseedMaxItems?: number;
  /** Most characters of transcript replayed into a new server session (default 16000). */
  reseedMaxChars?: number;
  /** Transcript items kept for re-seeding (default 200; older ones are dropped and counted). */
  historyMaxItems?: number;
  /** response.create requests waiting for the active response (default 8; overflow is refused). */
  responseQueueMax?: number;
  /** Audio is dropped (and counted) while this many bytes wait in the socket (default 1 MiB). */
  maxSendBufferBytes?: number;
  /** Price overrides for the cost estimate, USD per 1M tokens. */
  prices?: Partial<PriceTable>;
}

/** Per-response overrides for createResponse(). */
export interface ResponseCreateOptions {
  /** Instructions for this response only (e.g. "Greet the caller"). */
  instructions?: string;
  /** `none` makes an out-of-band response that is not added to the conversation. */
  conversation?: 'auto' | 'none';
  toolChoice?: ToolChoice;
  maxOutputTokens?: number | 'inf';
  /** Up to 15 key/value pairs echoed back on the response. */
  metadata?: Record<string, string>;
}

/** How a response ended. `not_sent`: it never reached the server (queue full, session lost or closed). */
export type ResponseStatus = 'completed' | 'cancelled' | 'failed' | 'incomplete' | 'not_sent';

/** The outcome of one response; createResponse() resolves with it and never rejects. */
export interface ResponseOutcome {
  /** Server id (`resp_…`); undefined when the response was never created. */
  responseId: string | undefined;
  status: ResponseStatus;
  /** `turn_detected`, `client_cancelled`, `max_output_tokens`, `content_filter`, `session_lost`, ... */
  reason?: string;
  /** Raw `response.done.usage`. */
  usage?: WireUsage;
  /** Set for `failed` / `not_sent`. */
  error?: { code: string; message: string };
  /** True when this session asked for the response; false for server (VAD) responses. */
  requested: boolean;
}

/** What a tool handler returns. */
export interface ToolResult {
  /** Sent to the model as the function_call_output (usually JSON). */
  output: string;
  /**
   * What happens after the outputs are sent: `respond` (default) asks for one response; `none` asks
   * for none (if every result in the batch says so); `{instructions}` asks for one with these
   * per-response instructions.
   */
  followUp?: 'respond' | 'none' | { instructions: string };
}

/** Passed to a tool handler. */
export interface ToolContext {
  /** The function call's `call_id`. */
  callId: string;
  /** Aborted on tool timeout, session close or loss of the server session. */
  signal: AbortSignal;
  /**
   * Resolves with the outcome of the response requested after this call's batch of outputs
   * (undefined when none is requested or the session ends first). Never rejects. `end_call` uses it
   * to hang up after the goodbye.
   */
  followUp: Promise<ResponseOutcome | undefined>;
}

/** A tool with its handler. */
export interface ToolRegistration extends FunctionToolDefinition {
  handler(args: unknown, ctx: ToolContext): Promise<ToolResult>;
}

/** One finished tool call, for logs, metrics and call records. */
export interface ToolCallRecord {
  name: string;
  callId: string;
  /** Parsed arguments (undefined when they were not valid JSON). */
  args: unknown;
  /** What was sent back to the model. */
  result: ToolResult;
  durationMs: number;
  /** Set when the call failed (unknown tool, bad arguments, handler threw or timed out). */
  error?: string;
  /** An MCP call the approval policy did not grant (never made; `error` says why). */
  refused?: true;
}

/** A transcript fragment (`final:false`) or a whole utterance (`final:true`). */
export interface TranscriptEvent {
  role: 'user' | 'assistant';
  itemId: string;
  text: string;
  final: boolean;
  /** Milliseconds since start() was called. */
  atMs: number;
}

/** A non-fatal error reported by the server. */
export interface AiServerError {
  code: string;
  type?: string;
  message: string;
  param?: string;
  /** Type of the client event that caused it, when known. */
  causeType?: ClientEventType | LiveClientEventType;
  causeEventId?: string;
}

/** Session lifecycle; `closed` and `died` are final. */
export type AiSessionState =
  | { name: 'idle' }
  | { name: 'starting' }
  | { name: 'ready' }
  | { name: 'reconnecting'; reason: string }
  | { name: 'closed' }
  | { name: 'died'; reason: string; error: AiSessionError };

/** Counters of one session. */
export interface AiSessionStats {
  appendedChunks: number;
  appendedBytes: number;
  /** Audio chunks dropped (not ready, reconnecting, or socket backlog over the cap). */
  droppedAudioChunks: number;
  droppedAudioBytes: number;
  responsesRequested: number;
  /** response.create requests refused because the queue was full. */
  responsesDropped: number;
  truncates: number;
  /** Truncates not sent: the item belonged to a server session lost to a reconnect. */
  truncatesSkipped: number;
  truncateErrors: number;
  toolCalls: number;
  toolErrors: number;
  reconnects: number;
  rotations: number;
  /** Transcript items dropped from the bounded history. */
  historyEvicted: number;
  /** Milliseconds to `session.created` of the first connection. */
  connectMs?: number;
  /** Milliseconds from start() to `session.updated`. */
  startMs?: number;
}

/** All-zero session counters (every backend starts from these). */
export function emptySessionStats(): AiSessionStats {
  return {
    appendedChunks: 0,
    appendedBytes: 0,
    droppedAudioChunks: 0,
    droppedAudioBytes: 0,
    responsesRequested: 0,
    responsesDropped: 0,
    truncates: 0,
    truncatesSkipped: 0,
    truncateErrors: 0,
    toolCalls: 0,
    toolErrors: 0,
    reconnects: 0,
    rotations: 0,
    historyEvicted: 0,
  };
}

/** Events of an {@link AiSession}. */
export type AiSessionEvents = {
  stateChange: [next: AiSessionState, prev: AiSessionState];
  /** Caller speech began (barge-in): flush playout synchronously in the listener, then truncate(). */
  speechStarted: [{ itemId: string; audioStartMs: number }];
  speechStopped: [{ itemId: string; audioEndMs: number }];
  /** server_vad idle timeout fired (the model will nudge the caller). */
  inputTimeout: [{ itemId: string; audioStartMs?: number; audioEndMs?: number }];
  /** Model audio, decoded bytes in the output format. */
  audio: [{ responseId: string; itemId: string; data: Buffer }];
  audioDone: [{ responseId: string; itemId: string }];
  responseCreated: [{ responseId: string; requested: boolean }];
  responseDone: [ResponseOutcome];
  transcript: [TranscriptEvent];
  toolCall: [ToolCallRecord];
  /** A non-fatal server error (benign ones such as `response_cancel_not_active` are not emitted). */
  error: [AiServerError];
  usage: [UsageSummary];
  reconnecting: [{ reason: string }];
  reconnected: [{ reason: string; durationMs: number; reseededItems: number }];
  /** close() finished. */
  close: [];
  /** The session ended without being asked to (the call layer plays its fallback prompt). */
  died: [AiSessionError];
};

/** The surface the call layer uses; an OpenAI Realtime session and an offline echo session both provide it. */
export interface AiSession {
  /** Formats of appendAudio() input and `audio` output, with their rates. */
  readonly audioFormat: { input: AiAudioFormatInfo; output: AiAudioFormatInfo };
  readonly state: AiSessionState;
  readonly closed: boolean;
  /**
   * False when the model itself decides whether a caller's turn gets an answer (GPT-Live), so a turn
   * without one is no stall; the reply watchdog then runs only after a response started. Default true.
   */
  readonly repliesToEveryTurn?: boolean;
  /**
   * Audio the call's playout gathers before a reply starts, ms, when the model may send its audio
   * paced near real time rather than ahead of it (GPT-Live); unset: 0, the audio comes in bursts.
   */
  readonly playoutPrebufferMs?: number;
  readonly usage: UsageSummary;
  readonly stats: AiSessionStats;
  /** Connect and configure; resolves when the backend accepted the configuration. */
  start(): Promise<void>;
  /** Send caller audio in the input format (20–40 ms per call). */
  appendAudio(chunk: Buffer | Uint8Array | Int16Array): void;
  /** Ask for a response (queued behind the active one); resolves at its end, never rejects. */
  createResponse(opts?: ResponseCreateOptions): Promise<ResponseOutcome>;
  /** Cancel the active response, if any. */
  cancelResponse(): void;
  /** Tell the backend how much of an assistant item the caller heard (ms, floored, ≥ 0). */
  truncate(itemId: string, audioEndMs: number): void;
  /** Add a user text item (e.g. DTMF digits). */
  sendUserText(text: string): void;
  /** Add a system note to the conversation. */
  sendSystemText(text: string): void;
  /** Declare a tool with its handler (before or after start()). */
  registerTool(tool: ToolRegistration): void;
  close(): void;
  on<K extends keyof AiSessionEvents & string>(event: K, listener: (...args: AiSessionEvents[K]) => void): this;
  once<K extends keyof AiSessionEvents & string>(event: K, listener: (...args: AiSessionEvents[K]) => void): this;
  off<K extends keyof AiSessionEvents & string>(event: K, listener: (...args: AiSessionEvents[K]) => void): this;
}

/**
 * Typed Realtime API (GA) events over WebSocket: the client events we send, the server events we
 * consume, and one parser that turns a text frame into a validated server event without throwing.
 *
 * Names follow the GA protocol (`response.output_audio.delta`, `conversation.item.added`). The legacy
 * beta spellings are accepted and normalised to their GA names so the rest of the code sees one shape.
 * Only the fields the session relies on are validated; everything else is passed through untouched.
 */

// ---------------------------------------------------------------------------------------------------
// Shared shapes

/** GA audio format objects (`audio/pcm` is 24 kHz only). */
export type WireAudioFormat = { type: 'audio/pcm'; rate: 24000 } | { type: 'audio/pcmu' } | { type: 'audio/pcma' };

/** GA `audio.input.turn_detection` (null = manual turns). */
export type WireTurnDetection =
  | {
      type: 'server_vad';
      threshold?: number;
      prefix_padding_ms?: number;
      silence_duration_ms?: number;
      idle_timeout_ms?: number | null;
      create_response?: boolean;
      interrupt_response?: boolean;
    }
  | {
      type: 'semantic_vad';
      eagerness?: 'low' | 'medium' | 'high' | 'auto';
      create_response?: boolean;
      interrupt_response?: boolean;
    };

/** A function tool as declared in `session.tools`. */
export interface WireFunctionTool {
  type: 'function';
  name: string;
  description: string;
  parameters: Record<string, unknown>;
}

/** An MCP server as declared in `session.tools`. */
export interface WireMcpTool {
  type: 'mcp';
  server_label: string;
  server_url: string;
  server_description?: string;
  headers?: Record<string, string>;
  authorization?: string;
  allowed_tools?: string[];
  require_approval?: 'always' | 'never' | { always?: { tool_names: string[] }; never?: { tool_names: string[] } };
}

/** A tool as declared in `session.tools`. */
export type WireTool = WireFunctionTool | WireMcpTool;

/** GA `tool_choice`. */
export type WireToolChoice = 'auto' | 'none' | 'required' | { type: 'function'; name: string };

/** GA `truncation`. */
export type WireTruncation =
  | 'auto'
  | 'disabled'
  | { type: 'retention_ratio'; retention_ratio: number; token_limits?: { post_instructions?: number } };

/** The GA session object sent in `session.update` (only the fields we set). */
export interface WireSessionConfig {
  type: 'realtime';
  output_modalities?: ['audio'] | ['text'];
  instructions?: string;
  audio?: {
    input?: {
      format?: WireAudioFormat;
      noise_reduction?: { type: 'near_field' | 'far_field' } | null;
      transcription?: { model: string; language?: string; prompt?: string; delay?: string } | null;
      turn_detection?: WireTurnDetection | null;
    };
    output?: {
      format?: WireAudioFormat;
      voice?: string;
      speed?: number;
    };
  };
  tools?: WireTool[];
  tool_choice?: WireToolChoice;
  max_output_tokens?: number | 'inf';
  truncation?: WireTruncation;
  reasoning?: { effort?: 'minimal' | 'low' | 'medium' | 'high' | 'xhigh' };
  parallel_tool_calls?: boolean;
  prompt?: { id: string; version?: string; variables?: Record<string, string> };
}

/** One content part of a conversation item. */
export interface WireContentPart {
  type: string;
  text?: string;
  transcript?: string | null;
  audio?: string;
}

/** A conversation item as the server reports it (message, function_call, function_call_output, ...). */
export interface WireItem {
  id?: string;
  type: string;
  object?: string;
  status?: string;
  role?: 'user' | 'assistant' | 'system';
  content?: WireContentPart[];
  call_id?: string;
  name?: string;
  arguments?: string;
  /** Function and MCP call output (an MCP call's may be null). */
  output?: string | null;
  /** MCP items: the server's label. */
  server_label?: string;
  /** `mcp_list_tools`: what the server offers. */
  tools?: { name?: string; description?: string | null }[];
  /** `mcp_call`: why it failed (protocol, HTTP or tool execution error). */
  error?: { type?: string; code?: number | string; message?: string } | null;
  /** `mcp_call`: the approval request it answers, when one was needed. */
  approval_request_id?: string | null;
}

/** An item the client creates with `conversation.item.create`. */
export type WireNewItem =
  | { type: 'message'; role: 'user' | 'system'; content: { type: 'input_text'; text: string }[] }
  | { type: 'message'; role: 'assistant'; content: { type: 'output_text'; text: string }[] }
  | { type: 'function_call_output'; call_id: string; output: string }
  | { type: 'function_call'; call_id: string; name: string; arguments: string }
  | { type: 'mcp_approval_response'; id: string; approval_request_id: string; approve: boolean; reason?: string };

/** `response.done.usage` (cached tokens are a subset of input tokens). */
export interface WireUsage {
  total_tokens?: number;
  input_tokens?: number;
  output_tokens?: number;
  input_token_details?: {
    text_tokens?: number;
    audio_tokens?: number;
    image_tokens?: number;
    cached_tokens?: number;
    cached_tokens_details?: { text_tokens?: number; audio_tokens?: number; image_tokens?: number };
  };
  output_token_details?: { text_tokens?: number; audio_tokens?: number };
}

/** The response object carried by `response.created` / `response.done`. */
export interface WireResponse {
  id: string;
  object?: string;
  status?: 'in_progress' | 'completed' | 'cancelled' | 'failed' | 'incomplete';
  status_details?: { type?: string; reason?: string; error?: { type?: string; code?: string; message?: string } } | null;
  output?: WireItem[];
  usage?: WireUsage | null;
  metadata?: Record<string, string> | null;
  conversation_id?: string;
}

/** The body of a server `error` event. */
export interface WireErrorBody {
  type?: string;
  code?: string | null;
  message: string;
  param?: string | null;
  /** The client event that caused the error, when the server knows it. */
  event_id?: string | null;
}

// ---------------------------------------------------------------------------------------------------
// Client events

/** `session.update`. */
export interface SessionUpdateEvent {
  type: 'session.update';
  event_id?: string;
  session: WireSessionConfig | (Partial<WireSessionConfig> & { type: 'realtime' });
}
/** `input_audio_buffer.append` (base64 audio in the session's input format). */
export interface InputAudioBufferAppendEvent {
  type: 'input_audio_buffer.append';
  event_id?: string;
  audio: string;
}
/** `input_audio_buffer.commit`. */
export interface InputAudioBufferCommitEvent {
  type: 'input_audio_buffer.commit';
  event_id?: string;
}
/** `input_audio_buffer.clear`. */
export interface InputAudioBufferClearEvent {
  type: 'input_audio_buffer.clear';
  event_id?: string;
}
/** `conversation.item.create`. */
export interface ConversationItemCreateEvent {
  type: 'conversation.item.create';
  event_id?: string;
  previous_item_id?: string;
  item: WireNewItem;
}
/** `conversation.item.truncate`: cut an assistant item's audio at what the caller heard. */
export interface ConversationItemTruncateEvent {
  type: 'conversation.item.truncate';
  event_id?: string;
  item_id: string;
  content_index: number;
  audio_end_ms: number;
}
/** `conversation.item.delete`. */
export interface ConversationItemDeleteEvent {
  type: 'conversation.item.delete';
  event_id?: string;
  item_id: string;
}
/** Per-response overrides of `response.create`. */
export interface WireResponseCreateBody {
  instructions?: string;
  conversation?: 'auto' | 'none';
  output_modalities?: ['audio'] | ['text'];
  tool_choice?: WireToolChoice;
  max_output_tokens?: number | 'inf';
  metadata?: Record<string, string>;
}
/** `response.create`. */
export interface ResponseCreateEvent {
  type: 'response.create';
  event_id?: string;
  response?: WireResponseCreateBody;
}
/** `response.cancel`. */
export interface ResponseCancelEvent {
  type: 'response.cancel';
  event_id?: string;
  response_id?: string;
}

/** Every client event we send. */
export type ClientEvent =
  | SessionUpdateEvent
  | InputAudioBufferAppendEvent
  | InputAudioBufferCommitEvent
  | InputAudioBufferClearEvent
  | ConversationItemCreateEvent
  | ConversationItemTruncateEvent
  | ConversationItemDeleteEvent
  | ResponseCreateEvent
  | ResponseCancelEvent;

/** The `type` of a client event. */
export type ClientEventType = ClientEvent['type'];

// ---------------------------------------------------------------------------------------------------
// Server events

interface Base {
  event_id?: string;
  /** Set when the event arrived under its beta name (e.g. `response.audio.delta`). */
  legacy_type?: string;
}

/** `session.created` (first event after the upgrade). */
export interface SessionCreatedEvent extends Base {
  type: 'session.created';
  session: Record<string, unknown> & { id?: string };
}
/** `session.updated`: the full effective config after an update. */
export interface SessionUpdatedEvent extends Base {
  type: 'session.updated';
  session: Record<string, unknown> & { id?: string };
}
/** `conversation.created`. */
export interface ConversationCreatedEvent extends Base {
  type: 'conversation.created';
  conversation?: { id?: string };
}
/** `rate_limits.updated`. */
export interface RateLimitsUpdatedEvent extends Base {
  type: 'rate_limits.updated';
  rate_limits: { name?: string; limit?: number; remaining?: number; reset_seconds?: number }[];
}
/** `error` (most are non-fatal; the socket stays open). */
export interface ErrorEvent extends Base {
  type: 'error';
  error: WireErrorBody;
}
/** `input_audio_buffer.speech_started`: the barge-in trigger. */
export interface SpeechStartedEvent extends Base {
  type: 'input_audio_buffer.speech_started';
  item_id: string;
  audio_start_ms: number;
}
/** `input_audio_buffer.speech_stopped`. */
export interface SpeechStoppedEvent extends Base {
  type: 'input_audio_buffer.speech_stopped';
  item_id: string;
  audio_end_ms: number;
}
/** `input_audio_buffer.committed`. */
export interface InputAudioCommittedEvent extends Base {
  type: 'input_audio_buffer.committed';
  item_id: string;
  previous_item_id?: string | null;
}
/** `input_audio_buffer.cleared`. */
export interface InputAudioClearedEvent extends Base {
  type: 'input_audio_buffer.cleared';
}
/** `input_audio_buffer.timeout_triggered` (server_vad `idle_timeout_ms`). */
export interface InputAudioTimeoutEvent extends Base {
  type: 'input_audio_buffer.timeout_triggered';
  item_id: string;
  audio_start_ms?: number;
  audio_end_ms?: number;
}
/** `conversation.item.added` (beta `conversation.item.created` is normalised to this). */
export interface ConversationItemAddedEvent extends Base {
  type: 'conversation.item.added';
  item: WireItem;
  previous_item_id?: string | null;
}
/** `conversation.item.done`. */
export interface ConversationItemDoneEvent extends Base {
  type: 'conversation.item.done';
  item: WireItem;
  previous_item_id?: string | null;
}
/** `conversation.item.truncated`. */
export interface ConversationItemTruncatedEvent extends Base {
  type: 'conversation.item.truncated';
  item_id: string;
  content_index?: number;
  audio_end_ms: number;
}
/** `conversation.item.deleted`. */
export interface ConversationItemDeletedEvent extends Base {
  type: 'conversation.item.deleted';
  item_id: string;
}
/** `conversation.item.input_audio_transcription.delta`. */
export interface InputTranscriptionDeltaEvent extends Base {
  type: 'conversation.item.input_audio_transcription.delta';
  item_id: string;
  content_index?: number;
  delta: string;
}
/** `conversation.item.input_audio_transcription.completed`. */
export interface InputTranscriptionCompletedEvent extends Base {
  type: 'conversation.item.input_audio_transcription.completed';
  item_id: string;
  content_index?: number;
  transcript: string;
}
/** `conversation.item.input_audio_transcription.failed`. */
export interface InputTranscriptionFailedEvent extends Base {
  type: 'conversation.item.input_audio_transcription.failed';
  item_id: string;
  error?: Partial<WireErrorBody>;
}
/** `response.created`. */
export interface ResponseCreatedEvent extends Base {
  type: 'response.created';
  response: WireResponse;
}
/** `response.done` (always sent, whatever the outcome). */
export interface ResponseDoneEvent extends Base {
  type: 'response.done';
  response: WireResponse;
}
/** `response.output_item.added`. */
export interface OutputItemAddedEvent extends Base {
  type: 'response.output_item.added';
  response_id: string;
  output_index?: number;
  item: WireItem;
}
/** `response.output_item.done` (the function-call trigger). */
export interface OutputItemDoneEvent extends Base {
  type: 'response.output_item.done';
  response_id: string;
  output_index?: number;
  item: WireItem;
}
/** `response.content_part.added`. */
export interface ContentPartAddedEvent extends Base {
  type: 'response.content_part.added';
  response_id: string;
  item_id: string;
  part?: WireContentPart;
}
/** `response.content_part.done`. */
export interface ContentPartDoneEvent extends Base {
  type: 'response.content_part.done';
  response_id: string;
  item_id: string;
  part?: WireContentPart;
}
/** `response.output_audio.delta` (beta `response.audio.delta`). */
export interface OutputAudioDeltaEvent extends Base {
  type: 'response.output_audio.delta';
  response_id: string;
  item_id: string;
  output_index?: number;
  content_index?: number;
  delta: string;
}
/** `response.output_audio.done` (beta `response.audio.done`). */
export interface OutputAudioDoneEvent extends Base {
  type: 'response.output_audio.done';
  response_id: string;
  item_id: string;
}
/** `response.output_audio_transcript.delta` (beta `response.audio_transcript.delta`). */
export interface OutputAudioTranscriptDeltaEvent extends Base {
  type: 'response.output_audio_transcript.delta';
  response_id: string;
  item_id: string;
  delta: string;
}
/** `response.output_audio_transcript.done` (beta `response.audio_transcript.done`). */
export interface OutputAudioTranscriptDoneEvent extends Base {
  type: 'response.output_audio_transcript.done';
  response_id: string;
  item_id: string;
  transcript: string;
}
/** `response.output_text.delta` (beta `response.text.delta`). */
export interface OutputTextDeltaEvent extends Base {
  type: 'response.output_text.delta';
  response_id: string;
  item_id: string;
  delta: string;
}
/** `response.output_text.done` (beta `response.text.done`). */
export interface OutputTextDoneEvent extends Base {
  type: 'response.output_text.done';
  response_id: string;
  item_id: string;
  text: string;
}
/** `response.function_call_arguments.delta`. */
export interface FunctionCallArgumentsDeltaEvent extends Base {
  type: 'response.function_call_arguments.delta';
  response_id?: string;
  item_id?: string;
  call_id: string;
  delta: string;
}
/** `response.function_call_arguments.done` (late-2025 servers send no `name`; take it from the item). */
export interface FunctionCallArgumentsDoneEvent extends Base {
  type: 'response.function_call_arguments.done';
  response_id?: string;
  item_id?: string;
  call_id: string;
  arguments: string;
  name?: string;
}

/** `mcp_list_tools.in_progress` / `.completed` / `.failed`: the API listing an MCP server's tools. */
export interface McpListToolsEvent extends Base {
  type: 'mcp_list_tools.in_progress' | 'mcp_list_tools.completed' | 'mcp_list_tools.failed';
  item_id: string;
}
/** `response.mcp_call_arguments.delta`. */
export interface McpCallArgumentsDeltaEvent extends Base {
  type: 'response.mcp_call_arguments.delta';
  response_id?: string;
  item_id: string;
  output_index?: number;
  delta: string;
}
/** `response.mcp_call_arguments.done`. */
export interface McpCallArgumentsDoneEvent extends Base {
  type: 'response.mcp_call_arguments.done';
  response_id?: string;
  item_id: string;
  output_index?: number;
  arguments: string;
}
/** `response.mcp_call.in_progress` / `.completed` / `.failed`. */
export interface McpCallStatusEvent extends Base {
  type: 'response.mcp_call.in_progress' | 'response.mcp_call.completed' | 'response.mcp_call.failed';
  item_id: string;
  output_index?: number;
}

/** Every server event the client understands, under its GA name. */
export type ServerEvent =
  | SessionCreatedEvent
  | SessionUpdatedEvent
  | ConversationCreatedEvent
  | RateLimitsUpdatedEvent
  | ErrorEvent
  | SpeechStartedEvent
  | SpeechStoppedEvent
  | InputAudioCommittedEvent
  | InputAudioClearedEvent
  | InputAudioTimeoutEvent
  | ConversationItemAddedEvent
  | ConversationItemDoneEvent
  | ConversationItemTruncatedEvent
  | ConversationItemDeletedEvent
  | InputTranscriptionDeltaEvent
  | InputTranscriptionCompletedEvent
  | InputTranscriptionFailedEvent
  | ResponseCreatedEvent
  | ResponseDoneEvent
  | OutputItemAddedEvent
  | OutputItemDoneEvent
  | ContentPartAddedEvent
  | ContentPartDoneEvent
  | OutputAudioDeltaEvent
  | OutputAudioDoneEvent
  | OutputAudioTranscriptDeltaEvent
  | OutputAudioTranscriptDoneEvent
  | OutputTextDeltaEvent
  | OutputTextDoneEvent
  | FunctionCallArgumentsDeltaEvent
  | FunctionCallArgumentsDoneEvent
  | McpListToolsEvent
  | McpCallArgumentsDeltaEvent
  | McpCallArgumentsDoneEvent
  | McpCallStatusEvent;

/** The GA `type` of a known server event. */
export type ServerEventType = ServerEvent['type'];

/** A frame that is not a known, well-formed server event. Never thrown; the caller logs and ignores it. */
export interface UnknownServerEvent {
  type: 'unknown';
  /** Why it was not understood. */
  reason: 'unknown_type' | 'malformed_json' | 'invalid_fields';
  /** The `type` field of the frame, when there was one. */
  rawType: string | undefined;
  /** A short human-readable explanation, e.g. `item_id: expected string`. */
  detail: string;
}

/** Server event narrowed by type. */
export type ServerEventOf<T extends ServerEventType> = Extract<ServerEvent, { type: T }>;

// ---------------------------------------------------------------------------------------------------
// Parser

type FieldKind = 'string' | 'number' | 'object' | 'array';
type FieldSpec = readonly [path: string, kind: FieldKind];

const S = 'string';
const N = 'number';
const O = 'object';
const A = 'array';

/** The fields the session relies on, per GA event type. */
const SPECS: { readonly [K in ServerEventType]: readonly FieldSpec[] } = {
  'session.created': [['session', O]],
  'session.updated': [['session', O]],
  'conversation.created': [],
  'rate_limits.updated': [['rate_limits', A]],
  error: [['error', O]],
  'input_audio_buffer.speech_started': [['item_id', S], ['audio_start_ms', N]],
  'input_audio_buffer.speech_stopped': [['item_id', S], ['audio_end_ms', N]],
  'input_audio_buffer.committed': [['item_id', S]],
  'input_audio_buffer.cleared': [],
  'input_audio_buffer.timeout_triggered': [['item_id', S]],
  'conversation.item.added': [['item', O], ['item.type', S]],
  'conversation.item.done': [['item', O], ['item.type', S]],
  'conversation.item.truncated': [['item_id', S], ['audio_end_ms', N]],
  'conversation.item.deleted': [['item_id', S]],
  'conversation.item.input_audio_transcription.delta': [['item_id', S], ['delta', S]],
  'conversation.item.input_audio_transcription.completed': [['item_id', S], ['transcript', S]],
  'conversation.item.input_audio_transcription.failed': [['item_id', S]],
  'response.created': [['response', O], ['response.id', S]],
  'response.done': [['response', O], ['response.id', S]],
  'response.output_item.added': [['response_id', S], ['item', O], ['item.type', S]],
  'response.output_item.done': [['response_id', S], ['item', O], ['item.type', S]],
  'response.content_part.added': [['response_id', S], ['item_id', S]],
  'response.content_part.done': [['response_id', S], ['item_id', S]],
  'response.output_audio.delta': [['response_id', S], ['item_id', S], ['delta', S]],
  'response.output_audio.done': [['response_id', S], ['item_id', S]],
  'response.output_audio_transcript.delta': [['response_id', S], ['item_id', S], ['delta', S]],
  'response.output_audio_transcript.done': [['response_id', S], ['item_id', S], ['transcript', S]],
  'response.output_text.delta': [['response_id', S], ['item_id', S], ['delta', S]],
  'response.output_text.done': [['response_id', S], ['item_id', S], ['text', S]],
  'response.function_call_arguments.delta': [['call_id', S], ['delta', S]],
  'response.function_call_arguments.done': [['call_id', S], ['arguments', S]],
  'mcp_list_tools.in_progress': [['item_id', S]],
  'mcp_list_tools.completed': [['item_id', S]],
  'mcp_list_tools.failed': [['item_id', S]],
  'response.mcp_call_arguments.delta': [['item_id', S], ['delta', S]],
  'response.mcp_call_arguments.done': [['item_id', S], ['arguments', S]],
  'response.mcp_call.in_progress': [['item_id', S]],
  'response.mcp_call.completed': [['item_id', S]],
  'response.mcp_call.failed': [['item_id', S]],
};

/** Beta event names and the GA names they are normalised to. */
export const BETA_EVENT_ALIASES: Readonly<Record<string, ServerEventType>> = {
  'response.audio.delta': 'response.output_audio.delta',
  'response.audio.done': 'response.output_audio.done',
  'response.audio_transcript.delta': 'response.output_audio_transcript.delta',
  'response.audio_transcript.done': 'response.output_audio_transcript.done',
  'response.text.delta': 'response.output_text.delta',
  'response.text.done': 'response.output_text.done',
  'conversation.item.created': 'conversation.item.added',
};

function isKnownType(type: string): type is ServerEventType {
  return Object.prototype.hasOwnProperty.call(SPECS, type);
}

function kindOf(v: unknown): FieldKind | 'other' {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number' && Number.isFinite(v)) return 'number';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'object' && v !== null) return 'object';
  return 'other';
}

function lookup(obj: Record<string, unknown>, path: string): unknown {
  let cur: unknown = obj;
  for (const key of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function unknown(reason: UnknownServerEvent['reason'], rawType: string | undefined, detail: string): UnknownServerEvent {
  return { type: 'unknown', reason, rawType, detail };
}

/**
 * Parse one text frame from the server. Never throws: malformed JSON, a missing `type`, an unknown
 * type or a known type missing a field we rely on all come back as an {@link UnknownServerEvent}.
 * Beta names are rewritten to GA names (the original is kept in `legacy_type`).
 */
export function parseServerEvent(raw: string): ServerEvent | UnknownServerEvent {
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch (err) {
    return unknown('malformed_json', undefined, err instanceof Error ? err.message : String(err));
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return unknown('malformed_json', undefined, 'frame is not a JSON object');
  }
  const obj = data as Record<string, unknown>;
  const rawType = obj.type;
  if (typeof rawType !== 'string') return unknown('invalid_fields', undefined, 'type: expected string');

  let type: string = rawType;
  const alias = BETA_EVENT_ALIASES[rawType];
  if (alias !== undefined) type = alias;
  if (!isKnownType(type)) return unknown('unknown_type', rawType, `unknown event type '${rawType}'`);

  for (const [path, kind] of SPECS[type]) {
    const got = kindOf(lookup(obj, path));
    if (got !== kind) return unknown('invalid_fields', rawType, `${path}: expected ${kind}, got ${got}`);
  }

  if (type === 'error') {
    // Servers have been seen omitting `message`; the session needs a string to log.
    const body = obj.error as Record<string, unknown>;
    if (typeof body.message !== 'string') body.message = '';
  }
  if (alias !== undefined) {
    obj.type = type;
    obj.legacy_type = rawType;
  }
  return obj as unknown as ServerEvent;
}

/** True when the parser did not understand the frame. */
export function isUnknownServerEvent(ev: ServerEvent | UnknownServerEvent): ev is UnknownServerEvent {
  return ev.type === 'unknown';
}

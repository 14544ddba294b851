/**
 * The GPT-Live WebSocket protocol (`wss://api.openai.com/v1/live/sessions`, Azure
 * `wss://<resource>.openai.azure.com/openai/v1/live/sessions`) as this agent speaks it: the client
 * events it sends, the server events it reads, and a strict parser of server frames.
 *
 * Facts from the Live reference (developers.openai.com/api/reference, resources/live; Azure
 * gpt-live-reference): the first client message is `session.start` with a strict `session` object
 * (unknown fields are rejected), and nothing else may be sent before `session.started`. Audio goes
 * both ways as base64 in one format chosen at start (`audio/pcm` at 16000 or 24000 Hz, or G.711 at
 * 8000 Hz), raw, no container. The voice model owns turn-taking: no client event creates, cancels
 * or truncates its speech, and output audio carries no response or item id. Transcripts of both
 * sides arrive as deltas with session-timeline `start_ms`/`end_ms` and no "done" event. Work the
 * voice model delegates goes to the client (`session.delegation.created`, answered with
 * `session.commentary.append` / `session.thinking.append` naming the delegation) or to a Responses
 * backend run by the service (its events arrive wrapped in `response.event`; client function calls
 * are answered with `response.item.create` + `response.create`). Usage is cumulative audio seconds.
 */

// ---------------------------------------------------------------------------------------------------
// Session configuration (client -> server, inside session.start / session.update)

/** Audio format of a primary WebSocket, for both directions. */
export type LiveWireAudioFormat =
  | { type: 'audio/pcm'; rate: 16000 | 24000 }
  | { type: 'audio/pcmu'; rate: 8000 }
  | { type: 'audio/pcma'; rate: 8000 };

/** How much the delegated Responses model reasons. */
export type LiveReasoningEffort = 'none' | 'minimal' | 'low' | 'medium' | 'high' | 'xhigh';

/** A function tool of the Responses backend (the agent's own tools: end_call, transfer_call, webhooks). */
export interface LiveWireFunctionTool {
  type: 'function';
  name: string;
  description?: string;
  parameters?: Record<string, unknown>;
  strict?: boolean;
}

/** A tool of the Responses backend: ours, or a hosted one passed through from the configuration. */
export type LiveWireTool = LiveWireFunctionTool | ({ type: string } & Record<string, unknown>);

/** `delegation.responses`: the backend model the service runs for delegated work. */
export interface LiveWireResponsesConfig {
  model: string;
  instructions?: string;
  max_output_tokens?: number;
  parallel_tool_calls?: boolean;
  reasoning?: { effort?: LiveReasoningEffort; summary?: 'concise' | 'detailed' | 'auto' };
  service_tier?: 'auto' | 'default' | 'flex' | 'priority';
  text?: { verbosity?: 'low' | 'medium' | 'high' };
  tool_choice?: 'auto' | 'none' | 'required';
  tools?: LiveWireTool[];
}

/** Who handles delegated work: this agent (`client`) or a service-run Responses backend. */
export type LiveWireDelegation = { type: 'client' } | { type: 'responses'; responses: LiveWireResponsesConfig };

/** One message of the text history a session starts with (at most 128, one text part each). */
export type LiveWireInputItem =
  | { type: 'message'; role: 'developer' | 'user'; content: [{ type: 'input_text'; text: string }] }
  | { type: 'message'; role: 'assistant'; content: [{ type: 'output_text'; text: string }] };

/** The `session` object of `session.start` (strict: only these fields). */
export interface LiveWireSessionConfig {
  model: string;
  instructions?: string;
  audio: { format: LiveWireAudioFormat; output: { voice: string } };
  delegation: LiveWireDelegation;
  input?: LiveWireInputItem[];
  store?: boolean;
}

/** Most messages `session.input` may hold (Live reference: SessionConfig.input). */
export const LIVE_MAX_INPUT_ITEMS = 128;

// ---------------------------------------------------------------------------------------------------
// Client events

/** A client event; `event_id` is stamped by the client when absent. */
export type LiveClientEvent = { event_id?: string } & (
  | { type: 'session.start'; session: LiveWireSessionConfig }
  | { type: 'session.update'; session: { delegation: LiveWireDelegation } }
  | { type: 'session.input_audio.append'; audio: string }
  | { type: 'session.input_audio.mute' | 'session.input_audio.unmute' | 'session.close' | 'response.create' }
  | {
      type: 'session.instructions.append' | 'session.thinking.append' | 'session.commentary.append';
      /** Required, nullable: null for general context, or the id of a client delegation being answered. */
      delegation_id: string | null;
      /** At most 500 tokens. */
      content: string;
    }
  | { type: 'response.item.create'; item: { type: 'function_call_output'; call_id: string; output: string } }
);

/** Type of a client event. */
export type LiveClientEventType = LiveClientEvent['type'];

// ---------------------------------------------------------------------------------------------------
// Server events

/** `session.started` / `session.updated`: the resolved configuration and the server's ids. */
export interface LiveSessionStartedEvent {
  type: 'session.started' | 'session.updated';
  event_id: string;
  client_event_id?: string;
  session: { id: string; expires_at: number; model: string } & Record<string, unknown>;
}

/** Model audio in the session format; no timestamps on the primary WebSocket. */
export interface LiveOutputAudioDeltaEvent {
  type: 'session.output_audio.delta';
  delta: string;
  start_ms?: number;
  end_ms?: number;
}

/** A transcript fragment of the caller (`input`) or the model (`output`), on the session timeline. */
export interface LiveTranscriptDeltaEvent {
  type: 'session.input_transcript.delta' | 'session.output_transcript.delta';
  event_id: string;
  delta: string;
  start_ms: number;
  end_ms: number;
}

/** The voice model handed work to the client or to the Responses backend. */
export interface LiveDelegationCreatedEvent {
  type: 'session.delegation.created';
  event_id: string;
  offset_ms: number;
  delegation: { id: string; target: 'client' | 'responses'; type: 'delegation'; response_id?: string };
}

/** A Responses streaming event of the backend, wrapped; dispatch on `event.type`, tolerate new ones. */
export interface LiveResponseEvent {
  type: 'response.event';
  event_id: string;
  delegation_id?: string | null;
  event: { type: string } & Record<string, unknown>;
}

/** Cumulative audio seconds of this server session (a total, not an increment). */
export interface LiveUsageUpdatedEvent {
  type: 'session.usage.updated';
  event_id: string;
  usage: { seconds: number };
  context_window?: { usage_ratio: number };
}

/** Why a session ended (Live reference: SessionClosedEvent.reason). */
export type LiveCloseReason = 'close_requested' | 'expired' | 'content' | 'remote_hangup' | 'connection_lost';

/** The session has finished: final usage and why. */
export interface LiveSessionClosedEvent {
  type: 'session.closed';
  event_id: string;
  reason: LiveCloseReason;
  usage: { seconds: number };
  session: Record<string, unknown>;
}

/** An error, usually about a client command (`error.client_event_id`). */
export interface LiveErrorEvent {
  type: 'error';
  event_id: string;
  client_event_id?: string;
  error: { code: string; message: string; type?: string; client_event_id?: string; param?: string };
}

/** A context append was accepted onto the timeline (not proof that anything was said). */
export interface LiveAppendedEvent {
  type: 'session.instructions.appended' | 'session.thinking.appended' | 'session.commentary.appended';
  event_id: string;
  client_event_id?: string;
  start_ms: number;
  end_ms: number;
}

/** An informational notice. */
export interface LiveInfoEvent {
  type: 'info';
  event_id: string;
  code: string;
  message: string;
}

/** Known events this client reads but does not act on (acknowledgements, sideband-only events). */
export interface LiveIgnoredEvent {
  type: (typeof IGNORED_TYPES)[number];
}

/** Every server event the parser accepts. */
export type LiveServerEvent =
  | LiveSessionStartedEvent
  | LiveOutputAudioDeltaEvent
  | LiveTranscriptDeltaEvent
  | LiveDelegationCreatedEvent
  | LiveResponseEvent
  | LiveUsageUpdatedEvent
  | LiveSessionClosedEvent
  | LiveErrorEvent
  | LiveAppendedEvent
  | LiveInfoEvent
  | LiveIgnoredEvent;

/** Type of a server event. */
export type LiveServerEventType = LiveServerEvent['type'];

/** Read but not acted on: mute acknowledgements, audio fixtures, and events only a sideband connection gets. */
const IGNORED_TYPES = [
  'session.input_audio.muted',
  'session.input_audio.unmuted',
  'session.input_audio.append',
  'session.output_audio.fixture.playing',
  'session.output_audio.fixture.played',
  'decision.event',
  'decision.item.created',
  'decision.item.deleted',
  'transport.dtmf.received',
  'transport.dtmf.sent',
  'transport.ringing',
  'transport.answered',
  'transport.failed',
] as const;

// ---------------------------------------------------------------------------------------------------
// Parser

/** Why a frame was refused. */
export type LiveParseFailure = 'not_json' | 'not_object' | 'no_type' | 'unknown_type' | 'bad_field';

/** The parser's verdict on one frame. */
export type LiveParseResult =
  | { ok: true; event: LiveServerEvent }
  | { ok: false; reason: LiveParseFailure; type: string | undefined; message: string };

type Check = (v: unknown) => string | undefined;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const kind = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

const str: Check = (v) => (typeof v === 'string' ? undefined : `expected string, got ${kind(v)}`);
const nonEmpty: Check = (v) => (typeof v === 'string' && v.length > 0 ? undefined : typeof v === 'string' ? 'expected a non-empty string' : `expected string, got ${kind(v)}`);
const ms: Check = (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? undefined : `expected a number of ms >= 0, got ${typeof v === 'number' ? v : kind(v)}`);
const seconds: Check = (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? undefined : `expected seconds >= 0, got ${typeof v === 'number' ? v : kind(v)}`);
const obj: Check = (v) => (isObj(v) ? undefined : `expected object, got ${kind(v)}`);
const optional = (c: Check): Check => (v) => (v === undefined ? undefined : c(v));
const nullableStr: Check = (v) => (v === undefined || v === null || typeof v === 'string' ? undefined : `expected string or null, got ${kind(v)}`);
const oneOfValues = (values: readonly string[]): Check => (v) =>
  typeof v === 'string' && values.includes(v) ? undefined : `expected one of ${values.join('|')}, got ${typeof v === 'string' ? `'${v}'` : kind(v)}`;
const ratio: Check = (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? undefined : `expected a ratio >= 0, got ${typeof v === 'number' ? v : kind(v)}`);

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
/** Standard base64 with padding: what the reference's "Base64-encoded raw audio" means. */
export function base64Problem(v: unknown): string | undefined {
  if (typeof v !== 'string') return `expected base64 string, got ${kind(v)}`;
  if (v.length % 4 !== 0 || !BASE64_RE.test(v)) return 'not base64 (standard alphabet, padded)';
  return undefined;
}

/** Field checks per event type (dotted paths); extra fields are allowed, as the service adds them. */
const SPECS: Record<Exclude<LiveServerEventType, LiveIgnoredEvent['type']>, readonly (readonly [string, Check])[]> = {
  'session.started': [['event_id', str], ['session', obj], ['session.id', nonEmpty], ['session.expires_at', seconds], ['session.model', str]],
  'session.updated': [['event_id', str], ['session', obj], ['session.id', nonEmpty], ['session.expires_at', seconds], ['session.model', str]],
  'session.output_audio.delta': [['delta', base64Problem], ['start_ms', optional(ms)], ['end_ms', optional(ms)]],
  'session.input_transcript.delta': [['event_id', str], ['delta', str], ['start_ms', ms], ['end_ms', ms]],
  'session.output_transcript.delta': [['event_id', str], ['delta', str], ['start_ms', ms], ['end_ms', ms]],
  'session.delegation.created': [
    ['event_id', str],
    ['offset_ms', ms],
    ['delegation', obj],
    ['delegation.id', nonEmpty],
    ['delegation.target', oneOfValues(['client', 'responses'])],
    ['delegation.response_id', optional(str)],
  ],
  'response.event': [['event_id', str], ['event', obj], ['event.type', nonEmpty], ['delegation_id', nullableStr]],
  'session.usage.updated': [['event_id', str], ['usage', obj], ['usage.seconds', seconds], ['context_window', optional(obj)], ['context_window.usage_ratio', optional(ratio)]],
  'session.closed': [
    ['event_id', str],
    ['reason', oneOfValues(['close_requested', 'expired', 'content', 'remote_hangup', 'connection_lost'])],
    ['usage', obj],
    ['usage.seconds', seconds],
    ['session', obj],
  ],
  // error.type is required by the reference, but an error is never dropped for the lack of its category.
  error: [['event_id', str], ['error', obj], ['error.code', str], ['error.message', str], ['error.type', optional(str)], ['error.client_event_id', optional(str)], ['error.param', optional(str)]],
  'session.instructions.appended': [['event_id', str], ['start_ms', ms], ['end_ms', ms]],
  'session.thinking.appended': [['event_id', str], ['start_ms', ms], ['end_ms', ms]],
  'session.commentary.appended': [['event_id', str], ['start_ms', ms], ['end_ms', ms]],
  info: [['event_id', str], ['code', str], ['message', str]],
};

function lookup(o: Record<string, unknown>, path: string): unknown {
  let cur: unknown = o;
  for (const key of path.split('.')) {
    if (!isObj(cur)) return undefined;
    cur = cur[key];
  }
  return cur;
}

/**
 * Parse one text frame. Never throws: a frame that is not a JSON object, has no string `type`, has
 * a type this protocol does not define, or a field of the wrong type or value comes back refused,
 * with a message naming the event type and the field (`session.output_audio.delta.delta: not base64`).
 */
export function parseLiveServerEvent(raw: string): LiveParseResult {
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch (err) {
    return { ok: false, reason: 'not_json', type: undefined, message: `frame is not JSON: ${(err as Error).message}` };
  }
  if (!isObj(data)) return { ok: false, reason: 'not_object', type: undefined, message: `frame is not a JSON object (got ${kind(data)})` };
  const type = data.type;
  if (typeof type !== 'string' || type === '') return { ok: false, reason: 'no_type', type: undefined, message: `type: expected a non-empty string, got ${kind(type)}` };
  if ((IGNORED_TYPES as readonly string[]).includes(type)) return { ok: true, event: data as unknown as LiveServerEvent };
  const spec = (SPECS as Record<string, readonly (readonly [string, Check])[]>)[type];
  if (spec === undefined) return { ok: false, reason: 'unknown_type', type, message: `unknown event type '${type}'` };
  for (const [path, check] of spec) {
    const problem = check(lookup(data, path));
    if (problem !== undefined) return { ok: false, reason: 'bad_field', type, message: `${type}.${path}: ${problem}` };
  }
  return { ok: true, event: data as unknown as LiveServerEvent };
}

/** A nested Responses event's function call, when it is one that finished (`response.output_item.done`). */
export interface LiveFunctionCall {
  callId: string;
  name: string;
  arguments: string;
}

/**
 * The function call a nested `response.output_item.done` carries, or a problem naming the field,
 * or undefined when the item is something else (a hosted tool's call, a message).
 */
export function functionCallOf(event: { type: string } & Record<string, unknown>): LiveFunctionCall | { problem: string } | undefined {
  if (event.type !== 'response.output_item.done') return undefined;
  const item = event.item;
  if (!isObj(item)) return { problem: `response.event.event.item: expected object, got ${kind(item)}` };
  if (item.type !== 'function_call') return undefined;
  for (const f of ['call_id', 'name', 'arguments'] as const) {
    if (typeof item[f] !== 'string' || (f !== 'arguments' && item[f] === '')) {
      return { problem: `response.event.event.item.${f}: expected ${f === 'arguments' ? 'string' : 'a non-empty string'}, got ${kind(item[f])}` };
    }
  }
  if (item.status !== undefined && item.status !== 'completed') return { problem: `response.event.event.item.status: function call not completed ('${String(item.status)}')` };
  return { callId: item.call_id as string, name: item.name as string, arguments: item.arguments as string };
}

/** Token usage of a backend response (Responses API shape), as the nested lifecycle events carry it. */
export interface LiveBackendUsage {
  input_tokens?: number;
  output_tokens?: number;
  total_tokens?: number;
  input_tokens_details?: { cached_tokens?: number };
  output_tokens_details?: { reasoning_tokens?: number };
}

/** `response.usage` of a nested `response.completed` / `failed` / `incomplete`, when present and an object. */
export function backendUsageOf(event: Record<string, unknown>): LiveBackendUsage | undefined {
  const r = event.response;
  if (!isObj(r) || !isObj(r.usage)) return undefined;
  return r.usage as LiveBackendUsage;
}

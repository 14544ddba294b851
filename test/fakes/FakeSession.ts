/**
 * One WebSocket session of the fake OpenAI Realtime server (GA protocol, realtime-protocol.md).
 * It owns the session config, the input audio timeline and energy VAD, the conversation, and the
 * response runner that streams scripted audio in bursts faster than real time. Tests reach it
 * through {@link FakeRealtimeServer.sessions} to inspect what the client sent and to inject faults.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { RawData, WebSocket } from 'ws';
import { AI_SAMPLE_RATE } from '../../src/audio/format';
import {
  Decimator24to8,
  concatPcm,
  decodeWire,
  encodeWire,
  synthTone,
  wireBytesPerSample,
  wireSampleRate,
  type ToneSpec,
  type WireFormat,
} from './audio';
import { EnergyVad, type VadSettings } from './vad';
import { McpConnection, McpFailure, type McpError, type McpListedTool } from './mcpClient';
import { validateClientEvent, type SchemaProblem } from './schema';

/** A JSON object as it travels on the wire. */
export type Json = Record<string, unknown>;

/** A spoken (or, in text mode, written) assistant message. `audio` is 24 kHz PCM or a tone to synthesize. */
export interface MessageStep {
  audio?: Int16Array | ToneSpec;
  transcript?: string;
}

/** A function call the model makes; `arguments` is sent as JSON unless it is already a string. */
export interface FunctionCallStep {
  functionCall: { name: string; arguments: unknown; callId?: string };
}

/**
 * A call of a tool on one of the session's MCP servers (the model's decision). The fake lists the
 * server's tools first; a tool the server does not offer (or `allowed_tools` hides) is not called
 * (recorded in `mcpSkipped`). A call the tool's `require_approval` covers becomes an
 * `mcp_approval_request` item; once the client approves it, the next response makes the call.
 */
export interface McpCallStep {
  mcpCall: { serverLabel: string; name: string; arguments: unknown };
}

/** A pause inside a response before the next step (simulates model think time). */
export interface DelayStep {
  delayMs: number;
}

/** One output of a scripted response; each message or function call becomes one output item. */
export type Step = MessageStep | FunctionCallStep | McpCallStep | DelayStep;

/** The user turn a response answers: its audio at the native input rate, or its text. */
export interface UserTurn {
  itemId: string;
  /** PCM at `sampleRate`; empty for text items. */
  audio: Int16Array;
  sampleRate: number;
  format: WireFormat;
  durationMs: number;
  /** Concatenated input_text of a text item, if any. */
  text?: string;
}

/** What caused a response. */
export type ResponseTrigger = 'vad' | 'response.create' | 'idle_timeout';

/** Everything a respond script may look at to decide what the assistant says. */
export interface RespondContext {
  session: FakeSession;
  responseId: string;
  trigger: ResponseTrigger;
  /** 0-based number of this response within the session. */
  index: number;
  /** The VAD turn that triggered it, else the latest user item in the conversation. */
  userItem: UserTurn | null;
  /** `response.instructions` if given, else the session instructions. */
  instructions: string;
  /** The raw `response` object of response.create (undefined for VAD-created responses). */
  response: Json | undefined;
  /** Wire views of the conversation items before this response. */
  conversation: readonly Json[];
  /** function_call_output items added since the previous response started. */
  functionOutputs: ReadonlyArray<{ callId: string; output: string }>;
  /** mcp_approval_response items added since the previous response started (approved calls run first in this response). */
  mcpApprovals: ReadonlyArray<{ requestId: string; serverLabel: string; name: string; approve: boolean }>;
}

/** Decides what a response says. */
export type RespondScript = (ctx: RespondContext) => Step[] | Promise<Step[]>;

/** A conversation item as the fake keeps it. */
export interface FakeItem {
  id: string;
  type: 'message' | 'function_call' | 'function_call_output' | 'mcp_list_tools' | 'mcp_call' | 'mcp_approval_request' | 'mcp_approval_response';
  role?: 'user' | 'assistant' | 'system';
  status: 'in_progress' | 'completed' | 'incomplete';
  /** Wire content parts (never audio bytes). */
  content: Json[];
  callId?: string;
  name?: string;
  arguments?: string;
  output?: string;
  /** MCP items: the server's label. */
  serverLabel?: string;
  /** mcp_list_tools: what the server listed. */
  tools?: Json[];
  /** mcp_call: the approval request it answers; mcp_approval_response: the one it answers. */
  approvalRequestId?: string;
  /** mcp_approval_response. */
  approve?: boolean;
  reason?: string | null;
  /** mcp_call: why it failed. */
  mcpError?: McpError;
  /** User audio at its native rate. */
  audio?: Int16Array;
  sampleRate?: number;
  format?: WireFormat;
  /** Assistant audio generated for this item, 24 kHz. */
  generatedPcm?: Int16Array;
  /** Assistant audio delivered to the client so far, in ms. */
  deliveredMs: number;
  /** Assistant transcript (or text) produced for this item; kept for billing even after a truncate. */
  transcript?: string;
  /** Where a conversation.item.truncate cut this item, in ms. */
  truncatedAtMs?: number;
  responseId?: string;
}

/** A successful conversation.item.truncate, with what had been delivered at that moment. */
export interface TruncationRecord {
  itemId: string;
  contentIndex: number;
  audioEndMs: number;
  deliveredMs: number;
  /** True when the truncated item's response was still streaming. */
  responseActive: boolean;
  /** Received-audio timeline position at the time. */
  atReceivedMs: number;
}

/** Token usage as reported in `response.done.response.usage`. */
export interface Usage {
  total_tokens: number;
  input_tokens: number;
  output_tokens: number;
  input_token_details: {
    text_tokens: number;
    audio_tokens: number;
    image_tokens: number;
    cached_tokens: number;
    cached_tokens_details: { text_tokens: number; audio_tokens: number; image_tokens: number };
  };
  output_token_details: { text_tokens: number; audio_tokens: number };
}

/** Final state of one response. */
export interface ResponseRecord {
  id: string;
  trigger: ResponseTrigger;
  status: 'in_progress' | 'completed' | 'cancelled' | 'incomplete' | 'failed';
  reason?: string;
  conversation: 'auto' | 'none';
  outputItemIds: string[];
  /** Assistant audio delivered by this response, ms. */
  audioMs: number;
  usage?: Usage;
}

/** One logged event; `dir` is 'in' for client events and 'out' for server events. Audio payloads are summarized. */
export interface LoggedEvent {
  seq: number;
  dir: 'in' | 'out';
  event: Json;
}

/** Matches an event by type or by predicate. */
export type EventMatcher = string | ((entry: LoggedEvent) => boolean);

/** One append's worth of received input audio, decoded to its native rate. */
export interface ReceivedSegment {
  format: WireFormat;
  sampleRate: number;
  startMs: number;
  samples: Int16Array;
}

/** Tunables a session inherits from the server. */
export interface SessionTuning {
  respond: RespondScript;
  burstFactor: number;
  chunkMs: number;
  responseLatencyMs: number;
  semanticVadSilenceMs: number;
  vadMinSpeechMs: number;
  maxReceivedAudioMs: number;
  maxLoggedEvents: number;
  maxConversationItems: number;
  maxSendBufferBytes: number;
  transcribe?: (turn: UserTurn) => string;
}

/** Default instructions, visible in session.created as on the real service. */
export const DEFAULT_INSTRUCTIONS =
  'You are a helpful, witty, and friendly AI. Your voice and personality should be warm and engaging.';

const MAX_APPEND_BYTES = 15 * 1024 * 1024;
const MIN_COMMIT_MS = 100;
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A random id in the service's style, e.g. `sess_Ab3...`. */
export function newId(prefix: string): string {
  const bytes = randomBytes(20);
  let s = '';
  for (const b of bytes) s += ID_ALPHABET[b % ID_ALPHABET.length];
  return `${prefix}_${s}`;
}

/** Text token estimate used in usage: one token per 4 characters, rounded up. */
export function textTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** Audio tokens per the realtime-costs guide: user audio 1 token/100 ms, assistant audio 1 token/50 ms. */
export function audioTokens(ms: number, role: 'user' | 'assistant'): number {
  return Math.ceil(Math.max(0, ms) / (role === 'user' ? 100 : 50));
}

/** Default server_vad settings of a fresh session (§2). */
export function defaultServerVad(): Json {
  return {
    type: 'server_vad',
    threshold: 0.5,
    prefix_padding_ms: 300,
    silence_duration_ms: 500,
    idle_timeout_ms: null,
    create_response: true,
    interrupt_response: true,
  };
}

function defaultSemanticVad(): Json {
  return { type: 'semantic_vad', eagerness: 'auto', create_response: true, interrupt_response: true };
}

function normalizeFormat(f: Json): Json {
  return f['type'] === 'audio/pcm' ? { type: 'audio/pcm', rate: 24000 } : { type: f['type'] };
}

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

interface McpServerState {
  /** The session's `{type: "mcp"}` tool as last set. */
  tool: Json;
  key: string;
  conn: McpConnection;
  /** Settles when listing is over (tools null when it failed). */
  listing: Promise<void>;
  tools: McpListedTool[] | null;
  /** Why listing failed. */
  listError?: string;
}

/** Whether a tool passes an `McpToolFilter` (`tool_names`, `read_only`). */
function filterMatches(filter: Json | undefined, tool: McpListedTool): boolean {
  if (!filter) return false;
  const names = filter['tool_names'] as string[] | undefined;
  if (names && names.includes(tool.name)) return true;
  return filter['read_only'] === true && tool.annotations?.['readOnlyHint'] === true;
}

/** Reasoning-capable Realtime models (gpt-realtime-2 and later) take `reasoning` and `parallel_tool_calls`. */
function reasoningModel(model: string): boolean {
  const m = /^gpt-realtime-(\d+)/.exec(model);
  return m !== null && Number(m[1]) >= 2 && Number(m[1]) < 2000;
}

interface CurrentMessage {
  item: FakeItem;
  outputIndex: number;
  audioMode: boolean;
  transcriptSent: string;
}

interface ActiveResponse {
  record: ResponseRecord;
  finished: boolean;
  outputs: FakeItem[];
  current: CurrentMessage | null;
  format: WireFormat;
  voice: string;
  modalities: string[];
  maxOutputTokens: number | 'inf';
  metadata: Json | null;
  inputTokens: { text: number; audio: number };
  wake: (() => void) | null;
}

/**
 * Server side of one Realtime WebSocket session. Created by {@link FakeRealtimeServer}; tests read
 * its state and use its controls (`drop`, `expire`, `send`, `waitFor`).
 */
export class FakeSession {
  /** `sess_...` id, as sent in session.created. */
  readonly id: string;
  /** Request URL of the upgrade (path and query). */
  readonly url: string;
  /** Model from the URL query. */
  readonly model: string;
  /** Upgrade request headers as received. */
  readonly headers: IncomingHttpHeaders;
  /** `conv_...` id of the default conversation. */
  readonly conversationId = newId('conv');
  /** Effective config after each successful update; [0] is the one sent in session.created. */
  readonly configHistory: Json[] = [];
  /** Successful truncations, in order. */
  readonly truncations: TruncationRecord[] = [];
  /** Every response created in this session. */
  readonly responses: ResponseRecord[] = [];
  /** `error` bodies sent to the client, in order. */
  readonly errors: Json[] = [];
  /** Conversation items, in conversation order. */
  readonly items: FakeItem[] = [];
  /** Counters of everything the fake dropped or skipped because a bound was reached. */
  readonly dropped = {
    loggedEvents: 0,
    receivedSamples: 0,
    conversationItems: 0,
    unsentEvents: 0,
    /** VAD turns whose create_response was skipped because a response was already active. */
    autoResponses: 0,
    backpressureWaits: 0,
  };
  /** Per-session override of the server's respond script. */
  respond: RespondScript;
  /** Scripted MCP calls not made: server not declared, or tool not listed or not allowed. */
  readonly mcpSkipped: string[] = [];

  /** What listing each MCP server's tools gave: the tool names, or the error. */
  mcpListing(): Record<string, string[] | { error: string }> {
    const out: Record<string, string[] | { error: string }> = {};
    for (const [label, s] of this.mcp) out[label] = s.tools ? s.tools.map((t) => t.name) : { error: s.listError ?? 'not listed yet' };
    return out;
  }

  private readonly ws: WebSocket;
  private readonly tuning: SessionTuning;
  private readonly ee = new EventEmitter();
  private readonly log: LoggedEvent[] = [];
  private seq = 0;
  private readonly segments: ReceivedSegment[] = [];
  private storedMs = 0;
  private receivedMsValue = 0;
  private bufferStartMs = 0;
  private readonly vad: EnergyVad;
  private speechItemId: string | null = null;
  private speechStartMs = 0;
  private idleDeadlineMs: number | null = null;
  private active: ActiveResponse | null = null;
  private readonly outOfBand = new Set<ActiveResponse>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private audioProduced = false;
  private pendingFunctionOutputs: Array<{ callId: string; output: string }> = [];
  private pendingMcpApprovals: Array<{ requestId: string; serverLabel: string; name: string; approve: boolean }> = [];
  /** Approved calls not yet made: the next response makes them. */
  private approvedCalls: Array<{ requestId: string; serverLabel: string; name: string; arguments: string }> = [];
  private readonly mcp = new Map<string, McpServerState>();
  private responseCount = 0;
  private closedValue = false;
  private closeInfo: { code: number; reason: string } | null = null;

  constructor(ws: WebSocket, url: string, model: string, headers: IncomingHttpHeaders, tuning: SessionTuning) {
    this.ws = ws;
    this.url = url;
    this.model = model;
    this.headers = headers;
    this.tuning = tuning;
    this.respond = tuning.respond;
    this.id = newId('sess');
    this.ee.setMaxListeners(0);
    this.configHistory.push(this.defaultConfig());
    this.vad = new EnergyVad(this.vadSettings() ?? { threshold: 0.5, prefixPaddingMs: 300, silenceDurationMs: 500 });
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', (code, reason) => this.onClose(code, reason.toString()));
    ws.on('error', () => {
      // A socket error is always followed by 'close'; the close handler does the cleanup.
    });
  }

  /** Send session.created and conversation.created (called once the upgrade is done). */
  start(): void {
    this.sendEvent({ type: 'session.created', session: clone(this.config) });
    this.sendEvent({ type: 'conversation.created', conversation: { id: this.conversationId, object: 'realtime.conversation' } });
  }

  /** Reject the legacy beta shape as the service does: error beta_api_shape_disabled, then close 4000. */
  rejectBeta(): void {
    this.sendError(
      'beta_api_shape_disabled',
      'The beta Realtime API shape (OpenAI-Beta: realtime=v1) is disabled. Remove the header and use the GA interface.',
      null,
      null,
    );
    this.ws.close(4000, 'beta_api_shape_disabled');
  }

  /** The current effective session config (full GA session object). */
  get config(): Json {
    return this.configHistory[this.configHistory.length - 1]!;
  }

  /** True once the socket has closed. */
  get closed(): boolean {
    return this.closedValue;
  }

  /** Close code and reason once closed. */
  get closeStatus(): { code: number; reason: string } | null {
    return this.closeInfo;
  }

  /** Milliseconds of input audio received so far (the timeline VAD positions refer to). */
  get receivedMs(): number {
    return this.receivedMsValue;
  }

  /** True while the VAD is inside a user turn. */
  get speaking(): boolean {
    return this.vad.speaking;
  }

  /** The response currently writing to the default conversation, if any. */
  get activeResponseId(): string | null {
    return this.active?.record.id ?? null;
  }

  /** Input format of the session now. */
  get inputFormat(): WireFormat {
    return (this.audioSection('input')['format'] as Json)['type'] as WireFormat;
  }

  /** Output format of the session now. */
  get outputFormat(): WireFormat {
    return (this.audioSection('output')['format'] as Json)['type'] as WireFormat;
  }

  /** Retained input audio, one segment per append, on the received timeline. */
  get receivedSegments(): readonly ReceivedSegment[] {
    return this.segments;
  }

  /**
   * Retained input audio in the most recent input format, at its native rate (24 kHz for pcm,
   * 8 kHz for G.711). `droppedSamples` counts audio evicted by the retention cap.
   */
  receivedAudio(): { format: WireFormat; sampleRate: number; samples: Int16Array; startMs: number; droppedSamples: number } {
    const last = this.segments[this.segments.length - 1];
    const format = last?.format ?? this.inputFormat;
    const same = this.segments.filter((s) => s.format === format);
    return {
      format,
      sampleRate: wireSampleRate(format),
      samples: concatPcm(same.map((s) => s.samples)),
      startMs: same[0]?.startMs ?? 0,
      droppedSamples: this.dropped.receivedSamples,
    };
  }

  /** Client events received, in order (append audio summarized as `[N base64 chars]`). */
  get receivedEvents(): Json[] {
    return this.log.filter((e) => e.dir === 'in').map((e) => e.event);
  }

  /** Server events sent, in order (audio deltas summarized). */
  get sentEvents(): Json[] {
    return this.log.filter((e) => e.dir === 'out').map((e) => e.event);
  }

  /** Every logged event with its sequence number. */
  get events(): readonly LoggedEvent[] {
    return this.log;
  }

  /** Sequence number the next logged event will get; pass it to waitFor to also match events from here on. */
  mark(): number {
    return this.seq;
  }

  /**
   * Resolve with the first logged event (either direction) matching `matcher`. Only future events
   * count unless `since` (from {@link mark}) is given, in which case already-logged events from that
   * sequence number on are searched first.
   */
  waitFor(matcher: EventMatcher, timeoutMs = 5000, since?: number): Promise<LoggedEvent> {
    const test = typeof matcher === 'string' ? (e: LoggedEvent) => e.event['type'] === matcher : matcher;
    if (since !== undefined) {
      const hit = this.log.find((e) => e.seq >= since && test(e));
      if (hit) return Promise.resolve(hit);
    }
    return new Promise((resolve, reject) => {
      const onLog = (e: LoggedEvent): void => {
        if (!test(e)) return;
        cleanup();
        resolve(e);
      };
      const onClose = (): void => {
        cleanup();
        reject(new Error(`waitFor failed: session closed [session:${this.id}, matcher:${String(matcher)}]`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`waitFor timed out [session:${this.id}, matcher:${String(matcher)}, timeoutMs:${timeoutMs}]`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.ee.off('log', onLog);
        this.ee.off('close', onClose);
      };
      this.ee.on('log', onLog);
      if (this.closedValue) onClose();
      else this.ee.on('close', onClose);
    });
  }

  /** Subscribe to logged events (used by the server to fan out). */
  onLog(listener: (e: LoggedEvent) => void): void {
    this.ee.on('log', listener);
  }

  /** Subscribe to the close of the socket. */
  onClosed(listener: (code: number, reason: string) => void): void {
    this.ee.on('close', listener);
  }

  /** Resolves with the close code and reason once the socket has closed (at once if it already has). */
  waitClosed(): Promise<{ code: number; reason: string }> {
    if (this.closeInfo) return Promise.resolve(this.closeInfo);
    return new Promise((resolve) => this.ee.once('close', (code: number, reason: string) => resolve({ code, reason })));
  }

  /** Send an arbitrary server event (an `event_id` is added when missing). */
  send(event: Json): void {
    this.sendEvent(event);
  }

  /** Kill the TCP connection abruptly: no close frame, in-flight responses are lost. */
  drop(): void {
    this.ws.terminate();
  }

  /** End the session as the 60-minute cap does: error `session_expired`, then a normal close. */
  expire(): void {
    if (this.closedValue) return;
    this.cancelAllSilently();
    this.sendError('session_expired', 'Your session hit the maximum duration of 60 minutes.', null, null);
    this.ws.close(1000, 'session_expired');
  }

  /** Close the socket with a close frame. Idempotent. */
  close(code = 1000, reason = ''): void {
    if (this.closedValue) return;
    this.ws.close(code, reason);
  }

  // ---------------------------------------------------------------------------------------------
  // Transport

  private onClose(code: number, reason: string): void {
    if (this.closedValue) return;
    this.closedValue = true;
    this.closeInfo = { code, reason };
    this.cancelAllSilently();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.ee.emit('close', code, reason);
  }

  private cancelAllSilently(): void {
    for (const r of [this.active, ...this.outOfBand]) {
      if (!r || r.finished) continue;
      r.finished = true;
      r.record.status = 'failed';
      r.record.reason = 'disconnected';
      r.wake?.();
    }
    this.active = null;
    this.outOfBand.clear();
  }

  private pushLog(dir: 'in' | 'out', event: Json): void {
    const entry: LoggedEvent = { seq: this.seq++, dir, event };
    this.log.push(entry);
    if (this.log.length > this.tuning.maxLoggedEvents) {
      // Drop a tenth at once: shifting one entry per event would make a full log O(n) per event.
      const n = Math.max(1, Math.ceil(this.tuning.maxLoggedEvents / 10));
      this.log.splice(0, n);
      this.dropped.loggedEvents += n;
    }
    this.ee.emit('log', entry);
  }

  private sendEvent(event: Json): void {
    const full: Json = { event_id: newId('event'), ...event };
    if (this.closedValue || this.ws.readyState !== this.ws.OPEN) {
      this.dropped.unsentEvents++;
      return;
    }
    this.ws.send(JSON.stringify(full));
    if (typeof full['delta'] === 'string' && full['type'] === 'response.output_audio.delta') {
      this.pushLog('out', { ...full, delta: `[${(full['delta'] as string).length} base64 chars]` });
    } else {
      this.pushLog('out', full);
    }
  }

  private sendError(code: string, message: string, param: string | null, clientEventId: string | null, type = 'invalid_request_error'): void {
    const error: Json = { type, code, message, param, event_id: clientEventId };
    this.errors.push(error);
    this.sendEvent({ type: 'error', error });
  }

  private problem(p: SchemaProblem, clientEventId: string | null): void {
    this.sendError(p.code, p.message, p.param, clientEventId);
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.closedValue) return;
    if (isBinary) {
      this.pushLog('in', { type: '[binary frame]' });
      this.sendError('invalid_type', 'Binary frames are not supported; send JSON text events.', null, null);
      return;
    }
    const text = Array.isArray(data)
      ? Buffer.concat(data).toString('utf8')
      : Buffer.isBuffer(data)
        ? data.toString('utf8')
        : Buffer.from(new Uint8Array(data)).toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      this.pushLog('in', { type: '[invalid json]', length: text.length });
      this.sendError('invalid_json', `We could not parse the JSON body of your request. [length:${text.length}]`, null, null);
      return;
    }
    const ev = isObj(parsed) ? parsed : null;
    if (ev && ev['type'] === 'input_audio_buffer.append' && typeof ev['audio'] === 'string') {
      this.pushLog('in', { ...ev, audio: `[${(ev['audio'] as string).length} base64 chars]` });
    } else {
      this.pushLog('in', ev ?? { type: '[non-object]', value: parsed as unknown });
    }
    const clientEventId = ev && typeof ev['event_id'] === 'string' ? (ev['event_id'] as string) : null;
    const p = validateClientEvent(parsed);
    if (p) {
      this.problem(p, clientEventId);
      return;
    }
    this.dispatch(ev as Json, clientEventId);
  }

  private dispatch(ev: Json, eid: string | null): void {
    switch (ev['type']) {
      case 'session.update':
        return this.onSessionUpdate(ev['session'] as Json, eid);
      case 'input_audio_buffer.append':
        return this.onAppend(ev['audio'] as string, eid);
      case 'input_audio_buffer.commit':
        return this.onCommit(eid);
      case 'input_audio_buffer.clear':
        return this.onClear();
      case 'conversation.item.create':
        return this.onItemCreate(ev, eid);
      case 'conversation.item.truncate':
        return this.onTruncate(ev, eid);
      case 'conversation.item.delete':
        return this.onItemDelete(ev['item_id'] as string, eid);
      case 'conversation.item.retrieve':
        return this.onItemRetrieve(ev['item_id'] as string, eid);
      case 'response.create':
        return this.onResponseCreate(ev['response'] as Json | undefined, eid);
      case 'response.cancel':
        return this.onResponseCancel(ev['response_id'] as string | undefined, eid);
      case 'output_audio_buffer.clear':
        return this.sendError(
          'unsupported_for_transport',
          'output_audio_buffer.clear is only supported for WebRTC and SIP sessions; on a WebSocket the client owns playback.',
          'type',
          eid,
        );
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Session config

  private defaultConfig(): Json {
    return {
      type: 'realtime',
      object: 'realtime.session',
      id: this.id,
      model: this.model,
      output_modalities: ['audio'],
      instructions: DEFAULT_INSTRUCTIONS,
      tools: [],
      tool_choice: 'auto',
      max_output_tokens: 'inf',
      tracing: null,
      truncation: 'auto',
      prompt: null,
      expires_at: Math.floor(Date.now() / 1000) + 3600,
      include: null,
      audio: {
        input: {
          format: { type: 'audio/pcm', rate: 24000 },
          transcription: null,
          noise_reduction: null,
          turn_detection: defaultServerVad(),
        },
        output: {
          format: { type: 'audio/pcm', rate: 24000 },
          voice: 'marin',
          speed: 1,
        },
      },
    };
  }

  private audioSection(which: 'input' | 'output', cfg: Json = this.config): Json {
    return (cfg['audio'] as Json)[which] as Json;
  }

  /** What the reference says beyond the shapes: a problem, or null. */
  private sessionRules(upd: Json): SchemaProblem | null {
    const tools = Array.isArray(upd['tools']) ? (upd['tools'] as Json[]) : [];
    const labels = new Set<string>();
    for (let i = 0; i < tools.length; i++) {
      const t = tools[i]!;
      if (t['type'] !== 'mcp') continue;
      const p = `session.tools[${i}]`;
      if (t['server_url'] === undefined && t['connector_id'] === undefined && t['tunnel_id'] === undefined) {
        return { code: 'missing_required_parameter', param: `${p}.server_url`, message: "One of 'server_url', 'connector_id' or 'tunnel_id' must be provided." };
      }
      if (typeof t['server_url'] === 'string') {
        let ok = false;
        try {
          ok = ['http:', 'https:'].includes(new URL(t['server_url'] as string).protocol);
        } catch {
          ok = false;
        }
        if (!ok) return { code: 'invalid_value', param: `${p}.server_url`, message: `Invalid URL: '${t['server_url'] as string}'.` };
      }
      const label = t['server_label'] as string;
      if (labels.has(label)) return { code: 'invalid_value', param: `${p}.server_label`, message: `Duplicate MCP server label: '${label}'.` };
      labels.add(label);
    }
    for (const key of ['reasoning', 'parallel_tool_calls']) {
      if (upd[key] !== undefined && !reasoningModel(this.model)) {
        return { code: 'unsupported_parameter', param: `session.${key}`, message: `Unsupported parameter: '${key}' is not supported with the ${this.model} model.` };
      }
    }
    const tr = isObj(upd['audio']) && isObj((upd['audio'] as Json)['input']) ? ((upd['audio'] as Json)['input'] as Json)['transcription'] : undefined;
    if (isObj(tr)) {
      const whisper = tr['model'] === 'gpt-realtime-whisper';
      if (tr['delay'] !== undefined && !whisper) {
        return { code: 'unsupported_parameter', param: 'session.audio.input.transcription.delay', message: "'delay' is only supported with the gpt-realtime-whisper model." };
      }
      if (tr['prompt'] !== undefined && whisper) {
        return { code: 'unsupported_parameter', param: 'session.audio.input.transcription.prompt', message: "'prompt' is not supported with the gpt-realtime-whisper model." };
      }
    }
    return null;
  }

  /** Start (or restart) listing the tools of every MCP server the config names; forget removed ones. */
  private syncMcp(cfg: Json): void {
    const tools = (cfg['tools'] as Json[]).filter((t) => t['type'] === 'mcp' && typeof t['server_url'] === 'string');
    const keep = new Set<string>();
    for (const t of tools) {
      const label = t['server_label'] as string;
      keep.add(label);
      const key = JSON.stringify([t['server_url'], t['headers'] ?? null, t['authorization'] ?? null, t['allowed_tools'] ?? null]);
      const cur = this.mcp.get(label);
      if (cur && cur.key === key) {
        cur.tool = clone(t);
        continue;
      }
      const headers: Record<string, string> = { ...((t['headers'] as Record<string, string> | null | undefined) ?? {}) };
      if (typeof t['authorization'] === 'string') headers['authorization'] = `Bearer ${t['authorization'] as string}`;
      const state: McpServerState = { tool: clone(t), key, conn: new McpConnection(t['server_url'] as string, headers), listing: Promise.resolve(), tools: null };
      state.listing = this.listMcpTools(state);
      this.mcp.set(label, state);
    }
    for (const label of [...this.mcp.keys()]) if (!keep.has(label)) this.mcp.delete(label);
  }

  private async listMcpTools(state: McpServerState): Promise<void> {
    const label = state.tool['server_label'] as string;
    const item: FakeItem = { id: newId('mcpl'), type: 'mcp_list_tools', status: 'in_progress', content: [], serverLabel: label, tools: [], deliveredMs: 0 };
    const previous = this.lastItemId();
    this.insertItem(item, null);
    this.sendEvent({ type: 'conversation.item.added', previous_item_id: previous, item: this.view(item) });
    this.sendEvent({ type: 'mcp_list_tools.in_progress', item_id: item.id });
    try {
      const listed = await state.conn.listTools();
      const allowed = state.tool['allowed_tools'] as string[] | Json | null | undefined;
      const visible = listed.filter((t) => (Array.isArray(allowed) ? allowed.includes(t.name) : isObj(allowed) ? filterMatches(allowed, t) : true));
      if (this.mcp.get(label) !== state) return;
      state.tools = visible;
      item.tools = visible.map((t) => ({ name: t.name, description: t.description ?? null, input_schema: t.inputSchema ?? {}, annotations: t.annotations ?? null }));
      item.status = 'completed';
      this.sendEvent({ type: 'mcp_list_tools.completed', item_id: item.id });
    } catch (err) {
      state.tools = null;
      state.listError = err instanceof Error ? err.message : String(err);
      item.status = 'incomplete';
      this.sendEvent({ type: 'mcp_list_tools.failed', item_id: item.id });
    }
    const idx = this.items.indexOf(item);
    this.sendEvent({ type: 'conversation.item.done', previous_item_id: idx > 0 ? this.items[idx - 1]!.id : null, item: this.view(item) });
  }

  /** Whether a call of `tool` needs the client's approval under the server's `require_approval` (default always). */
  private needsApproval(state: McpServerState, tool: McpListedTool): boolean {
    const r = state.tool['require_approval'];
    if (r === undefined || r === null || r === 'always') return true;
    if (r === 'never') return false;
    const f = r as Json;
    if (filterMatches(f['never'] as Json | undefined, tool)) return false;
    return true;
  }

  private onSessionUpdate(upd: Json, eid: string | null): void {
    const rule = this.sessionRules(upd);
    if (rule) {
      this.problem(rule, eid);
      return;
    }
    if (upd['type'] === 'transcription') {
      this.sendError(
        'invalid_value',
        'Passing a transcription session update event to a realtime session is not allowed.',
        'session.type',
        eid,
      );
      return;
    }
    if (upd['model'] !== undefined && upd['model'] !== this.model) {
      this.sendError(
        'invalid_value',
        `The model of a session cannot be changed [session:${this.model}, requested:${String(upd['model'])}].`,
        'session.model',
        eid,
      );
      return;
    }
    const updAudio = isObj(upd['audio']) ? upd['audio'] : undefined;
    const updOutput = updAudio && isObj(updAudio['output']) ? updAudio['output'] : undefined;
    const newVoice = updOutput?.['voice'];
    if (newVoice !== undefined && newVoice !== this.audioSection('output')['voice'] && this.audioProduced) {
      this.sendError(
        'cannot_update_voice',
        "Cannot update a conversation's voice if assistant audio is present.",
        'session.audio.output.voice',
        eid,
      );
      return;
    }
    const next = clone(this.config);
    for (const [key, value] of Object.entries(upd)) {
      if (key === 'audio') continue;
      next[key] = clone(value);
    }
    if (updAudio) {
      const input = this.audioSection('input', next);
      const output = this.audioSection('output', next);
      const ui = isObj(updAudio['input']) ? updAudio['input'] : {};
      const uo = isObj(updAudio['output']) ? updAudio['output'] : {};
      for (const [key, value] of Object.entries(ui)) {
        if (key === 'format') input[key] = normalizeFormat(value as Json);
        else if (key === 'turn_detection') input[key] = this.mergeTurnDetection(input[key] as Json | null, value as Json | null);
        else input[key] = clone(value);
      }
      for (const [key, value] of Object.entries(uo)) {
        output[key] = key === 'format' ? normalizeFormat(value as Json) : clone(value);
      }
    }
    const wasVad = this.vadSettings() !== null;
    this.configHistory.push(next);
    const settings = this.vadSettings();
    if (settings) this.vad.configure(settings);
    if (!wasVad && settings) this.vad.reset(this.receivedMsValue);
    this.sendEvent({ type: 'session.updated', session: clone(next) });
    this.syncMcp(next);
  }

  private mergeTurnDetection(current: Json | null, upd: Json | null): Json | null {
    if (upd === null) return null;
    const base = current && current['type'] === upd['type'] ? current : upd['type'] === 'server_vad' ? defaultServerVad() : defaultSemanticVad();
    return { ...clone(base), ...clone(upd) };
  }

  private turnDetection(): Json | null {
    return (this.audioSection('input')['turn_detection'] as Json | null) ?? null;
  }

  private vadSettings(): VadSettings | null {
    const td = this.turnDetection();
    if (!td) return null;
    if (td['type'] === 'server_vad') {
      return {
        threshold: td['threshold'] as number,
        prefixPaddingMs: td['prefix_padding_ms'] as number,
        silenceDurationMs: td['silence_duration_ms'] as number,
        minSpeechMs: this.tuning.vadMinSpeechMs,
      };
    }
    // semantic_vad has no tunables in the fake: a fixed energy threshold and end-of-turn silence.
    return { threshold: 0.5, prefixPaddingMs: 300, silenceDurationMs: this.tuning.semanticVadSilenceMs, minSpeechMs: this.tuning.vadMinSpeechMs };
  }

  // ---------------------------------------------------------------------------------------------
  // Input audio and VAD

  private onAppend(audio: string, eid: string | null): void {
    if (!BASE64_RE.test(audio)) {
      this.sendError('invalid_value', 'Invalid audio: not valid base64.', 'audio', eid);
      return;
    }
    const byteLen = Math.floor((audio.length * 3) / 4) - (audio.endsWith('==') ? 2 : audio.endsWith('=') ? 1 : 0);
    if (byteLen > MAX_APPEND_BYTES) {
      this.sendError('invalid_value', `Audio chunk too large [bytes:${byteLen}, max:${MAX_APPEND_BYTES}].`, 'audio', eid);
      return;
    }
    const format = this.inputFormat;
    if (byteLen % wireBytesPerSample(format) !== 0) {
      this.sendError('invalid_value', `Invalid audio: ${format} needs whole 16-bit samples [bytes:${byteLen}].`, 'audio', eid);
      return;
    }
    const samples = decodeWire(audio, format);
    if (samples.length === 0) return;
    const rate = wireSampleRate(format);
    this.storeReceived(format, rate, samples);
    const events = this.vad.push(samples, rate);
    if (this.turnDetection()) {
      for (const e of events) {
        if (e.type === 'speech_started') this.onSpeechStarted(e.audioStartMs);
        else this.onSpeechStopped(e.audioEndMs);
      }
      this.checkIdleTimeout();
    }
  }

  private storeReceived(format: WireFormat, sampleRate: number, samples: Int16Array): void {
    const chunkMs = (samples.length * 1000) / sampleRate;
    this.segments.push({ format, sampleRate, startMs: this.receivedMsValue, samples: samples.slice() });
    this.receivedMsValue += chunkMs;
    this.storedMs += chunkMs;
    if (this.storedMs > this.tuning.maxReceivedAudioMs) {
      // Evict down to 90% of the cap in one splice so steady-state appends stay O(1) amortized.
      let n = 0;
      while (n < this.segments.length - 1 && this.storedMs > this.tuning.maxReceivedAudioMs * 0.9) {
        const first = this.segments[n++]!;
        this.storedMs -= (first.samples.length * 1000) / first.sampleRate;
        this.dropped.receivedSamples += first.samples.length;
      }
      this.segments.splice(0, n);
    }
  }

  private sliceReceived(startMs: number, endMs: number): { samples: Int16Array; sampleRate: number; format: WireFormat } {
    const last = this.segments[this.segments.length - 1];
    const format = last?.format ?? this.inputFormat;
    const rate = wireSampleRate(format);
    const parts: Int16Array[] = [];
    for (const s of this.segments) {
      if (s.format !== format) continue;
      const segEnd = s.startMs + (s.samples.length * 1000) / rate;
      if (segEnd <= startMs || s.startMs >= endMs) continue;
      const from = Math.max(0, Math.round(((startMs - s.startMs) * rate) / 1000));
      const to = Math.min(s.samples.length, Math.round(((endMs - s.startMs) * rate) / 1000));
      if (to > from) parts.push(s.samples.subarray(from, to));
    }
    return { samples: concatPcm(parts), sampleRate: rate, format };
  }

  private onSpeechStarted(audioStartMs: number): void {
    this.speechItemId = newId('item');
    this.speechStartMs = audioStartMs;
    this.idleDeadlineMs = null;
    this.sendEvent({ type: 'input_audio_buffer.speech_started', audio_start_ms: audioStartMs, item_id: this.speechItemId });
    const td = this.turnDetection();
    if (td?.['interrupt_response'] === true && this.active && !this.active.finished) {
      this.cancelResponse(this.active, 'turn_detected');
    }
  }

  private onSpeechStopped(audioEndMs: number): void {
    const itemId = this.speechItemId ?? newId('item');
    this.sendEvent({ type: 'input_audio_buffer.speech_stopped', audio_end_ms: audioEndMs, item_id: itemId });
    const item = this.commitAudio(itemId, this.speechStartMs, audioEndMs);
    this.speechItemId = null;
    const td = this.turnDetection();
    if (td?.['create_response'] === true) {
      if (this.active && !this.active.finished) this.dropped.autoResponses++;
      else this.startResponse('vad', undefined, item);
    }
  }

  private checkIdleTimeout(): void {
    const td = this.turnDetection();
    if (this.idleDeadlineMs === null || !td || td['type'] !== 'server_vad' || typeof td['idle_timeout_ms'] !== 'number') return;
    if (this.vad.speaking || this.active || this.receivedMsValue < this.idleDeadlineMs) return;
    const itemId = newId('item');
    const startMs = this.idleDeadlineMs - (td['idle_timeout_ms'] as number);
    this.idleDeadlineMs = null;
    this.sendEvent({
      type: 'input_audio_buffer.timeout_triggered',
      audio_start_ms: Math.round(Math.max(this.bufferStartMs, startMs)),
      audio_end_ms: Math.round(this.receivedMsValue),
      item_id: itemId,
    });
    const item = this.commitAudio(itemId, this.bufferStartMs, this.receivedMsValue);
    this.vad.reset(this.receivedMsValue);
    this.startResponse('idle_timeout', undefined, item);
  }

  private onCommit(eid: string | null): void {
    const bufferedMs = this.receivedMsValue - this.bufferStartMs;
    if (bufferedMs < MIN_COMMIT_MS) {
      this.sendError(
        'input_audio_buffer_commit_empty',
        `Error committing input audio buffer: buffer too small. Expected at least ${MIN_COMMIT_MS}ms of audio, but buffer only has ${bufferedMs.toFixed(2)}ms of audio.`,
        null,
        eid,
      );
      return;
    }
    const itemId = this.speechItemId ?? newId('item');
    this.speechItemId = null;
    this.commitAudio(itemId, this.bufferStartMs, this.receivedMsValue);
    this.vad.reset(this.receivedMsValue);
  }

  private onClear(): void {
    this.bufferStartMs = this.receivedMsValue;
    this.speechItemId = null;
    this.vad.reset(this.receivedMsValue);
    this.sendEvent({ type: 'input_audio_buffer.cleared' });
  }

  private commitAudio(itemId: string, startMs: number, endMs: number): FakeItem {
    const slice = this.sliceReceived(Math.max(startMs, this.bufferStartMs), endMs);
    this.bufferStartMs = Math.max(this.bufferStartMs, endMs);
    const previous = this.lastItemId();
    const item: FakeItem = {
      id: itemId,
      type: 'message',
      role: 'user',
      status: 'completed',
      content: [{ type: 'input_audio', transcript: null }],
      audio: slice.samples,
      sampleRate: slice.sampleRate,
      format: slice.format,
      deliveredMs: 0,
    };
    this.sendEvent({ type: 'input_audio_buffer.committed', previous_item_id: previous, item_id: itemId });
    this.insertItem(item, previous);
    this.sendEvent({ type: 'conversation.item.added', previous_item_id: previous, item: this.view(item) });
    this.sendEvent({ type: 'conversation.item.done', previous_item_id: previous, item: this.view(item) });
    this.maybeTranscribe(item);
    return item;
  }

  private maybeTranscribe(item: FakeItem): void {
    if (!this.audioSection('input')['transcription']) return;
    const turn = this.turnOf(item);
    const transcript = this.tuning.transcribe ? this.tuning.transcribe(turn) : `[user audio ${Math.round(turn.durationMs)} ms]`;
    item.content = [{ type: 'input_audio', transcript }];
    this.sendEvent({
      type: 'conversation.item.input_audio_transcription.completed',
      item_id: item.id,
      content_index: 0,
      transcript,
      usage: { type: 'duration', seconds: Math.ceil(turn.durationMs / 1000) },
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Conversation

  private lastItemId(): string | null {
    return this.items[this.items.length - 1]?.id ?? null;
  }

  private insertItem(item: FakeItem, afterId: string | null): void {
    if (afterId === null) {
      this.items.push(item);
    } else if (afterId === 'root') {
      this.items.unshift(item);
    } else {
      const idx = this.items.findIndex((i) => i.id === afterId);
      this.items.splice(idx < 0 ? this.items.length : idx + 1, 0, item);
    }
    while (this.items.length > this.tuning.maxConversationItems) {
      // The service drops the oldest context too (truncation "auto").
      this.items.shift();
      this.dropped.conversationItems++;
    }
  }

  private view(item: FakeItem, withAudio = false): Json {
    const v: Json = { id: item.id, object: 'realtime.item', type: item.type, status: item.status };
    if (item.type === 'message') {
      v['role'] = item.role;
      v['content'] = item.content.map((c) => {
        const part = { ...c };
        if (withAudio && c['type'] === 'input_audio' && item.audio && item.format) part['audio'] = encodeWire(item.audio, item.format);
        if (withAudio && c['type'] === 'output_audio' && item.generatedPcm) {
          const keepMs = Math.min(item.deliveredMs, item.truncatedAtMs ?? Infinity);
          part['audio'] = encodeWire(item.generatedPcm.subarray(0, Math.round(keepMs * 24)), 'audio/pcm');
        }
        return part;
      });
    } else if (item.type === 'function_call') {
      v['call_id'] = item.callId;
      v['name'] = item.name;
      v['arguments'] = item.arguments;
    } else if (item.type === 'function_call_output') {
      v['call_id'] = item.callId;
      v['output'] = item.output;
    } else if (item.type === 'mcp_list_tools') {
      v['server_label'] = item.serverLabel;
      v['tools'] = clone(item.tools ?? []);
    } else if (item.type === 'mcp_call') {
      v['server_label'] = item.serverLabel;
      v['name'] = item.name;
      v['arguments'] = item.arguments;
      v['approval_request_id'] = item.approvalRequestId ?? null;
      v['output'] = item.output ?? null;
      v['error'] = item.mcpError ? clone(item.mcpError) : null;
    } else if (item.type === 'mcp_approval_request') {
      v['server_label'] = item.serverLabel;
      v['name'] = item.name;
      v['arguments'] = item.arguments;
    } else {
      v['approval_request_id'] = item.approvalRequestId;
      v['approve'] = item.approve;
      v['reason'] = item.reason ?? null;
    }
    return v;
  }

  private turnOf(item: FakeItem): UserTurn {
    const text = item.content
      .filter((c) => c['type'] === 'input_text')
      .map((c) => c['text'] as string)
      .join('\n');
    const audio = item.audio ?? new Int16Array(0);
    const sampleRate = item.sampleRate ?? wireSampleRate(this.inputFormat);
    return {
      itemId: item.id,
      audio,
      sampleRate,
      format: item.format ?? this.inputFormat,
      durationMs: (audio.length * 1000) / sampleRate,
      ...(text ? { text } : {}),
    };
  }

  private onItemCreate(ev: Json, eid: string | null): void {
    const raw = ev['item'] as Json;
    const prev = ev['previous_item_id'] as string | null | undefined;
    if (prev !== undefined && prev !== null && prev !== 'root' && !this.items.some((i) => i.id === prev)) {
      this.sendError('invalid_value', `Previous item with id '${prev}' does not exist in the conversation.`, 'previous_item_id', eid);
      return;
    }
    const id = typeof raw['id'] === 'string' ? (raw['id'] as string) : newId('item');
    if (this.items.some((i) => i.id === id)) {
      this.sendError('invalid_value', `Item with id '${id}' already exists in the conversation.`, 'item.id', eid);
      return;
    }
    const item: FakeItem = { id, type: raw['type'] as FakeItem['type'], status: 'completed', content: [], deliveredMs: 0 };
    if (raw['type'] === 'message') {
      const role = raw['role'] as 'user' | 'assistant' | 'system';
      const allowed = role === 'user' ? ['input_text', 'input_audio', 'input_image'] : role === 'system' ? ['input_text'] : ['output_text'];
      const content = raw['content'] as Json[];
      for (let i = 0; i < content.length; i++) {
        const t = content[i]!['type'] as string;
        if (!allowed.includes(t)) {
          const why = role === 'assistant' && t === 'output_audio' ? ' Assistant audio cannot be inserted into a conversation.' : '';
          this.sendError(
            'invalid_value',
            `Invalid value: '${t}'. Supported values for ${role} messages are: ${allowed.map((a) => `'${a}'`).join(', ')}.${why}`,
            `item.content[${i}].type`,
            eid,
          );
          return;
        }
      }
      item.role = role;
      const audioParts: Int16Array[] = [];
      item.content = content.map((c) => {
        if (c['type'] !== 'input_audio') return clone(c);
        if (typeof c['audio'] === 'string') audioParts.push(decodeWire(c['audio'] as string, this.inputFormat));
        return { type: 'input_audio', transcript: (c['transcript'] as string | null | undefined) ?? null };
      });
      if (audioParts.length > 0) {
        item.audio = concatPcm(audioParts);
        item.format = this.inputFormat;
        item.sampleRate = wireSampleRate(this.inputFormat);
      }
    } else if (raw['type'] === 'function_call') {
      item.callId = raw['call_id'] as string;
      item.name = raw['name'] as string;
      item.arguments = raw['arguments'] as string;
    } else if (raw['type'] === 'mcp_approval_response') {
      const requestId = raw['approval_request_id'] as string;
      const request = this.items.find((i) => i.type === 'mcp_approval_request' && i.id === requestId);
      if (!request) {
        this.sendError('invalid_value', `No approval request found with id '${requestId}'.`, 'item.approval_request_id', eid);
        return;
      }
      if (this.items.some((i) => i.type === 'mcp_approval_response' && i.approvalRequestId === requestId)) {
        this.sendError('invalid_value', `Approval request '${requestId}' has already been answered.`, 'item.approval_request_id', eid);
        return;
      }
      item.approvalRequestId = requestId;
      item.approve = raw['approve'] as boolean;
      item.reason = (raw['reason'] as string | null | undefined) ?? null;
      const answer = { requestId, serverLabel: request.serverLabel!, name: request.name!, approve: item.approve };
      this.pendingMcpApprovals.push(answer);
      if (item.approve) this.approvedCalls.push({ requestId, serverLabel: request.serverLabel!, name: request.name!, arguments: request.arguments ?? '{}' });
    } else if (raw['type'] === 'mcp_approval_request' || raw['type'] === 'mcp_call' || raw['type'] === 'mcp_list_tools') {
      // History the client replays (e.g. into a new session): kept as given, never executed.
      item.serverLabel = raw['server_label'] as string;
      item.name = raw['name'] as string | undefined;
      item.arguments = raw['arguments'] as string | undefined;
      item.tools = raw['tools'] as Json[] | undefined;
      item.output = (raw['output'] as string | null | undefined) ?? undefined;
    } else {
      const callId = raw['call_id'] as string;
      if (!this.items.some((i) => i.type === 'function_call' && i.callId === callId)) {
        this.sendError(
          'invalid_value',
          `No tool call found for function call output with call_id '${callId}'.`,
          'item.call_id',
          eid,
        );
        return;
      }
      item.callId = callId;
      item.output = raw['output'] as string;
      this.pendingFunctionOutputs.push({ callId, output: item.output });
    }
    const previous = prev === undefined || prev === null ? this.lastItemId() : prev === 'root' ? null : prev;
    this.insertItem(item, prev === undefined || prev === null ? null : prev);
    this.sendEvent({ type: 'conversation.item.added', previous_item_id: previous, item: this.view(item) });
    this.sendEvent({ type: 'conversation.item.done', previous_item_id: previous, item: this.view(item) });
  }

  private onTruncate(ev: Json, eid: string | null): void {
    const itemId = ev['item_id'] as string;
    const contentIndex = ev['content_index'] as number;
    const audioEndMs = ev['audio_end_ms'] as number;
    const item = this.items.find((i) => i.id === itemId);
    if (!item) {
      this.sendError('item_truncate_invalid_item_id', `Invalid item_id: no item with id '${itemId}' exists in the conversation.`, 'item_id', eid);
      return;
    }
    if (item.type !== 'message' || item.role !== 'assistant' || !item.generatedPcm) {
      this.sendError('invalid_value', `Only assistant messages with audio can be truncated [item:${itemId}].`, 'item_id', eid);
      return;
    }
    if (contentIndex !== 0) {
      this.sendError('invalid_value', `Invalid content_index ${contentIndex}: the item has one audio content part at index 0.`, 'content_index', eid);
      return;
    }
    const lengthMs = Math.min(item.deliveredMs, item.truncatedAtMs ?? Infinity);
    if (audioEndMs > lengthMs) {
      this.sendError('invalid_value', `Audio content of ${Math.floor(lengthMs)}ms is already shorter than ${audioEndMs}ms`, 'audio_end_ms', eid);
      return;
    }
    const responseActive = [this.active, ...this.outOfBand].some((r) => r && !r.finished && r.outputs.includes(item));
    item.truncatedAtMs = audioEndMs;
    // The service drops the transcript of a truncated item so no unheard text stays in context.
    item.content = item.content.map((c) => (c['type'] === 'output_audio' ? { ...c, transcript: '' } : c));
    this.truncations.push({
      itemId,
      contentIndex,
      audioEndMs,
      deliveredMs: item.deliveredMs,
      responseActive,
      atReceivedMs: this.receivedMsValue,
    });
    this.sendEvent({ type: 'conversation.item.truncated', item_id: itemId, content_index: contentIndex, audio_end_ms: audioEndMs });
  }

  private onItemDelete(itemId: string, eid: string | null): void {
    const idx = this.items.findIndex((i) => i.id === itemId);
    if (idx < 0) {
      this.sendError('invalid_value', `Invalid item_id: no item with id '${itemId}' exists in the conversation.`, 'item_id', eid);
      return;
    }
    this.items.splice(idx, 1);
    this.sendEvent({ type: 'conversation.item.deleted', item_id: itemId });
  }

  private onItemRetrieve(itemId: string, eid: string | null): void {
    const item = this.items.find((i) => i.id === itemId);
    if (!item) {
      this.sendError('invalid_value', `Invalid item_id: no item with id '${itemId}' exists in the conversation.`, 'item_id', eid);
      return;
    }
    this.sendEvent({ type: 'conversation.item.retrieved', item: this.view(item, true) });
  }

  // ---------------------------------------------------------------------------------------------
  // Responses

  private onResponseCreate(opts: Json | undefined, eid: string | null): void {
    const outOfBand = opts?.['conversation'] === 'none';
    if (!outOfBand && this.active && !this.active.finished) {
      this.sendError(
        'conversation_already_has_active_response',
        `Conversation already has an active response in progress: ${this.active.record.id}. Wait until the response is finished before creating a new one.`,
        null,
        eid,
      );
      return;
    }
    const latestUser = [...this.items].reverse().find((i) => i.type === 'message' && i.role === 'user');
    this.startResponse('response.create', opts, latestUser);
  }

  private onResponseCancel(responseId: string | undefined, eid: string | null): void {
    let target: ActiveResponse | null = null;
    if (responseId === undefined) {
      target = this.active && !this.active.finished ? this.active : null;
    } else {
      for (const r of [this.active, ...this.outOfBand]) if (r && !r.finished && r.record.id === responseId) target = r;
    }
    if (!target) {
      this.sendError('response_cancel_not_active', 'Cancellation failed: no active response found.', null, eid);
      return;
    }
    this.cancelResponse(target, 'client_cancelled');
  }

  private startResponse(trigger: ResponseTrigger, opts: Json | undefined, userItem: FakeItem | undefined): void {
    const outOfBand = opts?.['conversation'] === 'none';
    const outCfg = this.audioSection('output');
    const optOut = isObj(opts?.['audio']) && isObj((opts!['audio'] as Json)['output']) ? ((opts!['audio'] as Json)['output'] as Json) : {};
    const format = ((isObj(optOut['format']) ? optOut['format'] : outCfg['format']) as Json)['type'] as WireFormat;
    const voice = (optOut['voice'] as string | undefined) ?? (outCfg['voice'] as string);
    const modalities = (opts?.['output_modalities'] as string[] | undefined) ?? (this.config['output_modalities'] as string[]);
    const maxOutputTokens = (opts?.['max_output_tokens'] as number | 'inf' | undefined) ?? (this.config['max_output_tokens'] as number | 'inf');
    const instructions = (opts?.['instructions'] as string | undefined) ?? (this.config['instructions'] as string);
    const record: ResponseRecord = {
      id: newId('resp'),
      trigger,
      status: 'in_progress',
      conversation: outOfBand ? 'none' : 'auto',
      outputItemIds: [],
      audioMs: 0,
    };
    const r: ActiveResponse = {
      record,
      finished: false,
      outputs: [],
      current: null,
      format,
      voice,
      modalities,
      maxOutputTokens,
      metadata: (opts?.['metadata'] as Json | null | undefined) ?? null,
      inputTokens: this.contextTokens(instructions),
      wake: null,
    };
    this.responses.push(record);
    if (outOfBand) this.outOfBand.add(r);
    else this.active = r;
    const ctx: RespondContext = {
      session: this,
      responseId: record.id,
      trigger,
      index: this.responseCount++,
      userItem: userItem ? this.turnOf(userItem) : null,
      instructions,
      response: opts,
      conversation: this.items.map((i) => this.view(i)),
      functionOutputs: this.pendingFunctionOutputs,
      mcpApprovals: this.pendingMcpApprovals,
    };
    this.pendingFunctionOutputs = [];
    this.pendingMcpApprovals = [];
    this.idleDeadlineMs = null;
    void this.runResponse(r, ctx);
  }

  private contextTokens(instructions: string): { text: number; audio: number } {
    let text = textTokens(instructions);
    let audio = 0;
    const tools = this.config['tools'] as unknown[];
    if (tools.length > 0) text += textTokens(JSON.stringify(tools));
    for (const item of this.items) {
      if (item.type === 'function_call') text += textTokens(item.arguments ?? '') + textTokens(item.name ?? '');
      else if (item.type === 'function_call_output') text += textTokens(item.output ?? '');
      else {
        for (const c of item.content) {
          if (typeof c['text'] === 'string') text += textTokens(c['text'] as string);
          if (typeof c['transcript'] === 'string' && item.role === 'assistant') text += textTokens(c['transcript'] as string);
        }
        if (item.role === 'user' && item.audio && item.sampleRate) audio += audioTokens((item.audio.length * 1000) / item.sampleRate, 'user');
        if (item.role === 'assistant' && item.generatedPcm) audio += audioTokens(Math.min(item.deliveredMs, item.truncatedAtMs ?? Infinity), 'assistant');
      }
    }
    return { text, audio };
  }

  private responseView(r: ActiveResponse): Json {
    const rec = r.record;
    let statusDetails: Json | null = null;
    if (rec.status === 'cancelled' || rec.status === 'incomplete') statusDetails = { type: rec.status, reason: rec.reason };
    else if (rec.status === 'failed') statusDetails = { type: 'failed', error: { type: 'server_error', code: rec.reason } };
    const view: Json = {
      id: rec.id,
      object: 'realtime.response',
      status: rec.status,
      status_details: statusDetails,
      output: r.outputs.map((i) => this.view(i)),
      conversation_id: rec.conversation === 'auto' ? this.conversationId : null,
      output_modalities: r.modalities,
      max_output_tokens: r.maxOutputTokens,
      audio: { output: { format: normalizeFormat({ type: r.format }), voice: r.voice } },
      metadata: r.metadata,
      usage: rec.usage ?? null,
    };
    return view;
  }

  private pause(r: ActiveResponse, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.timers.delete(timer);
        if (r.wake === finish) r.wake = null;
        resolve();
      };
      const timer = setTimeout(finish, Math.max(0, ms));
      this.timers.add(timer);
      // cancelResponse() calls wake so a cancelled response stops at once instead of at the next tick.
      r.wake = finish;
    });
  }

  private async runResponse(r: ActiveResponse, ctx: RespondContext): Promise<void> {
    this.sendEvent({ type: 'response.created', response: this.responseView(r) });
    this.sendEvent({
      type: 'rate_limits.updated',
      rate_limits: [
        { name: 'requests', limit: 1000, remaining: 999, reset_seconds: 0.06 },
        { name: 'tokens', limit: 200000, remaining: 200000 - 4096, reset_seconds: 1.2 },
      ],
    });
    let steps: Step[];
    try {
      steps = await this.respond(ctx);
    } catch (err) {
      if (r.finished) return;
      r.record.reason = 'script_error';
      this.finishResponse(r, 'failed');
      this.sendError('server_error', `The respond script threw: ${err instanceof Error ? err.message : String(err)}`, null, null, 'server_error');
      return;
    }
    if (r.finished) return;
    if (this.tuning.responseLatencyMs > 0) await this.pause(r, this.tuning.responseLatencyMs);
    // Calls the client approved since the last response are made first.
    if (r.record.conversation === 'auto') {
      for (const a of this.approvedCalls.splice(0)) {
        if (r.finished) return;
        await this.emitMcpCall(r, { serverLabel: a.serverLabel, name: a.name, arguments: a.arguments }, a.requestId);
      }
    }
    for (const step of steps) {
      if (r.finished) return;
      if ('delayMs' in step) await this.pause(r, step.delayMs);
      else if ('functionCall' in step) this.emitFunctionCall(r, step);
      else if ('mcpCall' in step) await this.emitMcpCall(r, step.mcpCall);
      else await this.emitMessage(r, step);
    }
    if (!r.finished) this.finishResponse(r, 'completed');
  }

  private addOutputItem(r: ActiveResponse, item: FakeItem): { outputIndex: number; previous: string | null } {
    item.responseId = r.record.id;
    r.outputs.push(item);
    r.record.outputItemIds.push(item.id);
    const outputIndex = r.outputs.length - 1;
    let previous: string | null = null;
    if (r.record.conversation === 'auto') {
      previous = this.lastItemId();
      this.insertItem(item, null);
    }
    this.sendEvent({ type: 'response.output_item.added', response_id: r.record.id, output_index: outputIndex, item: this.view(item) });
    if (r.record.conversation === 'auto') this.sendEvent({ type: 'conversation.item.added', previous_item_id: previous, item: this.view(item) });
    return { outputIndex, previous };
  }

  private emitFunctionCall(r: ActiveResponse, step: FunctionCallStep): void {
    const args = typeof step.functionCall.arguments === 'string' ? step.functionCall.arguments : JSON.stringify(step.functionCall.arguments ?? {});
    const item: FakeItem = {
      id: newId('item'),
      type: 'function_call',
      status: 'in_progress',
      content: [],
      callId: step.functionCall.callId ?? newId('call'),
      name: step.functionCall.name,
      arguments: '',
      deliveredMs: 0,
    };
    const { outputIndex, previous } = this.addOutputItem(r, item);
    const base = { response_id: r.record.id, item_id: item.id, output_index: outputIndex, call_id: item.callId };
    const pieces = Math.min(3, Math.max(1, args.length));
    const size = Math.ceil(args.length / pieces);
    for (let i = 0; i < args.length; i += size) this.sendEvent({ type: 'response.function_call_arguments.delta', ...base, delta: args.slice(i, i + size) });
    this.sendEvent({ type: 'response.function_call_arguments.done', ...base, arguments: args });
    item.arguments = args;
    item.status = 'completed';
    this.sendEvent({ type: 'response.output_item.done', response_id: r.record.id, output_index: outputIndex, item: this.view(item) });
    if (r.record.conversation === 'auto') this.sendEvent({ type: 'conversation.item.done', previous_item_id: previous, item: this.view(item) });
  }

  /**
   * One MCP tool call of a response: an approval request when the server's policy asks for one
   * (and `approvalRequestId` is not already its approval), else the call itself, made over HTTP,
   * with the reference's event sequence.
   */
  private async emitMcpCall(r: ActiveResponse, call: McpCallStep['mcpCall'], approvalRequestId?: string): Promise<void> {
    const state = this.mcp.get(call.serverLabel);
    if (!state) {
      this.mcpSkipped.push(`${call.serverLabel}.${call.name}: no such server`);
      return;
    }
    await state.listing;
    if (r.finished) return;
    const tool = state.tools?.find((t) => t.name === call.name);
    if (!tool) {
      this.mcpSkipped.push(`${call.serverLabel}.${call.name}: ${state.tools === null ? 'tools not listed' : 'not offered'}`);
      return;
    }
    const args = typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments ?? {});
    if (approvalRequestId === undefined && this.needsApproval(state, tool)) {
      const req: FakeItem = { id: newId('mcpr'), type: 'mcp_approval_request', status: 'completed', content: [], serverLabel: call.serverLabel, name: call.name, arguments: args, deliveredMs: 0 };
      const { outputIndex, previous } = this.addOutputItem(r, req);
      this.sendEvent({ type: 'response.output_item.done', response_id: r.record.id, output_index: outputIndex, item: this.view(req) });
      if (r.record.conversation === 'auto') this.sendEvent({ type: 'conversation.item.done', previous_item_id: previous, item: this.view(req) });
      return;
    }
    const item: FakeItem = {
      id: newId('mcp'),
      type: 'mcp_call',
      status: 'in_progress',
      content: [],
      serverLabel: call.serverLabel,
      name: call.name,
      arguments: '',
      ...(approvalRequestId !== undefined ? { approvalRequestId } : {}),
      deliveredMs: 0,
    };
    const { outputIndex, previous } = this.addOutputItem(r, item);
    const base = { response_id: r.record.id, item_id: item.id, output_index: outputIndex };
    const size = Math.max(1, Math.ceil(args.length / 2));
    for (let i = 0; i < args.length; i += size) this.sendEvent({ type: 'response.mcp_call_arguments.delta', ...base, delta: args.slice(i, i + size) });
    this.sendEvent({ type: 'response.mcp_call_arguments.done', ...base, arguments: args });
    item.arguments = args;
    this.sendEvent({ type: 'response.mcp_call.in_progress', item_id: item.id, output_index: outputIndex });
    let parsed: unknown;
    try {
      parsed = JSON.parse(args);
    } catch {
      parsed = {};
    }
    try {
      item.output = await state.conn.callTool(call.name, parsed);
      item.status = 'completed';
      this.sendEvent({ type: 'response.mcp_call.completed', item_id: item.id, output_index: outputIndex });
    } catch (err) {
      item.mcpError = err instanceof McpFailure ? err.error : { type: 'tool_execution_error', message: String(err) };
      item.status = 'completed';
      this.sendEvent({ type: 'response.mcp_call.failed', item_id: item.id, output_index: outputIndex });
    }
    this.sendEvent({ type: 'response.output_item.done', response_id: r.record.id, output_index: outputIndex, item: this.view(item) });
    if (r.record.conversation === 'auto') this.sendEvent({ type: 'conversation.item.done', previous_item_id: previous, item: this.view(item) });
  }

  /** Output tokens of a response: assistant audio 1 token/50 ms delivered, text ~4 chars/token per item. */
  private outputTokens(r: ActiveResponse): { text: number; audio: number } {
    let text = 0;
    let audio = 0;
    for (const item of r.outputs) {
      if (item.type === 'function_call') text += textTokens(item.arguments ?? '') + textTokens(item.name ?? '');
      else {
        text += textTokens(item.transcript ?? '');
        if (item.generatedPcm) audio += audioTokens(item.deliveredMs, 'assistant');
      }
    }
    return { text, audio };
  }

  private overTokenLimit(r: ActiveResponse): boolean {
    if (r.maxOutputTokens === 'inf') return false;
    const out = this.outputTokens(r);
    return out.text + out.audio >= r.maxOutputTokens;
  }

  private async emitMessage(r: ActiveResponse, step: MessageStep): Promise<void> {
    const audioMode = r.modalities[0] !== 'text';
    const transcript = step.transcript ?? '';
    const item: FakeItem = { id: newId('item'), type: 'message', role: 'assistant', status: 'in_progress', content: [], deliveredMs: 0 };
    const { outputIndex } = this.addOutputItem(r, item);
    const partType = audioMode ? 'output_audio' : 'output_text';
    const base = { response_id: r.record.id, item_id: item.id, output_index: outputIndex, content_index: 0 };
    this.sendEvent({ type: 'response.content_part.added', ...base, part: audioMode ? { type: partType, transcript: '' } : { type: partType, text: '' } });
    const cur: CurrentMessage = { item, outputIndex, audioMode, transcriptSent: '' };
    r.current = cur;
    const words = transcript.match(/\S+\s*/g) ?? [];
    const interval = Number.isFinite(this.tuning.burstFactor) && this.tuning.burstFactor > 0 ? this.tuning.chunkMs / this.tuning.burstFactor : 0;
    if (audioMode) {
      const pcm = step.audio instanceof Int16Array ? step.audio : synthTone(step.audio ?? { toneHz: 1000, ms: 1500 }, AI_SAMPLE_RATE);
      item.generatedPcm = pcm;
      const decimator = r.format === 'audio/pcm' ? null : new Decimator24to8();
      const chunk = Math.max(1, Math.round((this.tuning.chunkMs * AI_SAMPLE_RATE) / 1000));
      const chunks = Math.max(1, Math.ceil(pcm.length / chunk));
      let wordsSent = 0;
      for (let k = 0; k < chunks; k++) {
        while (this.ws.bufferedAmount > this.tuning.maxSendBufferBytes && !r.finished) {
          this.dropped.backpressureWaits++;
          await this.pause(r, 5);
        }
        if (r.finished) return;
        if (this.overTokenLimit(r)) return this.stopForTokens(r);
        const slice = pcm.subarray(k * chunk, Math.min(pcm.length, (k + 1) * chunk));
        if (slice.length > 0) {
          const wire = decimator ? decimator.process(slice) : slice;
          this.sendEvent({ type: 'response.output_audio.delta', ...base, delta: encodeWire(wire, r.format) });
          this.audioProduced = true;
          item.deliveredMs += (slice.length * 1000) / AI_SAMPLE_RATE;
          r.record.audioMs += (slice.length * 1000) / AI_SAMPLE_RATE;
        }
        const due = Math.ceil(((k + 1) / chunks) * words.length);
        for (; wordsSent < due; wordsSent++) this.sendTranscriptDelta(r, cur, words[wordsSent]!);
        if (k < chunks - 1) await this.pause(r, interval);
      }
    } else {
      for (let w = 0; w < words.length; w += 3) {
        if (r.finished) return;
        if (this.overTokenLimit(r)) return this.stopForTokens(r);
        this.sendTranscriptDelta(r, cur, words.slice(w, w + 3).join(''));
        if (w + 3 < words.length) await this.pause(r, interval);
      }
    }
    if (r.finished) return;
    this.closeMessage(r, 'completed');
  }

  private sendTranscriptDelta(r: ActiveResponse, cur: CurrentMessage, delta: string): void {
    cur.transcriptSent += delta;
    cur.item.transcript = cur.transcriptSent;
    const type = cur.audioMode ? 'response.output_audio_transcript.delta' : 'response.output_text.delta';
    this.sendEvent({ type, response_id: r.record.id, item_id: cur.item.id, output_index: cur.outputIndex, content_index: 0, delta });
  }

  private stopForTokens(r: ActiveResponse): void {
    this.closeMessage(r, 'incomplete');
    r.record.reason = 'max_output_tokens';
    this.finishResponse(r, 'incomplete');
  }

  private closeMessage(r: ActiveResponse, status: 'completed' | 'incomplete'): void {
    const cur = r.current;
    if (!cur) return;
    r.current = null;
    const base = { response_id: r.record.id, item_id: cur.item.id, output_index: cur.outputIndex, content_index: 0 };
    let part: Json;
    if (cur.audioMode) {
      this.sendEvent({ type: 'response.output_audio.done', ...base });
      this.sendEvent({ type: 'response.output_audio_transcript.done', ...base, transcript: cur.transcriptSent });
      part = { type: 'output_audio', transcript: cur.transcriptSent };
    } else {
      this.sendEvent({ type: 'response.output_text.done', ...base, text: cur.transcriptSent });
      part = { type: 'output_text', text: cur.transcriptSent };
    }
    this.sendEvent({ type: 'response.content_part.done', ...base, part });
    cur.item.content = [part];
    cur.item.status = status;
    this.sendEvent({ type: 'response.output_item.done', response_id: r.record.id, output_index: cur.outputIndex, item: this.view(cur.item) });
    if (r.record.conversation === 'auto') {
      const idx = this.items.indexOf(cur.item);
      const previous = idx > 0 ? this.items[idx - 1]!.id : null;
      this.sendEvent({ type: 'conversation.item.done', previous_item_id: previous, item: this.view(cur.item) });
    }
  }

  private cancelResponse(r: ActiveResponse, reason: 'turn_detected' | 'client_cancelled'): void {
    if (r.finished) return;
    this.closeMessage(r, 'incomplete');
    r.record.reason = reason;
    this.finishResponse(r, 'cancelled');
  }

  private finishResponse(r: ActiveResponse, status: ResponseRecord['status']): void {
    if (r.finished) return;
    r.finished = true;
    r.record.status = status;
    const input = r.inputTokens;
    const output = this.outputTokens(r);
    r.record.usage = {
      total_tokens: input.text + input.audio + output.text + output.audio,
      input_tokens: input.text + input.audio,
      output_tokens: output.text + output.audio,
      input_token_details: {
        text_tokens: input.text,
        audio_tokens: input.audio,
        image_tokens: 0,
        cached_tokens: 0,
        cached_tokens_details: { text_tokens: 0, audio_tokens: 0, image_tokens: 0 },
      },
      output_token_details: { text_tokens: output.text, audio_tokens: output.audio },
    };
    if (this.active === r) this.active = null;
    this.outOfBand.delete(r);
    this.sendEvent({ type: 'response.done', response: this.responseView(r) });
    const td = this.turnDetection();
    if (r.record.conversation === 'auto' && td && td['type'] === 'server_vad' && typeof td['idle_timeout_ms'] === 'number') {
      this.idleDeadlineMs = this.receivedMsValue + r.record.audioMs + (td['idle_timeout_ms'] as number);
    }
    r.wake?.();
  }
}

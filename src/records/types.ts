/**
 * Plain-data shapes of call records: what the call layer hands in ({@link CallRecordInput}) and what
 * is written to disk ({@link CallRecord}). Nothing here holds a resource or a class instance, so the
 * call layer can build its summary without importing anything else from records/.
 */

/** Which side set the call up. */
export type CallDirection = 'inbound' | 'outbound';

/** Who spoke a transcript line. */
export type Speaker = 'caller' | 'agent';

/** A point in time as the call layer has it: a Date, an ISO string or epoch milliseconds. */
export type TimeInput = Date | string | number;

/** One tool call as the call layer saw it (mirrors the AI session's finished-tool report). */
export interface ToolUseInput {
  /** Tool name, e.g. `end_call`, `transfer_call`. */
  name: string;
  /** Parsed arguments; stored as a short JSON summary, never in full. */
  args?: unknown;
  /** How long the handler ran, ms. */
  durationMs?: number;
  /** Why it failed (unknown tool, bad arguments, threw, timed out). */
  error?: string;
  /** When it was called (default: when it was added). */
  at?: TimeInput;
}

/** Token usage and cost of the call's AI session (field names match the AI usage summary). */
export interface UsageInput {
  responses?: number;
  inputTokens?: number;
  outputTokens?: number;
  totalTokens?: number;
  inputTextTokens?: number;
  inputAudioTokens?: number;
  /** Subset of inputTokens served from the prompt cache. */
  cachedTokens?: number;
  outputTextTokens?: number;
  outputAudioTokens?: number;
  /** Estimated cost, USD (an estimate from the price table, not an invoice). */
  costUsd?: number;
  /** Session audio billed by duration (GPT-Live), seconds. */
  audioSeconds?: number;
}

/** The AI side of the call. */
export interface AiInfoInput {
  /** Backend name, e.g. `openai`, `echo`. */
  backend: string;
  /** Model, e.g. `gpt-realtime`. */
  model?: string;
  /** Voice, e.g. `marin`. */
  voice?: string;
}

/** One finished utterance. */
export interface TranscriptLineInput {
  speaker: Speaker;
  text: string;
  /** When it was spoken (default: when it was added). */
  at?: TimeInput;
  /** The agent was cut off (barge-in) while saying it. */
  interrupted?: boolean;
}

/** Per-call counters; the named ones are the usual, any other finite number is kept as well. */
export interface CallCounters {
  /** Caller speech that interrupted the agent. */
  bargeIns?: number;
  /** conversation.item.truncate requests sent. */
  truncates?: number;
  /** Frames the caller heard as silence because no agent audio was ready. */
  underruns?: number;
  /** Frames dropped because a ring was full. */
  overflows?: number;
  /** Reconnects or session rotations of the AI side. */
  aiReconnects?: number;
  /** DTMF digits received. */
  dtmfDigits?: number;
  [name: string]: number | undefined;
}

/**
 * The summary of one call that the call layer gives the record store: at call start (the fields it
 * knows then), on updates, and at the end. Plain data only.
 */
export interface CallRecordInput {
  /** Our call id (unique across restarts: it names the record files). */
  callId: string;
  /** SIP Call-ID header value. */
  sipCallId?: string;
  direction: CallDirection;
  /** Caller (From) URI or number. */
  from: string;
  /** Callee (To / request) URI or number. */
  to: string;
  /** Name of the account the call came in on or went out from. */
  account?: string;
  /** Signalling source address of the remote party, `ip:port`. */
  remoteAddress?: string;
  /** The agent instance that carried the call (`instance.id`). */
  instanceId?: string;
  startedAt: TimeInput;
  answeredAt?: TimeInput;
  endedAt?: TimeInput;
  /** Why the call ended, e.g. `caller_hangup`, `agent_hangup`, `ai_failed`, `rejected`, `max_duration`. */
  endReason?: string;
  /** SIP status code of the ending (e.g. 200 for a normal BYE, 486 busy, 603 declined). */
  sipStatus?: number;
  /** SIP reason phrase or Reason header text. */
  sipReason?: string;
  ai?: AiInfoInput;
  /** Tools used, in order (replaces what was added with addTool()). */
  tools?: ToolUseInput[];
  usage?: UsageInput;
  counters?: CallCounters;
  /** Whole transcript (replaces what was added with addTranscript()). */
  transcript?: TranscriptLineInput[];
  /** Last error worth keeping, as a sentence. */
  error?: string;
}

/** Lifecycle of a record file. */
export type CallRecordStatus =
  /** The call is (or was, when the process died) still running; the record is a checkpoint. */
  | 'in_progress'
  /** The call layer finished the record. */
  | 'completed'
  /** The process stopped before the call layer finished it (found at startup, or closed at shutdown). */
  | 'interrupted';

/** A tool call as stored. */
export interface ToolUse {
  name: string;
  /** Arguments as compact JSON, cut to a bounded length. */
  argsSummary: string | null;
  durationMs: number | null;
  error: string | null;
  at: string;
}

/** Token usage as stored (every field present). */
export interface Usage {
  responses: number;
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  inputTextTokens: number;
  inputAudioTokens: number;
  cachedTokens: number;
  outputTextTokens: number;
  outputAudioTokens: number;
  costUsd: number;
  /** Present for backends billed by audio duration (GPT-Live), seconds. */
  audioSeconds?: number;
}

/** A transcript line as stored. */
export interface TranscriptLine {
  speaker: Speaker;
  text: string;
  /** ISO time. */
  at: string;
  /** Milliseconds since the call started. */
  offsetMs: number;
  interrupted?: true;
}

/** The stereo recording's facts, as stored in the record. */
export interface RecordingInfo {
  /** File name, relative to the record's directory. */
  file: string;
  sampleRate: number;
  channels: 2;
  /** Channel layout. */
  layout: 'caller-left,agent-right';
  durationMs: number;
  /** Audio offered after the size cap was reached or while the disk lagged, ms (not written). */
  droppedMs: number;
  /** The size cap was reached; the end of the call is missing. */
  truncated: boolean;
  /** Set when writing failed part way. */
  error: string | null;
}

/** One call record as written to `<dir>/YYYY-MM-DD/<callId>.json`. Absent values are null. */
export interface CallRecord {
  /** Format version of this file. */
  version: 1;
  status: CallRecordStatus;
  callId: string;
  sipCallId: string | null;
  direction: CallDirection;
  from: string;
  to: string;
  account: string | null;
  remoteAddress: string | null;
  /** The agent instance that carried the call (null: unnamed). */
  instanceId: string | null;
  /** ISO times (UTC). */
  startedAt: string;
  answeredAt: string | null;
  endedAt: string | null;
  /** Start to end, ms (null while in progress). */
  durationMs: number | null;
  /** Answer to end, ms (0 when never answered; null while in progress). */
  talkMs: number | null;
  endReason: string | null;
  sipStatus: number | null;
  sipReason: string | null;
  ai: { backend: string; model: string | null; voice: string | null } | null;
  tools: ToolUse[];
  /** Tool calls not kept because of the per-call cap. */
  toolsDropped: number;
  usage: Usage | null;
  counters: Record<string, number>;
  /** null when transcripts are switched off. */
  transcript: TranscriptLine[] | null;
  /** Lines (or parts of lines) not kept because of the per-call caps. */
  transcriptDropped: number;
  recording: RecordingInfo | null;
  error: string | null;
  /** When this version of the file was written (ISO). */
  updatedAt: string;
}

/** A record without its transcript, for listings. */
export type CallRecordSummary = Omit<CallRecord, 'transcript'> & {
  /** Lines in the transcript (0 when there is none). */
  transcriptLines: number;
};

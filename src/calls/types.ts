/**
 * Types of the call layer: the narrow faces of the SIP objects it drives (so the daemon injects the
 * real UserAgent and unit tests inject fakes), the recording hook the records module implements,
 * and the plain-data shapes a call hands to the admin API and the record store.
 */
import type { SipAccount } from '../sip/SipAccount';
import type { SipCall, SipCallEvents } from '../sip/SipCall';
import type { UsageSummary } from '../ai/usage';
import type { CallState, EndReason } from './state';

/**
 * What a call session uses of a {@link SipCall}: identity, SIP actions, the PCM rings and events.
 * A structural subset, so a test can hand in a fake built on TypedEmitter<SipCallEvents>.
 */
export type CallLeg = CallLegActions & {
  on<K extends keyof SipCallEvents & string>(event: K, listener: (...args: SipCallEvents[K]) => void): unknown;
  off<K extends keyof SipCallEvents & string>(event: K, listener: (...args: SipCallEvents[K]) => void): unknown;
};

/** The non-event members of {@link CallLeg}. */
export type CallLegActions = Pick<
  SipCall,
  | 'handle'
  | 'account'
  | 'info'
  | 'sampleRate'
  | 'ended'
  | 'end'
  | 'header'
  | 'ringing'
  | 'answer'
  | 'reject'
  | 'hangup'
  | 'transfer'
  | 'writeAudio'
  | 'clearAudio'
  | 'txIndex'
  | 'txTicks'
  | 'jitterDelayMs'
  | 'audioStats'
  | 'waitForState'
>;

/** What the call manager uses of the UserAgent: incoming calls, the audio tick and outbound calls. */
export interface CallAgent {
  on(event: 'incomingCall', listener: (call: CallLeg) => void): unknown;
  on(event: 'tick', listener: () => void): unknown;
  off(event: 'incomingCall', listener: (call: CallLeg) => void): unknown;
  off(event: 'tick', listener: () => void): unknown;
  /** Place an outgoing call from `account` (UserAgent.call). */
  call(account: SipAccount, uri: string, options?: { headers?: Record<string, string> }): Promise<CallLeg>;
  /**
   * Have the SIP layer answer new INVITEs itself while the manager cannot take them: 486 (full),
   * 503 (draining) or 0 (offer them again). Optional: without it every INVITE reaches the manager.
   */
  setCallRefusal?(code: 0 | 486 | 503): void;
  /** Why no call is taken now ('' = they are): OPTIONS probes get 503 with it. Optional. */
  setUnavailable?(reason: string): void;
}

/** A fixed audio prompt (greeting, fallback, goodbye, busy): mono PCM with its rate. */
export interface Prompt {
  pcm: Int16Array;
  /** Sample rate of `pcm`, Hz; resampled once per bridge rate when it differs. */
  sampleRate: number;
}

/**
 * Per-call recording hook, at the bridge rate. The records module's `CallRecorder` has this shape
 * (records/ does not import calls/), so the daemon hands a call's record to its bridge as it is.
 * Ending the record is its owner's business, not the bridge's.
 */
export interface CallRecorderSink {
  /**
   * One batch: the caller's audio and the agent audio the caller heard meanwhile (played samples,
   * silence where nothing played), same length, so two channels written side by side stay aligned:
   * caller left, agent right. Both arrays are reused after the call returns: copy what you keep.
   */
  audio(caller: Int16Array, agent: Int16Array): void;
}

/** Who spoke a transcript line. */
export type Speaker = 'caller' | 'agent';

/** One finished utterance (or a DTMF digit) of a call. */
export interface TranscriptEntry {
  speaker: Speaker;
  text: string;
  /** Wall-clock time the line completed. */
  at: Date;
  /** Milliseconds since the call started (the INVITE). */
  offsetMs: number;
  /** The agent was cut off (barge-in) while saying it; `heardMs` is how much the caller heard. */
  interrupted?: boolean;
  heardMs?: number;
  /** `dtmf` for keypad digits, otherwise absent (speech). */
  kind?: 'dtmf';
  /** AI item id, when the line came from the model's conversation. */
  itemId?: string;
}

/** One tool call of a call. */
export interface ToolUse {
  name: string;
  /** Parsed arguments (undefined when they were not JSON). */
  args?: unknown;
  durationMs: number;
  /** Set when the call failed (unknown tool, bad arguments, handler threw or timed out). */
  error?: string;
  /** An MCP call the approval policy did not grant (never made; `error` says why). */
  refused?: true;
  at: Date;
}

/** Per-call counters (also summed by the manager for metrics). Samples are at the bridge rate. */
export interface CallCounters {
  /** Caller speech that interrupted the agent (playout flushed). */
  bargeIns: number;
  /** Caller speech during a non-interruptible greeting (nothing flushed). */
  bargeInsIgnored: number;
  /** conversation.item.truncate requests made. */
  truncates: number;
  /** Times an unfinished agent item ran dry (the caller heard a gap). */
  underruns: number;
  /** Agent audio samples dropped because the playout backlog was full. */
  playoutDroppedSamples: number;
  /** Agent audio samples ignored after their item was flushed. */
  playoutDiscardedSamples: number;
  /** Caller audio batches sent to the AI. */
  inputBatches: number;
  /** Caller audio samples dropped by the bridge (pre-ready buffer full, AI gone). */
  inputDroppedSamples: number;
  /** Caller audio chunks the AI session dropped (not ready, socket backlog). */
  aiDroppedChunks: number;
  /** AI reconnects (drops, expiries) and rotations. */
  aiReconnects: number;
  /** Non-fatal AI server errors. */
  aiErrors: number;
  /** DTMF digits received. */
  dtmfDigits: number;
  /** Tool calls made, and failed. */
  toolCalls: number;
  toolErrors: number;
  /** Recording samples of agent audio dropped because the heard-audio queue was full. */
  recorderDroppedSamples: number;
  /** Caller samples the native RX ring dropped (the event loop fell behind). */
  rxDroppedSamples: number;
  /** Agent samples the native TX ring refused (full). */
  txOverflowSamples: number;
  /** Transcript lines evicted by the cap. */
  transcriptEvicted: number;
}

/** A snapshot of a live call for the admin API. */
export interface CallInfo {
  /** Our call id (unique across restarts; names the record files). */
  callId: string;
  /** SIP Call-ID. */
  sipCallId: string;
  direction: 'inbound' | 'outbound';
  /** From (inbound) / our URI (outbound). */
  from: string;
  /** Our URI (inbound) / the dialled URI (outbound). */
  to: string;
  /** URI of the account the call came in on or went out from. */
  account: string;
  /** Signalling source of the INVITE (`ip:port`), inbound only. */
  remoteAddress: string;
  state: CallState;
  startedAt: Date;
  answeredAt?: Date;
}

/**
 * Everything a call record needs, produced at the end of a call. Field names follow the records
 * module's `CallRecordInput`, so a summary can be handed over as it is.
 */
export interface CallSummary {
  callId: string;
  sipCallId: string;
  direction: 'inbound' | 'outbound';
  from: string;
  to: string;
  account: string;
  remoteAddress: string;
  startedAt: Date;
  answeredAt?: Date;
  /** Absent while the call is live. */
  endedAt?: Date;
  /** Answer to end (or to now while live), ms; 0 when never answered. */
  durationMs: number;
  /** Absent while the call is live. */
  endReason?: EndReason;
  /** SIP status of the ending (200 after a BYE, 486, 603...). */
  sipStatus: number;
  sipReason: string;
  /** Who sent the ending request: `local` (we) or `remote`. */
  endedBy: 'local' | 'remote';
  /** Transfer target, when the call was transferred. */
  transferredTo?: string;
  ai: { backend: string; model?: string; voice: string; format: string };
  tools: ToolUse[];
  usage: UsageSummary;
  counters: CallCounters;
  transcript: TranscriptEntry[];
  /** Realtime connect (to `session.created`) and start (to `session.updated`) times, ms. */
  aiConnectMs?: number;
  aiStartMs?: number;
  /** Last error worth keeping, as a sentence. */
  error?: string;
}

/** Zeroed per-call counters. */
export function emptyCounters(): CallCounters {
  return {
    bargeIns: 0,
    bargeInsIgnored: 0,
    truncates: 0,
    underruns: 0,
    playoutDroppedSamples: 0,
    playoutDiscardedSamples: 0,
    inputBatches: 0,
    inputDroppedSamples: 0,
    aiDroppedChunks: 0,
    aiReconnects: 0,
    aiErrors: 0,
    dtmfDigits: 0,
    toolCalls: 0,
    toolErrors: 0,
    recorderDroppedSamples: 0,
    rxDroppedSamples: 0,
    txOverflowSamples: 0,
    transcriptEvicted: 0,
  };
}

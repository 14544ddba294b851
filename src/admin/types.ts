/**
 * What the admin API consumes and serves, as plain interfaces: the daemon adapts the call manager,
 * the registrations and the config to these, so admin/ needs nothing concrete from other modules.
 */

/** A value or a promise of it. */
export type MaybePromise<T> = T | Promise<T>;

/** Who spoke a transcript line. */
export type Speaker = 'caller' | 'agent';

/** One transcript line as the API shows it. */
export interface TranscriptEntry {
  speaker: Speaker;
  text: string;
  /** ISO time. */
  at?: string;
  /** Position in the call's transcript (lets a stream skip lines it already replayed). */
  seq?: number;
}

/** A call as the API shows it; the call layer may add fields. */
export interface CallView {
  /** Our call id. */
  id: string;
  /** State name, e.g. `ringing`, `connecting`, `active`, `ending`, `ended`. */
  state: string;
  direction?: 'inbound' | 'outbound';
  from?: string;
  to?: string;
  account?: string;
  /** ISO times. */
  startedAt?: string;
  answeredAt?: string | null;
  /** Set once the call has ended. */
  endedAt?: string | null;
  endReason?: string | null;
  /** Transcript so far, when kept (an event stream replays it first). */
  transcript?: TranscriptEntry[];
  [key: string]: unknown;
}

/** GET /calls. */
export interface CallList {
  active: CallView[];
  /** Recently ended calls, newest first. */
  recent: CallView[];
}

/** POST /calls body, validated. */
export interface PlaceCallRequest {
  /** `sip:`, `sips:` or `tel:` URI to dial. */
  uri: string;
  /** Instructions for this call, replacing the configured prompt. */
  instructions?: string;
  /** Extra `X-` headers for the INVITE. */
  headers?: Record<string, string>;
}

/** What place() returns. */
export interface PlacedCall {
  id: string;
  [key: string]: unknown;
}

/** An event of one call, as streamed by GET /calls/:id/events (the SSE event name is `type`). */
export type CallEvent =
  | { type: 'state'; state: string; at?: string; reason?: string }
  | ({ type: 'transcript' } & TranscriptEntry)
  | { type: 'ended'; reason?: string; at?: string; sipStatus?: number; [key: string]: unknown };

/**
 * The call operations the admin API uses. Errors thrown keep their meaning: TypeError/RangeError/
 * ConfigError are the request's fault (400), InvalidStateError a conflict (409), SipError and
 * AiSessionError a failure upstream (502); an error carrying a numeric `httpStatus` gets that status.
 */
export interface AdminCalls {
  /** Active and recent calls. */
  list(): MaybePromise<CallList>;
  /** One call (active or recent), or undefined. */
  get(id: string): MaybePromise<CallView | undefined>;
  /** Start an outbound call; resolves once it has an id (not when answered). */
  place(req: PlaceCallRequest): MaybePromise<PlacedCall>;
  /** Hang up an active call; false when no active call has this id. */
  hangup(id: string): MaybePromise<boolean>;
  /**
   * Listen to a live call's events until it ends (`ended` is the last). Returns the unsubscribe
   * function, or undefined when the call is unknown or already over.
   */
  subscribe(id: string, listener: (ev: CallEvent) => void): (() => void) | undefined;
  /** Finished calls matching a history query, newest first (absent: GET /calls takes no query). */
  history?(q: HistoryQuery): MaybePromise<HistoryPage>;
  /** A finished call's stereo recording on disk, or undefined when it has none here. */
  recording?(id: string): MaybePromise<RecordingFile | undefined>;
}

/** A validated history query (GET /calls?since=...); see admin/history.ts. */
export interface HistoryQuery {
  /** Calls that started at or after. */
  since?: Date;
  /** Calls that started before. */
  until?: Date;
  /** Text found in the From or To URI, case-insensitive. */
  caller?: string;
  /** End reasons, any of. */
  outcomes?: string[];
  /** Start-to-end duration bounds, ms (inclusive). */
  minDurationMs?: number;
  maxDurationMs?: number;
  /** Text found in the transcript, case-insensitive. */
  text?: string;
  /** Page size and position. */
  limit: number;
  offset: number;
}

/** One page of history. */
export interface HistoryPage {
  calls: CallView[];
  /** Offset of the next page, or null on the last one. */
  next: number | null;
  /** False when the search stopped at its bound before looking at every record (narrow the dates). */
  complete: boolean;
}

/** A recording file the admin API may serve. */
export interface RecordingFile {
  /** Absolute path. */
  path: string;
  /** MIME type (audio/wav). */
  contentType: string;
}

/** One account's registration, for /healthz. */
export interface AccountHealth {
  name: string;
  /** The account registers (false for registration-less, IP-addressed accounts). */
  registers: boolean;
  registered: boolean;
  /** Last REGISTER status code. */
  status?: number;
  reason?: string;
  /** False while the registrar leaves OPTIONS keepalives unanswered. */
  registrarReachable?: boolean;
}

/** What the daemon reports for /healthz. */
export interface HealthInput {
  accounts: AccountHealth[];
  /** The AI endpoint is configured (URL, model, key). */
  aiConfigured: boolean;
  /** Other problems, as sentences. */
  problems?: string[];
}

/** The verdict of {@link evaluateHealth}. */
export interface HealthReport {
  healthy: boolean;
  reasons: string[];
}

/** /status body: versions, registrations, active calls, redacted config summary... as the daemon wants. */
export type StatusReport = Record<string, unknown>;

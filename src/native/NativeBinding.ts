/**
 * TypeScript mirror of the native addon (native/binding). Everything else depends on these
 * interfaces, never on the `.node` file, so unit tests can inject a fake binding.
 */

/** One SIP transport of the endpoint. */
export interface NativeTransportConfig {
  enabled?: boolean;
  bindAddress?: string;
  port?: number;
  publicAddress?: string;
  certFile?: string;
  privKeyFile?: string;
  caListFile?: string;
  password?: string;
  verifyServer?: boolean;
  verifyClient?: boolean;
  /** Lowest TLS version accepted: tlsv1.2 (default) or tlsv1.3. */
  method?: 'tlsv1.2' | 'tlsv1.3';
}

/** Endpoint configuration as the addon takes it (see native/core/Config.hpp). */
export interface NativeEndpointConfig {
  udp?: NativeTransportConfig | null;
  tcp?: NativeTransportConfig | null;
  tls?: NativeTransportConfig | null;
  userAgent?: string;
  clockRate?: number;
  ptimeMs?: number;
  codecs?: string[];
  jbInitMs?: number;
  jbMinPreMs?: number;
  jbMaxPreMs?: number;
  jbMaxMs?: number;
  srtp?: 'disabled' | 'optional' | 'mandatory';
  srtpSecureSignaling?: number;
  rtpPortStart?: number;
  rtpPortRange?: number;
  rtpBindAddress?: string;
  rtpPublicAddress?: string;
  txRingMs?: number;
  rxRingMs?: number;
  logLevel?: number;
  maxCalls?: number;
}

/** Account configuration as the addon takes it. */
export interface NativeAccountConfig {
  idUri: string;
  registrarUri?: string;
  username?: string;
  password?: string;
  realm?: string;
  proxies?: string[];
  expiresSec?: number;
  retryIntervalSec?: number;
  firstRetryIntervalSec?: number;
  /** OPTIONS to the registrar this often, s (0: never). */
  keepaliveSec?: number;
  transport?: string;
  isDefault?: boolean;
}

/** An INVITE arrived for one of our accounts. */
export interface NativeIncomingCallEvent {
  type: 'incomingCall';
  call: number;
  account: number;
  fromUri: string;
  toUri: string;
  requestUri: string;
  sipCallId: string;
  srcAddress: string;
  remoteContact: string;
  headers: [string, string][];
}

/** INVITE session state change. */
export interface NativeCallStateEvent {
  type: 'callState';
  call: number;
  state: 'null' | 'calling' | 'incoming' | 'early' | 'connecting' | 'confirmed' | 'disconnected';
  sipCode: number;
  reason: string;
  sipCallId: string;
  connectDurationMs: number;
}

/** Media state change (the PCM port is connected when active). */
export interface NativeCallMediaEvent {
  type: 'callMedia';
  call: number;
  active: boolean;
  status: string;
  codec: string;
  codecClockRate: number;
}

/** A DTMF digit from the remote side. */
export interface NativeDtmfEvent {
  type: 'dtmf';
  call: number;
  digit: string;
  method: 'rfc2833' | 'info';
  durationMs: number;
}

/** Progress of a REFER we sent (NOTIFY sipfrag). */
export interface NativeTransferStatusEvent {
  type: 'transferStatus';
  call: number;
  sipCode: number;
  reason: string;
  final: boolean;
}

/** The native call object was deleted; no more events for this handle. */
export interface NativeCallClosedEvent {
  type: 'callClosed';
  call: number;
}

/** Registration state of an account changed. */
export interface NativeRegStateEvent {
  type: 'regState';
  account: number;
  sipCode: number;
  reason: string;
  expiresSec: number;
  registered: boolean;
  unregistering: boolean;
}

/** The registrar stopped answering the OPTIONS keepalive, or answers again (a REGISTER follows). */
export interface NativeRegistrarEvent {
  type: 'registrar';
  account: number;
  reachable: boolean;
  /** Its answer, or 408 / 503 when none came. */
  sipCode: number;
  reason: string;
}

/** A PJSIP log line (level 1 = error ... 6 = trace). */
export interface NativeLogEvent {
  type: 'log';
  level: number;
  message: string;
}

/** The library stopped (after shutdown(), or because it failed). */
export interface NativeStoppedEvent {
  type: 'stopped';
  failed: boolean;
  reason: string;
}

/**
 * Caller audio of one bridge tick (or a few) for every call that had some: [call, pcm, firstUs,
 * lastUs], the last two being when the chunk's first and last frames left the clock thread
 * (µs of CLOCK_MONOTONIC, NaN when unknown).
 */
export interface NativeAudioEvent {
  type: 'audio';
  frames: [number, Int16Array, number, number][];
}

/** Every event the addon delivers, in order, through its single callback. */
export type NativeEvent =
  | NativeIncomingCallEvent
  | NativeCallStateEvent
  | NativeCallMediaEvent
  | NativeDtmfEvent
  | NativeTransferStatusEvent
  | NativeCallClosedEvent
  | NativeRegStateEvent
  | NativeRegistrarEvent
  | NativeLogEvent
  | NativeStoppedEvent
  | NativeAudioEvent;

/** Per-call audio counters (native/core/CallAudio.hpp). */
export interface NativeAudioStats {
  sampleRate: number;
  samplesPerFrame: number;
  rxFrames: number;
  rxDroppedSamples: number;
  rxQueuedSamples: number;
  txFrames: number;
  txPlayedSamples: number;
  txUnderruns: number;
  txSilentFrames: number;
  /** Ticks skipped while on hold (the TX ring is left for the resume). */
  txHeldFrames: number;
  /** Caller frames dropped while on hold. */
  rxHeldFrames: number;
  txOverflowSamples: number;
  txClearedSamples: number;
  txQueuedSamples: number;
  txCapacitySamples: number;
  txReadIndex: number;
  txWriteIndex: number;
  connected: boolean;
  /** The remote party has the call on hold (sendonly or inactive). */
  held: boolean;
  /** Audio waiting in the jitter buffer at the last reading (about once a second), ms; -1 before it. */
  jitterBufferMs: number;
}

/**
 * A request that names a new object: its handle is known at once (before any event about it can
 * arrive), `done` settles when the native side has carried it out.
 */
export interface NativeHandleRequest {
  handle: number;
  done: Promise<number>;
}

/**
 * Who may start anything with the agent, checked per request before PJSIP's transaction layer
 * (native/sip/Admission.hpp). Rates are per source address.
 */
export interface NativeAdmissionPolicy {
  /** Admit INVITEs from any source (`calls.allow: [any]`). */
  anySource?: boolean;
  /** calls.allow has From URI patterns: an INVITE from another source goes on to that check. */
  fromPatterns?: boolean;
  /** Admitted source addresses: IPs or CIDRs (registrars, proxies, calls.allow addresses). */
  trusted?: string[];
  /** Request-URI users that name an account; other INVITEs get 404 (empty: any). */
  users?: string[];
  invitesPerSec?: number;
  inviteBurst?: number;
  requestsPerSec?: number;
  requestBurst?: number;
  retryAfterSec?: number;
  /** Report refusals at most once per source per this many seconds. */
  logIntervalSec?: number;
  /** Sources tracked at most. */
  maxSources?: number;
}

/** Requests the message guard refused, by reason, since the library started. */
export interface NativeAdmissionStats {
  /** 403: an INVITE from a source that is not admitted. */
  forbidden: number;
  /** 404: the Request-URI user names no account. */
  notFound: number;
  /** 503 with Retry-After: an admitted source over its rate limit. */
  rateLimited: number;
  /** Not answered: a source that is not admitted, over its limit (or the source table full). */
  dropped: number;
  /** 486 from the guard while the call layer was full. */
  busy: number;
  /** 503 from the guard while the agent was draining. */
  draining: number;
  /** Sources tracked now. */
  sources: number;
}

/** The addon's UserAgent object. Promise methods reject with SipError / InvalidStateError / TypeError. */
export interface NativeUserAgent {
  start(cfg: NativeEndpointConfig): Promise<Record<string, string>>;
  addAccount(cfg: NativeAccountConfig): NativeHandleRequest;
  removeAccount(account: number): Promise<number>;
  setRegistration(account: number, renew: boolean): Promise<number>;
  makeCall(account: number, uri: string, headers?: Record<string, string>): NativeHandleRequest;
  answer(call: number, code?: number, reason?: string, headers?: Record<string, string>): Promise<number>;
  hangup(call: number, code?: number, reason?: string, headers?: Record<string, string>): Promise<number>;
  transfer(call: number, target: string): Promise<number>;
  sendDtmf(call: number, digits: string, method?: 'rfc2833' | 'info'): Promise<number>;
  shutdown(): Promise<void>;
  /** Append PCM to the call's TX ring; returns samples accepted, -1 if the call is gone. */
  writeAudio(call: number, pcm: Int16Array): number;
  /** Empty the TX ring now; returns the read index where playout stopped, -1 if the call is gone. */
  clearAudio(call: number): number;
  /** [readIndex, writeIndex] of the TX ring, or null if the call is gone. */
  txIndex(call: number): [number, number] | null;
  /** The last 64 ticks' TX ranges, oldest first, flat [start, end, timeUs] per tick (null for an unknown call). */
  txTicks(call: number): Float64Array | null;
  audioStats(call: number): NativeAudioStats | null;
  setRxEnabled(call: number, enabled: boolean): void;
  /** Set the process-wide admission policy of the message guard (applies from the next request; null: none, everything passes). */
  setAdmission(policy: NativeAdmissionPolicy | null): void;
  /** The message guard's refusal counters. */
  admissionStats(): NativeAdmissionStats;
  /** Audio waiting in the call's jitter buffer, ms (-1 before the first reading, null for an unknown call). */
  jitterDelay(call: number): number | null;
  /** Answer admitted INVITEs in the guard with 486 (full) or 503 (draining); 0 lets them through. */
  setCallRefusal(code: 0 | 486 | 503): void;
  /** Answer OPTIONS outside a dialog with 503 and this reason phrase ('' = 200: taking calls). */
  setUnavailable(reason: string): void;
  readonly running: boolean;
}

/**
 * A resampling filter as the addon takes it: structurally the `ResamplerKernelSpec` of
 * src/audio/Resampler.ts, which designs it (native/ does not import audio/).
 */
export interface NativeResamplerSpec {
  /** Interpolation factor L (number of polyphase branches). */
  readonly up: number;
  /** Decimation factor M. */
  readonly down: number;
  /** Taps per branch K; at least `ceil(down / up) + 1`. */
  readonly tapsPerPhase: number;
  /** Linear-phase delay in intermediate-rate samples (integer): what flush() owes. */
  readonly delay: number;
  /** `up * tapsPerPhase` coefficients, branch by branch, oldest input first (run as float32). */
  readonly coefficients: Float64Array | Float32Array;
}

/**
 * The addon's streaming resampler (native/core/Resampler.hpp): structurally a `ResamplerKernel`.
 * Synchronous, JS thread only; argument errors throw TypeError or RangeError.
 */
export interface NativeResampler {
  /** Consume `input`, write the outputs it completes to the start of `out`, return how many (RangeError if `out` is too small). */
  process(input: Int16Array, out: Int16Array): number;
  /** Write the stream's tail to `out`, return how many, then start over as after reset(). */
  flush(out: Int16Array): number;
  /** Forget all history. */
  reset(): void;
  /** Output samples saturated at the Int16 limits since creation. */
  readonly clippedSamples: number;
}

/** What the addon module exports (after binding.ts wired the error classes). */
export interface NativeBinding {
  /** pjproject version the addon was built with. */
  readonly pjVersion: string;
  /** Create an agent; `onEvent` receives every event in order. */
  createUserAgent(onEvent: (ev: NativeEvent) => void): NativeUserAgent;
  /** Create a native resampler running the given filter. */
  createResampler(spec: NativeResamplerSpec): NativeResampler;
}

import { TypedEmitter } from '../util/TypedEmitter';
import { InvalidStateError, SipError } from '../util/errors';
import type { NativeAudioStats, NativeUserAgent } from '../native/NativeBinding';
import type { SipAccount } from './SipAccount';
import type { SipCallEnd, SipCallInfo, SipCallState, SipMediaInfo, TransferResult } from './types';

/** Events of a {@link SipCall}. */
export type SipCallEvents = {
  /** INVITE session state changed. */
  state: [SipCallState, { sipCode: number; reason: string }];
  /** Media became active, changed codec, or went on hold. */
  media: [SipMediaInfo];
  /**
   * Caller audio at the bridge rate: one or more 20 ms frames per clock tick, with the times its
   * first and last frames left the clock thread (µs, CLOCK_MONOTONIC as `process.hrtime()`; NaN when unknown).
   */
  audio: [pcm: Int16Array, firstUs: number, lastUs: number];
  /** A DTMF digit from the remote side. */
  dtmf: [{ digit: string; method: 'rfc2833' | 'info' }];
  /** NOTIFY progress of a transfer we started. */
  transferStatus: [{ sipCode: number; reason: string; final: boolean }];
  /** The call ended (emitted once). */
  ended: [SipCallEnd];
  /** The native call object is gone; no more events. */
  close: [];
};

/**
 * One SIP call (inbound or outbound) of a {@link UserAgent}. Actions return promises that reject
 * with SipError (keeping the SIP status) or InvalidStateError. Audio goes in and out as
 * Int16Array PCM at the bridge rate (`sampleRate`).
 */
export class SipCall extends TypedEmitter<SipCallEvents> {
  /** Native handle, unique for the life of the process. */
  readonly handle: number;
  readonly account: SipAccount;
  readonly info: Readonly<SipCallInfo>;
  /** Bridge rate of this call's PCM. */
  readonly sampleRate: number;
  #native: NativeUserAgent;
  #state: SipCallState;
  #lastSipCode = 0;
  #lastReason = '';
  #media: SipMediaInfo | null = null;
  #ended: SipCallEnd | null = null;
  #localEnd = false;
  #answered = false;
  #closed = false;
  #transfer: { resolve: (r: TransferResult) => void } | null = null;

  /** @internal created by UserAgent. */
  constructor(native: NativeUserAgent, handle: number, account: SipAccount, info: SipCallInfo, sampleRate: number) {
    super();
    this.#native = native;
    this.handle = handle;
    this.account = account;
    this.info = info;
    this.sampleRate = sampleRate;
    this.#state = info.direction === 'inbound' ? 'incoming' : 'calling';
  }

  /** Current INVITE session state. */
  get state(): SipCallState {
    return this.#state;
  }

  /** Media details once negotiated, else null. */
  get media(): SipMediaInfo | null {
    return this.#media;
  }

  /** How the call ended, once it has. */
  get end(): SipCallEnd | null {
    return this.#ended;
  }

  /** True once the call is disconnected. */
  get ended(): boolean {
    return this.#ended !== null;
  }

  /** True once the native object is gone. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Value of the first INVITE header with this name (case-insensitive), or undefined. */
  header(name: string): string | undefined {
    const n = name.toLowerCase();
    return this.info.rawHeaders.find(([k]) => k.toLowerCase() === n)?.[1];
  }

  /** Send 180 Ringing (inbound, before answer). */
  async ringing(): Promise<void> {
    this.#requireInbound('ringing()');
    await this.#native.answer(this.handle, 180);
  }

  /** Answer with 200 OK (or another 2xx), optionally adding headers. */
  async answer(code = 200, headers?: Record<string, string>): Promise<void> {
    this.#requireInbound('answer()');
    if (code < 200 || code > 299) throw new TypeError(`answer() needs a 2xx status [callId:${this.handle}, status:${code}]`);
    this.#answered = true;
    await this.#native.answer(this.handle, code, undefined, headers);
  }

  /** Reject an unanswered inbound call with a final status (486 Busy Here, 403, 503...). */
  async reject(code = 486, reason?: string): Promise<void> {
    this.#requireInbound('reject()');
    if (code < 300 || code > 699) throw new TypeError(`reject() needs a 3xx-6xx status [callId:${this.handle}, status:${code}]`);
    this.#localEnd = true;
    await this.#native.answer(this.handle, code, reason);
  }

  /** Hang up: BYE when connected, CANCEL when calling, or `code` for an unanswered inbound call. */
  async hangup(code?: number, reason?: string): Promise<void> {
    if (this.#ended) return;
    this.#localEnd = true;
    const status = code ?? (this.info.direction === 'inbound' && !this.#answered && this.#state !== 'confirmed' ? 603 : 0);
    try {
      await this.#native.hangup(this.handle, status, reason);
    } catch (err) {
      if (this.#ended) return; // raced the remote BYE
      throw err;
    }
  }

  /**
   * Blind transfer (REFER, RFC 3515). Resolves with the final NOTIFY's outcome; the call stays up
   * (hang it up after a successful transfer).
   */
  async transfer(target: string, timeoutMs = 30000): Promise<TransferResult> {
    this.#requireLive('transfer()');
    if (this.#transfer) throw new InvalidStateError(`transfer() already in progress [callId:${this.handle}]`);
    const result = new Promise<TransferResult>((resolve) => {
      const timer = setTimeout(() => {
        this.#transfer = null;
        resolve({ ok: false, sipCode: 408, reason: 'transfer timed out' });
      }, timeoutMs);
      this.#transfer = {
        resolve: (r) => {
          clearTimeout(timer);
          this.#transfer = null;
          resolve(r);
        },
      };
    });
    try {
      await this.#native.transfer(this.handle, target);
    } catch (err) {
      (this.#transfer as { resolve: (r: TransferResult) => void } | null)?.resolve({ ok: false, sipCode: err instanceof SipError ? err.status : 0, reason: String((err as Error).message) });
      throw err;
    }
    return result;
  }

  /** Send DTMF digits (RFC 2833 events or SIP INFO). */
  async sendDtmf(digits: string, method: 'rfc2833' | 'info' = 'rfc2833'): Promise<void> {
    this.#requireLive('sendDtmf()');
    await this.#native.sendDtmf(this.handle, digits, method);
  }

  /** Queue agent audio for the caller; returns samples accepted (the rest did not fit in the ring). */
  writeAudio(pcm: Int16Array): number {
    return Math.max(0, this.#native.writeAudio(this.handle, pcm));
  }

  /** Drop all queued agent audio at once; returns the TX read index where playout stopped. */
  clearAudio(): number {
    return this.#native.clearAudio(this.handle);
  }

  /** [readIndex, writeIndex] of the TX ring (monotonic sample counts). */
  txIndex(): [number, number] {
    return this.#native.txIndex(this.handle) ?? [0, 0];
  }

  /**
   * When the last 64 clock ticks sent this call's audio: flat [start, end, timeUs] per tick, oldest
   * first, `start`/`end` being TX ring indices (as {@link txIndex}) and `timeUs` CLOCK_MONOTONIC µs.
   * Null once closed.
   */
  txTicks(): Float64Array | null {
    return this.#native.txTicks(this.handle);
  }

  /** Audio waiting in the jitter buffer, ms, read about once a second (-1 unknown or closed). */
  jitterDelayMs(): number {
    return this.#native.jitterDelay(this.handle) ?? -1;
  }

  /** Audio counters of the native port (null once closed). */
  audioStats(): NativeAudioStats | null {
    return this.#native.audioStats(this.handle);
  }

  /** Resolve when the call reaches `state` (or has passed it by ending); reject after timeoutMs. */
  async waitForState(state: SipCallState, timeoutMs = 10000): Promise<void> {
    if (this.#state === state) return;
    if (this.#ended && state !== 'disconnected') throw new InvalidStateError(`call ended before ${state} [callId:${this.handle}]`);
    const deadline = Date.now() + timeoutMs;
    while (this.#state !== state) {
      const left = deadline - Date.now();
      if (left <= 0) throw new InvalidStateError(`timed out waiting for ${state} [callId:${this.handle}, state:${this.#state}]`);
      await this.waitFor('state', left).catch(() => undefined);
      if (this.#ended && state !== 'disconnected') throw new InvalidStateError(`call ended before ${state} [callId:${this.handle}]`);
    }
  }

  /** Hang up if still up (idempotent). The `close` event follows when the native call is deleted. */
  async close(): Promise<void> {
    if (!this.#ended && this.#native.running) await this.hangup().catch(() => undefined);
  }

  // ---- native events (UserAgent routes them here) ----

  /** @internal */
  handleState(state: SipCallState | 'null', sipCode: number, reason: string, connectDurationMs: number): void {
    if (state === 'null') return;
    this.#lastSipCode = sipCode;
    this.#lastReason = reason;
    if (state === this.#state && state !== 'disconnected') return;
    this.#state = state;
    this.emit('state', state, { sipCode, reason });
    if (state === 'disconnected' && !this.#ended) {
      this.#ended = { sipCode, reason, by: this.#localEnd ? 'local' : 'remote', connectDurationMs };
      this.#transfer?.resolve({ ok: false, sipCode: 487, reason: 'call ended during transfer' });
      this.emit('ended', this.#ended);
    }
  }

  /** @internal */
  handleMedia(media: SipMediaInfo): void {
    this.#media = media;
    this.emit('media', media);
  }

  /** @internal */
  handleAudio(pcm: Int16Array, firstUs: number, lastUs: number): void {
    this.emit('audio', pcm, firstUs, lastUs);
  }

  /** @internal */
  handleDtmf(digit: string, method: 'rfc2833' | 'info'): void {
    this.emit('dtmf', { digit, method });
  }

  /** @internal */
  handleTransferStatus(sipCode: number, reason: string, final: boolean): void {
    this.emit('transferStatus', { sipCode, reason, final });
    if (final) this.#transfer?.resolve({ ok: sipCode >= 200 && sipCode < 300, sipCode, reason });
  }

  /** @internal */
  handleClosed(): void {
    if (this.#closed) return;
    if (!this.#ended) this.handleState('disconnected', this.#lastSipCode || 503, this.#lastReason || 'closed', 0);
    this.#closed = true;
    this.emit('close');
    this.removeAllListeners();
  }

  #requireInbound(what: string): void {
    if (this.info.direction !== 'inbound') throw new InvalidStateError(`${what} is for inbound calls [callId:${this.handle}]`);
    this.#requireLive(what);
  }

  #requireLive(what: string): void {
    if (this.#ended) throw new InvalidStateError(`${what} failed: the call has ended [callId:${this.handle}, status:${this.#ended.sipCode}]`);
  }
}

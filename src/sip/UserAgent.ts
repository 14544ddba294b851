import { TypedEmitter } from '../util/TypedEmitter';
import { ReportLimiter } from '../util/ReportLimiter';
import { InvalidStateError, SipError } from '../util/errors';
import type { Logger } from '../logging/logger';
import type {
  NativeAdmissionPolicy,
  NativeAdmissionStats,
  NativeBinding,
  NativeEndpointConfig,
  NativeEvent,
  NativeTransportConfig,
  NativeUserAgent,
} from '../native/NativeBinding';
import { SipAccount } from './SipAccount';
import { SipCall } from './SipCall';
import type { AccountOptions, TransportOptions, UserAgentOptions } from './types';

/** Events of a {@link UserAgent}. */
export type UserAgentEvents = {
  /** An INVITE arrived. Answer, ring or reject it; unanswered calls time out on the caller's side. */
  incomingCall: [SipCall];
  /** Emitted once per audio wake, after every call's `audio` event of that tick. */
  tick: [];
  /** close() finished. */
  close: [];
  /** The native library stopped without being asked to. */
  died: [Error];
};

/**
 * A SIP user agent: one PJSIP endpoint (a process singleton), its transports, accounts and calls.
 * Create with {@link UserAgent.start}; always {@link UserAgent.close} it.
 */
export class UserAgent extends TypedEmitter<UserAgentEvents> {
  readonly #native: NativeUserAgent;
  readonly #log: Logger;
  readonly #accounts = new Map<number, SipAccount>();
  readonly #calls = new Map<number, SipCall>();
  readonly #pjFloodLimiter = new ReportLimiter({ intervalMs: PJ_FLOOD_LOG_INTERVAL_MS });
  #transports: Record<string, string> = {};
  #clockRate = 8000;
  #closing: Promise<void> | null = null;
  #closed = false;
  #stoppedNative = false;
  #onStopped: (() => void) | null = null;

  private constructor(binding: NativeBinding, logger: Logger) {
    super();
    this.#log = logger;
    this.#native = binding.createUserAgent((ev) => this.#onEvent(ev));
  }

  /** Start the endpoint: transports, null sound device, codecs. Rejects if a port is in use. */
  static async start(binding: NativeBinding, options: UserAgentOptions, logger: Logger): Promise<UserAgent> {
    const ua = new UserAgent(binding, logger);
    const cfg = toNativeConfig(options);
    ua.#clockRate = cfg.clockRate ?? 8000;
    // Process-wide, like the library: in force before the transports open.
    ua.#native.setAdmission(options.admission ?? null);
    ua.#native.setCallRefusal(0);
    ua.#native.setUnavailable('');
    try {
      ua.#transports = await ua.#native.start(cfg);
    } catch (err) {
      // The library tears itself down after a failed start; wait for that, so a new agent can
      // start in this process as soon as this rejects.
      await ua.#waitStopped(5000);
      throw err;
    }
    logger.info({ transports: ua.#transports, clockRate: ua.#clockRate, pjsip: binding.pjVersion }, 'SIP user agent started');
    return ua;
  }

  /** Local address (ip:port) of each enabled transport, e.g. `{ udp: '127.0.0.1:5060' }`. */
  get transports(): Readonly<Record<string, string>> {
    return this.#transports;
  }

  /** Bridge rate of every call's PCM. */
  get clockRate(): number {
    return this.#clockRate;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Accounts currently configured. */
  get accounts(): SipAccount[] {
    return [...this.#accounts.values()];
  }

  /** Calls not yet closed. */
  get calls(): SipCall[] {
    return [...this.#calls.values()];
  }

  /** Add an account; it registers at once when it has a registrar. */
  async addAccount(options: AccountOptions): Promise<SipAccount> {
    this.#requireOpen('addAccount()');
    const req = this.#native.addAccount({
      idUri: options.uri,
      registrarUri: options.registrar,
      username: options.username,
      password: options.password,
      realm: options.realm,
      proxies: options.proxies,
      expiresSec: options.expiresSec,
      retryIntervalSec: options.retryIntervalSec,
      firstRetryIntervalSec: options.firstRetryIntervalSec,
      keepaliveSec: options.keepaliveSec,
      transport: options.transport,
      isDefault: options.isDefault,
    });
    // Known before its first registration event can arrive.
    const acc = new SipAccount(this.#native, req.handle, options);
    acc.on('close', () => this.#accounts.delete(req.handle));
    this.#accounts.set(req.handle, acc);
    try {
      await req.done;
    } catch (err) {
      this.#accounts.delete(req.handle);
      acc.markClosed();
      throw err;
    }
    return acc;
  }

  /** Place an outgoing call from `account` to `uri`, with optional extra INVITE headers. */
  async call(account: SipAccount, uri: string, options: { headers?: Record<string, string> } = {}): Promise<SipCall> {
    this.#requireOpen('call()');
    const req = this.#native.makeCall(account.handle, uri, options.headers);
    const handle = req.handle;
    // Known before its first event can arrive.
    const call = new SipCall(
      this.#native,
      handle,
      account,
      { direction: 'outbound', remoteUri: uri, localUri: account.uri, requestUri: uri, sipCallId: '', srcAddress: '', rawHeaders: [] },
      this.#clockRate,
    );
    this.#calls.set(handle, call);
    try {
      await req.done;
    } catch (err) {
      if (this.#calls.delete(handle)) call.handleClosed();
      throw err;
    }
    return call;
  }

  /**
   * Set the admission policy the message guard applies to every request that starts something
   * (source admission 403, unknown Request-URI user 404, per-source rate limits). Without one,
   * every request passes. Process-wide, like the library; applies from the next request.
   */
  setAdmission(policy: NativeAdmissionPolicy | null): void {
    this.#native.setAdmission(policy);
  }

  /** Answer admitted INVITEs before they become calls: 486 (full), 503 (draining), 0 (let them in). */
  setCallRefusal(code: 0 | 486 | 503): void {
    if (!this.#closed) this.#native.setCallRefusal(code);
  }

  /**
   * Why the agent takes no calls now, or '' when it does: OPTIONS probes (a dispatcher's) get 503
   * with this reason phrase, or pjsua's 200.
   */
  setUnavailable(reason: string): void {
    if (!this.#closed) this.#native.setUnavailable(reason);
  }

  /** Requests the message guard refused, by reason. */
  admissionStats(): NativeAdmissionStats {
    return this.#native.admissionStats();
  }

  /**
   * Stop: hang up every call, remove ports, delete calls, unregister, destroy the library
   * (idempotent).
   */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = (async () => {
        try {
          await this.#native.shutdown();
        } finally {
          this.#finish();
          this.emit('close');
          this.removeAllListeners();
        }
      })();
    }
    return this.#closing;
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const call of this.#calls.values()) call.handleClosed();
    this.#calls.clear();
    for (const acc of this.#accounts.values()) acc.markClosed();
    this.#accounts.clear();
  }

  #requireOpen(what: string): void {
    if (this.#closed || this.#closing) throw new InvalidStateError(`${what} failed: the user agent is closed`);
  }

  #onEvent(ev: NativeEvent): void {
    switch (ev.type) {
      case 'audio': {
        for (const [handle, pcm, firstUs, lastUs] of ev.frames) this.#calls.get(handle)?.handleAudio(pcm, firstUs, lastUs);
        this.emit('tick');
        return;
      }
      case 'log':
        logPj(this.#log, ev.level, ev.message, this.#pjFloodLimiter);
        return;
      case 'incomingCall': {
        const account = this.#accounts.get(ev.account);
        if (!account) {
          this.#log.error({ call: ev.call, account: ev.account }, 'incoming call for an unknown account');
          return;
        }
        const call = new SipCall(
          this.#native,
          ev.call,
          account,
          {
            direction: 'inbound',
            remoteUri: ev.fromUri,
            localUri: ev.toUri,
            requestUri: ev.requestUri,
            sipCallId: ev.sipCallId,
            srcAddress: ev.srcAddress,
            rawHeaders: ev.headers,
          },
          this.#clockRate,
        );
        this.#calls.set(ev.call, call);
        this.emit('incomingCall', call);
        return;
      }
      case 'callState':
      case 'callMedia':
      case 'dtmf':
      case 'transferStatus':
      case 'callClosed': {
        // Handles are known before any event names them: an unknown one is a call already closed.
        const call = this.#calls.get(ev.call);
        if (call) this.#routeCall(call, ev);
        return;
      }
      case 'regState': {
        const acc = this.#accounts.get(ev.account);
        if (!acc) return;
        this.#log[ev.registered || ev.unregistering ? 'info' : 'warn'](
          { account: acc.uri, sipCode: ev.sipCode, reason: ev.reason, expiresSec: ev.expiresSec },
          ev.unregistering ? 'unregistered' : ev.registered ? 'registered' : 'registration failed',
        );
        acc.handleRegState({ registered: ev.registered, sipCode: ev.sipCode, reason: ev.reason, expiresSec: ev.expiresSec });
        return;
      }
      case 'registrar': {
        const acc = this.#accounts.get(ev.account);
        if (!acc) return;
        if (ev.reachable) this.#log.info({ account: acc.uri, sipCode: ev.sipCode }, 'registrar answers again; registering');
        else this.#log.warn({ account: acc.uri, sipCode: ev.sipCode, reason: ev.reason }, 'registrar does not answer');
        acc.handleRegistrar(ev.reachable);
        return;
      }
      case 'stopped':
        this.#stoppedNative = true;
        this.#onStopped?.();
        if (ev.failed && !this.#transportsKnown()) return;
        if (ev.failed || !this.#closing) {
          const err = new SipError(`SIP library stopped: ${ev.reason || 'unexpectedly'}`);
          this.#finish();
          if (!this.#closing) this.emit('died', err);
        }
        return;
    }
  }

  #transportsKnown(): boolean {
    return Object.keys(this.#transports).length > 0;
  }

  #waitStopped(timeoutMs: number): Promise<void> {
    if (this.#stoppedNative) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#onStopped = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  #routeCall(call: SipCall, ev: NativeEvent): void {
    switch (ev.type) {
      case 'callState':
        call.handleState(ev.state, ev.sipCode, ev.reason, ev.connectDurationMs);
        return;
      case 'callMedia':
        call.handleMedia({ active: ev.active, status: ev.status, codec: ev.codec, codecClockRate: ev.codecClockRate });
        return;
      case 'dtmf':
        call.handleDtmf(ev.digit, ev.method);
        return;
      case 'transferStatus':
        call.handleTransferStatus(ev.sipCode, ev.reason, ev.final);
        return;
      case 'callClosed':
        this.#calls.delete(call.handle);
        call.handleClosed();
        return;
      default:
    }
  }
}

function transport(t: TransportOptions | false | undefined, def: boolean): NativeTransportConfig | null {
  if (t === false) return { enabled: false };
  if (t === undefined) return def ? { enabled: true } : { enabled: false };
  return { enabled: true, ...t };
}

/** Map typed options to the addon's flat config. */
export function toNativeConfig(o: UserAgentOptions): NativeEndpointConfig {
  const m = o.media ?? {};
  return {
    udp: transport(o.udp, true),
    tcp: transport(o.tcp, false),
    tls: transport(o.tls, false),
    userAgent: o.userAgent,
    clockRate: m.clockRate ?? 8000,
    ptimeMs: m.ptimeMs ?? 20,
    codecs: m.codecs,
    jbInitMs: m.jitterBuffer?.initMs,
    jbMinPreMs: m.jitterBuffer?.minPrefetchMs,
    jbMaxPreMs: m.jitterBuffer?.maxPrefetchMs,
    jbMaxMs: m.jitterBuffer?.maxMs,
    srtp: m.srtp,
    srtpSecureSignaling: m.srtpSecureSignaling,
    rtpPortStart: m.rtpPortStart,
    rtpPortRange: m.rtpPortRange,
    rtpBindAddress: m.rtpBindAddress,
    rtpPublicAddress: m.rtpPublicAddress,
    txRingMs: m.txBufferMs,
    rxRingMs: m.rxBufferMs,
    logLevel: o.pjLogLevel,
    maxCalls: o.maxCalls,
  };
}

/** A whole SIP message PJSIP logs when message logging is on (`logging.sipMessages`). */
const SIP_MESSAGE_DUMP = /\b(?:RX|TX) \d+ bytes (?:Request|Response) msg /;

/** Once per source (or kind) per this interval: PJSIP lines that outside packets trigger. */
export const PJ_FLOOD_LOG_INTERVAL_MS = 60_000;

/** The rate-limit key of a PJSIP line that outside input triggers, or undefined for any other line. */
export function floodKey(msg: string): string | undefined {
  const bad = /Error processing packet from (\[[^\]]+\]|[\d.]+|[0-9a-fA-F:]+?)(?::\d+)?:/.exec(msg);
  if (bad) return `bad-packet ${bad[1]}`;
  if (/\bsip_parser\.c\b/.test(msg)) return 'parser';
  if (/\bsip_transport\.c\b.*(?:Dropping|dropped|too long|overflow)/i.test(msg)) return 'transport-drop';
  return undefined;
}

/**
 * PJSIP level -> pino level: 1 error, 2 warn, 3 info, 4 debug, 5-6 trace. Whole SIP messages
 * (PJSIP's level 4) are logged at info: they only appear when the operator turned message logging
 * on, so they must not vanish under the default log level.
 */
export function logPj(log: Logger, level: number, message: string, limiter?: ReportLimiter): void {
  let msg = message.trim();
  const fields: Record<string, unknown> = { src: 'pjsip' };
  // What a stranger's packets make PJSIP say (a bad packet, an unparseable value) is said at most
  // once per source and kind per interval: a flood of garbage must not become a flood of logs.
  const key = limiter ? floodKey(msg) : undefined;
  if (key !== undefined && limiter) {
    const r = limiter.check(key);
    if (!r.report) return;
    if (r.suppressed > 0) {
      fields.heldBack = r.suppressed;
      msg = `${msg}\n(${r.suppressed} more like this since the last report)`;
    }
  }
  if (level === 4 && SIP_MESSAGE_DUMP.test(msg)) log.info({ ...fields, sipMessage: true }, msg);
  else if (level <= 1) log.error(fields, msg);
  else if (level === 2) log.warn(fields, msg);
  else if (level === 3) log.info(fields, msg);
  else if (level === 4) log.debug(fields, msg);
  else log.trace(fields, msg);
}

/** Public types of the SIP layer (UserAgent, SipAccount, SipCall). */
import type { NativeAdmissionPolicy as AdmissionPolicy } from '../native/NativeBinding';

/** One SIP transport. */
export interface TransportOptions {
  /** Address to bind (default: all interfaces). */
  bindAddress?: string;
  /** Port (0 = any free port). */
  port?: number;
  /** Address advertised in Via/Contact when behind NAT. */
  publicAddress?: string;
  /** TLS only. */
  certFile?: string;
  privKeyFile?: string;
  caListFile?: string;
  password?: string;
  verifyServer?: boolean;
  verifyClient?: boolean;
  /** TLS only: the lowest version accepted (default tlsv1.2: 1.2 and 1.3). */
  method?: 'tlsv1.2' | 'tlsv1.3';
}

/** Media settings of the endpoint. */
export interface MediaOptions {
  /** Conference bridge and PCM frame rate: 8000 (default), 16000 or 24000. */
  clockRate?: 8000 | 16000 | 24000;
  /** Bridge tick and frame length (20 ms). */
  ptimeMs?: 10 | 20;
  /** Codec names in priority order (PCMU, PCMA, G722, opus); unlisted codecs are disabled. */
  codecs?: string[];
  /** Jitter buffer in ms (-1 = PJSIP default). */
  jitterBuffer?: { initMs?: number; minPrefetchMs?: number; maxPrefetchMs?: number; maxMs?: number };
  srtp?: 'disabled' | 'optional' | 'mandatory';
  /** 0 = SRTP allowed over any transport, 1 = needs TLS hop, 2 = needs SIPS end to end. */
  srtpSecureSignaling?: 0 | 1 | 2;
  rtpPortStart?: number;
  rtpPortRange?: number;
  rtpBindAddress?: string;
  rtpPublicAddress?: string;
  /** Capacity of each call's agent-audio ring (ms). */
  txBufferMs?: number;
  /** Capacity of each call's caller-audio ring (ms). */
  rxBufferMs?: number;
}

/** Options of {@link UserAgent.start}. */
export interface UserAgentOptions {
  udp?: TransportOptions | false;
  tcp?: TransportOptions | false;
  tls?: TransportOptions | false;
  /** User-Agent header. */
  userAgent?: string;
  media?: MediaOptions;
  /** PJSIP log level 0..6 bridged into the logger. */
  pjLogLevel?: number;
  /** Maximum concurrent calls PJSIP accepts. */
  maxCalls?: number;
  /** Admission policy in force from the first packet (unset: every request passes). */
  admission?: AdmissionPolicy;
}

/** Options of {@link UserAgent.addAccount}. */
export interface AccountOptions {
  /** Our identity, e.g. `sip:100@pbx.example.com`. */
  uri: string;
  /** Registrar URI; omit for a registration-less account (takes calls sent to our address). */
  registrar?: string;
  username?: string;
  password?: string;
  /** Digest realm the credentials answer (unset: the registrar's, learned; `*`: anyone). */
  realm?: string;
  /** Outbound proxy URIs (loose routing). */
  proxies?: string[];
  expiresSec?: number;
  retryIntervalSec?: number;
  firstRetryIntervalSec?: number;
  /**
   * Probe the registrar with OPTIONS this often, s (0 or unset: never). When it stops answering and
   * then answers again, the account registers at once (a restarted registrar may have lost us).
   */
  keepaliveSec?: number;
  /** Bind the account to one transport: udp, tcp or tls. */
  transport?: 'udp' | 'tcp' | 'tls';
  /** Receives calls that match no other account. */
  isDefault?: boolean;
}

/** Registration state of an account. */
export interface RegistrationState {
  registered: boolean;
  /** Last SIP status of a REGISTER (200, 401, 403, 408...). */
  sipCode: number;
  reason: string;
  expiresSec: number;
  /** False while the registrar leaves our OPTIONS keepalives unanswered. */
  registrarReachable: boolean;
}

/** INVITE session states (RFC 3261 dialog states as PJSIP names them). */
export type SipCallState = 'incoming' | 'calling' | 'early' | 'connecting' | 'confirmed' | 'disconnected';

/** What we know of a call from its INVITE. */
export interface SipCallInfo {
  direction: 'inbound' | 'outbound';
  /** From (inbound) or To (outbound) as a name-addr, e.g. `"Ann" <sip:ann@pbx>`. */
  remoteUri: string;
  /** Our side's URI. */
  localUri: string;
  requestUri: string;
  sipCallId: string;
  /** Source address of the INVITE (ip:port), inbound only. */
  srcAddress: string;
  /** Every header of the INVITE in order, names as received (inbound only). */
  rawHeaders: [string, string][];
}

/** The call's audio stream once media is up. */
export interface SipMediaInfo {
  active: boolean;
  status: string;
  codec: string;
  codecClockRate: number;
}

/** How a call ended. */
export interface SipCallEnd {
  sipCode: number;
  reason: string;
  /** Who ended it: `local` (we hung up/rejected) or `remote`. */
  by: 'local' | 'remote';
  connectDurationMs: number;
}

/** Outcome of a blind transfer. */
export interface TransferResult {
  ok: boolean;
  sipCode: number;
  reason: string;
}

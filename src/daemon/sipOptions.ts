/** Maps the configuration onto the SIP layer's options (transports, media, accounts). */
import type { AgentConfig } from '../config';
import type { AccountOptions, TransportOptions, UserAgentOptions } from '../sip/types';

function transport(t: { enabled: boolean; bindAddress?: string; port: number; publicAddress?: string }): TransportOptions | false {
  if (!t.enabled) return false;
  return { bindAddress: t.bindAddress, port: t.port, publicAddress: t.publicAddress };
}

/** Endpoint options from `sip.*`, `media.*` and `logging.pjsipLevel`. */
export function userAgentOptions(cfg: AgentConfig): UserAgentOptions {
  const tr = cfg.sip.transports;
  const tls = tr.tls;
  const m = cfg.media;
  return {
    udp: transport(tr.udp),
    tcp: transport(tr.tcp),
    tls: tls.enabled
      ? {
          bindAddress: tls.bindAddress,
          port: tls.port,
          publicAddress: tls.publicAddress,
          certFile: tls.certFile,
          privKeyFile: tls.privKeyFile,
          caListFile: tls.caListFile,
          verifyServer: tls.verifyServer,
          verifyClient: tls.verifyClient,
          method: tls.method,
        }
      : false,
    // A named instance says its name in every request and response (OPTIONS probes included).
    userAgent: cfg.instance.id ? `${cfg.sip.userAgent} (${cfg.instance.id})` : cfg.sip.userAgent,
    media: {
      clockRate: Number(m.clockRate) as 8000 | 16000 | 24000,
      codecs: [...m.codecs],
      jitterBuffer: {
        initMs: m.jitterBuffer.initMs,
        minPrefetchMs: m.jitterBuffer.minPrefetchMs,
        maxPrefetchMs: m.jitterBuffer.maxPrefetchMs,
        maxMs: m.jitterBuffer.maxMs,
      },
      srtp: m.srtp as 'disabled' | 'optional' | 'mandatory',
      // SRTP over plain UDP/TCP is allowed when TLS is off; with TLS on, require the TLS hop.
      srtpSecureSignaling: tls.enabled ? 1 : 0,
      rtpPortStart: m.rtpPortStart,
      rtpPortRange: m.rtpPortRange,
      rtpBindAddress: tr.udp.bindAddress,
      rtpPublicAddress: m.publicAddress,
      txBufferMs: m.txBufferMs,
      rxBufferMs: m.rxBufferMs,
    },
    pjLogLevel: Math.max(cfg.logging.pjsipLevel, cfg.logging.sipMessages ? 5 : 0),
    maxCalls: Math.min(510, Math.max(cfg.calls.maxConcurrent * 2 + 4, 16)),
  };
}

/**
 * Accounts from `accounts[]`. The first account receives calls that match no other; with no
 * account configured the agent takes calls sent straight to its address as `sip:agent@<host>`.
 */
export function accountOptions(cfg: AgentConfig): AccountOptions[] {
  if (cfg.accounts.length === 0) {
    const host = cfg.sip.transports.udp.bindAddress ?? '127.0.0.1';
    return [{ uri: `sip:agent@${host}`, isDefault: true }];
  }
  return cfg.accounts.map((a, i) => ({
    uri: a.uri,
    registrar: a.registrar,
    username: a.username,
    password: a.password,
    realm: a.realm,
    proxies: a.proxy ? [a.proxy] : undefined,
    expiresSec: a.registerExpiresSec,
    retryIntervalSec: a.retryIntervalSec,
    keepaliveSec: a.keepaliveSec,
    transport: a.transport === 'auto' ? undefined : (a.transport as 'udp' | 'tcp' | 'tls'),
    isDefault: i === 0,
  }));
}

/**
 * Runs the SIP fuzzer against one daemon (see sipfuzz.ts): the corpus over UDP and TCP, then
 * `count` mutated messages (a share from a second loopback address the daemon does not admit,
 * some over TCP), interleaved with dialog scenarios that need timing rather than bytes (CANCEL
 * racing the 200, a re-INVITE without SDP, a BYE and an INVITE on the same Call-ID). Every
 * `checkEvery` messages it checks the daemon is alive (process running, OPTIONS answered); when it
 * is not, it stops and reports the window of messages since the last good check.
 * Bounded: the count, a pacing rate, and a deadline.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import * as path from 'node:path';
import { RawSipClient, type SipHostPort } from '../helpers/rawsip';
import { delay } from '../helpers/proc';
import { Rng, corpusFiles, mutatedMessage, renderCorpus, sdpOffer, type FuzzTarget } from './sipfuzz';

/** TCP connections open at once, at most. */
const MAX_TCP_IN_FLIGHT = 16;

/** A second loopback address: a source the daemon never admitted. */
export const STRANGER = '127.0.0.2';

/** What the runner needs to know about the daemon. */
export interface FuzzDaemon {
  /** SIP UDP port on 127.0.0.1. */
  port: number;
  /** SIP TCP port on 127.0.0.1 (unset: no TCP). */
  tcpPort?: number;
  /** The agent's Request-URI user. */
  user: string;
  /** True while the process runs. */
  alive(): boolean;
}

export interface FuzzOptions {
  seed: number;
  /** Mutated messages to send. */
  count: number;
  /** Liveness check every this many messages (default 250). */
  checkEvery?: number;
  /** Messages per second at most (default 1500). */
  rate?: number;
  /** Share sent from STRANGER (default 0.2) and over TCP (default 0.1). */
  strangerShare?: number;
  tcpShare?: number;
  /** Run the corpus first (default true). */
  corpus?: boolean;
  /** Stop after this long, ms (default 10 min). */
  deadlineMs?: number;
  onProgress?: (sent: number) => void;
}

/** One message as sent. */
export interface SentMessage {
  label: string;
  bytes: Buffer;
  via: 'udp' | 'tcp';
  from: string;
}

export interface FuzzResult {
  sent: number;
  corpusSent: number;
  scenarios: number;
  responses: number;
  /** Responses by status code. */
  statuses: Record<string, number>;
  /** Liveness checks passed. */
  checks: number;
  /** Set when the daemon stopped answering or died: the messages since the last good check. */
  failure?: { reason: string; window: SentMessage[] };
  elapsedMs: number;
}

function statusOf(buf: Buffer): string | undefined {
  return /^SIP\/2\.0 (\d{3})/.exec(buf.subarray(0, 16).toString('latin1'))?.[1];
}

async function udpSocket(host: string, onMessage: (b: Buffer) => void): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  s.on('message', onMessage);
  s.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, host, () => {
      s.off('error', reject);
      resolve();
    });
  });
  return s;
}

/** Send `bytes` on a fresh TCP connection; the connection is closed shortly after. */
export function sendTcp(port: number, bytes: Buffer, onData: (b: Buffer) => void, localAddress = '127.0.0.1'): Promise<void> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port, localAddress });
    const done = (): void => {
      sock.destroy();
      resolve();
    };
    sock.setTimeout(300, done);
    sock.on('data', onData);
    sock.on('error', done);
    sock.on('close', done);
    sock.on('connect', () => {
      sock.write(bytes);
      setTimeout(done, 100).unref();
    });
  });
}

/** Run the fuzzer; never throws for what the daemon does (a failure is in the result). */
export async function runFuzz(d: FuzzDaemon, o: FuzzOptions): Promise<FuzzResult> {
  const started = Date.now();
  const deadline = started + (o.deadlineMs ?? 600_000);
  const checkEvery = o.checkEvery ?? 250;
  const minGapMs = 1000 / (o.rate ?? 1500);
  const res: FuzzResult = { sent: 0, corpusSent: 0, scenarios: 0, responses: 0, statuses: {}, checks: 0, elapsedMs: 0 };
  const onReply = (b: Buffer): void => {
    res.responses++;
    const s = statusOf(b) ?? 'other';
    res.statuses[s] = (res.statuses[s] ?? 0) + 1;
  };
  const own = await udpSocket('127.0.0.1', onReply);
  const stranger = await udpSocket(STRANGER, onReply);
  const probe = await RawSipClient.open();
  const dialogs = await RawSipClient.open();
  const agent: SipHostPort = { host: '127.0.0.1', port: d.port };
  const targetFor = (s: dgram.Socket): FuzzTarget => ({ host: '127.0.0.1', port: d.port, localHost: s.address().address, localPort: s.address().port, user: d.user });
  const rng = new Rng(o.seed ^ 0x5eed);
  let window: SentMessage[] = [];
  const tcpInFlight = new Set<Promise<void>>();
  let lastSend = 0;

  const send = async (m: SentMessage): Promise<void> => {
    const wait = lastSend + minGapMs - Date.now();
    if (wait > 1) await delay(wait);
    lastSend = Date.now();
    window.push(m);
    if (m.via === 'tcp') {
      // Connections overlap (a few at a time), so TCP does not slow the run down.
      while (tcpInFlight.size >= MAX_TCP_IN_FLIGHT) await Promise.race(tcpInFlight);
      const p = sendTcp(d.tcpPort ?? d.port, m.bytes, onReply, m.from).finally(() => tcpInFlight.delete(p));
      tcpInFlight.add(p);
    }
    else {
      const sock = m.from === STRANGER ? stranger : own;
      // A datagram over 65507 bytes cannot be sent: that case is for TCP.
      if (m.bytes.length <= 65_507) await new Promise<void>((r) => sock.send(m.bytes, d.port, '127.0.0.1', () => r()));
    }
  };

  const check = async (): Promise<string | undefined> => {
    await Promise.all(tcpInFlight);
    if (!d.alive()) return 'the daemon process exited';
    try {
      const r = await probe.transact({ method: 'OPTIONS', target: agent }, 5_000);
      // 503 with Retry-After is the rate limiter answering for a daemon that is up.
      if (r.status !== 200 && !(r.status === 503 && r.get('retry-after'))) return `OPTIONS answered ${r.status}`;
    } catch {
      return d.alive() ? 'OPTIONS went unanswered for 5 s' : 'the daemon process exited';
    }
    res.checks++;
    window = [];
    return undefined;
  };

  // Dialog scenarios: bytes alone do not reach these states.
  const scenario = async (k: number): Promise<void> => {
    res.scenarios++;
    const uri = `sip:${d.user}@127.0.0.1:${d.port}`;
    try {
      if (k % 3 === 0) {
        // CANCEL racing the 200: the INVITE and its CANCEL back to back.
        const sent = dialogs.buildOutOfDialog({ method: 'INVITE', target: agent, uri, body: sdpOffer('127.0.0.1', 34_000), contentType: 'application/sdp' });
        await dialogs.sendRaw(sent.bytes, agent);
        const cancel = Buffer.from(
          sent.bytes
            .toString('latin1')
            .split('\r\n\r\n')[0]!
            .replace(/^INVITE /, 'CANCEL ')
            .replace(/CSeq: (\d+) INVITE/, 'CSeq: $1 CANCEL')
            .replace(/\r\nContent-Type:[^\r]*/i, '')
            .replace(/Content-Length: \d+/i, 'Content-Length: 0') + '\r\n\r\n',
          'latin1',
        );
        if (k % 2 === 0) await delay(rng.int(40));
        await dialogs.sendRaw(cancel, agent);
        window.push({ label: `scenario ${k}: INVITE + CANCEL`, bytes: Buffer.concat([sent.bytes, cancel]), via: 'udp', from: '127.0.0.1' });
      } else if (k % 3 === 1) {
        // A re-INVITE without SDP in an established call, then BYE.
        const dlg = await dialogs.invite({ target: agent, uri, timeoutMs: 5_000 });
        if (dlg.established) {
          await dlg.request('INVITE', { timeoutMs: 5_000 }).catch(() => undefined);
          await dlg.bye(5_000).catch(() => undefined);
        }
        dlg.close();
        window.push({ label: `scenario ${k}: re-INVITE without SDP`, bytes: dlg.invite.bytes, via: 'udp', from: '127.0.0.1' });
      } else {
        // A BYE for a call still ringing, then the INVITE retransmitted after it.
        const sent = dialogs.buildOutOfDialog({ method: 'INVITE', target: agent, uri, body: sdpOffer('127.0.0.1', 34_002), contentType: 'application/sdp' });
        await dialogs.sendRaw(sent.bytes, agent);
        const bye = Buffer.from(
          sent.bytes
            .toString('latin1')
            .split('\r\n\r\n')[0]!
            .replace(/^INVITE /, 'BYE ')
            .replace(/CSeq: (\d+) INVITE/, (_, n: string) => `CSeq: ${Number(n) + 1} BYE`)
            .replace(/\r\nContent-Type:[^\r]*/i, '')
            .replace(/Content-Length: \d+/i, 'Content-Length: 0') + '\r\n\r\n',
          'latin1',
        );
        await dialogs.sendRaw(bye, agent);
        await dialogs.sendRaw(sent.bytes, agent);
        window.push({ label: `scenario ${k}: BYE before answer, INVITE again`, bytes: Buffer.concat([sent.bytes, bye]), via: 'udp', from: '127.0.0.1' });
      }
    } catch {
      // The daemon not answering a scenario is judged by the next liveness check.
    }
  };

  try {
    if (o.corpus ?? true) {
      for (const file of corpusFiles()) {
        for (const via of ['udp', 'tcp'] as const) {
          if (via === 'tcp' && d.tcpPort === undefined) continue;
          const bytes = renderCorpus(file, targetFor(own), rng);
          await send({ label: `corpus ${path.basename(file)} (${via})`, bytes, via, from: '127.0.0.1' });
          res.corpusSent++;
        }
        const why = await check();
        if (why) {
          res.failure = { reason: why, window };
          return res;
        }
      }
    }
    for (let i = 0; i < o.count && Date.now() < deadline; i++) {
      const fromStranger = rng.chance(o.strangerShare ?? 0.2);
      const via = d.tcpPort !== undefined && rng.chance(o.tcpShare ?? 0.1) ? 'tcp' : 'udp';
      const from = fromStranger ? STRANGER : '127.0.0.1';
      const bytes = mutatedMessage(o.seed, i, targetFor(fromStranger ? stranger : own));
      await send({ label: `seed ${o.seed} message ${i}`, bytes, via, from });
      res.sent++;
      if (i % 97 === 96) await scenario(i);
      if ((i + 1) % checkEvery === 0) {
        o.onProgress?.(i + 1);
        const why = await check();
        if (why) {
          res.failure = { reason: why, window };
          return res;
        }
      }
    }
    const why = await check();
    if (why) res.failure = { reason: why, window };
    return res;
  } finally {
    res.elapsedMs = Date.now() - started;
    own.close();
    stranger.close();
    probe.close();
    dialogs.close();
  }
}

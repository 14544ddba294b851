/**
 * One fuzzing session against a real daemon (echo backend, UDP and TCP on loopback, rate limits
 * raised so the mutations reach the SIP stack instead of the limiter), and the minimiser: when
 * the daemon dies, each message of the failing window is replayed alone against a fresh daemon,
 * and the one that kills it is saved to the corpus (test/fuzz/corpus/crash-*.sip), where every
 * later run replays it first.
 */
import * as dgram from 'node:dgram';
import { freePort } from '../helpers/ports';
import { RawSipClient } from '../helpers/rawsip';
import { prepareDaemon, startDaemon, type Daemon } from '../helpers/daemon';
import { delay } from '../helpers/proc';
import { STRANGER, runFuzz, sendTcp, type FuzzOptions, type FuzzResult, type SentMessage } from './runner';
import { saveCrash } from './sipfuzz';

/** Start a daemon set up for fuzzing. */
export async function startFuzzDaemon(name: string): Promise<{ d: Daemon; port: number; tcpPort: number }> {
  const tcpPort = await freePort('tcp');
  const setup = await prepareDaemon('echo', {
    sip: {
      transports: { tcp: { enabled: true, bindAddress: '127.0.0.1', port: tcpPort } },
      limits: { invitesPerSecond: 100000, inviteBurst: 100000, requestsPerSecond: 100000, requestBurst: 100000 },
    },
    calls: { maxConcurrent: 8, maxDurationSec: 30 },
    records: { recordAudio: false },
  });
  const d = await startDaemon(setup, { name });
  return { d, port: setup.ports.sip, tcpPort };
}

/** Replay one message alone on a fresh daemon; true when the daemon dies or stops answering. */
async function kills(m: SentMessage): Promise<boolean> {
  const { d, port, tcpPort } = await startFuzzDaemon('fuzz-minimise');
  try {
    if (m.via === 'tcp') await sendTcp(tcpPort, m.bytes, () => undefined, m.from);
    else {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((r) => s.bind(0, m.from === STRANGER ? STRANGER : '127.0.0.1', () => r()));
      await new Promise<void>((r) => s.send(m.bytes, port, '127.0.0.1', () => r()));
      s.close();
    }
    await delay(500);
    if (d.closed) return true;
    const probe = await RawSipClient.open();
    try {
      const r = await probe.transact({ method: 'OPTIONS', target: { host: '127.0.0.1', port } }, 5_000);
      return r.status !== 200;
    } catch {
      return true;
    } finally {
      probe.close();
    }
  } finally {
    await d.close();
  }
}

/** What a session found. */
export interface FuzzSession {
  result: FuzzResult;
  /** The daemon's last log lines when it failed. */
  tail?: string;
  /** Corpus files saved for the messages that killed it. */
  saved: string[];
}

/** Fuzz one daemon; on a failure, minimise the window and save the killers. */
export async function fuzzSession(o: FuzzOptions & { name?: string; minimise?: boolean }): Promise<FuzzSession> {
  const { d, port, tcpPort } = await startFuzzDaemon(o.name ?? 'fuzz');
  let result: FuzzResult;
  let tail: string | undefined;
  try {
    result = await runFuzz({ port, tcpPort, user: 'agent', alive: () => !d.closed }, o);
    if (result.failure) tail = d.tail(40);
  } finally {
    await d.close();
  }
  const saved: string[] = [];
  if (result.failure && (o.minimise ?? true)) {
    // The window is at most checkEvery messages (plus scenarios): bounded.
    for (const m of result.failure.window) {
      if (await kills(m)) saved.push(saveCrash(m.bytes, `${m.label} via ${m.via} from ${m.from}: ${result.failure.reason}`));
    }
  }
  return { result, tail, saved };
}

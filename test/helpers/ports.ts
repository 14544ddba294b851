/**
 * Free ports on 127.0.0.1 for test peers.
 *
 * Single ports come from the OS (bind to port 0, read it, close). Between that close and the peer's
 * own bind another allocator could get the same number, so every handed-out port is also reserved:
 * in this process (a Set) and across jest workers (an exclusive lock file per port in the tmp dir,
 * owned by our pid, reclaimed when the owner is dead or the lock is stale). Ranges (RTP bases) are
 * drawn at random below the Linux ephemeral range so the OS never hands them to client sockets.
 */
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { PeerError, onCleanup } from './proc';

/** Loopback address every peer binds to. */
export const LOOPBACK = '127.0.0.1';

/** Which protocols a port must be free for. */
export type PortProtocol = 'udp' | 'tcp' | 'both';

const LOCK_DIR = path.join(os.tmpdir(), 'sip-ai-agent-test-ports');
/** A lock older than this is considered abandoned even if its pid is alive (pid reuse). */
const STALE_LOCK_MS = 30 * 60_000;
/** Ranges are drawn from [RANGE_MIN, RANGE_MAX): below net.ipv4.ip_local_port_range's default 32768. */
const RANGE_MIN = 20_000;
const RANGE_MAX = 32_000;
const MAX_ATTEMPTS = 200;

const reserved = new Set<number>();
let hooksInstalled = false;

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  onCleanup(() => releaseAllPorts());
  process.on('exit', () => releaseAllPorts());
}

/** Is `port` free for binding on 127.0.0.1 over `protocol` right now? */
export async function isPortFree(port: number, protocol: PortProtocol = 'udp'): Promise<boolean> {
  if (protocol === 'udp' || protocol === 'both') {
    if (!(await tryUdp(port))) return false;
  }
  if (protocol === 'tcp' || protocol === 'both') {
    if ((await tryTcp(port)) === undefined) return false;
  }
  return true;
}

/**
 * A free port on 127.0.0.1 (asked of the OS), reserved against other allocators until
 * {@link releasePort} or harness cleanup. With `both`, the same number is free for UDP and TCP
 * (SIP stacks that listen on both, e.g. baresip or pjsua without `--no-tcp`).
 */
export async function freePort(protocol: PortProtocol = 'udp'): Promise<number> {
  installHooks();
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const port = protocol === 'tcp' ? await tryTcp(0) : await udpEphemeral();
    if (port === undefined) continue;
    if (protocol === 'both' && (await tryTcp(port)) === undefined) continue;
    if (reserve(port)) return port;
  }
  throw new PeerError(`no free port found [protocol:${protocol}, attempts:${MAX_ATTEMPTS}]`);
}

/**
 * The base of `count` consecutive free ports (default aligned to even numbers, as RTP/RTCP pairs
 * want), all reserved. Used for pjsua's `--rtp-port`, which takes base, base+1, base+2... per call.
 */
export async function freePortRange(count: number, protocol: PortProtocol = 'udp', align = 2): Promise<number> {
  if (!Number.isInteger(count) || count < 1 || count > 1000) {
    throw new TypeError(`freePortRange: count must be an integer in [1, 1000] [count:${count}]`);
  }
  installHooks();
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const span = RANGE_MAX - RANGE_MIN - count;
    const base = RANGE_MIN + Math.floor((Math.random() * span) / align) * align;
    const taken: number[] = [];
    let ok = true;
    for (let p = base; p < base + count; p++) {
      if (!reserve(p)) {
        ok = false;
        break;
      }
      taken.push(p);
      if (!(await isPortFree(p, protocol))) {
        ok = false;
        break;
      }
    }
    if (ok) return base;
    for (const p of taken) releasePort(p);
  }
  throw new PeerError(`no free port range found [count:${count}, protocol:${protocol}, attempts:${MAX_ATTEMPTS}]`);
}

/** Give a reserved port back (no-op for ports this process does not hold). */
export function releasePort(port: number): void {
  if (!reserved.delete(port)) return;
  try {
    fs.unlinkSync(lockPath(port));
  } catch {
    // Already gone: nothing to release.
  }
}

/** Release every port this process reserved. */
export function releaseAllPorts(): void {
  for (const p of [...reserved]) releasePort(p);
}

/** Ports this process currently holds reservations for. */
export function reservedPorts(): readonly number[] {
  return [...reserved];
}

function lockPath(port: number): string {
  return path.join(LOCK_DIR, `${port}.lock`);
}

function reserve(port: number): boolean {
  if (reserved.has(port)) return false;
  fs.mkdirSync(LOCK_DIR, { recursive: true });
  const file = lockPath(port);
  for (let i = 0; i < 2; i++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      reserved.add(port);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (!reclaimIfStale(file)) return false;
    }
  }
  return false;
}

function reclaimIfStale(file: string): boolean {
  try {
    const st = fs.statSync(file);
    const owner = Number(fs.readFileSync(file, 'utf8'));
    const stale = Date.now() - st.mtimeMs > STALE_LOCK_MS || !pidAlive(owner);
    if (stale) fs.unlinkSync(file);
    return stale;
  } catch {
    // Vanished between our checks: the next exclusive create decides.
    return true;
  }
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function udpEphemeral(): Promise<number | undefined> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    sock.once('error', () => {
      sock.close();
      resolve(undefined);
    });
    sock.bind(0, LOOPBACK, () => {
      const port = sock.address().port;
      sock.close(() => resolve(port));
    });
  });
}

function tryUdp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    sock.once('error', () => {
      sock.close();
      resolve(false);
    });
    sock.bind(port, LOOPBACK, () => sock.close(() => resolve(true)));
  });
}

function tryTcp(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen({ port, host: LOOPBACK, exclusive: true }, () => {
      const addr = srv.address();
      const got = typeof addr === 'object' && addr ? addr.port : undefined;
      srv.close(() => resolve(got));
    });
  });
}

/**
 * A throwaway PostgreSQL cluster for tests: Debian's server binaries, a data directory and socket
 * directory in a tmp dir, TCP on loopback only, trust authentication, no fsync. PostgreSQL refuses
 * to run as root, so as root the cluster belongs to the `postgres` system user. `stop()` and
 * `start()` take the same cluster down and up again (a database outage mid-call).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { makeTmpDir } from './fixtures';
import { LOOPBACK, freePort, releasePort } from './ports';
import { PeerError, delay, runCommand, spawnManaged, type ManagedProcess } from './proc';

/** The newest server version installed under /usr/lib/postgresql, or `$PG_BINDIR`. */
export function findPostgresBin(): string | undefined {
  if (process.env.PG_BINDIR) return process.env.PG_BINDIR;
  const root = '/usr/lib/postgresql';
  let versions: string[];
  try {
    versions = fs.readdirSync(root).filter((v) => /^\d+$/.test(v) && fs.existsSync(path.join(root, v, 'bin', 'postgres')));
  } catch {
    return undefined;
  }
  versions.sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(root, versions[0], 'bin') : undefined;
}

export interface Postgres {
  readonly port: number;
  /** `postgres://postgres@127.0.0.1:PORT/postgres`. */
  readonly url: string;
  /** Run one query (a fresh connection each time). */
  query<T extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Fast shutdown (connections are cut), waiting for the server to exit. */
  stop(): Promise<void>;
  /** Start the same cluster again. */
  start(): Promise<void>;
  /** Stop for good and release the port; idempotent. */
  close(): Promise<void>;
}

const asRoot = process.getuid?.() === 0;

/** As the cluster's owner: `runuser -u postgres --` when we are root. */
function owner(cmd: string, args: string[]): { command: string; args: string[] } {
  return asRoot ? { command: 'runuser', args: ['-u', 'postgres', '--', cmd, ...args] } : { command: cmd, args };
}

export async function startPostgres(opts: { lifetimeMs?: number } = {}): Promise<Postgres> {
  const bin = findPostgresBin();
  if (!bin) throw new PeerError('PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BINDIR)');
  const dir = await makeTmpDir('postgres-');
  const data = path.join(dir, 'data');
  if (asRoot) execFileSync('chown', ['postgres:postgres', dir]);
  fs.chmodSync(dir, 0o700);
  const init = owner(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--locale=C']);
  await runCommand('initdb', init.command, init.args, { timeoutMs: 60_000 });
  const port = await freePort('tcp');
  let proc: ManagedProcess | undefined;
  const url = `postgres://postgres@${LOOPBACK}:${port}/postgres`;

  const start = async (): Promise<void> => {
    const srv = owner(path.join(bin, 'postgres'), [
      '-D', data, '-p', String(port), '-k', dir,
      '-c', `listen_addresses=${LOOPBACK}`, '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
    ]);
    proc = spawnManaged({ name: 'postgres', command: srv.command, args: srv.args, lifetimeMs: opts.lifetimeMs ?? 180_000 });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const c = new Client({ connectionString: url, connectionTimeoutMillis: 1000 });
      try {
        await c.connect();
        await c.end();
        return;
      } catch {
        await c.end().catch(() => undefined);
      }
      if (proc.closed || Date.now() > deadline) throw new PeerError(`postgres did not start [port:${port}]\n${proc.tail()}`);
      await delay(200);
    }
  };
  const stop = async (): Promise<void> => {
    if (!proc || proc.closed) return;
    const ctl = owner(path.join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'fast', '-w', '-t', '20']);
    await runCommand('pg_ctl', ctl.command, ctl.args, { timeoutMs: 30_000 }).catch(() => undefined);
    await proc.waitForExit(10_000).catch(() => proc!.kill());
  };
  await start();
  let closed = false;
  return {
    port,
    url,
    async query<T extends Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
      const c = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
      await c.connect();
      try {
        return (await c.query<T>(sql, params)).rows;
      } finally {
        await c.end();
      }
    },
    stop,
    start,
    async close() {
      if (closed) return;
      closed = true;
      await stop().catch(() => undefined);
      await proc?.kill();
      releasePort(port);
    },
  };
}

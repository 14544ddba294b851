/**
 * The daemon as sysadmins run it, for end-to-end tests: `node bin/sip-ai-agent.js --config FILE`
 * in its own process group (see proc.ts), configured from a fixture in test/fixtures/daemon/ with
 * free loopback ports and tmp paths filled in, its JSON log lines parsed, its admin API and CLI
 * driven over loopback, and its call records read back from records.dir.
 *
 * The compiled JavaScript in dist/ is what runs (`npm test` builds it first); a missing or stale
 * build fails loudly instead of testing old code.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readLocalToken } from '../../src/daemon/adminToken';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { LOOPBACK, freePort, freePortRange, releasePort } from './ports';
import { makeTmpDir } from './fixtures';
import { PeerError, delay, spawnManaged, type ExitInfo, type LogLine, type ManagedProcess } from './proc';

/** Root of this checkout. */
// From test/helpers/ (ts-jest) or dist/test/helpers/ (compiled tools such as npm run fuzz).
export const REPO_ROOT = path.resolve(__dirname, __dirname.split(path.sep).includes('dist') ? '../../..' : '../..');
/** The command's entry point. */
export const CLI_ENTRY = path.join(REPO_ROOT, 'bin', 'sip-ai-agent.js');
/** Config fixtures of the daemon tests. */
export const DAEMON_FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'daemon');

/** Exit codes of the command (mirrors src/daemon/exitCodes.ts, kept separate so a change there is noticed). */
export const EXIT = { ok: 0, failure: 1, usage: 64, config: 78 } as const;

/** RTP ports handed to one daemon (2 per call). */
const RTP_PORTS = 20;

let builtChecked = false;

/**
 * Throw unless dist/ holds a build of every file under src/ at least as new as its source. Checked
 * once per test file (jest worker module registry), so one file runs against one build.
 */
export function assertBuilt(): void {
  if (builtChecked) return;
  const stale: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
        const out = path.join(REPO_ROOT, 'dist', path.relative(REPO_ROOT, p)).replace(/\.ts$/, '.js');
        let outMtime = 0;
        try {
          outMtime = fs.statSync(out).mtimeMs;
        } catch {
          // Missing output counts as stale.
        }
        if (outMtime < fs.statSync(p).mtimeMs) stale.push(path.relative(REPO_ROOT, p));
      }
    }
  };
  walk(path.join(REPO_ROOT, 'src'));
  if (stale.length > 0) {
    throw new PeerError(
      `dist/ is missing or older than its sources [files:${stale.slice(0, 5).join(',')}${stale.length > 5 ? `,+${stale.length - 5}` : ''}]: run 'npx tsc -p tsconfig.json' (npm test does)`,
    );
  }
  builtChecked = true;
}

/** Ports one daemon listens on. */
export interface DaemonPorts {
  /** SIP over UDP. */
  sip: number;
  /** First RTP port; {@link RTP_PORTS} ports are reserved from it. */
  rtpStart: number;
  /** Admin API (TCP). */
  admin: number;
}

/** Reserve free loopback ports for one daemon. */
export async function daemonPorts(): Promise<DaemonPorts> {
  return { sip: await freePort('udp'), rtpStart: await freePortRange(RTP_PORTS), admin: await freePort('tcp') };
}

/** Give a daemon's ports back (e.g. to bind one in a test first). */
export function releaseDaemonPorts(p: DaemonPorts): void {
  releasePort(p.sip);
  releasePort(p.admin);
  for (let i = 0; i < RTP_PORTS; i++) releasePort(p.rtpStart + i);
}

/** A plain mapping of config keys (a parsed YAML document). */
export type ConfigTree = Record<string, unknown>;

function isPlainObject(v: unknown): v is ConfigTree {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Deep merge: mappings merge key by key, everything else (lists included) is replaced. */
export function mergeConfig(base: ConfigTree, over: ConfigTree): ConfigTree {
  const out: ConfigTree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isPlainObject(v) && isPlainObject(out[k]) ? mergeConfig(out[k] as ConfigTree, v) : v;
  }
  return out;
}

/** One daemon's files and ports: a tmp dir with config.yaml and records/. */
export interface DaemonSetup {
  /** Tmp dir (removed by harness cleanup). */
  dir: string;
  /** The config file the daemon is started with. */
  configPath: string;
  /** records.dir. */
  recordsDir: string;
  ports: DaemonPorts;
  /** The configuration as last written. */
  config: ConfigTree;
  /** `http://127.0.0.1:<admin port>`. */
  adminUrl: string;
  /** The agent's SIP URI: `sip:agent@127.0.0.1:<sip port>`. */
  sipUri: string;
  /** Rewrite config.yaml: the fixture, the ports and paths, then `over` merged in. */
  write(over?: ConfigTree): string;
}

/**
 * Create a tmp dir with a config.yaml built from fixture `name` (test/fixtures/daemon/<name>.yaml),
 * free ports, records.dir inside the tmp dir, and `over` merged last.
 */
export async function prepareDaemon(name = 'echo', over: ConfigTree = {}, opts: { ports?: DaemonPorts } = {}): Promise<DaemonSetup> {
  const dir = await makeTmpDir(`daemon-${name}-`);
  const ports = opts.ports ?? (await daemonPorts());
  const fixture = parseYaml(fs.readFileSync(path.join(DAEMON_FIXTURES, `${name}.yaml`), 'utf8')) as ConfigTree;
  const recordsDir = path.join(dir, 'records');
  const configPath = path.join(dir, 'config.yaml');
  const placed: ConfigTree = {
    sip: { transports: { udp: { port: ports.sip } } },
    media: { rtpPortStart: ports.rtpStart, rtpPortRange: RTP_PORTS },
    records: { dir: recordsDir },
    admin: { port: ports.admin },
  };
  const setup: DaemonSetup = {
    dir,
    configPath,
    recordsDir,
    ports,
    config: {},
    adminUrl: `http://${LOOPBACK}:${ports.admin}`,
    sipUri: `sip:agent@${LOOPBACK}:${ports.sip}`,
    write(more: ConfigTree = {}) {
      setup.config = mergeConfig(mergeConfig(mergeConfig(fixture, placed), over), more);
      // Written whole and renamed, so a SIGHUP never reads half a file.
      const tmp = `${configPath}.tmp`;
      fs.writeFileSync(tmp, stringifyYaml(setup.config));
      fs.renameSync(tmp, configPath);
      return configPath;
    },
  };
  setup.write();
  return setup;
}

/** One parsed JSON log line of the daemon. */
export interface DaemonLogEntry {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A running daemon process. */
export class Daemon {
  readonly proc: ManagedProcess;
  readonly setup: DaemonSetup;

  constructor(proc: ManagedProcess, setup: DaemonSetup) {
    this.proc = proc;
    this.setup = setup;
  }

  /** True once the process has exited. */
  get closed(): boolean {
    return this.proc.closed;
  }

  /** Admin API base URL. */
  get adminUrl(): string {
    return this.setup.adminUrl;
  }

  /** Every parsed JSON log line on stdout from `fromSeq` on (non-JSON lines are skipped). */
  logs(fromSeq = 0): DaemonLogEntry[] {
    return this.proc
      .lines('stdout')
      .filter((l) => l.seq >= fromSeq)
      .map((l) => parseLogLine(l))
      .filter((e): e is DaemonLogEntry => e !== undefined);
  }

  /** Log entries whose `msg` matches, from `fromSeq` on. */
  logsWithMsg(msg: string | RegExp, fromSeq = 0): DaemonLogEntry[] {
    return this.logs(fromSeq).filter((e) => matchMsg(e.msg, msg));
  }

  /**
   * Wait for a JSON log line whose `msg` equals `msg` (or matches the RegExp), at or after
   * `fromSeq`; rejects when the daemon exits first or after `timeoutMs`.
   */
  async waitForMsg(msg: string | RegExp, timeoutMs: number, fromSeq = 0): Promise<DaemonLogEntry> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.logsWithMsg(msg, fromSeq)[0];
      if (hit) return hit;
      if (this.proc.closed) {
        throw new PeerError(`daemon exited before logging ${String(msg)} [exit:${this.proc.exitInfo?.code ?? this.proc.exitInfo?.signal}]\n${this.tail()}`);
      }
      if (Date.now() > deadline) throw new PeerError(`daemon did not log ${String(msg)} within ${timeoutMs} ms\n${this.tail()}`);
      await delay(50);
    }
  }

  /** Send a signal to the daemon (the node process itself). */
  signal(sig: NodeJS.Signals): void {
    if (this.proc.closed) throw new PeerError(`signal ${sig}: the daemon has exited [pid:${this.proc.pid}]`);
    process.kill(this.proc.pid, sig);
  }

  /** SIGTERM, then wait for the exit (the group is killed if it takes longer than `timeoutMs`). */
  async stop(timeoutMs = 20_000): Promise<ExitInfo> {
    if (!this.proc.closed) this.signal('SIGTERM');
    try {
      return await this.proc.waitForExit(timeoutMs);
    } catch (err) {
      await this.proc.kill();
      throw err;
    }
  }

  /** Lifecycle: kill the group; idempotent. */
  async close(): Promise<void> {
    await this.proc.kill();
  }

  /**
   * An admin API request, with the daemon's generated admin token (as the local CLI finds it)
   * unless `headers` has an Authorization of its own; `Authorization: ''` sends none.
   */
  http(method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> {
    const h = { ...headers };
    if (!('Authorization' in h)) {
      const token = readLocalToken(this.setup.recordsDir);
      if (token) h.Authorization = `Bearer ${token}`;
    } else if (h.Authorization === '') delete h.Authorization;
    return httpRequest(this.adminUrl, method, urlPath, body, h);
  }

  /** The daemon's last lines, for failure messages. */
  tail(n = 40): string {
    return this.proc.tail(n);
  }
}

function matchMsg(got: unknown, want: string | RegExp): boolean {
  return typeof got === 'string' && (typeof want === 'string' ? got === want : want.test(got));
}

function parseLogLine(l: Pick<LogLine, 'text'>): DaemonLogEntry | undefined {
  if (!l.text.startsWith('{')) return undefined;
  try {
    const v = JSON.parse(l.text) as unknown;
    return isPlainObject(v) && typeof v.msg === 'string' ? (v as DaemonLogEntry) : undefined;
  } catch {
    return undefined;
  }
}

/** Options of {@link spawnDaemon}. */
export interface SpawnDaemonOptions {
  /** Extra arguments after `--config FILE`. */
  args?: string[];
  /** Extra environment (undefined removes a variable). */
  env?: NodeJS.ProcessEnv;
  /** Hard lifetime (default 90 s). */
  lifetimeMs?: number;
  /** Name in messages (default `daemon`). */
  name?: string;
}

/** Spawn the daemon with `setup`'s config; does not wait for anything. */
export function spawnDaemon(setup: DaemonSetup, opts: SpawnDaemonOptions = {}): Daemon {
  assertBuilt();
  const proc = spawnManaged({
    name: opts.name ?? 'daemon',
    command: process.execPath,
    args: [CLI_ENTRY, '--config', setup.configPath, ...(opts.args ?? [])],
    cwd: setup.dir,
    env: { OPENAI_API_KEY: undefined, SIP_AI_AGENT_ADMIN_URL: undefined, SIP_AI_AGENT_ADMIN_TOKEN: undefined, ...opts.env },
    lifetimeMs: opts.lifetimeMs ?? 90_000,
    killGraceMs: 5_000,
  });
  return new Daemon(proc, setup);
}

/** Spawn the daemon and resolve once it logs `sip-ai-agent ready`; rejects (with its log) if it exits first. */
export async function startDaemon(setup: DaemonSetup, opts: SpawnDaemonOptions = {}): Promise<Daemon> {
  const d = spawnDaemon(setup, opts);
  try {
    await d.waitForMsg('sip-ai-agent ready', 20_000);
  } catch (err) {
    await d.close();
    throw err;
  }
  return d;
}

/** What a CLI run printed and how it exited. */
export interface CliResult {
  /** Exit code (null when killed by a signal). */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `node bin/sip-ai-agent.js ARGS` to completion (bounded by `timeoutMs`). */
export async function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  assertBuilt();
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const proc = spawnManaged({
    name: `cli ${args.filter((a) => !a.startsWith('/')).slice(0, 3).join(' ')}`,
    command: process.execPath,
    args: [CLI_ENTRY, ...args],
    cwd: opts.cwd ?? REPO_ROOT,
    env: { OPENAI_API_KEY: undefined, SIP_AI_AGENT_ADMIN_URL: undefined, SIP_AI_AGENT_ADMIN_TOKEN: undefined, ...opts.env },
    lifetimeMs: timeoutMs,
  });
  const exit = await proc.waitForExit(timeoutMs + 6_000);
  if (proc.timedOut) throw new PeerError(`CLI timed out after ${timeoutMs} ms [args:${args.join(' ')}]\n${proc.tail()}`);
  return { code: exit.code, stdout: proc.logText('stdout'), stderr: proc.logText('stderr') };
}

/** An HTTP answer. */
export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, when it is JSON. */
  json: unknown;
}

/** One HTTP request (JSON bodies are serialised with Content-Type application/json; strings go raw). */
export async function httpRequest(
  base: string,
  method: string,
  urlPath: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<HttpAnswer> {
  const init: RequestInit = { method, headers: { ...headers }, signal: AbortSignal.timeout(10_000) };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers = { 'Content-Type': 'application/json', ...headers };
  }
  const res = await fetch(`${base}${urlPath}`, init);
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** One server-sent event. */
export interface SseEvent {
  event: string;
  data: string;
}

/**
 * Read a server-sent-events stream (parsed here, independently of the daemon's own parser) until
 * it ends or `timeoutMs` passes; events are also handed to `onEvent` as they arrive.
 */
export async function readSse(
  url: string,
  timeoutMs: number,
  onEvent?: (e: SseEvent) => void,
  token?: string,
): Promise<{ status: number; events: SseEvent[]; endedByServer: boolean }> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  const events: SseEvent[] = [];
  let endedByServer = false;
  try {
    const headers: Record<string, string> = { Accept: 'text/event-stream' };
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(url, { headers, signal: ctrl.signal });
    if (!res.body) return { status: res.status, events, endedByServer: true };
    const decoder = new TextDecoder();
    let buf = '';
    let event = 'message';
    let data: string[] = [];
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.search(/\r?\n/)) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + (buf[nl] === '\r' ? 2 : 1));
          if (line === '') {
            if (data.length > 0) {
              const e = { event, data: data.join('\n') };
              events.push(e);
              onEvent?.(e);
            }
            event = 'message';
            data = [];
          } else if (line.startsWith(':')) {
            // Comment (heartbeat).
          } else {
            const i = line.indexOf(':');
            const field = i < 0 ? line : line.slice(0, i);
            const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
            if (field === 'event') event = value;
            else if (field === 'data') data.push(value);
          }
        }
      }
      endedByServer = true;
    } catch (err) {
      if (!ctrl.signal.aborted) throw err;
    }
    return { status: res.status, events, endedByServer };
  } finally {
    clearTimeout(timer);
  }
}

/** A call record as read from records.dir. */
export interface RecordFile {
  /** Path of the JSON file. */
  jsonPath: string;
  /** Path of the WAV next to it, when one exists. */
  wavPath: string | undefined;
  /** The UTC day directory it is in. */
  day: string;
  /** The parsed record. */
  record: Record<string, unknown> & { callId: string; status: string; endReason?: string | null; direction?: string };
}

/** Every call record under `recordsDir` (`<dir>/<YYYY-MM-DD>/<callId>.json`). */
export function listRecords(recordsDir: string): RecordFile[] {
  const out: RecordFile[] = [];
  let days: string[];
  try {
    days = fs.readdirSync(recordsDir);
  } catch {
    return out;
  }
  for (const day of days.sort()) {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) continue;
    for (const f of fs.readdirSync(path.join(recordsDir, day)).sort()) {
      if (!f.endsWith('.json')) continue;
      const jsonPath = path.join(recordsDir, day, f);
      let record: RecordFile['record'];
      try {
        record = JSON.parse(fs.readFileSync(jsonPath, 'utf8')) as RecordFile['record'];
      } catch {
        continue;
      }
      const wav = jsonPath.replace(/\.json$/, '.wav');
      out.push({ jsonPath, wavPath: fs.existsSync(wav) ? wav : undefined, day, record });
    }
  }
  return out;
}

/** Poll records.dir until a record satisfies `pred`; rejects with what was there after `timeoutMs`. */
export async function waitForRecord(recordsDir: string, pred: (r: RecordFile) => boolean, timeoutMs: number): Promise<RecordFile> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = listRecords(recordsDir).find(pred);
    if (hit) return hit;
    if (Date.now() > deadline) {
      const seen = listRecords(recordsDir).map((r) => `${r.record.callId}:${r.record.status}:${r.record.endReason}`);
      throw new PeerError(`no matching call record within ${timeoutMs} ms [dir:${recordsDir}, records:${seen.join(',') || 'none'}]`);
    }
    await delay(100);
  }
}

/** Poll `fn` until it returns a truthy value; rejects naming `what` after `timeoutMs`. */
export async function eventually<T>(fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new PeerError(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` [last error: ${(last as Error).message}]` : ''}`);
    await delay(100);
  }
}

/** One Prometheus sample. */
export interface PromSample {
  labels: Record<string, string>;
  value: number;
}

/**
 * Parse the Prometheus text format (0.0.4) strictly enough to catch a malformed exposition: every
 * line is blank, a comment, or `name{label="value",...} number`; TYPE names a metric family.
 */
export function parsePrometheus(text: string): Map<string, PromSample[]> {
  const out = new Map<string, PromSample[]>();
  const sampleRe = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? (\S+)(?: \d+)?$/;
  const typeRe = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/;
  for (const line of text.split('\n')) {
    if (line === '' || (line.startsWith('# ') && !line.startsWith('# TYPE'))) continue;
    if (line.startsWith('# TYPE')) {
      if (!typeRe.test(line)) throw new Error(`bad TYPE line: ${line}`);
      continue;
    }
    const m = sampleRe.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const value = Number(m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : m[3]);
    if (Number.isNaN(value) && m[3] !== 'NaN') throw new Error(`bad sample value: ${line}`);
    const labels: Record<string, string> = {};
    for (const lm of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
    const list = out.get(m[1]) ?? [];
    list.push({ labels, value });
    out.set(m[1], list);
  }
  return out;
}

/** The daemon's /metrics, parsed. */
export async function scrape(d: Daemon): Promise<Map<string, PromSample[]>> {
  const r = await d.http('GET', '/metrics');
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  return parsePrometheus(r.text);
}

/** The value of one sample (summed over series whose labels include `labels`), 0 when absent. */
export function sampleValue(samples: Map<string, PromSample[]>, name: string, labels: Record<string, string> = {}): number {
  return (samples.get(name) ?? []).filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

/** The `tools.webhooks` entry of the tests' example tool: `lookup_order` posting `{order_id}` to `url`. */
export function orderLookupWebhook(url: string, timeoutMs: number): Record<string, unknown> {
  return {
    name: 'lookup_order',
    description: 'Look up an order by id',
    parameters: { type: 'object', properties: { order_id: { type: 'string' } } },
    url,
    timeoutMs,
  };
}

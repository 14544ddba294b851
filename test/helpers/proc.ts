/**
 * Child-process management for real test peers (Kamailio, pjsua, baresip, sox).
 *
 * Every peer runs in its own process group so that one signal reaches it and anything it forks;
 * every peer has a hard lifetime after which it is killed even if the test forgot it; every peer's
 * stdout/stderr is captured line by line into a bounded buffer (oldest lines dropped and counted).
 * A module-level registry lets a jest `afterAll` (see {@link useHarnessCleanup}) end whatever a
 * failing test left behind, and a synchronous `exit` hook SIGKILLs groups still alive when the
 * jest worker itself goes away.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentError } from '../../src/util/errors';

/** A test peer misbehaved: did not start, did not log what was awaited, exited early, timed out. */
export class PeerError extends AgentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_TEST_PEER', message, options);
  }
}

/** Which stream a captured line came from. */
export type LogStream = 'stdout' | 'stderr';

/** One captured log line. */
export interface LogLine {
  /** Absolute line number since spawn (keeps counting when old lines are dropped). */
  seq: number;
  /** Milliseconds since the process was spawned. */
  atMs: number;
  /** Source stream. */
  stream: LogStream;
  /** The line without its newline. */
  text: string;
}

/** How a process ended. */
export interface ExitInfo {
  /** Exit code, or null when it was ended by a signal. */
  code: number | null;
  /** Terminating signal, or null on a normal exit. */
  signal: NodeJS.Signals | null;
}

/** Options for {@link spawnManaged}. */
export interface ManagedProcessOptions {
  /** Short name used in messages, e.g. `kamailio` or `pjsua-caller`. */
  name: string;
  /** Executable path or name on PATH. */
  command: string;
  /** Arguments. */
  args: readonly string[];
  /** Working directory. */
  cwd?: string;
  /** Extra environment variables (merged over process.env). */
  env?: NodeJS.ProcessEnv;
  /** `pipe` keeps stdin open for commands (pjsua quits when stdin closes); default `ignore`. */
  stdin?: 'pipe' | 'ignore';
  /** Hard lifetime in ms: the group is killed after this even if nobody asks (default 60 000). */
  lifetimeMs?: number;
  /** Grace between SIGTERM and SIGKILL when killing the group, in ms (default 2000). */
  killGraceMs?: number;
  /** Cap on retained log lines (default 20 000); older lines are dropped and counted. */
  maxLines?: number;
  /** Cap on retained log bytes (default 4 MiB); older lines are dropped and counted. */
  maxBytes?: number;
  /** Cap on one line's length in chars (default 8192); longer lines are cut. */
  maxLineChars?: number;
}

const DEFAULT_LIFETIME_MS = 60_000;
const DEFAULT_GRACE_MS = 2_000;
const DEFAULT_MAX_LINES = 20_000;
const DEFAULT_MAX_BYTES = 4 * 1024 * 1024;
const DEFAULT_MAX_LINE_CHARS = 8192;
/** Terminal colour/cursor sequences (baresip colours its errors): stripped so regexes see plain text. */
// eslint-disable-next-line no-control-regex
const ANSI_RE = /\x1b\[[0-9;?]*[A-Za-z]/g;
/** Lines of log tail quoted in error messages. */
const TAIL_LINES = 40;

interface LogWaiter {
  re: RegExp;
  fromSeq: number;
  resolve: (m: { line: LogLine; match: RegExpExecArray }) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const live = new Set<ManagedProcess>();
const cleanups: (() => void | Promise<void>)[] = [];
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A crashing or force-exited jest worker never reaches afterAll: reap the groups synchronously.
  process.on('exit', () => {
    for (const p of live) p.killNow();
  });
}

/**
 * A spawned child in its own process group, with bounded line-buffered log capture,
 * `waitForLog`, `waitForExit`, stdin writes and a group kill (SIGTERM, then SIGKILL after a grace).
 */
export class ManagedProcess {
  /** Name used in messages. */
  readonly name: string;
  /** Pid of the group leader (also the process group id). */
  readonly pid: number;
  /** The command line, for messages. */
  readonly commandLine: string;

  readonly #child: ChildProcess;
  readonly #startedAt = Date.now();
  readonly #lines: LogLine[] = [];
  readonly #partial: Record<LogStream, string> = { stdout: '', stderr: '' };
  readonly #waiters = new Set<LogWaiter>();
  readonly #exitWaiters: ((e: ExitInfo) => void)[] = [];
  readonly #maxLines: number;
  readonly #maxBytes: number;
  readonly #maxLineChars: number;
  readonly #graceMs: number;
  #bytes = 0;
  #seq = 0;
  #dropped = 0;
  #exit: ExitInfo | undefined;
  #spawnError: Error | undefined;
  #killing: Promise<ExitInfo> | undefined;
  #lifetimeTimer: NodeJS.Timeout | undefined;
  #timedOut = false;

  /** Use {@link spawnManaged}. */
  constructor(opts: ManagedProcessOptions) {
    this.name = opts.name;
    this.commandLine = [opts.command, ...opts.args].join(' ');
    this.#maxLines = opts.maxLines ?? DEFAULT_MAX_LINES;
    this.#maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
    this.#maxLineChars = opts.maxLineChars ?? DEFAULT_MAX_LINE_CHARS;
    this.#graceMs = opts.killGraceMs ?? DEFAULT_GRACE_MS;
    this.#child = spawn(opts.command, [...opts.args], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'],
      // detached on POSIX = setsid(): the child leads a new process group we can signal as a whole.
      detached: true,
    });
    this.pid = this.#child.pid ?? -1;
    this.#child.stdout?.setEncoding('utf8').on('data', (d: string) => this.#onData('stdout', d));
    this.#child.stderr?.setEncoding('utf8').on('data', (d: string) => this.#onData('stderr', d));
    // A write to a dead peer's stdin must surface through write()/exit, not crash the worker.
    this.#child.stdin?.on('error', () => undefined);
    this.#child.on('error', (err) => {
      this.#spawnError = err;
      if (this.pid < 0) this.#onExit({ code: null, signal: null });
    });
    this.#child.on('exit', (code, signal) => this.#onExit({ code, signal }));
    const lifetime = opts.lifetimeMs ?? DEFAULT_LIFETIME_MS;
    this.#lifetimeTimer = setTimeout(() => {
      this.#timedOut = true;
      void this.kill();
    }, lifetime);
    this.#lifetimeTimer.unref();
    live.add(this);
    installExitHook();
  }

  /** True once the process has exited (asked or not). */
  get closed(): boolean {
    return this.#exit !== undefined;
  }

  /** Exit information, once exited. */
  get exitInfo(): ExitInfo | undefined {
    return this.#exit;
  }

  /** True when the hard lifetime expired and the harness killed the process. */
  get timedOut(): boolean {
    return this.#timedOut;
  }

  /** The spawn error (e.g. ENOENT), if spawning failed. */
  get spawnError(): Error | undefined {
    return this.#spawnError;
  }

  /** Number of log lines dropped because a cap was reached. */
  get droppedLines(): number {
    return this.#dropped;
  }

  /** Sequence number the next captured line will get: pass it as `fromSeq` to wait only for new lines. */
  get mark(): number {
    return this.#seq;
  }

  /** Retained log lines (oldest may have been dropped, see {@link droppedLines}). */
  lines(stream?: LogStream): readonly LogLine[] {
    return stream ? this.#lines.filter((l) => l.stream === stream) : this.#lines.slice();
  }

  /** Retained log as one string (both streams, in arrival order). */
  logText(stream?: LogStream): string {
    return this.lines(stream)
      .map((l) => l.text)
      .join('\n');
  }

  /** The last `n` retained lines, for error messages. */
  tail(n = TAIL_LINES): string {
    return this.#lines
      .slice(-n)
      .map((l) => `  ${this.name}| ${l.text}`)
      .join('\n');
  }

  /** Retained lines matching `re`, from `fromSeq` on. */
  grep(re: RegExp, fromSeq = 0): LogLine[] {
    return this.#lines.filter((l) => l.seq >= fromSeq && testRe(re, l.text) !== null);
  }

  /**
   * Resolve with the first line (at or after `fromSeq`, default: the whole retained log) that
   * matches `re`. Rejects with PeerError after `timeoutMs`, or as soon as the process exits
   * without having logged it.
   */
  waitForLog(re: RegExp, timeoutMs: number, fromSeq = 0): Promise<{ line: LogLine; match: RegExpExecArray }> {
    for (const line of this.#lines) {
      if (line.seq < fromSeq) continue;
      const match = testRe(re, line.text);
      if (match) return Promise.resolve({ line, match });
    }
    if (this.#exit) return Promise.reject(this.#error(`exited before logging ${re}`));
    return new Promise((resolve, reject) => {
      const waiter: LogWaiter = {
        re,
        fromSeq,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          reject(this.#error(`timed out after ${timeoutMs} ms waiting for ${re}`));
        }, timeoutMs),
      };
      this.#waiters.add(waiter);
    });
  }

  /** Resolve when the process exits; rejects with PeerError after `timeoutMs` (the process keeps running). */
  waitForExit(timeoutMs: number): Promise<ExitInfo> {
    if (this.#exit) return Promise.resolve(this.#exit);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#exitWaiters.indexOf(done);
        if (i >= 0) this.#exitWaiters.splice(i, 1);
        reject(this.#error(`did not exit within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (e: ExitInfo): void => {
        clearTimeout(timer);
        resolve(e);
      };
      this.#exitWaiters.push(done);
    });
  }

  /** Write to the process's stdin (requires `stdin: 'pipe'`); throws PeerError if it has exited. */
  write(text: string): void {
    const stdin = this.#child.stdin;
    if (!stdin) throw new PeerError(`write failed: stdin not piped [peer:${this.name}]`);
    if (this.#exit || stdin.destroyed) {
      throw new PeerError(`write failed: process has exited [peer:${this.name}, pid:${this.pid}]`);
    }
    stdin.write(text);
  }

  /**
   * End the whole process group: SIGTERM, then SIGKILL after `graceMs`. Idempotent; resolves with
   * how the leader exited.
   */
  kill(graceMs = this.#graceMs): Promise<ExitInfo> {
    if (this.#killing) return this.#killing;
    this.#killing = (async () => {
      if (!this.#exit) {
        this.#child.stdin?.destroy();
        signalGroup(this.pid, 'SIGTERM');
        const exited = await this.waitForExit(graceMs).then(
          () => true,
          () => false,
        );
        if (!exited) signalGroup(this.pid, 'SIGKILL');
      }
      const info = await this.waitForExit(5_000);
      // Children that outlived their leader (kamailio workers) share its group: sweep them too.
      signalGroup(this.pid, 'SIGKILL');
      return info;
    })();
    return this.#killing;
  }

  /** Lifecycle alias of {@link kill}: idempotent. */
  async close(): Promise<void> {
    await this.kill();
  }

  /** SIGKILL the group synchronously (process-exit hook); no waiting. */
  killNow(): void {
    if (!this.#exit) signalGroup(this.pid, 'SIGKILL');
  }

  #error(what: string): PeerError {
    const exit = this.#exit ? `, exit:${this.#exit.code ?? this.#exit.signal}` : '';
    const spawnErr = this.#spawnError ? `, spawnError:${this.#spawnError.message}` : '';
    const dropped = this.#dropped ? `, droppedLines:${this.#dropped}` : '';
    return new PeerError(
      `${this.name} ${what} [pid:${this.pid}${exit}${spawnErr}${dropped}]\n  $ ${this.commandLine}\n${this.tail()}`,
    );
  }

  #onData(stream: LogStream, data: string): void {
    // CR alone separates lines too (progress lines that rewrite themselves); a CR at the very end
    // may be the first half of a CRLF split across chunks, so it stays in the partial line.
    const parts = (this.#partial[stream] + data).split(/\r\n|\n|\r(?!$)/);
    this.#partial[stream] = parts.pop() ?? '';
    // A peer that never prints a newline must not grow the partial line without bound.
    if (this.#partial[stream].length > this.#maxLineChars) {
      parts.push(this.#partial[stream]);
      this.#partial[stream] = '';
    }
    for (const p of parts) this.#push(stream, p);
  }

  #push(stream: LogStream, raw: string): void {
    const clean = raw.replace(ANSI_RE, '').replace(/\r$/, '');
    const text = clean.length > this.#maxLineChars ? clean.slice(0, this.#maxLineChars) : clean;
    const line: LogLine = { seq: this.#seq++, atMs: Date.now() - this.#startedAt, stream, text };
    this.#lines.push(line);
    this.#bytes += text.length + 1;
    while (this.#lines.length > this.#maxLines || this.#bytes > this.#maxBytes) {
      const old = this.#lines.shift();
      if (!old) break;
      this.#bytes -= old.text.length + 1;
      this.#dropped++;
    }
    for (const w of this.#waiters) {
      if (line.seq < w.fromSeq) continue;
      const match = testRe(w.re, text);
      if (match) {
        clearTimeout(w.timer);
        this.#waiters.delete(w);
        w.resolve({ line, match });
      }
    }
  }

  #onExit(info: ExitInfo): void {
    if (this.#exit) return;
    for (const s of ['stdout', 'stderr'] as const) {
      if (this.#partial[s]) this.#push(s, this.#partial[s]);
      this.#partial[s] = '';
    }
    this.#exit = info;
    if (this.#lifetimeTimer) clearTimeout(this.#lifetimeTimer);
    live.delete(this);
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(this.#error(`exited before logging ${w.re}`));
    }
    this.#waiters.clear();
    for (const done of this.#exitWaiters.splice(0)) done(info);
  }
}

/**
 * Spawn a peer in its own process group with bounded log capture and a hard lifetime. The process
 * is registered for {@link killAllProcesses}. Spawn failures (ENOENT) surface as an immediate exit
 * and through {@link ManagedProcess.spawnError}.
 */
export function spawnManaged(opts: ManagedProcessOptions): ManagedProcess {
  return new ManagedProcess(opts);
}

/** Processes spawned by this worker that have not exited yet. */
export function liveProcesses(): readonly ManagedProcess[] {
  return [...live];
}

/** Kill every process still alive (group kill, SIGTERM then SIGKILL), all at once. */
export async function killAllProcesses(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill()));
}

/** Register a cleanup (tmp dir removal, socket close) run by {@link cleanupAll}, last registered first. */
export function onCleanup(fn: () => void | Promise<void>): void {
  cleanups.push(fn);
}

/** Kill leftover processes, then run the registered cleanups; errors are collected and rethrown after all ran. */
export async function cleanupAll(): Promise<void> {
  await killAllProcesses();
  const errors: unknown[] = [];
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, `harness cleanup failed [errors:${errors.length}]`);
}

/** In a jest test file: register {@link cleanupAll} as an `afterAll` hook. */
export function useHarnessCleanup(): void {
  afterAll(cleanupAll, 15_000);
}

/**
 * Run a command to completion with a timeout (bounded like every peer); resolves with its output,
 * rejects with PeerError on a non-zero exit or timeout.
 */
export async function runCommand(
  name: string,
  command: string,
  args: readonly string[],
  opts: { timeoutMs?: number; cwd?: string; allowFailure?: boolean } = {},
): Promise<{ exit: ExitInfo; output: string; proc: ManagedProcess }> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const proc = spawnManaged({ name, command, args, cwd: opts.cwd, lifetimeMs: timeoutMs });
  const exit = await proc.waitForExit(timeoutMs + 6_000);
  const output = proc.logText();
  if (!opts.allowFailure && (exit.code !== 0 || proc.timedOut || proc.spawnError)) {
    const why = proc.spawnError?.message ?? (proc.timedOut ? `timed out after ${timeoutMs} ms` : `exit ${exit.code ?? exit.signal}`);
    throw new PeerError(`${name} failed: ${why} [cmd:${proc.commandLine}]\n${proc.tail()}`);
  }
  return { exit, output, proc };
}

const pathCache = new Map<string, string | null>();

/** Absolute path of an executable on PATH, or null. */
export function findOnPath(name: string): string | null {
  const cached = pathCache.get(name);
  if (cached !== undefined) return cached;
  let found: string | null = null;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      found = p;
      break;
    } catch {
      // Not in this PATH entry.
    }
  }
  pathCache.set(name, found);
  return found;
}

/**
 * Wrap a command in `stdbuf -oL -eL` when available: C programs block-buffer a piped stdout, so
 * without it their log lines arrive only at exit and `waitForLog` cannot see them live.
 */
export function lineBuffered(command: string, args: readonly string[]): { command: string; args: string[] } {
  const stdbuf = findOnPath('stdbuf');
  return stdbuf ? { command: stdbuf, args: ['-oL', '-eL', command, ...args] } : { command, args: [...args] };
}

/** Resolve after `ms` milliseconds (unref'd, so it never holds the worker open). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  if (pgid <= 0) return;
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone, which is what we wanted.
  }
}

function testRe(re: RegExp, text: string): RegExpExecArray | null {
  // A global/sticky regex carries lastIndex between calls; reset it so every line is tested whole.
  re.lastIndex = 0;
  return re.exec(text);
}

/**
 * The pjsua app (built from the same pjproject tree as the addon) as a scripted SIP peer: a caller
 * that plays a WAV into the call and records what it hears, or a callee that auto-answers,
 * optionally registered at a registrar. Loopback only, null audio device, VAD off.
 *
 * Traps handled here (see docs test-peers.md): pjsua quits as soon as stdin closes, so stdin is a
 * pipe kept open for console commands; its stdout is block-buffered when piped, so it runs under
 * `stdbuf -oL` to make `waitForLog` see lines as they happen.
 *
 * Measured here: in a pjsua recording, received audio starts ~480-500 ms after connect (its jitter
 * buffer logs "starts returning normal frames (after 24 empty/lost)"), whatever the sender (pjsua
 * or baresip) and codec; assert tone starts with that slack. The recorder keeps writing silence
 * after the call ends until pjsua quits, so a recording is longer than the call.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LOOPBACK, freePort, freePortRange, releasePort } from './ports';
import { ManagedProcess, PeerError, lineBuffered, spawnManaged, type ExitInfo, type LogLine } from './proc';

/** Options shared by callers and callees. */
export interface PjsuaCommonOptions {
  /** Name used in logs and errors (default `pjsua-caller` / `pjsua-callee`). */
  name?: string;
  /** SIP UDP port (default: a free one). */
  localPort?: number;
  /** First RTP port (default: a free even range sized for maxCalls). */
  rtpPort?: number;
  /** Conference bridge clock rate; recordings are written at this rate (pjsua default 16000). */
  clockRate?: number;
  /** Only these codecs, in priority order (e.g. `['PCMU']`, `['PCMA']`, `['G722']`); default: pjsua's set. */
  codecs?: string[];
  /** WAV played into every call once it connects (pjsua loops it). */
  playFile?: string;
  /** WAV the call's received audio is recorded into (recording starts at connect). */
  recordFile?: string;
  /** Account to register: `sip:user@domain` (needs registrar). */
  id?: string;
  /** Registrar URI, e.g. `sip:127.0.0.1:5060`. */
  registrar?: string;
  /** Digest username. */
  username?: string;
  /** Digest password. */
  password?: string;
  /** Digest realm (default `*`: answer any). */
  realm?: string;
  /** Registration expiry in s (`--reg-timeout`). */
  regTimeoutSec?: number;
  /** Outbound proxy URI, e.g. `sip:127.0.0.1:5060;lr` (routes calls and REGISTER through it). */
  outbound?: string;
  /** Maximum concurrent calls (default 4). */
  maxCalls?: number;
  /** Also listen on TCP (default false: `--no-tcp`). */
  tcp?: boolean;
  /** Extra raw pjsua arguments, appended last. */
  extraArgs?: string[];
  /** Hard lifetime in ms (default 60 000). */
  lifetimeMs?: number;
  /** pjsua log level for stdout and log (default 4). */
  logLevel?: number;
  /** pjsua binary (default: {@link findPjsuaBinary}). */
  binary?: string;
}

/** A caller: calls `target` at start. */
export interface PjsuaCallerOptions extends PjsuaCommonOptions {
  /** SIP URI to call, e.g. `sip:agent@127.0.0.1:5070`. */
  target: string;
  /** Hang up after this many seconds of connected call (`--duration`). */
  durationSec?: number;
}

/** A callee: waits for calls. */
export interface PjsuaCalleeOptions extends PjsuaCommonOptions {
  /** Status to auto-answer with (default 200; e.g. 486 to reject). */
  autoAnswer?: number;
  /** Echo received audio back to the caller (`--auto-loop`). */
  loop?: boolean;
}

/** Outcome of a REGISTER as pjsua logs it. */
export interface PjsuaRegistration {
  /** True on a 2xx. */
  ok: boolean;
  /** SIP status (e.g. 200, 401, 403, 408). */
  status: number;
  /** Reason phrase or error text. */
  reason: string;
  /** The log line. */
  line: LogLine;
}

/** How a call ended, as pjsua logs it. */
export interface PjsuaDisconnect {
  /** pjsua call id. */
  callId: number;
  /** Last SIP status of the call (e.g. 200 after a normal BYE, 404, 486). */
  status: number;
  /** Reason text. */
  reason: string;
  /** The log line. */
  line: LogLine;
}

/** pjsua's call states as it logs them. */
export type PjsuaCallState = 'CALLING' | 'INCOMING' | 'EARLY' | 'CONNECTING' | 'CONFIRMED' | 'DISCONNCTD';

const READY_RE = /PJSUA state changed: \S+ --> RUNNING/;
const REG_OK_RE = /registration success, status=(\d+) \(([^)]*)\)/;
const REG_FAIL_RE = /(?:SIP registration failed, status=(\d+) \(([^)]*)\)|registration failed, status=(\d+) \(([^)]*)\)|Registration failed.*?status=(\d+))/i;
const DISCONNECT_RE = /Call (\d+) is DISCONNECTED \[reason=(\d+) \(([^)]*)\)\]/;
const INCOMING_DTMF_RE = /Incoming DTMF on call (\d+): (\S)/;

/**
 * Locate the pjsua app: `$PJSUA_BIN`, else `pjsip-apps/bin/pjsua-*` in the pjproject build the
 * addon links against (`third_party/.build/pjproject`, or `$PJ_BUILD_DIR`). Throws PeerError when none exists.
 */
export function findPjsuaBinary(): string {
  if (process.env.PJSUA_BIN) return process.env.PJSUA_BIN;
  const roots = [process.env.PJ_BUILD_DIR, path.resolve(__dirname, '../../third_party/.build/pjproject')].filter(
    (r): r is string => !!r,
  );
  for (const root of roots) {
    const bin = path.join(root, 'pjsip-apps', 'bin');
    let names: string[];
    try {
      names = fs.readdirSync(bin);
    } catch {
      continue;
    }
    const hit = names.filter((n) => n.startsWith('pjsua-')).sort()[0];
    if (hit) return path.join(bin, hit);
  }
  throw new PeerError(`pjsua app not found [searched:${roots.join(',')}] (build pjproject or set PJSUA_BIN)`);
}

/** A running pjsua app. */
export class Pjsua {
  /** Role it was started in. */
  readonly role: 'caller' | 'callee';
  /** Its process (log buffer, pid). */
  readonly proc: ManagedProcess;
  /** SIP UDP port. */
  readonly localPort: number;
  /** First RTP port. */
  readonly rtpPort: number;
  /** `sip:127.0.0.1:PORT`: where to reach it directly. */
  readonly uri: string;
  /** The recording path, when recording. */
  readonly recordFile: string | undefined;
  /** Conference clock rate (the recording's rate). */
  readonly clockRate: number;
  readonly #ownPorts: number[];
  #closing: Promise<void> | undefined;

  /** Use {@link startPjsuaCaller} / {@link startPjsuaCallee}. */
  constructor(init: {
    role: 'caller' | 'callee';
    proc: ManagedProcess;
    localPort: number;
    rtpPort: number;
    recordFile: string | undefined;
    clockRate: number;
    ownPorts: number[];
  }) {
    this.role = init.role;
    this.proc = init.proc;
    this.localPort = init.localPort;
    this.rtpPort = init.rtpPort;
    this.recordFile = init.recordFile;
    this.clockRate = init.clockRate;
    this.uri = `sip:${LOOPBACK}:${init.localPort}`;
    this.#ownPorts = init.ownPorts;
  }

  /** True once the process has exited. */
  get closed(): boolean {
    return this.proc.closed;
  }

  /** Write one console command line (a newline is appended). */
  command(line: string): void {
    this.proc.write(`${line}\n`);
  }

  /** Hang up the current call (`h`), or every call (`ha`). */
  hangup(all = false): void {
    this.command(all ? 'ha' : 'h');
  }

  /** Send DTMF digits on the current call: RFC 2833 events (`#`) or SIP INFO (`*`). */
  sendDtmf(digits: string, method: 'rfc2833' | 'info' = 'rfc2833'): void {
    if (!/^[0-9A-D*#]+$/.test(digits)) throw new TypeError(`invalid DTMF digits [digits:${digits}]`);
    this.command(method === 'rfc2833' ? '#' : '*');
    this.command(digits);
  }

  /** Wait for a log line matching `re` (from `fromSeq`, default the whole log). */
  waitForLog(re: RegExp, timeoutMs: number, fromSeq = 0): Promise<{ line: LogLine; match: RegExpExecArray }> {
    return this.proc.waitForLog(re, timeoutMs, fromSeq);
  }

  /** Wait for the first REGISTER outcome (success or failure) logged at or after `fromSeq`. */
  async waitForRegistration(timeoutMs: number, fromSeq = 0): Promise<PjsuaRegistration> {
    const { line } = await this.proc.waitForLog(
      new RegExp(`${REG_OK_RE.source}|${REG_FAIL_RE.source}`, 'i'),
      timeoutMs,
      fromSeq,
    );
    const ok = REG_OK_RE.exec(line.text);
    if (ok) return { ok: true, status: Number(ok[1]), reason: ok[2], line };
    const fail = REG_FAIL_RE.exec(line.text);
    const status = Number(fail?.[1] ?? fail?.[3] ?? fail?.[5] ?? 0);
    return { ok: false, status, reason: fail?.[2] ?? fail?.[4] ?? line.text, line };
  }

  /** Wait until call `callId` (default any) reaches `state`. */
  async waitForCallState(state: PjsuaCallState, timeoutMs: number, callId?: number, fromSeq = 0): Promise<LogLine> {
    const id = callId === undefined ? '\\d+' : String(callId);
    const { line } = await this.proc.waitForLog(new RegExp(`Call ${id} state changed to ${state}\\b`), timeoutMs, fromSeq);
    return line;
  }

  /** Wait until an INVITE arrives (pjsua logs every incoming INVITE, re-INVITEs included). */
  async waitForIncomingInvite(timeoutMs: number, fromSeq = 0): Promise<LogLine> {
    const { line } = await this.proc.waitForLog(/Incoming Request msg INVITE/, timeoutMs, fromSeq);
    return line;
  }

  /** Wait until a call (default any) is disconnected; resolves with its final status. */
  async waitForDisconnect(timeoutMs: number, callId?: number, fromSeq = 0): Promise<PjsuaDisconnect> {
    const id = callId === undefined ? '\\d+' : String(callId);
    const { line } = await this.proc.waitForLog(
      new RegExp(`Call ${id} is DISCONNECTED \\[reason=\\d+`),
      timeoutMs,
      fromSeq,
    );
    const m = DISCONNECT_RE.exec(line.text);
    return { callId: Number(m?.[1] ?? -1), status: Number(m?.[2] ?? 0), reason: m?.[3] ?? '', line };
  }

  /** DTMF digits this peer received so far, in order (RFC 2833 or INFO, as pjsua logs them). */
  receivedDtmf(): string {
    return this.proc
      .grep(INCOMING_DTMF_RE)
      .map((l) => INCOMING_DTMF_RE.exec(l.text)?.[2] ?? '')
      .join('');
  }

  /** Wait for the process to exit. */
  waitForExit(timeoutMs: number): Promise<ExitInfo> {
    return this.proc.waitForExit(timeoutMs);
  }

  /**
   * Quit cleanly (`q`), which also finalises the recording's WAV header; kills the group if it
   * has not exited within `timeoutMs`.
   */
  async quit(timeoutMs = 5_000): Promise<ExitInfo> {
    if (!this.proc.closed) {
      try {
        this.command('q');
      } catch {
        // Already exiting: waitForExit below settles it.
      }
      try {
        await this.proc.waitForExit(timeoutMs);
      } catch {
        await this.proc.kill();
      }
    }
    await this.close();
    return this.proc.exitInfo ?? { code: null, signal: null };
  }

  /** Kill the process group (SIGTERM, then SIGKILL) and release its ports; idempotent. */
  async kill(): Promise<void> {
    await this.close();
  }

  /** Lifecycle: kill and release ports; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.proc.kill();
      for (const p of this.#ownPorts) releasePort(p);
    })();
    return this.#closing;
  }
}

async function startPjsua(role: 'caller' | 'callee', opts: PjsuaCommonOptions, roleArgs: string[]): Promise<Pjsua> {
  const binary = opts.binary ?? findPjsuaBinary();
  const maxCalls = opts.maxCalls ?? 4;
  const ownPorts: number[] = [];
  const localPort = opts.localPort ?? (await freePort(opts.tcp ? 'both' : 'udp'));
  if (opts.localPort === undefined) ownPorts.push(localPort);
  // pjsua opens an RTP/RTCP pair per possible call at start, counting up from --rtp-port.
  const rtpCount = 2 * maxCalls + 2;
  const rtpPort = opts.rtpPort ?? (await freePortRange(rtpCount));
  if (opts.rtpPort === undefined) for (let p = rtpPort; p < rtpPort + rtpCount; p++) ownPorts.push(p);
  const clockRate = opts.clockRate ?? 16000;
  const level = String(opts.logLevel ?? 4);

  const args = [
    '--null-audio',
    '--no-vad',
    '--no-color',
    `--log-level=${level}`,
    `--app-log-level=${level}`,
    `--local-port=${localPort}`,
    `--ip-addr=${LOOPBACK}`,
    `--bound-addr=${LOOPBACK}`,
    `--rtp-port=${rtpPort}`,
    `--max-calls=${maxCalls}`,
    `--clock-rate=${clockRate}`,
    '--snd-auto-close=-1',
  ];
  if (!opts.tcp) args.push('--no-tcp');
  if (opts.codecs && opts.codecs.length > 0) {
    args.push('--dis-codec=*', ...opts.codecs.map((c) => `--add-codec=${c}`));
  }
  if (opts.playFile) {
    if (!fs.existsSync(opts.playFile)) throw new PeerError(`play file missing [file:${opts.playFile}]`);
    args.push(`--play-file=${opts.playFile}`, '--auto-play');
  }
  if (opts.recordFile) args.push(`--rec-file=${opts.recordFile}`, '--auto-rec');
  if (opts.registrar || opts.id) {
    if (!opts.registrar || !opts.id) throw new TypeError('pjsua registration needs both id and registrar');
    args.push(`--id=${opts.id}`, `--registrar=${opts.registrar}`, `--realm=${opts.realm ?? '*'}`);
    if (opts.username !== undefined) args.push(`--username=${opts.username}`);
    if (opts.password !== undefined) args.push(`--password=${opts.password}`);
    if (opts.regTimeoutSec !== undefined) args.push(`--reg-timeout=${opts.regTimeoutSec}`);
    // A failed REGISTER is retried after this delay; keep it beyond any test's life.
    args.push('--rereg-delay=300');
  }
  if (opts.outbound) args.push(`--outbound=${opts.outbound}`);
  args.push(...roleArgs, ...(opts.extraArgs ?? []));
  const target = role === 'caller' ? (opts as PjsuaCallerOptions).target : undefined;
  if (target) args.push(target);

  const proc = spawnManaged({
    name: opts.name ?? `pjsua-${role}`,
    ...lineBuffered(binary, args),
    stdin: 'pipe',
    lifetimeMs: opts.lifetimeMs ?? 60_000,
  });
  const pj = new Pjsua({ role, proc, localPort, rtpPort, recordFile: opts.recordFile, clockRate, ownPorts });
  try {
    await proc.waitForLog(READY_RE, 10_000);
  } catch (err) {
    await pj.close();
    throw err;
  }
  return pj;
}

/**
 * Start pjsua as a caller: it calls `target` at once, plays `playFile` and records into
 * `recordFile` from connect, and hangs up after `durationSec` if given. Resolves once pjsua runs.
 */
export function startPjsuaCaller(opts: PjsuaCallerOptions): Promise<Pjsua> {
  if (!/^sips?:/.test(opts.target)) throw new TypeError(`caller target must be a SIP URI [target:${opts.target}]`);
  const roleArgs: string[] = [];
  if (opts.durationSec !== undefined) roleArgs.push(`--duration=${Math.max(1, Math.round(opts.durationSec))}`);
  return startPjsua('caller', opts, roleArgs);
}

/**
 * Start pjsua as a callee: auto-answers (200 by default) and plays `playFile` (looped) into each
 * call; optionally registers. Resolves once pjsua runs (not once registered).
 */
export function startPjsuaCallee(opts: PjsuaCalleeOptions = {}): Promise<Pjsua> {
  const roleArgs = [`--auto-answer=${opts.autoAnswer ?? 200}`];
  if (opts.loop) roleArgs.push('--auto-loop');
  return startPjsua('callee', opts, roleArgs);
}

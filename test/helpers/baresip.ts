/**
 * baresip (libre's independent SIP stack) as a second, non-PJSIP peer. It runs headless from a
 * test-local config dir (`-f DIR`): no terminal UI module; it is driven through the `ctrl_tcp`
 * module (netstring-framed JSON commands and events on a loopback TCP port). Audio comes from a
 * WAV through the `aufile` source; what it hears is written by the `sndfile` filter as
 * `dump-<time>-dec.wav` (and what it sends as `...-enc.wav`) in the config dir.
 *
 * What works with baresip 1.0.0 (Debian bookworm): auto-answer (`answermode=auto` on the account),
 * `dial`/`hangup`/`accept` over ctrl_tcp, registration with digest auth, G.711. There is no audio
 * player needed: the rx pipeline runs without one.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { makeTmpDir } from './fixtures';
import { LOOPBACK, freePort, freePortRange, releasePort } from './ports';
import { ManagedProcess, PeerError, lineBuffered, spawnManaged, type LogLine } from './proc';

/** Options for {@link startBaresip}. */
export interface BaresipOptions {
  /** Name in logs and errors (default `baresip`). */
  name?: string;
  /** SIP port (UDP and TCP; default: a free one). */
  sipPort?: number;
  /** User part of its own AOR (default `bs`). */
  user?: string;
  /** Answer incoming calls automatically (default false: they ring until `accept`). */
  autoAnswer?: boolean;
  /** WAV (mono PCM16) sent into every call; without it baresip sends nothing. */
  playFile?: string;
  /** Register at a registrar (Kamailio): its `host:port`, and the digest password for `user`. */
  register?: { hostPort: string; password: string; regintSec?: number };
  /** Audio codecs for the account, e.g. `['PCMU/8000/1']` (default: all loaded). */
  codecs?: string[];
  /** Hard lifetime in ms (default 60 000); baresip also gets `-t` of the same length. */
  lifetimeMs?: number;
  /** baresip binary (default `baresip` or `$BARESIP_BIN`). */
  binary?: string;
  /** Module dir (default `/usr/lib/baresip/modules` or `$BARESIP_MODULES`). */
  modulesDir?: string;
}

/** A ctrl_tcp event (e.g. `CALL_ESTABLISHED`, `CALL_CLOSED`, `REGISTER_OK`). */
export interface BaresipEvent {
  /** Event type. */
  type: string;
  /** Event class (`call`, `register`, `other`...). */
  class?: string;
  /** Peer URI for call events. */
  peeruri?: string;
  /** Call id for call events. */
  id?: string;
  /** Free parameter (reason text for CALL_CLOSED). */
  param?: string;
  /** The raw JSON object. */
  raw: Record<string, unknown>;
}

/** A ctrl_tcp command response. */
export interface BaresipResponse {
  /** Whether the command succeeded. */
  ok: boolean;
  /** Command output text. */
  data: string;
}

const DEFAULT_MODULES = '/usr/lib/baresip/modules';
/** Cap on retained ctrl_tcp events; older ones are dropped and counted. */
const MAX_EVENTS = 2000;
/** Cap on a ctrl_tcp receive buffer before we give up on the stream. */
const MAX_CTRL_BUFFER = 1024 * 1024;

/** A running baresip with a ctrl_tcp connection. */
export class Baresip {
  /** Its process (log buffer, pid). */
  readonly proc: ManagedProcess;
  /** SIP port. */
  readonly sipPort: number;
  /** ctrl_tcp port. */
  readonly ctrlPort: number;
  /** Config dir (also where sndfile dumps land). */
  readonly dir: string;
  /** `sip:USER@127.0.0.1:PORT`: where to call it directly. */
  readonly uri: string;
  readonly #events: BaresipEvent[] = [];
  #droppedEvents = 0;
  readonly #eventWaiters = new Set<{ type: string; from: number; resolve: (e: BaresipEvent) => void }>();
  readonly #pending: { resolve: (r: BaresipResponse) => void; reject: (e: Error) => void; token: string }[] = [];
  readonly #ownPorts: number[];
  #sock: net.Socket | undefined;
  #buf = Buffer.alloc(0);
  #seen = 0;
  #token = 0;
  #closing: Promise<void> | undefined;

  /** Use {@link startBaresip}. */
  constructor(init: { proc: ManagedProcess; sipPort: number; ctrlPort: number; dir: string; user: string; ownPorts: number[] }) {
    this.proc = init.proc;
    this.sipPort = init.sipPort;
    this.ctrlPort = init.ctrlPort;
    this.dir = init.dir;
    this.uri = `sip:${init.user}@${LOOPBACK}:${init.sipPort}`;
    this.#ownPorts = init.ownPorts;
  }

  /** True once the process has exited. */
  get closed(): boolean {
    return this.proc.closed;
  }

  /** Events dropped because the event cap was reached. */
  get droppedEvents(): number {
    return this.#droppedEvents;
  }

  /** Open the ctrl_tcp connection (done by {@link startBaresip}). */
  async connect(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastErr: unknown;
    while (Date.now() < deadline && !this.proc.closed) {
      try {
        this.#sock = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect({ host: LOOPBACK, port: this.ctrlPort }, () => resolve(s));
          s.once('error', reject);
        });
        this.#sock.on('data', (d) => this.#onData(d));
        this.#sock.on('error', () => undefined);
        this.#sock.on('close', () => {
          for (const p of this.#pending.splice(0)) p.reject(new PeerError(`baresip ctrl connection closed [token:${p.token}]`));
        });
        return;
      } catch (err) {
        lastErr = err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new PeerError(`baresip ctrl_tcp not reachable [port:${this.ctrlPort}]\n${this.proc.tail()}`, { cause: lastErr });
  }

  /** Send a ctrl_tcp command (e.g. `dial`, `hangup`, `accept`, `quit`) and await its response. */
  command(command: string, params?: string, timeoutMs = 5_000): Promise<BaresipResponse> {
    const sock = this.#sock;
    if (!sock || sock.destroyed) return Promise.reject(new PeerError(`baresip ctrl not connected [command:${command}]`));
    const token = String(++this.#token);
    const body = JSON.stringify(params === undefined ? { command, token } : { command, params, token });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#pending.findIndex((p) => p.token === token);
        if (i >= 0) this.#pending.splice(i, 1);
        reject(new PeerError(`baresip command timed out [command:${command}, timeoutMs:${timeoutMs}]`));
      }, timeoutMs);
      this.#pending.push({
        token,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      sock.write(`${Buffer.byteLength(body)}:${body},`);
    });
  }

  /** Dial a SIP URI. */
  async dial(uri: string): Promise<void> {
    const r = await this.command('dial', uri);
    if (!r.ok) throw new PeerError(`baresip dial failed [uri:${uri}, data:${r.data}]`);
  }

  /** Hang up the current call. */
  async hangup(): Promise<void> {
    await this.command('hangup');
  }

  /** Answer the ringing call. */
  async accept(): Promise<void> {
    await this.command('accept');
  }

  /** ctrl_tcp events received so far (optionally of one type). */
  events(type?: string): BaresipEvent[] {
    return type ? this.#events.filter((e) => e.type === type) : this.#events.slice();
  }

  /** Number of events received so far: pass as `fromIndex` to wait only for later ones. */
  get eventMark(): number {
    return this.#seen;
  }

  /** Wait for an event of `type` (from the event count `fromIndex`, default: all received). */
  waitForEvent(type: string, timeoutMs: number, fromIndex = 0): Promise<BaresipEvent> {
    const firstIdx = fromIndex - (this.#seen - this.#events.length);
    const hit = this.#events.slice(Math.max(0, firstIdx)).find((e) => e.type === type);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const w = {
        type,
        from: fromIndex,
        resolve: (e: BaresipEvent) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const timer = setTimeout(() => {
        this.#eventWaiters.delete(w);
        reject(new PeerError(`baresip: no ${type} event within ${timeoutMs} ms [port:${this.sipPort}]\n${this.proc.tail()}`));
      }, timeoutMs);
      this.#eventWaiters.add(w);
    });
  }

  /** Wait for a log line matching `re`. */
  waitForLog(re: RegExp, timeoutMs: number, fromSeq = 0): Promise<{ line: LogLine; match: RegExpExecArray }> {
    return this.proc.waitForLog(re, timeoutMs, fromSeq);
  }

  /** Recordings made by sndfile so far: `dec` is what baresip heard, `enc` what it sent. */
  recordings(): { dec: string[]; enc: string[] } {
    const files = fs.readdirSync(this.dir).filter((f) => f.startsWith('dump-')).sort();
    return {
      dec: files.filter((f) => f.endsWith('-dec.wav')).map((f) => path.join(this.dir, f)),
      enc: files.filter((f) => f.endsWith('-enc.wav')).map((f) => path.join(this.dir, f)),
    };
  }

  /** Stop baresip (SIGTERM lets sndfile finalise its WAVs; SIGKILL after a grace) and release ports; idempotent. */
  stop(): Promise<void> {
    this.#closing ??= (async () => {
      this.#sock?.destroy();
      await this.proc.kill();
      for (const p of this.#ownPorts) releasePort(p);
    })();
    return this.#closing;
  }

  /** Lifecycle alias of stop(). */
  close(): Promise<void> {
    return this.stop();
  }

  #onData(d: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, d]);
    if (this.#buf.length > MAX_CTRL_BUFFER) {
      this.#sock?.destroy(new PeerError(`baresip ctrl stream over cap [bytes:${this.#buf.length}]`));
      return;
    }
    for (;;) {
      const colon = this.#buf.indexOf(0x3a);
      if (colon < 0) return;
      const len = Number(this.#buf.subarray(0, colon).toString('ascii'));
      if (!Number.isInteger(len) || len < 0) {
        this.#sock?.destroy(new PeerError('baresip ctrl stream is not netstring-framed'));
        return;
      }
      if (this.#buf.length < colon + 1 + len + 1) return;
      const body = this.#buf.subarray(colon + 1, colon + 1 + len).toString('utf8');
      this.#buf = this.#buf.subarray(colon + 1 + len + 1);
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(body) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (msg.response === true) this.#onResponse(msg);
      else if (msg.event === true) this.#onEvent(msg);
    }
  }

  #onResponse(msg: Record<string, unknown>): void {
    const token = typeof msg.token === 'string' ? msg.token : undefined;
    const i = token ? this.#pending.findIndex((p) => p.token === token) : 0;
    const p = i >= 0 ? this.#pending.splice(i, 1)[0] : undefined;
    p?.resolve({ ok: msg.ok === true, data: typeof msg.data === 'string' ? msg.data : '' });
  }

  #onEvent(msg: Record<string, unknown>): void {
    const str = (k: string): string | undefined => (typeof msg[k] === 'string' ? (msg[k] as string) : undefined);
    const ev: BaresipEvent = {
      type: str('type') ?? '',
      class: str('class'),
      peeruri: str('peeruri'),
      id: str('id'),
      param: str('param'),
      raw: msg,
    };
    this.#events.push(ev);
    const index = this.#seen++;
    if (this.#events.length > MAX_EVENTS) {
      this.#events.shift();
      this.#droppedEvents++;
    }
    for (const w of this.#eventWaiters) {
      if (w.type === ev.type && index >= w.from) {
        this.#eventWaiters.delete(w);
        w.resolve(ev);
      }
    }
  }
}

/** Render baresip's `config` file (exported for inspection). */
export function renderBaresipConfig(o: {
  sipPort: number;
  ctrlPort: number;
  rtpPort: number;
  rtpCount: number;
  playFile?: string;
  modulesDir: string;
  dir: string;
}): string {
  const lines = [
    'poll_method\t\tepoll',
    `sip_listen\t\t${LOOPBACK}:${o.sipPort}`,
    `net_interface\t\t${LOOPBACK}`,
    'call_local_timeout\t30',
    'call_max_calls\t\t4',
    `rtp_ports\t\t${o.rtpPort}-${o.rtpPort + o.rtpCount - 1}`,
    'jitter_buffer_delay\t1-10',
    'audio_buffer\t\t20',
    `module_path\t\t${o.modulesDir}`,
    'module\t\t\tg711.so',
    'module\t\t\tl16.so',
    'module\t\t\taufile.so',
    'module\t\t\tsndfile.so',
    'module\t\t\tctrl_tcp.so',
    'module_tmp\t\taccount.so',
    'module_app\t\tmenu.so',
    `ctrl_tcp_listen\t\t${LOOPBACK}:${o.ctrlPort}`,
    `snd_path\t\t${o.dir}`,
  ];
  if (o.playFile) lines.push(`audio_source\t\taufile,${o.playFile}`, `audio_alert\t\taufile,${o.playFile}`);
  return `${lines.join('\n')}\n`;
}

/** Start baresip headless in a tmp config dir and connect to its ctrl_tcp port. */
export async function startBaresip(opts: BaresipOptions = {}): Promise<Baresip> {
  const user = opts.user ?? 'bs';
  if (!/^[A-Za-z0-9._+-]+$/.test(user)) throw new TypeError(`baresip user not allowed [user:${user}]`);
  if (opts.playFile && !fs.existsSync(opts.playFile)) throw new PeerError(`play file missing [file:${opts.playFile}]`);
  const ownPorts: number[] = [];
  const sipPort = opts.sipPort ?? (await freePort('both'));
  if (opts.sipPort === undefined) ownPorts.push(sipPort);
  const ctrlPort = await freePort('tcp');
  ownPorts.push(ctrlPort);
  const rtpCount = 16;
  const rtpPort = await freePortRange(rtpCount);
  for (let p = rtpPort; p < rtpPort + rtpCount; p++) ownPorts.push(p);
  const dir = await makeTmpDir('baresip-');
  const modulesDir = opts.modulesDir ?? process.env.BARESIP_MODULES ?? DEFAULT_MODULES;
  fs.writeFileSync(
    path.join(dir, 'config'),
    renderBaresipConfig({ sipPort, ctrlPort, rtpPort, rtpCount, playFile: opts.playFile, modulesDir, dir }),
  );
  const params: string[] = [];
  if (opts.register) {
    params.push(`auth_pass=${opts.register.password}`, `regint=${opts.register.regintSec ?? 60}`);
  } else {
    params.push('regint=0');
  }
  params.push(`answermode=${opts.autoAnswer ? 'auto' : 'manual'}`);
  if (opts.codecs?.length) params.push(`audio_codecs=${opts.codecs.join(',')}`);
  const domain = opts.register?.hostPort ?? LOOPBACK;
  fs.writeFileSync(path.join(dir, 'accounts'), `<sip:${user}@${domain}>;${params.join(';')}\n`);
  fs.writeFileSync(path.join(dir, 'contacts'), '');

  const lifetimeMs = opts.lifetimeMs ?? 60_000;
  const proc = spawnManaged({
    name: opts.name ?? 'baresip',
    ...lineBuffered(opts.binary ?? process.env.BARESIP_BIN ?? 'baresip', [
      '-f',
      dir,
      '-t',
      String(Math.ceil(lifetimeMs / 1000)),
    ]),
    cwd: dir,
    lifetimeMs: lifetimeMs + 2_000,
  });
  const bs = new Baresip({ proc, sipPort, ctrlPort, dir, user, ownPorts });
  try {
    await proc.waitForLog(/baresip is ready/, 10_000);
    await bs.connect(5_000);
  } catch (err) {
    await bs.stop();
    throw err;
  }
  return bs;
}

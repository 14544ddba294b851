/**
 * Kamailio as a loopback registrar/proxy for tests: digest auth from an in-memory user table (no
 * database), usrloc in memory, record-routing proxy for INVITE and in-dialog requests, and `xlog`
 * lines (prefixed `HARNESS`) for every REGISTER result, request and INVITE reply so tests can wait
 * on them. Runs in the foreground (`-DD -E`) in its own process group; all files live in a tmp dir.
 */
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTmpDir } from './fixtures';
import { LOOPBACK, freePort, releasePort } from './ports';
import { ManagedProcess, PeerError, delay, runCommand, spawnManaged, type LogLine } from './proc';

/** Options for {@link startKamailio}. */
export interface KamailioOptions {
  /** Users allowed to REGISTER: name -> password (names `[A-Za-z0-9._+-]`, passwords printable, no `"` or `\`). */
  users: Record<string, string>;
  /** SIP domain (and digest realm, taken from the To domain) (default 127.0.0.1). */
  domain?: string;
  /** UDP port to listen on (default: a free one). */
  port?: number;
  /** Kamailio binary (default `kamailio` on PATH, or `$KAMAILIO_BIN`). */
  binary?: string;
  /** Modules directory (default: the Debian one, or `$KAMAILIO_MPATH`). */
  modulesDir?: string;
  /** Hard lifetime in ms (default 120 000). */
  lifetimeMs?: number;
  /** Time allowed to start and answer an OPTIONS probe, in ms (default 10 000). */
  startTimeoutMs?: number;
  /** Kamailio core debug level (default 2: notices and up, which includes the HARNESS lines). */
  debugLevel?: number;
}

/** One parsed REGISTER outcome from Kamailio's log. */
export interface RegisterEvent {
  /** `ok` after save("location"); `fail` when auth failed; `challenge` when a 401 was sent. */
  result: 'ok' | 'fail' | 'challenge';
  /** The user (To URI user part). */
  user: string;
  /** For `ok`: whether the AOR has at least one contact bound after the save (false = unregistered). */
  bound?: boolean;
  /** For `fail`: pv_www_authenticate's code or a word (`mismatch`, `unknown-user`, `save`). */
  reason?: string;
  /** The log line it came from. */
  line: LogLine;
}

/** A running Kamailio. */
export interface Kamailio {
  /** UDP port it listens on. */
  readonly port: number;
  /** SIP domain. */
  readonly domain: string;
  /** `sip:127.0.0.1:PORT`: the registrar URI. */
  readonly uri: string;
  /** `sip:127.0.0.1:PORT;lr`: the value for an outbound proxy / Route. */
  readonly outboundUri: string;
  /** Path of the generated config. */
  readonly configPath: string;
  /** The underlying process (log buffer, pid). */
  readonly proc: ManagedProcess;
  /** `sip:user@domain` for a configured user. */
  aor(user: string): string;
  /** Wait for a log line matching `re` (from `fromSeq`, default the whole log). */
  waitForLog(re: RegExp, timeoutMs: number, fromSeq?: number): Promise<{ line: LogLine; match: RegExpExecArray }>;
  /** Every REGISTER outcome logged so far, oldest first. */
  registerEvents(user?: string): RegisterEvent[];
  /** True when the last REGISTER outcome for `user` left it bound. */
  registered(user: string): boolean;
  /** Wait until `user` is registered (a REGISTER ok with a bound contact), from `fromSeq`. */
  waitForRegistration(user: string, timeoutMs: number, fromSeq?: number): Promise<RegisterEvent>;
  /** Whether the process has exited. */
  readonly closed: boolean;
  /** Stop Kamailio (group kill) and release its port; idempotent. */
  stop(): Promise<void>;
  /** Lifecycle alias of stop(). */
  close(): Promise<void>;
}

const DEFAULT_MPATH = '/usr/lib/x86_64-linux-gnu/kamailio/modules';
const USER_RE = /^[A-Za-z0-9._+-]{1,64}$/;
// The script's string literal: printable ASCII without the quote and the escape char.
const PASSWORD_RE = /^[\x20-\x21\x23-\x5b\x5d-\x7e]{1,128}$/;
const DOMAIN_RE = /^[A-Za-z0-9.-]{1,253}$/;
const REGISTER_RE = /HARNESS REGISTER (OK|FAIL|CHALLENGE) user=(\S*)(?: bound=(\d))?(?: reason=(\S+))?/;

/** Render the Kamailio config for a users table (exported for inspection and unit tests). */
export function renderKamailioConfig(opts: {
  users: Record<string, string>;
  domain: string;
  port: number;
  modulesDir: string;
  debugLevel: number;
}): string {
  const { users, domain, port, modulesDir, debugLevel } = opts;
  const problems: string[] = [];
  for (const [name, pw] of Object.entries(users)) {
    if (!USER_RE.test(name)) problems.push(`user name not allowed [user:${JSON.stringify(name)}]`);
    if (!PASSWORD_RE.test(pw)) problems.push(`password not allowed [user:${name}]`);
  }
  if (!DOMAIN_RE.test(domain)) problems.push(`domain not allowed [domain:${JSON.stringify(domain)}]`);
  if (problems.length > 0) throw new TypeError(`kamailio config rejected: ${problems.join('; ')}`);

  const authBranches = Object.entries(users)
    .map(
      ([name, pw], i) =>
        `\t${i === 0 ? 'if' : '} else if'} ($au == "${name}") {\n` +
        `\t\tpv_www_authenticate("$td", "${pw}", "0");\n\t\t$var(rc) = $rc;`,
    )
    .join('\n');
  const authBlock =
    Object.keys(users).length > 0 ? `${authBranches}\n\t}` : '\t# no users configured: every REGISTER fails';
  const aliases = [`alias="${LOOPBACK}:${port}"`];
  if (domain !== LOOPBACK) aliases.push(`alias="${domain}:${port}"`, `alias="${domain}"`);

  return `#!KAMAILIO
# Generated by the test harness: loopback registrar/proxy with in-memory digest auth.
debug=${debugLevel}
log_stderror=yes
log_prefix=""
children=2
disable_tcp=yes
auto_aliases=no
dns=no
rev_dns=no
use_dns_cache=no
listen=udp:${LOOPBACK}:${port}
${aliases.join('\n')}
mpath="${modulesDir}/"

loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "auth.so"

modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", 3600)
modparam("registrar", "min_expires", 10)
modparam("tm", "fr_timer", 5000)
modparam("tm", "fr_inv_timer", 30000)

request_route {
	xlog("L_NOTICE", "HARNESS REQUEST method=$rm ruri=$ru from=$fu to=$tu callid=$ci src=$si:$sp\\n");
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}
	if (is_method("OPTIONS") && uri == myself && $rU == $null) {
		sl_send_reply("200", "OK");
		exit;
	}
	if (has_totag()) {
		route(WITHINDLG);
		exit;
	}
	if (is_method("CANCEL")) {
		if (t_check_trans()) {
			route(RELAY);
		}
		exit;
	}
	if (is_method("ACK")) {
		if (t_check_trans()) {
			t_relay();
		}
		exit;
	}
	# Absorb retransmissions of requests whose transaction already exists.
	t_check_trans();
	if (is_method("REGISTER")) {
		route(REGISTRAR);
		exit;
	}
	remove_hf("Route");
	if (is_method("INVITE|SUBSCRIBE|REFER")) {
		record_route();
	}
	# sip:user@${domain} without a port is ours too: AORs carry no port, the proxy does.
	if (uri != myself && !($rd == "${domain}" && $(ru{uri.port}) == "")) {
		route(RELAY);
		exit;
	}
	if ($rU == $null) {
		sl_send_reply("484", "Address Incomplete");
		exit;
	}
	if (!lookup("location")) {
		xlog("L_NOTICE", "HARNESS LOOKUP NOTFOUND method=$rm user=$rU callid=$ci\\n");
		sl_send_reply("404", "Not Found");
		exit;
	}
	xlog("L_NOTICE", "HARNESS LOOKUP FOUND method=$rm user=$rU dst=$ru callid=$ci\\n");
	route(RELAY);
}

route[RELAY] {
	if (is_method("INVITE")) {
		t_on_reply("INVITE_REPLY");
		t_on_failure("INVITE_FAILURE");
	}
	if (!t_relay()) {
		xlog("L_NOTICE", "HARNESS RELAY FAIL method=$rm ruri=$ru callid=$ci\\n");
		sl_reply_error();
	}
	exit;
}

route[WITHINDLG] {
	if (loose_route()) {
		route(RELAY);
		exit;
	}
	if (is_method("ACK")) {
		if (t_check_trans()) {
			t_relay();
		}
		exit;
	}
	sl_send_reply("404", "Not Here");
	exit;
}

route[REGISTRAR] {
	if (!is_present_hf("Authorization")) {
		xlog("L_NOTICE", "HARNESS REGISTER CHALLENGE user=$tU\\n");
		www_challenge("$td", "0");
		exit;
	}
	if ($au != $tU) {
		xlog("L_NOTICE", "HARNESS REGISTER FAIL user=$tU reason=mismatch\\n");
		sl_send_reply("403", "Forbidden");
		exit;
	}
	$var(rc) = -3;
${authBlock}
	if ($var(rc) == -4 || $var(rc) == -6) {
		# Stale or reused nonce: a fresh challenge, as RFC 2617 intends.
		xlog("L_NOTICE", "HARNESS REGISTER CHALLENGE user=$tU\\n");
		www_challenge("$td", "0");
		exit;
	}
	if ($var(rc) < 0) {
		xlog("L_NOTICE", "HARNESS REGISTER FAIL user=$tU reason=$var(rc)\\n");
		sl_send_reply("403", "Forbidden");
		exit;
	}
	consume_credentials();
	if (!save("location")) {
		xlog("L_NOTICE", "HARNESS REGISTER FAIL user=$tU reason=save\\n");
		sl_reply_error();
		exit;
	}
	if (registered("location", "$tu")) {
		xlog("L_NOTICE", "HARNESS REGISTER OK user=$tU bound=1 contact=$ct\\n");
	} else {
		xlog("L_NOTICE", "HARNESS REGISTER OK user=$tU bound=0 contact=$ct\\n");
	}
	exit;
}

onreply_route[INVITE_REPLY] {
	xlog("L_NOTICE", "HARNESS REPLY status=$rs method=$rm callid=$ci\\n");
}

failure_route[INVITE_FAILURE] {
	xlog("L_NOTICE", "HARNESS FAILURE status=$T_reply_code callid=$ci\\n");
}
`;
}

/**
 * Write a config into a tmp dir, check it with `kamailio -c` (failing with its output), start
 * Kamailio in the foreground and resolve once it answers a SIP OPTIONS probe.
 */
export async function startKamailio(opts: KamailioOptions): Promise<Kamailio> {
  const domain = opts.domain ?? LOOPBACK;
  const ownPort = opts.port === undefined;
  const port = opts.port ?? (await freePort('udp'));
  const binary = opts.binary ?? process.env.KAMAILIO_BIN ?? 'kamailio';
  const modulesDir = opts.modulesDir ?? process.env.KAMAILIO_MPATH ?? DEFAULT_MPATH;
  const dir = await makeTmpDir('kamailio-');
  const configPath = path.join(dir, 'kamailio.cfg');
  fs.writeFileSync(
    configPath,
    renderKamailioConfig({ users: opts.users, domain, port, modulesDir, debugLevel: opts.debugLevel ?? 2 }),
  );
  const proc = await spawnKamailio({ binary, configPath, modulesDir, dir, port, ownPort, lifetimeMs: opts.lifetimeMs, startTimeoutMs: opts.startTimeoutMs });
  return new KamailioHandle(proc, port, domain, configPath, ownPort);
}

class KamailioHandle implements Kamailio {
  readonly uri: string;
  readonly outboundUri: string;
  #stopping: Promise<void> | undefined;

  constructor(
    readonly proc: ManagedProcess,
    readonly port: number,
    readonly domain: string,
    readonly configPath: string,
    private readonly ownPort: boolean,
  ) {
    this.uri = `sip:${LOOPBACK}:${port}`;
    this.outboundUri = `sip:${LOOPBACK}:${port};lr`;
  }

  get closed(): boolean {
    return this.proc.closed;
  }

  aor(user: string): string {
    return `sip:${user}@${this.domain}`;
  }

  waitForLog(re: RegExp, timeoutMs: number, fromSeq = 0): Promise<{ line: LogLine; match: RegExpExecArray }> {
    return this.proc.waitForLog(re, timeoutMs, fromSeq);
  }

  registerEvents(user?: string): RegisterEvent[] {
    const out: RegisterEvent[] = [];
    for (const line of this.proc.grep(REGISTER_RE)) {
      const ev = parseRegisterLine(line);
      if (ev && (user === undefined || ev.user === user)) out.push(ev);
    }
    return out;
  }

  registered(user: string): boolean {
    const last = this.registerEvents(user)
      .filter((e) => e.result === 'ok')
      .pop();
    return last?.bound === true;
  }

  async waitForRegistration(user: string, timeoutMs: number, fromSeq = 0): Promise<RegisterEvent> {
    const re = new RegExp(`HARNESS REGISTER OK user=${escapeRe(user)} bound=1`);
    const { line } = await this.proc.waitForLog(re, timeoutMs, fromSeq);
    const ev = parseRegisterLine(line);
    if (!ev) throw new PeerError(`unparsable REGISTER line [user:${user}, line:${line.text}]`);
    return ev;
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.proc.kill();
      if (this.ownPort) releasePort(this.port);
    })();
    return this.#stopping;
  }

  close(): Promise<void> {
    return this.stop();
  }
}

/**
 * Check `configPath`, start Kamailio in the foreground (its own process group) and wait until it
 * answers OPTIONS on `port`. `-A` defines in `defines` override the config's own.
 */
async function spawnKamailio(o: {
  binary: string;
  configPath: string;
  modulesDir: string;
  dir: string;
  port: number;
  ownPort: boolean;
  defines?: string[];
  lifetimeMs?: number;
  startTimeoutMs?: number;
}): Promise<ManagedProcess> {
  const runDir = path.join(o.dir, 'run');
  fs.mkdirSync(runDir, { recursive: true });
  const common = ['-f', o.configPath, '-L', o.modulesDir, '-Y', runDir, '-w', o.dir, ...(o.defines ?? []).flatMap((d) => ['-A', d])];
  try {
    await runCommand('kamailio-check', o.binary, ['-c', ...common], { timeoutMs: 15_000 });
  } catch (err) {
    if (o.ownPort) releasePort(o.port);
    throw new PeerError(`kamailio config check failed [config:${o.configPath}]`, { cause: err });
  }
  const proc = spawnManaged({
    name: 'kamailio',
    command: o.binary,
    args: [...common, '-DD', '-E', '-P', path.join(runDir, 'kamailio.pid'), '-m', '32', '-M', '8'],
    lifetimeMs: o.lifetimeMs ?? 120_000,
  });
  const startTimeout = o.startTimeoutMs ?? 10_000;
  const deadline = Date.now() + startTimeout;
  let answered = false;
  while (!answered && Date.now() < deadline && !proc.closed) {
    answered = await sipPing(LOOPBACK, o.port, 300);
    if (!answered) await delay(100);
  }
  if (!answered) {
    const exited = proc.exitInfo;
    await proc.kill();
    if (o.ownPort) releasePort(o.port);
    const what = exited
      ? `exited during start [exit:${exited.code ?? exited.signal}`
      : `did not answer OPTIONS within ${startTimeout} ms [`;
    throw new PeerError(`kamailio ${what}, port:${o.port}, config:${o.configPath}]\n${proc.tail()}`);
  }
  return proc;
}

/** The shipped dispatcher configuration (docs/DEPLOYMENT.md), run as it is with -A defines. */
export const DISPATCHER_CFG = path.resolve(__dirname, __dirname.split(path.sep).includes('dist') ? '../../..' : '../..', 'examples/kamailio/dispatcher.cfg');

/** Options for {@link startDispatcher}. */
export interface DispatcherOptions {
  /** The agents, as `host:port` SIP addresses (set 1 of the dispatcher list). */
  agents: string[];
  /** OPTIONS probe interval, s (default 1). */
  probeIntervalSec?: number;
  /** A branch with no provisional answer in this long fails over, ms (default 2000). */
  inviteTimeoutMs?: number;
  lifetimeMs?: number;
}

/** A running dispatcher: Kamailio with examples/kamailio/dispatcher.cfg in front of agents. */
export interface Dispatcher {
  readonly port: number;
  readonly proc: ManagedProcess;
  /** Wait until the dispatcher logs an agent going `up` or `down` (`agent` as given, from `fromSeq`). */
  waitForState(agent: string, state: 'up' | 'down', timeoutMs: number, fromSeq?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Start Kamailio's dispatcher on a free loopback port in front of `agents`. */
export async function startDispatcher(opts: DispatcherOptions): Promise<Dispatcher> {
  const port = await freePort('udp');
  const dir = await makeTmpDir('kamailio-ds-');
  const list = path.join(dir, 'dispatcher.list');
  fs.writeFileSync(list, opts.agents.map((a) => `1 sip:${a}\n`).join(''));
  const modulesDir = process.env.KAMAILIO_MPATH ?? DEFAULT_MPATH;
  const proc = await spawnKamailio({
    binary: process.env.KAMAILIO_BIN ?? 'kamailio',
    configPath: DISPATCHER_CFG,
    modulesDir,
    dir,
    port,
    ownPort: true,
    defines: [
      `LISTEN=udp:${LOOPBACK}:${port}`,
      `DISPATCHER_LIST="${list}"`,
      `PROBE_INTERVAL=${opts.probeIntervalSec ?? 1}`,
      `INVITE_TIMEOUT_MS=${opts.inviteTimeoutMs ?? 2000}`,
    ],
    lifetimeMs: opts.lifetimeMs,
  });
  let stopping: Promise<void> | undefined;
  return {
    port,
    proc,
    async waitForState(agent, state, timeoutMs, fromSeq = 0) {
      await proc.waitForLog(new RegExp(`DISPATCH ${state} sip:${escapeRe(agent)}\\b`), timeoutMs, fromSeq);
    },
    stop() {
      stopping ??= (async () => {
        await proc.kill();
        releasePort(port);
      })();
      return stopping;
    },
  };
}

function parseRegisterLine(line: LogLine): RegisterEvent | undefined {
  const m = REGISTER_RE.exec(line.text);
  if (!m) return undefined;
  const result = m[1].toLowerCase() as RegisterEvent['result'];
  const ev: RegisterEvent = { result, user: m[2], line };
  if (m[3] !== undefined) ev.bound = m[3] === '1';
  if (m[4] !== undefined) ev.reason = m[4];
  return ev;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Send one SIP OPTIONS over UDP to host:port and resolve true if any SIP response comes back
 * within `timeoutMs` (a liveness probe for any SIP peer).
 */
export function sipPing(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.close();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('error', () => finish(false));
    sock.on('message', (msg) => finish(msg.toString('latin1').startsWith('SIP/2.0 ')));
    sock.bind(0, LOOPBACK, () => {
      const lport = sock.address().port;
      const rand = Math.random().toString(36).slice(2, 12);
      const req =
        `OPTIONS sip:${host}:${port} SIP/2.0\r\n` +
        `Via: SIP/2.0/UDP ${LOOPBACK}:${lport};branch=z9hG4bK${rand};rport\r\n` +
        `Max-Forwards: 70\r\n` +
        `From: <sip:probe@${LOOPBACK}>;tag=${rand}\r\n` +
        `To: <sip:${host}:${port}>\r\n` +
        `Call-ID: ${rand}@${LOOPBACK}\r\n` +
        `CSeq: 1 OPTIONS\r\n` +
        `Content-Length: 0\r\n\r\n`;
      sock.send(req, port, host, (err) => {
        if (err) finish(false);
      });
    });
  });
}

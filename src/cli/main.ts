/**
 * The `sip-ai-agent` command. Without a subcommand it runs the daemon in the foreground (what
 * systemd's ExecStart calls); subcommands talk to a running daemon through its admin API.
 * Exit codes: 0 ok, 1 runtime failure, 64 bad usage, 78 bad configuration. Errors are one
 * sentence on stderr; stack traces only with --log-level debug.
 */
import { Command, CommanderError, Option } from 'commander';
import { readLocalToken } from '../daemon/adminToken';
import { AdminClient, DEFAULT_ADMIN_URL } from '../admin/client';
import { loadConfig, redactConfig } from '../config';
import { ConfigError } from '../util/errors';
import { EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from '../daemon/exitCodes';
import { runDaemon } from '../daemon/run';
import { runTestCall } from '../daemon/testCall';
import { loadPrompts } from '../daemon/prompts';
import { LOG_LEVELS, type LogLevel } from '../logging/logger';
import { VERSION } from '../daemon/version';

interface GlobalOptions {
  config?: string;
  check?: boolean;
  logLevel?: LogLevel;
  adminUrl?: string;
  token?: string;
}

function write(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
}

function fail(err: unknown, debug: boolean): number {
  if (err instanceof ConfigError) {
    process.stderr.write(`sip-ai-agent: invalid configuration:\n${err.problems.map((p) => `  ${p.path ? `${p.path}: ` : ''}${p.message}`).join('\n')}\n`);
    return EXIT_CONFIG;
  }
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`sip-ai-agent: ${msg}\n`);
  if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return EXIT_FAILURE;
}

/** Admin client from --admin-url/--token, else from the config file's admin section. */
/** The running daemon's admin API address and the token to use there. */
function adminTarget(g: GlobalOptions): { baseUrl: string; token: string | undefined } {
  let baseUrl = g.adminUrl ?? process.env.SIP_AI_AGENT_ADMIN_URL;
  let token = g.token ?? process.env.SIP_AI_AGENT_ADMIN_TOKEN;
  if (!baseUrl && g.config) {
    const cfg = loadConfig(g.config, { checkFiles: false });
    const host = cfg.admin.listen === '0.0.0.0' ? '127.0.0.1' : cfg.admin.listen === '::' ? '::1' : cfg.admin.listen;
    baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${cfg.admin.port}`;
    // The daemon's generated token, when no token is configured and this user may read it.
    token = token ?? cfg.admin.token ?? readLocalToken(cfg.records.dir);
  }
  return { baseUrl: baseUrl ?? DEFAULT_ADMIN_URL, token };
}

function adminClient(g: GlobalOptions): AdminClient {
  return new AdminClient(adminTarget(g));
}

function printJson(v: unknown): void {
  write(JSON.stringify(v, null, 2));
}

/** Parse `K=V` header options. */
function parseHeaders(list: string[] | undefined): Record<string, string> | undefined {
  if (!list?.length) return undefined;
  const out: Record<string, string> = {};
  for (const item of list) {
    const i = item.indexOf('=');
    if (i <= 0) throw new Error(`--header must be Name=value, got '${item}'`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

/** Run the CLI; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command();
  let code = EXIT_OK;
  const globals = (): GlobalOptions => program.opts<GlobalOptions>();
  const debug = (): boolean => globals().logLevel === 'debug' || globals().logLevel === 'trace';
  const guard =
    <A extends unknown[]>(fn: (...args: A) => Promise<number | void>) =>
    async (...args: A): Promise<void> => {
      try {
        code = (await fn(...args)) ?? EXIT_OK;
      } catch (err) {
        code = fail(err, debug());
      }
    };

  program
    .name('sip-ai-agent')
    .description('A SIP user agent that answers calls with an AI voice agent (OpenAI Realtime).')
    .version(VERSION, '-V, --version')
    .option('-c, --config <file>', 'configuration file (YAML or JSON)')
    .option('--check', 'validate the configuration and exit (0 valid, 78 invalid)')
    .addOption(new Option('-l, --log-level <level>', 'log level (overrides logging.level)').choices(LOG_LEVELS as unknown as string[]))
    .option('--admin-url <url>', 'admin API of the running daemon (subcommands; default from --config, else http://127.0.0.1:8089)')
    .option('--token <token>', 'admin API bearer token (subcommands; or SIP_AI_AGENT_ADMIN_TOKEN)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .action(
      guard(async () => {
        const g = globals();
        if (!g.config) {
          process.stderr.write('sip-ai-agent: --config <file> is required to run the daemon (see --help)\n');
          return EXIT_USAGE;
        }
        if (g.check) {
          const cfg = loadConfig(g.config);
          // The check covers what start-up loads: the prompts must decode as WAV too.
          loadPrompts(cfg, Number(cfg.media.clockRate));
          write(`${g.config}: configuration is valid (${cfg.accounts.length} account(s), ai.provider ${cfg.ai.provider})`);
          return EXIT_OK;
        }
        return runDaemon({ configPath: g.config, logLevel: g.logLevel });
      }),
    );

  program
    .command('status')
    .description('show registrations, active calls and versions of the running daemon')
    .option('--json', 'print JSON')
    .action(
      guard(async (o: { json?: boolean }) => {
        const s = (await adminClient(globals()).status()) as {
          version?: string;
          pjsip?: string;
          uptimeSec?: number;
          transports?: Record<string, string>;
          accounts?: { uri: string; registers: boolean; registered: boolean; sipCode?: number; reason?: string }[];
          calls?: { active: number; draining: boolean };
          ai?: { provider: string; model: string };
        };
        if (o.json) {
          printJson(s);
          return EXIT_OK;
        }
        write(`sip-ai-agent ${s.version ?? '?'} (pjsip ${s.pjsip ?? '?'}), up ${s.uptimeSec ?? 0} s`);
        write(`transports: ${Object.entries(s.transports ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')}`);
        for (const a of s.accounts ?? []) {
          const reg = a.registers ? (a.registered ? 'registered' : `not registered${a.sipCode ? ` (${a.sipCode} ${a.reason ?? ''})` : ''}`) : 'takes direct calls';
          write(`account ${a.uri}: ${reg}`);
        }
        write(`calls: ${s.calls?.active ?? 0} active${s.calls?.draining ? ', draining' : ''}; ai: ${s.ai?.provider ?? '?'} ${s.ai?.model ?? ''}`);
        return EXIT_OK;
      }),
    );

  program
    .command('calls')
    .description('list active and recent calls')
    .action(
      guard(async () => {
        const list = await adminClient(globals()).calls();
        printJson(list);
        return EXIT_OK;
      }),
    );

  program
    .command('call <uri>')
    .description('place an outbound call that runs the same AI conversation')
    .option('--instructions <text>', 'instructions for this call instead of ai.instructions')
    .option('--header <name=value...>', 'extra INVITE header (repeatable)')
    .action(
      guard(async (uri: string, o: { instructions?: string; header?: string[] }) => {
        const placed = await adminClient(globals()).placeCall(uri, { instructions: o.instructions, headers: parseHeaders(o.header) });
        printJson(placed);
        return EXIT_OK;
      }),
    );

  program
    .command('console')
    .description("print the operator console's address: a sign-in link carrying the admin token (in the fragment, which never reaches a server log) when this user can read it")
    .action(
      guard(async () => {
        const { baseUrl, token } = adminTarget(globals());
        write(`${baseUrl.replace(/\/+$/, '')}/console/${token ? `#token=${encodeURIComponent(token)}` : ''}`);
        return EXIT_OK;
      }),
    );

  program
    .command('hangup <id>')
    .description('hang up a call')
    .action(
      guard(async (id: string) => {
        await adminClient(globals()).hangup(id);
        write(`call ${id} hung up`);
        return EXIT_OK;
      }),
    );

  program
    .command('transcript <id>')
    .description("print a call's transcript (--follow: live, until the call ends)")
    .option('-f, --follow', 'keep printing new lines until the call ends')
    .action(
      guard(async (id: string, o: { follow?: boolean }) => {
        const client = adminClient(globals());
        const res = await client.transcript(id, {
          follow: Boolean(o.follow),
          onLine: (l) => write(`${l.at ? `[${l.at}] ` : ''}${l.speaker}: ${l.text}`),
        });
        void res;
        return EXIT_OK;
      }),
    );

  program
    .command('test-call')
    .description('call the agent from a built-in test caller: speak, listen, and report what happened')
    .option('--target <uri>', 'SIP URI of the agent (default: from --config, the UDP transport on loopback)')
    .option('--seconds <n>', 'how long to stay on the call', '12')
    .action(
      guard(async (o: { target?: string; seconds: string }) => {
        const g = globals();
        return runTestCall({ configPath: g.config, target: o.target, seconds: Number(o.seconds), logLevel: g.logLevel });
      }),
    );

  program
    .command('config-dump')
    .description('print the effective configuration with defaults filled and secrets redacted')
    .action(
      guard(async () => {
        const g = globals();
        if (!g.config) {
          process.stderr.write('sip-ai-agent: --config <file> is required\n');
          return EXIT_USAGE;
        }
        printJson(redactConfig(loadConfig(g.config)));
        return EXIT_OK;
      }),
    );

  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT_OK;
      return EXIT_USAGE;
    }
    return fail(err, debug());
  }
  return code;
}

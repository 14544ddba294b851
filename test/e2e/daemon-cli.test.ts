/**
 * The command as sysadmins meet it before any call: `--check`, `--version`, bad usage, and the
 * start-up failures a misconfigured host produces (a port in use, a greeting that is not a WAV).
 * Every case runs the real `node bin/sip-ai-agent.js` and checks its exit code and what it says.
 */
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { LOOPBACK, freePort } from '../helpers/ports';
import { useHarnessCleanup } from '../helpers/proc';
import { makeTone } from '../helpers/fixtures';
import { DAEMON_FIXTURES, EXIT, REPO_ROOT, assertBuilt, prepareDaemon, runCli, spawnDaemon } from '../helpers/daemon';

jest.setTimeout(40_000);
useHarnessCleanup();

beforeAll(() => {
  assertBuilt();
});

describe('--check', () => {
  test('a good configuration exits 0 with a line saying it is valid', async () => {
    const setup = await prepareDaemon('echo');
    const r = await runCli(['--config', setup.configPath, '--check']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(new RegExp(`${escapeRe(setup.configPath)}: configuration is valid`));
    expect(r.stdout).toMatch(/ai\.provider echo/);
  });

  test('a configuration with several mistakes exits 78 and names every one by its path', async () => {
    const r = await runCli(['--config', path.join(DAEMON_FIXTURES, 'bad.yaml'), '--check']);
    expect(r.code).toBe(EXIT.config);
    expect(r.stdout).toBe('');
    const problems = r.stderr.split('\n').filter((l) => /^\s+\S/.test(l));
    expect(problems.some((l) => l.trim().startsWith('accounts[0].registrar:') && /SIP URI/.test(l))).toBe(true);
    expect(problems.some((l) => l.trim().startsWith('media.clockRate:') && /11025/.test(l))).toBe(true);
    expect(problems.some((l) => l.trim().startsWith('recordings:') && /unknown key/.test(l))).toBe(true);
    expect(problems).toHaveLength(3);
  });

  test('a config file that does not exist is a configuration error (78) naming the file', async () => {
    const missing = path.join(REPO_ROOT, 'test', 'fixtures', 'daemon', 'no-such-config.yaml');
    const r = await runCli(['--config', missing, '--check']);
    expect(r.code).toBe(EXIT.config);
    expect(r.stderr).toContain(missing);
    expect(r.stderr).toMatch(/ENOENT|does not exist|cannot read/);
  });

  test('a greeting file that is not a WAV fails the check (78, naming greeting.file), as it fails start-up', async () => {
    const setup = await prepareDaemon('echo');
    const notWav = path.join(setup.dir, 'greeting.wav');
    fs.writeFileSync(notWav, 'this is not audio\n');
    setup.write({ greeting: { file: notWav } });
    const r = await runCli(['--config', setup.configPath, '--check']);
    expect(r.stderr).toMatch(/greeting\.file/);
    expect(r.code).toBe(EXIT.config);
  });

  test('--version prints the package version', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = await runCli(['--version']);
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  test('an unknown option exits 64 and names the option', async () => {
    const r = await runCli(['--frobnicate']);
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toMatch(/unknown option '--frobnicate'/);
  });

  test('running the daemon without --config is a usage error (64) that says --config is required', async () => {
    const r = await runCli([]);
    expect(r.stderr).toMatch(/--config/);
    expect(r.code).toBe(EXIT.usage);
  });
});

describe('start-up failures', () => {
  test('the SIP port already in use: exits 1 with a sentence naming the transport and port', async () => {
    const setup = await prepareDaemon('echo');
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(setup.ports.sip, LOOPBACK, () => resolve());
    });
    try {
      const d = spawnDaemon(setup);
      const exit = await d.proc.waitForExit(20_000);
      expect(exit.code).toBe(EXIT.failure);
      const stderr = d.proc.logText('stderr');
      expect(stderr).toMatch(new RegExp(`udp transport on ${escapeRe(LOOPBACK)}:${setup.ports.sip}\\b`, 'i'));
      expect(stderr).toMatch(/already in use/i);
      expect(d.logsWithMsg('sip-ai-agent ready')).toHaveLength(0);
      expect(d.logsWithMsg('start-up failed')).toHaveLength(1);
    } finally {
      sock.close();
    }
  });

  test('the admin port already in use: exits 1 naming host:port, and frees the SIP port again', async () => {
    const setup = await prepareDaemon('echo');
    const srv = net.createServer();
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(setup.ports.admin, LOOPBACK, () => resolve());
    });
    try {
      const d = spawnDaemon(setup);
      const exit = await d.proc.waitForExit(20_000);
      expect(exit.code).toBe(EXIT.failure);
      const stderr = d.proc.logText('stderr');
      expect(stderr).toContain(`${LOOPBACK}:${setup.ports.admin}`);
      expect(stderr).toMatch(/admin API/);
      expect(stderr).toMatch(/in use/i);
      expect(d.logsWithMsg('sip-ai-agent ready')).toHaveLength(0);
    } finally {
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
    // The process is gone, so the SIP port it had bound must be free.
    const probe = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.bind(setup.ports.sip, LOOPBACK, () => resolve());
    });
    probe.close();
  });

  test('a greeting file that is not a WAV: exits 78 naming greeting.file', async () => {
    const setup = await prepareDaemon('echo');
    const notWav = path.join(setup.dir, 'greeting.wav');
    fs.writeFileSync(notWav, 'RIFX but not really a wave file, just text\n');
    setup.write({ greeting: { file: notWav } });
    const d = spawnDaemon(setup);
    const exit = await d.proc.waitForExit(20_000);
    expect(exit.code).toBe(EXIT.config);
    const stderr = d.proc.logText('stderr');
    expect(stderr).toMatch(/invalid configuration/);
    expect(stderr).toMatch(/greeting\.file: .*greeting\.wav/);
    expect(d.logsWithMsg('sip-ai-agent ready')).toHaveLength(0);
  });

  test('a valid WAV greeting at another rate is accepted (the daemon starts)', async () => {
    const setup = await prepareDaemon('echo');
    const wav = await makeTone(path.join(setup.dir, 'greeting-16k.wav'), 500, 300, { sampleRate: 16000 });
    setup.write({ greeting: { file: wav } });
    const d = spawnDaemon(setup);
    await d.waitForMsg('sip-ai-agent ready', 20_000);
    const exit = await d.stop();
    expect(exit.code).toBe(EXIT.ok);
  });
});

describe('subcommands without a daemon', () => {
  test('status with no daemon listening says so, naming the admin URL from the config, and exits 1', async () => {
    const setup = await prepareDaemon('echo');
    const r = await runCli(['--config', setup.configPath, 'status']);
    expect(r.code).toBe(EXIT.failure);
    expect(r.stderr).toContain(`no daemon is listening on http://${LOOPBACK}:${setup.ports.admin}`);
    expect(r.stdout).toBe('');
  });

  test('calls with --admin-url and nothing there says no daemon is listening and exits 1', async () => {
    const port = await freePort('tcp');
    const r = await runCli(['--admin-url', `http://${LOOPBACK}:${port}`, 'calls']);
    expect(r.code).toBe(EXIT.failure);
    expect(r.stderr).toMatch(/no daemon is listening/);
  });
});

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

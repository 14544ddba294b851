/**
 * systemd Type=notify: with NOTIFY_SOCKET set the daemon reports READY=1 once it takes calls and
 * STOPPING=1 on SIGTERM (through systemd-notify). A small listener stands in for systemd.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnManaged, useHarnessCleanup } from '../helpers/proc';
import { tmpDir } from '../helpers/fixtures';
import { EXIT, prepareDaemon, startDaemon } from '../helpers/daemon';

jest.setTimeout(60_000);
useHarnessCleanup();

const hasNotify = fs.existsSync('/bin/systemd-notify') || fs.existsSync('/usr/bin/systemd-notify');

(hasNotify ? test : test.skip)('READY=1 when calls can be taken, STOPPING=1 on SIGTERM, exit 0', async () => {
  const dir = await tmpDir('notify-');
  const socketPath = path.join(dir, 'notify.sock');
  const listener = spawnManaged({
    name: 'notify-listener',
    command: 'python3',
    args: ['-u', path.join(__dirname, '../fixtures/scripts/notify-listener.py'), socketPath],
    lifetimeMs: 50_000,
  });
  await listener.waitForLog(/^listening/, 10_000);
  const setup = await prepareDaemon('echo');
  const d = await startDaemon(setup, { env: { NOTIFY_SOCKET: socketPath } });
  const ready = await listener.waitForLog(/^notify .*READY=1/, 15_000);
  expect(ready.line.text).toMatch(/STATUS=taking calls on 127\.0\.0\.1:\d+/);
  const mark = listener.mark;
  const exit = d.stop();
  await listener.waitForLog(/^notify .*STOPPING=1/, 15_000, mark);
  expect((await exit).code).toBe(EXIT.ok);
  await listener.kill();
});

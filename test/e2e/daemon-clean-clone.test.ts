/**
 * The README's first command from a clean clone: `git clone` this repository (its committed HEAD),
 * then `npm start` there, for real: npm ci, the addon build, tsc, `--check`, the daemon with
 * examples/demo.yaml and the built-in test call. Only pjproject is not fetched again: PJPROJECT_SRC
 * points at this checkout's source tree, and the clone's own scripts find its build in the cache
 * (same source, flags and config_site.h, so the same key).
 *
 * The demo uses fixed ports (SIP 5070, admin 8089): the test checks they are free first and free
 * again afterwards (the demo's daemon must be gone).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTmpDir } from '../helpers/fixtures';
import { isPortFree } from '../helpers/ports';
import { runCommand, spawnManaged, useHarnessCleanup } from '../helpers/proc';
import { REPO_ROOT } from '../helpers/daemon';

const TIMEOUT_MS = 10 * 60_000;
jest.setTimeout(TIMEOUT_MS + 60_000);
useHarnessCleanup();

const PJ_SRC = path.join(REPO_ROOT, 'third_party', 'pjproject');
const PJ_BUILD = path.join(REPO_ROOT, 'third_party', '.build', 'pjproject');
const DEMO_PORTS = { sip: 5070, admin: 8089 };

/** The environment of a fresh shell: no npm lifecycle variables, no AI key, no demo overrides. */
function cleanEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of Object.keys(process.env)) {
    if (k.startsWith('npm_') || k === 'INIT_CWD' || k === 'NODE_ENV' || k.startsWith('JEST_') || k.startsWith('SIP_AI_AGENT_')) env[k] = undefined;
  }
  return { ...env, OPENAI_API_KEY: undefined, PJSUA_BIN: undefined, ...extra };
}

test('npm start in a clean clone of HEAD exits 0, prints "test call: OK" and "call record:", and leaves the ports free', async () => {
  // The cached pjproject build must be the one HEAD's scripts would make, or the clone would build another.
  expect(fs.existsSync(path.join(PJ_BUILD, '.sip-ai-agent-build'))).toBe(true);
  const headConfigSite = execFileSync('git', ['show', 'HEAD:native/pj_config_site.h'], { cwd: REPO_ROOT, encoding: 'utf8' });
  expect(fs.readFileSync(path.join(PJ_BUILD, 'pjlib', 'include', 'pj', 'config_site.h'), 'utf8')).toBe(headConfigSite);

  expect(await isPortFree(DEMO_PORTS.sip, 'udp')).toBe(true);
  expect(await isPortFree(DEMO_PORTS.admin, 'tcp')).toBe(true);

  const dir = await makeTmpDir('clean-clone-');
  const clone = path.join(dir, 'sip-ai-agent');
  await runCommand('git-clone', 'git', ['clone', '--quiet', REPO_ROOT, clone], { timeoutMs: 60_000 });
  expect(fs.existsSync(path.join(clone, 'node_modules'))).toBe(false);
  expect(fs.existsSync(path.join(clone, 'dist'))).toBe(false);

  const demo = spawnManaged({
    name: 'npm-start',
    command: 'npm',
    args: ['start'],
    cwd: clone,
    env: cleanEnv({ SIP_AI_AGENT_DEMO_ONCE: '1', PJPROJECT_SRC: PJ_SRC, CI: 'true' }),
    lifetimeMs: TIMEOUT_MS,
    killGraceMs: 10_000,
    maxLines: 50_000,
  });
  const exit = await demo.waitForExit(TIMEOUT_MS + 20_000);
  const out = demo.logText();
  if (exit.code !== 0) {
    // npm prints its whole usage text after the one line that matters: quote the causes first.
    const causes = demo
      .grep(/can only install|Missing: |command failed|command sh -c|\] error: |FAILED/)
      .slice(0, 12)
      .map((l) => `  ${l.text}`)
      .join('\n');
    throw new Error(`npm start failed [exit:${exit.code ?? exit.signal}, timedOut:${demo.timedOut}]\n${causes}\n--- last lines ---\n${demo.tail(30)}`);
  }

  expect(out).toMatch(/^test call: OK$/m);
  // The addon is built once, by scripts/build-addon.sh. npm must not run an implicit `node-gyp
  // rebuild` for the root package during `npm ci` (binding.gyp at the root does that unless
  // package.json says "gypfile": false): in a clone without a built pjproject, as in CI, it fails.
  expect(demo.grep(/^> node-gyp rebuild$/).map((l) => l.text)).toEqual([]);
  const recordLine = /^call record: (\S+\.json)$/m.exec(out);
  expect(recordLine).not.toBeNull();
  // pjproject came from PJPROJECT_SRC and its build from the cache; everything else was built in the clone.
  expect(out).toMatch(/pjproject 2\.17 already built for this configuration/);
  expect(out).not.toMatch(/configuring pjproject/);
  expect(fs.existsSync(path.join(clone, 'build', 'Release', 'sip_ai_agent.node'))).toBe(true);
  expect(fs.existsSync(path.join(clone, 'dist', 'src', 'cli', 'main.js'))).toBe(true);

  const record = JSON.parse(fs.readFileSync(path.resolve(clone, (recordLine as RegExpExecArray)[1]), 'utf8')) as Record<string, unknown>;
  expect(record).toMatchObject({ status: 'completed', direction: 'inbound', endReason: 'caller_hangup' });
  expect(record.ai).toMatchObject({ backend: 'echo' });

  // The demo's daemon stopped with the script.
  expect(await isPortFree(DEMO_PORTS.sip, 'udp')).toBe(true);
  expect(await isPortFree(DEMO_PORTS.admin, 'tcp')).toBe(true);
});

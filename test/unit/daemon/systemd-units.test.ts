/** The shipped systemd units: systemd-analyze accepts them, and the template keeps instances apart. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const DIR = path.join(__dirname, '..', '..', '..', 'scripts', 'systemd');
const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => fs.existsSync(p));

/** systemd-analyze verify on a copy whose commands exist on this machine; its complaints. */
function verify(file: string, as: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'units-'));
  try {
    const text = fs.readFileSync(path.join(DIR, file), 'utf8').replaceAll('/usr/bin/sip-ai-agent', '/bin/true');
    fs.writeFileSync(path.join(dir, as), text);
    const r = spawnSync(analyze!, ['verify', path.join(dir, as)], { encoding: 'utf8' });
    return `${r.stdout}${r.stderr}`.trim();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

(analyze ? test : test.skip)('systemd-analyze verify accepts the unit and an instance of the template', () => {
  expect(verify('sip-ai-agent.service', 'sip-ai-agent.service')).toBe('');
  expect(verify('sip-ai-agent@.service', 'sip-ai-agent@a.service')).toBe('');
});

test('the template gives each instance its own config, state directory and instance id', () => {
  const t = fs.readFileSync(path.join(DIR, 'sip-ai-agent@.service'), 'utf8');
  expect(t).toMatch(/^ExecStart=\/usr\/bin\/sip-ai-agent --config \/etc\/sip-ai-agent\/%i\.yaml$/m);
  expect(t).toMatch(/^StateDirectory=sip-ai-agent\/%i$/m);
  expect(t).toMatch(/^ReadWritePaths=\/var\/lib\/sip-ai-agent\/%i$/m);
  expect(t).toMatch(/^Environment=SIP_AI_AGENT_INSTANCE=%i$/m);
  // Everything else is the single-instance unit's.
  const single = fs.readFileSync(path.join(DIR, 'sip-ai-agent.service'), 'utf8');
  const settings = (s: string) => s.split('\n').filter((l) => /^[A-Z]\w+=/.test(l) && !/%i/.test(l) && !/^(Description|ExecStart|ExecStartPre|StateDirectory|WorkingDirectory|ReadWritePaths)=/.test(l));
  expect(settings(t)).toEqual(settings(single));
});

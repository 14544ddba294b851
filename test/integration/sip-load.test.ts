/**
 * Resource hygiene of the native core: many calls in a row and at once leave no threads, file
 * descriptors or native ports behind, and the process exits cleanly with a call up.
 * Bounded: 50 sequential + 20 concurrent calls, each a few hundred ms, on loopback.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { startPjsuaCallee } from '../helpers/pjsua';
import { useHarnessCleanup } from '../helpers/proc';
import { goertzel } from '../helpers/audio-analysis';
import { PcmCollector, agentUri, sleep, startAgent, until } from '../helpers/agent';
import { sine } from '../helpers/tone';
import { addonCandidates } from '../../src/native/binding';
import type { UserAgent } from '../../src/sip/UserAgent';
import type { SipAccount } from '../../src/sip/SipAccount';
import type { SipCall } from '../../src/sip/SipCall';

jest.setTimeout(120_000);
useHarnessCleanup();

const threads = (): number => fs.readdirSync('/proc/self/task').length;
const fds = (): number => fs.readdirSync('/proc/self/fd').length;

let ua: UserAgent;
let from: SipAccount;

beforeAll(async () => {
  ua = await startAgent({ media: { clockRate: 8000, codecs: ['PCMU'], rtpPortStart: 30000, rtpPortRange: 2000 }, maxCalls: 100 });
  await ua.addAccount({ uri: 'sip:agent@127.0.0.1', isDefault: true });
  from = await ua.addAccount({ uri: 'sip:load@127.0.0.1' });
  ua.on('incomingCall', (c) => {
    const w = inboundWaiters.shift();
    if (w) w(c);
    else inboundQueue.push(c);
  });
});

afterAll(async () => {
  await ua?.close();
});

const inboundQueue: SipCall[] = [];
const inboundWaiters: ((c: SipCall) => void)[] = [];
function nextInbound(): Promise<SipCall> {
  const c = inboundQueue.shift();
  return c ? Promise.resolve(c) : new Promise((resolve) => inboundWaiters.push(resolve));
}

/** One call from `from` to the agent: answer, send a tone each way, hang up; resolves when both legs closed. */
async function oneCall(durationMs: number, checkAudio: boolean): Promise<void> {
  // Concurrent callers may pick up each other's inbound leg; every leg is answered and closed alike.
  const incoming = nextInbound();
  const out = await ua.call(from, agentUri(ua));
  const inbound = await incoming;
  const heard = new PcmCollector(inbound);
  await inbound.answer();
  await out.waitForState('confirmed', 10_000);
  out.writeAudio(sine(1000, durationMs, 8000));
  if (checkAudio) {
    // The far end hears the tone once RTP and its jitter buffer have started.
    await until(() => goertzel(heard.pcm(), 0, heard.samples, 1000, 8000) > 0.05, 5000, 'the tone at the far end');
  } else {
    await sleep(durationMs);
  }
  const closed = Promise.all([out.waitFor('close', 10_000), inbound.waitFor('close', 10_000)]);
  await out.hangup();
  await closed;
}

test('50 calls in a row and 20 at once leave no threads, descriptors or ports behind', async () => {
  await oneCall(200, true); // warm-up: the media clock and its threads start with the first call
  await sleep(200);
  const baseThreads = threads();
  const baseFds = fds();
  for (let i = 0; i < 50; i++) await oneCall(100, i % 10 === 0);
  await until(() => ua.calls.length === 0, 5000, 'all calls closed');
  await until(() => fds() <= baseFds, 5000, `descriptors back to ${baseFds} (now ${fds()})`);
  expect(threads()).toBe(baseThreads);

  const handles: number[] = [];
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      await oneCall(600, true);
    }),
  );
  for (const c of ua.calls) handles.push(c.handle);
  await until(() => ua.calls.length === 0, 10_000, 'all concurrent calls closed');
  await until(() => fds() <= baseFds, 5000, `descriptors back to ${baseFds} (now ${fds()})`);
  expect(threads()).toBe(baseThreads);
  expect(handles).toEqual([]);
});

test('the process exits 0 mid-call, and the far end gets its BYE', async () => {
  const addon = addonCandidates().find((p) => fs.existsSync(p))!;
  const callee = await startPjsuaCallee({ autoAnswer: 200, clockRate: 8000, codecs: ['PCMU'] });
  const child = spawn(process.execPath, [path.join(__dirname, '../fixtures/scripts/exit-mid-call.js'), callee.uri], {
    env: { ...process.env, SIP_AI_AGENT_ADDON: addon },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('exit', (c, s) => resolve([c, s])),
  );
  clearTimeout(killer);
  expect(out).toContain('exiting mid-call');
  expect(err).not.toMatch(/Assertion|Segmentation|terminate called|core dumped/);
  expect(signal).toBeNull();
  expect(code).toBe(0);
  const disc = await callee.waitForDisconnect(10_000);
  expect(disc.status).toBe(200);
  await callee.kill();
});

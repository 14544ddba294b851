/**
 * SIP fuzzing in every test run: the hand-made corpus (and every message that ever killed the
 * daemon, saved there) over UDP and TCP, then a few thousand seeded mutations of INVITE, OPTIONS,
 * REGISTER, SUBSCRIBE, BYE, CANCEL, REFER, re-INVITE and more, with dialog races in between. The
 * daemon must stay up throughout, and take a real call afterwards: a pjsua caller hears the
 * greeting and the call is recorded. `npm run fuzz` runs the same thing longer.
 * The seed is printed; FUZZ_SEED=<n> replays a run.
 */
import * as path from 'node:path';
import { findToneSpans, readWav } from '../helpers/audio-analysis';
import { makeSequence, makeTone } from '../helpers/fixtures';
import { startPjsuaCaller } from '../helpers/pjsua';
import { useHarnessCleanup } from '../helpers/proc';
import { assertBuilt, eventually, prepareDaemon, startDaemon, waitForRecord } from '../helpers/daemon';
import { fuzzSession } from '../fuzz/session';

jest.setTimeout(300_000);
useHarnessCleanup();

const RATE = 8000;
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const COUNT = Number(process.env.FUZZ_COUNT ?? 3000);

beforeAll(() => assertBuilt());

test(`the daemon survives the corpus and ${COUNT} mutated SIP messages (seed ${SEED})`, async () => {
  const s = await fuzzSession({ seed: SEED, count: COUNT, deadlineMs: 240_000, name: 'fuzz-e2e' });
  const r = s.result;
  const failure = r.failure
    ? `daemon failed (${r.failure.reason}) with seed ${SEED}; killers saved: ${s.saved.join(', ') || 'none isolated'}; window:\n${r.failure.window.map((m) => m.label).join('\n')}\n${s.tail ?? ''}`
    : undefined;
  expect(failure).toBeUndefined();
  expect(r.sent).toBe(COUNT);
  expect(r.corpusSent).toBeGreaterThanOrEqual(30);
  expect(r.checks).toBeGreaterThanOrEqual(COUNT / 250);
  expect(r.scenarios).toBeGreaterThan(10);
  // The daemon answered a good share of what it got: 4xx/5xx for the broken ones, 200s for some.
  expect(r.responses).toBeGreaterThan(COUNT / 10);
  expect(Object.keys(r.statuses).some((k) => k.startsWith('4'))).toBe(true);
});

test('a daemon that was just fuzzed completes a real call: the caller hears the greeting, the call is on record', async () => {
  const setup = await prepareDaemon('echo');
  const greeting = await makeTone(path.join(setup.dir, 'greeting-500.wav'), 500, 800, { sampleRate: RATE, amplitude: 0.4 });
  setup.write({ greeting: { file: greeting } });
  const d = await startDaemon(setup, { name: 'fuzz-then-call' });
  const { runFuzz } = await import('../fuzz/runner');
  // With the default rate limits: much of this meets the limiter.
  const r = await runFuzz({ port: setup.ports.sip, user: 'agent', alive: () => !d.closed }, { seed: SEED + 1, count: 500, corpus: true });
  expect(r.failure?.reason).toBeUndefined();
  expect(r.statuses['503']).toBeGreaterThan(0);
  // Calls the fuzzer's valid INVITEs started (never ACKed) end by themselves; wait for a free slot.
  await eventually(async () => {
    const list = await d.http('GET', '/calls');
    return (list.json as { active: unknown[] }).active.length < 4;
  }, 60_000, 'a free call slot');
  const callStart = Date.now();
  const play = await makeSequence(path.join(setup.dir, 'play.wav'), [{ silenceMs: 3000 }], { sampleRate: RATE });
  const rec = path.join(setup.dir, 'rec.wav');
  const caller = await startPjsuaCaller({ name: 'after-fuzz', target: setup.sipUri, playFile: play, recordFile: rec, durationSec: 3, clockRate: RATE, codecs: ['PCMU'] });
  const disc = await caller.waitForDisconnect(20_000);
  expect(disc.status).toBe(200);
  await caller.quit();
  const wav = readWav(rec);
  expect(findToneSpans(wav.pcm, wav.sampleRate, 500, { frameMs: 10, maxGapMs: 30, minDurationMs: 50, minLevel: 0.02 })).toHaveLength(1);
  // The call is on record, among whatever the fuzzer's valid INVITEs started.
  const record = await waitForRecord(
    setup.recordsDir,
    (x) => x.record.status === 'completed' && x.record.endReason === 'caller_hangup' && Date.parse(String(x.record.startedAt)) >= callStart - 1000,
    15_000,
  );
  expect(record.record.answeredAt).not.toBeNull();
  await d.close();
});

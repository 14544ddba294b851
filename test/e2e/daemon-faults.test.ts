/**
 * Faults the daemon survives, against real peers: a pjsua caller, the strict fake Realtime server
 * and the daemon process itself.
 *  - kill -9 mid-call: the next start rebuilds the call's record from its journal (answer time,
 *    duration up to the last entry, both sides of the transcript) and finishes the recording;
 *    the record is compared with what the caller and the fake server saw.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readWav } from '../helpers/audio-analysis';
import { makeSequence, makeTone } from '../helpers/fixtures';
import { startPjsuaCaller } from '../helpers/pjsua';
import { delay, useHarnessCleanup } from '../helpers/proc';
import { assertBuilt, eventually, listRecords, prepareDaemon, startDaemon, waitForRecord } from '../helpers/daemon';
import { FakeRealtimeServer, toneReply } from '../fakes/FakeRealtimeServer';

jest.setTimeout(90_000);
useHarnessCleanup();

const RATE = 8000;
const API_KEY = 'sk-faults-e2e-0123456789abcdef';

let fake: FakeRealtimeServer;

beforeAll(async () => {
  assertBuilt();
  fake = new FakeRealtimeServer({ apiKey: API_KEY, respond: toneReply({ toneHz: 1000, ms: 1000 }) });
  await fake.listen();
});

afterAll(async () => {
  await fake?.close();
});

test('kill -9 mid-call: the restarted daemon rebuilds the record from the journal: answer, both sides of the transcript, duration, recording', async () => {
  const setup = await prepareDaemon('echo');
  const greeting = await makeTone(path.join(setup.dir, 'greeting-500.wav'), 500, 600, { sampleRate: RATE, amplitude: 0.4 });
  setup.write({
    ai: {
      provider: 'openai',
      url: `${fake.baseUrl}/v1/realtime`,
      apiKey: API_KEY,
      model: 'gpt-realtime',
      transcription: { model: 'gpt-4o-mini-transcribe' },
      turnDetection: { type: 'server_vad', silenceDurationMs: 300, prefixPaddingMs: 100 },
    },
    greeting: { file: greeting, interruptible: false },
  });
  const sessionsBefore = fake.sessions.length;
  let d = await startDaemon(setup, { name: 'faults-kill9' });

  const play = await makeSequence(path.join(setup.dir, 'caller-play.wav'), [{ silenceMs: 1200 }, { toneHz: 700, ms: 600 }, { silenceMs: 20_000 }], {
    sampleRate: RATE,
  });
  const rec = path.join(setup.dir, 'caller-rec.wav');
  const caller = await startPjsuaCaller({ name: 'caller-kill9', target: setup.sipUri, playFile: play, recordFile: rec, durationSec: 25, clockRate: RATE, codecs: ['PCMU'] });
  await caller.waitForCallState('CONFIRMED', 10_000);
  const answeredAt = Date.now();

  // Wait until the model has answered the caller's phrase and both transcript lines exist.
  const session = await eventually(() => fake.sessions[sessionsBefore], 10_000, 'the Realtime session');
  await eventually(() => session.items.some((i) => i.role === 'assistant' && i.status === 'completed'), 15_000, 'the model reply');
  await eventually(
    () => session.items.some((i) => i.role === 'user' && i.content.some((c) => typeof c['transcript'] === 'string' && c['transcript'] !== '')),
    10_000,
    'the caller transcription',
  );
  // Let a few journal flushes pass, then kill the daemon outright.
  await delay(2500);
  const killedAt = Date.now();
  d.signal('SIGKILL');
  await d.proc.waitForExit(5_000);
  await delay(300);
  const [left] = listRecords(setup.recordsDir);
  expect(left.record.status).toBe('in_progress');

  // Restart on the same records directory: recovery runs before the first call.
  d = await startDaemon(setup, { name: 'faults-kill9-restart' });
  const r = await waitForRecord(setup.recordsDir, (x) => x.record.status === 'interrupted', 10_000);
  expect(d.logsWithMsg('recovered records left by an earlier run')[0]).toMatchObject({ records: 1, fromJournal: 1, recordings: 1 });

  // What the fake server heard and said is what the record holds.
  const userLine = session.items
    .filter((i) => i.role === 'user')
    .flatMap((i) => i.content.map((c) => c['transcript']))
    .find((t): t is string => typeof t === 'string' && t !== '');
  const agentLine = session.items.find((i) => i.role === 'assistant' && i.status === 'completed')!.transcript;
  const lines = (r.record.transcript as { speaker: string; text: string }[]).map((l) => [l.speaker, l.text]);
  expect(lines).toEqual(expect.arrayContaining([['caller', userLine], ['agent', agentLine]]));

  // Answered when the caller saw it; over no earlier than a second and a half before the kill.
  const answered = Date.parse(r.record.answeredAt as string);
  expect(Math.abs(answered - answeredAt)).toBeLessThan(2000);
  const ended = Date.parse(r.record.endedAt as string);
  expect(ended).toBeGreaterThan(killedAt - 2500);
  expect(ended).toBeLessThanOrEqual(killedAt + 500);
  expect(r.record).toMatchObject({ endReason: 'agent_stopped', direction: 'inbound', ai: { backend: 'openai', model: 'gpt-realtime' } });
  expect(r.record.error).toMatch(/journal/);

  // The recording was finished: a valid WAV as long as the call ran (give or take the last flush).
  expect(r.wavPath).toBeDefined();
  const wav = readWav(r.wavPath as string);
  expect(wav.channels).toBe(2);
  expect(wav.durationMs).toBeGreaterThan(killedAt - answeredAt - 3000);
  expect(wav.durationMs).toBeLessThan(killedAt - answeredAt + 1000);
  expect(fs.existsSync(`${r.wavPath as string}.part`)).toBe(false);
  expect(fs.readdirSync(path.dirname(r.jsonPath)).filter((f) => f.endsWith('.journal'))).toEqual([]);

  await caller.quit();
  await d.close();
});

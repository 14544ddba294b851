/**
 * ai.provider: openai-live with G.711 passthrough (ai.audioFormat pcmu, media.clockRate 8000),
 * against the strict GPT-Live fake: the session starts in audio/pcmu at 8000 Hz (one format both
 * ways), the model hears the caller, the caller hears the reply, and the µ-law stream goes up
 * continuously with no resampling on either side.
 */
import { FakeLiveServer, liveToneReply } from '../fakes/FakeLiveServer';
import { findToneSpans } from '../helpers/audio-analysis';
import { assertBuilt, prepareDaemon, startDaemon } from '../helpers/daemon';
import { useHarnessCleanup } from '../helpers/proc';
import { newSource } from '../helpers/rtp';
import { dialPcmu, openCaller, sayTone as say, useCallers } from '../helpers/rtpcall';

jest.setTimeout(90_000);
useHarnessCleanup();
useCallers();

const KEY = 'sk-live-g711-0123456789abcdef';
const spans = (pcm: Int16Array, hz: number, rate = 8000) => findToneSpans(pcm, rate, hz, { frameMs: 10, maxGapMs: 60, minDurationMs: 100, minLevel: 0.02 });
let fake: FakeLiveServer;

beforeAll(async () => {
  assertBuilt();
  fake = new FakeLiveServer({ apiKey: KEY, vadSilenceMs: 400, gapThresholdMs: 500 });
  await fake.listen();
});
afterAll(async () => {
  await fake?.close();
});

test('G.711 µ-law end to end: audio/pcmu at 8000 Hz both ways, the caller heard and answered', async () => {
  fake.respond = liveToneReply({ toneHz: 1000, ms: 1200 });
  const setup = await prepareDaemon('echo', {
    media: { clockRate: 8000 },
    ai: { provider: 'openai-live', apiKey: KEY, audioFormat: 'pcmu', live: { url: fake.url, delegation: { type: 'responses', responses: { model: 'gpt-5.5' } } } },
  });
  const d = await startDaemon(setup, { name: 'live-g711' });
  const { sip, rtp } = await openCaller(d);
  const first = fake.connectionCount;
  const { dlg, to } = await dialPcmu(sip, setup.ports.sip, rtp);
  const src = newSource();
  await say(rtp, src, to, 0, 1500, 0);
  await say(rtp, src, to, 700, 700, 3500);
  const s = await fake.waitForSession(5000, first);
  await dlg.bye(5_000);
  dlg.close();
  expect(s.errors).toEqual([]);
  expect(s.config).toMatchObject({ audio: { format: { type: 'audio/pcmu', rate: 8000 } } });
  const got = s.receivedAudio();
  expect(got.sampleRate).toBe(8000);
  expect(spans(got.samples, 700, got.sampleRate)).toHaveLength(1);
  expect(s.inputGaps).toEqual([]);
  const heard = spans(rtp.heard(), 1000);
  expect(heard).toHaveLength(1);
  expect(heard[0]!.endMs - heard[0]!.startMs).toBeGreaterThan(1000);
});

/**
 * The daemon on its real backend path: `ai.provider: openai` pointed (ai.url) at the strict fake
 * Realtime server, the key read from a file as with systemd credentials (`ai.apiKeyFile`). A pjsua
 * caller hears the greeting, says a 700 Hz "phrase", and hears the model's 1 kHz reply; the session
 * the model got was built from the config file (templated instructions, voice), and the key shows
 * up nowhere it should not (logs, /status).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findToneSpans, readWav } from '../helpers/audio-analysis';
import { makeSequence, makeTone } from '../helpers/fixtures';
import { startPjsuaCaller } from '../helpers/pjsua';
import { useHarnessCleanup } from '../helpers/proc';
import { EXIT, assertBuilt, prepareDaemon, startDaemon, waitForRecord } from '../helpers/daemon';
import { FakeRealtimeServer, toneReply } from '../fakes/FakeRealtimeServer';

jest.setTimeout(60_000);
useHarnessCleanup();

const RATE = 8000;
const API_KEY = 'sk-daemon-e2e-0123456789abcdef';

let fake: FakeRealtimeServer;

beforeAll(async () => {
  assertBuilt();
  fake = new FakeRealtimeServer({ apiKey: API_KEY, respond: toneReply({ toneHz: 1000, ms: 1200 }) });
  await fake.listen();
});

afterAll(async () => {
  await fake?.close();
});

test('a call on the openai backend: greeting, then the model reply; the session comes from the config; the key is never shown', async () => {
  const setup = await prepareDaemon('echo');
  const keyFile = path.join(setup.dir, 'openai-key');
  fs.writeFileSync(keyFile, `${API_KEY}\n`, { mode: 0o600 });
  const greeting = await makeTone(path.join(setup.dir, 'greeting-500.wav'), 500, 800, { sampleRate: RATE, amplitude: 0.4 });
  setup.write({
    ai: {
      provider: 'openai',
      url: `${fake.baseUrl}/v1/realtime`,
      apiKeyFile: keyFile,
      model: 'gpt-realtime',
      voice: 'cedar',
      instructions: 'You answer the phone for {{var.company}}. Be brief.',
      turnDetection: { type: 'server_vad', silenceDurationMs: 300, prefixPaddingMs: 100 },
    },
    variables: { company: 'Acme Plumbing' },
    greeting: { file: greeting, interruptible: false },
  });
  const d = await startDaemon(setup);

  const health = await d.http('GET', '/healthz');
  expect(health.status).toBe(200);

  const play = await makeSequence(path.join(setup.dir, 'caller-play.wav'), [{ silenceMs: 1500 }, { toneHz: 700, ms: 600 }, { silenceMs: 4000 }], {
    sampleRate: RATE,
  });
  const rec = path.join(setup.dir, 'caller-rec.wav');
  const caller = await startPjsuaCaller({ name: 'caller-openai', target: setup.sipUri, playFile: play, recordFile: rec, durationSec: 6, clockRate: RATE, codecs: ['PCMU'] });
  const disc = await caller.waitForDisconnect(20_000);
  expect(disc.status).toBe(200);
  await caller.quit();

  // The session the model was given came from the config file.
  expect(fake.sessions).toHaveLength(1);
  const session = fake.sessions[0];
  const config = session.config as { instructions?: string; audio?: { output?: { voice?: string } } };
  expect(config.instructions).toBe('You answer the phone for Acme Plumbing. Be brief.');
  expect(config.audio?.output?.voice).toBe('cedar');
  expect(fake.handshakes[0]).toMatchObject({ status: 101, url: expect.stringContaining('model=gpt-realtime') });

  // What the caller heard: the greeting, then the model's 1 kHz reply after it spoke.
  const wav = readWav(rec);
  const opts = { frameMs: 10, maxGapMs: 30, minDurationMs: 50, minLevel: 0.02 };
  const greet = findToneSpans(wav.pcm, wav.sampleRate, 500, opts);
  const reply = findToneSpans(wav.pcm, wav.sampleRate, 1000, opts);
  expect(greet).toHaveLength(1);
  expect(reply).toHaveLength(1);
  expect(reply[0].startMs).toBeGreaterThan(greet[0].endMs);
  // The caller's phrase ended 2.1 s into the call.
  expect(reply[0].startMs).toBeGreaterThan(2100);
  expect(reply[0].endMs - reply[0].startMs).toBeGreaterThan(1000);

  const r = await waitForRecord(setup.recordsDir, (x) => x.record.status === 'completed', 10_000);
  expect(r.record).toMatchObject({ endReason: 'caller_hangup', direction: 'inbound', ai: { backend: 'openai', model: 'gpt-realtime', voice: 'cedar' } });
  expect((r.record.usage as { responses: number }).responses).toBeGreaterThanOrEqual(1);

  // The key is a secret: not in /status, not in the log, not in the record.
  const status = await d.http('GET', '/status');
  expect(status.status).toBe(200);
  expect(status.text).not.toContain(API_KEY);
  const exit = await d.stop();
  expect(exit.code).toBe(EXIT.ok);
  expect(d.proc.logText()).not.toContain(API_KEY);
  expect(fs.readFileSync(r.jsonPath, 'utf8')).not.toContain(API_KEY);
});

test('rotating the API key with SIGHUP (apiKeyFile rewritten): the reload lists it and the next call uses the new key', async () => {
  const oldKey = 'sk-daemon-e2e-old-key-0000000000';
  const newKey = 'sk-daemon-e2e-new-key-1111111111';
  fake.apiKey = oldKey;
  try {
    const setup = await prepareDaemon('echo');
    const keyFile = path.join(setup.dir, 'openai-key');
    fs.writeFileSync(keyFile, `${oldKey}\n`, { mode: 0o600 });
    setup.write({
      ai: { provider: 'openai', url: `${fake.baseUrl}/v1/realtime`, apiKeyFile: keyFile, turnDetection: { type: 'server_vad', silenceDurationMs: 300 } },
    });
    const d = await startDaemon(setup);

    const mark = d.proc.mark;
    fs.writeFileSync(keyFile, `${newKey}\n`, { mode: 0o600 });
    d.signal('SIGHUP');
    const applied = await d.waitForMsg(/^reload: applied/, 10_000, mark);
    expect(JSON.stringify(applied.keys)).toMatch(/ai\.apiKey/);
    // The provider now accepts only the new key.
    fake.apiKey = newKey;
    const before = fake.handshakes.length;

    const play = await makeSequence(path.join(setup.dir, 'caller-play.wav'), [{ silenceMs: 1500 }, { toneHz: 700, ms: 600 }, { silenceMs: 3000 }], {
      sampleRate: RATE,
    });
    const rec = path.join(setup.dir, 'caller-rec.wav');
    const caller = await startPjsuaCaller({ name: 'caller-rotated', target: setup.sipUri, playFile: play, recordFile: rec, durationSec: 5, clockRate: RATE, codecs: ['PCMU'] });
    await caller.waitForDisconnect(20_000);
    await caller.quit();

    expect(fake.handshakes.slice(before).map((h) => h.status)).toEqual([101]);
    const r = await waitForRecord(setup.recordsDir, (x) => x.record.status === 'completed', 10_000);
    expect(r.record).toMatchObject({ endReason: 'caller_hangup', error: null });
    const wav = readWav(rec);
    // With no greeting the model speaks first (the fake's 1 kHz reply), then answers the
    // caller's 700 Hz turn: the answer comes after the caller's tone ended (1.5 s + 0.6 s).
    const replies = findToneSpans(wav.pcm, wav.sampleRate, 1000, { frameMs: 10, maxGapMs: 30, minDurationMs: 50, minLevel: 0.02 });
    expect(replies.some((s) => s.startMs > 2100)).toBe(true);

    const exit = await d.stop();
    expect(exit.code).toBe(EXIT.ok);
  } finally {
    fake.apiKey = API_KEY;
  }
});

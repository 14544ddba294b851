/**
 * Faults the daemon survives, against real peers: a pjsua caller, the strict fake Realtime server
 * and the daemon process itself.
 *  - kill -9 mid-call: the next start rebuilds the call's record from its journal (answer time,
 *    duration up to the last entry, both sides of the transcript) and finishes the recording;
 *    the record is compared with what the caller and the fake server saw.
 *  - the Realtime socket dropped after a reply arrived but while it still plays: the agent
 *    reconnects, and when the caller barges in on that reply it stops at once and no truncate
 *    goes to the new session for an item of the old one.
 *  - the socket dropped while a webhook tool runs: the tool finishes, and its function_call /
 *    function_call_output pair goes to the new session, which answers with the follow-up reply.
 *  - the caller holds the call (pjsua's hold: a re-INVITE with a=sendonly) while the agent's reply
 *    arrives, then resumes: the whole reply plays after the resume, not into the held stream.
 *  - a model that answers with nothing: after ai.replyTimeoutMs the caller hears the fallback
 *    prompt and the call ends; a storm of server errors and a session_expired in the same call
 *    are survived (reconnect, and the next reply is heard).
 *  - SIGTERM with 50 live calls: each gets the goodbye and BYE, 50 complete records, exit 0.
 *  - the caller's RTP changes SSRC, sequence and timestamp mid-call (an SBC failing over): what the
 *    caller says after the change still reaches the agent (the echo backend says it back).
 *  - hold with a=inactive (a raw re-INVITE), then resume: nothing of the reply is sent while
 *    held, all of it after the resume.
 *  - the registrar (Kamailio) restarts mid-call and forgets every binding: the OPTIONS keepalive
 *    notices the silence, the agent registers again as soon as it answers (not at the refresh five
 *    minutes later), the call through it carries on and ends with a BYE routed through the new
 *    instance, and a new call through it reaches the agent.
 */
import * as fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { findToneSpans, readWav } from '../helpers/audio-analysis';
import { makeSequence, makeTone } from '../helpers/fixtures';
import { startPjsuaCaller } from '../helpers/pjsua';
import { delay, spawnManaged, useHarnessCleanup } from '../helpers/proc';
import { EXIT, REPO_ROOT, assertBuilt, eventually, listRecords, orderLookupWebhook, prepareDaemon, startDaemon, waitForRecord } from '../helpers/daemon';
import { startKamailio } from '../helpers/kamailio';
import { freePort, freePortRange, releasePort } from '../helpers/ports';
import { FakeRealtimeServer, toneReply } from '../fakes/FakeRealtimeServer';
import { RawSipClient, pcmuOffer, sdpAudioAddress } from '../helpers/rawsip';
import { RtpPeer, newSource } from '../helpers/rtp';
import { sine } from '../helpers/tone';

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

/** The daemon's ai section for the openai backend on `server` (quick server VAD turns), plus `extra`. */
function openaiVia(server: FakeRealtimeServer, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    provider: 'openai',
    url: `${server.baseUrl}/v1/realtime`,
    apiKey: API_KEY,
    model: 'gpt-realtime',
    turnDetection: { type: 'server_vad', silenceDurationMs: 300, prefixPaddingMs: 100 },
    ...extra,
  };
}

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

test('the Realtime socket drops while a reply still plays: reconnect, the caller barges in, the reply stops, nothing is truncated in the wrong session', async () => {
  // Replies arrive 8x faster than they play, so most of one is still queued when the socket drops.
  const fake8 = new FakeRealtimeServer({ apiKey: API_KEY, burstFactor: 8, respond: toneReply({ toneHz: 1000, ms: 4000 }) });
  await fake8.listen();
  try {
    const setup = await prepareDaemon('echo');
    const greeting = await makeTone(path.join(setup.dir, 'greeting-500.wav'), 500, 600, { sampleRate: RATE, amplitude: 0.4 });
    setup.write({
      ai: openaiVia(fake8),
      greeting: { file: greeting, interruptible: false },
    });
    const d = await startDaemon(setup, { name: 'faults-drop' });
    const play = await makeSequence(
      path.join(setup.dir, 'caller-play.wav'),
      [{ silenceMs: 1200 }, { toneHz: 700, ms: 600 }, { silenceMs: 2400 }, { toneHz: 700, ms: 800 }, { silenceMs: 6000 }],
      { sampleRate: RATE },
    );
    const rec = path.join(setup.dir, 'caller-rec.wav');
    const caller = await startPjsuaCaller({ name: 'caller-drop', target: setup.sipUri, playFile: play, recordFile: rec, durationSec: 10, clockRate: RATE, codecs: ['PCMU'] });
    const first = await eventually(() => fake8.sessions[0], 10_000, 'the first Realtime session');
    // The whole reply is delivered (it plays for 4 s): drop the socket now.
    await eventually(() => first.items.some((i) => i.role === 'assistant' && i.status === 'completed'), 10_000, 'the first reply delivered');
    first.drop();
    const second = await eventually(() => fake8.sessions[1], 10_000, 'the reconnected session');
    const disc = await caller.waitForDisconnect(20_000);
    expect(disc.status).toBe(200);
    await caller.quit();

    // The new session never heard of the old items: no truncate aimed at one of them.
    const oldIds = new Set(first.items.map((i) => i.id));
    expect(second.errors.map((e) => e['code'])).not.toContain('item_truncate_invalid_item_id');
    expect(second.truncations.filter((t) => oldIds.has(t.itemId))).toEqual([]);
    // It was re-seeded with what was said before the drop.
    expect(second.items.some((i) => i.role === 'assistant' && JSON.stringify(i.content).includes('Reply 1'))).toBe(true);

    // What the caller heard: the old reply, cut short by the barge-in (4.2 s into the call), not played to its end.
    const wav = readWav(rec);
    const replies = findToneSpans(wav.pcm, wav.sampleRate, 1000, { frameMs: 10, maxGapMs: 60, minDurationMs: 100, minLevel: 0.02 });
    expect(replies.length).toBeGreaterThanOrEqual(1);
    const firstReply = replies[0]!;
    expect(firstReply.endMs - firstReply.startMs).toBeLessThan(3600);
    const r = await waitForRecord(setup.recordsDir, (x) => x.record.status === 'completed', 10_000);
    expect((r.record.counters as Record<string, number>).bargeIns).toBeGreaterThanOrEqual(1);
    expect((r.record.counters as Record<string, number>).aiReconnects).toBe(1);
    expect(d.logsWithMsg(/truncate failed/)).toEqual([]);
      await d.close();
  } finally {
    await fake8.close();
  }
});

test('the Realtime socket drops while a webhook tool runs: the result reaches the new session as a call/output pair and the caller hears the follow-up', async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const requests: unknown[] = [];
  const hook: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests.push(JSON.parse(body));
      void released.then(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"status":"shipped"}');
      });
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const fakeT = new FakeRealtimeServer({
    apiKey: API_KEY,
    respond: (ctx) =>
      ctx.functionOutputs.length > 0
        ? [{ audio: { toneHz: 1000, ms: 800, amplitude: 0.3 }, transcript: 'It has shipped.' }]
        : [{ functionCall: { name: 'lookup_order', arguments: { order_id: 'A-17' } } }],
  });
  await fakeT.listen();
  try {
    const setup = await prepareDaemon('echo');
    const greeting = await makeTone(path.join(setup.dir, 'greeting-500.wav'), 500, 400, { sampleRate: RATE, amplitude: 0.4 });
    setup.write({
      ai: openaiVia(fakeT),
      greeting: { file: greeting, interruptible: false },
      tools: { webhooks: [orderLookupWebhook(`http://127.0.0.1:${(hook.address() as AddressInfo).port}/orders`, 20_000)] },
    });
    const d = await startDaemon(setup, { name: 'faults-tool-drop' });
    const play = await makeSequence(path.join(setup.dir, 'caller-play.wav'), [{ silenceMs: 1000 }, { toneHz: 700, ms: 500 }, { silenceMs: 8000 }], { sampleRate: RATE });
    const rec = path.join(setup.dir, 'caller-rec.wav');
    const caller = await startPjsuaCaller({ name: 'caller-tool-drop', target: setup.sipUri, playFile: play, recordFile: rec, durationSec: 9, clockRate: RATE, codecs: ['PCMU'] });
    const first = await eventually(() => fakeT.sessions[0], 10_000, 'the first Realtime session');
    await eventually(() => requests.length > 0, 10_000, 'the webhook request');
    const call = first.items.find((i) => i.type === 'function_call');
    expect(call).toBeDefined();
    first.drop();
    const second = await eventually(() => fakeT.sessions[1], 10_000, 'the reconnected session');
    await delay(300);
    release();
    await eventually(() => second.items.some((i) => i.role === 'assistant' && i.status === 'completed'), 10_000, 'the follow-up reply');
    const disc = await caller.waitForDisconnect(20_000);
    expect(disc.status).toBe(200);
    await caller.quit();

    // The new session got the pair (same call id), and no output ever went to a call it did not know.
    const pair = second.items.filter((i) => i.type === 'function_call' || i.type === 'function_call_output');
    expect(pair.map((i) => i.type)).toEqual(['function_call', 'function_call_output']);
    expect(second.errors.map((e) => e['code'])).toEqual([]);
    expect(requests).toEqual([{ order_id: 'A-17' }]);
    // The caller heard the follow-up after the reconnect.
    const wav = readWav(rec);
    expect(findToneSpans(wav.pcm, wav.sampleRate, 1000, { frameMs: 10, maxGapMs: 60, minDurationMs: 100, minLevel: 0.02 })).toHaveLength(1);
    const r = await waitForRecord(setup.recordsDir, (x) => x.record.status === 'completed', 10_000);
    expect(r.record.tools).toEqual([expect.objectContaining({ name: 'lookup_order', error: null })]);
    await d.close();
  } finally {
    release();
    await fakeT.close();
    hook.close();
  }
});

test('the caller puts the call on hold while the reply arrives, then resumes: the whole reply plays after the resume', async () => {
  // The model thinks for 2 s: its reply arrives while the call is held.
  const fakeH = new FakeRealtimeServer({ apiKey: API_KEY, responseLatencyMs: 2000, burstFactor: 8, respond: toneReply({ toneHz: 1000, ms: 1500 }) });
  await fakeH.listen();
  try {
    const setup = await prepareDaemon('echo');
    const greeting = await makeTone(path.join(setup.dir, 'greeting-500.wav'), 500, 400, { sampleRate: RATE, amplitude: 0.4 });
    setup.write({
      ai: openaiVia(fakeH),
      greeting: { file: greeting, interruptible: false },
    });
    const d = await startDaemon(setup, { name: 'faults-hold' });
    const play = await makeSequence(path.join(setup.dir, 'caller-play.wav'), [{ silenceMs: 1000 }, { toneHz: 700, ms: 500 }, { silenceMs: 14_000 }], { sampleRate: RATE });
    const rec = path.join(setup.dir, 'caller-rec.wav');
    const caller = await startPjsuaCaller({ name: 'caller-hold', target: setup.sipUri, playFile: play, recordFile: rec, durationSec: 12, clockRate: RATE, codecs: ['PCMU'] });
    await caller.waitForCallState('CONFIRMED', 10_000);
    const t0 = Date.now();
    const session = await eventually(() => fakeH.sessions[0], 10_000, 'the Realtime session');
    // The caller has spoken and the model is thinking: hold.
    await eventually(() => session.responses.length > 0, 10_000, 'the response to start');
    caller.command('H');
    await d.waitForMsg(/put the call on hold/, 5_000);
    // The reply arrives and is delivered in full while the call is held.
    await eventually(() => session.items.some((i) => i.role === 'assistant' && i.status === 'completed'), 10_000, 'the reply delivered');
    await delay(2000);
    const resumedAt = Date.now() - t0;
    caller.command('v');
    await d.waitForMsg(/the call was resumed/, 5_000);
    const disc = await caller.waitForDisconnect(20_000);
    expect(disc.status).toBe(200);
    await caller.quit();

    // pjsua records nothing while it holds the call (it receives nothing then), so what its
    // recording holds is what reached it outside the hold: the reply, whole, once.
    const wav = readWav(rec);
    const opts = { frameMs: 10, maxGapMs: 60, minDurationMs: 100, minLevel: 0.02 };
    const greet = findToneSpans(wav.pcm, wav.sampleRate, 500, opts);
    const replies = findToneSpans(wav.pcm, wav.sampleRate, 1000, opts);
    expect(greet).toHaveLength(1);
    expect(replies).toHaveLength(1);
    expect(replies[0]!.startMs).toBeGreaterThan(greet[0]!.endMs);
    expect(replies[0]!.endMs - replies[0]!.startMs).toBeGreaterThan(1300);
    expect(d.logsWithMsg(/put the call on hold/)).toHaveLength(1);
    expect(resumedAt).toBeGreaterThan(0);
    const r = await waitForRecord(setup.recordsDir, (x) => x.record.status === 'completed', 10_000);
    expect(r.record.endReason).toBe('caller_hangup');
    await d.close();
  } finally {
    await fakeH.close();
  }
});

test('a model that sends nothing: after ai.replyTimeoutMs the caller hears the fallback prompt and gets BYE (the call is not stuck)', async () => {
  const fakeS = new FakeRealtimeServer({ apiKey: API_KEY, respond: () => [{ delayMs: 60_000 }] });
  await fakeS.listen();
  try {
    const setup = await prepareDaemon('echo');
    const greeting = await makeTone(path.join(setup.dir, 'greeting-500.wav'), 500, 400, { sampleRate: RATE, amplitude: 0.4 });
    const fallback = await makeTone(path.join(setup.dir, 'fallback-300.wav'), 300, 800, { sampleRate: RATE, amplitude: 0.4 });
    setup.write({
      ai: openaiVia(fakeS, { replyTimeoutMs: 3000 }),
      greeting: { file: greeting, interruptible: false },
      prompts: { fallbackFile: fallback },
    });
    const d = await startDaemon(setup, { name: 'faults-silent' });
    const play = await makeSequence(path.join(setup.dir, 'caller-play.wav'), [{ silenceMs: 1000 }, { toneHz: 700, ms: 500 }, { silenceMs: 15_000 }], { sampleRate: RATE });
    const rec = path.join(setup.dir, 'caller-rec.wav');
    const caller = await startPjsuaCaller({ name: 'caller-silent', target: setup.sipUri, playFile: play, recordFile: rec, durationSec: 15, clockRate: RATE, codecs: ['PCMU'] });
    // The agent hangs up (not the caller, whose call would last 15 s).
    const disc = await caller.waitForDisconnect(14_000);
    expect(disc.status).toBe(200);
    await caller.quit();
    const wav = readWav(rec);
    const heard = findToneSpans(wav.pcm, wav.sampleRate, 300, { frameMs: 10, maxGapMs: 60, minDurationMs: 100, minLevel: 0.02 });
    expect(heard).toHaveLength(1);
    expect(heard[0]!.endMs - heard[0]!.startMs).toBeGreaterThan(600);
    const r = await waitForRecord(setup.recordsDir, (x) => x.record.status === 'completed', 10_000);
    expect(r.record).toMatchObject({ endReason: 'ai_failure' });
    expect(String(r.record.error)).toMatch(/replyTimeoutMs/);
    await d.close();
  } finally {
    await fakeS.close();
  }
});

test('a storm of server errors and then session_expired in one call: logged once per code, the session comes back, the next reply is heard', async () => {
  const fakeE = new FakeRealtimeServer({ apiKey: API_KEY, respond: toneReply({ toneHz: 1000, ms: 600 }) });
  await fakeE.listen();
  try {
    const setup = await prepareDaemon('echo');
    const greeting = await makeTone(path.join(setup.dir, 'greeting-500.wav'), 500, 400, { sampleRate: RATE, amplitude: 0.4 });
    setup.write({
      ai: openaiVia(fakeE),
      greeting: { file: greeting, interruptible: false },
    });
    const d = await startDaemon(setup, { name: 'faults-storm' });
    // Two phrases: one before the storm and the expiry, one after.
    const play = await makeSequence(
      path.join(setup.dir, 'caller-play.wav'),
      [{ silenceMs: 1000 }, { toneHz: 700, ms: 500 }, { silenceMs: 4500 }, { toneHz: 700, ms: 500 }, { silenceMs: 3000 }],
      { sampleRate: RATE },
    );
    const rec = path.join(setup.dir, 'caller-rec.wav');
    const caller = await startPjsuaCaller({ name: 'caller-storm', target: setup.sipUri, playFile: play, recordFile: rec, durationSec: 9, clockRate: RATE, codecs: ['PCMU'] });
    const first = await eventually(() => fakeE.sessions[0], 10_000, 'the Realtime session');
    await eventually(() => first.items.some((i) => i.role === 'assistant' && i.status === 'completed'), 10_000, 'the first reply');
    for (let i = 0; i < 200; i++) first.send({ type: 'error', error: { type: 'server_error', code: 'server_error', message: `The server had an error (${i})`, param: null, event_id: null } });
    await delay(300);
    first.expire();
    await eventually(() => fakeE.sessions[1], 10_000, 'the session after expiry');
    const disc = await caller.waitForDisconnect(20_000);
    expect(disc.status).toBe(200);
    await caller.quit();
    const wav = readWav(rec);
    const replies = findToneSpans(wav.pcm, wav.sampleRate, 1000, { frameMs: 10, maxGapMs: 60, minDurationMs: 100, minLevel: 0.02 });
    expect(replies).toHaveLength(2);
    expect(d.logsWithMsg(/Realtime error \[code:server_error/)).toHaveLength(1);
    const r = await waitForRecord(setup.recordsDir, (x) => x.record.status === 'completed', 10_000);
    expect(r.record.endReason).toBe('caller_hangup');
    expect((r.record.counters as Record<string, number>).aiErrors).toBeGreaterThanOrEqual(200);
    expect((r.record.counters as Record<string, number>).aiReconnects).toBe(1);
    await d.close();
  } finally {
    await fakeE.close();
  }
});

test('SIGTERM with 50 live calls: every call ends with BYE, 50 complete records (shutdown), exit 0', async () => {
  const rtpStart = await freePortRange(120);
  const setup = await prepareDaemon('echo', {}, { ports: { sip: await freePort('udp'), rtpStart, admin: await freePort('tcp') } });
  const goodbye = await makeTone(path.join(setup.dir, 'goodbye-900.wav'), 900, 400, { sampleRate: RATE, amplitude: 0.4 });
  setup.write({
    media: { rtpPortStart: rtpStart, rtpPortRange: 120 },
    calls: { maxConcurrent: 50, drainTimeoutSec: 1 },
    sip: { limits: { invitesPerSecond: 1000, inviteBurst: 1000 } },
    prompts: { goodbyeFile: goodbye },
    records: { recordAudio: false },
  });
  const d = await startDaemon(setup, { name: 'faults-sigterm-50' });
  const loadRtp = await freePortRange(120);
  const loadgen = spawnManaged({
    name: 'loadgen-50',
    command: process.execPath,
    args: [path.join(REPO_ROOT, 'dist/bench/capacity/loadgen.js'), '--target', setup.sipUri, '--calls', '50', '--rtp-start', String(loadRtp)],
    stdin: 'pipe',
    lifetimeMs: 120_000,
  });
  const ready = await loadgen.waitForLog(/"ev":"ready".*"connected":(\d+)/, 60_000);
  expect(Number(ready.match[1])).toBe(50);
  await eventually(async () => ((await d.http('GET', '/calls')).json as { active: unknown[] }).active.length === 50, 10_000, '50 calls up');
  d.signal('SIGTERM');
  const exit = await d.proc.waitForExit(60_000);
  expect(exit.code).toBe(EXIT.ok);
  const records = listRecords(setup.recordsDir);
  expect(records).toHaveLength(50);
  expect(records.filter((r) => r.record.status === 'completed' && r.record.endReason === 'shutdown')).toHaveLength(50);
  expect(records.every((r) => r.record.answeredAt && r.record.endedAt)).toBe(true);
  // Every caller saw the agent hang up.
  loadgen.write('report\n');
  const rep = await loadgen.waitForLog(/"ev":"report".*"callsUp":(\d+)/, 10_000);
  expect(Number(rep.match[1])).toBe(0);
  loadgen.write('hangup\n');
  await loadgen.kill();
});

test("the caller's RTP stream changes SSRC mid-call (an SBC failover): audio after the change still gets through", async () => {
  const setup = await prepareDaemon('echo');
  const d = await startDaemon(setup, { name: 'faults-ssrc' });
  const sip = await RawSipClient.open();
  const rtp = await RtpPeer.open();
  try {
    const dlg = await sip.invite({ target: { host: '127.0.0.1', port: setup.ports.sip }, body: pcmuOffer(rtp.port), contentType: 'application/sdp' });
    expect(dlg.final.status).toBe(200);
    const agent = sdpAudioAddress(dlg.final.bodyText);
    // One stream says 700 Hz, then another (new SSRC, sequence and timestamp) says 900 Hz.
    const a = newSource();
    await rtp.play(a, sine(0, 800, 8000, 0.4), agent);
    await rtp.play(a, sine(700, 600, 8000, 0.4), agent);
    await rtp.play(a, sine(0, 1500, 8000, 0.4), agent);
    const b = newSource();
    await rtp.play(b, sine(0, 300, 8000, 0.4), agent);
    await rtp.play(b, sine(900, 600, 8000, 0.4), agent);
    await rtp.play(b, sine(0, 2000, 8000, 0.4), agent);
    await dlg.bye(5_000);
    dlg.close();
    const heard = rtp.heard();
    const opts = { frameMs: 10, maxGapMs: 60, minDurationMs: 200, minLevel: 0.02 };
    expect(findToneSpans(heard, 8000, 700, opts)).toHaveLength(1);
    expect(findToneSpans(heard, 8000, 900, opts)).toHaveLength(1);
    const r = await waitForRecord(setup.recordsDir, (x) => x.record.status === 'completed', 10_000);
    expect(r.record.endReason).toBe('caller_hangup');
  } finally {
    rtp.close();
    sip.close();
    await d.close();
  }
});

test('hold with a=inactive, then resume: the echo of what the caller said is sent after the resume, none of it while held', async () => {
  const setup = await prepareDaemon('echo');
  const d = await startDaemon(setup, { name: 'faults-inactive' });
  const sip = await RawSipClient.open();
  const rtp = await RtpPeer.open();
  try {
    const dlg = await sip.invite({ target: { host: '127.0.0.1', port: setup.ports.sip }, body: pcmuOffer(rtp.port), contentType: 'application/sdp' });
    expect(dlg.final.status).toBe(200);
    const agent = sdpAudioAddress(dlg.final.bodyText);
    const a = newSource();
    await rtp.play(a, sine(0, 800, 8000, 0.4), agent);
    await rtp.play(a, sine(700, 800, 8000, 0.4), agent);
    // Hold at once, before the echo can start.
    const held = await dlg.request('INVITE', { body: pcmuOffer(rtp.port).replace('a=sendrecv', 'a=inactive'), contentType: 'application/sdp' });
    expect(held.status).toBe(200);
    expect(held.bodyText).toMatch(/^a=inactive/m);
    const heldAt = Date.now();
    await delay(3000);
    const resumed = await dlg.request('INVITE', { body: pcmuOffer(rtp.port), contentType: 'application/sdp' });
    expect(resumed.status).toBe(200);
    const resumedAt = Date.now();
    await rtp.play(a, sine(0, 3000, 8000, 0.4), agent);
    await dlg.bye(5_000);
    dlg.close();
    const opts = { frameMs: 10, maxGapMs: 60, minDurationMs: 200, minLevel: 0.02 };
    expect(findToneSpans(rtp.heard(heldAt + 100, resumedAt), 8000, 700, opts)).toEqual([]);
    const after = findToneSpans(rtp.heard(resumedAt), 8000, 700, opts);
    expect(after).toHaveLength(1);
    expect(after[0]!.endMs - after[0]!.startMs).toBeGreaterThan(600);
    expect(d.logsWithMsg(/put the call on hold/)).toHaveLength(1);
  } finally {
    rtp.close();
    sip.close();
    await d.close();
  }
});

test('the registrar restarts mid-call: noticed by keepalive, re-registered when it answers, the call carries on, a new call gets through', async () => {
  const users = { alice: 'alice-secret-1' };
  const kamPort = await freePort('udp');
  let kam = await startKamailio({ users, port: kamPort });
  const setup = await prepareDaemon('echo', {
    accounts: [
      // A five-minute registration: only the keepalive can bring it back within the test.
      { uri: 'sip:alice@127.0.0.1', registrar: kam.uri, username: 'alice', password: users.alice, registerExpiresSec: 300, retryIntervalSec: 5, keepaliveSec: 1 },
    ],
  });
  const d = await startDaemon(setup, { name: 'faults-registrar' });
  const sip = await RawSipClient.open();
  const rtp = await RtpPeer.open();
  try {
    await kam.waitForRegistration('alice', 10_000);
    const via = { host: '127.0.0.1', port: kamPort };
    const dlg = await sip.invite({ target: via, uri: 'sip:alice@127.0.0.1', body: pcmuOffer(rtp.port), contentType: 'application/sdp' });
    expect(dlg.final.status).toBe(200);
    expect(dlg.routeSet.length).toBeGreaterThan(0); // in-dialog requests go through the registrar
    const agent = sdpAudioAddress(dlg.final.bodyText);
    const a = newSource();
    await rtp.play(a, sine(0, 500, 8000, 0.4), agent);
    await rtp.play(a, sine(700, 600, 8000, 0.4), agent);
    await rtp.play(a, sine(0, 1500, 8000, 0.4), agent);

    // The registrar goes away: the keepalive notices, /healthz says so, the call goes on.
    await kam.stop();
    await d.waitForMsg('registrar does not answer', 20_000);
    const health = await d.http('GET', '/healthz');
    expect(health.status).toBe(503);
    expect(JSON.stringify(health.json)).toMatch(/registrar does not answer/);
    await rtp.play(a, sine(900, 600, 8000, 0.4), agent);
    await rtp.play(a, sine(0, 1500, 8000, 0.4), agent);

    // It comes back with no bindings: the agent registers at once.
    const back = d.logs().length;
    kam = await startKamailio({ users, port: kamPort });
    await kam.waitForRegistration('alice', 15_000);
    await d.waitForMsg('registrar answers again; registering', 5_000, back);
    await eventually(async () => ((await d.http('GET', '/healthz')).status === 200 ? true : undefined), 10_000, '/healthz 200 again');
    await rtp.play(a, sine(600, 600, 8000, 0.4), agent);
    await rtp.play(a, sine(0, 1500, 8000, 0.4), agent);

    // The BYE goes through the new instance (record-routed) and ends the call normally.
    const bye = await dlg.bye(5_000);
    expect(bye.status).toBe(200);
    dlg.close();
    const heard = rtp.heard();
    const opts = { frameMs: 10, maxGapMs: 60, minDurationMs: 200, minLevel: 0.02 };
    for (const hz of [700, 900, 600]) expect(findToneSpans(heard, RATE, hz, opts)).toHaveLength(1);
    const r = await waitForRecord(setup.recordsDir, (x) => x.record.status === 'completed', 10_000);
    expect(r.record.endReason).toBe('caller_hangup');

    // The restarted registrar knows where alice is: a new call through it reaches the agent.
    const again = await sip.invite({ target: via, uri: 'sip:alice@127.0.0.1', body: pcmuOffer(rtp.port), contentType: 'application/sdp' });
    expect(again.final.status).toBe(200);
    expect((await again.bye(5_000)).status).toBe(200);
    again.close();
  } finally {
    rtp.close();
    sip.close();
    await d.close();
    await kam.stop();
    releasePort(kamPort);
  }
});

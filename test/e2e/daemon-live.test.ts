/**
 * ai.provider: openai-live through SIP, against the strict fake of OpenAI's GPT-Live WebSocket
 * (test/fakes/FakeLiveServer.ts, written from the published Live reference). A raw SIP/RTP caller
 * talks in tones; the fake's full-duplex "model" answers each caller turn with a tone and a
 * transcript, stops when talked over, and delegates work as the reference describes.
 *  - a conversation: the caller's turn reaches the model, the reply is heard, both transcripts are
 *    in the call record, the input stream stays continuous (no stalls the fake had to note);
 *  - a barge-in: the caller talks over a long reply that arrived faster than real time; the model
 *    stops, and the daemon stops playing what it had buffered (the caller hears less than the
 *    model had sent); GPT-Live has no truncate or played-audio report, so none may be sent;
 *  - a tool: end_call through delegation ends the call with a BYE;
 *  - the service ending the session (`session.closed`, expired) after a storm of errors: logged
 *    once, a new session, the call goes on;
 *  - a dropped socket: the daemon opens a new session and the call goes on; when the service
 *    cannot be reached again, the caller hears the fallback prompt and gets a BYE (as with the
 *    Realtime backend).
 * When the client and the reference disagree, the fake is not bent: the failure message says so.
 */
import * as path from 'node:path';
import { FakeLiveServer, liveSpeakTone, liveToneReply, type LiveFakeSession, type LiveRespondScript } from '../fakes/FakeLiveServer';
import { FakeOpenAiHttp } from '../fakes/FakeOpenAiHttp';
import { findToneSpans } from '../helpers/audio-analysis';
import { makeTone } from '../helpers/fixtures';
import { assertBuilt, eventually, prepareDaemon, startDaemon, waitForRecord, type Daemon, type DaemonSetup } from '../helpers/daemon';
import { useHarnessCleanup } from '../helpers/proc';
import { RawSipClient } from '../helpers/rawsip';
import { RtpPeer, newSource } from '../helpers/rtp';
import { closeAfterTest, dialPcmu, holdUntilBye, openCaller, sayTone as say, useCallers } from '../helpers/rtpcall';

jest.setTimeout(90_000);
useHarnessCleanup();

const KEY = 'sk-live-e2e-0123456789abcdef';
const RATE = 8000;
const spans = (pcm: Int16Array, hz: number, rate = RATE) => findToneSpans(pcm, rate, hz, { frameMs: 10, maxGapMs: 60, minDurationMs: 100, minLevel: 0.02 });

let fake: FakeLiveServer;

beforeAll(async () => {
  assertBuilt();
  // A stall of the caller's audio counts from half a second behind real time (this machine is shared).
  fake = new FakeLiveServer({ apiKey: KEY, vadSilenceMs: 400, gapThresholdMs: 500 });
  await fake.listen();
});
afterAll(async () => {
  await fake?.close();
});

useCallers();
afterEach(() => {
  fake.respond = liveToneReply();
  fake.speak = liveSpeakTone();
  fake.apiKey = KEY;
});

/** The `ai` section for the fake: the provider's own keys under ai.live, Responses delegation (the default). */
function liveAi(live: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    provider: 'openai-live',
    apiKey: KEY,
    instructions: 'You answer the phone. Be brief.',
    live: { url: fake.url, model: 'gpt-live-1', voice: 'marin', delegation: { type: 'responses', responses: { model: 'gpt-5.5' } }, ...live },
  };
}

/** A daemon on the GPT-Live backend, a raw SIP client and an RTP peer, closed after the test. */
async function agent(
  name: string,
  over: (setup: DaemonSetup) => Promise<Record<string, unknown>> | Record<string, unknown> = () => ({}),
): Promise<{ setup: DaemonSetup; d: Daemon; sip: RawSipClient; rtp: RtpPeer }> {
  const setup = await prepareDaemon('echo', { ai: liveAi() });
  setup.write(await over(setup));
  const d = await startDaemon(setup, { name });
  return { setup, d, ...(await openCaller(d)) };
}

/** Everything the fake's session objected to, for failure messages: a client/reference disagreement. */
function objections(s: LiveFakeSession): string {
  return JSON.stringify({ errors: s.errors, scriptProblems: s.scriptProblems, inputGaps: s.inputGaps.slice(0, 5) });
}

/** Fail with the reference's side of the story when the fake's session saw protocol errors. */
function expectNoObjections(s: LiveFakeSession): void {
  if (s.errors.length > 0) {
    throw new Error(`the GPT-Live client sent what the Live reference rejects (the fake follows the reference): ${objections(s)}`);
  }
}

test('a conversation: the caller is heard, the reply is heard, both transcripts are in the record, the audio stream is continuous', async () => {
  fake.respond = liveToneReply({ toneHz: 1000, ms: 1200 });
  const { setup, sip, rtp } = await agent('live-converse');
  const first = fake.connectionCount;
  const { dlg, to } = await dialPcmu(sip, setup.ports.sip, rtp);
  const src = newSource();
  await say(rtp, src, to, 0, 1500, 0);
  await say(rtp, src, to, 700, 700, 3500);
  const s = await fake.waitForSession(5000, first);
  expect(s.started).toBe(true);
  expect(s.config).toMatchObject({ model: 'gpt-live-1', audio: { output: { voice: 'marin' } }, instructions: expect.stringContaining('You answer the phone') });
  expect(s.headers['authorization'] ?? s.headers['api-key']).toContain(KEY);
  // The model heard the caller's 700 Hz phrase.
  const got = s.receivedAudio();
  expect(spans(got.samples, 700, got.sampleRate)).toHaveLength(1);
  expect(s.turns.length).toBeGreaterThanOrEqual(1);
  await dlg.bye(5_000);
  dlg.close();
  // What the caller heard: the model's 1 kHz reply, after its phrase.
  const heard = spans(rtp.heard(), 1000);
  expect(heard).toHaveLength(1);
  expect(heard[0]!.endMs - heard[0]!.startMs).toBeGreaterThan(1000);
  expectNoObjections(s);
  // A live microphone: the caller's audio went up without stalls.
  expect(s.inputGaps).toEqual([]);
  const rec = await waitForRecord(setup.recordsDir, (r) => r.record.status === 'completed', 10_000);
  const lines = ((rec.record.transcript ?? []) as { speaker: string; text: string }[]).map((t) => `${t.speaker}: ${t.text}`);
  expect(lines).toEqual(expect.arrayContaining(['caller: tone 700', 'agent: Reply 1: this is a 1000 hertz test tone.']));
  expect(rec.record.ai).toMatchObject({ backend: 'openai-live' });
  await eventually(() => s.closed || undefined, 5000, 'the Live socket closes after the call');
  // A session is finalized only by session.close -> session.closed (a bare socket close confirms nothing).
  expect(s.receivedEvents.map((e) => e['type'])).toContain('session.close');
  expect(s.sessionClosedSent).toBe(true);
});

test('Azure: the api-key header on the /openai/v1/live/sessions path', async () => {
  const { setup, sip, rtp } = await agent('live-azure', () => ({ ai: { auth: 'api-key', live: { url: fake.azureUrl } } }));
  const first = fake.connectionCount;
  const { dlg, to } = await dialPcmu(sip, setup.ports.sip, rtp);
  await say(rtp, newSource(), to, 700, 600, 2500);
  const s = await fake.waitForSession(5000, first);
  await dlg.bye(5_000);
  dlg.close();
  expect(s.url).toBe('/openai/v1/live/sessions');
  expect(s.headers['api-key']).toBe(KEY);
  expect(s.headers['authorization']).toBeUndefined();
  expect(s.started).toBe(true);
  expect(spans(rtp.heard(), 1000)).toHaveLength(1);
  expectNoObjections(s);
});

test('a barge-in: the model stops, the daemon stops playing what it had buffered, and sends no truncate', async () => {
  // A 6 s reply sent at 4x real time: most of it is in the daemon's hands before the caller talks.
  let n = 0;
  fake.respond = (ctx) => liveToneReply(n++ === 0 ? { toneHz: 1000, ms: 6000 } : { toneHz: 1400, ms: 800 })(ctx);
  const { setup, sip, rtp } = await agent('live-barge');
  const first = fake.connectionCount;
  const { dlg, to } = await dialPcmu(sip, setup.ports.sip, rtp);
  const src = newSource();
  await say(rtp, src, to, 0, 1500, 0);
  await say(rtp, src, to, 700, 700, 0);
  await eventually(() => spans(rtp.heard(), 1000).length > 0 || undefined, 10_000, 'the reply starts');
  await say(rtp, src, to, 0, 1000, 0);
  const bargeAt = Date.now();
  await say(rtp, src, to, 900, 800, 3000);
  const s = await fake.waitForSession(1000, first);
  await dlg.bye(5_000);
  dlg.close();
  expectNoObjections(s);
  // The fake saw the caller talk over the reply and stopped its audio.
  expect(s.interruptions).toHaveLength(1);
  const cut = s.interruptions[0]!;
  expect(s.utterances.find((u) => u.id === cut.utteranceId)).toMatchObject({ status: 'interrupted', cause: 'turn', transcript: expect.stringContaining('1000 hertz') });
  // What the caller heard of the reply: less than the model had sent, so buffered audio was flushed.
  const reply = spans(rtp.heard(), 1000);
  expect(reply.length).toBeGreaterThanOrEqual(1);
  const heardMs = reply.reduce((a, r) => a + (r.endMs - r.startMs), 0);
  if (heardMs >= cut.deliveredMs - 500) {
    throw new Error(
      `the caller talked over the reply ${cut.realTimePlayedMs} ms into it (the model stopped at once), yet heard ${heardMs} ms of the ` +
        `${cut.deliveredMs} ms the model had sent: the client played out the audio it had buffered. GPT-Live defines no interruption ` +
        'event (the reference has none, and its audio may arrive faster than real time), so the client must stop its playback itself ' +
        'when the caller talks over the model (its own VAD, or the first input transcript fragment).',
    );
  }
  // The caller's new turn was answered.
  expect(spans(rtp.heard(bargeAt), 1400)).toHaveLength(1);
  // GPT-Live has no truncate and no played-audio report: the fake would have answered with an error.
  expect(s.receivedEvents.map((e) => e['type']).filter((t) => !String(t).startsWith('session.'))).toEqual([]);
});

test('end_call through delegation: the agent ends the call with a BYE', async () => {
  const goodbye: LiveRespondScript = (ctx) => (ctx.index === 0 ? [{ delegate: { name: 'end_call', arguments: { reason: 'caller is done' } } }] : []);
  fake.respond = goodbye;
  const { setup, sip, rtp } = await agent('live-end-call');
  const first = fake.connectionCount;
  const { dlg, to } = await dialPcmu(sip, setup.ports.sip, rtp);
  const src = newSource();
  await say(rtp, src, to, 0, 1500, 0);
  await say(rtp, src, to, 700, 700, 0);
  const bye = await holdUntilBye(dlg, rtp, src, to, 15_000);
  const s = await fake.waitForSession(1000, first);
  expectNoObjections(s);
  expect(bye).toBeDefined();
  expect(s.delegations).toHaveLength(1);
  const rec = await waitForRecord(setup.recordsDir, (r) => r.record.status === 'completed', 10_000);
  expect((rec.record.tools as { name: string }[]).map((t) => t.name)).toEqual(['end_call']);
  expect(rec.record.endReason).toBe('agent_hangup');
  dlg.close();
});

test('client delegation: our chat model runs end_call, the answer goes back for the delegation, then BYE', async () => {
  const chat = new FakeOpenAiHttp({
    apiKey: KEY,
    reply: (messages) => (messages.some((m) => m.role === 'tool') ? { text: 'Goodbye, and thank you for calling.' } : { toolCalls: [{ name: 'end_call', arguments: { reason: 'caller is done' } }] }),
  });
  await chat.listen();
  closeAfterTest(() => chat.close());
  fake.respond = (ctx) => (ctx.index === 0 ? [{ delegate: {} }] : []);
  // The goodbye is spoken at 1.3 kHz, anything else given to speak (the opening) at 1.2 kHz.
  fake.speak = (text) => ({ audio: { toneHz: text.includes('Goodbye') ? 1300 : 1200, ms: 1000 }, transcript: text });
  const { setup, sip, rtp } = await agent('live-client-delegation', () => ({
    ai: { live: { delegation: { type: 'client', client: { url: chat.apiBase, model: 'gpt-4.1-mini' } } } },
  }));
  const first = fake.connectionCount;
  const { dlg, to } = await dialPcmu(sip, setup.ports.sip, rtp);
  const src = newSource();
  await say(rtp, src, to, 0, 1500, 0);
  await say(rtp, src, to, 700, 700, 0);
  const bye = await holdUntilBye(dlg, rtp, src, to, 15_000);
  const s = await fake.waitForSession(1000, first);
  expectNoObjections(s);
  expect(s.config).toMatchObject({ delegation: { type: 'client' } });
  expect(bye).toBeDefined();
  // The answer went back for that delegation, and the model spoke it (the caller heard the goodbye).
  expect(s.delegations).toHaveLength(1);
  expect(s.delegations[0]!.answers).toEqual([expect.objectContaining({ kind: 'commentary', content: expect.stringContaining('Goodbye') })]);
  expect(spans(rtp.heard(), 1300)).toHaveLength(1);
  const rec = await waitForRecord(setup.recordsDir, (r) => r.record.status === 'completed', 10_000);
  expect((rec.record.tools as { name: string }[]).map((t) => t.name)).toEqual(['end_call']);
  expect(rec.record.endReason).toBe('agent_hangup');
  dlg.close();
});

test('a dropped socket mid-call: a new session, and the call goes on', async () => {
  let sessionsSeen = 0;
  const firstOf = new WeakSet<object>();
  fake.respond = (ctx) => {
    if (sessionsSeen === 0) {
      sessionsSeen++;
      firstOf.add(ctx.session);
    }
    return [{ audio: { toneHz: firstOf.has(ctx.session) ? 1000 : 1400, ms: 600, amplitude: 0.3 }, transcript: 'Hello.' }];
  };
  const { setup, sip, rtp } = await agent('live-drop');
  const first = fake.connectionCount;
  const { dlg, to } = await dialPcmu(sip, setup.ports.sip, rtp);
  const src = newSource();
  await say(rtp, src, to, 0, 1500, 0);
  await say(rtp, src, to, 700, 500, 0);
  const s1 = await fake.waitForSession(5000, first);
  await eventually(() => (s1.utterances.some((u) => u.cause === 'turn' && u.status === 'done') ? true : undefined), 10_000, 'the first reply is sent');
  await say(rtp, src, to, 0, 1000, 0);
  s1.drop();
  const s2 = await fake.waitForSession(8000, first + 1);
  await eventually(() => s2.started || undefined, 8000, 'the new session starts');
  await say(rtp, src, to, 700, 500, 3000);
  await dlg.bye(5_000);
  dlg.close();
  expectNoObjections(s2);
  expect(s2.turns.length).toBeGreaterThanOrEqual(1);
  expect(spans(rtp.heard(), 1000)).toHaveLength(1);
  expect(spans(rtp.heard(), 1400).length).toBeGreaterThanOrEqual(1);
  const rec = await waitForRecord(setup.recordsDir, (r) => r.record.status === 'completed', 10_000);
  expect(rec.record.endReason).toBe('caller_hangup');
});

test('the service ends the session (session.closed, expired) after an error storm: a new session, and the call goes on', async () => {
  fake.respond = liveToneReply({ toneHz: 1000, ms: 600 });
  const { setup, d, sip, rtp } = await agent('live-expired');
  const first = fake.connectionCount;
  const { dlg, to } = await dialPcmu(sip, setup.ports.sip, rtp);
  const src = newSource();
  await say(rtp, src, to, 0, 1500, 0);
  const s1 = await fake.waitForSession(5000, first);
  await eventually(() => s1.started || undefined, 5000, 'the session starts');
  for (let i = 0; i < 5; i++) s1.injectError('server_error', 'The server had an error while processing your request.');
  s1.endSession('expired');
  const s2 = await fake.waitForSession(8000, first + 1);
  await eventually(() => s2.started || undefined, 8000, 'the new session starts');
  await say(rtp, src, to, 700, 600, 2500);
  await dlg.bye(5_000);
  dlg.close();
  expectNoObjections(s2);
  expect(s2.turns.length).toBeGreaterThanOrEqual(1);
  expect(spans(rtp.heard(), 1000).length).toBeGreaterThanOrEqual(1);
  const rec = await waitForRecord(setup.recordsDir, (r) => r.record.status === 'completed', 10_000);
  expect(rec.record.endReason).toBe('caller_hangup');
  // The storm is logged once, not once per event.
  expect(d.logsWithMsg(/^GPT-Live error: The server had an error/)).toHaveLength(1);
});

test('a dropped socket and no way back: the caller hears the fallback prompt and gets a BYE', async () => {
  const { setup, sip, rtp } = await agent('live-drop-fallback', async (st) => ({
    prompts: { fallbackFile: await makeTone(path.join(st.dir, 'fallback-350.wav'), 350, 700, { sampleRate: RATE, amplitude: 0.4 }) },
    calls: { onAiFailure: 'hangup' },
  }));
  const first = fake.connectionCount;
  const { dlg, to } = await dialPcmu(sip, setup.ports.sip, rtp);
  const src = newSource();
  await say(rtp, src, to, 0, 1000, 0);
  const s1 = await fake.waitForSession(5000, first);
  await eventually(() => s1.started || undefined, 5000, 'the session starts');
  fake.apiKey = 'sk-rotated-away';
  s1.drop();
  const bye = await holdUntilBye(dlg, rtp, src, to, 20_000);
  expect(bye).toBeDefined();
  dlg.close();
  expect(spans(rtp.heard(), 350)).toHaveLength(1);
  const rec = await waitForRecord(setup.recordsDir, (r) => r.record.status === 'completed', 10_000);
  expect(rec.record.endReason).toMatch(/ai/);
});

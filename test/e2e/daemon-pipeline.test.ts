/**
 * ai.provider: pipeline through SIP, against strict fakes of the three OpenAI-compatible HTTP APIs
 * (test/fakes/FakeOpenAiHttp.ts: speech-to-text "hears" the caller's tone as "tone <Hz>", the chat
 * model's replies are scripted here, text-to-speech speaks each sentence as a tone of its own):
 *  - a conversation: the opening line, the caller's turn transcribed, the reply spoken sentence by
 *    sentence (one speech request each), both sides in the call record;
 *  - a barge-in: the caller talks over a long reply, it stops, and the next chat request carries
 *    only what the caller heard of it;
 *  - a tool call (end_call) that ends the call after the goodbye;
 *  - speech synthesis failing (500 twice): the call gets the fallback behaviour and the error is
 *    counted on /metrics;
 *  - the neural VAD takes the turns (noise takes none, a spoken utterance does);
 *  - a real caller (pjsua) through Kamailio to the agent registered there: it hears the opening line
 *    and the answer to what it said.
 */
import { FakeOpenAiHttp, voiceHz, type ChatMessage, type ChatReply } from '../fakes/FakeOpenAiHttp';
import * as path from 'node:path';
import { findToneSpans, readWav } from '../helpers/audio-analysis';
import { makeSequence } from '../helpers/fixtures';
import { startKamailio } from '../helpers/kamailio';
import { startPjsuaCaller } from '../helpers/pjsua';
import { assertBuilt, eventually, prepareDaemon, scrape, sampleValue, startDaemon, waitForRecord, type Daemon, type DaemonSetup } from '../helpers/daemon';
import { useHarnessCleanup } from '../helpers/proc';
import { RawSipClient, type UacDialog } from '../helpers/rawsip';
import { RtpPeer, newSource } from '../helpers/rtp';
import { closeAfterTest, dialPcmu, holdUntilBye, openCaller, sayTone, useCallers, type RtpAddress } from '../helpers/rtpcall';
import { sine } from '../helpers/tone';
import { clicks, concat, knocks, mix, noise, utterance } from '../unit/vad/signals';

jest.setTimeout(90_000);
useHarnessCleanup();

const KEY = 'sk-pipeline-e2e-0123456789abcdef';
const RATE = 8000;
const OPENING = 'Hello, this is the front desk.';
const spans = (pcm: Int16Array, hz: number) => findToneSpans(pcm, RATE, hz, { frameMs: 10, maxGapMs: 60, minDurationMs: 150, minLevel: 0.02 });

let fake: FakeOpenAiHttp;
/** The chat script of the running test: the opening line when no caller turn is known yet. */
let script: (lastUser: string, messages: readonly ChatMessage[]) => ChatReply = () => ({ text: 'Fine.' });

beforeAll(async () => {
  assertBuilt();
  fake = new FakeOpenAiHttp({
    apiKey: KEY,
    reply: (messages) => {
      const users = messages.filter((m) => m.role === 'user');
      if (users.length === 0 && !messages.some((m) => m.role === 'tool')) return { text: OPENING };
      const last = users[users.length - 1];
      return script(typeof last?.content === 'string' ? last.content : '', messages);
    },
  });
  await fake.listen();
});
afterAll(async () => {
  await fake?.close();
});

useCallers();

/** A daemon on the pipeline backend, a raw SIP client and an RTP peer, closed after the test. */
async function agent(name: string, over: Record<string, unknown> = {}): Promise<{ setup: DaemonSetup; d: Daemon; sip: RawSipClient; rtp: RtpPeer }> {
  const setup = await prepareDaemon('echo', {
    ai: {
      provider: 'pipeline',
      apiKey: KEY,
      pipeline: {
        // The callers here speak tones, which the neural VAD rightly takes for no speech.
        vad: { engine: 'energy', silenceMs: 400, minSpeechMs: 100 },
        stt: { url: fake.apiBase, model: 'whisper-1' },
        chat: { url: fake.apiBase, model: 'gpt-4.1-mini' },
        tts: { url: fake.apiBase, model: 'gpt-4o-mini-tts', voice: 'marin' },
      },
      ...over,
    },
  });
  const d = await startDaemon(setup, { name });
  return { setup, d, ...(await openCaller(d)) };
}

async function dial(setup: DaemonSetup, sip: RawSipClient, rtp: RtpPeer): Promise<{ dlg: UacDialog; to: RtpAddress }> {
  return dialPcmu(sip, setup.ports.sip, rtp);
}

const say = sayTone;

test('a conversation: the opening line, the caller transcribed, the reply spoken sentence by sentence, both sides in the record', async () => {
  script = (said) => ({ text: `You said ${said}. Is there anything else?` });
  const { setup, sip, rtp } = await agent('pipeline-converse');
  const mark = fake.requests.length;
  const { dlg, to } = await dial(setup, sip, rtp);
  const src = newSource();
  await say(rtp, src, to, 0, 2500, 0); // the opening line plays
  await say(rtp, src, to, 700, 700, 3500);
  const chats = fake.requests.slice(mark).filter((r) => r.endpoint === 'chat');
  expect(chats.length).toBeGreaterThanOrEqual(2);
  const msgs = chats[1]!.fields.messages as ChatMessage[];
  expect(msgs[0]).toMatchObject({ role: 'system' });
  expect(msgs.filter((m) => m.role === 'user').pop()).toMatchObject({ content: 'tone 700' });
  expect(msgs.filter((m) => m.role === 'assistant')[0]).toMatchObject({ content: OPENING });
  const speech = fake.requests.slice(mark).filter((r) => r.endpoint === 'speech').map((r) => r.fields.input);
  expect(speech).toEqual([OPENING, 'You said tone 700.', 'Is there anything else?']);
  const stt = fake.requests.slice(mark).find((r) => r.endpoint === 'transcriptions')!;
  expect(stt.fields).toMatchObject({ model: 'whisper-1' });
  await dlg.bye(5_000);
  dlg.close();
  const heard = rtp.heard();
  for (const s of [OPENING, 'You said tone 700.', 'Is there anything else?']) expect(spans(heard, voiceHz(s))).toHaveLength(1);
  const rec = await waitForRecord(setup.recordsDir, (r) => r.record.status === 'completed', 10_000);
  const lines = ((rec.record.transcript ?? []) as { speaker: string; text: string }[]).map((t) => `${t.speaker}: ${t.text}`);
  expect(lines).toEqual([`agent: ${OPENING}`, 'caller: tone 700', 'agent: You said tone 700. Is there anything else?']);
  expect(rec.record.ai).toMatchObject({ backend: 'pipeline' });
});

test('a barge-in: the reply stops, and the next chat request holds only what the caller heard of it', async () => {
  const long = ['The first sentence is about the weather today.', 'The second one talks about the traffic downtown.', 'The third sentence covers the news.', 'The last sentence wishes you a good day.'];
  script = (said) => (said === 'tone 700' ? { text: long.join(' ') } : { text: 'Understood.' });
  // Each sentence is its own tone, so what was heard shows in the recording.
  expect(new Set([...long, 'Understood.', OPENING].map(voiceHz)).size).toBe(long.length + 2);
  const { setup, sip, rtp } = await agent('pipeline-barge');
  const mark = fake.requests.length;
  const { dlg, to } = await dial(setup, sip, rtp);
  const src = newSource();
  await say(rtp, src, to, 0, 2500, 0);
  await say(rtp, src, to, 700, 700, 0);
  // Wait until the reply is heard, then talk over it (each sentence is ~2.5-3 s of audio).
  await eventually(() => spans(rtp.heard(), voiceHz(long[0]!)).length > 0 || undefined, 10_000, 'the reply starts');
  await say(rtp, src, to, 0, 3500, 0);
  await say(rtp, src, to, 900, 700, 3000);
  const chats = fake.requests.slice(mark).filter((r) => r.endpoint === 'chat');
  const after = chats.find((r) => (r.fields.messages as ChatMessage[]).some((m) => m.role === 'user' && m.content === 'tone 900'));
  expect(after).toBeDefined();
  const assistant = (after!.fields.messages as ChatMessage[]).filter((m) => m.role === 'assistant').pop()!;
  const heard = String(assistant.content);
  expect(heard.startsWith(long[0]!)).toBe(true);
  expect(heard.length).toBeLessThan(long.join(' ').length);
  expect(heard).not.toContain(long[3]!);
  // The speech of the sentences after the cut was never asked for, or abandoned.
  const speech = fake.requests.slice(mark).filter((r) => r.endpoint === 'speech' && long.includes(String(r.fields.input)));
  expect(speech.some((r) => r.fields.input === long[3] && !r.aborted && r.finishedAt !== null && spans(rtp.heard(), voiceHz(long[3]!)).length > 0)).toBe(false);
  await dlg.bye(5_000);
  dlg.close();
});

test('a tool call ends the call: end_call, then the goodbye, then BYE', async () => {
  script = (said, messages) => {
    if (messages.some((m) => m.role === 'tool')) return { text: 'Goodbye and thank you.' };
    return said === 'tone 700' ? { toolCalls: [{ name: 'end_call', arguments: { reason: 'caller is done' } }] } : { text: 'Hmm.' };
  };
  const { setup, sip, rtp } = await agent('pipeline-tool');
  const { dlg, to } = await dial(setup, sip, rtp);
  const src = newSource();
  await say(rtp, src, to, 0, 2500, 0);
  await say(rtp, src, to, 700, 700, 0);
  const bye = await holdUntilBye(dlg, rtp, src, to, 15_000);
  expect(bye).toBeDefined();
  expect(spans(rtp.heard(), voiceHz('Goodbye and thank you.'))).toHaveLength(1);
  const rec = await waitForRecord(setup.recordsDir, (r) => r.record.status === 'completed', 10_000);
  expect((rec.record.tools as { name: string }[]).map((t) => t.name)).toEqual(['end_call']);
  expect(rec.record.endReason).toBe('agent_hangup');
  dlg.close();
});

test('speech synthesis fails (500, and again on the retry): the call gets the fallback behaviour, the error is on /metrics', async () => {
  script = () => ({ text: 'This reply will not be heard.' });
  const { setup, d, sip, rtp } = await agent('pipeline-tts-fails');
  fake.failNext('speech', 500, 2);
  const { dlg } = await dial(setup, sip, rtp);
  // The opening line's speech fails twice: the session dies, the call ends (onAiFailure: hangup).
  await dlg.waitForRequest('BYE', 15_000);
  dlg.close();
  const rec = await waitForRecord(setup.recordsDir, (r) => r.record.status === 'completed', 10_000);
  expect(rec.record.endReason).toMatch(/ai/);
  const m = await scrape(d);
  expect(sampleValue(m, 'sip_ai_agent_ai_errors_total')).toBeGreaterThanOrEqual(1);
  expect(d.logsWithMsg(/pipeline failed: tts: HTTP 500/).length).toBe(1);
});

test('the neural VAD takes the turns: clicks and knocks take none, a spoken utterance does', async () => {
  script = () => ({ text: 'I heard you.' });
  const { setup, d, rtp, sip } = await agent('pipeline-silero', { pipeline: { vad: { engine: 'silero', silenceMs: 500 }, stt: { url: fake.apiBase, model: 'whisper-1' }, chat: { url: fake.apiBase }, tts: { url: fake.apiBase, voice: 'marin' } } });
  const mark = fake.requests.length;
  const { dlg, to } = await dial(setup, sip, rtp);
  const src = newSource();
  await say(rtp, src, to, 0, 2500, 0);
  // Noise a speakerphone picks up: loud, but not speech.
  await rtp.play(src, mix(concat(clicks(1500, RATE, 120), knocks(1500, RATE, 300)), noise(3000, RATE, -45)), to, true);
  await rtp.play(src, sine(0, 1500, RATE, 0.4), to, true);
  const sttAfterNoise = fake.requests.slice(mark).filter((r) => r.endpoint === 'transcriptions').length;
  // A person speaking.
  await rtp.play(src, utterance(RATE), to, true);
  await rtp.play(src, sine(0, 3000, RATE, 0.4), to, true);
  expect(sttAfterNoise).toBe(0);
  const stt = fake.requests.slice(mark).filter((r) => r.endpoint === 'transcriptions');
  expect(stt).toHaveLength(1);
  expect(spans(rtp.heard(), voiceHz('I heard you.'))).toHaveLength(1);
  await dlg.bye(5_000);
  dlg.close();
  // The model decided (not the energy fallback), and most windows never reached it.
  const vad = (await d.waitForMsg('turn-taking of the call', 10_000)) as unknown as { vad: string; inferred: number; gated: number };
  expect(vad.vad).toBe('silero');
  expect(vad.inferred).toBeGreaterThan(0);
  expect(vad.gated).toBeGreaterThan(0);
});

test('a real caller: pjsua through Kamailio to the agent registered there hears the opening line and the answer to what it said', async () => {
  script = (said) => ({ text: `You said ${said}.` });
  const kam = await startKamailio({ users: { agent: 'agent-secret-1' } });
  const { setup, d } = await agent('pipeline-pjsua');
  setup.write({ accounts: [{ uri: 'sip:agent@127.0.0.1', registrar: kam.uri, username: 'agent', password: 'agent-secret-1' }] });
  await d.close();
  const d2 = await startDaemon(setup, { name: 'pipeline-pjsua-registered' });
  closeAfterTest(() => d2.close());
  closeAfterTest(() => kam.stop());
  await kam.waitForRegistration('agent', 10_000);
  const play = path.join(setup.dir, 'caller.wav');
  const rec = path.join(setup.dir, 'heard.wav');
  await makeSequence(play, [{ silenceMs: 3000 }, { toneHz: 700, ms: 700 }, { silenceMs: 6000 }], { sampleRate: RATE });
  const caller = await startPjsuaCaller({ name: 'pjsua-pipeline', target: `sip:agent@127.0.0.1:${kam.port}`, playFile: play, recordFile: rec, durationSec: 9, clockRate: RATE, codecs: ['PCMU'], lifetimeMs: 40_000 });
  closeAfterTest(async () => {
    await caller.quit();
  });
  await caller.waitForCallState('CONFIRMED', 10_000);
  expect((await caller.waitForDisconnect(25_000)).status).toBe(200);
  const wav = readWav(rec);
  const heard = (hz: number) => findToneSpans(wav.pcm, wav.sampleRate, hz, { frameMs: 10, maxGapMs: 60, minDurationMs: 150, minLevel: 0.02 });
  expect(heard(voiceHz(OPENING))).toHaveLength(1);
  expect(heard(voiceHz('You said tone 700.'))).toHaveLength(1);
  expect(heard(voiceHz(OPENING))[0]!.endMs).toBeLessThanOrEqual(heard(voiceHz('You said tone 700.'))[0]!.startMs);
});

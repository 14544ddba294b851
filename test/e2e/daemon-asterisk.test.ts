/**
 * The daemon behind a real PBX: Asterisk 22 (built by scripts/build-asterisk.sh) on loopback, with
 * extension 100 (the agent, digest auth), 200 (a pjsua caller) and 300 (a pjsua callee that
 * auto-answers). The agent registers as 100; 200 dials 100 through Asterisk and hears the agent;
 * the model's transfer_call (REFER to sip:300@asterisk) lands the caller on 300.
 *
 * Tones stand in for speech: the greeting is 500 Hz, the caller says 700 Hz, the model's
 * announcement is 1200 Hz and extension 300 plays 1500 Hz. Media always flows through Asterisk
 * (direct_media=no), G.711 u-law end to end.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findToneSpans, readWav, type ToneSpan } from '../helpers/audio-analysis';
import { startAsterisk, type Asterisk } from '../helpers/asterisk';
import { makeSequence, makeTone, sequenceMs, type Segment } from '../helpers/fixtures';
import { startPjsuaCallee, startPjsuaCaller, type Pjsua } from '../helpers/pjsua';
import { delay, useHarnessCleanup } from '../helpers/proc';
import { EXIT, assertBuilt, eventually, prepareDaemon, startDaemon, waitForRecord, type Daemon, type DaemonSetup } from '../helpers/daemon';
import { FakeRealtimeServer, type RespondScript, type Step } from '../fakes/FakeRealtimeServer';

jest.setTimeout(90_000);
useHarnessCleanup();

const RATE = 8000;
const PASSWORDS = { agent: 'agent-100-secret', caller: 'caller-200-secret', target: 'target-300-secret' } as const;
const API_KEY = 'sk-asterisk-e2e-0123456789abcdef';

let pbx: Asterisk;

beforeAll(async () => {
  assertBuilt();
  // Throws, naming scripts/build-asterisk.sh, when Asterisk was never built: every test fails.
  pbx = await startAsterisk({
    extensions: {
      '100': { password: PASSWORDS.agent },
      '200': { password: PASSWORDS.caller },
      '300': { password: PASSWORDS.target },
    },
  });
}, 60_000);

afterAll(async () => {
  await pbx?.stop();
}, 20_000);

/** Spans of `freq` Hz in a recording (10 ms frames; clearly audible tones only). */
function spans(pcm: Int16Array, sampleRate: number, freq: number): ToneSpan[] {
  return findToneSpans(pcm, sampleRate, freq, { frameMs: 10, maxGapMs: 30, minDurationMs: 50, minLevel: 0.02 });
}

/** The agent's account on the PBX: extension 100 with digest auth. */
function agentAccount(): Record<string, unknown> {
  return { uri: pbx.aor('100'), registrar: pbx.uri, username: '100', password: PASSWORDS.agent, realm: pbx.realm };
}

/** Extension 200 (registered, digest auth) dialling 100 through Asterisk, playing `segments`. */
async function callAgentFrom200(setup: DaemonSetup, name: string, segments: Segment[], durationSec: number): Promise<{ caller: Pjsua; rec: string }> {
  const play = await makeSequence(path.join(setup.dir, `${name}-play.wav`), segments, { sampleRate: RATE });
  const rec = path.join(setup.dir, `${name}-rec.wav`);
  const caller = await startPjsuaCaller({
    name: `ext-200-${name}`,
    target: pbx.extensionUri('100'),
    id: pbx.aor('200'),
    registrar: pbx.uri,
    username: '200',
    password: PASSWORDS.caller,
    realm: pbx.realm,
    playFile: play,
    recordFile: rec,
    durationSec,
    clockRate: RATE,
    codecs: ['PCMU'],
    lifetimeMs: (Math.max(durationSec, sequenceMs(segments) / 1000) + 30) * 1000,
  });
  return { caller, rec };
}

/** Resolve once `d` reports its account registered, in /metrics and in /healthz. */
async function expectRegistered(d: Daemon): Promise<void> {
  await eventually(
    async () => /^sip_ai_agent_registration_state\{[^}]*\} 1$/m.test((await d.http('GET', '/metrics')).text),
    15_000,
    'registration_state 1 in /metrics',
  );
  const health = await d.http('GET', '/healthz');
  expect(health.status).toBe(200);
  expect(health.json).toMatchObject({ accounts: [{ name: pbx.aor('100'), registers: true, registered: true }] });
}

describe('the agent as extension 100 (echo backend)', () => {
  let setup: DaemonSetup;
  let d: Daemon;

  beforeAll(async () => {
    // Without a PBX every test already fails with the reason; nothing to set up.
    if (!pbx) return;
    setup = await prepareDaemon('echo', { accounts: [agentAccount()] });
    const greeting = await makeTone(path.join(setup.dir, 'greeting-500.wav'), 500, 1000, { sampleRate: RATE, amplitude: 0.4 });
    setup.write({ greeting: { file: greeting, interruptible: false } });
    d = await startDaemon(setup);
  }, 40_000);

  afterAll(async () => {
    await d?.close();
  });

  test('registers with digest auth: Asterisk lists its contact, /metrics and /healthz say registered', async () => {
    const contact = await pbx.waitForContact('100', 15_000);
    expect(contact.uri).toContain(`127.0.0.1:${setup.ports.sip}`);
    await expectRegistered(d);
    const reg = await d.waitForMsg('registered', 5_000);
    expect(reg).toMatchObject({ account: pbx.aor('100'), sipCode: 200 });
  });

  test('a wrong password is refused: registration failed, /healthz 503, the registered contact stays', async () => {
    const bad = await prepareDaemon('echo', { accounts: [{ ...agentAccount(), password: 'not-the-password' }] });
    const b = await startDaemon(bad, { name: 'daemon-bad-password' });
    try {
      const failed = await b.waitForMsg('registration failed', 15_000);
      expect([401, 403]).toContain(failed.sipCode);
      await pbx.waitForMessage(/REGISTER.*Failed to authenticate/, 5_000);
      const health = await b.http('GET', '/healthz');
      expect(health.status).toBe(503);
      const contacts = await pbx.contacts();
      expect(contacts.filter((c) => c.aor === '100').map((c) => c.uri)).toEqual([expect.stringContaining(`:${setup.ports.sip}`)]);
    } finally {
      await b.stop();
    }
  });

  test('extension 200 dials 100 through Asterisk: it hears the greeting, then its tone echoed; a call record is written', async () => {
    const { caller, rec } = await callAgentFrom200(setup, 'echo', [{ silenceMs: 1500 }, { toneHz: 700, ms: 1000 }, { silenceMs: 4500 }], 7);
    await caller.waitForCallState('CONFIRMED', 15_000);
    const disc = await caller.waitForDisconnect(25_000);
    expect(disc.status).toBe(200);
    await caller.quit();

    // The call went through the dialplan, from 200 to 100.
    await pbx.waitForMessage(/HARNESS DIAL 100 from 200/, 5_000);

    const wav = readWav(rec);
    const greet = spans(wav.pcm, wav.sampleRate, 500);
    const echo = spans(wav.pcm, wav.sampleRate, 700);
    expect(greet).toHaveLength(1);
    expect(greet[0].endMs - greet[0].startMs).toBeGreaterThan(850);
    expect(echo).toHaveLength(1);
    expect(echo[0].startMs).toBeGreaterThanOrEqual(greet[0].endMs);
    // The caller's tone ended 2.5 s into the call; its echo can only start after that.
    expect(echo[0].startMs).toBeGreaterThan(2500);
    expect(echo[0].endMs - echo[0].startMs).toBeGreaterThan(800);

    const r = await waitForRecord(setup.recordsDir, (x) => x.record.status === 'completed', 10_000);
    expect(r.record).toMatchObject({ status: 'completed', direction: 'inbound', endReason: 'caller_hangup', ai: { backend: 'echo' } });
    expect(String(r.record.from)).toMatch(/200/);
    expect(String(r.record.to)).toMatch(/100/);
    const speakers = (r.record.transcript as { speaker: string }[]).map((t) => t.speaker);
    expect(speakers).toEqual(expect.arrayContaining(['caller', 'agent']));
  });

  test('stops cleanly (unregistering from Asterisk)', async () => {
    const exit = await d.stop();
    expect(exit.code).toBe(EXIT.ok);
    await eventually(async () => !(await pbx.contacts()).some((c) => c.aor === '100'), 10_000, 'contact 100 removed from Asterisk');
  });
});

describe('transfer_call through Asterisk (openai backend on the fake Realtime server)', () => {
  let fake: FakeRealtimeServer;

  beforeAll(async () => {
    fake = new FakeRealtimeServer({ apiKey: API_KEY });
    await fake.listen();
  });

  afterAll(async () => {
    await fake?.close();
  });

  test('the model transfers the caller to extension 300: REFER accepted (NOTIFY 200), 300 answers, the caller hears 300', async () => {
    // Response 1 answers the caller's turn with the tool call; response 2 is the announcement.
    const steps: Step[][] = [
      [{ functionCall: { name: 'transfer_call', arguments: { target: 'desk' } } }],
      [{ audio: { toneHz: 1200, ms: 400, amplitude: 0.3 }, transcript: 'Transferring you to the desk now.' }],
    ];
    const respond: RespondScript = (ctx) => steps[Math.min(ctx.index, steps.length - 1)];
    fake.respond = respond;

    const setup = await prepareDaemon('echo', { accounts: [agentAccount()] });
    const keyFile = path.join(setup.dir, 'openai-key');
    fs.writeFileSync(keyFile, `${API_KEY}\n`, { mode: 0o600 });
    const greeting = await makeTone(path.join(setup.dir, 'greeting-500.wav'), 500, 500, { sampleRate: RATE, amplitude: 0.4 });
    const targetUri = pbx.extensionUri('300');
    setup.write({
      ai: { provider: 'openai', url: `${fake.baseUrl}/v1/realtime`, apiKeyFile: keyFile, turnDetection: { type: 'server_vad', silenceDurationMs: 300 } },
      greeting: { file: greeting, interruptible: false },
      tools: { transferCall: { enabled: true, targets: { desk: targetUri } } },
    });

    const targetPlay = await makeTone(path.join(setup.dir, 'ext-300-1500.wav'), 1500, 2000, { sampleRate: RATE, amplitude: 0.4 });
    const target = await startPjsuaCallee({
      name: 'ext-300',
      id: pbx.aor('300'),
      registrar: pbx.uri,
      username: '300',
      password: PASSWORDS.target,
      realm: pbx.realm,
      autoAnswer: 200,
      playFile: targetPlay,
      recordFile: path.join(setup.dir, 'ext-300-rec.wav'),
      clockRate: RATE,
      codecs: ['PCMU'],
      lifetimeMs: 60_000,
    });
    const reg = await target.waitForRegistration(10_000);
    expect(reg).toMatchObject({ ok: true, status: 200 });
    await pbx.waitForContact('300', 5_000);

    const d = await startDaemon(setup);
    const contact = await eventually(
      async () => (await pbx.contacts()).find((c) => c.aor === '100' && c.uri.includes(`:${setup.ports.sip}`)),
      15_000,
      'contact 100 pointing at the new daemon',
    );
    expect(contact.aor).toBe('100');
    await expectRegistered(d);

    const { caller, rec } = await callAgentFrom200(setup, 'transfer', [{ silenceMs: 1000 }, { toneHz: 700, ms: 500 }, { silenceMs: 14_000 }], 15);
    await caller.waitForCallState('CONFIRMED', 15_000);

    // Extension 300 answers the call Asterisk made for the REFER.
    await target.waitForCallState('CONFIRMED', 25_000);
    await pbx.waitForMessage(/HARNESS DIAL 300 from 200/, 5_000);
    const transfer = await d.waitForMsg('transfer finished', 15_000);
    expect(transfer).toMatchObject({ target: targetUri, ok: true, sipCode: 200 });

    const r = await waitForRecord(setup.recordsDir, (x) => x.record.status === 'completed', 15_000);
    expect(r.record).toMatchObject({ direction: 'inbound', endReason: 'transferred', ai: { backend: 'openai' } });
    expect((r.record.tools as { name: string }[]).map((t) => t.name)).toEqual(['transfer_call']);

    // The caller is now talking to 300 (through Asterisk): give it time to hear 300's tone.
    await delay(2_500);
    expect(caller.closed).toBe(false);
    caller.hangup();
    await caller.waitForDisconnect(10_000);
    await caller.quit();
    await target.waitForDisconnect(10_000);
    await target.quit();

    const wav = readWav(rec);
    const greet = spans(wav.pcm, wav.sampleRate, 500);
    const announce = spans(wav.pcm, wav.sampleRate, 1200);
    const ext300 = spans(wav.pcm, wav.sampleRate, 1500);
    expect(greet).toHaveLength(1);
    // The announcement was heard before the transfer, extension 300 after it.
    expect(announce).toHaveLength(1);
    expect(announce[0].startMs).toBeGreaterThan(greet[0].endMs);
    expect(ext300.length).toBeGreaterThanOrEqual(1);
    expect(ext300[0].startMs).toBeGreaterThanOrEqual(announce[0].endMs);

    const exit = await d.stop();
    expect(exit.code).toBe(EXIT.ok);
  });
});

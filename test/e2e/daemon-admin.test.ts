/**
 * The running daemon's doors: the HTTP admin API (/healthz, /metrics, /status, /calls and its SSE
 * events) and the CLI subcommands that use it (status, calls, call, transcript, hangup). Outbound
 * calls go to a pjsua callee that auto-answers, plays a 700 Hz "phrase" in a loop (which the echo
 * backend plays back, giving transcript lines) and records what it hears. Health against a real
 * registrar: Kamailio with one account whose password we have wrong.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readLocalToken } from '../../src/daemon/adminToken';
import { findToneSpans, readWav } from '../helpers/audio-analysis';
import { makeSequence, makeTone } from '../helpers/fixtures';
import { startKamailio } from '../helpers/kamailio';
import { startPjsuaCallee, type Pjsua } from '../helpers/pjsua';
import { LOOPBACK } from '../helpers/ports';
import { spawnManaged, useHarnessCleanup } from '../helpers/proc';
import {
  CLI_ENTRY,
  EXIT,
  REPO_ROOT,
  assertBuilt,
  eventually,
  parsePrometheus,
  prepareDaemon,
  readSse,
  runCli,
  startDaemon,
  waitForRecord,
  type Daemon,
  type DaemonSetup,
} from '../helpers/daemon';

jest.setTimeout(60_000);
useHarnessCleanup();

const RATE = 8000;
const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let setup: DaemonSetup;
let d: Daemon;
let calleePlay: string;

interface CallViewJson {
  id: string;
  state: string;
  direction: string;
  endReason?: string | null;
  transcript?: { speaker: string; text: string }[];
}

beforeAll(async () => {
  assertBuilt();
  setup = await prepareDaemon('echo');
  const greeting = await makeTone(path.join(setup.dir, 'greeting-500.wav'), 500, 800, { sampleRate: RATE, amplitude: 0.4 });
  calleePlay = await makeSequence(path.join(setup.dir, 'callee-play.wav'), [{ silenceMs: 1500 }, { toneHz: 700, ms: 800 }, { silenceMs: 2500 }], {
    sampleRate: RATE,
  });
  setup.write({ greeting: { file: greeting } });
  d = await startDaemon(setup, { lifetimeMs: 150_000 });
});

afterAll(async () => {
  if (d && !d.closed) {
    const exit = await d.stop();
    expect(exit.code).toBe(EXIT.ok);
  }
});

/** A pjsua callee that answers, plays the looped phrase and records. */
async function startCallee(name: string): Promise<{ callee: Pjsua; rec: string }> {
  const rec = path.join(setup.dir, `${name}-rec.wav`);
  const callee = await startPjsuaCallee({ name, clockRate: RATE, codecs: ['PCMU'], playFile: calleePlay, recordFile: rec, lifetimeMs: 45_000 });
  return { callee, rec };
}

async function callView(id: string): Promise<CallViewJson> {
  const r = await d.http('GET', `/calls/${encodeURIComponent(id)}`);
  expect(r.status).toBe(200);
  return r.json as CallViewJson;
}

/** Wait until the live call has a caller line followed by an agent line (the echo of the callee's phrase). */
async function waitForEcho(id: string): Promise<CallViewJson> {
  return eventually(
    async () => {
      const v = await callView(id);
      const t = v.transcript ?? [];
      const said = t.findIndex((x) => x.speaker === 'caller');
      return said >= 0 && t.slice(said + 1).some((x) => x.speaker === 'agent') ? v : undefined;
    },
    15_000,
    `an agent transcript line on call ${id}`,
  );
}

describe('admin API', () => {
  test('without admin.token, calls and their transcripts need the token the daemon generated (a 0600 file beside the records); /healthz and /metrics do not', async () => {
    const file = path.join(setup.recordsDir, '.admin-token');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    for (const [method, p] of [
      ['GET', '/calls'],
      ['GET', '/calls/some-id'],
      ['GET', '/calls/some-id/events'],
      ['POST', '/calls'],
      ['DELETE', '/calls/some-id'],
      ['GET', '/status'],
    ] as const) {
      const r = await d.http(method, p, method === 'POST' ? { uri: 'sip:x@127.0.0.1' } : undefined, { Authorization: '' });
      expect([method, p, r.status]).toEqual([method, p, 401]);
    }
    expect((await d.http('GET', '/calls', undefined, { Authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await d.http('GET', '/calls')).status).toBe(200);
    expect((await d.http('GET', '/healthz', undefined, { Authorization: '' })).status).toBe(200);
    expect((await d.http('GET', '/metrics', undefined, { Authorization: '' })).status).toBe(200);
  });

  test('GET /healthz is 200 with the echo backend and an account that does not register', async () => {
    const r = await d.http('GET', '/healthz');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ status: 'ok', accounts: [{ name: 'sip:agent@127.0.0.1', registers: false }] });
  });

  test('GET /status names the version, the transport and the accounts', async () => {
    const r = await d.http('GET', '/status');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      version: VERSION,
      transports: { udp: `${LOOPBACK}:${setup.ports.sip}` },
      accounts: [{ uri: 'sip:agent@127.0.0.1', registers: false }],
      calls: { active: 0, draining: false },
      ai: { provider: 'echo' },
    });
  });

  test('GET /calls/:id of an unknown call is 404 with a JSON error', async () => {
    const r = await d.http('GET', '/calls/no-such-call');
    expect(r.status).toBe(404);
    expect(r.headers.get('content-type')).toMatch(/application\/json/);
    expect(r.json).toEqual({ error: expect.stringContaining('no-such-call') });
    const del = await d.http('DELETE', '/calls/no-such-call');
    expect(del.status).toBe(404);
  });

  test('POST /calls with a body that is not JSON is 400 with a JSON error; a body without uri names the field', async () => {
    const bad = await d.http('POST', '/calls', '{"uri": sip:oops', { 'Content-Type': 'application/json' });
    expect(bad.status).toBe(400);
    expect(bad.json).toEqual({ error: expect.stringMatching(/invalid JSON/) });
    const noUri = await d.http('POST', '/calls', { instructions: 'hello' });
    expect(noUri.status).toBe(400);
    expect(noUri.json).toMatchObject({ field: 'uri' });
    // Nothing was dialled.
    const list = await d.http('GET', '/calls');
    expect((list.json as { active: unknown[] }).active).toHaveLength(0);
  });

  test('POST /calls dials out (202 + id); the callee hears the agent, then its echo; SSE streams state and transcript and ends with ended; DELETE hangs up', async () => {
    const { callee, rec } = await startCallee('callee-api');
    const placed = await d.http('POST', '/calls', { uri: callee.uri });
    expect(placed.status).toBe(202);
    const id = (placed.json as { id: string }).id;
    expect(typeof id).toBe('string');
    expect(placed.headers.get('location')).toBe(`/calls/${encodeURIComponent(id)}`);

    const events = readSse(`${setup.adminUrl}/calls/${encodeURIComponent(id)}/events`, 40_000, undefined, readLocalToken(setup.recordsDir));
    // Awaited below; a failure before that must not surface as an unhandled rejection.
    events.catch(() => undefined);
    await callee.waitForCallState('CONFIRMED', 10_000);

    const list = await d.http('GET', '/calls');
    expect(list.status).toBe(200);
    const active = (list.json as { active: CallViewJson[] }).active;
    expect(active.map((c) => c.id)).toContain(id);
    expect(active.find((c) => c.id === id)).toMatchObject({ direction: 'outbound' });

    const live = await waitForEcho(id);
    expect(live.state).toBe('conversing');
    expect(live.transcript?.some((t) => t.speaker === 'caller')).toBe(true);

    const mark = callee.proc.mark;
    const del = await d.http('DELETE', `/calls/${encodeURIComponent(id)}`);
    expect(del.status).toBe(200);
    expect(del.json).toMatchObject({ id });
    await callee.waitForLog(/Request msg BYE/, 10_000, mark);
    await callee.waitForDisconnect(10_000, undefined, mark);

    const sse = await events;
    expect(sse.status).toBe(200);
    expect(sse.endedByServer).toBe(true);
    const kinds = sse.events.map((e) => e.event);
    expect(kinds).toContain('state');
    expect(kinds).toContain('transcript');
    expect(kinds[kinds.length - 1]).toBe('ended');
    expect(kinds.filter((k) => k === 'ended')).toHaveLength(1);
    const states = sse.events.filter((e) => e.event === 'state').map((e) => (JSON.parse(e.data) as { state: string }).state);
    expect(states).toContain('conversing');
    const lines = sse.events.filter((e) => e.event === 'transcript').map((e) => JSON.parse(e.data) as { speaker: string; text: string });
    expect(lines.map((l) => l.speaker)).toEqual(expect.arrayContaining(['caller', 'agent']));
    expect(JSON.parse(sse.events[sse.events.length - 1].data)).toMatchObject({ reason: 'admin_hangup' });

    // The callee heard the agent speak first: the greeting, or (an outbound call has no one to
    // greet) the echo backend's opening beeps, 600 Hz then 900 Hz; then the echo of its phrase.
    await callee.quit();
    const wav = readWav(rec);
    const tone = (hz: number) => findToneSpans(wav.pcm, wav.sampleRate, hz, { frameMs: 10, maxGapMs: 30, minDurationMs: 50, minLevel: 0.02 });
    const greet = tone(500);
    const [beep1, beep2] = [tone(600), tone(900)];
    const echo = tone(700);
    const greeted = greet.length === 1 && greet[0].endMs - greet[0].startMs > 650;
    const beeped = beep1.length === 1 && beep2.length === 1 && beep1[0].startMs < beep2[0].startMs;
    expect([greeted, beeped]).toContain(true);
    expect(echo.length).toBeGreaterThanOrEqual(1);
    expect(echo[0].startMs).toBeGreaterThan((greeted ? greet[0] : beep2[0]).endMs);

    const after = await d.http('GET', '/calls');
    const recent = (after.json as { active: CallViewJson[]; recent: CallViewJson[] }).recent;
    expect((after.json as { active: CallViewJson[] }).active.map((c) => c.id)).not.toContain(id);
    expect(recent.find((c) => c.id === id)).toMatchObject({ state: 'ended', direction: 'outbound', endReason: 'admin_hangup' });
    const ended = await callView(id);
    expect(ended).toMatchObject({ state: 'ended', endReason: 'admin_hangup' });

    const r = await waitForRecord(setup.recordsDir, (x) => x.record.callId === id && x.record.status === 'completed', 10_000);
    expect(r.record).toMatchObject({ direction: 'outbound', endReason: 'admin_hangup' });
  });

  test('GET /metrics is Prometheus text with sip_ai_agent_active_calls and sip_ai_agent_calls_total counting the call', async () => {
    const r = await d.http('GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const samples = parsePrometheus(r.text);
    expect(samples.get('sip_ai_agent_active_calls')).toEqual([{ labels: {}, value: 0 }]);
    const total = samples.get('sip_ai_agent_calls_total') ?? [];
    expect(total.reduce((s, x) => s + x.value, 0)).toBeGreaterThanOrEqual(1);
    expect(total.some((x) => Object.values(x.labels).includes('admin_hangup') && x.value >= 1)).toBe(true);
    // The callee spoke: its jitter buffer was sampled and the uplink includes it.
    expect((samples.get('sip_ai_agent_audio_jitter_buffer_seconds_count') ?? [])[0]?.value).toBeGreaterThan(0);
    expect((samples.get('sip_ai_agent_audio_uplink_latency_seconds_count') ?? [])[0]?.value).toBeGreaterThan(0);
  });
});

describe('CLI subcommands against the running daemon', () => {
  test('status --json prints JSON with the accounts and the version', async () => {
    const r = await runCli(['--config', setup.configPath, 'status', '--json']);
    expect(r.code).toBe(EXIT.ok);
    const s = JSON.parse(r.stdout) as { version: string; accounts: { uri: string }[] };
    expect(s.version).toBe(VERSION);
    expect(s.accounts.map((a) => a.uri)).toEqual(['sip:agent@127.0.0.1']);
  });

  test('status prints a summary a person reads: version, transports, each account, calls', async () => {
    const r = await runCli(['--config', setup.configPath, 'status']);
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toContain(`sip-ai-agent ${VERSION}`);
    expect(r.stdout).toMatch(/transports: udp 127\.0\.0\.1:\d+/);
    expect(r.stdout).toContain('account sip:agent@127.0.0.1: takes direct calls');
    expect(r.stdout).toMatch(/calls: \d+ active; ai: echo/);
  });

  test('call dials out; calls lists it; transcript prints its lines; transcript --follow ends with the call; hangup ends it', async () => {
    const { callee } = await startCallee('callee-cli');
    const placed = await runCli(['--config', setup.configPath, 'call', callee.uri, '--instructions', 'Say hello.']);
    expect(placed.stderr).toBe('');
    expect(placed.code).toBe(EXIT.ok);
    const id = (JSON.parse(placed.stdout) as { id: string }).id;
    await callee.waitForCallState('CONFIRMED', 10_000);

    const calls = await runCli(['--config', setup.configPath, 'calls']);
    expect(calls.code).toBe(EXIT.ok);
    const listed = JSON.parse(calls.stdout) as { active: CallViewJson[] };
    expect(listed.active.map((c) => c.id)).toContain(id);

    await waitForEcho(id);
    const transcript = await runCli(['--config', setup.configPath, 'transcript', id]);
    expect(transcript.code).toBe(EXIT.ok);
    const printed = transcript.stdout.split('\n').filter(Boolean);
    expect(printed.some((l) => /^\[[^\]]+\] caller: /.test(l))).toBe(true);
    expect(printed.some((l) => /^\[[^\]]+\] agent: /.test(l))).toBe(true);

    const follow = spawnManaged({
      name: 'cli transcript --follow',
      command: process.execPath,
      args: [CLI_ENTRY, '--config', setup.configPath, 'transcript', id, '--follow'],
      lifetimeMs: 30_000,
    });
    await follow.waitForLog(/agent: /, 10_000);

    const mark = callee.proc.mark;
    const hangup = await runCli(['--config', setup.configPath, 'hangup', id]);
    expect(hangup.code).toBe(EXIT.ok);
    expect(hangup.stdout.trim()).toBe(`call ${id} hung up`);
    await callee.waitForLog(/Request msg BYE/, 10_000, mark);
    await callee.waitForDisconnect(10_000, undefined, mark);

    // --follow stops by itself when the call ends.
    const followExit = await follow.waitForExit(15_000);
    expect(followExit.code).toBe(EXIT.ok);
    expect(follow.logText('stdout')).toMatch(/caller: /);
    await callee.quit();

    const again = await runCli(['--config', setup.configPath, 'hangup', id]);
    expect(again.code).toBe(EXIT.failure);
    expect(again.stderr).toMatch(/sip-ai-agent: /);
  });

  test('transcript of an unknown call exits 1 with a sentence naming it', async () => {
    const r = await runCli(['--config', setup.configPath, 'transcript', 'no-such-call']);
    expect(r.code).toBe(EXIT.failure);
    expect(r.stderr).toMatch(/no-such-call/);
    expect(r.stdout).toBe('');
  });
});

describe('health with a registrar', () => {
  test('/healthz is 503 listing the account the registrar refuses (wrong password); the one it accepts is registered', async () => {
    const kam = await startKamailio({ users: { alice: 'alice-secret-1', bob: 'bob-secret-2' } });
    const reg = await prepareDaemon('echo', {
      accounts: [
        { uri: 'sip:alice@127.0.0.1', registrar: kam.uri, username: 'alice', password: 'alice-secret-1' },
        { uri: 'sip:bob@127.0.0.1', registrar: kam.uri, username: 'bob', password: 'not-bobs-password', retryIntervalSec: 60 },
      ],
    });
    const rd = await startDaemon(reg, { name: 'daemon-registrar' });
    await kam.waitForRegistration('alice', 10_000);
    const health = await eventually(
      async () => {
        const h = await rd.http('GET', '/healthz');
        return h.status === 503 && JSON.stringify(h.json).includes('403') ? h : undefined;
      },
      15_000,
      '/healthz 503 naming the refused registration',
    );
    const reasons = (health.json as { status: string; reasons: string[] }).reasons;
    expect(health.json).toMatchObject({ status: 'unhealthy' });
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/sip:bob@127\.0\.0\.1/);
    expect(reasons[0]).toMatch(/not registered/);
    expect(reasons[0]).toMatch(/403/);

    const status = await rd.http('GET', '/status');
    const accounts = (status.json as { accounts: { uri: string; registered: boolean }[] }).accounts;
    expect(accounts.find((a) => a.uri === 'sip:alice@127.0.0.1')).toMatchObject({ registered: true });
    expect(accounts.find((a) => a.uri === 'sip:bob@127.0.0.1')).toMatchObject({ registered: false });

    const exit = await rd.stop();
    expect(exit.code).toBe(EXIT.ok);
    await kam.stop();
  });
});

/** One sample of a Prometheus text exposition. */

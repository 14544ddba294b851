/**
 * Calls through the daemon as sysadmins run it (`node bin/sip-ai-agent.js --config FILE`, echo
 * backend), with the pjsua app as the caller: the echo path and its call record, SIGTERM draining
 * mid-call (goodbye prompt, BYE, record, 503 for latecomers), and SIGHUP reloads.
 *
 * Tones stand in for speech: greetings are 500 Hz (or 1100 Hz after a reload), the caller says
 * 700 Hz, the goodbye prompt is 900 Hz. pjsua's recording lags the call by ~0.5 s (its jitter
 * buffer), so tones are compared by order and duration, never by absolute time.
 */
import * as path from 'node:path';
import { readWav, findToneSpans, type ToneSpan } from '../helpers/audio-analysis';
import { makeSequence, makeTone, sequenceMs, type Segment } from '../helpers/fixtures';
import { sipPing } from '../helpers/kamailio';
import { startPjsuaCallee, startPjsuaCaller, type Pjsua } from '../helpers/pjsua';
import { LOOPBACK, freePort } from '../helpers/ports';
import { useHarnessCleanup } from '../helpers/proc';
import {
  EXIT,
  assertBuilt,
  prepareDaemon,
  startDaemon,
  listRecords,
  waitForRecord,
  type Daemon,
  type DaemonSetup,
  type RecordFile,
} from '../helpers/daemon';

jest.setTimeout(60_000);
useHarnessCleanup();

const RATE = 8000;

beforeAll(() => {
  assertBuilt();
});

/** Spans of `freq` Hz in a recording (10 ms frames; clearly audible tones only). */
function spans(pcm: Int16Array, sampleRate: number, freq: number): ToneSpan[] {
  return findToneSpans(pcm, sampleRate, freq, { frameMs: 10, maxGapMs: 30, minDurationMs: 50, minLevel: 0.02 });
}

function durationMs(s: ToneSpan): number {
  return s.endMs - s.startMs;
}

/** A pjsua caller on the agent that plays `segments` and records what it hears. */
async function callDaemon(setup: DaemonSetup, name: string, segments: Segment[], durationSec?: number): Promise<{ caller: Pjsua; rec: string }> {
  const play = path.join(setup.dir, `${name}-play.wav`);
  const rec = path.join(setup.dir, `${name}-rec.wav`);
  await makeSequence(play, segments, { sampleRate: RATE });
  const caller = await startPjsuaCaller({
    name: `caller-${name}`,
    target: setup.sipUri,
    playFile: play,
    recordFile: rec,
    durationSec,
    clockRate: RATE,
    codecs: ['PCMU'],
    lifetimeMs: ((durationSec ?? sequenceMs(segments) / 1000) + 20) * 1000,
  });
  return { caller, rec };
}

describe('echo path with a real caller', () => {
  test('the caller hears the greeting, then its own tone echoed; the record says completed, caller_hangup, inbound', async () => {
    const setup = await prepareDaemon('echo');
    const greeting = await makeTone(path.join(setup.dir, 'greeting-500.wav'), 500, 1000, { sampleRate: RATE, amplitude: 0.4 });
    setup.write({ greeting: { file: greeting, interruptible: false } });
    const d = await startDaemon(setup);

    const { caller, rec } = await callDaemon(setup, 'echo', [{ silenceMs: 1500 }, { toneHz: 700, ms: 1000 }, { silenceMs: 3000 }], 6);
    await caller.waitForCallState('CONFIRMED', 10_000);
    const disc = await caller.waitForDisconnect(20_000);
    expect(disc.status).toBe(200);
    await caller.quit();

    const wav = readWav(rec);
    const greet = spans(wav.pcm, wav.sampleRate, 500);
    const echo = spans(wav.pcm, wav.sampleRate, 700);
    expect(greet).toHaveLength(1);
    expect(durationMs(greet[0])).toBeGreaterThan(850);
    expect(durationMs(greet[0])).toBeLessThan(1150);
    // Only the echo: the caller's own tone is not in what it hears.
    expect(echo).toHaveLength(1);
    expect(echo[0].startMs).toBeGreaterThanOrEqual(greet[0].endMs);
    // The caller's tone ended 2.5 s into the call; the echo can only start after it.
    expect(echo[0].startMs).toBeGreaterThan(2500);
    expect(durationMs(echo[0])).toBeGreaterThan(800);
    expect(durationMs(echo[0])).toBeLessThan(1300);

    const r = await waitForRecord(setup.recordsDir, (x) => x.record.status === 'completed', 10_000);
    expect(r.record).toMatchObject({ status: 'completed', endReason: 'caller_hangup', direction: 'inbound', sipStatus: 200 });
    expect(r.record.to).toMatch(/sip:agent@127\.0\.0\.1/);
    expect(r.record.ai).toMatchObject({ backend: 'echo' });
    const speakers = (r.record.transcript as { speaker: string }[]).map((t) => t.speaker);
    expect(speakers).toEqual(expect.arrayContaining(['caller', 'agent']));
    expect(path.basename(r.jsonPath)).toBe(`${r.record.callId}.json`);
    expect(r.day).toBe(String(r.record.startedAt).slice(0, 10));
    // records.recordAudio: a stereo WAV next to the record, caller left (the 700 Hz it said),
    // agent right (the greeting and the echo).
    expect(r.wavPath).toBeDefined();
    const stereo = readWav(r.wavPath as string);
    expect(stereo.channels).toBe(2);
    expect(r.record.recording).toMatchObject({ channels: 2, layout: 'caller-left,agent-right' });
    const [left, right] = stereo.channelData;
    expect(spans(left, stereo.sampleRate, 700)).toHaveLength(1);
    expect(spans(right, stereo.sampleRate, 500)).toHaveLength(1);
    expect(spans(right, stereo.sampleRate, 700)).toHaveLength(1);

    const ended = d.logsWithMsg('call ended');
    expect(ended).toHaveLength(1);
    expect(ended[0]).toMatchObject({ callId: r.record.callId, endReason: 'caller_hangup' });

    const exit = await d.stop();
    expect(exit.code).toBe(EXIT.ok);
  });
});

describe('SIGTERM mid-call', () => {
  test('drains: the caller hears the goodbye then gets BYE, latecomers get 503 (and no record), the record says shutdown, exit 0', async () => {
    const setup = await prepareDaemon('echo');
    const greeting = await makeTone(path.join(setup.dir, 'greeting-500.wav'), 500, 500, { sampleRate: RATE, amplitude: 0.4 });
    const goodbye = await makeTone(path.join(setup.dir, 'goodbye-900.wav'), 900, 1000, { sampleRate: RATE, amplitude: 0.4 });
    setup.write({ greeting: { file: greeting }, prompts: { goodbyeFile: goodbye }, calls: { drainTimeoutSec: 2 } });
    const d = await startDaemon(setup);

    const { caller, rec } = await callDaemon(setup, 'drain', [{ silenceMs: 20_000 }]);
    await caller.waitForCallState('CONFIRMED', 10_000);
    await d.waitForMsg(/-> conversing$/, 10_000);
    // A second pjsua, idle until the daemon drains; then it dials from its console.
    const late = await startPjsuaCallee({ name: 'late-caller', clockRate: RATE, codecs: ['PCMU'], lifetimeMs: 40_000 });

    const mark = d.proc.mark;
    d.signal('SIGTERM');
    const draining = await d.waitForMsg('stopping: no new calls, draining', 5_000, mark);
    late.command('m');
    late.command(setup.sipUri);
    const refused = await late.waitForDisconnect(10_000);
    expect(refused.status).toBe(503);

    const bye = await caller.waitForDisconnect(20_000);
    expect(bye.status).toBe(200);
    const exit = await d.proc.waitForExit(20_000);
    expect(exit.code).toBe(EXIT.ok);
    await caller.quit();
    await late.quit();

    // The call was given the drain time before the goodbye.
    const timeout = d.logsWithMsg('drain timeout: ending the remaining calls', mark);
    expect(timeout).toHaveLength(1);
    expect(Number(timeout[0].time) - Number(draining.time)).toBeGreaterThanOrEqual(1900);
    expect(d.logsWithMsg('stopped', mark)).toHaveLength(1);

    // The whole goodbye was heard, after the greeting: the BYE came after it, not during it.
    const wav = readWav(rec);
    const greet = spans(wav.pcm, wav.sampleRate, 500);
    const bye900 = spans(wav.pcm, wav.sampleRate, 900);
    expect(greet).toHaveLength(1);
    expect(bye900).toHaveLength(1);
    expect(bye900[0].startMs).toBeGreaterThan(greet[0].endMs);
    expect(durationMs(bye900[0])).toBeGreaterThan(900);

    const r = await waitForRecord(setup.recordsDir, (x) => x.record.direction === 'inbound' && x.record.endReason === 'shutdown', 5_000);
    expect(r.record.status).toBe('completed');
    // The latecomer was never admitted: logged, but no record of it.
    expect(d.logsWithMsg(/guard: INVITE from 127\.0\.0\.1:\d+ refused \(503, the agent is shutting down\)/, mark)).toHaveLength(1);
    expect(listRecords(setup.recordsDir).map((x) => x.record.endReason)).toEqual(['shutdown']);
  });
});

describe('SIGHUP reload', () => {
  let setup: DaemonSetup;
  let d: Daemon;
  let greetA: string;
  let greetB: string;
  let callAfterReload: RecordFile | undefined;

  beforeAll(async () => {
    setup = await prepareDaemon('echo');
    greetA = await makeTone(path.join(setup.dir, 'greeting-500.wav'), 500, 600, { sampleRate: RATE, amplitude: 0.4 });
    greetB = await makeTone(path.join(setup.dir, 'greeting-1100.wav'), 1100, 600, { sampleRate: RATE, amplitude: 0.4 });
    setup.write({ greeting: { file: greetA }, calls: { maxConcurrent: 4 } });
    d = await startDaemon(setup);
  });

  afterAll(async () => {
    await d?.close();
  });

  test('live keys (calls.maxConcurrent, greeting.file) are applied and listed; the next call hears the new greeting', async () => {
    const mark = d.proc.mark;
    setup.write({ greeting: { file: greetB }, calls: { maxConcurrent: 3 } });
    d.signal('SIGHUP');
    const applied = await d.waitForMsg(/^reload: applied/, 10_000, mark);
    expect(applied.keys).toEqual(expect.arrayContaining(['calls.maxConcurrent', 'greeting.file']));
    expect(d.logsWithMsg(/needs? a restart/, mark)).toHaveLength(0);
    expect(d.logsWithMsg(/reload refused/, mark)).toHaveLength(0);

    const { caller, rec } = await callDaemon(setup, 'after-reload', [{ silenceMs: 3000 }], 3);
    await caller.waitForDisconnect(20_000);
    await caller.quit();
    const wav = readWav(rec);
    expect(spans(wav.pcm, wav.sampleRate, 1100)).toHaveLength(1);
    expect(spans(wav.pcm, wav.sampleRate, 500)).toHaveLength(0);
    callAfterReload = await waitForRecord(setup.recordsDir, (x) => x.record.status === 'completed', 10_000);
  });

  test('calls after a reload are still recorded (records.recordAudio stays on): the WAV holds the call', () => {
    expect(setup.config.records).toMatchObject({ recordAudio: true });
    expect(callAfterReload?.wavPath).toBeDefined();
    const stereo = readWav(callAfterReload?.wavPath as string);
    // The call lasted 3 s; its agent channel carries the new greeting.
    expect(callAfterReload?.record.recording).toMatchObject({ channels: 2 });
    expect(stereo.durationMs).toBeGreaterThan(2000);
    expect(spans(stereo.channelData[1] ?? new Int16Array(0), stereo.sampleRate, 1100)).toHaveLength(1);
  });

  test('/status reports the configuration in force after the reload', async () => {
    const status = await d.http('GET', '/status');
    expect(status.status).toBe(200);
    const cfg = (status.json as { config: { calls: { maxConcurrent: number }; greeting: { file?: string } } }).config;
    expect(cfg.calls.maxConcurrent).toBe(3);
    expect(cfg.greeting.file).toBe(greetB);
  });

  test('a changed SIP port is reported as needing a restart; the daemon keeps the old port', async () => {
    const mark = d.proc.mark;
    const newPort = await freePort('udp');
    setup.write({ sip: { transports: { udp: { port: newPort } } } });
    d.signal('SIGHUP');
    const warn = await d.waitForMsg('reload: these changes need a restart to take effect', 10_000, mark);
    expect(warn.keys).toEqual(['sip.transports.udp.port']);
    expect(await sipPing(LOOPBACK, setup.ports.sip, 1000)).toBe(true);
    expect(await sipPing(LOOPBACK, newPort, 500)).toBe(false);
  });

  test('an invalid configuration on SIGHUP is refused and logged; the daemon keeps running', async () => {
    const mark = d.proc.mark;
    setup.write({ media: { clockRate: 11025 }, calls: { maxConcurrent: 0 } });
    d.signal('SIGHUP');
    const refused = await d.waitForMsg(/^reload refused/, 10_000, mark);
    expect(refused.level).toBeGreaterThanOrEqual(50);
    expect(String(refused.err)).toMatch(/media\.clockRate/);
    expect(String(refused.err)).toMatch(/calls\.maxConcurrent/);
    expect(d.closed).toBe(false);
    const health = await d.http('GET', '/healthz');
    expect(health.status).toBe(200);
    expect(await sipPing(LOOPBACK, setup.ports.sip, 1000)).toBe(true);

    const stop = await d.stop();
    expect(stop.code).toBe(EXIT.ok);
  });
});

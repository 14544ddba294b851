/**
 * The native SIP core against real peers on loopback: Kamailio (registrar/proxy with digest auth)
 * and the pjsua app (a caller that plays a WAV and records what it hears), plus calls between two
 * accounts of our own UserAgent. Nothing here is mocked.
 */
import * as path from 'node:path';
import { startKamailio, type Kamailio } from '../helpers/kamailio';
import { startPjsuaCaller, startPjsuaCallee } from '../helpers/pjsua';
import { makeTone, tmpDir } from '../helpers/fixtures';
import { goertzel, readWav, findToneSpans, rms } from '../helpers/audio-analysis';
import { useHarnessCleanup } from '../helpers/proc';
import { PcmCollector, agentUri, sleep, startAgent, until } from '../helpers/agent';
import { sine } from '../helpers/tone';
import type { UserAgent } from '../../src/sip/UserAgent';
import type { SipAccount } from '../../src/sip/SipAccount';
import type { SipCall } from '../../src/sip/SipCall';
import { SipError, InvalidStateError } from '../../src/util/errors';
import { monotonicUs } from '../../src/util/clock';

jest.setTimeout(60_000);
useHarnessCleanup();

let ua: UserAgent;
let kam: Kamailio;
let direct: SipAccount;
let dir: string;
let tone1k: string;

/** Level of `freq` relative to full scale over the middle of the signal. */
function toneLevel(pcm: Int16Array, rate: number, freq: number): number {
  const start = Math.floor(pcm.length / 4);
  const len = Math.floor(pcm.length / 2);
  return goertzel(pcm, start, len, freq, rate);
}

function nextIncoming(): Promise<SipCall> {
  return ua.waitFor('incomingCall', 15_000).then(([c]) => c);
}

beforeAll(async () => {
  dir = await tmpDir('sip-core-');
  tone1k = await makeTone(path.join(dir, 'tone1k.wav'), 1000, 8000, { sampleRate: 8000 });
  kam = await startKamailio({ users: { agent: 'agent-secret', caller: 'caller-secret', intruder: 'whatever' } });
  ua = await startAgent({ media: { clockRate: 8000, codecs: ['PCMU', 'PCMA', 'G722'] } });
  direct = await ua.addAccount({ uri: 'sip:bot@127.0.0.1', isDefault: true });
});

afterAll(async () => {
  await ua?.close();
  await kam?.stop();
});

describe('registration with digest auth (Kamailio)', () => {
  test('registers with the right password and unregisters on close()', async () => {
    const acc = await ua.addAccount({
      uri: kam.aor('agent'),
      registrar: kam.uri,
      username: 'agent',
      password: 'agent-secret',
    });
    const state = await acc.waitForRegistration(10_000);
    expect(state.registered).toBe(true);
    expect(state.sipCode).toBe(200);
    await until(() => kam.registered('agent'), 5000, 'kamailio to bind agent');
    await acc.close();
    await until(() => !kam.registered('agent'), 5000, 'kamailio to unbind agent');
  });

  test('a wrong password surfaces 401/403 as an event, not a crash', async () => {
    const acc = await ua.addAccount({
      uri: kam.aor('intruder'),
      registrar: kam.uri,
      username: 'intruder',
      password: 'not-the-password',
      retryIntervalSec: 60,
    });
    const events: number[] = [];
    acc.on('registration', (s) => events.push(s.sipCode));
    const err = await acc.waitForRegistration(10_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SipError);
    expect([401, 403]).toContain((err as SipError).status);
    expect(acc.registration.registered).toBe(false);
    expect(ua.closed).toBe(false);
    await acc.close();
  });
});

describe('calls from the pjsua app', () => {
  test('direct call: the agent sees the INVITE, answers, hears the caller and is heard', async () => {
    const rec = path.join(dir, 'caller-rec-1.wav');
    const incoming = nextIncoming();
    const caller = await startPjsuaCaller({ target: agentUri(ua), playFile: tone1k, recordFile: rec, durationSec: 4, clockRate: 8000, codecs: ['PCMU'] });
    const call = await incoming;
    expect(call.info.direction).toBe('inbound');
    expect(call.info.srcAddress).toBe(`127.0.0.1:${caller.localPort}`);
    expect(call.info.remoteUri).toContain('sip:');
    expect(call.info.sipCallId).not.toBe('');
    expect(call.header('Call-ID')).toBe(call.info.sipCallId);
    expect(call.header('Via')).toContain('127.0.0.1');
    const heard = new PcmCollector(call);
    await call.ringing();
    await call.answer();
    await call.waitForState('confirmed', 5000);
    // The agent speaks a 440 Hz tone for 2 s.
    expect(call.writeAudio(sine(440, 2000, 8000, 0.4))).toBe(16000);
    const ended = await call.waitFor('ended', 15_000);
    expect(ended[0].by).toBe('remote');
    await caller.quit();
    expect(call.media?.codec).toBe('PCMU');

    // What the agent received: the caller's 1 kHz tone at the 8 kHz bridge rate.
    const pcm = heard.pcm();
    expect(pcm.length).toBeGreaterThan(8000 * 2);
    expect(toneLevel(pcm, 8000, 1000)).toBeGreaterThan(0.2);
    expect(toneLevel(pcm, 8000, 440)).toBeLessThan(0.02);
    // What the caller heard: our 440 Hz tone, about 2 s of it.
    const wav = readWav(rec);
    const spans = findToneSpans(wav.pcm, wav.sampleRate, 440);
    const total = spans.reduce((s, x) => s + x.endMs - x.startMs, 0);
    expect(total).toBeGreaterThan(1700);
    expect(total).toBeLessThan(2400);
  });

  test('reject with 486 Busy Here reaches the caller', async () => {
    const incoming = nextIncoming();
    const caller = await startPjsuaCaller({ target: agentUri(ua), durationSec: 5 });
    const call = await incoming;
    await call.reject(486);
    const disc = await caller.waitForDisconnect(10_000);
    expect(disc.status).toBe(486);
    const end = call.end ?? (await call.waitFor('ended', 5000))[0];
    expect(end.by).toBe('local');
    await expect(call.answer()).rejects.toBeInstanceOf(InvalidStateError);
    await caller.kill();
  });

  test('the agent hangs up: the caller sees BYE', async () => {
    const incoming = nextIncoming();
    const caller = await startPjsuaCaller({ target: agentUri(ua), durationSec: 20 });
    const call = await incoming;
    await call.answer();
    await call.waitForState('confirmed', 5000);
    await sleep(300);
    await call.hangup();
    const disc = await caller.waitForDisconnect(10_000);
    expect(disc.status).toBe(200);
    expect(call.end?.by).toBe('local');
    await caller.kill();
  });

  test('DTMF both ways: RFC 2833 and SIP INFO in, RFC 2833 out', async () => {
    const incoming = nextIncoming();
    const caller = await startPjsuaCaller({ target: agentUri(ua), durationSec: 20, codecs: ['PCMU'] });
    const call = await incoming;
    const digits: string[] = [];
    const methods = new Set<string>();
    call.on('dtmf', (d) => {
      digits.push(d.digit);
      methods.add(d.method);
    });
    await call.answer();
    await call.waitForState('confirmed', 5000);
    await sleep(500);
    caller.sendDtmf('12#', 'rfc2833');
    await until(() => digits.length >= 3, 10_000, 'RFC 2833 digits');
    caller.sendDtmf('9', 'info');
    await until(() => digits.length >= 4, 10_000, 'SIP INFO digit');
    expect(digits.join('')).toBe('12#9');
    expect([...methods].sort()).toEqual(['info', 'rfc2833']);
    await call.sendDtmf('47', 'rfc2833');
    await until(() => caller.receivedDtmf().length >= 2, 10_000, 'pjsua to receive DTMF');
    expect(caller.receivedDtmf()).toBe('47');
    await call.hangup();
    await caller.kill();
  });

  test('through Kamailio: the registered agent receives a proxied call', async () => {
    const acc = await ua.addAccount({ uri: kam.aor('agent'), registrar: kam.uri, username: 'agent', password: 'agent-secret' });
    await acc.waitForRegistration(10_000);
    const incoming = nextIncoming();
    const caller = await startPjsuaCaller({
      target: kam.aor('agent'),
      outbound: kam.outboundUri,
      id: kam.aor('caller'),
      registrar: kam.uri,
      username: 'caller',
      password: 'caller-secret',
      durationSec: 3,
      playFile: tone1k,
      clockRate: 8000,
    });
    const call = await incoming;
    expect(call.account).toBe(acc);
    expect(call.header('Record-Route')).toContain(`127.0.0.1:${kam.port}`);
    const heard = new PcmCollector(call);
    await call.answer();
    await call.waitFor('ended', 15_000);
    expect(toneLevel(heard.pcm(), 8000, 1000)).toBeGreaterThan(0.2);
    await caller.quit();
    await acc.close();
  });

  test('blind transfer: REFER makes the caller call the target, with progress', async () => {
    const target = await startPjsuaCallee({ autoAnswer: 200, clockRate: 8000 });
    const incoming = nextIncoming();
    const caller = await startPjsuaCaller({ target: agentUri(ua), durationSec: 20 });
    const call = await incoming;
    await call.answer();
    await call.waitForState('confirmed', 5000);
    const progress: number[] = [];
    call.on('transferStatus', (s) => progress.push(s.sipCode));
    const result = await call.transfer(target.uri, 15_000);
    expect(result.ok).toBe(true);
    expect(result.sipCode).toBe(200);
    expect(progress[progress.length - 1]).toBe(200);
    await target.waitForCallState('CONFIRMED', 10_000);
    await call.hangup();
    await caller.kill();
    await target.kill();
  });
});

describe('calls between two accounts of the agent (our own stack on both ends)', () => {
  test('custom headers arrive with the INVITE and audio flows both ways', async () => {
    const from = await ua.addAccount({ uri: 'sip:tester@127.0.0.1' });
    const incoming = nextIncoming();
    const out = await ua.call(from, agentUri(ua), { headers: { 'X-Customer-Id': 'C-42', 'X-Campaign': 'spring' } });
    const inbound = await incoming;
    expect(inbound.header('x-customer-id')).toBe('C-42');
    expect(inbound.header('X-Campaign')).toBe('spring');
    const inHeard = new PcmCollector(inbound);
    const outHeard = new PcmCollector(out);
    await inbound.answer();
    await out.waitForState('confirmed', 5000);
    out.writeAudio(sine(700, 1000, 8000));
    inbound.writeAudio(sine(1300, 1000, 8000));
    await sleep(1500);
    expect(toneLevel(inHeard.pcm(), 8000, 700)).toBeGreaterThan(0.2);
    expect(toneLevel(outHeard.pcm(), 8000, 1300)).toBeGreaterThan(0.2);
    await out.hangup();
    const [end] = await inbound.waitFor('ended', 5000);
    expect(end.by).toBe('remote');
    await from.close();
  });

  test('clear() drops queued agent audio at once and reports where playout stopped', async () => {
    const from = await ua.addAccount({ uri: 'sip:tester2@127.0.0.1' });
    const incoming = nextIncoming();
    const out = await ua.call(from, agentUri(ua));
    const inbound = await incoming;
    await inbound.answer();
    await out.waitForState('confirmed', 5000);
    const heard = new PcmCollector(out);
    inbound.writeAudio(sine(900, 5000, 8000));
    await sleep(1000);
    const stoppedAt = inbound.clearAudio();
    const [read, write] = inbound.txIndex();
    expect(read).toBe(write);
    expect(stoppedAt).toBeGreaterThan(8000 * 0.5);
    expect(stoppedAt).toBeLessThan(8000 * 2);
    const stats = inbound.audioStats()!;
    expect(stats.txClearedSamples).toBe(40000 - stoppedAt);
    await sleep(600);
    // After the clear, the far end hears silence.
    const pcm = heard.pcm();
    const tail = pcm.subarray(pcm.length - 8000 * 0.3);
    expect(rms(tail)).toBeLessThan(100);
    await out.hangup();
    await from.close();
  });
});

describe('wideband', () => {
  test('G.722 at a 16 kHz bridge keeps a 6 kHz tone', async () => {
    // The 8 kHz agent cannot carry 6 kHz; restart it with a 16 kHz bridge and G.722 only.
    await ua.close();
    ua = await startAgent({ media: { clockRate: 16000, codecs: ['G722'] } });
    await ua.addAccount({ uri: 'sip:agent@127.0.0.1', isDefault: true });
    const from = await ua.addAccount({ uri: 'sip:wideband@127.0.0.1' });
    const incoming = nextIncoming();
    const out = await ua.call(from, agentUri(ua));
    const call = await incoming;
    const heard = new PcmCollector(call);
    await call.answer();
    await out.waitForState('confirmed', 5000);
    out.writeAudio(sine(6000, 1500, 16000, 0.4));
    await sleep(2000);
    expect(call.media?.codec).toBe('G722');
    expect(call.media?.codecClockRate).toBe(16000);
    expect(call.sampleRate).toBe(16000);
    const pcm = heard.pcm();
    expect(toneLevel(pcm, 16000, 6000)).toBeGreaterThan(0.1);
    await out.hangup();
  });
});

describe('latency at the start of a call', () => {
  test('audio written one second into a call arrives whole and without a start-up backlog', async () => {
    // Regression: RTP of a new call used to sit unread for up to 500 ms (pjmedia's media thread
    // polls with a 500 ms timeout), so the jitter buffer started full and dropped frames for
    // seconds. The bridge is at 16 kHz here (the test above restarted it).
    const from = await ua.addAccount({ uri: 'sip:latency@127.0.0.1' });
    const incoming = nextIncoming();
    const out = await ua.call(from, agentUri(ua));
    const inbound = await incoming;
    const heard = new PcmCollector(inbound);
    await inbound.answer();
    await out.waitForState('confirmed', 5000);
    await sleep(1000);
    const rate = inbound.sampleRate;
    const start = heard.samples;
    out.writeAudio(sine(1000, 3000, rate));
    await sleep(4000);
    const pcm = heard.pcm().subarray(start);
    const spans = findToneSpans(pcm, rate, 1000, { maxGapMs: 0, minDurationMs: 0 });
    expect(spans).toHaveLength(1);
    // All 3 s arrive (no frames discarded), and the tone starts within a few frames (generous
    // slack for a loaded machine; the backlog bug made it 500 ms).
    expect(spans[0].endMs - spans[0].startMs).toBeGreaterThanOrEqual(2980);
    expect(spans[0].startMs).toBeLessThan(250);
    await out.hangup();
    await from.close();
  });

  test('clock-tick times: caller audio says when it left the clock, TX ticks say when each sample was sent', async () => {
    const from = await ua.addAccount({ uri: 'sip:stamps@127.0.0.1' });
    const incoming = nextIncoming();
    const out = await ua.call(from, agentUri(ua));
    const inbound = await incoming;
    const stamps: { recvUs: number; firstUs: number; lastUs: number; samples: number }[] = [];
    inbound.on('audio', (pcm, firstUs, lastUs) => stamps.push({ recvUs: monotonicUs(), firstUs, lastUs, samples: pcm.length }));
    await inbound.answer();
    await out.waitForState('confirmed', 5000);
    out.writeAudio(sine(1000, 1000, out.sampleRate));
    await sleep(300);
    const [, w0] = inbound.txIndex();
    const writtenUs = monotonicUs();
    expect(inbound.writeAudio(sine(440, 400, inbound.sampleRate))).toBeGreaterThan(0);
    await sleep(1000);
    const ticks = inbound.txTicks()!;
    await out.hangup();
    await from.close();

    // RX: stamped by the clock thread on the clock JS reads (CLOCK_MONOTONIC), before JS saw it.
    expect(stamps.length).toBeGreaterThan(20);
    for (const s of stamps) {
      expect(Number.isFinite(s.firstUs) && Number.isFinite(s.lastUs)).toBe(true);
      expect(s.firstUs).toBeLessThanOrEqual(s.lastUs);
      expect(s.lastUs).toBeLessThanOrEqual(s.recvUs);
      expect(s.recvUs - s.lastUs).toBeLessThan(10_000_000); // same clock, not merely "before"
    }
    // TX: 64 ticks kept, oldest first, contiguous ranges, times ascending; the tick that sent the
    // first written sample came after the write.
    expect(ticks.length).toBe(64 * 3);
    let sentAt = Number.NaN;
    for (let i = 0; i < ticks.length; i += 3) {
      if (i > 0) {
        expect(ticks[i]).toBe(ticks[i - 2]);
        expect(ticks[i + 2]).toBeGreaterThanOrEqual(ticks[i - 1]);
      }
      if (w0 >= ticks[i] && w0 < ticks[i + 1]) sentAt = ticks[i + 2];
    }
    expect(sentAt).toBeGreaterThanOrEqual(writtenUs);
    expect(sentAt - writtenUs).toBeLessThan(10_000_000);
  });
});

/**
 * Proves the real-peer harness on real peers (no product code): Kamailio with digest auth, pjsua
 * callers and callees (registered, proxied, direct), baresip, sox fixtures and the audio analysis.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  dominantFrequency,
  findToneSpans,
  readWav,
  rms,
  toneDurationMs,
  toneFrames,
} from '../helpers/audio-analysis';
import { startBaresip } from '../helpers/baresip';
import { makeStandardFixtures, makeTone, tmpDir, type StandardFixtures } from '../helpers/fixtures';
import { startKamailio, type Kamailio } from '../helpers/kamailio';
import { startPjsuaCallee, startPjsuaCaller } from '../helpers/pjsua';
import { liveProcesses, useHarnessCleanup } from '../helpers/proc';

jest.setTimeout(20_000);
useHarnessCleanup();

let fx: StandardFixtures;
let work: string;

beforeAll(async () => {
  fx = await makeStandardFixtures();
  work = await tmpDir('harness-');
}, 20_000);

afterEach(() => {
  // Each test stops the UAs it started; a leftover means a helper leaked a process. Kamailio
  // lives for its whole describe block.
  expect(liveProcesses().map((p) => p.name).filter((n) => n !== 'kamailio')).toEqual([]);
});

describe('fixtures and audio analysis', () => {
  it('finds the two tone spans of a tone-gap-tone fixture where sox put them', () => {
    const wav = readWav(fx.toneGapTone8k);
    expect(wav.sampleRate).toBe(8000);
    const spans = findToneSpans(wav.pcm, wav.sampleRate, 1000);
    expect(spans).toHaveLength(2);
    expect(spans[0].startMs).toBeLessThanOrEqual(20);
    expect(spans[0].endMs).toBeGreaterThanOrEqual(480);
    expect(spans[0].endMs).toBeLessThanOrEqual(520);
    expect(spans[1].startMs).toBeGreaterThanOrEqual(980);
    expect(spans[1].startMs).toBeLessThanOrEqual(1020);
    expect(spans[1].endMs).toBeGreaterThanOrEqual(1480);
    // sox's default amplitude in the fixtures is 0.5 of full scale.
    expect(spans[0].meanLevel).toBeGreaterThan(0.4);
    expect(spans[0].meanLevel).toBeLessThan(0.6);
    expect(findToneSpans(wav.pcm, wav.sampleRate, 440)).toEqual([]);
  });

  it('decodes µ-law, A-law and stereo 44.1 kHz fixtures to the same 1 kHz tone', () => {
    for (const file of [fx.tone1kUlaw, fx.tone1kAlaw, fx.tone1kStereo44k]) {
      const wav = readWav(file);
      expect(Math.abs(dominantFrequency(wav.pcm, wav.sampleRate).freq - 1000)).toBeLessThanOrEqual(2);
      expect(toneDurationMs(wav.pcm, wav.sampleRate, 1000)).toBeGreaterThanOrEqual(980);
    }
    expect(readWav(fx.tone1kStereo44k).channels).toBe(2);
    expect(readWav(fx.tone1kUlaw).formatTag).toBe(7);
    expect(readWav(fx.tone1kAlaw).formatTag).toBe(6);
  });

  it('reports silence as no tone and zero level', () => {
    const wav = readWav(fx.silence8k);
    expect(rms(wav.pcm)).toBe(0);
    expect(toneFrames(wav.pcm, wav.sampleRate, 1000).some((f) => f.present)).toBe(false);
    expect(dominantFrequency(wav.pcm, wav.sampleRate)).toEqual({ freq: 0, level: 0 });
  });
});

describe('kamailio registrar', () => {
  let kam: Kamailio;
  beforeAll(async () => {
    kam = await startKamailio({ users: { alice: 'alice-secret', bob: 'bob-secret', carol: 'carol-secret' } });
  });
  afterAll(async () => {
    await kam?.stop();
  });

  it('registers a user with the right password and refuses a wrong one', async () => {
    const alice = await startPjsuaCallee({
      name: 'pjsua-alice',
      id: kam.aor('alice'),
      registrar: kam.uri,
      username: 'alice',
      password: 'alice-secret',
    });
    const bob = await startPjsuaCallee({
      name: 'pjsua-bob',
      id: kam.aor('bob'),
      registrar: kam.uri,
      username: 'bob',
      password: 'not-bobs-password',
    });
    try {
      const [regA, regB] = await Promise.all([alice.waitForRegistration(8_000), bob.waitForRegistration(8_000)]);
      expect(regA).toMatchObject({ ok: true, status: 200 });
      expect(regB.ok).toBe(false);
      expect([401, 403]).toContain(regB.status);
      await kam.waitForRegistration('alice', 2_000);
      await kam.waitForLog(/HARNESS REGISTER FAIL user=bob/, 2_000);
      expect(kam.registered('alice')).toBe(true);
      expect(kam.registered('bob')).toBe(false);
    } finally {
      await Promise.all([alice.quit(), bob.quit()]);
    }
  });

  it('routes a call to a registered callee and the caller records its 1 kHz tone', async () => {
    const callee = await startPjsuaCallee({
      name: 'pjsua-agent',
      id: kam.aor('alice'),
      registrar: kam.uri,
      username: 'alice',
      password: 'alice-secret',
      playFile: fx.tone1k8k,
      codecs: ['PCMU'],
    });
    const recordFile = path.join(work, 'proxied-call.wav');
    try {
      const reg = await callee.waitForRegistration(8_000);
      expect(reg.ok).toBe(true);
      const caller = await startPjsuaCaller({
        target: kam.aor('alice'),
        outbound: kam.outboundUri,
        recordFile,
        durationSec: 3,
        clockRate: 16000,
        codecs: ['PCMU'],
      });
      try {
        await caller.waitForCallState('CONFIRMED', 5_000);
        // The log is line-buffered: the connect line is visible while the call is still up.
        expect(caller.closed).toBe(false);
        await callee.waitForIncomingInvite(1_000);
        const end = await caller.waitForDisconnect(8_000);
        expect(end.status).toBe(200);
      } finally {
        await caller.quit();
      }
      await kam.waitForLog(/HARNESS LOOKUP FOUND method=INVITE user=alice/, 1_000);
      await kam.waitForLog(/HARNESS REPLY status=200 method=INVITE/, 1_000);

      const wav = readWav(recordFile);
      expect(wav.sampleRate).toBe(16000);
      expect(wav.truncatedHeader).toBe(false);
      const spans = findToneSpans(wav.pcm, wav.sampleRate, 1000);
      expect(spans.length).toBeGreaterThanOrEqual(1);
      // Recording starts at connect; pjsua's receive path shows the first ~500 ms as silence.
      expect(spans[0].startMs).toBeLessThan(800);
      expect(spans[spans.length - 1].endMs).toBeGreaterThan(2800);
      expect(toneDurationMs(wav.pcm, wav.sampleRate, 1000)).toBeGreaterThan(2000);
      expect(Math.abs(dominantFrequency(wav.pcm, wav.sampleRate).freq - 1000)).toBeLessThanOrEqual(3);
    } finally {
      await callee.quit();
    }
  });

  it('routes a pjsua call to a registered baresip (a second SIP stack) that plays a tone', async () => {
    const tone = await makeTone(path.join(work, 'carol-tone.wav'), 1000, 4000);
    const bs = await startBaresip({
      name: 'baresip-carol',
      user: 'carol',
      autoAnswer: true,
      playFile: tone,
      register: { hostPort: `127.0.0.1:${kam.port}`, password: 'carol-secret' },
    });
    const recordFile = path.join(work, 'carol-call.wav');
    try {
      // baresip's REGISTER_OK control event can fire before its control connection is up, so
      // take the registrar's word for it.
      await kam.waitForRegistration('carol', 15_000);
      const caller = await startPjsuaCaller({
        target: kam.aor('carol'),
        outbound: kam.outboundUri,
        recordFile,
        durationSec: 2,
        clockRate: 8000,
        codecs: ['PCMA'],
      });
      try {
        expect((await caller.waitForDisconnect(8_000)).status).toBe(200);
      } finally {
        await caller.quit();
      }
      await bs.waitForEvent('CALL_CLOSED', 2_000);
      const wav = readWav(recordFile);
      expect(toneDurationMs(wav.pcm, wav.sampleRate, 1000)).toBeGreaterThan(1200);
    } finally {
      await bs.stop();
    }
    expect(bs.recordings().dec.length).toBeGreaterThanOrEqual(1);
  });

  it('answers 404 for a call to a user that is not registered', async () => {
    const caller = await startPjsuaCaller({ target: kam.aor('nobody'), outbound: kam.outboundUri });
    try {
      const end = await caller.waitForDisconnect(5_000);
      expect(end.status).toBe(404);
      await kam.waitForLog(/HARNESS LOOKUP NOTFOUND method=INVITE user=nobody/, 1_000);
    } finally {
      await caller.quit();
    }
  });
});

describe('pjsua without a proxy', () => {
  it('calls a callee directly and records its 440 Hz tone, not 1 kHz', async () => {
    const callee = await startPjsuaCallee({ playFile: fx.tone440_8k });
    const recordFile = path.join(work, 'direct-call.wav');
    try {
      const caller = await startPjsuaCaller({
        target: `sip:agent@127.0.0.1:${callee.localPort}`,
        recordFile,
        durationSec: 3,
        clockRate: 8000,
      });
      try {
        const end = await caller.waitForDisconnect(8_000);
        expect(end.status).toBe(200);
      } finally {
        await caller.quit();
      }
      const wav = readWav(recordFile);
      expect(wav.sampleRate).toBe(8000);
      expect(toneDurationMs(wav.pcm, wav.sampleRate, 440)).toBeGreaterThan(2000);
      expect(Math.abs(dominantFrequency(wav.pcm, wav.sampleRate).freq - 440)).toBeLessThanOrEqual(3);
      expect(findToneSpans(wav.pcm, wav.sampleRate, 1000)).toEqual([]);
    } finally {
      await callee.quit();
    }
  });

  it('delivers RFC 2833 DTMF digits from caller to callee', async () => {
    const callee = await startPjsuaCallee({});
    try {
      const caller = await startPjsuaCaller({ target: `sip:agent@127.0.0.1:${callee.localPort}`, durationSec: 5 });
      try {
        await caller.waitForCallState('CONFIRMED', 5_000);
        caller.sendDtmf('159');
        await callee.waitForLog(/Incoming DTMF on call \d+: 9/, 5_000);
        expect(callee.receivedDtmf()).toBe('159');
        caller.hangup();
        await caller.waitForDisconnect(3_000);
      } finally {
        await caller.quit();
      }
    } finally {
      await callee.quit();
    }
  });
});

describe('baresip', () => {
  it('auto-answers a pjsua call and plays its file, which the caller records', async () => {
    const tone = await makeTone(path.join(work, 'bs-tone.wav'), 1000, 4000);
    const bs = await startBaresip({ autoAnswer: true, playFile: tone });
    const recordFile = path.join(work, 'baresip-call.wav');
    try {
      const caller = await startPjsuaCaller({
        target: `sip:bs@127.0.0.1:${bs.sipPort}`,
        recordFile,
        durationSec: 2,
        clockRate: 8000,
        codecs: ['PCMU'],
      });
      try {
        const end = await caller.waitForDisconnect(8_000);
        expect(end.status).toBe(200);
      } finally {
        await caller.quit();
      }
      await bs.waitForLog(/Call established/, 1_000);
      expect(fs.existsSync(recordFile)).toBe(true);
      const wav = readWav(recordFile);
      expect(toneDurationMs(wav.pcm, wav.sampleRate, 1000)).toBeGreaterThan(1200);
    } finally {
      await bs.stop();
    }
  });

  it('dials a pjsua callee over ctrl_tcp and the callee records the tone it sends', async () => {
    const tone = await makeTone(path.join(work, 'bs-dial-tone.wav'), 1000, 4000);
    const recordFile = path.join(work, 'callee-hears-baresip.wav');
    const callee = await startPjsuaCallee({ recordFile, clockRate: 8000 });
    const bs = await startBaresip({ playFile: tone });
    try {
      await bs.dial(`sip:agent@127.0.0.1:${callee.localPort}`);
      await bs.waitForEvent('CALL_ESTABLISHED', 5_000);
      await callee.waitForCallState('CONFIRMED', 2_000);
      // Let 2 s of audio flow, then end the call from baresip's side.
      await new Promise((r) => setTimeout(r, 2_000));
      await bs.hangup();
      expect((await callee.waitForDisconnect(3_000)).status).toBe(200);
      await bs.waitForEvent('CALL_CLOSED', 2_000);
    } finally {
      await bs.stop();
      await callee.quit();
    }
    const wav = readWav(recordFile);
    expect(toneDurationMs(wav.pcm, wav.sampleRate, 1000)).toBeGreaterThan(1200);
  });
});

/**
 * ai.inputGate: vad with the openai backend, against the fake Realtime server (whose own VAD is
 * energy only, like a server VAD on a noisy line): clicks, knocks and line noise while the agent
 * speaks reach the server as silence, so they neither start a turn nor cut the agent off; a person
 * speaking still does both.
 */
import { FakeRealtimeServer, toneReply } from '../fakes/FakeRealtimeServer';
import { findToneSpans } from '../helpers/audio-analysis';
import { assertBuilt, prepareDaemon, startDaemon } from '../helpers/daemon';
import { useHarnessCleanup } from '../helpers/proc';
import { RawSipClient, pcmuOffer, sdpAudioAddress } from '../helpers/rawsip';
import { RtpPeer, newSource } from '../helpers/rtp';
import { sine } from '../helpers/tone';
import { clicks, concat, knocks, mix, noise, utterance } from '../unit/vad/signals';

jest.setTimeout(90_000);
useHarnessCleanup();

const KEY = 'sk-input-gate-e2e-0123456789abcdef';

beforeAll(() => assertBuilt());
const RATE = 8000;

test('noise while the agent speaks is held back as silence; speech gets through and barges in', async () => {
  const fake = new FakeRealtimeServer({ apiKey: KEY, respond: toneReply({ toneHz: 1000, ms: 6000 }) });
  await fake.listen();
  const setup = await prepareDaemon('echo', {
    ai: { provider: 'openai', url: `${fake.baseUrl}/v1/realtime`, apiKey: KEY, model: 'gpt-realtime', inputGate: 'vad', turnDetection: { type: 'server_vad', silenceDurationMs: 400, prefixPaddingMs: 100 } },
  });
  const d = await startDaemon(setup, { name: 'input-gate' });
  const sip = await RawSipClient.open();
  const rtp = await RtpPeer.open();
  try {
    const dlg = await sip.invite({ target: { host: '127.0.0.1', port: setup.ports.sip }, body: pcmuOffer(rtp.port) });
    expect(dlg.final.status).toBe(200);
    const to = sdpAudioAddress(dlg.final.bodyText);
    const src = newSource();
    const speechStarts = (): number => fake.sessions.flatMap((s) => s.sentEvents).filter((e) => e.type === 'input_audio_buffer.speech_started').length;
    await rtp.play(src, sine(0, 2000, RATE, 0.4), to);
    // The caller speaks: one turn, and the 6 s reply starts.
    await rtp.play(src, utterance(RATE), to, true);
    await rtp.play(src, sine(0, 1500, RATE, 0.4), to, true);
    expect(speechStarts()).toBe(1);
    // Noise over the reply: held back.
    await rtp.play(src, mix(concat(clicks(1500, RATE, 120), knocks(1500, RATE, 300)), noise(3000, RATE, -40)), to, true);
    expect(speechStarts()).toBe(1);
    // Speech over the reply: it gets through and cuts the agent off.
    await rtp.play(src, utterance(RATE), to, true);
    await rtp.play(src, sine(0, 1500, RATE, 0.4), to, true);
    expect(speechStarts()).toBe(2);
    expect(fake.sessions.flatMap((s) => s.truncations).length).toBeGreaterThanOrEqual(1);
    // Heard: the opening line (cut by the first utterance), the reply to it (unbroken through the
    // noise until the caller spoke again), and the reply to that.
    const spans = findToneSpans(rtp.heard(), RATE, 1000, { frameMs: 10, maxGapMs: 60, minDurationMs: 200, minLevel: 0.02 });
    expect(spans).toHaveLength(3);
    expect(spans[1]!.endMs - spans[1]!.startMs).toBeGreaterThan(3500);
    await dlg.bye(5_000);
    dlg.close();
  } finally {
    rtp.close();
    sip.close();
    await d.close();
    await fake.close();
  }
});

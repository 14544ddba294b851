import { AudioBridge } from '../../../src/calls/AudioBridge';
import { AudioLatency } from '../../../src/calls/latency';
import { silentLogger } from '../../../src/logging/logger';
import { monotonicUs } from '../../../src/util/clock';
import { FakeAiSession, FakeCall, useFakeClock } from './fakes';
import { sine } from '../../helpers/tone';

const FRAME = 160;

useFakeClock();

function setup(batchMs = 40) {
  const call = new FakeCall({ sampleRate: 8000 });
  const session = new FakeAiSession({
    instructions: 'x',
    voice: 'marin',
    inputFormat: 'pcm',
    outputFormat: 'pcm',
    turnDetection: { type: 'server_vad' },
    noiseReduction: null,
    transcription: null,
  });
  const latency = new AudioLatency();
  const bridge = new AudioBridge({ call, session, aiFormat: 'pcm', logger: silentLogger(), options: { batchMs, latency } });
  session.ready();
  return { call, session, bridge, latency };
}

/** `n` ticks of the media clock, 20 ms apart. */
function tick(call: FakeCall, bridge: AudioBridge, n = 1): void {
  for (let i = 0; i < n; i++) {
    jest.advanceTimersByTime(20);
    call.play(FRAME);
    bridge.tick();
  }
}

describe('LatencyProbe through the AudioBridge', () => {
  test('uplink: each frame is timed from its clock tick to the append that carries it', () => {
    const { call, session, latency } = setup(40);
    const now = monotonicUs();
    // Two frames that left the clock 30 ms and 10 ms ago: one 40 ms batch, one append.
    call.speak(new Int16Array(FRAME), now - 30_000);
    expect(session.appended).toHaveLength(0);
    expect(latency.uplinkMs.count).toBe(0);
    call.speak(new Int16Array(FRAME), now - 10_000);
    expect(session.appended).toHaveLength(1);
    expect(latency.uplinkMs.count).toBe(2);
    // The clock stands still: each frame is timed at exactly its age.
    expect(latency.uplinkMs.max).toBe(30);
    expect(latency.uplinkMs.sum).toBe(40);
  });

  test('uplink starts where the RTP packet arrived: the jitter buffer delay is added, and sampled on its own', () => {
    const { call, latency } = setup(20);
    call.jitterMs = 60;
    const now = monotonicUs();
    call.speak(new Int16Array(FRAME), now - 5_000);
    expect(latency.uplinkMs.count).toBe(1);
    expect(latency.uplinkMs.max).toBe(65);
    expect(latency.jitterBufferMs.count).toBe(1);
    expect(latency.jitterBufferMs.max).toBe(60);
    // Read again at most once a second: the next batch reuses the reading.
    call.jitterMs = 100;
    call.speak(new Int16Array(FRAME), monotonicUs() - 5_000);
    expect(latency.jitterBufferMs.count).toBe(1);
    expect(latency.uplinkMs.count).toBe(2);
  });

  test('uplink: frames without a clock stamp are counted as unmeasured, not as zero', () => {
    const { call, latency } = setup(20);
    call.speak(new Int16Array(FRAME));
    expect(latency.uplinkMs.count).toBe(0);
    expect(latency.unmeasured.uplink).toBe(1);
  });

  test('downlink: audio arriving to an idle playout is timed to the tick that sends its first sample', () => {
    const { call, session, bridge, latency } = setup();
    tick(call, bridge, 2); // idle ticks
    session.audio('item_a', sine(1000, 100, 24000, 0.3));
    expect(latency.downlinkMs.count).toBe(0);
    tick(call, bridge);
    expect(latency.downlinkMs.count).toBe(1);
    // Audio queued behind it is not "added" latency: not timed.
    session.audio('item_a', sine(1000, 100, 24000, 0.3));
    tick(call, bridge, 3);
    expect(latency.downlinkMs.count).toBe(1);
    // It arrived between two ticks and went out with the next one.
    expect(latency.downlinkMs.max).toBe(20);
  });

  test('downlink: audio flushed before it played is not timed', () => {
    const { call, session, bridge, latency } = setup();
    session.audio('item_a', sine(1000, 100, 24000, 0.3));
    session.speechStarted();
    tick(call, bridge, 3);
    expect(latency.downlinkMs.count).toBe(0);
    expect(latency.unmeasured.downlink).toBe(0);
  });

  test('barge-in: counts old frames sent after speech started and times the first clean tick', () => {
    const { call, session, bridge, latency } = setup();
    session.audio('item_a', sine(1000, 1000, 24000, 0.3));
    tick(call, bridge, 5);
    session.speechStarted();
    tick(call, bridge);
    expect(latency.bargeInCutoffMs.count).toBe(1);
    expect(latency.bargeInStaleFrames.counts()[0]).toBe(1); // 0 stale frames: flushed before the next tick
    expect(latency.bargeInCutoffMs.max).toBe(20);
  });

  test('barge-in: nothing is timed when the caller was not hearing the agent', () => {
    const { call, session, bridge, latency } = setup();
    tick(call, bridge, 2);
    session.speechStarted();
    tick(call, bridge, 2);
    expect(latency.bargeInCutoffMs.count).toBe(0);
  });
});

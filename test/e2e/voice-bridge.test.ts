/**
 * The voice bridge end to end: the real addon (in-process UserAgent), the pjsua app as the caller
 * (plays a tone script, records what it hears), the fake Realtime server over a real WebSocket
 * behind the real OpenAiBackend, and the CallManager between them. Tones stand in for speech:
 * the caller "speaks" 700 Hz bursts, the greeting is 500 Hz, the model answers with tones.
 *
 * pjsua's jitter buffer delays what it records by ~0.5 s, so timings are compared as durations
 * (how long a tone lasted, how far apart two events were), never as absolute times.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CallSession } from '../../src/calls/CallSession';
import { parseNameAddr } from '../../src/util/template';
import { useHarnessCleanup } from '../helpers/proc';
import { until } from '../helpers/agent';
import {
  bridgeOptions,
  callAgent,
  managerFor,
  now,
  reportFigure,
  spansIn,
  spansInPcm,
  startBridgeRig,
  tonePrompt,
  type BridgeRig,
} from '../helpers/bridge';
import { toneReply, type RespondScript } from '../fakes/FakeRealtimeServer';

jest.setTimeout(30_000);
useHarnessCleanup();

let rig: BridgeRig;

beforeAll(async () => {
  rig = await startBridgeRig();
});

afterAll(async () => {
  await rig?.close();
});

/** A script answering response n with `steps[n]` (the last one repeats). */
function script(...steps: Parameters<RespondScript>[0] extends never ? never : ReturnType<RespondScript>[]): RespondScript {
  return (ctx) => steps[Math.min(ctx.index, steps.length - 1)] as ReturnType<RespondScript>;
}

test('the caller hears the greeting, then the model; the model hears the caller at 24 kHz with the configured session', async () => {
  rig.fake.respond = toneReply({ toneHz: 1000, ms: 1200 });
  const { manager, ended } = managerFor(rig, bridgeOptions({ greeting: { prompt: tonePrompt(500, 800) } }));
  const { caller, rec } = await callAgent(
    rig,
    'greeting',
    [{ silenceMs: 1500 }, { toneHz: 700, ms: 600 }, { silenceMs: 4000 }],
    5,
  );
  const summary = await ended;
  await caller.quit();
  await manager.close();

  // What the caller heard: the 500 Hz greeting, then the model's 1 kHz reply.
  const greet = spansIn(rec, 500);
  const reply = spansIn(rec, 1000);
  expect(greet).toHaveLength(1);
  expect(reply.length).toBeGreaterThanOrEqual(1);
  expect(greet[0].endMs - greet[0].startMs).toBeGreaterThan(700);
  expect(greet[0].endMs - greet[0].startMs).toBeLessThan(900);
  expect(reply[0].startMs).toBeGreaterThan(greet[0].endMs);
  expect(reply[0].endMs - reply[0].startMs).toBeGreaterThan(1100);

  // What the model heard: the caller's 700 Hz burst, as 24 kHz PCM.
  const session = rig.fake.sessions[rig.fake.sessions.length - 1];
  const got = session.receivedAudio();
  expect(got.sampleRate).toBe(24000);
  const burst = spansInPcm(got.samples, 24000, 700);
  expect(burst).toHaveLength(1);
  expect(burst[0].endMs - burst[0].startMs).toBeGreaterThan(520);
  expect(burst[0].endMs - burst[0].startMs).toBeLessThan(680);

  // The session was configured as asked, with the caller's From in the instructions.
  const cfg = session.config as { instructions: string; audio: { input: { format: unknown }; output: { format: unknown; voice: string } } };
  expect(cfg.audio.output.voice).toBe('marin');
  expect(cfg.audio.input.format).toEqual({ type: 'audio/pcm', rate: 24000 });
  expect(cfg.audio.output.format).toEqual({ type: 'audio/pcm', rate: 24000 });
  const from = parseNameAddr(summary.from).uri;
  expect(from).toContain('127.0.0.1');
  expect(cfg.instructions).toBe(`You answer the phone for Acme. The caller is ${from}.`);
  expect(summary.endReason).toBe('caller_hangup');
  reportFigure('realtime connect', summary.aiConnectMs ?? NaN, 'ms');
  reportFigure('AI session ready (session.updated)', summary.aiStartMs ?? NaN, 'ms');
});

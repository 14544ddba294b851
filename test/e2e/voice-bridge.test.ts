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
import { startPjsuaCallee } from '../helpers/pjsua';
import {
  RATE,
  bridgeOptions,
  callAgent,
  managerFor,
  now,
  reportFigure,
  spansIn,
  spansInPcm,
  startBridgeRig,
  stepPosition,
  stepTone,
  tonePrompt,
  type BridgeRig,
} from '../helpers/bridge';
import { toneReply, type RespondScript, type Step } from '../fakes/FakeRealtimeServer';

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
function script(...steps: Step[][]): RespondScript {
  return (ctx) => steps[Math.min(ctx.index, steps.length - 1)];
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
  expect(reply[0].endMs - reply[0].startMs).toBeGreaterThan(1000);

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

test('G.711 passthrough (pcmu): the model gets µ-law at 8 kHz and the caller hears its µ-law reply', async () => {
  rig.fake.respond = toneReply({ toneHz: 1000, ms: 800 });
  const base = bridgeOptions({ greeting: { prompt: tonePrompt(500, 300) } });
  const { manager, ended } = managerFor(rig, { ...base, ai: { ...base.ai, audioFormat: 'pcmu' } });
  const { caller, rec } = await callAgent(rig, 'pcmu', [{ silenceMs: 800 }, { toneHz: 700, ms: 500 }, { silenceMs: 4000 }], 4);
  const summary = await ended;
  await caller.quit();
  await manager.close();
  const session = rig.fake.sessions[rig.fake.sessions.length - 1];
  const cfg = session.config as { audio: { input: { format: unknown }; output: { format: unknown } } };
  expect(cfg.audio.input.format).toEqual({ type: 'audio/pcmu' });
  expect(cfg.audio.output.format).toEqual({ type: 'audio/pcmu' });
  const got = session.receivedAudio();
  expect(got.sampleRate).toBe(8000);
  const burst = spansInPcm(got.samples, 8000, 700);
  expect(burst).toHaveLength(1);
  expect(burst[0].endMs - burst[0].startMs).toBeGreaterThan(420);
  expect(spansIn(rec, 1000)).toHaveLength(1);
  expect(summary.ai.format).toBe('pcmu');
});

/** Resolve with the next live session of `manager` and record when its first model audio and first barge-in happened. */
function watch(started: Promise<CallSession>): Promise<{ session: CallSession; firstAudioAt: () => number | undefined; bargeInAt: () => number | undefined }> {
  return started.then((session) => {
    let firstAudio: number | undefined;
    let bargeIn: number | undefined;
    session.ai.on('audio', () => {
      firstAudio ??= now();
    });
    session.on('bargeIn', (r) => {
      if (!r.ignored) bargeIn ??= now();
    });
    return { session, firstAudioAt: () => firstAudio, bargeInAt: () => bargeIn };
  });
}

test('barge-in: the agent audio stops when the caller speaks, and the truncate matches what the caller heard', async () => {
  rig.fake.respond = script([{ audio: stepTone(4000) }], [{ audio: { toneHz: 300, ms: 400, amplitude: 0.3 } }]);
  const { manager, ended, started } = managerFor(rig, bridgeOptions({ greeting: { prompt: tonePrompt(500, 400) } }));
  const watched = watch(started);
  const { caller, rec } = await callAgent(
    rig,
    'bargein',
    [{ silenceMs: 1000 }, { toneHz: 700, ms: 500 }, { silenceMs: 2000 }, { toneHz: 700, ms: 600 }, { silenceMs: 3000 }],
    6,
  );
  const w = await watched;
  const summary = await ended;
  await caller.quit();
  await manager.close();

  const fakeSession = rig.fake.sessions[rig.fake.sessions.length - 1];
  expect(fakeSession.truncations).toHaveLength(1);
  expect(fakeSession.errors).toEqual([]);
  const truncate = fakeSession.truncations[0];
  const heard = stepPosition(rec);
  // The reply was cut well before its 4 s.
  expect(heard.positionMs).toBeGreaterThan(500);
  expect(heard.positionMs).toBeLessThan(3000);
  // How far into the reply the caller got equals what we told the model it heard.
  expect(Math.abs(truncate.audioEndMs - heard.positionMs)).toBeLessThanOrEqual(40);
  // The audio stopped at the flush: the time from the first reply audio to the flush (agent side)
  // equals how far the caller got (two frames plus a frame of analysis slack).
  const agentSideMs = w.bargeInAt()! - w.firstAudioAt()!;
  expect(Math.abs(agentSideMs - heard.positionMs)).toBeLessThanOrEqual(100);
  expect(summary.counters.bargeIns).toBe(1);
  expect(summary.counters.truncates).toBe(1);
  // The caller's next turn got its own answer.
  expect(spansIn(rec, 300).length).toBeGreaterThanOrEqual(1);
  reportFigure('barge-in: reply position reached by the caller', heard.positionMs, 'ms');
  reportFigure('barge-in: reply duration in the recording (receiver JB compresses)', heard.heardMs, 'ms');
  reportFigure('barge-in: truncate audio_end_ms', truncate.audioEndMs, 'ms');
  reportFigure('barge-in: truncate minus position heard', truncate.audioEndMs - heard.positionMs, 'ms');
  reportFigure('barge-in: position heard minus agent-side flush time', heard.positionMs - agentSideMs, 'ms');
  reportFigure('turn latency (speech_stopped -> first audio queued)', manager.metrics().timings.turn_latency_ms.lastMs, 'ms');
});

test('end_call: the goodbye plays to its end before the BYE', async () => {
  // Goodbye: 400 ms at 1200 Hz then 400 ms at 1800 Hz; a BYE sent early would cut the second half.
  rig.fake.respond = script(
    [{ functionCall: { name: 'end_call', arguments: { reason: 'caller said goodbye' } } }],
    [{ audio: { toneHz: 1200, ms: 400, amplitude: 0.3 } }, { audio: { toneHz: 1800, ms: 400, amplitude: 0.3 } }],
  );
  const { manager, ended } = managerFor(rig, bridgeOptions({ greeting: { prompt: tonePrompt(500, 300) } }));
  const { caller, rec } = await callAgent(rig, 'endcall', [{ silenceMs: 800 }, { toneHz: 700, ms: 400 }, { silenceMs: 8000 }], 9);
  const disc = await caller.waitForDisconnect(12_000);
  const summary = await ended;
  await caller.quit();
  await manager.close();

  expect(summary.endReason).toBe('agent_hangup');
  expect(summary.endedBy).toBe('local');
  expect(disc.status).toBe(200);
  expect(summary.tools.map((t) => t.name)).toEqual(['end_call']);
  const first = spansIn(rec, 1200);
  const second = spansIn(rec, 1800);
  expect(first).toHaveLength(1);
  expect(second).toHaveLength(1);
  expect(second[0].startMs).toBeGreaterThanOrEqual(first[0].endMs - 20);
  // The whole goodbye reached the caller (a few % of time compression by its jitter buffer aside).
  expect(second[0].endMs - second[0].startMs).toBeGreaterThan(340);
  reportFigure('end_call: goodbye heard', second[0].endMs - first[0].startMs, 'ms');
});

test('transfer_call: REFER to the configured target, which answers; our leg ends as transferred', async () => {
  const target = await startPjsuaCallee({ name: 'transfer-target', autoAnswer: 200, clockRate: RATE, codecs: ['PCMU'] });
  try {
    rig.fake.respond = script(
      [{ functionCall: { name: 'transfer_call', arguments: { target: 'sales' } } }],
      [{ audio: { toneHz: 1200, ms: 400, amplitude: 0.3 }, transcript: 'Transferring you to sales now.' }],
    );
    const { manager, ended } = managerFor(
      rig,
      bridgeOptions({ greeting: { prompt: tonePrompt(500, 300) }, tools: { transferCall: { targets: { sales: target.uri } } } }),
    );
    const { caller, rec } = await callAgent(rig, 'transfer', [{ silenceMs: 800 }, { toneHz: 700, ms: 400 }, { silenceMs: 8000 }], 10);
    await target.waitForCallState('CONFIRMED', 12_000);
    const summary = await ended;
    await caller.quit();
    await manager.close();
    expect(summary.endReason).toBe('transferred');
    expect(summary.transferredTo).toBe(target.uri);
    expect(summary.tools.map((t) => t.name)).toEqual(['transfer_call']);
    // The announcement was heard before the transfer.
    expect(spansIn(rec, 1200)).toHaveLength(1);
  } finally {
    await target.kill();
  }
});

test('a webhook tool round-trips: the server gets the arguments, the model gets the body', async () => {
  const received: unknown[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"shipped","eta":"tomorrow"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/orders`;
    const outputs: string[] = [];
    rig.fake.respond = (ctx) => {
      if (ctx.index === 0) return [{ functionCall: { name: 'lookup_order', arguments: { order_id: 'A-17' } } }];
      outputs.push(...ctx.functionOutputs.map((o) => o.output));
      return [{ audio: { toneHz: 1000, ms: 500, amplitude: 0.3 } }];
    };
    const { manager, ended } = managerFor(
      rig,
      bridgeOptions({
        greeting: { prompt: tonePrompt(500, 300) },
        tools: {
          webhooks: [
            { name: 'lookup_order', description: 'Look up an order by id', parameters: { type: 'object', properties: { order_id: { type: 'string' } } }, url },
          ],
        },
      }),
    );
    const { caller, rec } = await callAgent(rig, 'webhook', [{ silenceMs: 800 }, { toneHz: 700, ms: 400 }, { silenceMs: 4000 }], 4);
    const summary = await ended;
    await caller.quit();
    await manager.close();
    expect(received).toEqual([{ order_id: 'A-17' }]);
    expect(outputs).toEqual(['{"status":"shipped","eta":"tomorrow"}']);
    expect(summary.tools).toEqual([expect.objectContaining({ name: 'lookup_order', args: { order_id: 'A-17' } })]);
    expect(summary.tools[0].error).toBeUndefined();
    // The model's answer after the tool reached the caller.
    expect(spansIn(rec, 1000)).toHaveLength(1);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('a dropped Realtime socket mid-call is survived: the call goes on and the model speaks again', async () => {
  // The first server session answers with 1 kHz, the one after the reconnect with 1.4 kHz.
  let firstSession: unknown;
  rig.fake.respond = (ctx) => {
    firstSession ??= ctx.session;
    return [{ audio: { toneHz: ctx.session === firstSession ? 1000 : 1400, ms: 600, amplitude: 0.3 } }];
  };
  const { manager, ended } = managerFor(rig, bridgeOptions({ greeting: { prompt: tonePrompt(500, 300) } }));
  const firstIndex = rig.fake.connectionCount;
  const { caller, rec } = await callAgent(
    rig,
    'drop',
    [{ silenceMs: 800 }, { toneHz: 700, ms: 400 }, { silenceMs: 2600 }, { toneHz: 700, ms: 400 }, { silenceMs: 4000 }],
    6,
  );
  const first = await rig.fake.waitForSession(10_000, firstIndex);
  await first.waitFor((e) => e.dir === 'out' && e.event['type'] === 'response.done', 8000);
  expect(rig.fake.dropSession(first.id)).toBe(true);
  const second = await rig.fake.waitForSession(8000, firstIndex + 1);
  const summary = await ended;
  await caller.quit();
  await manager.close();
  expect(summary.endReason).toBe('caller_hangup');
  expect(summary.counters.aiReconnects).toBeGreaterThanOrEqual(1);
  // The new server session got the caller's second turn and answered it.
  expect(second.responses.length).toBeGreaterThanOrEqual(1);
  expect(spansIn(rec, 1000)).toHaveLength(1);
  expect(spansIn(rec, 1400).length).toBeGreaterThanOrEqual(1);
  expect(spansIn(rec, 1400)[0].startMs).toBeGreaterThan(spansIn(rec, 1000)[0].endMs);
});

test('a bad API key plays the fallback prompt, then hangs up cleanly', async () => {
  const { manager, ended } = managerFor(rig, bridgeOptions({ prompts: { fallback: tonePrompt(350, 700) } }), 'sk-wrong');
  const { caller, rec } = await callAgent(rig, 'badkey', [{ silenceMs: 6000 }], 8);
  const disc = await caller.waitForDisconnect(10_000);
  const summary = await ended;
  await caller.quit();
  await manager.close();
  expect(summary.endReason).toBe('ai_failure');
  expect(summary.error).toContain('invalid_api_key');
  expect(summary.answeredAt).toBeDefined();
  expect(disc.status).toBe(200);
  const fallback = spansIn(rec, 350);
  expect(fallback).toHaveLength(1);
  expect(fallback[0].endMs - fallback[0].startMs).toBeGreaterThan(600);
  expect(manager.metrics().aiErrors).toEqual({ invalid_api_key: 1 });
});

import { CallManager } from '../../../src/calls/CallManager';
import type { CallManagerOptions } from '../../../src/calls/options';
import type { CallSummary } from '../../../src/calls/types';
import { silentLogger } from '../../../src/logging/logger';
import { AiSessionError, InvalidStateError } from '../../../src/util/errors';
import type { SipAccount } from '../../../src/sip/SipAccount';
import { FakeAgent, FakeBackend, FakeCall, flush, runClock, useFakeClock } from './fakes';
import { sine } from '../../helpers/tone';

const log = silentLogger();
useFakeClock();
const AI: CallManagerOptions['ai'] = { audioFormat: 'pcm', voice: 'marin', turnDetection: { type: 'server_vad' }, noiseReduction: null, transcription: null };
const greeting = { sampleRate: 8000, pcm: sine(500, 100, 8000, 0.3) };
const account = { uri: 'sip:agent@127.0.0.1' } as unknown as SipAccount;

function setup(over: Partial<CallManagerOptions> = {}) {
  const agent = new FakeAgent();
  const backend = new FakeBackend();
  let n = 0;
  const manager = new CallManager({
    agent,
    backend,
    logger: log,
    newId: () => `call-${++n}`,
    options: { ai: AI, instructions: 'Be brief.', greeting: { prompt: greeting }, audio: { hangupTailMs: 0 }, ...over },
  });
  const ended: CallSummary[] = [];
  const rejected: CallSummary[] = [];
  manager.on('callEnded', (s) => ended.push(s));
  manager.on('callRejected', (s) => rejected.push(s));
  return { agent, backend, manager, ended, rejected };
}

describe('CallManager: admission', () => {
  test('admits calls up to maxConcurrent and answers the next with 486 Busy Here', async () => {
    const { agent, manager, rejected } = setup({ calls: { maxConcurrent: 2 } });
    const calls = [new FakeCall(), new FakeCall(), new FakeCall()];
    for (const c of calls) agent.ring(c);
    await flush();
    expect(manager.active).toBe(2);
    expect(calls[0].actions).toContain('answer');
    expect(calls[2].actions).toEqual(['reject 486']);
    expect(rejected).toEqual([expect.objectContaining({ endReason: 'rejected_busy', sipStatus: 486 })]);
    expect(manager.metrics().callsRejected.busy).toBe(1);
  });

  test('while full, and while draining, has the SIP layer refuse new INVITEs before they become calls', async () => {
    const { agent, manager } = setup({ calls: { maxConcurrent: 2 } });
    const calls = [new FakeCall(), new FakeCall()];
    agent.ring(calls[0]);
    await flush();
    expect(agent.refusals).toEqual([]);
    agent.ring(calls[1]);
    await flush();
    expect(agent.refusals).toEqual([486]);
    calls[0].remoteHangup();
    await flush();
    expect(agent.refusals).toEqual([486, 0]);
    void manager.drain(0);
    await flush();
    expect(agent.refusals).toEqual([486, 0, 503]);
  });

  test('with a busy prompt, the SIP layer keeps offering calls over capacity (they hear the prompt)', async () => {
    const { agent } = setup({ calls: { maxConcurrent: 1 }, prompts: { busy: { sampleRate: 8000, pcm: sine(450, 100, 8000, 0.3) } } });
    agent.ring(new FakeCall());
    await flush();
    expect(agent.refusals).toEqual([]);
  });

  test('plays the busy prompt instead of 486 when one is configured', async () => {
    const { agent, manager, rejected } = setup({ calls: { maxConcurrent: 1 }, prompts: { busy: { sampleRate: 8000, pcm: sine(450, 100, 8000, 0.3) } } });
    agent.ring(new FakeCall());
    const over = new FakeCall();
    agent.ring(over);
    await flush();
    expect(over.actions).toEqual(['answer']);
    await runClock(agent, [over], 400);
    await flush(150);
    expect(over.actions).toEqual(['answer', 'hangup']);
    expect(over.heardSamples()).toBe(800);
    expect(rejected).toEqual([expect.objectContaining({ endReason: 'rejected_busy' })]);
    expect(manager.active).toBe(1);
  });

  test('refuses callers outside the allow-list with 403, checking the source address without its port', async () => {
    const asked: { uri: string; address?: string }[] = [];
    const { agent, manager, rejected } = setup({
      calls: {
        allows: (c) => {
          asked.push(c);
          return c.address === '10.0.0.5';
        },
      },
    });
    const stranger = new FakeCall({ srcAddress: '192.0.2.99:5060' });
    const friend = new FakeCall({ srcAddress: '10.0.0.5:5062' });
    agent.ring(stranger);
    agent.ring(friend);
    await flush();
    expect(stranger.actions).toEqual(['reject 403']);
    expect(friend.actions).toContain('answer');
    expect(asked[0]).toEqual({ uri: stranger.info.remoteUri, address: '192.0.2.99' });
    expect(rejected.map((r) => r.endReason)).toEqual(['rejected_forbidden']);
    expect(manager.active).toBe(1);
  });

  test('an allow-list that throws refuses the call', async () => {
    const { agent } = setup({
      calls: {
        allows: () => {
          throw new Error('boom');
        },
      },
    });
    const c = new FakeCall();
    agent.ring(c);
    await flush();
    expect(c.actions).toEqual(['reject 403']);
  });

  test('refuses new calls with 503 while draining', async () => {
    const { agent, manager, rejected } = setup();
    void manager.drain(10);
    const c = new FakeCall();
    agent.ring(c);
    await flush();
    expect(c.actions).toEqual(['reject 503']);
    expect(rejected[0].endReason).toBe('rejected_draining');
  });
});

describe('CallManager: registry, events and metrics', () => {
  test('emits callStarted, stateChange and callEnded with the summary; keeps recent() bounded', async () => {
    const { agent, backend, manager, ended } = setup({ limits: { recentCalls: 2 } });
    const started: string[] = [];
    const states: string[] = [];
    manager.on('callStarted', (i) => started.push(i.callId));
    manager.on('stateChange', (e) => states.push(`${e.callId}:${e.state.name}`));
    const calls: FakeCall[] = [];
    for (let i = 0; i < 3; i++) {
      const c = new FakeCall();
      calls.push(c);
      agent.ring(c);
      await flush();
      backend.last.ready();
      await flush();
      expect(manager.get(`call-${i + 1}`)).toBeDefined();
      c.remoteHangup();
      await flush();
    }
    expect(started).toEqual(['call-1', 'call-2', 'call-3']);
    expect(states).toContain('call-1:connecting');
    expect(states).toContain('call-1:ended');
    expect(ended.map((s) => s.callId)).toEqual(['call-1', 'call-2', 'call-3']);
    expect(manager.recent().map((s) => s.callId)).toEqual(['call-2', 'call-3']);
    expect(manager.active).toBe(0);
    expect(manager.metrics().callsEnded.caller_hangup).toBe(3);
    expect(manager.metrics().callsTotal).toBe(3);
  });

  test('list() shows live calls; hangup(id) ends one as admin_hangup', async () => {
    const { agent, backend, manager, ended } = setup();
    agent.ring(new FakeCall());
    await flush();
    backend.last.ready();
    await flush();
    expect(manager.list()).toEqual([expect.objectContaining({ callId: 'call-1', direction: 'inbound' })]);
    expect(await manager.hangup('call-1')).toBe(true);
    expect(await manager.hangup('nope')).toBe(false);
    expect(ended[0].endReason).toBe('admin_hangup');
    expect(manager.list()).toEqual([]);
  });

  test('metrics sum counters of live and ended calls and count AI errors by code and timings', async () => {
    const { agent, backend, manager } = setup();
    const timings: string[] = [];
    manager.on('timing', (t) => timings.push(t.metric));
    const c1 = new FakeCall();
    agent.ring(c1);
    await flush();
    backend.last.ready();
    await runClock(agent, [c1], 200);
    const ai1 = backend.last;
    ai1.audio('a1', sine(1000, 500, 24000, 0.3));
    await runClock(agent, [c1], 100);
    ai1.speechStarted();
    ai1.serverError('invalid_value');
    expect(manager.metrics().counters.bargeIns).toBe(1);
    c1.remoteHangup();
    await flush();
    const c2 = new FakeCall();
    agent.ring(c2);
    await flush();
    backend.last.failStart(new AiSessionError('refused', 'invalid_api_key'));
    // The greeting plays out before the hang-up.
    await runClock(agent, [c2], 300);
    const m = manager.metrics();
    expect(m.counters.bargeIns).toBe(1);
    expect(m.counters.truncates).toBe(1);
    expect(m.aiErrors).toEqual({ invalid_value: 1, invalid_api_key: 1 });
    expect(m.timings.ai_connect_ms).toEqual({ count: 1, sumMs: 12, maxMs: 12, lastMs: 12 });
    expect(m.callsEnded.ai_failure).toBe(1);
    expect(timings).toEqual(['ai_connect_ms', 'ai_start_ms']);
  });

  test('reload() applies to new calls only', async () => {
    const { agent, backend, manager } = setup();
    agent.ring(new FakeCall());
    await flush();
    expect(backend.last.options.instructions).toBe('Be brief.');
    manager.reload({ ai: { ...AI, voice: 'cedar' }, instructions: 'Be chatty.' });
    agent.ring(new FakeCall());
    await flush();
    expect(backend.sessions.map((s) => [s.options.instructions, s.options.voice])).toEqual([
      ['Be brief.', 'marin'],
      ['Be chatty.', 'cedar'],
    ]);
  });
});

describe('CallManager: outbound, drain, close', () => {
  test('placeCall() sends the INVITE with headers and runs the same AI conversation', async () => {
    const { agent, backend, manager } = setup({ calls: { outboundAccount: account } });
    const session = await manager.placeCall('sip:bob@example.com', { headers: { 'X-Campaign': 'spring' }, instructions: 'Remind Bob of his appointment.' });
    expect(agent.placed).toEqual([{ uri: 'sip:bob@example.com', headers: { 'X-Campaign': 'spring' }, call: expect.anything() }]);
    expect(backend.last.options.instructions).toBe('Remind Bob of his appointment.');
    expect(session.direction).toBe('outbound');
    backend.last.ready();
    agent.placed[0].call.remoteAnswer();
    await flush(20);
    expect(session.state.name).toBe('conversing');
    expect(backend.last.responses).toHaveLength(1);
    expect(manager.metrics().callsOutbound).toBe(1);
  });

  test('placeCall() without an account, while draining or at capacity throws InvalidStateError', async () => {
    const { manager } = setup({ calls: { maxConcurrent: 1 } });
    await expect(manager.placeCall('sip:x@y')).rejects.toBeInstanceOf(InvalidStateError);
    await manager.placeCall('sip:x@y', { account });
    await expect(manager.placeCall('sip:z@y', { account })).rejects.toThrow(/capacity/);
    void manager.drain(0);
    await expect(manager.placeCall('sip:z@y', { account })).rejects.toThrow(/draining/);
  });

  test('drain() waits for calls to finish within the timeout', async () => {
    const { agent, backend, manager, ended } = setup();
    const c = new FakeCall();
    agent.ring(c);
    await flush();
    backend.last.ready();
    await flush();
    const drained = manager.drain(1000);
    await flush(20);
    c.remoteHangup();
    await drained;
    expect(ended[0].endReason).toBe('caller_hangup');
  });

  test('drain() past its timeout plays the goodbye prompt and hangs up the rest (shutdown)', async () => {
    const { agent, backend, manager, ended } = setup({ prompts: { goodbye: { sampleRate: 8000, pcm: sine(400, 100, 8000, 0.3) } } });
    const c = new FakeCall();
    agent.ring(c);
    await flush();
    backend.last.ready();
    await runClock(agent, [c], 200);
    const drained = manager.drain(30);
    await flush(40);
    const before = c.heardSamples();
    await runClock(agent, [c], 300);
    await drained;
    expect(c.heardSamples() - before).toBeGreaterThanOrEqual(800);
    expect(c.actions[c.actions.length - 1]).toBe('hangup');
    expect(ended[0].endReason).toBe('shutdown');
  });

  test('close() hangs up every call, unsubscribes from the agent and is idempotent', async () => {
    const { agent, backend, manager, ended } = setup();
    const c = new FakeCall();
    agent.ring(c);
    await flush();
    backend.last.ready();
    await flush();
    await Promise.all([manager.close(), manager.close()]);
    expect(manager.closed).toBe(true);
    expect(ended.map((s) => s.endReason)).toEqual(['shutdown']);
    expect(agent.listenerCount('incomingCall')).toBe(0);
    expect(agent.listenerCount('tick')).toBe(0);
  });
});

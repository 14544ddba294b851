import { CallSession } from '../../../src/calls/CallSession';
import { resolveCallOptions, type CallManagerOptions } from '../../../src/calls/options';
import { canTransition } from '../../../src/calls/state';
import type { CallSummary, TranscriptEntry } from '../../../src/calls/types';
import { silentLogger } from '../../../src/logging/logger';
import { AiSessionError } from '../../../src/util/errors';
import { FakeBackend, FakeCall, flush, useFakeClock } from './fakes';
import { sine } from '../../helpers/tone';

const log = silentLogger();
useFakeClock();
const AI: CallManagerOptions['ai'] = {
  audioFormat: 'pcm',
  voice: 'marin',
  turnDetection: { type: 'server_vad' },
  noiseReduction: null,
  transcription: null,
  model: 'gpt-realtime',
};

function make(over: Partial<CallManagerOptions> = {}, callOpts: ConstructorParameters<typeof FakeCall>[0] = {}) {
  const backend = new FakeBackend();
  const call = new FakeCall(callOpts);
  const options = resolveCallOptions({
    ai: AI,
    instructions: 'Talking to {{callerName}} ({{caller}}), customer {{header.X-Customer-Id}}, for {{var.company}}.',
    openingLine: 'Greet {{callerName}}.',
    variables: { company: 'Acme' },
    audio: { hangupTailMs: 0 },
    ...over,
  });
  const session = new CallSession({ id: 'c1', call, backend, options, logger: log });
  const states: string[] = [];
  session.on('stateChange', (next) => states.push(next.name));
  let summary: CallSummary | undefined;
  session.on('ended', (s) => (summary = s));
  const ai = () => backend.last;
  return { backend, call, session, states, ai, summary: () => summary };
}

/** Run the media clock in 20 ms steps until `cond` holds (or fail after maxMs of simulated time). */
async function clockUntil(call: FakeCall, session: CallSession, cond: () => boolean, maxMs = 10_000): Promise<void> {
  for (let t = 0; t < maxMs; t += 20) {
    if (cond()) return;
    if (!call.ended) call.play(call.sampleRate / 50);
    session.tick();
    await flush(20);
  }
  if (!cond()) throw new Error('condition not reached on the simulated clock');
}

const greeting = { sampleRate: 8000, pcm: sine(500, 200, 8000, 0.3) };
const fallback = { sampleRate: 8000, pcm: sine(300, 300, 8000, 0.3) };
const goodbye = { sampleRate: 8000, pcm: sine(400, 100, 8000, 0.3) };

describe('call state machine', () => {
  test('allows only forward transitions; ended is final', () => {
    expect(canTransition('ringing', 'connecting')).toBe(true);
    expect(canTransition('ringing', 'ended')).toBe(true);
    expect(canTransition('greeting', 'conversing')).toBe(true);
    expect(canTransition('conversing', 'greeting')).toBe(false);
    expect(canTransition('ending', 'conversing')).toBe(false);
    expect(canTransition('ended', 'ringing')).toBe(false);
  });
});

describe('CallSession: inbound flow', () => {
  test('starts the AI session at once, rings and answers in parallel, plays the greeting, then converses', async () => {
    const { call, session, states, ai } = make({ greeting: { prompt: greeting } });
    const started = session.start();
    expect(ai().startCalls).toBe(1);
    await flush();
    expect(call.actions).toEqual(['ringing', 'answer']);
    expect(session.state.name).toBe('greeting');
    ai().ready();
    await clockUntil(call, session, () => session.state.name === 'conversing');
    await started;
    expect(states).toEqual(['connecting', 'greeting', 'conversing']);
    // A greeting was played: the model waits for the caller.
    expect(ai().responses).toEqual([]);
    expect(call.heardSamples()).toBeGreaterThanOrEqual(1600);
  });

  test('never dead air: greeting over while the AI is still starting stays in greeting, then converses once it is up', async () => {
    const { call, session, ai } = make({ greeting: { prompt: greeting } });
    void session.start();
    await clockUntil(call, session, () => call.heardSamples() >= 1600);
    await flush(10);
    expect(session.state.name).toBe('greeting');
    // What the caller says meanwhile is kept for the model.
    for (let i = 0; i < 10; i++) call.speak(new Int16Array(160).fill(2000));
    expect(ai().appended).toHaveLength(0);
    ai().ready();
    await flush();
    expect(session.state.name).toBe('conversing');
    expect(ai().appended.length).toBeGreaterThan(0);
  });

  test('without a greeting the answer waits for the AI and the model speaks first with the opening line', async () => {
    const { call, session, ai, states } = make();
    void session.start();
    await flush(20);
    expect(call.actions).toEqual(['ringing']);
    expect(session.state.name).toBe('ringing');
    ai().ready();
    await flush();
    expect(call.actions).toEqual(['ringing', 'answer']);
    expect(states).toEqual(['connecting', 'conversing']);
    expect(ai().responses).toEqual([{ instructions: 'Greet Ann Caller.' }]);
  });

  test('waits the configured ring delay before answering', async () => {
    const { call, session, ai } = make({ greeting: { prompt: greeting }, calls: { ringingMs: 80 } });
    ai();
    void session.start();
    await flush(30);
    expect(call.actions).toEqual(['ringing']);
    await flush(100);
    expect(call.actions).toEqual(['ringing', 'answer']);
  });

  test('renders the instructions per call with the caller, INVITE headers and variables', () => {
    const { ai } = make();
    expect(ai().options.instructions).toBe('Talking to Ann Caller (sip:ann@pbx.example.com), customer C-42, for Acme.');
    expect(ai().options.inputFormat).toBe('pcm');
    expect(ai().options.voice).toBe('marin');
  });

  test('falls back to pcm when G.711 is configured on a 16 kHz bridge', () => {
    const { ai } = make({ ai: { ...AI, audioFormat: 'pcmu' } }, { sampleRate: 16000 });
    expect(ai().options.inputFormat).toBe('pcm');
  });

  test('the caller hanging up ends the call with caller_hangup and the SIP cause', async () => {
    const { call, session, ai, summary } = make({ greeting: { prompt: greeting } });
    void session.start();
    ai().ready();
    await clockUntil(call, session, () => session.state.name === 'conversing');
    call.remoteHangup(200, 'Normal call clearing');
    await flush();
    expect(session.state).toEqual({ name: 'ended', reason: 'caller_hangup', sipStatus: 200, sipReason: 'Normal call clearing' });
    expect(summary()?.endReason).toBe('caller_hangup');
    expect(summary()?.endedBy).toBe('remote');
    expect(ai().closed).toBe(true);
    expect(session.closed).toBe(true);
  });

  test('a caller who cancels while ringing ends the call without an answer', async () => {
    const { call, session, summary } = make();
    void session.start();
    await flush();
    call.remoteHangup(487, 'Request Terminated');
    await flush();
    expect(call.actions).toEqual(['ringing']);
    expect(summary()).toMatchObject({ endReason: 'caller_hangup', sipStatus: 487, durationMs: 0 });
  });
});

describe('CallSession: AI failures', () => {
  test('a bad key at start plays the fallback prompt, then hangs up (ai_failure)', async () => {
    const { call, session, ai, summary } = make({ prompts: { fallback } });
    const errors: { code: string; fatal: boolean }[] = [];
    session.on('aiError', (e) => errors.push(e));
    void session.start();
    ai().failStart(new AiSessionError('Realtime upgrade refused [status:401, code:invalid_api_key]', 'invalid_api_key'));
    await flush();
    expect(call.actions).toEqual(['ringing', 'answer']);
    await clockUntil(call, session, () => call.ended);
    // The BYE comes only after the whole prompt played.
    expect(call.heardSamples()).toBeGreaterThanOrEqual(2400);
    expect(call.actions[call.actions.length - 1]).toBe('hangup');
    await flush();
    expect(summary()).toMatchObject({ endReason: 'ai_failure', error: expect.stringContaining('invalid_api_key') });
    expect(errors).toEqual([expect.objectContaining({ code: 'invalid_api_key', fatal: true })]);
  });

  test('a bad key with no fallback prompt rejects the call with 503', async () => {
    const { call, session, ai, summary } = make();
    void session.start();
    ai().failStart(new AiSessionError('refused', 'rate_limited'));
    await flush(10);
    expect(call.actions).toEqual(['ringing', 'reject 503']);
    expect(summary()).toMatchObject({ endReason: 'ai_failure', sipStatus: 503 });
  });

  test('the greeting still plays in full before the fallback when the AI fails during it', async () => {
    const { call, session, ai } = make({ greeting: { prompt: greeting }, prompts: { fallback } });
    void session.start();
    await flush();
    ai().failStart(new AiSessionError('unreachable', 'unreachable'));
    await clockUntil(call, session, () => call.ended);
    expect(call.heardSamples()).toBeGreaterThanOrEqual(1600 + 2400);
  });

  test('an AI session that never finishes starting counts as a failure after aiStartTimeoutMs', async () => {
    const { call, session, ai, summary } = make({ calls: { aiStartTimeoutMs: 50 } });
    void session.start();
    await flush(100);
    expect(call.actions).toEqual(['ringing', 'reject 503']);
    expect(summary()).toMatchObject({ endReason: 'ai_failure', error: expect.stringContaining('timed out') });
    expect(ai().closed).toBe(true);
  });

  test('the AI dying mid-call plays the fallback and hangs up', async () => {
    const { call, session, ai, summary } = make({ greeting: { prompt: greeting }, prompts: { fallback } });
    void session.start();
    ai().ready();
    await clockUntil(call, session, () => session.state.name === 'conversing');
    const before = call.heardSamples();
    ai().die(new AiSessionError('AI session reconnect failed', 'reconnect_failed'));
    await clockUntil(call, session, () => call.ended);
    expect(call.heardSamples() - before).toBeGreaterThanOrEqual(2400);
    await flush();
    expect(summary()?.endReason).toBe('ai_failure');
  });

  test('a model that sends nothing after the caller spoke: after aiReplyTimeoutMs the fallback plays and the call ends (ai_stalled)', async () => {
    const { call, session, ai, summary } = make({ prompts: { fallback }, calls: { aiReplyTimeoutMs: 60 } });
    const errors: { code: string; fatal: boolean }[] = [];
    session.on('aiError', (e) => errors.push(e));
    void session.start();
    ai().ready();
    await clockUntil(call, session, () => session.state.name === 'conversing');
    ai().speechStopped('item_u1');
    await flush(150);
    await clockUntil(call, session, () => call.ended);
    await flush();
    expect(summary()).toMatchObject({ endReason: 'ai_failure', error: expect.stringContaining('ai.replyTimeoutMs') });
    expect(errors).toEqual([expect.objectContaining({ code: 'ai_stalled', fatal: true })]);
  });

  test('a model that chooses its replies (GPT-Live) is not watched after a caller turn, only after a response started', async () => {
    const { call, session, ai, summary } = make({ prompts: { fallback }, calls: { aiReplyTimeoutMs: 60 } });
    void session.start();
    ai().repliesToEveryTurn = false;
    ai().ready();
    await clockUntil(call, session, () => session.state.name === 'conversing');
    ai().speechStopped('item_u1');
    await flush(150);
    expect(call.ended).toBe(false);
    expect(summary()).toBeUndefined();
    ai().responseCreated('resp_1');
    await flush(150);
    await clockUntil(call, session, () => call.ended);
    await flush();
    expect(summary()).toMatchObject({ endReason: 'ai_failure', error: expect.stringContaining('after a response started') });
  });

  test('the reply watchdog is quiet while the model answers, when the caller speaks again, and with aiReplyTimeoutMs 0', async () => {
    const { call, session, ai, summary } = make({ calls: { aiReplyTimeoutMs: 60 } });
    void session.start();
    ai().ready();
    await clockUntil(call, session, () => session.state.name === 'conversing');
    ai().speechStopped('item_u1');
    ai().responseCreated('resp_1');
    ai().audio('item_a1', new Int16Array(240));
    ai().speechStopped('item_u2');
    ai().speechStarted('item_u3');
    await flush(150);
    expect(call.ended).toBe(false);
    expect(summary()).toBeUndefined();
    const off = make({ calls: { aiReplyTimeoutMs: 0 } });
    void off.session.start();
    off.ai().ready();
    await clockUntil(off.call, off.session, () => off.session.state.name === 'conversing');
    off.ai().speechStopped('item_u1');
    await flush(150);
    expect(off.call.ended).toBe(false);
    await session.close();
    await off.session.close();
  });

  test('onAiFailure transfer: the fallback plays, then REFER to the configured URI, then BYE', async () => {
    const { call, session, ai, summary } = make({
      greeting: { prompt: greeting },
      prompts: { fallback },
      calls: { onAiFailure: 'transfer', failureTransferTo: 'sip:desk@pbx.example.com' },
    });
    void session.start();
    ai().ready();
    await clockUntil(call, session, () => session.state.name === 'conversing');
    ai().die(new AiSessionError('gone', 'connection_lost'));
    await clockUntil(call, session, () => call.ended);
    expect(call.actions.slice(-2)).toEqual(['transfer sip:desk@pbx.example.com', 'hangup']);
    await flush();
    expect(summary()).toMatchObject({ endReason: 'ai_failure', transferredTo: 'sip:desk@pbx.example.com' });
  });
});

describe('CallSession: limits, DTMF, transcripts', () => {
  test('hangs up at the maximum duration, after the goodbye prompt', async () => {
    const { call, session, ai, summary } = make({ greeting: { prompt: greeting }, prompts: { goodbye }, calls: { maxDurationMs: 100 } });
    void session.start();
    ai().ready();
    await flush(150);
    expect(session.state).toEqual({ name: 'ending', reason: 'max_duration' });
    await clockUntil(call, session, () => call.ended);
    await flush();
    expect(summary()?.endReason).toBe('max_duration');
    // The greeting was cut for the goodbye: 100 ms of goodbye tone reached the caller at the end.
    const last = call.heard.slice(-5).reduce((s, c) => s + c.length, 0);
    expect(last).toBeGreaterThan(0);
  });

  test('DTMF digits go to the model as text, and one response follows a burst of digits', async () => {
    const { call, session, ai } = make({ calls: { dtmf: { template: 'Key {{digit}} from {{callerNumber}}', respondDelayMs: 30 } } });
    void session.start();
    ai().ready();
    await flush();
    const before = ai().responses.length;
    call.dtmf('4');
    call.dtmf('2');
    expect(ai().userTexts).toEqual(['Key 4 from ann', 'Key 2 from ann']);
    await flush(60);
    expect(ai().responses.length).toBe(before + 1);
    expect(session.transcript.filter((t) => t.kind === 'dtmf').map((t) => t.text)).toEqual(['4', '2']);
    expect(session.counters.dtmfDigits).toBe(2);
  });

  test('DTMF to the model can be switched off', async () => {
    const { call, session, ai } = make({ calls: { dtmf: { toModel: false } } });
    void session.start();
    ai().ready();
    await flush();
    call.dtmf('1');
    expect(ai().userTexts).toEqual([]);
    expect(session.counters.dtmfDigits).toBe(1);
  });

  test('keeps final transcript lines of both sides with timestamps, emits them, and marks interrupted agent lines', async () => {
    const { call, session, ai } = make({ greeting: { prompt: greeting } });
    const seen: TranscriptEntry[] = [];
    session.on('transcript', (t) => seen.push(t));
    void session.start();
    ai().ready();
    await clockUntil(call, session, () => session.state.name === 'conversing');
    ai().transcript('user', 'u1', 'Where is my order?');
    ai().audio('a1', sine(1000, 1000, 24000, 0.3));
    ai().transcript('assistant', 'a1', 'Let me check that for you, one moment please.');
    await clockUntil(call, session, () => call.heardSamples() > 1600 + 800);
    ai().speechStarted('u2');
    expect(seen.map((t) => [t.speaker, t.text])).toEqual([
      ['caller', 'Where is my order?'],
      ['agent', 'Let me check that for you, one moment please.'],
    ]);
    const agentLine = session.transcript[1];
    expect(agentLine.interrupted).toBe(true);
    expect(agentLine.heardMs).toBeGreaterThanOrEqual(80);
    expect(agentLine.heardMs).toBeLessThan(1000);
    expect(agentLine.at).toBeInstanceOf(Date);
    expect(agentLine.offsetMs).toBeGreaterThanOrEqual(0);
  });

  test('the transcript is bounded; evictions are counted', async () => {
    const { session, ai } = make({ limits: { transcriptLines: 3 } });
    for (let i = 0; i < 5; i++) ai().transcript('user', `u${i}`, `line ${i}`);
    expect(session.transcript.map((t) => t.text)).toEqual(['line 2', 'line 3', 'line 4']);
    expect(session.counters.transcriptEvicted).toBe(2);
  });
});

describe('CallSession: recording', () => {
  test('the recorder gets the call info; one that cannot start leaves the call unrecorded, not dropped', async () => {
    const seen: string[] = [];
    const { call, session, ai } = make({
      greeting: { prompt: greeting },
      recorder: (info) => {
        seen.push(info.callId);
        throw new Error('disk full');
      },
    });
    void session.start();
    ai().ready();
    await clockUntil(call, session, () => session.state.name === 'conversing');
    expect(seen).toEqual(['c1']);
    expect(call.actions).toContain('answer');
  });
});

describe('CallSession: ending on request', () => {
  test('hangup() drops queued agent audio and sends BYE at once', async () => {
    const { call, session, ai, summary } = make({ greeting: { prompt: greeting } });
    void session.start();
    ai().ready();
    await clockUntil(call, session, () => session.state.name === 'conversing');
    ai().audio('a1', sine(1000, 2000, 24000, 0.3));
    await session.hangup();
    expect(call.actions[call.actions.length - 1]).toBe('hangup');
    expect(summary()).toMatchObject({ endReason: 'admin_hangup', sipStatus: 200 });
  });

  test('shutdown() plays the goodbye prompt before the BYE', async () => {
    const { call, session, ai, summary } = make({ greeting: { prompt: greeting }, prompts: { goodbye } });
    void session.start();
    ai().ready();
    await clockUntil(call, session, () => session.state.name === 'conversing');
    const before = call.heardSamples();
    const done = session.shutdown();
    await clockUntil(call, session, () => call.ended);
    await done;
    expect(call.heardSamples() - before).toBeGreaterThanOrEqual(800);
    expect(summary()?.endReason).toBe('shutdown');
  });

  test('the summary carries ids, times, AI details, tools, usage and counters', async () => {
    const { call, session, ai, summary } = make({ greeting: { prompt: greeting } });
    void session.start();
    ai().ready();
    await clockUntil(call, session, () => session.state.name === 'conversing');
    ai().usageValue = { ...ai().usage, responses: 2, totalTokens: 1000, costUsd: 0.05 };
    ai().serverError('invalid_value');
    call.remoteHangup();
    await flush();
    const s = summary()!;
    expect(s).toMatchObject({
      callId: 'c1',
      sipCallId: call.info.sipCallId,
      direction: 'inbound',
      from: call.info.remoteUri,
      to: call.info.localUri,
      remoteAddress: '192.0.2.10:5060',
      endReason: 'caller_hangup',
      ai: { backend: 'fake', model: 'gpt-realtime', voice: 'marin', format: 'pcm' },
      usage: expect.objectContaining({ totalTokens: 1000, costUsd: 0.05 }),
      aiConnectMs: 12,
      aiStartMs: 34,
    });
    expect(s.answeredAt).toBeInstanceOf(Date);
    expect(s.endedAt!.getTime()).toBeGreaterThanOrEqual(s.answeredAt!.getTime());
    expect(s.counters.aiErrors).toBe(1);
    expect(s.tools).toEqual([]);
  });
});

describe('CallSession: outbound', () => {
  test('starts the AI while the INVITE is out, then the model speaks first once answered', async () => {
    const backend = new FakeBackend();
    const call = new FakeCall({ direction: 'outbound', remoteUri: 'sip:bob@example.com' });
    const options = resolveCallOptions({ ai: AI, instructions: 'Calling {{callee}}.', openingLine: 'Introduce yourself.', audio: { hangupTailMs: 0 } });
    const session = new CallSession({ id: 'o1', call, backend, options, logger: log });
    void session.start();
    expect(backend.last.startCalls).toBe(1);
    expect(backend.last.options.instructions).toBe('Calling sip:bob@example.com.');
    backend.last.ready();
    await flush(10);
    expect(session.state.name).toBe('ringing');
    call.remoteAnswer();
    await flush(20);
    expect(session.state.name).toBe('conversing');
    expect(backend.last.responses).toEqual([{ instructions: 'Introduce yourself.' }]);
  });

  test('a refused outbound call ends as not_answered', async () => {
    const backend = new FakeBackend();
    const call = new FakeCall({ direction: 'outbound' });
    const options = resolveCallOptions({ ai: AI, instructions: 'x', audio: { hangupTailMs: 0 } });
    const session = new CallSession({ id: 'o2', call, backend, options, logger: log });
    let reason: string | undefined;
    session.on('ended', (s) => (reason = s.endReason));
    void session.start();
    call.remoteHangup(486, 'Busy Here');
    await flush(20);
    expect(reason).toBe('not_answered');
  });
});

/**
 * LiveSession against a loopback WebSocket peer that plays GPT-Live's side by hand, with exchanges
 * shaped as the Live reference gives them: session.start / session.started, model audio and
 * transcripts, a barge-in, tool calls under Responses and client delegation, errors and drops.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../../../src/logging/logger';
import { AiSessionError } from '../../../src/util/errors';
import { LiveSession, type LiveOptions } from '../../../src/ai/live/LiveSession';
import { LiveBackend } from '../../../src/ai/live/LiveBackend';
import type { AiSessionOptions, ResponseOutcome, ToolCallRecord } from '../../../src/ai/types';
import { ScriptedServer, type Peer } from './scriptedServer';

const log = silentLogger();
let server: ScriptedServer;
const sessions: LiveSession[] = [];

const BASE: AiSessionOptions = {
  instructions: 'You answer the phone for Example Ltd.',
  voice: 'marin',
  inputFormat: 'pcm',
  outputFormat: 'pcm',
  turnDetection: { type: 'server_vad' },
  noiseReduction: null,
  transcription: null,
};

function session(live: Partial<LiveOptions> = {}, opts: Partial<AiSessionOptions> = {}): LiveSession {
  const s = new LiveSession(
    {
      session: { ...BASE, ...opts },
      connection: { url: server.url('/v1/live/sessions'), apiKey: 'sk-live-test', pingIntervalMs: 0, connectTimeoutMs: 2000 },
      live: { model: 'gpt-live-1', delegation: { type: 'responses', model: 'gpt-5.5' }, turnGapMs: 150, closeGraceMs: 0, replyTimeoutMs: 1500, ...live },
    },
    log,
  );
  sessions.push(s);
  return s;
}

/** Answer session.start with session.started echoing its audio, as the service resolves it. */
async function accept(peer: Peer, id = `live_${peer.index}`, expiresInS = 3600): Promise<Record<string, any>> {
  const start = await peer.next('session.start');
  peer.send({
    type: 'session.started',
    event_id: `sev_${peer.index}`,
    client_event_id: start.event_id,
    session: { id, model: start.session.model, status: 'active', expires_at: Math.floor(Date.now() / 1000) + expiresInS, audio: start.session.audio, delegation: start.session.delegation },
  });
  return start;
}

async function started(s: LiveSession, n = 1): Promise<{ peer: Peer; start: Record<string, any> }> {
  const p = s.start();
  const peer = await server.peer(n);
  const start = await accept(peer);
  await p;
  return { peer, start };
}

/** 24 kHz PCM16: `ms` of a 440 Hz tone (voiced) or of silence, base64. */
function pcm(ms: number, voiced = true): string {
  const n = Math.round(ms * 24);
  const b = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) b.writeInt16LE(voiced ? Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 24000)) : 0, i * 2);
  return b.toString('base64');
}

function until<T>(s: LiveSession, event: 'responseDone' | 'speechStarted' | 'toolCall' | 'died' | 'reconnected' | 'error', timeoutMs = 3000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs);
    s.once(event as 'responseDone', ((v: unknown) => {
      clearTimeout(timer);
      resolve(v as T);
    }) as never);
  });
}

beforeEach(async () => {
  server = await ScriptedServer.start();
  server.behaviour = { silent: true };
});
afterEach(async () => {
  for (const s of sessions.splice(0)) s.close();
  await server.stop();
});

describe('LiveSession start', () => {
  it('asks the playout for a 200 ms prebuffer unless configured otherwise (its output pacing is not documented)', () => {
    expect(session().playoutPrebufferMs).toBe(200);
    expect(session({ prebufferMs: 0 }).playoutPrebufferMs).toBe(0);
  });

  it('sends session.start first with the model, instructions, format, voice and delegation, and becomes ready on session.started', async () => {
    const s = session({ delegation: { type: 'responses', model: 'gpt-5.5', reasoningEffort: 'low', maxOutputTokens: 800, hostedTools: [{ type: 'web_search' }] } });
    const { peer, start } = await started(s);
    expect(server.upgrades[0].url).toBe('/v1/live/sessions');
    expect(server.upgrades[0].headers.authorization).toBe('Bearer sk-live-test');
    expect(peer.received[0].type).toBe('session.start');
    expect(start.session).toEqual({
      model: 'gpt-live-1',
      instructions: BASE.instructions,
      audio: { format: { type: 'audio/pcm', rate: 24000 }, output: { voice: 'marin' } },
      delegation: { type: 'responses', responses: { model: 'gpt-5.5', instructions: BASE.instructions, max_output_tokens: 800, reasoning: { effort: 'low' }, tools: [{ type: 'web_search' }] } },
    });
    expect(s.state.name).toBe('ready');
    expect(s.serverSessionId).toBe('live_1');
  });
});

describe('LiveSession audio and turns', () => {
  it('sends caller audio as session.input_audio.append in the session format, and counts what it cannot send', async () => {
    const s = session();
    s.appendAudio(Buffer.alloc(960));
    expect(s.stats.droppedAudioChunks).toBe(1);
    const { peer } = await started(s);
    const frame = new Int16Array(480).fill(1000);
    s.appendAudio(frame);
    const msg = await peer.next('session.input_audio.append');
    expect(Buffer.from(msg.audio, 'base64')).toEqual(Buffer.from(frame.buffer));
    expect(Object.keys(msg).sort()).toEqual(['audio', 'type']);
    expect(s.stats).toMatchObject({ appendedChunks: 1, appendedBytes: 960, droppedAudioChunks: 1, droppedAudioBytes: 960 });
  });

  it('makes an agent turn of the model audio: responseCreated, audio under one item, transcript, then audioDone and responseDone', async () => {
    const s = session();
    const { peer } = await started(s);
    const seen: string[] = [];
    const audio: Buffer[] = [];
    s.on('responseCreated', (r) => seen.push(`created:${r.responseId}:${r.requested}`));
    s.on('audio', (a) => {
      audio.push(a.data);
      seen.push(`audio:${a.itemId}`);
    });
    s.on('audioDone', (a) => seen.push(`done:${a.itemId}`));
    s.on('transcript', (t) => t.final && seen.push(`final:${t.role}:${t.text}`));
    peer.send({ type: 'session.output_audio.delta', delta: pcm(40, false) });
    peer.send({ type: 'session.output_audio.delta', delta: pcm(40) });
    peer.send({ type: 'session.output_transcript.delta', event_id: 'e1', delta: 'Hello,', start_ms: 1000, end_ms: 1200 });
    peer.send({ type: 'session.output_audio.delta', delta: pcm(40) });
    peer.send({ type: 'session.output_transcript.delta', event_id: 'e2', delta: ' how can I help?', start_ms: 1200, end_ms: 1500 });
    const done = await until<ResponseOutcome>(s, 'responseDone');
    expect(done).toEqual({ responseId: 'live_resp_1', status: 'completed', requested: false });
    expect(seen).toEqual(['created:live_resp_1:false', 'audio:live_item_1', 'audio:live_item_1', 'done:live_item_1', 'final:assistant:Hello, how can I help?']);
    // The leading silence before the turn is not played; the turn's audio is passed on as received.
    expect(Buffer.concat(audio)).toEqual(Buffer.concat([Buffer.from(pcm(40), 'base64'), Buffer.from(pcm(40), 'base64')]));
  });

  it('transcript words of a turn that arrive after its audio ended join that turn, not a new one', async () => {
    const s = session();
    const { peer } = await started(s);
    const created: string[] = [];
    s.on('responseCreated', (r) => created.push(r.responseId));
    peer.send({ type: 'session.output_audio.delta', delta: pcm(60) });
    peer.send({ type: 'session.output_transcript.delta', event_id: 'o1', delta: 'Goodbye', start_ms: 3000, end_ms: 3300 });
    await until(s, 'responseDone');
    peer.send({ type: 'session.output_transcript.delta', event_id: 'o2', delta: ' and thanks.', start_ms: 3300, end_ms: 3700 });
    await new Promise((r) => setTimeout(r, 400));
    expect(created).toEqual(['live_resp_1']);
    // The history a new server session starts from has the whole line.
    peer.ws.terminate();
    const second = await server.peer(2);
    const start = await accept(second);
    expect(start.session.input).toEqual([{ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Goodbye and thanks.' }] }]);
  });

  it('G.711 µ-law: one format both ways at 8 kHz, and silence in it is not a turn', async () => {
    const s = session({}, { inputFormat: 'pcmu', outputFormat: 'pcmu' });
    const { peer, start } = await started(s);
    expect(start.session.audio.format).toEqual({ type: 'audio/pcmu', rate: 8000 });
    expect(s.audioFormat.input).toMatchObject({ format: 'pcmu', sampleRate: 8000 });
    const created: string[] = [];
    s.on('responseCreated', (r) => created.push(r.responseId));
    peer.send({ type: 'session.output_audio.delta', delta: Buffer.alloc(160, 0xff).toString('base64') });
    await new Promise((r) => setTimeout(r, 100));
    expect(created).toEqual([]);
    peer.send({ type: 'session.output_audio.delta', delta: Buffer.alloc(160, 0x20).toString('base64') });
    await new Promise((r) => setTimeout(r, 50));
    expect(created).toEqual(['live_resp_1']);
  });

  it('refuses different input and output formats (GPT-Live has one)', () => {
    expect(() => session({}, { inputFormat: 'pcm', outputFormat: 'pcmu' })).toThrow(TypeError);
  });

  it('a caller turn from input transcript fragments: partial transcripts, then speechStopped and the final text', async () => {
    const s = session();
    const { peer } = await started(s);
    const parts: string[] = [];
    s.on('transcript', (t) => t.role === 'user' && parts.push(`${t.final ? 'final' : 'part'}:${t.text}`));
    const stopped = new Promise<{ itemId: string; audioEndMs: number }>((r) => s.once('speechStopped', r));
    peer.send({ type: 'session.input_transcript.delta', event_id: 'i1', delta: 'What are', start_ms: 2000, end_ms: 2300 });
    peer.send({ type: 'session.input_transcript.delta', event_id: 'i2', delta: ' your hours?', start_ms: 2300, end_ms: 2800 });
    expect(await stopped).toEqual({ itemId: expect.stringMatching(/^live_caller_/), audioEndMs: 2800 });
    expect(parts).toEqual(['part:What are', 'part: your hours?', 'final:What are your hours?']);
  });

  it('barge-in: the model stops while the caller talks; speechStarted comes before the final transcript, and truncate() keeps only the words heard', async () => {
    const s = session({ turnGapMs: 250 });
    const { peer } = await started(s);
    let heard: string | undefined;
    let order: string[] = [];
    // As the call layer does: flush the playout on speechStarted, then report what was played.
    s.on('speechStarted', () => {
      order.push('speechStarted');
      s.truncate('live_item_1', 400);
    });
    s.on('transcript', (t) => {
      if (t.final && t.role === 'assistant') {
        order.push('final');
        heard = t.text;
      }
    });
    peer.send({ type: 'session.output_audio.delta', delta: pcm(100) });
    peer.send({ type: 'session.output_transcript.delta', event_id: 'o1', delta: 'Our opening hours', start_ms: 5000, end_ms: 5300 });
    peer.send({ type: 'session.output_transcript.delta', event_id: 'o2', delta: ' are nine to five, and on weekends', start_ms: 5450, end_ms: 6200 });
    peer.send({ type: 'session.input_transcript.delta', event_id: 'i1', delta: 'Sorry, wait', start_ms: 5600, end_ms: 5900 });
    // The caller keeps talking while the model has stopped.
    const keepTalking = setInterval(() => peer.send({ type: 'session.input_transcript.delta', event_id: 'i2', delta: ' …', start_ms: 5950, end_ms: 6000 }), 100);
    const done = await until<ResponseOutcome>(s, 'responseDone');
    clearInterval(keepTalking);
    expect(done).toMatchObject({ status: 'cancelled', reason: 'turn_detected' });
    expect(order).toEqual(['speechStarted', 'final']);
    expect(heard).toBe('Our opening hours');
    expect(s.stats.truncates).toBe(1);
  });

  it('barge-in heard in the caller audio: a reply sent ahead of real time ends when its audio stops arriving, not when it would have finished playing', async () => {
    const s = session({ turnGapMs: 200 });
    const { peer } = await started(s);
    const events: string[] = [];
    s.on('speechStarted', (e) => events.push(`speechStarted:${e.itemId}`));
    s.on('responseDone', (o) => events.push(`done:${o.status}`));
    // Thirty seconds of reply delivered at once: left to play, it would outlast the test.
    peer.send({ type: 'session.output_audio.delta', delta: pcm(30_000) });
    await new Promise((r) => setTimeout(r, 50));
    // The caller talks (loud audio up); the model sends nothing more.
    const loud = new Int16Array(480).fill(6000);
    const talk = setInterval(() => s.appendAudio(loud), 20);
    const done = await until<ResponseOutcome>(s, 'responseDone');
    clearInterval(talk);
    expect(done).toMatchObject({ status: 'cancelled', reason: 'turn_detected' });
    expect(events[0]).toMatch(/^speechStarted:live_caller_\d+$/);
    // The caller turn that follows takes the id the barge-in announced.
    const finalUser = new Promise<string>((r) => s.on('transcript', (t) => t.role === 'user' && t.final && r(t.itemId)));
    peer.send({ type: 'session.input_transcript.delta', event_id: 'i1', delta: 'Stop, please.', start_ms: 100, end_ms: 600 });
    expect(await finalUser).toBe(events[0].split(':')[1]);
  });

  it('reads the level of caller audio at any byte offset (a pooled Buffer)', async () => {
    const s = session();
    const { peer } = await started(s);
    peer.send({ type: 'session.output_audio.delta', delta: pcm(500) });
    await new Promise<void>((r) => s.once('audio', () => r()));
    const odd = Buffer.alloc(961).subarray(1);
    for (let i = 0; i + 1 < odd.length; i += 2) odd.writeInt16LE(7000, i);
    expect(odd.byteOffset % 2).toBe(1);
    expect(() => s.appendAudio(odd)).not.toThrow();
    expect(s.stats.appendedChunks).toBe(1);
    await peer.next('session.input_audio.append');
  });

  it('without the caller talking, a reply sent ahead of real time is left to play out', async () => {
    const s = session({ turnGapMs: 100 });
    const { peer } = await started(s);
    let ended = false;
    s.once('responseDone', () => (ended = true));
    const firstAudio = new Promise<void>((r) => s.once('audio', () => r()));
    peer.send({ type: 'session.output_audio.delta', delta: pcm(600) });
    await firstAudio;
    // A timer due before the turn's (600 ms of audio, then the gap) fires first, however loaded the machine.
    await new Promise((r) => setTimeout(r, 300));
    expect(ended).toBe(false);
    const done = await until<ResponseOutcome>(s, 'responseDone');
    expect(done.status).toBe('completed');
  });

  it('createResponse() asks with session.commentary.append and resolves with the next agent turn', async () => {
    const s = session();
    const { peer } = await started(s);
    const outcome = s.createResponse({ instructions: 'Greet the caller.' });
    const ask = await peer.next('session.commentary.append');
    expect(ask).toMatchObject({ delegation_id: null, content: 'Reply to the caller now. Greet the caller.' });
    peer.send({ type: 'session.commentary.appended', event_id: 'a', client_event_id: ask.event_id, start_ms: 10, end_ms: 10 });
    peer.send({ type: 'session.output_audio.delta', delta: pcm(60) });
    expect(await outcome).toEqual({ responseId: 'live_resp_1', status: 'completed', requested: true });
    expect(s.stats.responsesRequested).toBe(1);
  });

  it('createResponse() with no turn following resolves incomplete, never rejects', async () => {
    const s = session({ replyTimeoutMs: 200 });
    await started(s);
    expect(await s.createResponse()).toMatchObject({ status: 'incomplete', reason: 'no_speech', responseId: undefined });
  });

  it('DTMF goes as silent context, a system note as instructions', async () => {
    const s = session();
    const { peer } = await started(s);
    s.sendUserText('The caller pressed 5.');
    s.sendSystemText('The transfer failed.');
    expect(await peer.next('session.thinking.append')).toMatchObject({ delegation_id: null, content: 'The caller pressed 5.' });
    expect(await peer.next('session.instructions.append')).toMatchObject({ delegation_id: null, content: 'The transfer failed.' });
  });

  it('usage: cumulative audio seconds priced per minute, plus backend tokens', async () => {
    const s = session({ prices: { audioPerMinute: 0.06, backendInput: 1, backendOutput: 4 } });
    const { peer } = await started(s);
    peer.send({ type: 'session.usage.updated', event_id: 'u1', usage: { seconds: 30 } });
    peer.send({ type: 'session.usage.updated', event_id: 'u2', usage: { seconds: 60 } });
    peer.send({ type: 'response.event', event_id: 'r1', delegation_id: 'del_1', event: { type: 'response.completed', response: { id: 'resp_1', usage: { input_tokens: 1000, output_tokens: 500 } } } });
    await new Promise((r) => setTimeout(r, 100));
    const u = s.usage;
    expect(u.audioSeconds).toBe(60);
    expect(u.inputTokens).toBe(1000);
    expect(u.outputTokens).toBe(500);
    expect(u.costUsd).toBeCloseTo(0.06 + 0.001 + 0.002, 9);
  });
});

describe('LiveSession tools', () => {
  it('Responses delegation: declares the function tools, runs a call, returns the output with response.item.create then response.create', async () => {
    const s = session();
    const calls: ToolCallRecord[] = [];
    s.on('toolCall', (r) => calls.push(r));
    s.registerTool({
      name: 'lookup_order',
      description: 'Look up an order',
      parameters: { type: 'object', properties: { id: { type: 'string' } } },
      handler: async (args) => ({ output: JSON.stringify({ status: 'shipped', args }) }),
    });
    const { peer, start } = await started(s);
    expect(start.session.delegation.responses.tools).toEqual([
      { type: 'function', name: 'lookup_order', description: 'Look up an order', parameters: { type: 'object', properties: { id: { type: 'string' } } }, strict: false },
    ]);
    peer.send({ type: 'session.delegation.created', event_id: 'd', offset_ms: 3000, delegation: { id: 'del_1', target: 'responses', type: 'delegation', response_id: 'resp_1' } });
    peer.send({ type: 'response.event', event_id: 'r1', delegation_id: 'del_1', event: { type: 'response.created', response: { id: 'resp_1' } } });
    peer.send({
      type: 'response.event',
      event_id: 'r2',
      delegation_id: 'del_1',
      event: { type: 'response.output_item.done', item: { type: 'function_call', status: 'completed', call_id: 'call_7', name: 'lookup_order', arguments: '{"id":"A12"}' } },
    });
    peer.send({ type: 'response.event', event_id: 'r3', delegation_id: 'del_1', event: { type: 'response.completed', response: { id: 'resp_1' } } });
    const out = await peer.next('response.item.create');
    expect(out.item).toEqual({ type: 'function_call_output', call_id: 'call_7', output: JSON.stringify({ status: 'shipped', args: { id: 'A12' } }) });
    await peer.next('response.create');
    const sent = peer.ofTypes('response.item.create', 'response.create').map((m) => m.type);
    expect(sent).toEqual(['response.item.create', 'response.create']);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ name: 'lookup_order', callId: 'call_7', args: { id: 'A12' } });
  });

  it('Responses delegation: an unknown tool gets an error output and no handler runs', async () => {
    const s = session();
    const { peer } = await started(s);
    peer.send({ type: 'response.event', event_id: 'r1', delegation_id: 'del_2', event: { type: 'response.created' } });
    peer.send({ type: 'response.event', event_id: 'r2', delegation_id: 'del_2', event: { type: 'response.output_item.done', item: { type: 'function_call', call_id: 'c1', name: 'nope', arguments: '{}' } } });
    peer.send({ type: 'response.event', event_id: 'r3', delegation_id: 'del_2', event: { type: 'response.completed' } });
    const out = await peer.next('response.item.create');
    expect(JSON.parse(out.item.output)).toEqual({ error: "unknown tool 'nope'" });
    expect(s.stats.toolErrors).toBe(1);
  });

  it("a result that wants words said (end_call's goodbye) steers the voice model as silent context after response.create; its followUp is the next agent turn", async () => {
    const s = session();
    let followUp: Promise<ResponseOutcome | undefined> | undefined;
    s.registerTool({
      name: 'end_call',
      description: 'Hang up',
      parameters: { type: 'object', properties: {} },
      handler: async (_args, ctx) => {
        followUp = ctx.followUp;
        return { output: '{"ok":true}', followUp: { instructions: 'Say a brief goodbye.' } };
      },
    });
    const { peer } = await started(s);
    peer.send({ type: 'response.event', event_id: 'r1', delegation_id: 'd1', event: { type: 'response.created' } });
    peer.send({ type: 'response.event', event_id: 'r2', delegation_id: 'd1', event: { type: 'response.output_item.done', item: { type: 'function_call', call_id: 'c9', name: 'end_call', arguments: '' } } });
    peer.send({ type: 'response.event', event_id: 'r3', delegation_id: 'd1', event: { type: 'response.completed' } });
    await peer.next('response.create');
    expect(await peer.next('session.thinking.append')).toMatchObject({ delegation_id: null, content: 'Say a brief goodbye.' });
    peer.send({ type: 'session.output_audio.delta', delta: pcm(80) });
    expect(await followUp).toMatchObject({ status: 'completed', requested: true });
  });

  it('closing the session aborts a running tool call', async () => {
    const s = session();
    let aborted: unknown;
    s.registerTool({
      name: 'slow',
      description: 'Slow',
      parameters: { type: 'object', properties: {} },
      handler: (_args, ctx) =>
        new Promise((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            aborted = ctx.signal.reason;
            resolve({ output: '{}' });
          });
        }),
    });
    const { peer } = await started(s);
    const called = new Promise<void>((r) => s.once('toolCall', () => r()));
    peer.send({ type: 'response.event', event_id: 'r1', delegation_id: 'd1', event: { type: 'response.output_item.done', item: { type: 'function_call', call_id: 'c1', name: 'slow', arguments: '{}' } } });
    await new Promise((r) => setTimeout(r, 50));
    s.close();
    await called;
    expect(aborted).toBeInstanceOf(AiSessionError);
  });

  it('a backend response that failed gets no outputs; what its calls did is told as silent context', async () => {
    const s = session();
    s.registerTool({ name: 'book', description: 'Book', parameters: { type: 'object', properties: {} }, handler: async () => ({ output: '{"booked":true}' }) });
    const { peer } = await started(s);
    peer.send({ type: 'response.event', event_id: 'r1', delegation_id: 'd3', event: { type: 'response.created' } });
    peer.send({ type: 'response.event', event_id: 'r2', delegation_id: 'd3', event: { type: 'response.output_item.done', item: { type: 'function_call', call_id: 'c1', name: 'book', arguments: '{}' } } });
    peer.send({ type: 'response.event', event_id: 'r3', delegation_id: 'd3', event: { type: 'response.failed', response: { error: { code: 'server_error' } } } });
    expect(await peer.next('session.thinking.append')).toMatchObject({ delegation_id: null, content: 'Tool book returned: {"booked":true}' });
    expect(peer.ofTypes('response.item.create', 'response.create')).toEqual([]);
  });

  it('a tool registered after start is declared with session.update', async () => {
    const s = session({ delegation: { type: 'responses', model: 'gpt-5.5', hostedTools: [{ type: 'web_search' }] } });
    const { peer } = await started(s);
    s.registerTool({ name: 'end_call', description: 'Hang up', parameters: { type: 'object', properties: {} }, handler: async () => ({ output: '{}' }) });
    const upd = await peer.next('session.update');
    expect(upd.session.delegation.type).toBe('responses');
    expect(upd.session.delegation.responses.tools.map((t: { type: string; name?: string }) => t.name ?? t.type)).toEqual(['web_search', 'end_call']);
  });

  it('client delegation: our chat model runs our tool, and the answer goes back as commentary for the delegation', async () => {
    const chat = await chatServer([
      { toolCalls: [{ id: 'call_1', name: 'lookup_order', arguments: '{"id":"B7"}' }] },
      { text: 'Order B7 ships tomorrow.' },
    ]);
    try {
      const s = session({ delegation: { type: 'client', endpoint: { baseUrl: chat.url, apiKey: 'sk-chat', timeoutMs: 2000 }, model: 'gpt-4.1-mini' } });
      s.registerTool({ name: 'lookup_order', description: 'Look up an order', parameters: { type: 'object', properties: {} }, handler: async () => ({ output: '{"eta":"tomorrow"}' }) });
      const { peer, start } = await started(s);
      expect(start.session.delegation).toEqual({ type: 'client' });
      peer.send({ type: 'session.input_transcript.delta', event_id: 'i1', delta: 'Where is order B7?', start_ms: 100, end_ms: 900 });
      peer.send({ type: 'session.delegation.created', event_id: 'd', offset_ms: 950, delegation: { id: 'del_9', target: 'client', type: 'delegation' } });
      const answer = await peer.next('session.commentary.append', 4000);
      expect(answer).toMatchObject({ delegation_id: 'del_9', content: 'Order B7 ships tomorrow.' });
      expect(chat.requests).toHaveLength(2);
      expect(chat.requests[0].messages.at(-1)).toEqual({ role: 'user', content: 'Where is order B7?' });
      expect(chat.requests[0].tools[0].function.name).toBe('lookup_order');
      expect(chat.requests[1].messages.at(-1)).toEqual({ role: 'tool', tool_call_id: 'call_1', content: '{"eta":"tomorrow"}' });
      expect(chat.auth).toBe('Bearer sk-chat');
    } finally {
      await chat.close();
    }
  });
});

describe('LiveSession failures', () => {
  it('an error answering session.start makes start() reject with its code, naming the parameter', async () => {
    const s = session();
    const p = s.start();
    const peer = await server.peer(1);
    const start = await peer.next('session.start');
    peer.send({ type: 'error', event_id: 'e', error: { code: 'unknown_parameter', message: "Unknown parameter: 'session.speed'.", type: 'invalid_request_error', param: 'session.speed', client_event_id: start.event_id } });
    await expect(p).rejects.toMatchObject({ aiCode: 'unknown_parameter', message: expect.stringContaining('param:session.speed, event:session.start') });
    expect(s.state.name).toBe('died');
  });

  it('a refused upgrade (401) rejects start() with invalid_api_key', async () => {
    server.behaviour = { refuse: { status: 401, body: JSON.stringify({ error: { code: 'invalid_api_key', message: 'Incorrect API key' } }) } };
    await expect(session().start()).rejects.toMatchObject({ aiCode: 'invalid_api_key' });
  });

  it('a non-fatal server error is emitted with the client event that caused it; the session goes on', async () => {
    const s = session();
    const { peer } = await started(s);
    s.sendSystemText('x');
    const sent = await peer.next('session.instructions.append');
    const got = until<Record<string, unknown>>(s, 'error');
    peer.send({ type: 'error', event_id: 'e', error: { code: 'content_too_long', message: 'too long', type: 'invalid_request_error', client_event_id: sent.event_id } });
    expect(await got).toMatchObject({ code: 'content_too_long', causeType: 'session.instructions.append', causeEventId: sent.event_id });
    expect(s.state.name).toBe('ready');
  });

  it('a fatal server error ends the session: died', async () => {
    const s = session();
    const { peer } = await started(s);
    const died = until<AiSessionError>(s, 'died');
    peer.send({ type: 'error', event_id: 'e', error: { code: 'insufficient_quota', message: 'quota', type: 'insufficient_quota' } });
    expect((await died).aiCode).toBe('insufficient_quota');
    expect(s.state).toMatchObject({ name: 'died', reason: 'insufficient_quota' });
  });

  it('a dropped socket is survived with a new server session seeded with the conversation', async () => {
    const s = session();
    const { peer } = await started(s);
    peer.send({ type: 'session.input_transcript.delta', event_id: 'i1', delta: 'My name is Ada.', start_ms: 100, end_ms: 900 });
    peer.send({ type: 'session.output_audio.delta', delta: pcm(50) });
    peer.send({ type: 'session.output_transcript.delta', event_id: 'o1', delta: 'Hello Ada.', start_ms: 1200, end_ms: 1600 });
    await until(s, 'responseDone');
    const reconnected = until<{ reason: string; reseededItems: number }>(s, 'reconnected');
    peer.ws.terminate();
    const second = await server.peer(2);
    const start = await accept(second);
    expect(start.session.input).toEqual([
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'My name is Ada.' }] },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Hello Ada.' }] },
    ]);
    expect(await reconnected).toMatchObject({ reason: 'connection_lost', reseededItems: 2 });
    expect(s.state.name).toBe('ready');
    expect(s.stats.reconnects).toBe(1);
  });

  it('rotates to a new server session before the current one expires, seeded with the conversation', async () => {
    const s = session({ expiryMarginMs: 2000 });
    const p = s.start();
    const first = await server.peer(1);
    const start1 = await first.next('session.start');
    // Expires in 3 s: the rotation is due after about one second, while idle.
    first.send({ type: 'session.started', event_id: 'e', session: { id: 'live_a', model: 'gpt-live-1', status: 'active', expires_at: Math.floor(Date.now() / 1000) + 3, audio: start1.session.audio } });
    await p;
    s.sendUserText('Account 42.');
    const reconnected = until<{ reason: string }>(s, 'reconnected', 5000);
    await first.next('session.close', 4000);
    const second = await server.peer(2, 4000);
    const start2 = await accept(second);
    expect(start2.session.input).toEqual([{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Account 42.' }] }]);
    expect(await reconnected).toMatchObject({ reason: 'rotation' });
    expect(s.stats.rotations).toBe(1);
    expect(s.stats.reconnects).toBe(0);
  });

  it('while a new server session starts, DTMF and reply requests are held and sent to it', async () => {
    const s = session();
    const { peer } = await started(s);
    const reconnecting = new Promise<void>((r) => s.once('reconnecting', () => r()));
    peer.ws.terminate();
    await reconnecting;
    s.sendUserText('The caller pressed 1.');
    const reply = s.createResponse();
    const second = await server.peer(2);
    await accept(second);
    expect(await second.next('session.thinking.append')).toMatchObject({ content: 'The caller pressed 1.', delegation_id: null });
    expect(await second.next('session.commentary.append')).toMatchObject({ content: 'Reply to the caller now.', delegation_id: null });
    second.send({ type: 'session.output_audio.delta', delta: pcm(60) });
    expect(await reply).toMatchObject({ status: 'completed', requested: true });
  });

  it('rotates by the session age limit too, and a short-lived server session rotates at half its life (no loop)', async () => {
    const s = session({ expiryMarginMs: 120_000 }, { maxSessionAgeMs: 600 });
    const p = s.start();
    const first = await server.peer(1);
    const start1 = await first.next('session.start');
    // Expires far sooner than the margin: not an immediate rotation, the age limit decides.
    first.send({ type: 'session.started', event_id: 'e', session: { id: 'live_a', model: 'gpt-live-1', status: 'active', expires_at: Math.floor(Date.now() / 1000) + 30, audio: start1.session.audio } });
    await p;
    // Due before the 600 ms age limit, so it runs first: no rotation has begun by then.
    await new Promise((r) => setTimeout(r, 300));
    expect(server.peers).toHaveLength(1);
    const second = await server.peer(2, 3000);
    await accept(second);
    await until(s, 'reconnected');
    expect(s.stats.rotations).toBe(1);
  });

  it('a dropped socket with no reconnects left: died', async () => {
    const s = session({}, { maxReconnects: 0 });
    const { peer } = await started(s);
    const died = until<AiSessionError>(s, 'died');
    peer.ws.terminate();
    expect((await died).aiCode).toBe('connection_lost');
  });

  it('the server ending the session for content: died with content_filter', async () => {
    const s = session();
    const { peer } = await started(s);
    const died = until<AiSessionError>(s, 'died');
    peer.send({ type: 'session.closed', event_id: 'c', reason: 'content', usage: { seconds: 42 }, session: { id: 'live_1' } });
    expect((await died).aiCode).toBe('content_filter');
    expect(s.usage.audioSeconds).toBe(42);
  });

  it('close() asks the server to finish (session.close) and resolves waiting replies as not sent', async () => {
    const s = session({ closeGraceMs: 500 });
    const { peer } = await started(s);
    const reply = s.createResponse();
    await peer.next('session.commentary.append');
    s.close();
    await peer.next('session.close');
    expect(await reply).toMatchObject({ status: 'not_sent', reason: 'session_closed' });
    expect(s.state.name).toBe('closed');
  });
});

describe('LiveBackend', () => {
  it('probe() starts a server session and closes it; rejects when the key is refused', async () => {
    const backend = new LiveBackend({ connection: { url: server.url('/v1/live/sessions'), apiKey: 'sk-x', pingIntervalMs: 0 }, live: { model: 'gpt-live-1', delegation: { type: 'client', endpoint: { baseUrl: 'http://127.0.0.1:1/v1', timeoutMs: 100 }, model: 'm' } } });
    const probing = backend.probe(log);
    const peer = await server.peer(1);
    const start = await accept(peer);
    await probing;
    expect(start.session).toMatchObject({ model: 'gpt-live-1', delegation: { type: 'client' } });
    await peer.next('session.close');
    server.behaviour = { refuse: { status: 401, body: '{"error":{"code":"invalid_api_key","message":"bad key"}}' } };
    await expect(backend.probe(log)).rejects.toMatchObject({ aiCode: 'invalid_api_key' });
  });
});

/** A loopback OpenAI-compatible chat server streaming scripted answers (one per request). */
async function chatServer(script: ({ text: string } | { toolCalls: { id: string; name: string; arguments: string }[] })[]): Promise<{
  url: string;
  requests: Record<string, any>[];
  auth: string | undefined;
  close(): Promise<void>;
}> {
  const state = { requests: [] as Record<string, any>[], auth: undefined as string | undefined };
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      state.requests.push(JSON.parse(body));
      state.auth = req.headers.authorization;
      const step = script[state.requests.length - 1] ?? { text: '' };
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (delta: unknown, finish: string | null = null): string => `data: ${JSON.stringify({ choices: [{ delta, finish_reason: finish }] })}\n\n`;
      if ('text' in step) res.write(chunk({ content: step.text }, 'stop'));
      else res.write(chunk({ tool_calls: step.toolCalls.map((c, index) => ({ index, id: c.id, function: { name: c.name, arguments: c.arguments } })) }, 'tool_calls'));
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/v1`,
    get requests() {
      return state.requests;
    },
    get auth() {
      return state.auth;
    },
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

import { PassThrough } from 'node:stream';
import { createLogger, silentLogger, type Logger } from '../../../src/logging/logger';
import { AiSessionError, InvalidStateError } from '../../../src/util/errors';
import { RealtimeSession } from '../../../src/ai/RealtimeSession';
import { OpenAiBackend } from '../../../src/ai/AiBackend';
import type { AiSessionOptions, ResponseOutcome, ToolCallRecord, TranscriptEvent } from '../../../src/ai/types';
import { ScriptedServer, type Peer } from './scriptedServer';

let server: ScriptedServer;
const sessions: RealtimeSession[] = [];

const base: AiSessionOptions = {
  instructions: 'You answer the phone for Acme.',
  voice: 'marin',
  inputFormat: 'pcmu',
  outputFormat: 'pcmu',
  turnDetection: { type: 'server_vad', createResponse: true, interruptResponse: true },
  noiseReduction: 'near_field',
  transcription: { model: 'gpt-4o-mini-transcribe', language: 'en' },
};

function session(opts: Partial<AiSessionOptions> = {}, logger: Logger = silentLogger()): RealtimeSession {
  const s = new RealtimeSession(
    { session: { ...base, ...opts }, connection: { url: server.url(), model: 'gpt-realtime', apiKey: 'sk-test', pingIntervalMs: 0, connectTimeoutMs: 1000 } },
    logger,
  );
  sessions.push(s);
  return s;
}

async function started(opts: Partial<AiSessionOptions> = {}): Promise<{ s: RealtimeSession; peer: Peer }> {
  const s = session(opts);
  const p = s.start();
  const peer = await server.peer(1);
  await peer.acceptUpdate();
  await p;
  return { s, peer };
}

/** Wait until the session has handled everything the peer sent so far, and the peer has everything the session sent. */
async function sync(s: RealtimeSession, peer: Peer): Promise<void> {
  const handled = s.waitFor('speechStopped', 2000);
  peer.send({ type: 'input_audio_buffer.speech_stopped', item_id: 'item_sync', audio_end_ms: 0 });
  await handled;
  s.appendAudio(Buffer.from([0xff]));
  await peer.next('input_audio_buffer.append');
}

function responseCreated(peer: Peer, id: string, req?: Record<string, any>): void {
  const tag = req?.response?.metadata?.sip_ai_request;
  peer.send({ type: 'response.created', response: { id, status: 'in_progress', ...(tag ? { metadata: { sip_ai_request: tag } } : {}) } });
}

function responseDone(peer: Peer, id: string, extra: Record<string, unknown> = {}): void {
  peer.send({ type: 'response.done', response: { id, status: 'completed', output: [], ...extra } });
}

function functionCall(peer: Peer, responseId: string, callId: string, name: string, args: string): void {
  peer.send({
    type: 'response.output_item.done',
    response_id: responseId,
    output_index: 0,
    item: { id: `item_${callId}`, type: 'function_call', status: 'completed', call_id: callId, name, arguments: args },
  });
}

function capture(): { logger: Logger; lines: () => Record<string, any>[] } {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (c: Buffer) => chunks.push(c.toString()));
  const logger = createLogger({ level: 'debug', destination: out, pretty: false });
  return {
    logger,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, any>),
  };
}

beforeEach(async () => {
  server = await ScriptedServer.start();
});
afterEach(async () => {
  jest.useRealTimers();
  for (const s of sessions.splice(0)) s.close();
  await server.stop();
});

describe('session.update', () => {
  it('sends the exact GA shape for a typical telephony config', async () => {
    const s = session({
      speed: 1.1,
      turnDetection: { type: 'server_vad', threshold: 0.6, prefixPaddingMs: 300, silenceDurationMs: 500, idleTimeoutMs: 8000, createResponse: true, interruptResponse: true },
      tools: [{ name: 'end_call', description: 'Hang up the call.', parameters: { type: 'object', properties: {} } }],
      toolChoice: 'auto',
      maxOutputTokens: 1024,
      truncation: 'auto',
    });
    const p = s.start();
    const peer = await server.peer(1);
    const upd = await peer.acceptUpdate();
    await p;
    expect(upd).toEqual({
      type: 'session.update',
      event_id: 'evt_1',
      session: {
        type: 'realtime',
        output_modalities: ['audio'],
        instructions: 'You answer the phone for Acme.',
        audio: {
          input: {
            format: { type: 'audio/pcmu' },
            noise_reduction: { type: 'near_field' },
            transcription: { model: 'gpt-4o-mini-transcribe', language: 'en' },
            turn_detection: {
              type: 'server_vad',
              threshold: 0.6,
              prefix_padding_ms: 300,
              silence_duration_ms: 500,
              idle_timeout_ms: 8000,
              create_response: true,
              interrupt_response: true,
            },
          },
          output: { format: { type: 'audio/pcmu' }, voice: 'marin', speed: 1.1 },
        },
        tools: [{ type: 'function', name: 'end_call', description: 'Hang up the call.', parameters: { type: 'object', properties: {} } }],
        tool_choice: 'auto',
        max_output_tokens: 1024,
        truncation: 'auto',
      },
    });
    const text = JSON.stringify(upd);
    expect(text).not.toContain('temperature');
    expect(text).not.toContain('modalities":["text","audio"]');
    expect(s.state.name).toBe('ready');
    expect(s.audioFormat.input).toEqual({ format: 'pcmu', sampleRate: 8000, bytesPerMs: 8, linear: false });
  });

  it('maps pcm, semantic_vad, disabled features and retention truncation', () => {
    const s = session({
      inputFormat: 'pcm',
      outputFormat: 'pcm',
      turnDetection: { type: 'semantic_vad', eagerness: 'low', interruptResponse: false },
      noiseReduction: null,
      transcription: null,
      truncation: { type: 'retention_ratio', retentionRatio: 0.8, postInstructionsTokens: 5000 },
    });
    const cfg = s.buildSessionConfig();
    expect(cfg.audio?.input).toEqual({
      format: { type: 'audio/pcm', rate: 24000 },
      noise_reduction: null,
      transcription: null,
      turn_detection: { type: 'semantic_vad', eagerness: 'low', interrupt_response: false },
    });
    expect(cfg.audio?.output?.format).toEqual({ type: 'audio/pcm', rate: 24000 });
    expect(cfg.truncation).toEqual({ type: 'retention_ratio', retention_ratio: 0.8, token_limits: { post_instructions: 5000 } });
    expect(session({ turnDetection: null }).buildSessionConfig().audio?.input?.turn_detection).toBeNull();
    expect(s.audioFormat.output.sampleRate).toBe(24000);
  });

  it('rejects start() when an error answers the update, naming the param, and does not continue', async () => {
    const cap = capture();
    const s = session({}, cap.logger);
    const p = s.start();
    const peer = await server.peer(1);
    const upd = await peer.next('session.update');
    peer.send({
      type: 'error',
      error: { type: 'invalid_request_error', code: 'invalid_value', message: "Invalid value: 'nova'.", param: 'session.audio.output.voice', event_id: upd.event_id },
    });
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AiSessionError);
    expect((err as AiSessionError).aiCode).toBe('invalid_value');
    expect((err as AiSessionError).message).toContain('param:session.audio.output.voice');
    expect(s.state.name).toBe('died');
    expect(s.closed).toBe(true);
    await peer.closed();
    const logged = cap.lines().find((l) => l.param === 'session.audio.output.voice');
    expect(logged?.level).toBe(50);
    expect(logged?.msg).toContain('session.update rejected');
  });

  it('rejects start() when session.updated reports a different format than asked', async () => {
    const s = session();
    const p = s.start();
    const peer = await server.peer(1);
    await peer.next('session.update');
    peer.send({ type: 'session.updated', session: { type: 'realtime', audio: { input: { format: { type: 'audio/pcm', rate: 24000 } }, output: { format: { type: 'audio/pcm', rate: 24000 }, voice: 'alloy' } } } });
    await expect(p).rejects.toMatchObject({ aiCode: 'session_config_mismatch' });
    expect(s.closed).toBe(true);
  });

  it('rejects start() when session.updated never comes', async () => {
    const s = session({ sessionUpdateTimeoutMs: 100 });
    const p = s.start();
    await (await server.peer(1)).next('session.update');
    await expect(p).rejects.toMatchObject({ aiCode: 'session_update_timeout' });
  });

  it('sends the new tool list when a tool is registered after start()', async () => {
    const { s, peer } = await started();
    s.registerTool({ name: 'lookup', description: 'Look up', parameters: { type: 'object' }, handler: async () => ({ output: '{}' }) });
    const upd = await peer.next('session.update');
    expect(upd.session).toEqual({ type: 'realtime', tools: [{ type: 'function', name: 'lookup', description: 'Look up', parameters: { type: 'object' } }] });
  });

  it('refuses start() twice and methods after close()', async () => {
    const { s } = await started();
    await expect(s.start()).rejects.toBeInstanceOf(InvalidStateError);
    s.close();
    expect(() => s.sendUserText('1')).toThrow(InvalidStateError);
  });
});

describe('audio', () => {
  it('sends caller audio as base64 appends and drops (counting) audio before ready', async () => {
    const s = session();
    s.appendAudio(Buffer.from([1, 2, 3]));
    const p = s.start();
    const peer = await server.peer(1);
    await peer.acceptUpdate();
    await p;
    s.appendAudio(Buffer.from([0xff, 0x7f, 0x00]));
    s.appendAudio(new Int16Array([1, -1]));
    const a = await peer.next('input_audio_buffer.append');
    const b = await peer.next('input_audio_buffer.append');
    expect(Buffer.from(a.audio, 'base64')).toEqual(Buffer.from([0xff, 0x7f, 0x00]));
    expect(Buffer.from(b.audio, 'base64')).toEqual(Buffer.from([1, 0, 0xff, 0xff]));
    expect(s.stats).toMatchObject({ appendedChunks: 2, appendedBytes: 7, droppedAudioChunks: 1, droppedAudioBytes: 3 });
  });

  it('emits decoded output audio, audioDone, speech events and transcripts', async () => {
    const { s, peer } = await started();
    const audio: Buffer[] = [];
    const transcripts: TranscriptEvent[] = [];
    s.on('audio', (a) => audio.push(a.data));
    s.on('transcript', (t) => transcripts.push(t));
    const speech = s.waitFor('speechStarted', 2000);
    peer.send({ type: 'input_audio_buffer.speech_started', item_id: 'item_u1', audio_start_ms: 1200 });
    expect((await speech)[0]).toEqual({ itemId: 'item_u1', audioStartMs: 1200 });
    peer.send({ type: 'conversation.item.input_audio_transcription.completed', item_id: 'item_u1', content_index: 0, transcript: 'Hi there' });
    peer.send({ type: 'response.audio.delta', response_id: 'resp_1', item_id: 'item_a1', delta: Buffer.from([1, 2]).toString('base64') });
    peer.send({ type: 'response.output_audio.delta', response_id: 'resp_1', item_id: 'item_a1', delta: Buffer.from([3]).toString('base64') });
    peer.send({ type: 'response.output_audio_transcript.delta', response_id: 'resp_1', item_id: 'item_a1', delta: 'Hel' });
    peer.send({ type: 'response.output_audio_transcript.done', response_id: 'resp_1', item_id: 'item_a1', transcript: 'Hello!' });
    const done = s.waitFor('audioDone', 2000);
    peer.send({ type: 'response.output_audio.done', response_id: 'resp_1', item_id: 'item_a1' });
    expect((await done)[0]).toEqual({ responseId: 'resp_1', itemId: 'item_a1' });
    expect(Buffer.concat(audio)).toEqual(Buffer.from([1, 2, 3]));
    expect(transcripts.map(({ role, itemId, text, final }) => ({ role, itemId, text, final }))).toEqual([
      { role: 'user', itemId: 'item_u1', text: 'Hi there', final: true },
      { role: 'assistant', itemId: 'item_a1', text: 'Hel', final: false },
      { role: 'assistant', itemId: 'item_a1', text: 'Hello!', final: true },
    ]);
    expect(transcripts.every((t) => Number.isInteger(t.atMs) && t.atMs >= 0)).toBe(true);
  });

  it('emits inputTimeout on an idle timeout', async () => {
    const { s, peer } = await started();
    const got = s.waitFor('inputTimeout', 2000);
    peer.send({ type: 'input_audio_buffer.timeout_triggered', item_id: 'item_t', audio_start_ms: 100, audio_end_ms: 9100 });
    expect((await got)[0]).toEqual({ itemId: 'item_t', audioStartMs: 100, audioEndMs: 9100 });
  });
});

describe('responses', () => {
  it('queues response.create until the active response is done, and resolves each with its outcome', async () => {
    const { s, peer } = await started();
    const first = s.createResponse({ instructions: 'Greet the caller.' });
    const second = s.createResponse();
    const c1 = await peer.next('response.create');
    expect(c1.response.instructions).toBe('Greet the caller.');
    responseCreated(peer, 'resp_1', c1);
    await sync(s, peer);
    expect(peer.ofTypes('response.create')).toHaveLength(1);
    responseDone(peer, 'resp_1');
    await expect(first).resolves.toMatchObject({ responseId: 'resp_1', status: 'completed', requested: true });
    const c2 = await peer.next('response.create');
    responseCreated(peer, 'resp_2', c2);
    responseDone(peer, 'resp_2', { status: 'cancelled', status_details: { type: 'cancelled', reason: 'turn_detected' } });
    await expect(second).resolves.toMatchObject({ responseId: 'resp_2', status: 'cancelled', reason: 'turn_detected' });
  });

  it('waits for a server (VAD) response before sending its own', async () => {
    const { s, peer } = await started();
    peer.send({ type: 'response.created', response: { id: 'resp_vad', status: 'in_progress' } });
    await sync(s, peer);
    const mine = s.createResponse();
    await sync(s, peer);
    expect(peer.ofTypes('response.create')).toHaveLength(0);
    responseDone(peer, 'resp_vad');
    const c = await peer.next('response.create');
    responseCreated(peer, 'resp_mine', c);
    responseDone(peer, 'resp_mine');
    await expect(mine).resolves.toMatchObject({ responseId: 'resp_mine', requested: true });
  });

  it('re-queues a create that lost the race with a VAD response', async () => {
    const { s, peer } = await started();
    const errors = jest.fn();
    s.on('error', errors);
    const mine = s.createResponse();
    const c1 = await peer.next('response.create');
    peer.send({ type: 'response.created', response: { id: 'resp_vad', status: 'in_progress' } });
    peer.send({
      type: 'error',
      error: { type: 'invalid_request_error', code: 'conversation_already_has_active_response', message: 'busy', event_id: c1.event_id },
    });
    await sync(s, peer);
    expect(peer.ofTypes('response.create')).toHaveLength(1);
    responseDone(peer, 'resp_vad');
    const c2 = await peer.next('response.create');
    expect(c2.response.metadata.sip_ai_request).toBe(c1.response.metadata.sip_ai_request);
    responseCreated(peer, 'resp_2', c2);
    responseDone(peer, 'resp_2');
    await expect(mine).resolves.toMatchObject({ responseId: 'resp_2', status: 'completed' });
    expect(errors).not.toHaveBeenCalled();
  });

  it('cancels the active response and treats response_cancel_not_active as benign', async () => {
    const { s, peer } = await started();
    const errors = jest.fn();
    s.on('error', errors);
    peer.send({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } });
    await sync(s, peer);
    s.cancelResponse();
    const cancel = await peer.next('response.cancel');
    expect(cancel.response_id).toBe('resp_1');
    peer.send({ type: 'error', error: { type: 'invalid_request_error', code: 'response_cancel_not_active', message: 'no active response', event_id: cancel.event_id } });
    await sync(s, peer);
    expect(errors).not.toHaveBeenCalled();
    expect(s.state.name).toBe('ready');
  });

  it('refuses requests beyond the queue cap with not_sent and counts them', async () => {
    const { s, peer } = await started({ responseQueueMax: 1 });
    void s.createResponse();
    await peer.next('response.create');
    void s.createResponse();
    await expect(s.createResponse()).resolves.toMatchObject({ status: 'not_sent', reason: 'queue_full' });
    expect(s.stats.responsesDropped).toBe(1);
  });

  it('resolves queued requests as not_sent on close() and emits close, not died', async () => {
    const { s, peer } = await started();
    void s.createResponse();
    await peer.next('response.create');
    const queued = s.createResponse();
    const died = jest.fn();
    const closed = jest.fn();
    s.on('died', died);
    s.on('close', closed);
    s.close();
    s.close();
    await expect(queued).resolves.toMatchObject({ status: 'not_sent', reason: 'session_closed' });
    expect(closed).toHaveBeenCalledTimes(1);
    expect(died).not.toHaveBeenCalled();
    await peer.closed();
  });
});

describe('truncate', () => {
  /** The server announces the item first (only items of the current session are truncated). */
  async function announced(s: RealtimeSession, peer: Peer, itemId: string): Promise<void> {
    peer.send({ type: 'response.output_item.added', response_id: 'resp_x', item: { id: itemId, type: 'message', role: 'assistant' } });
    await sync(s, peer);
  }

  it('floors and clamps audio_end_ms and always sends content_index 0', async () => {
    const { s, peer } = await started();
    await announced(s, peer, 'item_a1');
    s.truncate('item_a1', 1234.9);
    s.truncate('item_a1', -50);
    s.truncate('item_a1', Number.NaN);
    const got = [await peer.next('conversation.item.truncate'), await peer.next('conversation.item.truncate'), await peer.next('conversation.item.truncate')];
    expect(got.map(({ item_id, content_index, audio_end_ms }) => ({ item_id, content_index, audio_end_ms }))).toEqual([
      { item_id: 'item_a1', content_index: 0, audio_end_ms: 1234 },
      { item_id: 'item_a1', content_index: 0, audio_end_ms: 0 },
      { item_id: 'item_a1', content_index: 0, audio_end_ms: 0 },
    ]);
  });

  it('logs a truncate error as a warning and keeps the session running', async () => {
    const cap = capture();
    const s = session({}, cap.logger);
    const p = s.start();
    const peer = await server.peer(1);
    await peer.acceptUpdate();
    await p;
    const errors: unknown[] = [];
    s.on('error', (e) => errors.push(e));
    await announced(s, peer, 'item_a1');
    s.truncate('item_a1', 57340);
    const t = await peer.next('conversation.item.truncate');
    peer.send({
      type: 'error',
      error: { type: 'invalid_request_error', code: 'invalid_value', message: 'Audio content of 9250ms is already shorter than 57340ms', event_id: t.event_id },
    });
    await sync(s, peer);
    expect(s.state.name).toBe('ready');
    expect(s.stats.truncateErrors).toBe(1);
    expect(errors).toEqual([expect.objectContaining({ code: 'invalid_value', causeType: 'conversation.item.truncate' })]);
    const warn = cap.lines().find((l) => l.level === 40 && String(l.msg).startsWith('truncate failed'));
    expect(warn?.msg).toContain('itemId:item_a1, audioEndMs:57340');
  });
});

describe('tools', () => {
  it('sends function outputs only after response.done, then exactly one response.create', async () => {
    const { s, peer } = await started();
    const calls: ToolCallRecord[] = [];
    s.on('toolCall', (c) => calls.push(c));
    s.registerTool({
      name: 'lookup_order',
      description: 'Look up an order',
      parameters: { type: 'object', properties: { order_id: { type: 'string' } } },
      handler: async (args) => ({ output: JSON.stringify({ found: (args as { order_id: string }).order_id }) }),
    });
    await peer.next('session.update');
    peer.send({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } });
    functionCall(peer, 'resp_1', 'call_a', 'lookup_order', '{"order_id":"A1"}');
    functionCall(peer, 'resp_1', 'call_b', 'lookup_order', '{"order_id":"B2"}');
    await sync(s, peer);
    expect(calls).toHaveLength(2);
    expect(peer.ofTypes('conversation.item.create', 'response.create')).toHaveLength(0);

    responseDone(peer, 'resp_1', {
      output: [{ id: 'item_call_a', type: 'function_call', status: 'completed', call_id: 'call_a', name: 'lookup_order', arguments: '{"order_id":"A1"}' }],
    });
    const follow = await peer.next('response.create');
    responseCreated(peer, 'resp_2', follow);
    responseDone(peer, 'resp_2');
    await sync(s, peer);
    const sent = peer.ofTypes('conversation.item.create', 'response.create');
    expect(sent.map((m) => (m.type === 'response.create' ? 'response.create' : `${m.item.type}:${m.item.call_id}`))).toEqual([
      'function_call_output:call_a',
      'function_call_output:call_b',
      'response.create',
    ]);
    expect(sent[0].item.output).toBe('{"found":"A1"}');
    expect(follow.response.instructions).toBeUndefined();
    expect(calls.map((c) => [c.name, c.callId, c.error])).toEqual([
      ['lookup_order', 'call_a', undefined],
      ['lookup_order', 'call_b', undefined],
    ]);
  });

  it('turns an unknown tool and invalid JSON arguments into error outputs the model can read', async () => {
    const { s, peer } = await started();
    const calls: ToolCallRecord[] = [];
    s.on('toolCall', (c) => calls.push(c));
    s.registerTool({ name: 'lookup', description: 'x', parameters: {}, handler: async () => ({ output: 'never' }) });
    peer.send({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } });
    functionCall(peer, 'resp_1', 'call_1', 'no_such_tool', '{}');
    functionCall(peer, 'resp_1', 'call_2', 'lookup', '{"order_id": ');
    responseDone(peer, 'resp_1');
    await peer.next('response.create');
    const outputs = peer.ofTypes('conversation.item.create').map((m) => JSON.parse(m.item.output) as { error: string });
    expect(outputs[0].error).toContain("unknown tool 'no_such_tool'");
    expect(outputs[1].error).toContain('invalid JSON arguments');
    expect(calls.map((c) => Boolean(c.error))).toEqual([true, true]);
    expect(s.stats.toolErrors).toBe(2);
  });

  it('reports a throwing handler to the model and keeps going', async () => {
    const { s, peer } = await started();
    s.registerTool({ name: 'boom', description: 'x', parameters: {}, handler: async () => { throw new Error('backend down'); } });
    peer.send({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } });
    functionCall(peer, 'resp_1', 'call_1', 'boom', '{}');
    responseDone(peer, 'resp_1');
    const out = await peer.next('conversation.item.create');
    expect(JSON.parse(out.item.output)).toEqual({ error: 'backend down' });
    await peer.next('response.create');
  });

  it('passes follow-up instructions, and lets the tool await the follow-up response', async () => {
    const { s, peer } = await started();
    let followUp: Promise<ResponseOutcome | undefined> | undefined;
    s.registerTool({
      name: 'end_call',
      description: 'Hang up',
      parameters: {},
      handler: async (_args, ctx) => {
        followUp = ctx.followUp;
        return { output: '{"ok":true}', followUp: { instructions: 'Say goodbye.' } };
      },
    });
    peer.send({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } });
    functionCall(peer, 'resp_1', 'call_end', 'end_call', '{}');
    responseDone(peer, 'resp_1');
    const create = await peer.next('response.create');
    expect(create.response.instructions).toBe('Say goodbye.');
    responseCreated(peer, 'resp_bye', create);
    responseDone(peer, 'resp_bye');
    await expect(followUp).resolves.toMatchObject({ responseId: 'resp_bye', status: 'completed' });
  });

  it("sends no response.create when every result says 'none'", async () => {
    const { s, peer } = await started();
    let followUp: Promise<ResponseOutcome | undefined> | undefined;
    s.registerTool({
      name: 'note',
      description: 'x',
      parameters: {},
      handler: async (_a, ctx) => {
        followUp = ctx.followUp;
        return { output: 'ok', followUp: 'none' };
      },
    });
    peer.send({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } });
    functionCall(peer, 'resp_1', 'call_1', 'note', '{}');
    responseDone(peer, 'resp_1');
    await peer.next('conversation.item.create');
    await expect(followUp).resolves.toBeUndefined();
    await sync(s, peer);
    expect(peer.ofTypes('response.create')).toHaveLength(0);
  });

  it('holds queued responses until the tool outputs are sent', async () => {
    const { s, peer } = await started();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    s.registerTool({ name: 'slow', description: 'x', parameters: {}, handler: async () => { await gate; return { output: 'done' }; } });
    peer.send({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } });
    functionCall(peer, 'resp_1', 'call_1', 'slow', '{}');
    responseDone(peer, 'resp_1');
    await sync(s, peer);
    void s.createResponse({ instructions: 'queued' });
    await sync(s, peer);
    expect(peer.ofTypes('response.create', 'conversation.item.create')).toHaveLength(0);
    release();
    const first = await peer.next('response.create');
    expect(peer.ofTypes('conversation.item.create')).toHaveLength(1);
    expect(first.response.instructions).toBeUndefined();
  });

  it('aborts a handler that runs past the tool timeout and reports it', async () => {
    const { s, peer } = await started({ toolTimeoutMs: 50 });
    let aborted = false;
    s.registerTool({
      name: 'hang',
      description: 'x',
      parameters: {},
      handler: (_a, ctx) =>
        new Promise(() => {
          ctx.signal.addEventListener('abort', () => (aborted = true));
        }),
    });
    peer.send({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } });
    functionCall(peer, 'resp_1', 'call_1', 'hang', '{}');
    responseDone(peer, 'resp_1');
    const out = await peer.next('conversation.item.create');
    expect(JSON.parse(out.item.output).error).toContain('tool timed out');
    expect(aborted).toBe(true);
  });
});

describe('text input', () => {
  it('sends user and system text items', async () => {
    const { s, peer } = await started();
    s.sendUserText('The caller pressed 4');
    s.sendSystemText('Be brief.');
    const a = await peer.next('conversation.item.create');
    const b = await peer.next('conversation.item.create');
    expect(a.item).toEqual({ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'The caller pressed 4' }] });
    expect(b.item).toEqual({ type: 'message', role: 'system', content: [{ type: 'input_text', text: 'Be brief.' }] });
  });
});

describe('usage', () => {
  it('sums response.done usage across responses and emits the running cost', async () => {
    const { s, peer } = await started();
    const seen: number[] = [];
    s.on('usage', (u) => seen.push(u.totalTokens));
    const usage = {
      total_tokens: 300,
      input_tokens: 200,
      output_tokens: 100,
      input_token_details: { text_tokens: 50, audio_tokens: 150, cached_tokens: 0 },
      output_token_details: { text_tokens: 20, audio_tokens: 80 },
    };
    responseDone(peer, 'resp_1', { usage });
    responseDone(peer, 'resp_2', { usage });
    await sync(s, peer);
    expect(seen).toEqual([300, 600]);
    expect(s.usage).toMatchObject({ responses: 2, inputAudioTokens: 300, outputAudioTokens: 160, totalTokens: 600 });
    expect(s.usage.costUsd).toBeCloseTo((100 * 4 + 300 * 32 + 40 * 16 + 160 * 64) / 1e6, 12);
  });
});

describe('resilience', () => {
  async function converse(s: RealtimeSession, peer: Peer): Promise<void> {
    peer.send({ type: 'input_audio_buffer.speech_started', item_id: 'item_u1', audio_start_ms: 0 });
    peer.send({ type: 'input_audio_buffer.speech_stopped', item_id: 'item_u1', audio_end_ms: 900 });
    peer.send({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } });
    peer.send({ type: 'response.output_item.added', response_id: 'resp_1', item: { id: 'item_a1', type: 'message', role: 'assistant' } });
    peer.send({ type: 'response.output_audio_transcript.done', response_id: 'resp_1', item_id: 'item_a1', transcript: 'Thanks for calling Acme.' });
    // The caller's transcript arrives after the reply, yet belongs before it.
    peer.send({ type: 'conversation.item.input_audio_transcription.completed', item_id: 'item_u1', transcript: 'Hello?' });
    responseDone(peer, 'resp_1');
    await sync(s, peer);
  }

  it('reconnects after a socket drop, re-sends session.update and re-seeds the transcript in order', async () => {
    const { s, peer } = await started();
    await converse(s, peer);
    s.sendUserText('The caller pressed 4');
    await peer.next('conversation.item.create');
    const events: string[] = [];
    s.on('reconnecting', (r) => events.push(`reconnecting:${r.reason}`));
    const reconnected = s.waitFor('reconnected', 3000);
    peer.ws.terminate();
    const peer2 = await server.peer(2);
    const upd = await peer2.acceptUpdate();
    expect(upd.session.type).toBe('realtime');
    expect(upd.session.audio.output.voice).toBe('marin');
    const [info] = await reconnected;
    expect(events).toEqual(['reconnecting:connection_lost']);
    expect(info).toMatchObject({ reason: 'connection_lost', reseededItems: 3 });
    const seeded = [await peer2.next('conversation.item.create'), await peer2.next('conversation.item.create'), await peer2.next('conversation.item.create')];
    expect(seeded.map((m) => m.item)).toEqual([
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello?' }] },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Thanks for calling Acme.' }] },
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'The caller pressed 4' }] },
    ]);
    expect(s.state.name).toBe('ready');
    s.appendAudio(Buffer.from([0xff]));
    await peer2.next('input_audio_buffer.append');
    expect(s.stats.reconnects).toBe(1);
  });

  it('fails the active response with session_lost and replays queued requests after reconnecting', async () => {
    const { s, peer } = await started();
    const active = s.createResponse();
    const c1 = await peer.next('response.create');
    responseCreated(peer, 'resp_1', c1);
    await sync(s, peer);
    const queued = s.createResponse({ instructions: 'again' });
    peer.ws.terminate();
    await expect(active).resolves.toMatchObject({ responseId: 'resp_1', status: 'failed', reason: 'session_lost' });
    const peer2 = await server.peer(2);
    await peer2.acceptUpdate();
    const c2 = await peer2.next('response.create');
    expect(c2.response.instructions).toBe('again');
    responseCreated(peer2, 'resp_2', c2);
    responseDone(peer2, 'resp_2');
    await expect(queued).resolves.toMatchObject({ responseId: 'resp_2', status: 'completed' });
  });

  it('carries a tool call that was running when the socket dropped over to the new session: its pair, then the follow-up response', async () => {
    const { s, peer } = await started();
    let ctxSignal: AbortSignal | undefined;
    let finish!: (out: { output: string }) => void;
    s.registerTool({
      name: 'lookup_order',
      description: 'x',
      parameters: {},
      handler: (_a, ctx) => {
        ctxSignal = ctx.signal;
        return new Promise((r) => (finish = r));
      },
    });
    peer.send({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } });
    functionCall(peer, 'resp_1', 'call_1', 'lookup_order', '{"order_id":"A1"}');
    await sync(s, peer);
    peer.ws.terminate();
    const peer2 = await server.peer(2);
    await peer2.acceptUpdate();
    await s.waitFor('reconnected', 2000);
    // Still running: not aborted by the reconnect.
    expect(ctxSignal?.aborted).toBe(false);
    finish({ output: '{"status":"shipped"}' });
    const a = await peer2.next('conversation.item.create');
    const b = await peer2.next('conversation.item.create');
    expect([a.item, b.item]).toEqual([
      { type: 'function_call', call_id: 'call_1', name: 'lookup_order', arguments: '{"order_id":"A1"}' },
      { type: 'function_call_output', call_id: 'call_1', output: '{"status":"shipped"}' },
    ]);
    await peer2.next('response.create');
    // Nothing of the call went to the old socket after it dropped.
    expect(peer.received.filter((m) => m.type === 'conversation.item.create')).toEqual([]);
  });

  it('re-seeds a finished tool call as its function_call / function_call_output pair, in order with the transcript', async () => {
    const { s, peer } = await started();
    s.registerTool({ name: 'lookup_order', description: 'x', parameters: {}, handler: async () => ({ output: '{"status":"shipped"}', followUp: 'none' }) });
    peer.send({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } });
    functionCall(peer, 'resp_1', 'call_7', 'lookup_order', '{"order_id":"B2"}');
    responseDone(peer, 'resp_1');
    const out = await peer.next('conversation.item.create');
    expect(out.item).toEqual({ type: 'function_call_output', call_id: 'call_7', output: '{"status":"shipped"}' });
    s.sendUserText('The caller pressed 4');
    await peer.next('conversation.item.create');
    peer.ws.terminate();
    const peer2 = await server.peer(2);
    await peer2.acceptUpdate();
    const [info] = await s.waitFor('reconnected', 2000);
    expect(info.reseededItems).toBe(2);
    const seeded = [await peer2.next('conversation.item.create'), await peer2.next('conversation.item.create'), await peer2.next('conversation.item.create')];
    expect(seeded.map((m) => m.item)).toEqual([
      { type: 'function_call', call_id: 'call_7', name: 'lookup_order', arguments: '{"order_id":"B2"}' },
      { type: 'function_call_output', call_id: 'call_7', output: '{"status":"shipped"}' },
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'The caller pressed 4' }] },
    ]);
  });

  it('does not truncate an item of a server session lost to a reconnect (its audio may still be playing)', async () => {
    const { s, peer } = await started();
    peer.send({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } });
    peer.send({ type: 'response.output_item.added', response_id: 'resp_1', item: { id: 'item_old', type: 'message', role: 'assistant' } });
    await sync(s, peer);
    peer.ws.terminate();
    const peer2 = await server.peer(2);
    await peer2.acceptUpdate();
    await s.waitFor('reconnected', 2000);
    peer2.send({ type: 'response.created', response: { id: 'resp_2', status: 'in_progress' } });
    peer2.send({ type: 'response.output_item.added', response_id: 'resp_2', item: { id: 'item_new', type: 'message', role: 'assistant' } });
    await sync(s, peer2);
    s.truncate('item_old', 800);
    s.truncate('item_new', 300);
    const t = await peer2.next('conversation.item.truncate');
    expect(t).toMatchObject({ item_id: 'item_new', audio_end_ms: 300 });
    expect(s.stats).toMatchObject({ truncates: 1, truncatesSkipped: 1 });
    expect(peer2.received.filter((m) => m.type === 'conversation.item.truncate').map((m) => m.item_id)).toEqual(['item_new']);
  });

  it('reconnects on session_expired', async () => {
    const { s, peer } = await started();
    const reconnecting = s.waitFor('reconnecting', 2000);
    peer.send({ type: 'error', error: { type: 'invalid_request_error', code: 'session_expired', message: 'Your session hit the maximum duration of 60 minutes.' } });
    expect((await reconnecting)[0]).toEqual({ reason: 'session_expired' });
    await (await server.peer(2)).acceptUpdate();
    await s.waitFor('reconnected', 2000);
    expect(s.state.name).toBe('ready');
  });

  it("emits 'died' with an AiSessionError when the reconnect fails", async () => {
    const { s, peer } = await started();
    server.behaviour = { refuse: { status: 401, body: JSON.stringify({ error: { message: 'key revoked', code: 'invalid_api_key' } }) } };
    const died = s.waitFor('died', 3000);
    peer.ws.terminate();
    const [err] = await died;
    expect(err).toBeInstanceOf(AiSessionError);
    expect(err.aiCode).toBe('invalid_api_key');
    expect(err.message).toContain('reconnect failed');
    expect(s.state.name).toBe('died');
    expect(s.closed).toBe(true);
  });

  it('re-seeds an interrupted assistant item only as far as the caller heard it', async () => {
    const { s, peer } = await started({ outputFormat: 'pcmu' });
    peer.send({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } });
    // 800 bytes of G.711 = 100 ms received; the caller heard 50 ms.
    peer.send({ type: 'response.output_audio.delta', response_id: 'resp_1', item_id: 'item_a1', delta: Buffer.alloc(800, 0xff).toString('base64') });
    peer.send({ type: 'response.output_audio_transcript.done', response_id: 'resp_1', item_id: 'item_a1', transcript: 'one two three four five six' });
    responseDone(peer, 'resp_1', { status: 'cancelled', status_details: { reason: 'turn_detected' } });
    await sync(s, peer);
    s.truncate('item_a1', 50);
    await peer.next('conversation.item.truncate');
    peer.ws.terminate();
    const peer2 = await server.peer(2);
    await peer2.acceptUpdate();
    const seeded = await peer2.next('conversation.item.create');
    expect(seeded.item.content[0]).toEqual({ type: 'output_text', text: 'one two three…' });
  });

  it('rotates to a fresh server session when idle after the maximum age, deferring while a response is active', async () => {
    // The session's age runs on a fake clock; sockets and loop turns stay real.
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] });
    const { s, peer } = await started({ maxSessionAgeMs: 80 });
    await converse(s, peer);
    peer.send({ type: 'response.created', response: { id: 'resp_long', status: 'in_progress' } });
    await sync(s, peer);
    await jest.advanceTimersByTimeAsync(80);
    jest.useRealTimers();
    expect(server.peers).toHaveLength(1);
    const rotating = s.waitFor('reconnecting', 2000);
    responseDone(peer, 'resp_long');
    expect((await rotating)[0]).toEqual({ reason: 'rotation' });
    const peer2 = await server.peer(2);
    await peer2.acceptUpdate();
    const [info] = await s.waitFor('reconnected', 2000);
    expect(info.reseededItems).toBe(2);
    expect(s.stats.rotations).toBe(1);
    expect(s.stats.reconnects).toBe(0);
    s.close();
  });
});

describe('OpenAiBackend', () => {
  it('creates sessions that connect with the configured model and auth', async () => {
    const backend = new OpenAiBackend({ url: server.url(), model: 'gpt-realtime', apiKey: 'az-key', auth: 'api-key', pingIntervalMs: 0 });
    expect(backend.name).toBe('openai');
    const s = backend.createSession(base, silentLogger()) as RealtimeSession;
    sessions.push(s);
    expect(s.audioFormat.output.sampleRate).toBe(8000);
    const p = s.start();
    await (await server.peer(1)).acceptUpdate();
    await p;
    expect(server.upgrades[0].url).toBe('/v1/realtime?model=gpt-realtime');
    expect(server.upgrades[0].headers['api-key']).toBe('az-key');
    expect(server.upgrades[0].headers['openai-beta']).toBeUndefined();
  });
});

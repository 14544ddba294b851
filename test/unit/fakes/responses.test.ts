import { FakeRealtimeServer, DEFAULT_INSTRUCTIONS, type FakeSession, type FakeRealtimeServerOptions } from '../../fakes/FakeRealtimeServer';
import { RawRealtimeClient, type ServerEvent } from '../../fakes/RawRealtimeClient';
import { concatPcm, decodeWire, synthTone, type WireFormat } from '../../fakes/audio';

let server: FakeRealtimeServer;
let client: RawRealtimeClient;
let session: FakeSession;

async function start(opts: FakeRealtimeServerOptions = {}): Promise<void> {
  server = new FakeRealtimeServer(opts);
  await server.listen();
  client = await RawRealtimeClient.connect(server.url, { Authorization: 'Bearer any' });
  session = await server.waitForSession(2000, 0);
  await client.waitFor('conversation.created');
}

afterEach(async () => {
  await client?.close();
  await server?.close();
});

function zeroCrossings(pcm: Int16Array): number {
  let n = 0;
  for (let i = 1; i < pcm.length; i++) if ((pcm[i - 1]! < 0) !== (pcm[i]! < 0)) n++;
  return n;
}

function deltasOf(responseId: unknown): ServerEvent[] {
  return client.events.filter((e) => e.type === 'response.output_audio.delta' && e['response_id'] === responseId);
}

function decodeAll(events: ServerEvent[], format: WireFormat): Int16Array {
  return concatPcm(events.map((e) => decodeWire(e['delta'] as string, format)));
}

describe('FakeRealtimeServer responses', () => {
  it('emits the GA event sequence for a spoken response and a tone of the scripted length', async () => {
    await start();
    client.send({ type: 'response.create', event_id: 'evt_r' });
    const done = await client.waitFor('response.done');
    const created = client.all('response.created')[0]!;
    const id = (created['response'] as Record<string, unknown>)['id'];
    expect(id).toMatch(/^resp_/);
    const seq = client.events
      .slice(client.events.indexOf(created))
      .map((e) => e.type)
      .filter((t, i, a) => !(t.endsWith('.delta') && a[i - 1] === t));
    expect(seq).toEqual([
      'response.created',
      'rate_limits.updated',
      'response.output_item.added',
      'conversation.item.added',
      'response.content_part.added',
      'response.output_audio.delta',
      'response.output_audio_transcript.delta',
      ...seq.slice(7, seq.indexOf('response.output_audio.done')),
      'response.output_audio.done',
      'response.output_audio_transcript.done',
      'response.content_part.done',
      'response.output_item.done',
      'conversation.item.done',
      'response.done',
    ]);
    const pcm = decodeAll(deltasOf(id), 'audio/pcm');
    expect(pcm.length).toBe(1500 * 24);
    expect(zeroCrossings(pcm)).toBeGreaterThan(2990);
    expect(zeroCrossings(pcm)).toBeLessThan(3010);
    const resp = done['response'] as Record<string, any>;
    expect(resp).toMatchObject({ id, object: 'realtime.response', status: 'completed', status_details: null, conversation_id: session.conversationId });
    const transcript = client.all('response.output_audio_transcript.done')[0]!['transcript'];
    expect(resp['output']).toEqual([
      expect.objectContaining({ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_audio', transcript }] }),
    ]);
    const deltas = client.all('response.output_audio_transcript.delta').map((e) => e['delta']).join('');
    expect(deltas).toBe(transcript);
  });

  it('delivers audio in fixed chunks with transcript interleaved, paced so a cancel lands mid-response', async () => {
    await start({ burstFactor: 4, chunkMs: 100, respond: () => [{ audio: { toneHz: 500, ms: 20_000 }, transcript: 'one two three four five six' }] });
    client.send({ type: 'response.create' });
    await client.waitFor('response.output_audio.delta');
    client.send({ type: 'response.cancel' });
    const done = await client.waitFor('response.done');
    const resp = done['response'] as Record<string, any>;
    expect(resp['status']).toBe('cancelled');
    expect(resp['status_details']['reason']).toBe('client_cancelled');
    const deltas = deltasOf(resp['id']);
    expect(deltas.length).toBeGreaterThanOrEqual(1);
    expect(deltas.length).toBeLessThan(200);
    for (const d of deltas) expect(Buffer.from(d['delta'] as string, 'base64').length).toBe(100 * 48);
    expect(session.items[0]!.deliveredMs).toBe(deltas.length * 100);
    expect(session.responses[0]).toMatchObject({ status: 'cancelled', audioMs: deltas.length * 100 });
  });

  it('sends the whole reply before response.done and faster than the timeline it covers', async () => {
    await start({ burstFactor: 4, chunkMs: 100, respond: () => [{ audio: { toneHz: 500, ms: 1000 }, transcript: 'a b c d e f g h i j' }] });
    client.send({ type: 'response.create' });
    await client.waitFor('response.done');
    const types = client.events.map((e) => e.type);
    const audio = types.map((t, i) => (t === 'response.output_audio.delta' ? i : -1)).filter((i) => i >= 0);
    const words = types.map((t, i) => (t === 'response.output_audio_transcript.delta' ? i : -1)).filter((i) => i >= 0);
    expect(audio).toHaveLength(10);
    expect(words).toHaveLength(10);
    // Transcript follows the audio chunk by chunk rather than arriving in one block at the end.
    for (let k = 0; k < 10; k++) expect(words[k]!).toBeGreaterThan(audio[k]!);
    for (let k = 0; k < 9; k++) expect(words[k]!).toBeLessThan(audio[k + 1]!);
    expect(Math.max(...audio)).toBeLessThan(types.indexOf('response.done'));
  });

  it('encodes output as G.711 µ-law at 8 kHz when the session asks for audio/pcmu', async () => {
    await start({ burstFactor: Infinity });
    client.send({ type: 'session.update', session: { type: 'realtime', audio: { output: { format: { type: 'audio/pcmu' } } } } });
    await client.waitFor('session.updated');
    client.send({ type: 'response.create' });
    const done = await client.waitFor('response.done');
    const id = (done['response'] as Record<string, any>)['id'];
    const deltas = deltasOf(id);
    for (const d of deltas) expect(Buffer.from(d['delta'] as string, 'base64').length).toBe(800);
    const pcm = decodeAll(deltas, 'audio/pcmu');
    expect(pcm.length).toBe(1500 * 8);
    expect(zeroCrossings(pcm)).toBeGreaterThan(2990);
    expect(zeroCrossings(pcm)).toBeLessThan(3010);
    expect((done['response'] as Record<string, any>)['audio']['output']['format']).toEqual({ type: 'audio/pcmu' });
  });

  it('reports usage per the brief: user audio 1 token/100 ms, assistant audio 1 token/50 ms, text ~4 chars/token', async () => {
    await start({ burstFactor: Infinity });
    client.appendFramed(concatPcm([synthTone({ toneHz: 440, ms: 600 }), synthTone({ toneHz: 0, ms: 800 })]), 480);
    const done = await client.waitFor('response.done');
    const usage = (done['response'] as Record<string, any>)['usage'];
    const transcript = client.all('response.output_audio_transcript.done')[0]!['transcript'] as string;
    // The committed turn is 600 ms tone + 500 ms silence (no room for prefix padding at 0 ms) = 1100 ms.
    expect(usage['input_token_details']['audio_tokens']).toBe(11);
    expect(usage['input_token_details']['text_tokens']).toBe(Math.ceil(DEFAULT_INSTRUCTIONS.length / 4));
    expect(usage['output_token_details']).toEqual({ audio_tokens: 30, text_tokens: Math.ceil(transcript.length / 4) });
    expect(usage['input_tokens']).toBe(11 + Math.ceil(DEFAULT_INSTRUCTIONS.length / 4));
    expect(usage['output_tokens']).toBe(30 + Math.ceil(transcript.length / 4));
    expect(usage['total_tokens']).toBe(usage['input_tokens'] + usage['output_tokens']);
    expect(usage['input_token_details']['cached_tokens']).toBe(0);
  });

  it('allows one active response: a second response.create errors, cancel with nothing active errors', async () => {
    await start({ burstFactor: 1 });
    client.send({ type: 'response.cancel', event_id: 'evt_cancel0' });
    expect((await client.waitFor('error'))['error']).toMatchObject({ code: 'response_cancel_not_active', event_id: 'evt_cancel0' });
    client.send({ type: 'response.create' });
    await client.waitFor('response.created');
    const mark = client.mark();
    client.send({ type: 'response.create', event_id: 'evt_second' });
    const err = (await client.waitFor('error', 2000, mark))['error'] as Record<string, unknown>;
    expect(err).toMatchObject({ code: 'conversation_already_has_active_response', event_id: 'evt_second' });
    client.send({ type: 'response.cancel' });
    await client.waitFor('response.done');
    expect(session.responses).toHaveLength(1);
  });

  it('applies per-response instructions, text modality and out-of-band conversation:none', async () => {
    const seen: string[] = [];
    await start({
      burstFactor: Infinity,
      respond: (ctx) => {
        seen.push(ctx.instructions);
        return [{ transcript: 'plain text answer here' }];
      },
    });
    client.send({ type: 'response.create', response: { instructions: 'Say hi', output_modalities: ['text'] } });
    const done = await client.waitFor('response.done');
    expect(seen).toEqual(['Say hi']);
    expect(client.all('response.output_audio.delta')).toHaveLength(0);
    expect(client.all('response.output_text.done')[0]!['text']).toBe('plain text answer here');
    expect((done['response'] as Record<string, any>)['output'][0]['content']).toEqual([{ type: 'output_text', text: 'plain text answer here' }]);
    const mark = client.mark();
    client.send({ type: 'response.create', response: { conversation: 'none', metadata: { topic: 'x' } } });
    const oob = await client.waitFor('response.done', 2000, mark);
    expect((oob['response'] as Record<string, any>)).toMatchObject({ conversation_id: null, metadata: { topic: 'x' } });
    expect(session.items).toHaveLength(1);
  });

  it('stops at max_output_tokens with status incomplete', async () => {
    await start({ burstFactor: Infinity });
    client.send({ type: 'response.create', response: { max_output_tokens: 5 } });
    const done = await client.waitFor('response.done');
    expect((done['response'] as Record<string, any>)['status_details']).toEqual({ type: 'incomplete', reason: 'max_output_tokens' });
    expect(client.all('response.output_audio.delta').length).toBeLessThan(15);
  });

  it('answers conversation.item.create for text items with added then done', async () => {
    await start({ burstFactor: Infinity });
    client.send({ type: 'conversation.item.create', item: { type: 'message', role: 'system', content: [{ type: 'input_text', text: 'note' }] } });
    client.send({ type: 'conversation.item.create', item: { id: 'item_seed', type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'earlier' }] } });
    client.send({ type: 'conversation.item.create', previous_item_id: 'root', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'first' }] } });
    await client.waitFor((e) => e.type === 'conversation.item.done' && client.all('conversation.item.done').length === 3);
    expect(session.items.map((i) => i.role)).toEqual(['user', 'system', 'assistant']);
    const systemId = session.items[1]!.id;
    expect(client.all('conversation.item.added').map((e) => e['previous_item_id'])).toEqual([null, systemId, null]);
    client.send({ type: 'conversation.item.create', event_id: 'evt_dup', item: { id: 'item_seed', type: 'message', role: 'user', content: [{ type: 'input_text', text: 'x' }] } });
    expect((await client.waitFor('error'))['error']).toMatchObject({ param: 'item.id', event_id: 'evt_dup' });
  });
});

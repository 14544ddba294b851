import { FakeRealtimeServer, type FakeSession, type RespondContext, type Step } from '../../fakes/FakeRealtimeServer';
import { RawRealtimeClient } from '../../fakes/RawRealtimeClient';

let server: FakeRealtimeServer;
let client: RawRealtimeClient;
let session: FakeSession;
const contexts: RespondContext[] = [];

async function start(respond: (ctx: RespondContext) => Step[], burstFactor = 4): Promise<void> {
  contexts.length = 0;
  server = new FakeRealtimeServer({
    burstFactor,
    respond: (ctx) => {
      contexts.push(ctx);
      return respond(ctx);
    },
  });
  await server.listen();
  client = await RawRealtimeClient.connect(server.url, { Authorization: 'Bearer any' });
  session = await server.waitForSession(2000, 0);
  await client.waitFor('conversation.created');
}

afterEach(async () => {
  await client?.close();
  await server?.close();
});

async function truncateReply(body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const mark = client.mark();
  client.send({ type: 'conversation.item.truncate', content_index: 0, ...body });
  return client.waitFor((e) => e.type === 'error' || e.type === 'conversation.item.truncated', 2000, mark);
}

describe('FakeRealtimeServer conversation.item.truncate', () => {
  beforeEach(async () => {
    await start(() => [{ audio: { toneHz: 1000, ms: 30_000 }, transcript: 'long answer' }]);
    client.send({ type: 'response.create' });
    await client.waitFor('response.output_audio.delta');
    client.send({ type: 'response.cancel' });
    await client.waitFor('response.done');
  });

  it('errors when audio_end_ms exceeds the audio delivered for the item', async () => {
    const itemId = session.items[0]!.id;
    const deliveredMs = client.all('response.output_audio.delta').length * 100;
    expect(deliveredMs).toBeLessThan(30_000);
    const ev = await truncateReply({ item_id: itemId, audio_end_ms: deliveredMs + 1, event_id: 'evt_t' });
    expect(ev['error']).toEqual({
      type: 'invalid_request_error',
      code: 'invalid_value',
      param: 'audio_end_ms',
      message: `Audio content of ${deliveredMs}ms is already shorter than ${deliveredMs + 1}ms`,
      event_id: 'evt_t',
    });
    expect(session.truncations).toEqual([]);
  });

  it('accepts audio_end_ms up to the delivered audio, records it and drops the transcript', async () => {
    const itemId = session.items[0]!.id;
    const deliveredMs = client.all('response.output_audio.delta').length * 100;
    const ev = await truncateReply({ item_id: itemId, audio_end_ms: deliveredMs - 40 });
    expect(ev).toMatchObject({ type: 'conversation.item.truncated', item_id: itemId, content_index: 0, audio_end_ms: deliveredMs - 40 });
    expect(session.truncations).toEqual([
      expect.objectContaining({ itemId, audioEndMs: deliveredMs - 40, deliveredMs, contentIndex: 0, responseActive: false }),
    ]);
    expect(session.items[0]!.content).toEqual([{ type: 'output_audio', transcript: '' }]);
    // The truncated length is now the item's audio length.
    const again = await truncateReply({ item_id: itemId, audio_end_ms: deliveredMs - 20 });
    expect(again['error']).toMatchObject({ message: `Audio content of ${deliveredMs - 40}ms is already shorter than ${deliveredMs - 20}ms` });
  });

  it('rejects unknown items, non-zero content_index, negative and fractional audio_end_ms', async () => {
    const itemId = session.items[0]!.id;
    expect((await truncateReply({ item_id: 'item_nope', audio_end_ms: 0 }))['error']).toMatchObject({ code: 'item_truncate_invalid_item_id' });
    expect((await truncateReply({ item_id: itemId, content_index: 1, audio_end_ms: 0 }))['error']).toMatchObject({ param: 'content_index' });
    expect((await truncateReply({ item_id: itemId, audio_end_ms: -1 }))['error']).toMatchObject({ code: 'integer_below_min_value', param: 'audio_end_ms' });
    expect((await truncateReply({ item_id: itemId, audio_end_ms: 12.5 }))['error']).toMatchObject({ code: 'invalid_type', param: 'audio_end_ms' });
  });

  it('rejects truncating a user item', async () => {
    client.send({ type: 'conversation.item.create', item: { id: 'item_user', type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hi' }] } });
    await client.waitFor('conversation.item.done');
    expect((await truncateReply({ item_id: 'item_user', audio_end_ms: 0 }))['error']).toMatchObject({ code: 'invalid_value', param: 'item_id' });
  });
});

describe('FakeRealtimeServer function calls', () => {
  it('runs a function call round trip and shows the output to the next response', async () => {
    await start(
      (ctx) =>
        ctx.functionOutputs.length === 0
          ? [{ audio: { toneHz: 800, ms: 200 }, transcript: 'Let me check.' }, { functionCall: { name: 'lookup_order', arguments: { order_id: 'A12' } } }]
          : [{ audio: { toneHz: 600, ms: 200 }, transcript: `It is ${JSON.parse(ctx.functionOutputs[0]!.output).status}.` }],
      Infinity,
    );
    client.send({ type: 'response.create' });
    const done = await client.waitFor('response.done');
    const added = client.all('response.output_item.added').map((e) => e['item'] as Record<string, unknown>);
    expect(added[1]).toMatchObject({ type: 'function_call', name: 'lookup_order', arguments: '', status: 'in_progress' });
    const callId = added[1]!['call_id'] as string;
    expect(callId).toMatch(/^call_/);
    const args = client.all('response.function_call_arguments.delta').map((e) => e['delta']).join('');
    expect(args).toBe('{"order_id":"A12"}');
    expect(client.all('response.function_call_arguments.done')[0]).toMatchObject({ call_id: callId, arguments: args, output_index: 1 });
    const itemDone = client.all('response.output_item.done')[1]!['item'];
    expect(itemDone).toMatchObject({ type: 'function_call', status: 'completed', call_id: callId, name: 'lookup_order', arguments: args });
    expect((done['response'] as Record<string, any>)['output'][1]).toEqual(itemDone);
    const order = client.events.map((e) => e.type);
    expect(order.indexOf('response.function_call_arguments.done')).toBeLessThan(order.lastIndexOf('response.output_item.done'));

    client.send({ type: 'conversation.item.create', event_id: 'evt_bad', item: { type: 'function_call_output', call_id: 'call_unknown', output: '{}' } });
    expect((await client.waitFor('error'))['error']).toMatchObject({ param: 'item.call_id', event_id: 'evt_bad' });

    const mark = client.mark();
    client.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: callId, output: '{"status":"shipped"}' } });
    await client.waitFor('conversation.item.done', 2000, mark);
    client.send({ type: 'response.create' });
    const second = await client.waitFor('response.done', 2000, mark);
    expect((second['response'] as Record<string, any>)['status']).toBe('completed');
    expect(contexts[1]!.functionOutputs).toEqual([{ callId, output: '{"status":"shipped"}' }]);
    expect(contexts[1]!.conversation.map((i) => i['type'])).toEqual(['message', 'function_call', 'function_call_output']);
    expect(client.all('response.output_audio_transcript.done')[1]!['transcript']).toBe('It is shipped.');
  });

  it('accepts a replayed function_call item and then its output (re-seeding after reconnect)', async () => {
    await start(() => [], Infinity);
    client.send({ type: 'conversation.item.create', item: { type: 'function_call', call_id: 'call_old', name: 'lookup_order', arguments: '{}' } });
    client.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: 'call_old', output: 'ok' } });
    await client.waitFor((e) => e.type === 'conversation.item.done' && client.all('conversation.item.done').length === 2);
    expect(session.items.map((i) => i.type)).toEqual(['function_call', 'function_call_output']);
    expect(session.errors).toEqual([]);
  });
});

/**
 * The fake Realtime server's newer session features, as the GA reference has them: reasoning and
 * parallel tool calls (reasoning models only), prompt, truncation, the transcription models, and
 * MCP servers it really lists and calls (a FakeMcpServer), with approval requests.
 */
import { FakeMcpServer } from '../../fakes/FakeMcpServer';
import { FakeRealtimeServer, type FakeSession, type RespondContext, type Step } from '../../fakes/FakeRealtimeServer';
import { RawRealtimeClient } from '../../fakes/RawRealtimeClient';

let server: FakeRealtimeServer;
let client: RawRealtimeClient;
let session: FakeSession;
let mcp: FakeMcpServer | undefined;
const contexts: RespondContext[] = [];

async function start(model: string, respond: (ctx: RespondContext) => Step[] = () => []): Promise<void> {
  contexts.length = 0;
  server = new FakeRealtimeServer({
    burstFactor: Infinity,
    respond: (ctx) => {
      contexts.push(ctx);
      return respond(ctx);
    },
  });
  await server.listen();
  client = await RawRealtimeClient.connect(`${server.baseUrl}/v1/realtime?model=${model}`, { Authorization: 'Bearer k' });
  session = await server.waitForSession(2000, 0);
  await client.waitFor('conversation.created');
}

afterEach(async () => {
  await client?.close();
  await server?.close();
  await mcp?.close();
  mcp = undefined;
});

async function update(body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const mark = client.mark();
  client.send({ type: 'session.update', session: { type: 'realtime', ...body } });
  return client.waitFor((e) => e.type === 'error' || e.type === 'session.updated', 2000, mark);
}

const err = (ev: Record<string, unknown>) => ev['error'] as Record<string, unknown>;

describe('FakeRealtimeServer: reasoning, parallel tool calls, prompt, truncation, transcription', () => {
  it('takes reasoning and parallel_tool_calls on a reasoning model, with the reference efforts only', async () => {
    await start('gpt-realtime-2');
    expect((await update({ reasoning: { effort: 'xhigh' }, parallel_tool_calls: true })).type).toBe('session.updated');
    expect(session.config).toMatchObject({ reasoning: { effort: 'xhigh' }, parallel_tool_calls: true });
    expect(err(await update({ reasoning: { effort: 'max' } }))).toMatchObject({ code: 'invalid_value', param: 'session.reasoning.effort' });
    expect(err(await update({ reasoning: { effort: 'low', budget: 1 } }))).toMatchObject({ code: 'unknown_parameter', param: 'session.reasoning.budget' });
    expect(err(await update({ parallel_tool_calls: 'yes' }))).toMatchObject({ code: 'invalid_type', param: 'session.parallel_tool_calls' });
  });

  it('refuses reasoning and parallel_tool_calls on a model without reasoning', async () => {
    await start('gpt-realtime');
    expect(err(await update({ reasoning: { effort: 'low' } }))).toMatchObject({ code: 'unsupported_parameter', param: 'session.reasoning' });
    expect(err(await update({ parallel_tool_calls: true }))).toMatchObject({ code: 'unsupported_parameter', param: 'session.parallel_tool_calls' });
  });

  it('checks prompt and truncation shapes', async () => {
    await start('gpt-realtime');
    expect((await update({ prompt: { id: 'pmpt_1', version: '2', variables: { who: '+4930' } }, truncation: { type: 'retention_ratio', retention_ratio: 0.8, token_limits: { post_instructions: 5000 } } })).type).toBe('session.updated');
    expect(err(await update({ prompt: { version: '2' } }))).toMatchObject({ code: 'missing_required_parameter', param: 'session.prompt.id' });
    expect(err(await update({ truncation: { type: 'retention_ratio' } }))).toMatchObject({ code: 'missing_required_parameter', param: 'session.truncation.retention_ratio' });
    expect(err(await update({ truncation: { type: 'retention_ratio', retention_ratio: 1.2 } }))).toMatchObject({ param: 'session.truncation.retention_ratio' });
    expect(err(await update({ truncation: 'half' }))).toMatchObject({ code: 'invalid_value', param: 'session.truncation' });
  });

  it('takes the reference transcription models, delay with gpt-realtime-whisper only, and no prompt for it', async () => {
    await start('gpt-realtime');
    const tr = (t: Record<string, unknown>) => update({ audio: { input: { transcription: t } } });
    for (const model of ['whisper-1', 'gpt-4o-mini-transcribe', 'gpt-4o-mini-transcribe-2025-12-15', 'gpt-4o-transcribe', 'gpt-4o-transcribe-diarize', 'gpt-realtime-whisper']) {
      expect((await tr({ model })).type).toBe('session.updated');
    }
    expect((await tr({ model: 'gpt-realtime-whisper', delay: 'low' })).type).toBe('session.updated');
    expect(err(await tr({ model: 'whisper-2' }))).toMatchObject({ code: 'invalid_value', param: 'session.audio.input.transcription.model' });
    expect(err(await tr({ model: 'gpt-4o-transcribe', delay: 'low' }))).toMatchObject({ code: 'unsupported_parameter', param: 'session.audio.input.transcription.delay' });
    expect(err(await tr({ model: 'gpt-realtime-whisper', prompt: 'Acme' }))).toMatchObject({ param: 'session.audio.input.transcription.prompt' });
  });
});

describe('FakeRealtimeServer: MCP tools', () => {
  it('checks the MCP tool shape: a server, filters and approval policies as the reference has them', async () => {
    await start('gpt-realtime');
    const tool = (t: Record<string, unknown>) => update({ tools: [{ type: 'mcp', server_label: 'x', ...t }] });
    expect(err(await tool({}))).toMatchObject({ code: 'missing_required_parameter', param: 'session.tools[0].server_url' });
    expect(err(await tool({ server_url: 'not a url' }))).toMatchObject({ code: 'invalid_value', param: 'session.tools[0].server_url' });
    expect(err(await tool({ server_url: 'https://a/mcp', require_approval: 'sometimes' }))).toMatchObject({ code: 'invalid_value', param: 'session.tools[0].require_approval' });
    expect(err(await tool({ server_url: 'https://a/mcp', require_approval: { always: ['a'] } }))).toMatchObject({ code: 'invalid_type', param: 'session.tools[0].require_approval.always' });
    expect(err(await tool({ server_url: 'https://a/mcp', require_approval: { sometimes: { tool_names: ['a'] } } }))).toMatchObject({ code: 'unknown_parameter' });
    expect(err(await tool({ server_url: 'https://a/mcp', headers: { k: 1 } }))).toMatchObject({ code: 'invalid_type', param: 'session.tools[0].headers.k' });
    expect(err(await tool({ connector_id: 'connector_myspace' }))).toMatchObject({ code: 'invalid_value', param: 'session.tools[0].connector_id' });
    expect(err(await update({ tools: [{ type: 'mcp', server_label: 'x', server_url: 'https://a/mcp' }, { type: 'mcp', server_label: 'x', server_url: 'https://b/mcp' }] }))).toMatchObject({
      param: 'session.tools[1].server_label',
    });
    const fine = await update({
      tools: [{ type: 'mcp', server_label: 'x', connector_id: 'connector_gmail', authorization: 'tok', allowed_tools: { read_only: true }, require_approval: { never: { tool_names: ['a'] } }, defer_loading: false }],
    });
    expect(fine.type).toBe('session.updated');
  });

  it('lists the tools of the server, calls one without approval, and asks before another', async () => {
    mcp = new FakeMcpServer({
      requireHeaders: { 'x-api-key': 'key-1', authorization: 'Bearer tok-1' },
      tools: [
        { name: 'lookup_order', inputSchema: { type: 'object' }, handler: (a) => `order ${String(a['order'])} shipped` },
        { name: 'cancel_order', inputSchema: { type: 'object' }, handler: () => 'cancelled' },
        { name: 'hidden', inputSchema: { type: 'object' }, handler: () => 'x' },
      ],
    });
    await mcp.listen();
    await start('gpt-realtime', (ctx) =>
      ctx.index === 0
        ? [
            { mcpCall: { serverLabel: 'orders', name: 'lookup_order', arguments: { order: 'A1' } } },
            { mcpCall: { serverLabel: 'orders', name: 'cancel_order', arguments: { order: 'A1' } } },
            { mcpCall: { serverLabel: 'orders', name: 'hidden', arguments: {} } },
            { transcript: 'One moment.', audio: { toneHz: 1000, ms: 100 } },
          ]
        : [{ transcript: 'Done.', audio: { toneHz: 1000, ms: 100 } }],
    );
    const upd = await update({
      tools: [
        {
          type: 'mcp',
          server_label: 'orders',
          server_url: mcp.url,
          headers: { 'X-Api-Key': 'key-1' },
          authorization: 'tok-1',
          allowed_tools: ['lookup_order', 'cancel_order'],
          require_approval: { never: { tool_names: ['lookup_order'] } },
        },
      ],
    });
    expect(upd.type).toBe('session.updated');
    await client.waitFor('mcp_list_tools.completed');
    const listed = await client.waitFor((e) => e.type === 'conversation.item.done' && (e['item'] as { type: string }).type === 'mcp_list_tools');
    expect((listed['item'] as { tools: { name: string }[] }).tools.map((t) => t.name)).toEqual(['lookup_order', 'cancel_order']);

    client.send({ type: 'response.create' });
    const done = await client.waitFor('response.done');
    const output = (done['response'] as { output: { type: string; name?: string; output?: string; id: string }[] }).output;
    expect(output.map((o) => `${o.type}:${o.name ?? ''}`)).toEqual(['mcp_call:lookup_order', 'mcp_approval_request:cancel_order', 'message:']);
    expect(output[0]!.output).toBe('order A1 shipped');
    const order = client.events.map((e) => e.type).filter((t) => t.startsWith('response.mcp_call') || t === 'mcp_list_tools.completed');
    expect(order).toEqual(['mcp_list_tools.completed', 'response.mcp_call_arguments.delta', 'response.mcp_call_arguments.delta', 'response.mcp_call_arguments.done', 'response.mcp_call.in_progress', 'response.mcp_call.completed']);
    expect(session.mcpSkipped).toEqual(['orders.hidden: not offered']);
    expect(mcp.calls.map((c) => c.tool)).toEqual(['lookup_order']);
    expect(mcp.calls[0]!.headers).toMatchObject({ 'x-api-key': 'key-1', authorization: 'Bearer tok-1', 'mcp-session-id': expect.any(String) });

    // An approval response must name its own id and an existing request.
    const mark = client.mark();
    client.send({ type: 'conversation.item.create', item: { type: 'mcp_approval_response', approval_request_id: output[1]!.id, approve: true } });
    expect(err(await client.waitFor('error', 2000, mark))).toMatchObject({ code: 'missing_required_parameter', param: 'item.id' });
    const mark2 = client.mark();
    client.send({ type: 'conversation.item.create', item: { type: 'mcp_approval_response', id: 'mcpr_x1', approval_request_id: 'nope', approve: true } });
    expect(err(await client.waitFor('error', 2000, mark2))).toMatchObject({ code: 'invalid_value', param: 'item.approval_request_id' });

    client.send({ type: 'conversation.item.create', item: { type: 'mcp_approval_response', id: 'mcpr_ok', approval_request_id: output[1]!.id, approve: true } });
    await client.waitFor((e) => e.type === 'conversation.item.done' && (e['item'] as { id: string }).id === 'mcpr_ok');
    const mark3 = client.mark();
    client.send({ type: 'response.create' });
    const done2 = await client.waitFor('response.done', 5000, mark3);
    const out2 = (done2['response'] as { output: { type: string; name?: string; approval_request_id?: string; output?: string }[] }).output;
    expect(out2[0]).toMatchObject({ type: 'mcp_call', name: 'cancel_order', approval_request_id: output[1]!.id, output: 'cancelled' });
    expect(contexts[1]!.mcpApprovals).toEqual([{ requestId: output[1]!.id, serverLabel: 'orders', name: 'cancel_order', approve: true }]);
    expect(mcp.calls.map((c) => c.tool)).toEqual(['lookup_order', 'cancel_order']);
  });

  it('makes no call for a refused request, and reports a server that refuses the headers', async () => {
    mcp = new FakeMcpServer({ requireHeaders: { 'x-api-key': 'right' }, tools: [{ name: 'wipe', inputSchema: {}, handler: () => 'wiped' }] });
    await mcp.listen();
    await start('gpt-realtime', (ctx) => (ctx.index === 0 ? [{ mcpCall: { serverLabel: 'ok', name: 'wipe', arguments: {} } }] : []));
    await update({
      tools: [
        { type: 'mcp', server_label: 'ok', server_url: mcp.url, headers: { 'x-api-key': 'right' } },
        { type: 'mcp', server_label: 'bad', server_url: mcp.url, headers: { 'x-api-key': 'wrong' }, require_approval: 'never' },
      ],
    });
    await client.waitFor('mcp_list_tools.failed');
    await client.waitFor('mcp_list_tools.completed');
    expect(session.mcpListing()).toEqual({ ok: ['wipe'], bad: { error: expect.stringContaining('401') } });
    client.send({ type: 'response.create' });
    const done = await client.waitFor('response.done');
    const req = (done['response'] as { output: { id: string; type: string }[] }).output[0]!;
    expect(req.type).toBe('mcp_approval_request');
    client.send({ type: 'conversation.item.create', item: { type: 'mcp_approval_response', id: 'mcpr_no', approval_request_id: req.id, approve: false, reason: 'not allowed' } });
    await client.waitFor((e) => e.type === 'conversation.item.done' && (e['item'] as { id: string }).id === 'mcpr_no');
    const mark = client.mark();
    client.send({ type: 'response.create' });
    const done2 = await client.waitFor('response.done', 5000, mark);
    expect((done2['response'] as { output: unknown[] }).output).toEqual([]);
    expect(contexts[1]!.mcpApprovals).toEqual([{ requestId: req.id, serverLabel: 'ok', name: 'wipe', approve: false }]);
    expect(mcp.calls).toEqual([]);
  });
});

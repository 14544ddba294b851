/**
 * The newer session features of the Realtime client: reasoning, parallel tool calls, a stored
 * prompt, truncation, and remote MCP servers (declared in session.tools; their calls reported as
 * tool calls; approval requests answered by the configured policy), against a scripted peer.
 */
import { PassThrough } from 'node:stream';
import { createLogger, silentLogger, type Logger } from '../../../src/logging/logger';
import { RealtimeSession } from '../../../src/ai/RealtimeSession';
import type { AiSessionOptions, McpServerOptions, ToolCallRecord } from '../../../src/ai/types';
import { BASE_SESSION } from './echoHelpers';
import { ScriptedServer, type Peer } from './scriptedServer';

let server: ScriptedServer;
const sessions: RealtimeSession[] = [];

const base: AiSessionOptions = { ...BASE_SESSION, instructions: 'You answer the phone for Acme.' };

const orders: McpServerOptions = {
  label: 'orders',
  url: 'https://mcp.example.com/mcp',
  headers: { 'X-Api-Key': 'mcp-header-secret-42' },
  authorization: 'mcp-oauth-token-77',
  allowedTools: ['lookup_order', 'cancel_order'],
  requireApproval: { always: ['cancel_order', 'refund'], never: ['lookup_order'] },
  approvedTools: ['refund'],
};

function session(opts: Partial<AiSessionOptions> = {}, logger: Logger = silentLogger()): RealtimeSession {
  const s = new RealtimeSession(
    { session: { ...base, ...opts }, connection: { url: server.url(), model: 'gpt-realtime-2', apiKey: 'sk-test', pingIntervalMs: 0, connectTimeoutMs: 1000 } },
    logger,
  );
  sessions.push(s);
  return s;
}

async function started(opts: Partial<AiSessionOptions> = {}, logger?: Logger): Promise<{ s: RealtimeSession; peer: Peer; update: Record<string, any> }> {
  const s = session(opts, logger);
  const p = s.start();
  const peer = await server.peer(1);
  const update = await peer.acceptUpdate();
  await p;
  return { s, peer, update };
}

async function sync(s: RealtimeSession, peer: Peer): Promise<void> {
  const handled = s.waitFor('speechStopped', 2000);
  peer.send({ type: 'input_audio_buffer.speech_stopped', item_id: 'item_sync', audio_end_ms: 0 });
  await handled;
  s.appendAudio(Buffer.from([0, 0]));
  await peer.next('input_audio_buffer.append');
}

function capture(): { logger: Logger; text: () => string } {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (c: Buffer) => chunks.push(c.toString()));
  return { logger: createLogger({ level: 'debug', destination: out, pretty: false }), text: () => chunks.join('') };
}

beforeEach(async () => {
  server = await ScriptedServer.start();
});
afterEach(async () => {
  for (const s of sessions.splice(0)) s.close();
  await server.stop();
});

describe('session.update', () => {
  it('carries reasoning, parallel tool calls, the rendered prompt, truncation and the MCP servers', () => {
    const cfg = session({
      reasoning: { effort: 'high' },
      parallelToolCalls: true,
      prompt: { id: 'pmpt_abc', version: '3', variables: { caller_number: '+4930123' } },
      truncation: 'disabled',
      mcpServers: [orders, { label: 'docs', url: 'https://docs.example.com/mcp', requireApproval: 'never', approvedTools: [] }],
    }).buildSessionConfig();
    expect(cfg.reasoning).toEqual({ effort: 'high' });
    expect(cfg.parallel_tool_calls).toBe(true);
    expect(cfg.prompt).toEqual({ id: 'pmpt_abc', version: '3', variables: { caller_number: '+4930123' } });
    expect(cfg.truncation).toBe('disabled');
    expect(session({ transcription: { model: 'gpt-realtime-whisper', delay: 'minimal' } }).buildSessionConfig().audio?.input?.transcription).toEqual({
      model: 'gpt-realtime-whisper',
      delay: 'minimal',
    });
    expect(cfg.tools).toEqual([
      {
        type: 'mcp',
        server_label: 'orders',
        server_url: 'https://mcp.example.com/mcp',
        headers: { 'X-Api-Key': 'mcp-header-secret-42' },
        authorization: 'mcp-oauth-token-77',
        allowed_tools: ['lookup_order', 'cancel_order'],
        require_approval: { always: { tool_names: ['cancel_order', 'refund'] }, never: { tool_names: ['lookup_order'] } },
      },
      { type: 'mcp', server_label: 'docs', server_url: 'https://docs.example.com/mcp', require_approval: 'never' },
    ]);
  });

  it('sends none of them when unset', () => {
    const cfg = session().buildSessionConfig() as unknown as Record<string, unknown>;
    for (const k of ['reasoning', 'parallel_tool_calls', 'prompt', 'truncation', 'tools']) expect(cfg[k]).toBeUndefined();
  });

  it('keeps the MCP servers when a registered tool updates the tool list', async () => {
    const { s, peer } = await started({ mcpServers: [orders] });
    s.registerTool({ name: 'end_call', description: 'Hang up', parameters: { type: 'object' }, handler: async () => ({ output: '{}' }) });
    const upd = await peer.next('session.update');
    expect(upd.session.tools.map((t: { type: string; name?: string; server_label?: string }) => t.name ?? t.server_label)).toEqual(['end_call', 'orders']);
  });
});

describe('parallel tool calls', () => {
  it('runs the calls of one response at the same time and answers once every output is in', async () => {
    const { s, peer } = await started({ parallelToolCalls: true });
    let running = 0;
    let most = 0;
    const release: (() => void)[] = [];
    s.registerTool({
      name: 'slow',
      description: 'slow',
      parameters: { type: 'object' },
      handler: async (args) => {
        running += 1;
        most = Math.max(most, running);
        await new Promise<void>((r) => release.push(r));
        running -= 1;
        return { output: JSON.stringify(args) };
      },
    });
    await peer.next('session.update');
    peer.send({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } });
    for (const id of ['a', 'b', 'c']) {
      peer.send({
        type: 'response.output_item.done',
        response_id: 'resp_1',
        item: { id: `item_${id}`, type: 'function_call', status: 'completed', call_id: `call_${id}`, name: 'slow', arguments: `{"n":"${id}"}` },
      });
    }
    peer.send({ type: 'response.done', response: { id: 'resp_1', status: 'completed', output: [] } });
    await sync(s, peer);
    expect(most).toBe(3);
    expect(peer.ofTypes('conversation.item.create', 'response.create')).toHaveLength(0);
    release[0]!();
    release[1]!();
    await sync(s, peer);
    // Two of three outputs in: still nothing sent.
    expect(peer.ofTypes('conversation.item.create', 'response.create')).toHaveLength(0);
    release[2]!();
    await peer.next('response.create');
    const sent = peer.ofTypes('conversation.item.create', 'response.create');
    expect(sent.map((m) => (m.type === 'response.create' ? 'create' : m.item.call_id))).toEqual(['call_a', 'call_b', 'call_c', 'create']);
  });
});

describe('MCP servers', () => {
  it('reports a finished MCP call as a tool call, with its duration, output and arguments', async () => {
    const cap = capture();
    const { s, peer } = await started({ mcpServers: [orders] }, cap.logger);
    const calls: ToolCallRecord[] = [];
    s.on('toolCall', (r) => calls.push(r));
    peer.send({ type: 'conversation.item.added', item: { id: 'mcpl_1', type: 'mcp_list_tools', server_label: 'orders', tools: [] } });
    peer.send({ type: 'mcp_list_tools.in_progress', item_id: 'mcpl_1' });
    peer.send({ type: 'mcp_list_tools.completed', item_id: 'mcpl_1' });
    peer.send({ type: 'conversation.item.done', item: { id: 'mcpl_1', type: 'mcp_list_tools', server_label: 'orders', tools: [{ name: 'lookup_order', input_schema: {} }] } });
    peer.send({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } });
    peer.send({ type: 'response.output_item.added', response_id: 'resp_1', item: { id: 'mcp_1', type: 'mcp_call', server_label: 'orders', name: 'lookup_order', arguments: '' } });
    peer.send({ type: 'response.mcp_call_arguments.delta', response_id: 'resp_1', item_id: 'mcp_1', delta: '{"order":' });
    peer.send({ type: 'response.mcp_call_arguments.done', response_id: 'resp_1', item_id: 'mcp_1', arguments: '{"order":"A1"}' });
    peer.send({ type: 'response.mcp_call.in_progress', item_id: 'mcp_1', output_index: 0 });
    peer.send({ type: 'response.mcp_call.completed', item_id: 'mcp_1', output_index: 0 });
    const doneItem = { id: 'mcp_1', type: 'mcp_call', server_label: 'orders', name: 'lookup_order', arguments: '{"order":"A1"}', output: 'shipped' };
    peer.send({ type: 'response.output_item.done', response_id: 'resp_1', item: doneItem });
    peer.send({ type: 'response.done', response: { id: 'resp_1', status: 'completed', output: [doneItem] } });
    await sync(s, peer);
    expect(calls).toEqual([{ name: 'mcp:orders.lookup_order', callId: 'mcp_1', args: { order: 'A1' }, result: { output: 'shipped' }, durationMs: expect.any(Number) }]);
    expect(s.stats).toMatchObject({ toolCalls: 1, toolErrors: 0 });
    // Nothing to answer: no approval response, no follow-up.
    expect(peer.ofTypes('conversation.item.create', 'response.create')).toEqual([]);
    expect(cap.text()).toContain('MCP server offers 1 tool(s)');
    expect(cap.text()).not.toContain('mcp-header-secret-42');
    expect(cap.text()).not.toContain('mcp-oauth-token-77');
  });

  it('reports a server whose tools could not be listed as a non-fatal error naming it', async () => {
    const { s, peer } = await started({ mcpServers: [orders] });
    const errors: { code: string; message: string }[] = [];
    s.on('error', (e) => errors.push(e));
    peer.send({ type: 'conversation.item.added', item: { id: 'mcpl_2', type: 'mcp_list_tools', server_label: 'orders', tools: [] } });
    peer.send({ type: 'mcp_list_tools.failed', item_id: 'mcpl_2' });
    await sync(s, peer);
    expect(errors).toEqual([{ code: 'mcp_list_tools_failed', message: 'listing the tools of MCP server orders failed' }]);
    expect(s.state.name).toBe('ready');
  });

  it('reports a failed MCP call with the error the server gave', async () => {
    const { s, peer } = await started({ mcpServers: [orders] });
    const calls: ToolCallRecord[] = [];
    s.on('toolCall', (r) => calls.push(r));
    peer.send({ type: 'response.mcp_call.failed', item_id: 'mcp_2', output_index: 0 });
    peer.send({
      type: 'response.output_item.done',
      response_id: 'resp_1',
      item: { id: 'mcp_2', type: 'mcp_call', server_label: 'orders', name: 'lookup_order', arguments: '{}', output: null, error: { type: 'http_error', code: 502, message: 'Bad Gateway' } },
    });
    await sync(s, peer);
    expect(calls).toEqual([expect.objectContaining({ name: 'mcp:orders.lookup_order', error: 'http_error 502: Bad Gateway' })]);
    expect(s.stats).toMatchObject({ toolCalls: 1, toolErrors: 1 });
  });

  it('approves a request for an approved tool, refuses any other, and asks for one response after the carrying one', async () => {
    const { s, peer } = await started({ mcpServers: [orders] });
    const calls: ToolCallRecord[] = [];
    s.on('toolCall', (r) => calls.push(r));
    peer.send({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } });
    const ask = (id: string, name: string, label = 'orders') => ({ id, type: 'mcp_approval_request', server_label: label, name, arguments: '{"order":"A1"}' });
    peer.send({ type: 'response.output_item.done', response_id: 'resp_1', item: ask('apr_1', 'refund') });
    peer.send({ type: 'response.output_item.done', response_id: 'resp_1', item: ask('apr_2', 'cancel_order') });
    peer.send({ type: 'response.output_item.done', response_id: 'resp_1', item: ask('apr_3', 'wipe', 'elsewhere') });
    const answers = [await peer.next('conversation.item.create'), await peer.next('conversation.item.create'), await peer.next('conversation.item.create')];
    expect(answers.map((a) => a.item)).toEqual([
      { type: 'mcp_approval_response', id: expect.stringMatching(/^mcpr_[0-9a-f]{24}$/), approval_request_id: 'apr_1', approve: true },
      { type: 'mcp_approval_response', id: expect.stringMatching(/^mcpr_/), approval_request_id: 'apr_2', approve: false, reason: 'cancel_order is not among the tools this agent may approve' },
      { type: 'mcp_approval_response', id: expect.stringMatching(/^mcpr_/), approval_request_id: 'apr_3', approve: false, reason: 'unknown MCP server elsewhere' },
    ]);
    expect(new Set(answers.map((a) => a.item.id)).size).toBe(3);
    expect(peer.ofTypes('response.create')).toHaveLength(0);
    peer.send({ type: 'response.done', response: { id: 'resp_1', status: 'completed', output: [ask('apr_1', 'refund'), ask('apr_2', 'cancel_order')] } });
    await peer.next('response.create');
    await sync(s, peer);
    expect(peer.ofTypes('response.create')).toHaveLength(1);
    expect(calls.map((c) => [c.name, c.error])).toEqual([
      ['mcp:orders.cancel_order', 'not approved: cancel_order is not among the tools this agent may approve'],
      ['mcp:elsewhere.wipe', 'not approved: unknown MCP server elsewhere'],
    ]);
    expect(calls[0].args).toEqual({ order: 'A1' });
  });

  it('takes malformed MCP items from the server without failing: wrong types are read as absent, names are bounded', async () => {
    const { s, peer } = await started({ mcpServers: [orders] });
    const calls: ToolCallRecord[] = [];
    s.on('toolCall', (r) => calls.push(r));
    peer.send({ type: 'conversation.item.added', item: { id: 'mcpl_9', type: 'mcp_list_tools', server_label: 5, tools: 'all of them' } });
    peer.send({ type: 'conversation.item.done', item: { id: 'mcpl_9', type: 'mcp_list_tools', server_label: 'orders', tools: { name: 'x' } } });
    peer.send({ type: 'conversation.item.done', item: { id: 'mcpl_8', type: 'mcp_list_tools', server_label: 'orders', tools: [null, 7, { name: 3 }, { name: 'lookup_order' }] } });
    peer.send({ type: 'response.output_item.added', response_id: 'resp_1', item: { id: 'mcp_9', type: 'mcp_call', server_label: ['orders'], name: 'n'.repeat(5000), arguments: 42 } });
    peer.send({
      type: 'response.output_item.done',
      response_id: 'resp_1',
      item: { id: 'mcp_9', type: 'mcp_call', server_label: 'orders', name: { tool: 'x' }, arguments: 'not json', output: { rows: 1 }, error: 'boom' },
    });
    peer.send({ type: 'response.output_item.done', response_id: 'resp_1', item: { id: 'apr_9', type: 'mcp_approval_request', server_label: null, name: 12, arguments: [] } });
    const answer = await peer.next('conversation.item.create');
    await sync(s, peer);
    expect(s.state.name).toBe('ready');
    expect(answer.item).toMatchObject({ type: 'mcp_approval_response', approval_request_id: 'apr_9', approve: false });
    expect(calls).toHaveLength(2);
    expect(calls[0]).toMatchObject({ name: `mcp:orders.${'n'.repeat(128)}`, result: { output: '' }, error: 'boom' });
    expect(calls[0].args).toBeUndefined();
    expect(calls[1]).toMatchObject({ name: 'mcp:.', refused: true });
  });

  it('leaves the reply to server VAD when a barge-in cancelled the carrying response', async () => {
    const { s, peer } = await started({ mcpServers: [orders] });
    peer.send({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } });
    peer.send({ type: 'response.output_item.done', response_id: 'resp_1', item: { id: 'apr_9', type: 'mcp_approval_request', server_label: 'orders', name: 'refund', arguments: '{}' } });
    await peer.next('conversation.item.create');
    peer.send({ type: 'response.done', response: { id: 'resp_1', status: 'cancelled', status_details: { type: 'cancelled', reason: 'turn_detected' }, output: [] } });
    await sync(s, peer);
    expect(peer.ofTypes('response.create')).toHaveLength(0);
  });
});

/**
 * The daemon with a remote MCP server, through SIP: `tools.mcp` points the strict fake Realtime
 * server at a real (fake) MCP server, with a header from the environment and a bearer token from a
 * file. A pjsua caller speaks; the model calls lookup_order (no approval needed), asks to call
 * cancel_order (not in approvedTools: refused, never called) and refund_order (approved: called in
 * the follow-up response). The calls show up in the call record and on /metrics; the secrets show
 * up nowhere but at the MCP server. The session also carries reasoning, parallel tool calls,
 * truncation and a stored prompt whose variables were rendered for this call.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findToneSpans, readWav } from '../helpers/audio-analysis';
import { makeSequence, makeTone } from '../helpers/fixtures';
import { startPjsuaCaller } from '../helpers/pjsua';
import { useHarnessCleanup } from '../helpers/proc';
import { EXIT, assertBuilt, prepareDaemon, sampleValue, scrape, startDaemon, waitForRecord } from '../helpers/daemon';
import { FakeRealtimeServer, type RespondContext, type Step } from '../fakes/FakeRealtimeServer';
import { FakeMcpServer } from '../fakes/FakeMcpServer';

jest.setTimeout(60_000);
useHarnessCleanup();

const RATE = 8000;
const API_KEY = 'sk-mcp-e2e-0123456789abcdef';
const MCP_KEY = 'mcp-header-key-5f1e2d3c';
const MCP_TOKEN = 'mcp-oauth-token-9a8b7c6d';

let fake: FakeRealtimeServer;
let mcp: FakeMcpServer;
const contexts: RespondContext[] = [];

beforeAll(async () => {
  assertBuilt();
  mcp = new FakeMcpServer({
    requireHeaders: { 'x-api-key': MCP_KEY, authorization: `Bearer ${MCP_TOKEN}` },
    tools: [
      { name: 'lookup_order', description: 'Status of an order', inputSchema: { type: 'object', properties: { order: { type: 'string' } } }, handler: (a) => `order ${String(a['order'])}: shipped` },
      { name: 'cancel_order', description: 'Cancel an order', inputSchema: { type: 'object' }, handler: () => 'cancelled' },
      { name: 'refund_order', description: 'Refund an order', inputSchema: { type: 'object' }, handler: (a) => `refund for ${String(a['order'])} issued` },
    ],
  });
  await mcp.listen();
  const reply: Step = { audio: { toneHz: 1000, ms: 800, amplitude: 0.3 }, transcript: 'Your order has shipped.' };
  fake = new FakeRealtimeServer({
    apiKey: API_KEY,
    respond: (ctx) => {
      contexts.push(ctx);
      if (ctx.trigger === 'vad' && !contexts.some((c) => c !== ctx && c.trigger === 'vad')) {
        return [
          { mcpCall: { serverLabel: 'orders', name: 'lookup_order', arguments: { order: 'A17' } } },
          { mcpCall: { serverLabel: 'orders', name: 'cancel_order', arguments: { order: 'A17' } } },
          { mcpCall: { serverLabel: 'orders', name: 'refund_order', arguments: { order: 'A17' } } },
          reply,
        ];
      }
      return [reply];
    },
  });
  await fake.listen();
});

afterAll(async () => {
  await fake?.close();
  await mcp?.close();
});

test('an MCP tool is called through a SIP call, shows in the record and on /metrics, and a call the policy does not approve is refused', async () => {
  const setup = await prepareDaemon('echo');
  const keyFile = path.join(setup.dir, 'openai-key');
  fs.writeFileSync(keyFile, `${API_KEY}\n`, { mode: 0o600 });
  const tokenFile = path.join(setup.dir, 'orders-mcp-token');
  fs.writeFileSync(tokenFile, `${MCP_TOKEN}\n`, { mode: 0o600 });
  const greeting = await makeTone(path.join(setup.dir, 'greeting-500.wav'), 500, 600, { sampleRate: RATE, amplitude: 0.4 });
  setup.write({
    ai: {
      provider: 'openai',
      url: `${fake.baseUrl}/v1/realtime`,
      apiKeyFile: keyFile,
      model: 'gpt-realtime-2',
      reasoning: { effort: 'low' },
      parallelToolCalls: true,
      truncation: { type: 'retention_ratio', retentionRatio: 0.8 },
      prompt: { id: 'pmpt_orders', version: '3', variables: { company: '{{var.company}}', caller: '{{caller}}' } },
      transcription: { model: 'gpt-4o-transcribe' },
      turnDetection: { type: 'server_vad', silenceDurationMs: 300, prefixPaddingMs: 100 },
    },
    variables: { company: 'Acme Plumbing' },
    greeting: { file: greeting, interruptible: false },
    tools: {
      mcp: [
        {
          label: 'orders',
          url: mcp.url,
          headers: { 'X-Api-Key': '${ORDERS_MCP_KEY}' },
          authorizationFile: tokenFile,
          allowedTools: ['lookup_order', 'cancel_order', 'refund_order'],
          requireApproval: 'listed',
          alwaysAsk: ['cancel_order', 'refund_order'],
          neverAsk: ['lookup_order'],
          approvedTools: ['refund_order'],
        },
      ],
    },
  });
  const d = await startDaemon(setup, { env: { ORDERS_MCP_KEY: MCP_KEY } });

  const play = await makeSequence(path.join(setup.dir, 'caller-play.wav'), [{ silenceMs: 1200 }, { toneHz: 700, ms: 600 }, { silenceMs: 5000 }], { sampleRate: RATE });
  const rec = path.join(setup.dir, 'caller-rec.wav');
  const caller = await startPjsuaCaller({ name: 'caller-mcp', target: setup.sipUri, playFile: play, recordFile: rec, durationSec: 7, clockRate: RATE, codecs: ['PCMU'] });
  const disc = await caller.waitForDisconnect(25_000);
  expect(disc.status).toBe(200);
  await caller.quit();

  // The session: reasoning, parallel tool calls, truncation, the prompt rendered for this caller, the MCP server.
  const session = fake.sessions[fake.sessions.length - 1]!;
  const cfg = session.config as Record<string, any>;
  expect(cfg.reasoning).toEqual({ effort: 'low' });
  expect(cfg.parallel_tool_calls).toBe(true);
  expect(cfg.truncation).toEqual({ type: 'retention_ratio', retention_ratio: 0.8 });
  expect(cfg.prompt).toEqual({ id: 'pmpt_orders', version: '3', variables: { company: 'Acme Plumbing', caller: expect.stringMatching(/sip:/) } });
  expect(cfg.tools.find((t: { type: string }) => t.type === 'mcp')).toMatchObject({
    server_label: 'orders',
    server_url: mcp.url,
    require_approval: { always: { tool_names: ['cancel_order', 'refund_order'] }, never: { tool_names: ['lookup_order'] } },
  });
  expect(session.errors).toEqual([]);

  // The MCP server: tools listed, lookup and the approved refund called with the secrets; cancel never.
  expect(mcp.requests.some((r) => r.method === 'tools/list' && r.status === 200)).toBe(true);
  expect(mcp.calls.map((c) => [c.tool, c.args])).toEqual([
    ['lookup_order', { order: 'A17' }],
    ['refund_order', { order: 'A17' }],
  ]);
  const approvals = session.items.filter((i) => i.type === 'mcp_approval_response').map((i) => [i.approvalRequestId, i.approve]);
  const requests = session.items.filter((i) => i.type === 'mcp_approval_request').map((i) => [i.id, i.name]);
  expect(requests.map((r) => r[1])).toEqual(['cancel_order', 'refund_order']);
  expect(approvals).toEqual([
    [requests[0]![0], false],
    [requests[1]![0], true],
  ]);

  // Two responses: the one that made the calls and asked, then the follow-up after the approvals
  // (which made the approved call first); the caller heard both replies (0.8 s each, back to back).
  expect(session.responses.map((x) => [x.trigger, x.status])).toEqual([
    ['vad', 'completed'],
    ['response.create', 'completed'],
  ]);
  const wav = readWav(rec);
  const replies = findToneSpans(wav.pcm, wav.sampleRate, 1000, { frameMs: 10, maxGapMs: 30, minDurationMs: 50, minLevel: 0.02 });
  expect(replies.reduce((a, x) => a + x.endMs - x.startMs, 0)).toBeGreaterThan(1400);

  // The record and /metrics.
  const r = await waitForRecord(setup.recordsDir, (x) => x.record.status === 'completed', 10_000);
  const tools = (r.record.tools as { name: string; error: string | null; argsSummary: string | null }[]).map((t) => [t.name, t.error]);
  expect(tools).toEqual([
    ['mcp:orders.lookup_order', null],
    ['mcp:orders.cancel_order', 'not approved: cancel_order is not among the tools this agent may approve'],
    ['mcp:orders.refund_order', null],
  ]);
  const m = await scrape(d);
  expect(sampleValue(m, 'sip_ai_agent_tool_calls_total', { kind: 'mcp', outcome: 'ok' })).toBe(2);
  expect(sampleValue(m, 'sip_ai_agent_tool_calls_total', { kind: 'mcp', outcome: 'refused' })).toBe(1);

  // The secrets: at the MCP server, and nowhere else.
  for (const c of mcp.calls) expect(c.headers).toMatchObject({ 'x-api-key': MCP_KEY, authorization: `Bearer ${MCP_TOKEN}` });
  const status = await d.http('GET', '/status');
  const exit = await d.stop();
  expect(exit.code).toBe(EXIT.ok);
  for (const secret of [MCP_KEY, MCP_TOKEN, API_KEY]) {
    expect(status.text).not.toContain(secret);
    expect(d.proc.logText()).not.toContain(secret);
    expect(fs.readFileSync(r.jsonPath, 'utf8')).not.toContain(secret);
  }
});

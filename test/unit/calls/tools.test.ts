import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CallSession } from '../../../src/calls/CallSession';
import { resolveCallOptions, type CallManagerOptions } from '../../../src/calls/options';
import { callWebhook, WebhookError, type WebhookToolOptions } from '../../../src/calls/tools/webhook';
import type { CallSummary } from '../../../src/calls/types';
import { silentLogger } from '../../../src/logging/logger';
import { FakeBackend, FakeCall, flush, useFakeClock } from './fakes';
import { sine } from '../../helpers/tone';

const log = silentLogger();

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

let server: Server;
let base: string;
let handler: (req: IncomingMessage, res: ServerResponse, body: string) => void;
const seen: Seen[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

beforeEach(() => {
  seen.length = 0;
});

function hook(path: string, over: Partial<WebhookToolOptions> = {}): WebhookToolOptions {
  return {
    name: 'lookup_order',
    description: 'Look up an order',
    parameters: { type: 'object', properties: { order_id: { type: 'string' } } },
    url: `${base}${path}`,
    headers: { authorization: 'Bearer s3cret' },
    timeoutMs: 2000,
    ...over,
  };
}

describe('webhook tools', () => {
  test('POSTs the arguments as JSON and returns a JSON body as it is', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"shipped","eta":"tomorrow"}');
    };
    const r = await callWebhook(hook('/orders'), { order_id: 'A-17' }, { callId: 'call-9' });
    expect(r).toEqual({ status: 200, output: '{"status":"shipped","eta":"tomorrow"}', truncated: false });
    expect(seen).toHaveLength(1);
    expect(seen[0].method).toBe('POST');
    expect(JSON.parse(seen[0].body)).toEqual({ order_id: 'A-17' });
    expect(seen[0].headers['content-type']).toBe('application/json');
    expect(seen[0].headers['x-call-id']).toBe('call-9');
    expect(seen[0].headers['authorization']).toBe('Bearer s3cret');
  });

  test('a redirect is not followed: the secret headers go nowhere else, and the error names where it pointed', async () => {
    // The redirect target is this same server, so a followed redirect would show up as a second request.
    handler = (req, res) => {
      if (req.url === '/moved') {
        res.writeHead(302, { location: `${base}/elsewhere?token=x` });
        res.end();
      } else {
        res.end('{"followed":true}');
      }
    };
    const err = await callWebhook(hook('/moved'), { order_id: 'A-17' }, { callId: 'c' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WebhookError);
    expect((err as WebhookError).status).toBe(302);
    expect((err as Error).message).toMatch(/redirect was not followed \[tool:lookup_order, url:127\.0\.0\.1:\d+\/moved, status:302\] to 127\.0\.0\.1:\d+\/elsewhere: configure the final URL/);
    expect(seen.map((s) => s.url)).toEqual(['/moved']);
  });

  test('GET sends the arguments as query parameters', async () => {
    handler = (_req, res) => res.end('{"ok":true}');
    await callWebhook(hook('/orders?src=phone', { method: 'GET' }), { order_id: 'A 17', n: 3 }, { callId: 'c' });
    expect(seen[0].method).toBe('GET');
    expect(seen[0].url).toBe('/orders?src=phone&order_id=A+17&n=3');
    expect(seen[0].body).toBe('');
  });

  test('a body that is not JSON is wrapped so the model always gets JSON (control characters removed)', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('<html>oops\u0001 not json</html>');
    };
    const r = await callWebhook(hook('/garbage'), {}, { callId: 'c' });
    expect(JSON.parse(r.output)).toEqual({ result: '<html>oops not json</html>' });
  });

  test('an empty 2xx body becomes {"ok":true}', async () => {
    handler = (_req, res) => {
      res.writeHead(204);
      res.end();
    };
    const r = await callWebhook(hook('/empty'), {}, { callId: 'c' });
    expect(JSON.parse(r.output)).toEqual({ ok: true, status: 204 });
  });

  test('a long body is cut at the cap and marked truncated', async () => {
    handler = (_req, res) => res.end('x'.repeat(100_000));
    const r = await callWebhook(hook('/big', { maxResponseChars: 1000 }), {}, { callId: 'c' });
    expect(r.truncated).toBe(true);
    const parsed = JSON.parse(r.output) as { result: string; truncated: boolean };
    expect(parsed.truncated).toBe(true);
    expect(parsed.result.length).toBe(1000);
  });

  test('a non-2xx status is a WebhookError carrying the status and a body snippet', async () => {
    handler = (_req, res) => {
      res.writeHead(503, 'Service Unavailable');
      res.end('database down');
    };
    const err = (await callWebhook(hook('/down'), {}, { callId: 'c' }).catch((e: unknown) => e)) as WebhookError;
    expect(err).toBeInstanceOf(WebhookError);
    expect(err.status).toBe(503);
    expect(err.message).toContain('status:503');
    expect(err.message).toContain('database down');
    expect(err.message).not.toContain('s3cret');
  });

  test('a slow endpoint times out with a WebhookError', async () => {
    // The endpoint never answers; the server drops the connection when it closes.
    handler = () => undefined;
    const err = (await callWebhook(hook('/slow', { timeoutMs: 100 }), {}, { callId: 'c' }).catch((e: unknown) => e)) as WebhookError;
    expect(err).toBeInstanceOf(WebhookError);
    expect(err.message).toMatch(/timed out \[tool:lookup_order, url:127\.0\.0\.1:\d+\/slow, timeoutMs:100\]/);
  });

  test('an unreachable endpoint is a WebhookError, not a crash', async () => {
    const err = (await callWebhook(hook('', { url: 'http://127.0.0.1:1/x' }), {}, { callId: 'c' }).catch((e: unknown) => e)) as WebhookError;
    expect(err).toBeInstanceOf(WebhookError);
    expect(err.message).toContain('request failed');
    expect(err.status).toBe(0);
  });

  test('the tool call is aborted with the AI session (tool signal)', async () => {
    const ac = new AbortController();
    // The session goes away while the endpoint is still working on the request.
    handler = () => ac.abort();
    const p = callWebhook(hook('/slow'), {}, { callId: 'c', signal: ac.signal });
    await expect(p).rejects.toThrow(/aborted/);
  });
});

// ------------------------------------------------------------------------------------------------
// end_call and transfer_call through a call session

const AI: CallManagerOptions['ai'] = { audioFormat: 'pcm', voice: 'marin', turnDetection: { type: 'server_vad' }, noiseReduction: null, transcription: null };

async function conversing(over: Partial<CallManagerOptions> = {}) {
  const backend = new FakeBackend();
  const call = new FakeCall();
  const options = resolveCallOptions({
    ai: AI,
    instructions: 'x',
    greeting: { prompt: { sampleRate: 8000, pcm: sine(500, 40, 8000, 0.3) } },
    audio: { hangupTailMs: 0 },
    ...over,
  });
  const session = new CallSession({ id: 'c1', call, backend, options, logger: log });
  let summary: CallSummary | undefined;
  session.on('ended', (s) => (summary = s));
  void session.start();
  backend.last.ready();
  await clock(call, session, () => session.state.name === 'conversing');
  return { call, session, ai: backend.last, summary: () => summary };
}

async function clock(call: FakeCall, session: CallSession, cond: () => boolean, maxMs = 10_000): Promise<void> {
  for (let t = 0; t < maxMs && !cond(); t += 20) {
    if (!call.ended) call.play(160);
    session.tick();
    await flush(20);
  }
  if (!cond()) throw new Error('condition not reached');
}

describe('end_call', () => {
  useFakeClock();

  test('asks for a goodbye and hangs up only after the goodbye has played', async () => {
    const { call, session, ai, summary } = await conversing();
    expect([...ai.tools.keys()]).toEqual(['end_call']);
    const { result, followUp } = await ai.callTool('end_call', { reason: 'caller said bye' });
    expect(JSON.parse(result.output)).toMatchObject({ ok: true });
    expect(result.followUp).toEqual({ instructions: expect.stringContaining('goodbye') });
    // The goodbye response streams in and completes.
    ai.audio('bye', sine(1000, 600, 24000, 0.3));
    ai.audioDone('bye');
    followUp.resolve({ responseId: 'r2', status: 'completed', requested: true });
    const before = call.heardSamples();
    await clock(call, session, () => call.ended);
    expect(call.heardSamples() - before).toBeGreaterThanOrEqual(4800 - 10);
    expect(call.actions[call.actions.length - 1]).toBe('hangup');
    await flush();
    expect(summary()?.endReason).toBe('agent_hangup');
  });

  test('a second end_call while ending is refused without a follow-up', async () => {
    const { ai } = await conversing();
    await ai.callTool('end_call', {});
    const { result } = await ai.callTool('end_call', {});
    expect(JSON.parse(result.output)).toMatchObject({ ok: false });
    expect(result.followUp).toBe('none');
  });

  test('can be switched off', async () => {
    const { ai } = await conversing({ tools: { endCall: false } });
    expect(ai.tools.size).toBe(0);
  });
});

describe('transfer_call', () => {
  useFakeClock();
  const tools: CallManagerOptions['tools'] = { transferCall: { targets: { sales: 'sip:sales@pbx.example.com', support: 'sip:support@pbx.example.com' } } };

  test('announces, then REFERs to the named target and hangs up as transferred', async () => {
    const { call, session, ai, summary } = await conversing({ tools });
    const { result, followUp } = await ai.callTool('transfer_call', { target: 'sales' });
    expect(JSON.parse(result.output)).toMatchObject({ ok: true, target: 'sales' });
    expect(result.followUp).toEqual({ instructions: expect.stringContaining('sales') });
    expect(call.actions).not.toContain('transfer sip:sales@pbx.example.com');
    ai.audio('ann', sine(1000, 300, 24000, 0.3));
    ai.audioDone('ann');
    followUp.resolve({ responseId: 'r2', status: 'completed', requested: true });
    await clock(call, session, () => call.ended);
    expect(call.actions.slice(-2)).toEqual(['transfer sip:sales@pbx.example.com', 'hangup']);
    // REFER went out only after the announcement played.
    expect(call.heardSamples()).toBeGreaterThanOrEqual(320 + 2400 - 10);
    await flush();
    expect(summary()).toMatchObject({ endReason: 'transferred', transferredTo: 'sip:sales@pbx.example.com' });
  });

  test('a failed transfer is reported to the model and the call goes on', async () => {
    const { call, session, ai } = await conversing({ tools });
    call.transferResult = { ok: false, sipCode: 486, reason: 'Busy Here' };
    const { followUp } = await ai.callTool('transfer_call', { target: 'support' });
    const responsesBefore = ai.responses.length;
    followUp.resolve(undefined);
    await clock(call, session, () => ai.systemTexts.length > 0);
    expect(ai.systemTexts[0]).toContain('support');
    expect(ai.systemTexts[0]).toContain('486');
    expect(ai.responses.length).toBe(responsesBefore + 1);
    expect(call.ended).toBe(false);
    expect(session.state.name).toBe('conversing');
    // The end claim was released: the model may still hang up.
    const again = await ai.callTool('end_call', {});
    expect(JSON.parse(again.result.output)).toMatchObject({ ok: true });
  });

  test('an unknown target is refused with the list of targets', async () => {
    const { call, ai } = await conversing({ tools });
    const { result } = await ai.callTool('transfer_call', { target: 'ceo' });
    expect(JSON.parse(result.output)).toEqual({ ok: false, error: "unknown target 'ceo'", targets: ['sales', 'support'] });
    expect(call.actions).not.toContainEqual(expect.stringMatching(/^transfer/));
  });

  test('the default target is used when the model names none', async () => {
    const { ai } = await conversing({ tools: { transferCall: { targets: { desk: 'sip:desk@x' }, defaultTarget: 'desk' } } });
    const def = ai.tools.get('transfer_call')!;
    expect((def.parameters as { required: string[] }).required).toEqual([]);
    const { result } = await ai.callTool('transfer_call', {});
    expect(JSON.parse(result.output)).toMatchObject({ ok: true, target: 'desk' });
  });

  test('webhook tools are registered next to the built-ins, with the tool timeout raised to cover them', async () => {
    const backend = new FakeBackend();
    const options = resolveCallOptions({
      ai: { ...AI, toolTimeoutMs: 20_000 },
      instructions: 'x',
      tools: { webhooks: [hook('/x', { timeoutMs: 30_000 })] },
    });
    new CallSession({ id: 'c2', call: new FakeCall(), backend, options, logger: log });
    expect([...backend.last.tools.keys()]).toEqual(['end_call', 'lookup_order']);
    expect(backend.last.options.toolTimeoutMs).toBe(31_000);
  });
});

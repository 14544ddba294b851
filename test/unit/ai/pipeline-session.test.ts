/**
 * PipelineSession against a chat server whose model asks for what it should not: a tool nobody
 * registered and arguments that are not JSON. Neither reaches a handler; each is answered to the
 * model as an error, the follow-up reply is spoken, and the session stays up.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PipelineSession } from '../../../src/ai/pipeline/PipelineSession';
import type { ToolCallRecord } from '../../../src/ai/types';
import { silentLogger } from '../../../src/logging/logger';
import { BASE_SESSION } from './echoHelpers';

let server: Server;
let base: string;
const chatBodies: { messages: { role: string; content: string | null; tool_call_id?: string }[] }[] = [];

function sse(chunks: unknown[]): string {
  return chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join('') + 'data: [DONE]\n\n';
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      if (req.url === '/v1/audio/speech') {
        res.writeHead(200, { 'content-type': 'audio/pcm' });
        res.end(Buffer.alloc(4800));
        return;
      }
      const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as (typeof chatBodies)[number];
      chatBodies.push(body);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (!body.messages.some((m) => m.role === 'tool')) {
        res.end(
          sse([
            { choices: [{ delta: { tool_calls: [{ index: 0, id: 'call_a', function: { name: 'no_such_tool', arguments: '{"a":1}' } }] } }] },
            { choices: [{ delta: { tool_calls: [{ index: 1, id: 'call_b', function: { name: 'end_call', arguments: '{not json' } }] } }] },
            { choices: [{ delta: {}, finish_reason: 'tool_calls' }] },
          ]),
        );
      } else {
        res.end(sse([{ choices: [{ delta: { content: 'Sorry, let me try again.' }, finish_reason: 'stop' }] }]));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

test('an unknown tool and arguments that are not JSON reach no handler; both are answered as errors and the follow-up is spoken', async () => {
  const ep = { baseUrl: base, timeoutMs: 5000 };
  const s = new PipelineSession(BASE_SESSION, silentLogger(), {
    stt: { ...ep, model: 'whisper-1' },
    chat: { ...ep, model: 'm', historyMessages: 40 },
    tts: { ...ep, model: 't', voice: 'marin' },
    vad: {},
    prices: { input: 0, output: 0 },
  });
  const handler = jest.fn();
  s.registerTool({ name: 'end_call', description: 'end', parameters: { type: 'object', properties: {} }, handler });
  const calls: ToolCallRecord[] = [];
  s.on('toolCall', (r) => calls.push(r));
  const transcripts: string[] = [];
  s.on('transcript', (t) => transcripts.push(t.text));
  await s.start();
  const first = await s.createResponse();
  expect(first.status).toBe('completed');
  await new Promise<void>((resolve) => s.on('responseDone', () => resolve()));
  expect(handler).not.toHaveBeenCalled();
  expect(calls.map((c) => [c.name, c.error])).toEqual([
    ['no_such_tool', 'unknown tool no_such_tool'],
    ['end_call', 'arguments are not valid JSON'],
  ]);
  const tools = chatBodies[1]!.messages.filter((m) => m.role === 'tool');
  expect(tools.map((m) => m.tool_call_id)).toEqual(['call_a', 'call_b']);
  expect(tools.every((m) => String(m.content).includes('error'))).toBe(true);
  expect(transcripts).toContain('Sorry, let me try again.');
  expect(s.state.name).toBe('ready');
  s.close();
});

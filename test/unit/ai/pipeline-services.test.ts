/**
 * The pipeline's HTTP clients against the strict fake of the three APIs, and against a server that
 * answers garbage: streamed transcription deltas, streamed chat text and tool-call fragments put
 * back together, pcm speech with odd chunk boundaries, the errors (401, 429 with Retry-After, a
 * timeout, an unreachable host) and malformed answers, each a ServiceError naming the service.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeOpenAiHttp } from '../../fakes/FakeOpenAiHttp';
import { ServiceError, chat, speak, transcribe, wavFile, type ServiceEndpoint } from '../../../src/ai/pipeline/services';
import { sine } from '../../helpers/tone';

const KEY = 'sk-services-test-0123456789';
let fake: FakeOpenAiHttp;
let ep: ServiceEndpoint;

beforeAll(async () => {
  fake = new FakeOpenAiHttp({ apiKey: KEY });
  await fake.listen();
  ep = { baseUrl: fake.apiBase, apiKey: KEY, timeoutMs: 5000 };
});
afterAll(() => fake.close());

const signal = (): AbortSignal => new AbortController().signal;

test('transcription: a WAV upload; gpt-4o models stream deltas, whisper-1 answers at once', async () => {
  const pcm = sine(700, 800, 8000, 0.4);
  const deltas: string[] = [];
  expect(await transcribe(ep, pcm, 8000, { model: 'gpt-4o-mini-transcribe', language: 'en' }, signal(), (d) => deltas.push(d))).toBe('tone 700');
  expect(deltas.join('')).toBe('tone 700');
  expect(await transcribe(ep, pcm, 8000, { model: 'whisper-1' }, signal(), (d) => deltas.push(d))).toBe('tone 700');
  const req = fake.requests.filter((r) => r.endpoint === 'transcriptions').pop()!;
  expect(req.fields).toMatchObject({ model: 'whisper-1', response_format: 'json' });
});

test('chat: text deltas in order, tool calls put back together from their fragments, usage', async () => {
  fake.reply = () => ({ text: 'One sentence here. And another one.' });
  const parts: string[] = [];
  const r = await chat(ep, { model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'hi' }] }, signal(), (d) => parts.push(d));
  expect(parts.join('')).toBe('One sentence here. And another one.');
  expect(r).toMatchObject({ text: 'One sentence here. And another one.', toolCalls: [], finishReason: 'stop' });
  expect(r.usage?.total_tokens).toBeGreaterThan(0);
  fake.reply = () => ({ toolCalls: [{ name: 'end_call', arguments: { reason: 'done', note: 'x'.repeat(200) } }] });
  const t = await chat(ep, { model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'bye' }], tools: [{ name: 'end_call', description: 'end', parameters: { type: 'object', properties: {} } }] }, signal(), () => undefined);
  expect(t.finishReason).toBe('tool_calls');
  expect(t.toolCalls).toHaveLength(1);
  expect(t.toolCalls[0]!.function.name).toBe('end_call');
  expect(JSON.parse(t.toolCalls[0]!.function.arguments)).toEqual({ reason: 'done', note: 'x'.repeat(200) });
});

test('speech: 24 kHz PCM16 as it arrives, whole samples across chunk boundaries', async () => {
  let bytes = 0;
  let odd = false;
  const n = await speak(ep, 'Hello there.', { model: 'gpt-4o-mini-tts', voice: 'marin' }, signal(), (b) => {
    bytes += b.length;
    odd ||= b.length % 2 === 1;
  });
  expect(n).toBe(bytes);
  expect(odd).toBe(false);
  expect(bytes).toBeGreaterThan(24_000 * 2 * 0.3);
});

test('errors name the service, the status and the server code, never the key', async () => {
  const bad = { ...ep, apiKey: 'sk-wrong-key-000000000000' };
  const e1 = await chat(bad, { model: 'm', messages: [{ role: 'user', content: 'x' }] }, signal(), () => undefined).catch((e: unknown) => e);
  expect(e1).toBeInstanceOf(ServiceError);
  expect(e1).toMatchObject({ service: 'chat', status: 401, code: 'invalid_api_key', transient: false });
  expect((e1 as Error).message).not.toContain('sk-wrong-key');
  fake.failNext('speech', 429, 1, { retryAfterS: 3 });
  const e2 = (await speak(ep, 'x', { model: 'gpt-4o-mini-tts', voice: 'marin' }, signal(), () => undefined).catch((e: unknown) => e)) as ServiceError;
  expect(e2).toMatchObject({ service: 'tts', status: 429, retryAfterMs: 3000, transient: true });
  const e3 = (await transcribe({ ...ep, baseUrl: 'http://127.0.0.1:9/v1' }, sine(700, 200, 8000), 8000, { model: 'whisper-1' }, signal()).catch((e: unknown) => e)) as ServiceError;
  expect(e3).toMatchObject({ service: 'stt', status: 0, code: 'unreachable', transient: true });
  fake.reply = () => ({ text: 'Late.' });
  fake.timing.chatFirstTokenMs = 10_000;
  const e4 = (await chat({ ...ep, timeoutMs: 300 }, { model: 'm', messages: [{ role: 'user', content: 'x' }] }, signal(), () => undefined).catch((e: unknown) => e)) as ServiceError;
  fake.timing.chatFirstTokenMs = 0;
  expect(e4).toMatchObject({ service: 'chat', status: 0, code: 'timeout' });
});

describe('malformed answers', () => {
  let server: Server;
  let answer: (path: string) => { status: number; type: string; body: string };
  let base: ServiceEndpoint;
  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const a = answer(req.url ?? '');
        res.writeHead(a.status, { 'content-type': a.type });
        res.end(a.body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = { baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, timeoutMs: 5000 };
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  test('a transcription that is not JSON, or has no text', async () => {
    answer = () => ({ status: 200, type: 'application/json', body: '<html>oops</html>' });
    await expect(transcribe(base, sine(700, 200, 8000), 8000, { model: 'whisper-1' }, signal())).rejects.toMatchObject({ service: 'stt', code: 'bad_answer' });
    answer = () => ({ status: 200, type: 'application/json', body: '{"txt":"x"}' });
    await expect(transcribe(base, sine(700, 200, 8000), 8000, { model: 'whisper-1' }, signal())).rejects.toMatchObject({ code: 'bad_answer' });
  });

  test('a chat stream with garbage, an error event, or an endless line', async () => {
    answer = () => ({ status: 200, type: 'text/event-stream', body: 'data: {"choices":[{"delta":{"content":"ok"}}]}\n\ndata: not json\n\n' });
    await expect(chat(base, { model: 'm', messages: [] }, signal(), () => undefined)).rejects.toMatchObject({ service: 'chat', code: 'bad_answer' });
    answer = () => ({ status: 200, type: 'text/event-stream', body: 'data: {"error":{"message":"overloaded","code":"server_overloaded"}}\n\n' });
    await expect(chat(base, { model: 'm', messages: [] }, signal(), () => undefined)).rejects.toMatchObject({ code: 'server_overloaded' });
    answer = () => ({ status: 200, type: 'text/event-stream', body: `data: ${'x'.repeat(1_100_000)}` });
    await expect(chat(base, { model: 'm', messages: [] }, signal(), () => undefined)).rejects.toMatchObject({ code: 'bad_stream' });
    // Odd but harmless: comments, blank lines, a chunk without choices, [DONE].
    answer = () => ({ status: 200, type: 'text/event-stream', body: ': keepalive\n\ndata: {}\n\ndata: {"choices":[{"delta":{"content":"fine"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n' });
    await expect(chat(base, { model: 'm', messages: [] }, signal(), () => undefined)).resolves.toMatchObject({ text: 'fine', finishReason: 'stop' });
  });

  test('an error body that is text, not JSON', async () => {
    answer = () => ({ status: 502, type: 'text/plain', body: 'Bad Gateway' });
    await expect(speak(base, 'x', { model: 'm', voice: 'v' }, signal(), () => undefined)).rejects.toMatchObject({ service: 'tts', status: 502, code: 'http_502', transient: true });
  });
});

test('wavFile: a mono PCM16 RIFF header the services accept', () => {
  const w = wavFile(new Int16Array([1, -1, 2]), 8000);
  expect(w.toString('ascii', 0, 4)).toBe('RIFF');
  expect(w.readUInt32LE(24)).toBe(8000);
  expect(w.readUInt32LE(40)).toBe(6);
  expect(w.length).toBe(50);
});

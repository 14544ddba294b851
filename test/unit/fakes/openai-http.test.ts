import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { WaveFile } from 'wavefile';
import {
  FakeOpenAiHttp,
  MAX_BODY_BYTES,
  OPENAI_HTTP_PATHS,
  hearTone,
  speechDurationMs,
  splitPieces,
  voiceHz,
  wavFile,
  type OpenAiEndpoint,
  type RequestRecord,
} from '../../fakes/FakeOpenAiHttp';
import { parseMultipart } from '../../fakes/multipart';
import { dominantFrequency, parseWav } from '../../helpers/audio-analysis';
import { sine } from '../../helpers/tone';

const KEY = 'sk-test-http';
let server: FakeOpenAiHttp;

beforeEach(() => (server = new FakeOpenAiHttp({ apiKey: KEY })).listen());
afterEach(() => server.close());

const auth = { authorization: `Bearer ${KEY}` };

function post(endpoint: OpenAiEndpoint, body: string | Buffer | FormData, headers: Record<string, string> = {}, signal?: AbortSignal) {
  const init: RequestInit = { method: 'POST', headers: { ...auth, ...headers }, body, ...(signal ? { signal } : {}) };
  return fetch(`${server.url}${OPENAI_HTTP_PATHS[endpoint]}`, init);
}

function postJson(endpoint: 'chat' | 'speech', body: unknown, signal?: AbortSignal): Promise<Response> {
  return post(endpoint, JSON.stringify(body), { 'content-type': 'application/json' }, signal);
}

function toneWav(hz: number, ms: number, rate = 8000): Blob {
  return new Blob([wavFile(sine(hz, ms, rate, 0.4), rate)], { type: 'audio/wav' });
}

function form(fields: Record<string, string | Blob>): FormData {
  const f = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value === 'string') f.append(name, value);
    else f.append(name, value, 'audio.wav');
  }
  return f;
}

function transcribe(fields: Record<string, string | Blob>): Promise<Response> {
  return post('transcriptions', form(fields));
}

/** The `data:` payloads of an SSE body ('[DONE]' kept as a string). */
async function sseData(res: Response): Promise<unknown[]> {
  const text = await res.text();
  expect(text.endsWith('\n\n')).toBe(true);
  return text
    .split('\n\n')
    .filter((block) => block !== '')
    .map((block) => {
      expect(block.startsWith('data: ')).toBe(true);
      const data = block.slice('data: '.length);
      return data === '[DONE]' ? data : (JSON.parse(data) as unknown);
    });
}

/** The status and `error` of an OpenAI error body, checked to have exactly the four fields. */
async function errorOf(res: Response): Promise<{ status: number; error: Record<string, unknown> }> {
  const body = (await res.json()) as { error: Record<string, unknown> };
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  return { status: res.status, error: body.error };
}

/** A 400 invalid_request_error whose message matches and whose param is `param`. */
async function expectInvalid(res: Response, message: RegExp, param: string | null): Promise<Record<string, unknown>> {
  const { status, error } = await errorOf(res);
  expect(status).toBe(400);
  expect(error).toMatchObject({ type: 'invalid_request_error', param });
  expect(error['message']).toMatch(message);
  return error;
}

type Chunk = {
  object: string;
  choices: { index: number; delta: Record<string, unknown>; finish_reason: string | null }[];
  usage?: unknown;
};

type Completion = {
  choices: { message: { content: string | null; tool_calls?: ToolCall[] }; finish_reason: string }[];
};

type ToolCall = { id: string; type: string; function: { name: string; arguments: string } };

const userSays = (text: string): { model: string; messages: unknown[] } => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: text }],
});

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } } },
  },
};

describe('FakeOpenAiHttp helpers', () => {
  it('hears the dominant tone of the loud part, rounded to 50 Hz, at any rate', () => {
    expect(hearTone(sine(700, 500, 8000, 0.3), 8000)).toBe('tone 700');
    expect(hearTone(sine(1230, 400, 24000, 0.05), 24000)).toBe('tone 1250');
    const padded = new Int16Array(16000);
    padded.set(sine(440, 300, 16000, 0.5), 8000);
    expect(hearTone(padded, 16000)).toBe('tone 450');
    expect(hearTone(new Int16Array(8000), 8000)).toBe('');
  });

  it('maps texts to stable voices of 300..1500 Hz in 50 Hz steps and lengths of 60 ms a character', () => {
    const hz = ['Hello.', 'How are you?', 'tone 700', ''].map(voiceHz);
    for (const f of hz) expect(f % 50 === 0 && f >= 300 && f <= 1500).toBe(true);
    expect(voiceHz('Hello.')).toBe(hz[0]);
    expect(new Set(hz).size).toBeGreaterThan(1);
    expect(speechDurationMs('Hi')).toBe(300);
    expect(speechDurationMs('x'.repeat(20))).toBe(1200);
    expect(speechDurationMs('x'.repeat(20), 2)).toBe(600);
    expect(speechDurationMs('x'.repeat(1000))).toBe(10_000);
  });

  it('splits text into pieces of 1-3 words that join back to it', () => {
    const text = 'You said: tone 700. Anything else?';
    const pieces = splitPieces(text);
    expect(pieces.join('')).toBe(text);
    expect(pieces).toEqual(['You', ' said: tone', ' 700. Anything else?']);
  });

  it('parses multipart bodies with a preamble, quoted names and CRLF inside data', () => {
    const body = Buffer.from(
      'preamble\r\n--b\r\nContent-Disposition: form-data; name="file"; filename="a \\"b\\".wav"\r\nContent-Type: audio/wav\r\n\r\n' +
        'x\r\ny\r\n--b\r\ncontent-disposition: form-data; name=model\r\n\r\nwhisper-1\r\n--b--\r\n',
    );
    expect(parseMultipart(body, 'b')).toEqual([
      { name: 'file', filename: 'a "b".wav', contentType: 'audio/wav', data: Buffer.from('x\r\ny') },
      { name: 'model', filename: null, contentType: null, data: Buffer.from('whisper-1') },
    ]);
    expect(() => parseMultipart(Buffer.from('--b\r\n\r\nno headers\r\n--b--'), 'b')).toThrow(/Content-Disposition/);
  });
});

describe('FakeOpenAiHttp common behaviour', () => {
  it('binds 127.0.0.1 on an ephemeral port', () => {
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    expect(server.apiBase).toBe(`${server.url}/v1`);
  });

  it('refuses a wrong key with 401 invalid_api_key without echoing the key, and a missing key too', async () => {
    const wrong = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-wrong', 'content-type': 'application/json' },
      body: JSON.stringify(userSays('hi')),
    });
    const text = await wrong.text();
    expect(wrong.status).toBe(401);
    expect(text).not.toContain('sk-wrong');
    expect(JSON.parse(text)).toEqual({
      error: {
        message: expect.stringMatching(/^Incorrect API key provided/),
        type: 'invalid_request_error',
        param: null,
        code: 'invalid_api_key',
      },
    });
    const missing = await fetch(`${server.url}/v1/audio/speech`, { method: 'POST', body: '{}' });
    expect(await errorOf(missing)).toMatchObject({ status: 401, error: { message: expect.stringMatching(/didn't provide an API key/) } });
    expect(server.requests.map((r) => r.status)).toEqual([401, 401]);
  });

  it('answers 404 for unknown paths and 405 for other methods', async () => {
    const notFound = await fetch(`${server.url}/v1/audio/translations`, { method: 'POST', headers: auth, body: 'x' });
    expect(await errorOf(notFound)).toMatchObject({ status: 404, error: { message: 'Invalid URL (POST /v1/audio/translations)' } });
    const get = await fetch(`${server.url}/v1/chat/completions`, { headers: auth });
    expect(get.headers.get('allow')).toBe('POST');
    expect(await errorOf(get)).toMatchObject({ status: 405, error: { type: 'invalid_request_error' } });
    expect(server.requests.map((r) => [r.endpoint, r.method, r.status])).toEqual([
      [null, 'POST', 404],
      ['chat', 'GET', 405],
    ]);
  });

  it('answers scripted 429s with retry-after, then serves again; 500 and 503 carry server_error bodies', async () => {
    server.failNext('chat', 429, 2, { retryAfterS: 7 });
    server.failNext('speech', 503);
    server.failNext('transcriptions', 500);
    for (let i = 0; i < 2; i++) {
      const res = await postJson('chat', userSays('hi'));
      expect(res.headers.get('retry-after')).toBe('7');
      expect(await errorOf(res)).toEqual({
        status: 429,
        error: { message: expect.stringMatching(/^Rate limit reached/), type: 'requests', param: null, code: 'rate_limit_exceeded' },
      });
    }
    expect(server.pendingFailures('chat')).toBe(0);
    expect((await postJson('chat', userSays('hi'))).status).toBe(200);
    const overloaded = await postJson('speech', { model: 'gpt-4o-mini-tts', input: 'Hi', voice: 'alloy', response_format: 'pcm' });
    expect(overloaded.headers.get('retry-after')).toBeNull();
    expect(await errorOf(overloaded)).toMatchObject({ status: 503, error: { type: 'server_error', code: null } });
    const failed = await transcribe({ model: 'whisper-1', file: toneWav(700, 300) });
    expect(await errorOf(failed)).toMatchObject({ status: 500, error: { type: 'server_error' } });
  });

  it('logs every request with its fields and timing in order', async () => {
    await (await postJson('chat', userSays('hi'))).json();
    const [rec] = server.requests;
    expect(rec).toMatchObject({ id: 1, endpoint: 'chat', method: 'POST', path: '/v1/chat/completions', status: 200 });
    expect(rec).toMatchObject({ stream: false, aborted: false, error: null });
    expect(rec!.fields).toEqual(userSays('hi'));
    expect(rec!.output).toEqual({ text: 'You said: hi. Anything else?', finishReason: 'stop' });
    expect(rec!.firstByteAt!).toBeGreaterThanOrEqual(rec!.receivedAt);
    expect(rec!.finishedAt!).toBeGreaterThanOrEqual(rec!.firstByteAt!);
    expect(rec!.bytesReceived).toBe(JSON.stringify(userSays('hi')).length);
  });

  it('close() ends a response in flight and records it as aborted', async () => {
    server.timing.chatFirstTokenMs = 60_000;
    const res = await postJson('chat', { ...userSays('hi'), stream: true });
    expect(res.status).toBe(200);
    const reading = res.text().then(
      () => 'ended',
      () => 'failed',
    );
    await server.close();
    expect(await reading).toBe('failed');
    const rec = await server.waitForRequest();
    expect(rec).toMatchObject({ aborted: true, stream: true, bytesSent: 0, firstByteAt: null });
  });
});

describe('POST /v1/audio/transcriptions', () => {
  it('transcribes a tone WAV as json with token usage for gpt-4o models', async () => {
    const fields = { model: 'gpt-4o-mini-transcribe', language: 'en', prompt: 'tones', temperature: '0.2' };
    const res = await transcribe({ ...fields, file: toneWav(700, 500) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const body = (await res.json()) as { text: string; usage: Record<string, unknown> };
    expect(body.text).toBe('tone 700');
    expect(body.usage).toMatchObject({ type: 'tokens', input_tokens: 5, output_tokens: 2, total_tokens: 7 });
    expect(server.requests[0]!.fields).toEqual({
      ...fields,
      file: { filename: 'audio.wav', contentType: 'audio/wav', bytes: 44 + 8000, sampleRate: 8000, channels: 1, durationMs: 500 },
    });
  });

  it('answers whisper-1 as json with duration usage, text, verbose_json, srt and vtt', async () => {
    const file = toneWav(900, 1500, 16000);
    const as = async (format: string): Promise<Response> => transcribe({ model: 'whisper-1', file, response_format: format });
    expect(await (await as('json')).json()).toEqual({ text: 'tone 900', usage: { type: 'duration', seconds: 2 } });
    expect(await (await as('text')).text()).toBe('tone 900\n');
    expect(await (await as('verbose_json')).json()).toMatchObject({
      task: 'transcribe',
      duration: 1.5,
      text: 'tone 900',
      segments: [{ id: 0, start: 0, end: 1.5, text: 'tone 900' }],
    });
    expect(await (await as('srt')).text()).toBe('1\n00:00:00,000 --> 00:00:01,500\ntone 900\n\n');
    expect(await (await as('vtt')).text()).toBe('WEBVTT\n\n00:00:00.000 --> 00:00:01.500\ntone 900\n\n');
  });

  it('hears silence as an empty transcript and passes audio and fields to a scripted transcriber', async () => {
    expect(await (await transcribe({ model: 'whisper-1', file: toneWav(0, 300) })).json()).toMatchObject({ text: '' });
    const seen: unknown[] = [];
    server.transcribe = (pcm, rate, fields) => {
      seen.push({ samples: pcm.length, rate, fields });
      return 'book a table for two';
    };
    const stereo = new WaveFile();
    stereo.fromScratch(2, 24000, '16', [sine(500, 200, 24000), sine(500, 200, 24000)]);
    const res = await transcribe({ model: 'gpt-4o-transcribe', file: new Blob([stereo.toBuffer()]), response_format: 'text' });
    expect(await res.text()).toBe('book a table for two\n');
    expect(seen).toEqual([{ samples: 4800, rate: 24000, fields: { model: 'gpt-4o-transcribe', response_format: 'text', stream: false } }]);
  });

  it('streams transcript.text.delta events and a final transcript.text.done for gpt-4o models', async () => {
    const said = 'I would like to book a table for two.';
    server.transcribe = () => said;
    const res = await transcribe({ model: 'gpt-4o-mini-transcribe', file: toneWav(700, 400), stream: 'true' });
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const events = (await sseData(res)) as Record<string, unknown>[];
    const deltas = events.slice(0, -1);
    expect(deltas.length).toBeGreaterThan(2);
    for (const d of deltas) expect(Object.keys(d)).toEqual(['type', 'delta']);
    expect(deltas.map((d) => d['type'])).toEqual(deltas.map(() => 'transcript.text.delta'));
    expect(deltas.map((d) => d['delta']).join('')).toBe(said);
    expect(events.at(-1)).toMatchObject({ type: 'transcript.text.done', text: said, usage: { type: 'tokens' } });
    expect(server.requests[0]).toMatchObject({ stream: true, status: 200, aborted: false });
  });

  const wav = (): Blob => toneWav(700, 300);
  const whisper = (extra: Record<string, string | Blob>) => (): FormData => form({ model: 'whisper-1', file: wav(), ...extra });
  const muLaw = (): FormData => {
    const w = new WaveFile();
    w.fromScratch(1, 8000, '8m', new Int16Array(800));
    return form({ model: 'whisper-1', file: new Blob([w.toBuffer()]) });
  };
  it.each<[string, () => FormData | string, RegExp, string | null]>([
    ['missing file', () => form({ model: 'whisper-1' }), /^Missing required parameter: 'file'/, 'file'],
    ['missing model', () => form({ file: wav() }), /^Missing required parameter: 'model'/, 'model'],
    ['unknown field', whisper({ timestamp_granularity: 'word' }), /^Unrecognized request argument supplied: timestamp_granularity$/, null],
    ['file that is not RIFF/WAVE', whisper({ file: new Blob([Buffer.from('ID3\x03 not a wave file at all')]) }), /^Invalid file format/, 'file'],
    ['µ-law WAV', muLaw, /^Invalid file format/, 'file'],
    ['file shorter than 0.1 s', whisper({ file: toneWav(700, 50) }), /too short/, 'file'],
    ['stream=true with whisper-1', whisper({ stream: 'true' }), /^Streaming is not supported for the whisper-1 model/, 'stream'],
    ['stream=yes', whisper({ stream: 'yes' }), /^Invalid type for 'stream'/, 'stream'],
    ['verbose_json with a gpt-4o model', whisper({ model: 'gpt-4o-transcribe', response_format: 'verbose_json' }), /not compatible/, 'response_format'],
    ['unknown response_format', whisper({ response_format: 'xml' }), /^Invalid value: 'xml'/, 'response_format'],
    ['temperature above 1', whisper({ temperature: '1.5' }), /decimal above maximum value/, 'temperature'],
    ['temperature not a number', whisper({ temperature: 'warm' }), /^Invalid type for 'temperature'/, 'temperature'],
    ['language not ISO-639-1', whisper({ language: 'en-US' }), /ISO-639-1/, 'language'],
    ['file sent as a plain field', () => form({ model: 'whisper-1', file: 'aGVsbG8=' }), /expected a file/, 'file'],
    ['a JSON body', () => JSON.stringify({ model: 'whisper-1' }), /^Invalid Content-Type header \(application\/json\)/, null],
  ])('rejects %s with 400', async (_name, body, message, param) => {
    const b = body();
    const res = await post('transcriptions', b, typeof b === 'string' ? { 'content-type': 'application/json' } : {});
    expect(server.requests[0]!.error).toEqual(await expectInvalid(res, message, param));
  });

  it('rejects a malformed multipart body with 400', async () => {
    const unterminated = '--xyz\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1';
    const res = await post('transcriptions', unterminated, { 'content-type': 'multipart/form-data; boundary=xyz' });
    await expectInvalid(res, /^Could not parse multipart form/, null);
  });

  it('rejects a body over 25 MB with 413 without keeping it', async () => {
    const res = await post('transcriptions', Buffer.alloc(MAX_BODY_BYTES + 1), { 'content-type': 'multipart/form-data; boundary=xyz' });
    expect(await errorOf(res)).toMatchObject({ status: 413, error: { message: expect.stringContaining(`(${MAX_BODY_BYTES})`) } });
    expect(server.requests[0]).toMatchObject({ status: 413, bytesReceived: MAX_BODY_BYTES + 1, fields: {} });
  }, 30_000);
});

describe('POST /v1/chat/completions', () => {
  it('answers a chat.completion echoing the last user message', async () => {
    const res = await postJson('chat', {
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'You are a phone agent.' },
        { role: 'user', content: 'hello' },
        { role: 'assistant', content: 'Hi!' },
        { role: 'user', content: [{ type: 'text', text: 'tone 700' }] },
      ],
      temperature: 0.6,
      max_completion_tokens: 200,
      user: 'call-1',
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      object: 'chat.completion',
      model: 'gpt-4o-mini',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'You said: tone 700. Anything else?', refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage: { completion_tokens: 6 },
    });
    expect(body['id']).toMatch(/^chatcmpl-/);
  });

  it('streams role, 1-3 word content pieces, finish_reason, usage and [DONE]', async () => {
    const answer = 'Sure, I can book a table for two people at eight tonight.';
    server.reply = () => ({ text: answer });
    const res = await postJson('chat', { ...userSays('book'), stream: true, stream_options: { include_usage: true } });
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const events = await sseData(res);
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1) as Chunk[];
    for (const c of chunks) expect(c.object).toBe('chat.completion.chunk');
    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: 'assistant', content: '', refusal: null });
    const usageChunk = chunks.at(-1)!;
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage).toMatchObject({ completion_tokens: 12 });
    expect(chunks.at(-2)!.choices[0]).toMatchObject({ delta: {}, finish_reason: 'stop' });
    const pieces = chunks.slice(1, -2).map((c) => c.choices[0]!.delta['content'] as string);
    expect(pieces.join('')).toBe(answer);
    for (const p of pieces) expect(p.trim().split(/\s+/).length).toBeLessThanOrEqual(3);
    for (const c of chunks.slice(0, -1)) expect(c.usage).toBeNull();
    expect(chunks.every((c) => typeof (c as Record<string, unknown>)['obfuscation'] === 'string')).toBe(true);
  });

  it('streams a tool call as fragments that reassemble, then finish_reason tool_calls', async () => {
    server.reply = (_messages, request) => {
      expect(request.tools).toHaveLength(1);
      return { toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris', unit: 'celsius' } }] };
    };
    const res = await postJson('chat', {
      ...userSays('weather in Paris?'),
      tools: [weatherTool],
      tool_choice: 'auto',
      parallel_tool_calls: false,
      stream: true,
      stream_options: { include_obfuscation: false },
    });
    const chunks = (await sseData(res)).slice(0, -1) as Chunk[];
    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: 'assistant', content: null, refusal: null });
    const calls = new Map<number, { id?: string; type?: string; name?: string; arguments: string }>();
    let fragments = 0;
    for (const c of chunks) {
      for (const tc of (c.choices[0]?.delta['tool_calls'] as Record<string, unknown>[] | undefined) ?? []) {
        fragments++;
        const fn = tc['function'] as { name?: string; arguments?: string };
        const call = calls.get(tc['index'] as number) ?? { arguments: '' };
        if (tc['id']) {
          expect(call.id).toBeUndefined();
          Object.assign(call, { id: tc['id'], type: tc['type'], name: fn.name });
        } else {
          expect(fn.name).toBeUndefined();
        }
        call.arguments += fn.arguments ?? '';
        calls.set(tc['index'] as number, call);
      }
    }
    expect(fragments).toBeGreaterThan(2);
    expect([...calls.keys()]).toEqual([0]);
    const call = calls.get(0)!;
    expect(call).toMatchObject({ id: expect.stringMatching(/^call_/), type: 'function', name: 'get_weather' });
    expect(JSON.parse(call.arguments)).toEqual({ city: 'Paris', unit: 'celsius' });
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('tool_calls');
    expect(chunks.some((c) => 'obfuscation' in c || 'usage' in c)).toBe(false);
    expect(server.requests[0]!.output).toMatchObject({
      finishReason: 'tool_calls',
      toolCalls: [{ id: call.id, name: 'get_weather', arguments: call.arguments }],
    });
  });

  it('answers tool calls without streaming and accepts the conversation that answers them', async () => {
    server.reply = (messages) => {
      const last = messages.at(-1)!;
      return last.role === 'tool' ? { text: `It is ${String(last.content)}.` } : { toolCalls: [{ name: 'get_weather', arguments: { city: 'Oslo' } }] };
    };
    const first = (await (await postJson('chat', { ...userSays('weather?'), tools: [weatherTool] })).json()) as Completion;
    const { message, finish_reason } = first.choices[0]!;
    expect(message.content).toBeNull();
    expect(finish_reason).toBe('tool_calls');
    const calls = message.tool_calls!;
    expect(calls).toEqual([{ id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }]);
    const messages = [
      ...userSays('weather?').messages,
      { role: 'assistant', content: null, tool_calls: calls },
      { role: 'tool', tool_call_id: calls[0]!.id, content: 'sunny' },
    ];
    const second = (await (await postJson('chat', { model: 'gpt-4o-mini', tools: [weatherTool], messages })).json()) as Completion;
    expect(second.choices[0]!.message.content).toBe('It is sunny.');
  });

  it('truncates at max_tokens with finish_reason length and cuts at stop sequences', async () => {
    server.reply = () => ({ text: 'one two three four five. six' });
    const cut = (await (await postJson('chat', { ...userSays('count'), max_tokens: 3 })).json()) as Completion;
    expect(cut.choices[0]).toMatchObject({ message: { content: 'one two three' }, finish_reason: 'length' });
    const stopped = (await (await postJson('chat', { ...userSays('count'), stop: ['.', 'zzz'] })).json()) as Completion;
    expect(stopped.choices[0]).toMatchObject({ message: { content: 'one two three four five' }, finish_reason: 'stop' });
  });

  it('answers a scripted error, and a 500 when the script calls a tool the request lacks', async () => {
    server.reply = () => ({ error: { status: 400, message: 'Your input was flagged.', code: 'content_filter' } });
    expect(await errorOf(await postJson('chat', userSays('x')))).toEqual({
      status: 400,
      error: { message: 'Your input was flagged.', type: 'invalid_request_error', param: null, code: 'content_filter' },
    });
    server.reply = () => ({ toolCalls: [{ name: 'hang_up', arguments: {} }] });
    const stray = await errorOf(await postJson('chat', userSays('x')));
    expect(stray).toMatchObject({ status: 500, error: { type: 'server_error', message: expect.stringMatching(/hang_up/) } });
  });

  const call = { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{}' } };
  const conversation = (...messages: unknown[]): unknown => ({ model: 'gpt-4o-mini', messages });
  it.each<[string, unknown, RegExp, string | null]>([
    ['an unknown top-level key', { ...userSays('x'), foo: 1 }, /^Unrecognized request argument supplied: foo$/, null],
    ['a missing model', { messages: userSays('x').messages }, /^you must provide a model parameter$/, null],
    ['missing messages', { model: 'gpt-4o-mini' }, /^Missing required parameter: 'messages'\.$/, 'messages'],
    ['empty messages', conversation(), /at least 1/, 'messages'],
    ['an unknown role', conversation({ role: 'robot', content: 'x' }), /^Invalid value: 'robot'/, 'messages[0].role'],
    ['a message without content', conversation({ role: 'user' }), /^Missing required parameter: 'messages\[0\]\.content'/, 'messages[0].content'],
    [
      'an unknown message field',
      conversation({ role: 'user', content: 'x', tool_call_id: 'c' }),
      /^Unknown parameter: 'messages\[0\]\.tool_call_id'/,
      'messages[0].tool_call_id',
    ],
    [
      'a tool message without tool_call_id',
      conversation({ role: 'assistant', tool_calls: [call] }, { role: 'tool', content: 'x' }),
      /tool_call_id/,
      'messages[1].tool_call_id',
    ],
    [
      'a tool message answering nothing',
      conversation({ role: 'user', content: 'x' }, { role: 'tool', tool_call_id: 'c', content: 'x' }),
      /must be a response to a preceding message with 'tool_calls'/,
      'messages[1].role',
    ],
    [
      'unanswered tool calls',
      conversation({ role: 'assistant', tool_calls: [call] }, { role: 'user', content: 'x' }),
      /did not have response messages: call_1/,
      'messages',
    ],
    [
      'tool call arguments as an object',
      conversation({ role: 'assistant', tool_calls: [{ ...call, function: { name: 'f', arguments: {} } }] }),
      /^Invalid type for 'messages\[0\]\.tool_calls\[0\]\.function\.arguments'/,
      'messages[0].tool_calls[0].function.arguments',
    ],
    ['n = 2', { ...userSays('x'), n: 2 }, /above maximum value/, 'n'],
    ['temperature 3', { ...userSays('x'), temperature: 3 }, /above maximum value/, 'temperature'],
    ['a string max_tokens', { ...userSays('x'), max_tokens: '50' }, /^Invalid type for 'max_tokens'/, 'max_tokens'],
    ['tool_choice without tools', { ...userSays('x'), tool_choice: 'auto' }, /only allowed when 'tools' are specified/, 'tool_choice'],
    ['a bad tool name', { ...userSays('x'), tools: [{ type: 'function', function: { name: 'get weather' } }] }, /does not match/, 'tools[0].function.name'],
    ['a tool of another type', { ...userSays('x'), tools: [{ type: 'web_search' }] }, /^Invalid value: 'web_search'/, 'tools[0].type'],
    ['stream_options without stream', { ...userSays('x'), stream_options: { include_usage: true } }, /only allowed when 'stream'/, 'stream_options'],
    ['json_object without the word json', { ...userSays('x'), response_format: { type: 'json_object' } }, /must contain the word 'json'/, 'messages'],
    ['a JSON array', [userSays('x')], /^Invalid type for body/, null],
  ])('rejects %s with 400', async (_name, body, message, param) => {
    await expectInvalid(await postJson('chat', body), message, param);
  });

  it('rejects a body that is not JSON with 400', async () => {
    const res = await post('chat', '{"model": "gpt-4o-mini", messages: [', { 'content-type': 'application/json' });
    await expectInvalid(res, /^We could not parse the JSON body of your request/, null);
  });

  it('stops a stream cleanly when the client goes away mid-stream', async () => {
    server.timing.chatDeltaMs = 60_000;
    const ac = new AbortController();
    const res = await postJson('chat', { ...userSays('a long answer please'), stream: true }, ac.signal);
    const reader = res.body!.getReader();
    let seen = '';
    while (!seen.includes('"content":"You"')) seen += Buffer.from((await reader.read()).value!).toString('utf8');
    ac.abort();
    const rec = await server.waitForRequest((r) => r.endpoint === 'chat');
    expect(rec).toMatchObject({ aborted: true, stream: true, status: 200 });
    expect(rec.finishedAt).not.toBeNull();
    expect(rec.bytesSent).toBe(Buffer.byteLength(seen));
    server.timing.chatDeltaMs = 0;
    expect((await postJson('chat', userSays('again'))).status).toBe(200);
  });
});

describe('POST /v1/audio/speech', () => {
  const hello = 'Hello, how can I help?';
  const speak = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    model: 'gpt-4o-mini-tts',
    input: hello,
    voice: 'coral',
    response_format: 'pcm',
    ...extra,
  });

  it('streams pcm as chunked 24 kHz audio whose length follows the text and whose tone follows voiceFor', async () => {
    server.timing.ttsChunkMs = 20;
    const res = await postJson('speech', speak({ instructions: 'Cheerful.', speed: 1 }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/pcm');
    expect(res.headers.get('transfer-encoding')).toBe('chunked');
    expect(res.headers.get('content-length')).toBeNull();
    const bytes = Buffer.from(await res.arrayBuffer());
    const ms = speechDurationMs(hello);
    expect(bytes.length).toBe(ms * 48);
    const pcm = new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
    expect(dominantFrequency(pcm, 24000).freq).toBe(voiceHz(hello));
    expect(server.requests[0]).toMatchObject({ stream: true, bytesSent: ms * 48, aborted: false, output: { toneHz: voiceHz(hello), audioMs: ms } });
  });

  it('speaks wav that its own transcription hears, with a scripted voice', async () => {
    server.voiceFor = (input) => (input.startsWith('Yes') ? 600 : 1200);
    const res = await postJson('speech', speak({ input: 'Yes, I can.', response_format: 'wav', speed: 0.5 }));
    expect(res.headers.get('content-type')).toBe('audio/wav');
    const wav = Buffer.from(await res.arrayBuffer());
    const durationMs = speechDurationMs('Yes, I can.', 0.5);
    expect(parseWav(wav)).toMatchObject({ sampleRate: 24000, channels: 1, durationMs, truncatedHeader: false });
    const heard = await transcribe({ model: 'gpt-4o-transcribe', file: new Blob([wav]) });
    expect(await heard.json()).toMatchObject({ text: 'tone 600' });
  });

  it('streams sse speech.audio.delta events and a speech.audio.done with usage', async () => {
    const res = await postJson('speech', speak({ stream_format: 'sse' }));
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const events = (await sseData(res)) as Record<string, unknown>[];
    const deltas = events.slice(0, -1);
    expect(deltas.length).toBeGreaterThan(1);
    for (const d of deltas) expect(Object.keys(d)).toEqual(['type', 'audio']);
    const bytes = deltas.reduce((n, d) => n + Buffer.from(d['audio'] as string, 'base64').length, 0);
    expect(bytes).toBe(speechDurationMs(hello) * 48);
    const count = expect.any(Number) as unknown;
    expect(events.at(-1)).toEqual({ type: 'speech.audio.done', usage: { input_tokens: count, output_tokens: count, total_tokens: count } });
  });

  it('stops streaming audio cleanly when the client goes away', async () => {
    server.timing.ttsPace = 0.001;
    const ac = new AbortController();
    const res = await postJson('speech', speak({ input: 'x'.repeat(200) }), ac.signal);
    const first = await res.body!.getReader().read();
    expect(first.value!.length).toBeGreaterThan(0);
    ac.abort();
    const rec = await server.waitForRequest((r) => r.endpoint === 'speech');
    expect(rec).toMatchObject({ aborted: true, bytesSent: 40 * 48 });
  });

  it.each<[string, Record<string, unknown>, RegExp, string | null]>([
    ['an unknown key', speak({ format: 'pcm' }), /^Unrecognized request argument supplied: format$/, null],
    ['a missing voice', speak({ voice: undefined }), /^Missing required parameter: 'voice'/, 'voice'],
    ['a missing input', speak({ input: undefined }), /^Missing required parameter: 'input'/, 'input'],
    ['an unknown voice', speak({ voice: 'hal' }), /^Invalid value: 'hal'/, 'voice'],
    ['input over 4096 characters', speak({ input: 'a'.repeat(4097) }), /maximum length 4096, but got a string with length 4097/, 'input'],
    ['an empty input', speak({ input: '' }), /empty string/, 'input'],
    ['speed 5', speak({ speed: 5 }), /above maximum value/, 'speed'],
    ['speed 0.1', speak({ speed: 0.1 }), /below minimum value/, 'speed'],
    ['mp3 (not rendered by the fake)', speak({ response_format: 'mp3' }), /'mp3' is not produced/, 'response_format'],
    ['no response_format (mp3 by default)', speak({ response_format: undefined }), /'mp3' is not produced/, 'response_format'],
    ['an unknown response_format', speak({ response_format: 'ogg' }), /^Invalid value: 'ogg'/, 'response_format'],
    ['sse with tts-1', speak({ model: 'tts-1', stream_format: 'sse' }), /not supported for model 'tts-1'/, 'stream_format'],
  ])('rejects %s with 400', async (_name, body, message, param) => {
    await expectInvalid(await postJson('speech', body), message, param);
  });

  it('rejects a body that is not JSON with 400', async () => {
    const res = await post('speech', 'input=hello', { 'content-type': 'application/x-www-form-urlencoded' });
    await expectInvalid(res, /^We could not parse the JSON body/, null);
  });
});

describe('fake-openai-http-cli', () => {
  it('prints "listening <url>", serves with the given key and timing, and reports requests on SIGTERM', async () => {
    const flags = ['--port', '0', '--key', 'sk-cli', '--first-token-ms', '5', '--tts-first-byte-ms', '5', '--stt-ms', '5'];
    const args = ['-r', './test/fakes/ts-register.js', 'test/fakes/fake-openai-http-cli.ts', ...flags];
    const child = spawn(process.execPath, args, { cwd: join(__dirname, '..', '..', '..'), stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = once(child, 'exit');
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const first = (await lines.next()).value as string;
    expect(first).toMatch(/^listening http:\/\/127\.0\.0\.1:\d+$/);
    const url = first.slice('listening '.length);
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-cli', 'content-type': 'application/json' },
      body: JSON.stringify(userSays('tone 700')),
    });
    expect(((await res.json()) as Completion).choices[0]!.message.content).toBe('You said: tone 700. Anything else?');
    child.kill('SIGTERM');
    const summary = JSON.parse((await lines.next()).value as string) as Partial<RequestRecord>;
    expect(summary).toMatchObject({ id: 1, endpoint: 'chat', status: 200, aborted: false });
    expect(await exited).toEqual([0, null]);
  }, 20_000);
});

describe('GET /v1/models', () => {
  it('lists the models to a client with the key, and refuses one without', async () => {
    const f = new FakeOpenAiHttp({ apiKey: 'sk-models-test' });
    await f.listen();
    try {
      const ok = await fetch(`${f.apiBase}/models`, { headers: { authorization: 'Bearer sk-models-test' } });
      expect(ok.status).toBe(200);
      const list = (await ok.json()) as { object: string; data: { id: string }[] };
      expect(list.object).toBe('list');
      expect(list.data.map((m) => m.id)).toContain('whisper-1');
      expect((await fetch(`${f.apiBase}/models`)).status).toBe(401);
    } finally {
      await f.close();
    }
  });
});

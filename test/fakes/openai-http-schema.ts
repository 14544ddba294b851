/**
 * Strict validation of the JSON bodies of `POST /v1/chat/completions` and `POST /v1/audio/speech`
 * as the fake OpenAI HTTP server accepts them: unknown top-level keys, missing or mistyped fields,
 * values out of range, message roles and their fields, and the pairing of assistant `tool_calls`
 * with `tool` messages, reported with the service's error messages and codes.
 */
import { validate, type Schema } from './schema';

/** One validation failure: the `message`, `param` and `code` of an OpenAI error body. */
export interface OpenAiProblem {
  message: string;
  param: string | null;
  code: string | null;
}

const S = {
  str: (values?: readonly string[]): Schema => ({ kind: 'string', ...(values ? { enum: values } : {}) }),
  num: (range: { integer?: boolean; min?: number; max?: number } = {}): Schema => ({ kind: 'number', ...range }),
  bool: { kind: 'boolean' } as Schema,
  any: { kind: 'any' } as Schema,
  dict: { kind: 'map', values: { kind: 'any' } } as Schema,
  obj: (props: Record<string, Schema>, required: readonly string[] = []): Schema => ({ kind: 'object', props, required }),
  list: (items: Schema, bounds: { minItems?: number; maxItems?: number } = {}): Schema => ({ kind: 'array', items, ...bounds }),
  either: (...options: Schema[]): Schema => ({ kind: 'oneOf', options }),
  byType: (variants: Record<string, Schema>): Schema => ({ kind: 'tagged', variants }),
  orNull: (s: Schema): Schema => ({ kind: 'oneOf', options: [s, { kind: 'null' }] }),
};

const textPart = S.obj({ type: S.str(['text']), text: S.str() }, ['type', 'text']);
const textContent = S.either(S.str(), S.list(textPart, { minItems: 1 }));
const userContent = S.either(
  S.str(),
  S.list(
    S.byType({
      text: textPart,
      image_url: S.obj(
        { type: S.str(['image_url']), image_url: S.obj({ url: S.str(), detail: S.str(['auto', 'low', 'high']) }, ['url']) },
        ['type', 'image_url'],
      ),
      input_audio: S.obj(
        { type: S.str(['input_audio']), input_audio: S.obj({ data: S.str(), format: S.str(['wav', 'mp3']) }, ['data', 'format']) },
        ['type', 'input_audio'],
      ),
      file: S.obj({ type: S.str(['file']), file: S.obj({ file_data: S.str(), file_id: S.str(), filename: S.str() }) }, ['type', 'file']),
    }),
    { minItems: 1 },
  ),
);
const assistantContent = S.orNull(
  S.either(
    S.str(),
    S.list(S.byType({ text: textPart, refusal: S.obj({ type: S.str(['refusal']), refusal: S.str() }, ['type', 'refusal']) })),
  ),
);
const toolCall = S.obj(
  {
    id: S.str(),
    type: S.str(['function']),
    function: S.obj({ name: S.str(), arguments: S.str() }, ['name', 'arguments']),
  },
  ['id', 'type', 'function'],
);

/** Message roles the chat endpoint accepts, with each role's fields. */
const MESSAGE_SCHEMAS: Record<string, Schema> = {
  system: S.obj({ role: S.str(), content: textContent, name: S.str() }, ['content']),
  developer: S.obj({ role: S.str(), content: textContent, name: S.str() }, ['content']),
  user: S.obj({ role: S.str(), content: userContent, name: S.str() }, ['content']),
  assistant: S.obj({
    role: S.str(),
    content: assistantContent,
    name: S.str(),
    refusal: S.orNull(S.str()),
    tool_calls: S.list(toolCall),
    audio: S.orNull(S.obj({ id: S.str() }, ['id'])),
  }),
  tool: S.obj({ role: S.str(), content: textContent, tool_call_id: S.str() }, ['content', 'tool_call_id']),
};

const functionTool = S.obj(
  {
    type: S.str(['function']),
    function: S.obj({ name: S.str(), description: S.str(), parameters: S.dict, strict: S.orNull(S.bool) }, ['name']),
  },
  ['type', 'function'],
);

const CHAT_SCHEMA = S.obj({
  model: S.str(),
  messages: S.list(S.any, { minItems: 1 }),
  stream: S.orNull(S.bool),
  stream_options: S.orNull(S.obj({ include_usage: S.bool, include_obfuscation: S.bool })),
  temperature: S.orNull(S.num({ min: 0, max: 2 })),
  top_p: S.orNull(S.num({ min: 0, max: 1 })),
  max_tokens: S.orNull(S.num({ integer: true, min: 1 })),
  max_completion_tokens: S.orNull(S.num({ integer: true, min: 1 })),
  tools: S.list(functionTool),
  tool_choice: S.either(
    S.str(['none', 'auto', 'required']),
    S.obj({ type: S.str(['function']), function: S.obj({ name: S.str() }, ['name']) }, ['type', 'function']),
  ),
  parallel_tool_calls: S.bool,
  // Several choices are a real feature; the fake always generates exactly one.
  n: S.orNull(S.num({ integer: true, min: 1, max: 1 })),
  user: S.str(),
  seed: S.orNull(S.num({ integer: true })),
  stop: S.orNull(S.either(S.str(), S.list(S.str(), { maxItems: 4 }))),
  presence_penalty: S.orNull(S.num({ min: -2, max: 2 })),
  frequency_penalty: S.orNull(S.num({ min: -2, max: 2 })),
  response_format: S.byType({
    text: S.obj({ type: S.str(['text']) }),
    json_object: S.obj({ type: S.str(['json_object']) }),
    json_schema: S.obj(
      {
        type: S.str(['json_schema']),
        json_schema: S.obj({ name: S.str(), description: S.str(), schema: S.dict, strict: S.orNull(S.bool) }, ['name']),
      },
      ['type', 'json_schema'],
    ),
  }),
});

/** Voices of the speech endpoint. */
export const TTS_VOICES = ['alloy', 'ash', 'ballad', 'coral', 'echo', 'fable', 'onyx', 'nova', 'sage', 'shimmer', 'verse', 'marin', 'cedar'] as const;

/** `response_format` values of the speech endpoint (the fake renders only `wav` and `pcm`). */
export const SPEECH_FORMATS = ['mp3', 'opus', 'aac', 'flac', 'wav', 'pcm'] as const;

/** Longest `input` of the speech endpoint, characters. */
export const MAX_SPEECH_INPUT = 4096;

const SPEECH_SCHEMA = S.obj(
  {
    model: S.str(),
    input: S.str(),
    voice: S.either(S.str(TTS_VOICES), S.obj({ id: S.str() }, ['id'])),
    instructions: S.str(),
    response_format: S.str(SPEECH_FORMATS),
    speed: S.num({ min: 0.25, max: 4 }),
    stream_format: S.str(['audio', 'sse']),
  },
  ['model', 'input', 'voice'],
);

/** A problem with the given message, param and code. */
export const problem = (message: string, param: string | null = null, code: string | null = null): OpenAiProblem => ({ message, param, code });

/** The service's answer to a top-level key it does not know. */
export function unrecognizedArgument(key: string): OpenAiProblem {
  return problem(`Unrecognized request argument supplied: ${key}`);
}

/** `Missing required parameter: '<param>'.` */
export function missingParameter(param: string): OpenAiProblem {
  return problem(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter');
}

/** A JSON body must be an object whose keys are all in `schema`; returns the first problem. */
function checkTopLevel(body: unknown, schema: Schema): OpenAiProblem | null {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    const got = Array.isArray(body) ? 'an array' : typeof body;
    return problem(`Invalid type for body: expected an object, but got ${got} instead.`, null, 'invalid_type');
  }
  const known = (schema as { props: Record<string, Schema> }).props;
  const unknown = Object.keys(body).find((k) => !(k in known));
  return unknown === undefined ? null : unrecognizedArgument(unknown);
}

/** Plain text of a message's `content` (text parts joined by spaces). */
export function messageText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((p) => (typeof p?.text === 'string' ? (p.text as string) : '')).join(' ');
}

/** Check each message's role and fields, and that every tool call is answered before the next turn. */
function checkMessages(messages: Record<string, unknown>[]): OpenAiProblem | null {
  let pending = new Set<string>();
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    const path = `messages[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) {
      return problem(`Invalid type for '${path}': expected an object.`, path, 'invalid_type');
    }
    if (!('role' in m)) return missingParameter(`${path}.role`);
    const role = m['role'];
    const schema = typeof role === 'string' ? MESSAGE_SCHEMAS[role] : undefined;
    if (!schema) {
      const supported = Object.keys(MESSAGE_SCHEMAS).map((r) => `'${r}'`);
      const value = typeof role === 'string' ? `'${role}'` : JSON.stringify(role);
      return problem(`Invalid value: ${value}. Supported values are: ${supported.join(', ')}.`, `${path}.role`, 'invalid_value');
    }
    const bad = validate(schema, m, path);
    if (bad) return bad;
    if (role === 'tool') {
      if (!pending.delete(m['tool_call_id'] as string)) {
        return problem(
          "Invalid parameter: messages with role 'tool' must be a response to a preceding message with 'tool_calls'.",
          `${path}.role`,
        );
      }
      continue;
    }
    if (pending.size > 0) break;
    const calls = (m['tool_calls'] as { id: string }[] | undefined) ?? [];
    if (role === 'assistant' && (m['content'] === undefined || m['content'] === null) && calls.length === 0) {
      return missingParameter(`${path}.content`);
    }
    pending = new Set(calls.map((c) => c.id));
  }
  if (pending.size > 0) {
    return problem(
      "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. " +
        `The following tool_call_ids did not have response messages: ${[...pending].join(', ')}`,
      'messages',
    );
  }
  return null;
}

/** Validate a chat completion request body; returns the first problem, or null when valid. */
export function validateChatRequest(body: unknown): OpenAiProblem | null {
  const top = checkTopLevel(body, CHAT_SCHEMA);
  if (top) return top;
  const req = body as Record<string, unknown>;
  if (req['model'] === undefined || req['model'] === '') return problem('you must provide a model parameter');
  if (req['messages'] === undefined) return missingParameter('messages');
  const bad = validate(CHAT_SCHEMA, req, '');
  if (bad) return bad;
  const messagesProblem = checkMessages(req['messages'] as Record<string, unknown>[]);
  if (messagesProblem) return messagesProblem;
  const tools = (req['tools'] as { function: { name: string } }[] | undefined) ?? [];
  const badName = tools.findIndex((t) => !/^[a-zA-Z0-9_-]{1,64}$/.test(t.function.name));
  if (badName >= 0) {
    const param = `tools[${badName}].function.name`;
    const message = `Invalid '${param}': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.`;
    return problem(message, param, 'invalid_value');
  }
  for (const key of ['tool_choice', 'parallel_tool_calls']) {
    if (req[key] !== undefined && tools.length === 0) {
      return problem(`Invalid value for '${key}': '${key}' is only allowed when 'tools' are specified.`, key);
    }
  }
  if (req['stream_options'] != null && req['stream'] !== true) {
    return problem("The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options');
  }
  const format = req['response_format'] as { type: string } | undefined;
  const messages = req['messages'] as Record<string, unknown>[];
  if (format?.type === 'json_object' && !messages.some((m) => /json/i.test(messageText(m['content'])))) {
    return problem("'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.", 'messages');
  }
  return null;
}

/** Validate a speech request body; returns the first problem, or null when valid. */
export function validateSpeechRequest(body: unknown): OpenAiProblem | null {
  const top = checkTopLevel(body, SPEECH_SCHEMA);
  if (top) return top;
  const bad = validate(SPEECH_SCHEMA, body, '');
  if (bad) return bad;
  const req = body as { model: string; input: string; response_format?: string; stream_format?: string };
  if (req.input.length === 0) {
    const message = "Invalid 'input': empty string. Expected a string with minimum length 1, but got an empty string instead.";
    return problem(message, 'input', 'empty_string');
  }
  if (req.input.length > MAX_SPEECH_INPUT) {
    return problem(
      `Invalid 'input': string too long. Expected a string with maximum length ${MAX_SPEECH_INPUT}, ` +
        `but got a string with length ${req.input.length} instead.`,
      'input',
      'string_above_max_length',
    );
  }
  if (req.stream_format === 'sse' && /^tts-1(-hd)?$/.test(req.model)) {
    return problem(`stream_format 'sse' is not supported for model '${req.model}'.`, 'stream_format', 'unsupported_value');
  }
  // The service also renders mp3, opus, aac and flac; the fake renders only wav and pcm and
  // refuses the others rather than sending bytes that would not decode.
  const format = req.response_format ?? 'mp3';
  if (format !== 'wav' && format !== 'pcm') {
    return problem(
      `response_format '${format}' is not produced by the fake server (use 'wav' or 'pcm').`,
      'response_format',
      'unsupported_value',
    );
  }
  return null;
}

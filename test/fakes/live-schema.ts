/**
 * Strict shapes of OpenAI GPT-Live (`gpt-live-1`) client events, for the fake Live server.
 *
 * The protocol, as published (OpenAI Live API reference and WebSocket guide; Azure Foundry's
 * GPT-Live event reference and the `@azure/ai-projects` Live* interfaces):
 *
 * Transport. `wss://api.openai.com/v1/live/sessions` (Azure: `wss://<res>.openai.azure.com/openai/
 * v1/live/sessions`), no query parameters (the model is not in the URL). Auth on the handshake:
 * `Authorization: Bearer <key>` (Azure also takes an `api-key` header or an Entra bearer token).
 * JSON text frames both ways.
 *
 * Start. The first client event must be `session.start {session, event_id?}`; the server answers
 * `session.started {event_id, session: SessionResource}`; nothing else may be sent before that.
 * The session config is strict (unknown fields are rejected): `model` (required), `instructions`
 * (string|null, ≤16,384 tokens, immutable), `audio {format, output {voice}}`, `delegation`
 * (omitted/null = client), `input` (≤128 text history items), `store`, `client` (WebRTC data
 * channel permissions). `audio.format` (WebSocket only) is one of `{type:'audio/pcm', rate:16000|
 * 24000}`, `{type:'audio/pcmu', rate:8000}`, `{type:'audio/pcma', rate:8000}` (default PCM16 24 kHz),
 * shared by input and output and fixed for the session. `voice` is a built-in name or `{id}`,
 * default `marin`, fixed. SessionResource = the resolved config + `id`, `expires_at`, `status:'active'`.
 *
 * Audio. `session.input_audio.append {audio}`: base64 raw audio in the session format, no
 * header, no acknowledgment. The client streams continuously (a live microphone, silence
 * included); there is no commit and no client-side turn control: endpointing is the model's.
 * `session.input_audio.mute` / `.unmute` → `session.input_audio.muted` / `.unmuted`.
 * Output: `session.output_audio.delta {delta}` (no event_id and no timestamps on the primary
 * socket), played in delivery order; the reference does not say how fast they come (this fake
 * sends them at 4x real time by default, the harder case for a client). Transcripts:
 * `session.input_transcript.delta` and `session.output_transcript.delta {delta, start_ms, end_ms,
 * event_id}` on the session timeline (ms from the session start); fragments only, streamed as the
 * audio goes, no "done" events, no turn boundaries.
 *
 * Turns and interruptions. GPT-Live is full duplex: it listens while it speaks. The reference
 * defines no turn events, no speech-started/stopped events, no interruption event, and no client
 * event reporting what was played (no truncate): when the user talks over the model it simply
 * stops producing audio, and the client owns its playback buffer. The guides only tell the client
 * to keep received events, playback and backend state apart and to buffer a little against jitter.
 *
 * Context. `session.instructions.append`, `session.thinking.append` (silent), and
 * `session.commentary.append` (speakable) all carry `{content (≤500 tokens), delegation_id
 * (required, string|null)}`; acknowledged by `session.*.appended {start_ms, end_ms}`.
 *
 * Delegation. `client` (default): the model emits `session.delegation.created {delegation: {id,
 * type:'delegation', target:'client'}, offset_ms}` — metadata only, no task text and no function
 * name; the client works it out from the transcript and answers with commentary/thinking appends
 * carrying that `delegation_id`. `responses`: `delegation.responses {model (required),
 * instructions, max_output_tokens, parallel_tool_calls, reasoning {effort, summary}, service_tier,
 * text {verbosity}, tool_choice, tools}` where tools are function tools `{type:'function', name,
 * description?, parameters?, strict?}` or hosted tools by type. The server runs the Responses call
 * and streams it back wrapped as `response.event {event, delegation_id, event_id}`; a client
 * function call arrives as nested Responses events (`response.output_item.done` with a
 * `function_call` item {call_id, name, arguments}); its result goes back as `response.item.create
 * {item: {type:'function_call_output', call_id, output}}` then `response.create`. Both of these
 * require Responses delegation (rejected under client delegation); non-null delegation_ids on
 * appends are not accepted with Responses delegation. `session.update {session: {delegation}}`
 * changes only Responses settings; the delegation type cannot change.
 *
 * End. `session.close` → `session.closed {reason, session, usage: {seconds}}`, reason one of
 * `close_requested`, `expired`, `content`, `remote_hangup`, `connection_lost`; a socket that closes
 * without it did not finalize. `session.usage.updated {usage: {seconds}}` reports cumulative audio
 * seconds (a total, not an increment).
 *
 * Errors. `error {event_id, error: {type, code, message, param?, client_event_id?}}`, e.g. type
 * `invalid_request_error`, code `unknown_parameter`, param `session.voice`. The reference names
 * no other codes; this fake uses the Realtime fake's validation codes (`unknown_parameter`,
 * `missing_required_parameter`, `invalid_type`, `invalid_value`) and a few of its own
 * (`session_not_started`, `session_already_started`, `unknown_delegation`, `unknown_call_id`).
 */
import { schemaBuilders as S, validate, type Schema, type SchemaProblem } from './schema';

export type { SchemaProblem } from './schema';

const { str, num, bool, any, obj, arr, oneOf, tagged, nullable } = S;

/** Built-in GPT-Live voices (reference `BuiltInVoice`). */
export const LIVE_VOICES = [
  'alloy', 'ash', 'ballad', 'beacon', 'bossa', 'brise', 'cedar', 'cinder', 'coral', 'delta', 'echo', 'flitz', 'gleam', 'harema',
  'juni', 'marin', 'meridian', 'nira', 'noeul', 'nuri', 'quartz', 'ripple', 'sage', 'shimmer', 'shitan', 'sillage', 'stone',
  'tempo', 'verse', 'vesper', 'willow',
] as const;

/** Token estimate for the reference's token limits: one token per 4 characters, rounded up. */
export function liveTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** Limit of instructions/thinking/commentary appends, tokens. */
export const APPEND_MAX_TOKENS = 500;
/** Limit of the startup instructions, tokens. */
export const INSTRUCTIONS_MAX_TOKENS = 16_384;
/** Limit of the startup `input` history, messages. */
export const INPUT_MAX_ITEMS = 128;
/** Limit of the startup `input` history, tokens in all. */
export const INPUT_MAX_TOKENS = 8192;

/** WebSocket audio formats (reference `AudioFormat`). */
export const LIVE_AUDIO_FORMAT: Schema = tagged({
  'audio/pcm': obj({ type: str(['audio/pcm']), rate: num({ enum: [16000, 24000] }) }, ['type', 'rate']),
  'audio/pcmu': obj({ type: str(['audio/pcmu']), rate: num({ enum: [8000] }) }, ['type', 'rate']),
  'audio/pcma': obj({ type: str(['audio/pcma']), rate: num({ enum: [8000] }) }, ['type', 'rate']),
});

const voice = oneOf(str(), obj({ id: str() }, ['id']));

const functionTool = obj(
  { type: str(['function']), name: str(), description: nullable(str()), parameters: nullable({ kind: 'map', values: any }), strict: nullable(bool) },
  ['type', 'name'],
);

const hosted = (type: string, extra: Record<string, Schema> = {}): Schema => obj({ type: str([type]), ...extra }, ['type']);

/** Tools of the Responses backend (reference `ResponsesDelegationConfig.tools`). */
const responsesTool = tagged({
  function: functionTool,
  web_search: hosted('web_search'),
  file_search: hosted('file_search'),
  code_interpreter: hosted('code_interpreter'),
  shell: hosted('shell', { environment: nullable({ kind: 'map', values: any }) }),
  image_generation: hosted('image_generation'),
  mcp: hosted('mcp'),
  custom: hosted('custom'),
  namespace: hosted('namespace'),
  tool_search: hosted('tool_search'),
  programmatic_tool_calling: hosted('programmatic_tool_calling'),
  computer: hosted('computer'),
  apply_patch: hosted('apply_patch'),
});

const responsesSettings = {
  instructions: nullable(str()),
  max_output_tokens: nullable(num({ integer: true, min: 1 })),
  parallel_tool_calls: nullable(bool),
  reasoning: nullable(
    obj({
      effort: nullable(str(['none', 'minimal', 'low', 'medium', 'high', 'xhigh'])),
      summary: nullable(str(['concise', 'detailed', 'auto'])),
    }),
  ),
  service_tier: nullable(str(['auto', 'default', 'fast_tier_temp_pilot', 'flex', 'priority', 'ultrafast'])),
  text: nullable(obj({ verbosity: nullable(str(['low', 'medium', 'high'])) })),
  tool_choice: oneOf(str(['auto', 'none', 'required']), { kind: 'map', values: any }),
  tools: arr(responsesTool),
};

/** `delegation.responses` at startup: model required. */
export const RESPONSES_DELEGATION: Schema = obj({ model: str(), ...responsesSettings }, ['model']);
/** `delegation.responses` in session.update: every setting optional. */
const RESPONSES_DELEGATION_UPDATE: Schema = obj({ model: str(), ...responsesSettings });

const clientDelegation = obj({ type: str(['client']) }, ['type']);

const delegation = nullable(
  tagged({
    client: clientDelegation,
    responses: obj({ type: str(['responses']), responses: RESPONSES_DELEGATION }, ['type', 'responses']),
  }),
);

const textPart = (types: readonly string[]): Schema => obj({ text: str(), type: str(types) }, ['text']);
const historyItem = (role: string, partTypes: readonly string[]): Schema =>
  obj(
    {
      role: str([role]),
      content: arr(textPart(partTypes), { minItems: 1, maxItems: 1 }),
      id: nullable(str()),
      status: nullable(str(['incomplete', 'completed'])),
      type: str(['message']),
    },
    ['role', 'content'],
  );

/** One `input` history message; dispatched on `role` (there is no required `type`). */
const INITIAL_ITEM_BY_ROLE: Record<string, Schema> = {
  developer: historyItem('developer', ['input_text']),
  user: historyItem('user', ['input_text']),
  assistant: historyItem('assistant', ['text', 'output_text']),
};

const dataChannel = obj({
  allowed_client_events: oneOf(str(['all']), arr(str())),
  allowed_server_events: oneOf(str(['all']), arr(obj({ type: str(), response_event: str() }, ['type']))),
});

/** The `session` object of `session.start` (reference `SessionConfig`). */
export const LIVE_SESSION_CONFIG: Schema = obj(
  {
    model: str(),
    instructions: nullable(str()),
    audio: obj({ format: LIVE_AUDIO_FORMAT, output: obj({ voice }) }),
    client: obj({ data_channel: dataChannel }, ['data_channel']),
    delegation,
    // Items are checked one by one below (their variant hangs on `role`).
    input: arr(any, { maxItems: INPUT_MAX_ITEMS }),
    store: bool,
  },
  ['model'],
);

const eventId = nullable(str());
const appendEvent = obj({ type: str(), event_id: eventId, content: str(), delegation_id: nullable(str()) }, ['type', 'content', 'delegation_id']);

const outputPart = tagged({
  input_text: obj({ type: str(['input_text']), text: str() }, ['type', 'text']),
  input_image: obj({ type: str(['input_image']), image_url: nullable(str()), file_id: nullable(str()), detail: str(['auto', 'low', 'high']) }, ['type']),
  input_file: obj({ type: str(['input_file']), file_id: nullable(str()), file_data: str(), file_url: str(), filename: str() }, ['type']),
});

/** Items `response.item.create` accepts (a subset of the Responses `ResponseInputItem` union). */
export const RESPONSE_INPUT_ITEM: Schema = tagged({
  function_call_output: obj(
    {
      type: str(['function_call_output']),
      call_id: str(),
      output: oneOf(str(), arr(outputPart)),
      id: nullable(str()),
      status: nullable(str(['in_progress', 'completed', 'incomplete'])),
    },
    ['type', 'call_id', 'output'],
  ),
  message: obj(
    {
      type: str(['message']),
      role: str(['user', 'assistant', 'system', 'developer']),
      content: oneOf(str(), arr(tagged({ input_text: obj({ type: str(['input_text']), text: str() }, ['type', 'text']) }))),
      id: nullable(str()),
      status: nullable(str(['in_progress', 'completed', 'incomplete'])),
    },
    ['type', 'role', 'content'],
  ),
});

/** Every client event of the primary WebSocket (reference `ClientEvent`) and its schema. */
export const LIVE_CLIENT_EVENT_SCHEMAS: Record<string, Schema> = {
  'session.start': obj({ type: str(), event_id: eventId, session: LIVE_SESSION_CONFIG }, ['type', 'session']),
  'session.update': obj(
    {
      type: str(),
      event_id: eventId,
      session: obj({
        delegation: nullable(
          tagged({
            client: clientDelegation,
            responses: obj({ type: str(['responses']), responses: RESPONSES_DELEGATION_UPDATE }, ['type']),
          }),
        ),
      }),
    },
    ['type', 'session'],
  ),
  'session.input_audio.append': obj({ type: str(), event_id: eventId, audio: str() }, ['type', 'audio']),
  'session.input_audio.mute': obj({ type: str(), event_id: eventId }, ['type']),
  'session.input_audio.unmute': obj({ type: str(), event_id: eventId }, ['type']),
  'session.instructions.append': appendEvent,
  'session.thinking.append': appendEvent,
  'session.commentary.append': appendEvent,
  'response.item.create': obj({ type: str(), event_id: eventId, item: RESPONSE_INPUT_ITEM }, ['type', 'item']),
  'response.create': obj({ type: str(), event_id: eventId }, ['type']),
  'session.close': obj({ type: str(), event_id: eventId }, ['type']),
};

function tooLong(param: string, tokens: number, max: number): SchemaProblem {
  return { code: 'string_above_max_length', param, message: `Invalid '${param}': string too long. Expected at most ${max} tokens, but got about ${tokens}.` };
}

function checkSessionConfig(session: Record<string, unknown>): SchemaProblem | null {
  const instructions = session['instructions'];
  if (typeof instructions === 'string' && liveTokens(instructions) > INSTRUCTIONS_MAX_TOKENS) {
    return tooLong('session.instructions', liveTokens(instructions), INSTRUCTIONS_MAX_TOKENS);
  }
  const input = session['input'];
  if (Array.isArray(input)) {
    for (let i = 0; i < input.length; i++) {
      const item = input[i] as unknown;
      const path = `session.input[${i}]`;
      const role = typeof item === 'object' && item !== null ? (item as Record<string, unknown>)['role'] : undefined;
      const schema = typeof role === 'string' ? INITIAL_ITEM_BY_ROLE[role] : undefined;
      if (!schema) {
        return { code: 'invalid_value', param: `${path}.role`, message: `Invalid value: ${JSON.stringify(role)}. Supported values are: 'developer', 'user', 'assistant'.` };
      }
      const p = validate(schema, item, path);
      if (p) return p;
    }
    const texts = input.map((item) => ((item as { content: Array<{ text: string }> }).content[0]?.text ?? '')).join('');
    if (liveTokens(texts) > INPUT_MAX_TOKENS) return tooLong('session.input', liveTokens(texts), INPUT_MAX_TOKENS);
  }
  return null;
}

/**
 * Validate one parsed client event: a known Live client event type, every field of its shape,
 * and the token limits. Returns the problem, or null when the event is valid.
 */
export function validateLiveClientEvent(event: unknown): SchemaProblem | null {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    return { code: 'invalid_type', param: null, message: 'Invalid event: expected a JSON object.' };
  }
  const rec = event as Record<string, unknown>;
  const type = rec['type'];
  if (type === undefined) return { code: 'missing_required_parameter', param: 'type', message: "Missing required parameter: 'type'." };
  if (typeof type !== 'string') return { code: 'invalid_type', param: 'type', message: "Invalid type for 'type': expected a string." };
  const schema = LIVE_CLIENT_EVENT_SCHEMAS[type];
  if (!schema) {
    return {
      code: 'invalid_value',
      param: 'type',
      message: `Invalid value: '${type}'. Supported values are: ${Object.keys(LIVE_CLIENT_EVENT_SCHEMAS).map((t) => `'${t}'`).join(', ')}.`,
    };
  }
  const p = validate(schema, event, '');
  if (p) return p;
  if (type === 'session.start') return checkSessionConfig(rec['session'] as Record<string, unknown>);
  const content = rec['content'];
  if (typeof content === 'string' && liveTokens(content) > APPEND_MAX_TOKENS) return tooLong('content', liveTokens(content), APPEND_MAX_TOKENS);
  return null;
}

/**
 * Strict validation of client events against the GA Realtime shapes (realtime-protocol.md §2, §3).
 * Every key is checked recursively: an unknown key, a missing required key, a wrong type or a value
 * outside its enum or range yields the same error codes and message shapes the service uses
 * (`unknown_parameter`, `missing_required_parameter`, `invalid_type`, `invalid_value`, ...).
 */

/** One validation failure, ready to become an `error` event's `error` body. */
export interface SchemaProblem {
  code: string;
  param: string | null;
  message: string;
}

/** A node of the mini schema language. */
export type Schema =
  | { kind: 'string'; enum?: readonly string[] }
  | { kind: 'number'; integer?: boolean; min?: number; max?: number; enum?: readonly number[] }
  | { kind: 'boolean' }
  | { kind: 'null' }
  | { kind: 'any' }
  | { kind: 'object'; props: Record<string, Schema>; required?: readonly string[] }
  | { kind: 'map'; values: Schema; maxKeys?: number }
  | { kind: 'array'; items: Schema; minItems?: number; maxItems?: number }
  | { kind: 'oneOf'; options: readonly Schema[] }
  | { kind: 'tagged'; variants: Record<string, Schema> };

const str = (values?: readonly string[]): Schema => (values ? { kind: 'string', enum: values } : { kind: 'string' });
const num = (o: { integer?: boolean; min?: number; max?: number; enum?: readonly number[] } = {}): Schema => ({ kind: 'number', ...o });
const bool: Schema = { kind: 'boolean' };
const nul: Schema = { kind: 'null' };
const any: Schema = { kind: 'any' };
const obj = (props: Record<string, Schema>, required: readonly string[] = []): Schema => ({ kind: 'object', props, required });
const arr = (items: Schema, o: { minItems?: number; maxItems?: number } = {}): Schema => ({ kind: 'array', items, ...o });
const oneOf = (...options: Schema[]): Schema => ({ kind: 'oneOf', options });
const tagged = (variants: Record<string, Schema>): Schema => ({ kind: 'tagged', variants });
const nullable = (s: Schema): Schema => oneOf(s, nul);

/** The schema builders, for other fakes' schemas (the GPT-Live fake's live-schema.ts). */
export const schemaBuilders = { str, num, bool, nul, any, obj, arr, oneOf, tagged, nullable } as const;

/** GA voices (§2 `audio.output.voice`). */
export const GA_VOICES = ['alloy', 'ash', 'ballad', 'coral', 'echo', 'sage', 'shimmer', 'verse', 'marin', 'cedar'] as const;

/** Transcription models of the GA reference (`audio.input.transcription.model`). */
export const TRANSCRIPTION_MODELS = [
  'whisper-1',
  'gpt-4o-mini-transcribe',
  'gpt-4o-mini-transcribe-2025-12-15',
  'gpt-4o-transcribe',
  'gpt-4o-transcribe-diarize',
  'gpt-realtime-whisper',
] as const;

/** Reasoning efforts (`reasoning.effort`) and transcription delays (`transcription.delay`) of the reference. */
export const EFFORTS = ['minimal', 'low', 'medium', 'high', 'xhigh'] as const;

/** Service connectors an MCP tool may name instead of a `server_url`. */
export const MCP_CONNECTORS = [
  'connector_dropbox',
  'connector_gmail',
  'connector_googlecalendar',
  'connector_googledrive',
  'connector_microsoftteams',
  'connector_outlookcalendar',
  'connector_outlookemail',
  'connector_sharepoint',
] as const;

const audioFormat = tagged({
  'audio/pcm': obj({ type: str(['audio/pcm']), rate: num({ enum: [24000] }) }, ['type']),
  'audio/pcmu': obj({ type: str(['audio/pcmu']) }, ['type']),
  'audio/pcma': obj({ type: str(['audio/pcma']) }, ['type']),
});

const turnDetection = nullable(
  tagged({
    server_vad: obj({
      type: str(['server_vad']),
      threshold: num({ min: 0, max: 1 }),
      prefix_padding_ms: num({ integer: true, min: 0 }),
      silence_duration_ms: num({ integer: true, min: 0 }),
      idle_timeout_ms: nullable(num({ integer: true, min: 5000, max: 30000 })),
      create_response: bool,
      interrupt_response: bool,
    }),
    semantic_vad: obj({
      type: str(['semantic_vad']),
      eagerness: str(['low', 'medium', 'high', 'auto']),
      create_response: bool,
      interrupt_response: bool,
    }),
  }),
);

const functionTool = obj(
  { type: str(['function']), name: str(), description: str(), parameters: { kind: 'map', values: any } },
  ['type', 'name'],
);

const mcpToolFilter = obj({ read_only: bool, tool_names: arr(str()) });

const mcpTool = obj(
  {
    type: str(['mcp']),
    server_label: str(),
    server_url: str(),
    connector_id: str(MCP_CONNECTORS),
    tunnel_id: str(),
    server_description: str(),
    allowed_callers: nullable(arr(str(['direct', 'programmatic']))),
    allowed_tools: nullable(oneOf(arr(str()), mcpToolFilter)),
    require_approval: nullable(oneOf(str(['always', 'never']), obj({ always: mcpToolFilter, never: mcpToolFilter }))),
    headers: nullable({ kind: 'map', values: str() }),
    authorization: str(),
    defer_loading: bool,
  },
  ['type', 'server_label'],
);

const tools = arr(tagged({ function: functionTool, mcp: mcpTool }));

const toolChoice = oneOf(
  str(['auto', 'none', 'required']),
  tagged({
    function: obj({ type: str(['function']), name: str() }, ['type', 'name']),
    mcp: obj({ type: str(['mcp']), server_label: str(), name: nullable(str()) }, ['type', 'server_label']),
  }),
);

const maxOutputTokens = oneOf(num({ integer: true, min: 1, max: 4096 }), str(['inf']));

const outputModalities = arr(str(['audio', 'text']), { minItems: 1, maxItems: 1 });

const promptRef = nullable(
  obj({ id: str(), version: nullable(str()), variables: nullable({ kind: 'map', values: any }) }, ['id']),
);

/** GA `session` object of `session.update` (§2), as validated by the fake. */
export const GA_SESSION_SCHEMA: Schema = obj(
  {
    type: str(['realtime', 'transcription']),
    model: str(),
    output_modalities: outputModalities,
    instructions: str(),
    audio: obj({
      input: obj({
        format: audioFormat,
        noise_reduction: nullable(tagged({ near_field: obj({ type: str(['near_field']) }), far_field: obj({ type: str(['far_field']) }) })),
        transcription: nullable(obj({ model: str(TRANSCRIPTION_MODELS), language: str(), prompt: str(), delay: str(EFFORTS) })),
        turn_detection: turnDetection,
      }),
      output: obj({
        format: audioFormat,
        voice: str(GA_VOICES),
        speed: num({ min: 0.25, max: 1.5 }),
      }),
    }),
    tools,
    tool_choice: toolChoice,
    max_output_tokens: maxOutputTokens,
    truncation: oneOf(
      str(['auto', 'disabled']),
      tagged({
        retention_ratio: obj(
          {
            type: str(['retention_ratio']),
            retention_ratio: num({ min: 0, max: 1 }),
            token_limits: obj({ post_instructions: num({ integer: true, min: 0 }) }),
          },
          ['type', 'retention_ratio'],
        ),
      }),
    ),
    prompt: promptRef,
    parallel_tool_calls: bool,
    reasoning: obj({ effort: str(EFFORTS) }),
    tracing: nullable(oneOf(str(['auto']), obj({ workflow_name: str(), group_id: str(), metadata: { kind: 'map', values: any } }))),
    include: nullable(arr(str(['item.input_audio_transcription.logprobs']))),
  },
  ['type'],
);

const contentPart = tagged({
  input_text: obj({ type: str(['input_text']), text: str() }, ['type', 'text']),
  input_audio: obj({ type: str(['input_audio']), audio: str(), transcript: nullable(str()) }, ['type']),
  input_image: obj({ type: str(['input_image']), image_url: str(), detail: str(['auto', 'low', 'high']) }, ['type', 'image_url']),
  output_text: obj({ type: str(['output_text']), text: str() }, ['type', 'text']),
  output_audio: obj({ type: str(['output_audio']), audio: str(), transcript: nullable(str()) }, ['type']),
});

const itemStatus = str(['completed', 'incomplete', 'in_progress']);

const itemVariants: Record<string, Schema> = {
  message: obj(
    {
      id: str(),
      type: str(['message']),
      object: str(['realtime.item']),
      status: itemStatus,
      role: str(['user', 'system', 'assistant']),
      content: arr(contentPart),
    },
    ['type', 'role', 'content'],
  ),
  function_call: obj(
    { id: str(), type: str(['function_call']), object: str(['realtime.item']), status: itemStatus, call_id: str(), name: str(), arguments: str() },
    ['type', 'call_id', 'name', 'arguments'],
  ),
  function_call_output: obj(
    { id: str(), type: str(['function_call_output']), object: str(['realtime.item']), status: itemStatus, call_id: str(), output: str() },
    ['type', 'call_id', 'output'],
  ),
  mcp_approval_response: obj(
    { id: str(), type: str(['mcp_approval_response']), approval_request_id: str(), approve: bool, reason: nullable(str()) },
    ['id', 'type', 'approval_request_id', 'approve'],
  ),
  mcp_approval_request: obj(
    { id: str(), type: str(['mcp_approval_request']), server_label: str(), name: str(), arguments: str() },
    ['id', 'type', 'server_label', 'name', 'arguments'],
  ),
  mcp_list_tools: obj(
    {
      id: str(),
      type: str(['mcp_list_tools']),
      server_label: str(),
      tools: arr(obj({ name: str(), input_schema: any, description: nullable(str()), annotations: any }, ['name', 'input_schema'])),
    },
    ['type', 'server_label', 'tools'],
  ),
  mcp_call: obj(
    {
      id: str(),
      type: str(['mcp_call']),
      server_label: str(),
      name: str(),
      arguments: str(),
      approval_request_id: nullable(str()),
      output: nullable(str()),
      error: nullable(
        tagged({
          protocol_error: obj({ type: str(['protocol_error']), code: num({ integer: true }), message: str() }, ['type', 'code', 'message']),
          tool_execution_error: obj({ type: str(['tool_execution_error']), message: str() }, ['type', 'message']),
          http_error: obj({ type: str(['http_error']), code: num({ integer: true }), message: str() }, ['type', 'code', 'message']),
        }),
      ),
    },
    ['id', 'type', 'server_label', 'name', 'arguments'],
  ),
};

/** A conversation item as accepted by `conversation.item.create` (§3). */
export const ITEM_SCHEMA: Schema = tagged(itemVariants);

const responseInputItem = tagged({
  ...itemVariants,
  item_reference: obj({ type: str(['item_reference']), id: str() }, ['type', 'id']),
});

/** Per-response overrides of `response.create` (§3). */
export const RESPONSE_SCHEMA: Schema = obj({
  instructions: str(),
  output_modalities: outputModalities,
  audio: obj({ output: obj({ format: audioFormat, voice: str(GA_VOICES) }) }),
  tools,
  tool_choice: toolChoice,
  max_output_tokens: maxOutputTokens,
  prompt: promptRef,
  parallel_tool_calls: bool,
  reasoning: obj({ effort: str(EFFORTS) }),
  metadata: nullable({ kind: 'map', values: str(), maxKeys: 16 }),
  conversation: str(['auto', 'none']),
  input: arr(responseInputItem),
});

const eventId = str();

/** Every client event type of the GA protocol and its schema (§3). */
export const CLIENT_EVENT_SCHEMAS: Record<string, Schema> = {
  'session.update': obj({ type: str(), event_id: eventId, session: GA_SESSION_SCHEMA }, ['type', 'session']),
  'input_audio_buffer.append': obj({ type: str(), event_id: eventId, audio: str() }, ['type', 'audio']),
  'input_audio_buffer.commit': obj({ type: str(), event_id: eventId }, ['type']),
  'input_audio_buffer.clear': obj({ type: str(), event_id: eventId }, ['type']),
  'conversation.item.create': obj(
    { type: str(), event_id: eventId, previous_item_id: nullable(str()), item: ITEM_SCHEMA },
    ['type', 'item'],
  ),
  'conversation.item.truncate': obj(
    { type: str(), event_id: eventId, item_id: str(), content_index: num({ integer: true, min: 0 }), audio_end_ms: num({ integer: true, min: 0 }) },
    ['type', 'item_id', 'content_index', 'audio_end_ms'],
  ),
  'conversation.item.delete': obj({ type: str(), event_id: eventId, item_id: str() }, ['type', 'item_id']),
  'conversation.item.retrieve': obj({ type: str(), event_id: eventId, item_id: str() }, ['type', 'item_id']),
  'response.create': obj({ type: str(), event_id: eventId, response: RESPONSE_SCHEMA }, ['type']),
  'response.cancel': obj({ type: str(), event_id: eventId, response_id: str() }, ['type']),
  'output_audio_buffer.clear': obj({ type: str(), event_id: eventId }, ['type']),
};

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a decimal';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'boolean') return 'a boolean';
  if (typeof value === 'object') return 'an object';
  return typeof value;
}

function expected(s: Schema): string {
  switch (s.kind) {
    case 'string':
      return 'a string';
    case 'number':
      return s.integer ? 'an integer' : 'a number';
    case 'boolean':
      return 'a boolean';
    case 'null':
      return 'null';
    case 'any':
      return 'any value';
    case 'object':
    case 'map':
    case 'tagged':
      return 'an object';
    case 'array':
      return 'an array';
    case 'oneOf':
      return s.options.map(expected).join(' or ');
  }
}

function fmt(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : JSON.stringify(v);
}

function matchesKind(s: Schema, v: unknown): boolean {
  switch (s.kind) {
    case 'string':
      return typeof v === 'string';
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'null':
      return v === null;
    case 'any':
      return true;
    case 'object':
    case 'map':
    case 'tagged':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'array':
      return Array.isArray(v);
    case 'oneOf':
      return s.options.some((o) => matchesKind(o, v));
  }
}

const typeError = (path: string, s: Schema, v: unknown): SchemaProblem => ({
  code: 'invalid_type',
  param: path,
  message: `Invalid type for '${path}': expected ${expected(s)}, but got ${describe(v)} instead.`,
});

const join = (path: string, key: string): string => (path ? `${path}.${key}` : key);

/**
 * Validate `value` against `schema`; returns the first problem in document order (unknown keys and
 * bad values while walking, then missing required keys of each object), or null when valid.
 */
export function validate(schema: Schema, value: unknown, path: string): SchemaProblem | null {
  if (!matchesKind(schema, value)) return typeError(path, schema, value);
  switch (schema.kind) {
    case 'string':
      if (schema.enum && !schema.enum.includes(value as string)) {
        return {
          code: 'invalid_value',
          param: path,
          message: `Invalid value: ${fmt(value)}. Supported values are: ${schema.enum.map(fmt).join(', ')}.`,
        };
      }
      return null;
    case 'number': {
      const n = value as number;
      if (schema.enum && !schema.enum.includes(n)) {
        return {
          code: 'invalid_value',
          param: path,
          message: `Invalid value: ${n}. Supported values are: ${schema.enum.join(', ')}.`,
        };
      }
      if (schema.integer && !Number.isInteger(n)) return typeError(path, schema, n);
      const unit = schema.integer ? 'integer' : 'decimal';
      if (schema.min !== undefined && n < schema.min) {
        return {
          code: `${unit}_below_min_value`,
          param: path,
          message: `Invalid '${path}': ${unit} below minimum value. Expected a value >= ${schema.min}, but got ${n} instead.`,
        };
      }
      if (schema.max !== undefined && n > schema.max) {
        return {
          code: `${unit}_above_max_value`,
          param: path,
          message: `Invalid '${path}': ${unit} above maximum value. Expected a value <= ${schema.max}, but got ${n} instead.`,
        };
      }
      return null;
    }
    case 'boolean':
    case 'null':
    case 'any':
      return null;
    case 'oneOf': {
      const option = schema.options.find((o) => matchesKind(o, value));
      return option ? validate(option, value, path) : typeError(path, schema, value);
    }
    case 'tagged': {
      const rec = value as Record<string, unknown>;
      if (!('type' in rec)) {
        return { code: 'missing_required_parameter', param: join(path, 'type'), message: `Missing required parameter: '${join(path, 'type')}'.` };
      }
      const tag = rec['type'];
      if (typeof tag !== 'string') return typeError(join(path, 'type'), str(), tag);
      const variant = schema.variants[tag];
      if (!variant) {
        return {
          code: 'invalid_value',
          param: join(path, 'type'),
          message: `Invalid value: ${fmt(tag)}. Supported values are: ${Object.keys(schema.variants).map(fmt).join(', ')}.`,
        };
      }
      return validate(variant, value, path);
    }
    case 'object': {
      const rec = value as Record<string, unknown>;
      for (const [key, v] of Object.entries(rec)) {
        const sub = schema.props[key];
        const p = join(path, key);
        if (!sub) return { code: 'unknown_parameter', param: p, message: `Unknown parameter: '${p}'.` };
        const problem = validate(sub, v, p);
        if (problem) return problem;
      }
      for (const key of schema.required ?? []) {
        if (!(key in rec)) {
          const p = join(path, key);
          return { code: 'missing_required_parameter', param: p, message: `Missing required parameter: '${p}'.` };
        }
      }
      return null;
    }
    case 'map': {
      const entries = Object.entries(value as Record<string, unknown>);
      if (schema.maxKeys !== undefined && entries.length > schema.maxKeys) {
        return {
          code: 'object_above_max_properties',
          param: path,
          message: `Invalid '${path}': too many properties. Expected at most ${schema.maxKeys}, but got ${entries.length} instead.`,
        };
      }
      for (const [key, v] of entries) {
        const problem = validate(schema.values, v, join(path, key));
        if (problem) return problem;
      }
      return null;
    }
    case 'array': {
      const list = value as unknown[];
      // The service reports a wrong-length output_modalities as a bad value, not a length error.
      if (schema.maxItems !== undefined && list.length > schema.maxItems) {
        return {
          code: 'invalid_value',
          param: path,
          message: `Invalid value for '${path}': expected at most ${schema.maxItems} item(s), but got ${list.length}.`,
        };
      }
      if (schema.minItems !== undefined && list.length < schema.minItems) {
        return {
          code: 'invalid_value',
          param: path,
          message: `Invalid value for '${path}': expected at least ${schema.minItems} item(s), but got ${list.length}.`,
        };
      }
      for (let i = 0; i < list.length; i++) {
        const problem = validate(schema.items, list[i], `${path}[${i}]`);
        if (problem) return problem;
      }
      return null;
    }
  }
}

/**
 * Validate one parsed client event: its `type` must be a known GA client event and every field
 * must match that event's schema. Returns the problem, or null when the event is valid.
 */
export function validateClientEvent(event: unknown): SchemaProblem | null {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    return { code: 'invalid_type', param: null, message: `Invalid event: expected an object, but got ${describe(event)} instead.` };
  }
  const rec = event as Record<string, unknown>;
  if (!('type' in rec)) return { code: 'missing_required_parameter', param: 'type', message: "Missing required parameter: 'type'." };
  const type = rec['type'];
  if (typeof type !== 'string') return typeError('type', str(), type);
  const schema = CLIENT_EVENT_SCHEMAS[type];
  if (!schema) {
    return {
      code: 'invalid_value',
      param: 'type',
      message: `Invalid value: '${type}'. Supported values are: ${Object.keys(CLIENT_EVENT_SCHEMAS).map(fmt).join(', ')}.`,
    };
  }
  return validate(schema, event, '');
}

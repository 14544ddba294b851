/**
 * The configuration schema: every key, its default, bounds and one-line doc, in one place.
 * `AgentConfig` (the loaded, fully defaulted configuration) is inferred from it, and
 * `describeSchema()` renders it as reference documentation.
 */

import type { LogLevel } from '../logging/logger';
import { checkAllowPattern } from './allow';
import { bool, file, json, list, map, nullable, num, obj, oneOf, path, str, type AnyNode, type Infer } from './dsl';
import * as f from './formats';

/** Log levels accepted by `logging.level` (the same list as the logger's). */
export const LOG_LEVEL_VALUES = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
// Compile-time guard that this list and the logger's LogLevel stay the same set.
type SameSet<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const _levelsMatch: SameSet<(typeof LOG_LEVEL_VALUES)[number], LogLevel> = true;
void _levelsMatch;

/** Voices of the GA Realtime API (`marin` and `cedar` are the recommended ones). */
export const VOICES = ['alloy', 'ash', 'ballad', 'coral', 'echo', 'sage', 'shimmer', 'verse', 'marin', 'cedar'] as const;

/** Input transcription models a GA Realtime session accepts (`audio.input.transcription.model`). */
export const TRANSCRIPTION_MODELS = [
  'gpt-4o-mini-transcribe',
  'gpt-4o-mini-transcribe-2025-12-15',
  'gpt-4o-transcribe',
  'gpt-4o-transcribe-diarize',
  'gpt-realtime-whisper',
  'whisper-1',
] as const;

/** Reasoning efforts of reasoning-capable Realtime models (`session.reasoning.effort`). */
export const REASONING_EFFORTS = ['minimal', 'low', 'medium', 'high', 'xhigh'] as const;

/** Codec names `media.codecs` accepts (canonical spelling). */
export const CODECS = ['PCMU', 'PCMA', 'G722', 'opus'] as const;

/** Tool names reserved for the built-in tools. */
export const BUILTIN_TOOL_NAMES = ['end_call', 'transfer_call'] as const;

/** Default instructions: short, spoken-style answers suit a phone line. */
export const DEFAULT_INSTRUCTIONS =
  'You are a friendly voice assistant answering a phone call. Speak naturally and keep answers short: ' +
  'one or two sentences at a time. If you do not know something, say so. When the caller says goodbye, ' +
  'say goodbye and end the call.';

// Keys the OpenAI beta protocol had, or that people copy from other projects; sending them to the GA API
// would fail the whole session.update, so we name the mistake instead of silently ignoring it.
const AI_RETIRED = {
  temperature: 'not supported by the GA Realtime API (sending it makes the whole session.update fail)',
  modalities: 'not supported: the agent always answers with audio',
  inputAudioFormat: 'not a key: use ai.audioFormat',
  outputAudioFormat: 'not a key: use ai.audioFormat',
};

const transport = (name: string, port: number) =>
  obj({
    doc: `${name} listener`,
    fields: {
      enabled: bool({ doc: `listen for SIP over ${name}`, default: name !== 'TLS' }),
      bindAddress: str({ doc: 'local IP address to bind (unset: all interfaces)', check: f.listenAddress }),
      port: num({ doc: `${name} port to listen on`, default: port, min: 1, max: 65535 }),
      publicAddress: str({
        doc: 'address written in Via/Contact when behind NAT with a fixed public IP (unset: the local address)',
        check: f.hostOrIp,
      }),
    },
  });

const tls = obj({
  doc: 'TLS listener (SIPS); a certificate is needed to accept incoming TLS connections',
  fields: {
    enabled: bool({ doc: 'listen for SIP over TLS', default: false }),
    bindAddress: str({ doc: 'local IP address to bind (unset: all interfaces)', check: f.listenAddress }),
    port: num({ doc: 'TLS port to listen on', default: 5061, min: 1, max: 65535 }),
    publicAddress: str({
      doc: 'address written in Via/Contact when behind NAT with a fixed public IP (unset: the local address)',
      check: f.hostOrIp,
    }),
    certFile: path({ doc: 'PEM certificate (chain) presented to peers', mustExist: true }),
    privKeyFile: path({ doc: 'PEM private key of certFile', mustExist: true }),
    caListFile: path({ doc: 'PEM CA bundle used to verify peers (unset: the system store)', mustExist: true }),
    verifyServer: bool({ doc: 'verify the certificate of servers we connect to', default: true }),
    verifyClient: bool({ doc: 'require and verify a certificate from clients connecting to us', default: false }),
    method: oneOf({
      doc: 'lowest TLS version accepted: tlsv1.2 (1.2 and 1.3) or tlsv1.3 (1.3 only)',
      values: ['tlsv1.2', 'tlsv1.3'],
      default: 'tlsv1.2',
    }),
  },
});

const account = obj({
  doc: 'one SIP identity',
  fields: {
    uri: str({ doc: 'our address of record, e.g. sip:100@pbx.example.com', required: true, check: f.sipAddress, format: 'SIP URI' }),
    registrar: str({
      doc: 'registrar to REGISTER with, e.g. sip:pbx.example.com (unset: no registration; take calls sent to our address)',
      check: f.sipUri,
      format: 'SIP URI',
    }),
    username: str({ doc: 'digest auth user name (unset: the user part of uri)', check: f.oneLine }),
    password: str({ doc: 'digest auth password', secret: true, minLength: 1 }),
    passwordFile: file({ doc: 'file holding the password (e.g. ${CREDENTIALS_DIRECTORY}/sip-password)', fills: 'password', secret: false }),
    realm: str({
      doc: "digest realm the credentials answer (unset: the registrar's, learned from its challenge; only the registrar gets them; * answers anyone, callers included)",
      minLength: 1,
      check: f.oneLine,
    }),
    proxy: str({ doc: 'outbound proxy every request is routed through, e.g. sip:proxy.example.com;lr', check: f.sipUri, format: 'SIP URI' }),
    registerExpiresSec: num({ doc: 'registration lifetime asked for', unit: 's', default: 300, min: 60, max: 86400 }),
    retryIntervalSec: num({ doc: 'wait before retrying a failed registration', unit: 's', default: 60, min: 5, max: 3600 }),
    keepaliveSec: num({
      doc: 'send OPTIONS to the registrar this often; when it answers again after a silence, register at once (a restarted registrar may have lost us) (0: never)',
      unit: 's',
      default: 30,
      min: 0,
      max: 3600,
    }),
    transport: oneOf({
      doc: 'transport for this account (auto: as the URI says, UDP otherwise)',
      values: ['auto', 'udp', 'tcp', 'tls'],
      default: 'auto',
    }),
  },
});

const turnDetection = obj({
  doc: 'how the model decides the caller has finished speaking',
  fields: {
    type: oneOf({
      doc: 'server_vad (energy) or semantic_vad (meaning); none (never respond by itself) is refused with the openai provider',
      values: ['server_vad', 'semantic_vad', 'none'],
      default: 'server_vad',
    }),
    threshold: num({ doc: 'server_vad: speech probability needed (raise on noisy lines)', default: 0.5, min: 0, max: 1, integer: false }),
    prefixPaddingMs: num({ doc: 'server_vad: audio kept from before speech started', unit: 'ms', default: 300, min: 0, max: 5000 }),
    silenceDurationMs: num({ doc: 'server_vad: silence that ends a turn', unit: 'ms', default: 500, min: 0, max: 10000 }),
    idleTimeoutMs: num({
      doc: 'server_vad: silence after the agent finished speaking before the model nudges the caller (unset: never)',
      unit: 'ms',
      min: 5000,
      max: 30000,
    }),
    eagerness: oneOf({
      doc: 'semantic_vad: how quickly to answer (low waits up to 8 s, high up to 2 s; auto = medium)',
      values: ['low', 'medium', 'high', 'auto'],
      default: 'auto',
    }),
    createResponse: bool({ doc: 'answer automatically when the caller stops speaking', default: true }),
    interruptResponse: bool({ doc: 'let the caller interrupt (barge in on) the agent', default: true }),
  },
});

/** One OpenAI-compatible HTTP service of the pipeline. */
function pipelineService<E extends Record<string, AnyNode>>(what: string, defaultModel: string, extra: E) {
  return obj({
    doc: `${what} (any OpenAI-compatible server)`,
    fields: {
      url: str({ doc: 'base URL up to /v1', default: 'https://api.openai.com/v1', check: f.httpUrl, format: 'URL' }),
      apiKey: str({ doc: 'bearer token (unset: ai.apiKey; none at all for a local server that needs none)', secret: true, minLength: 1, check: f.oneLine }),
      apiKeyFile: file({ doc: 'file holding the token', fills: 'apiKey' }),
      model: str({ doc: 'model', default: defaultModel, minLength: 1, maxLength: 128, check: f.oneLine }),
      timeoutMs: num({ doc: 'give up on a request after this long without an answer (then one retry of a 429/5xx/timeout, then calls.onAiFailure)', unit: 'ms', default: 15000, min: 500, max: 120000 }),
      ...extra,
    },
  });
}

const pipeline = obj({
  doc: 'ai.provider pipeline: local turn-taking, then speech-to-text, a chat model and text-to-speech (OpenAI-compatible HTTP APIs)',
  fields: {
    language: str({ doc: 'language of the conversation, ISO 639-1 (e.g. tr): transcription language, and the model is told to speak it', check: f.languageCode }),
    vad: obj({
      doc: 'turn-taking by the local voice-activity detector',
      fields: {
        engine: oneOf({
          doc: 'silero (a small neural model on this machine, in one worker thread for every call; falls back to energy when it cannot load) or energy (loudness only)',
          values: ['silero', 'energy'],
          default: 'silero',
        }),
        threshold: num({ doc: 'silero: speech probability a window needs (raise on noisy lines)', default: 0.5, min: 0.05, max: 0.95, integer: false }),
        thresholdDbfs: num({ doc: 'energy: a frame this loud or louder is speech', unit: 'dBFS', default: -40, min: -80, max: 0 }),
        minSpeechMs: num({ doc: 'speech needed before a turn starts (rejects clicks)', unit: 'ms', default: 120, min: 20, max: 2000 }),
        silenceMs: num({ doc: 'silence that ends the caller\'s turn', unit: 'ms', default: 700, min: 100, max: 5000 }),
        preRollMs: num({ doc: 'audio kept from before speech started (and after it stopped)', unit: 'ms', default: 200, min: 0, max: 1000 }),
        maxTurnMs: num({ doc: 'longest caller turn sent to speech-to-text', unit: 'ms', default: 30000, min: 1000, max: 60000 }),
      },
    }),
    stt: pipelineService('speech-to-text: POST /audio/transcriptions', 'gpt-4o-mini-transcribe', {
      prompt: str({ doc: 'prompt for the transcription (names, terms)', maxLength: 2000 }),
    }),
    chat: pipelineService('the chat model: POST /chat/completions, streamed, with the agent\'s tools', 'gpt-4.1-mini', {
      temperature: num({ doc: 'sampling temperature', min: 0, max: 2, integer: false }),
      maxTokens: num({ doc: 'longest reply, tokens', default: 400, min: 16, max: 16384 }),
      historyMessages: num({ doc: 'most messages of the conversation sent with each request', default: 40, min: 2, max: 400 }),
      inputPricePerMTokens: num({ doc: 'price of input tokens for the cost in records, USD per 1M', default: 0, min: 0, max: 1000, integer: false }),
      outputPricePerMTokens: num({ doc: 'price of output tokens for the cost in records, USD per 1M', default: 0, min: 0, max: 1000, integer: false }),
    }),
    tts: pipelineService('text-to-speech: POST /audio/speech, 24 kHz PCM, one request per sentence', 'gpt-4o-mini-tts', {
      voice: str({ doc: 'voice (unset: ai.voice)', minLength: 1, maxLength: 64, check: f.oneLine }),
      speed: num({ doc: 'speaking speed (unset: ai.speed)', min: 0.25, max: 4, integer: false }),
      instructions: str({ doc: 'how to speak (gpt-4o-mini-tts), e.g. "warm and calm"', maxLength: 2000 }),
    }),
  },
});

/** Built-in voices of GPT-Live (gpt-live-1). */
export const LIVE_VOICES = [
  'alloy', 'ash', 'ballad', 'beacon', 'bossa', 'brise', 'cedar', 'cinder', 'coral', 'delta', 'echo', 'flitz', 'gleam',
  'harema', 'juni', 'marin', 'meridian', 'nira', 'noeul', 'nuri', 'quartz', 'ripple', 'sage', 'shimmer', 'shitan',
  'sillage', 'stone', 'tempo', 'verse', 'vesper', 'willow',
] as const;

/** Hosted tools a GPT-Live Responses backend runs itself (function tools are the agent's own). */
export const LIVE_HOSTED_TOOLS = [
  'web_search', 'file_search', 'code_interpreter', 'shell', 'image_generation', 'mcp', 'custom', 'namespace', 'tool_search',
  'programmatic_tool_calling', 'computer', 'apply_patch',
] as const;

const live = obj({
  doc: 'ai.provider openai-live: GPT-Live, a full-duplex voice model with its own protocol; the voice model decides when to speak and stop, a backend model does reasoning and tools',
  fields: {
    url: str({ doc: 'GPT-Live WebSocket endpoint, no query (Azure: wss://<resource>.openai.azure.com/openai/v1/live/sessions, with ai.auth api-key)', default: 'wss://api.openai.com/v1/live/sessions', check: f.wsUrl, format: 'URL' }),
    model: str({ doc: 'voice model (Azure: the deployment name)', default: 'gpt-live-1', minLength: 1, maxLength: 128, check: f.oneLine }),
    voice: oneOf({ doc: 'GPT-Live voice (unset: ai.voice)', values: LIVE_VOICES }),
    turnGapMs: num({ doc: 'quiet that ends a turn of the agent or of the caller (transcripts, barge-in, replies asked for)', unit: 'ms', default: 700, min: 200, max: 5000 }),
    prebufferMs: num({ doc: 'model audio a reply gathers before it starts playing, and at most how long it waits for it: tolerance for audio paced near real time (audio sent ahead waits for nothing); 0 turns it off', unit: 'ms', default: 200, min: 0, max: 1000 }),
    pricePerMinute: num({ doc: 'price of session audio for the cost in call records, USD per minute', default: 0.05, min: 0, max: 100, integer: false }),
    delegation: obj({
      doc: 'who does the work the voice model delegates (reasoning, tools)',
      fields: {
        type: oneOf({
          doc: "responses (OpenAI runs the Responses model below with its hosted tools, and the agent's end_call, transfer_call and webhooks run here when it calls them) or client (the chat model below, of any OpenAI-compatible server, does it with the agent's tools)",
          values: ['responses', 'client'],
          default: 'responses',
        }),
        responses: obj({
          doc: 'delegation.type responses: the backend the service runs',
          fields: {
            model: str({ doc: 'backend model (Azure: its deployment name)', default: 'gpt-5.5', minLength: 1, maxLength: 128, check: f.oneLine }),
            instructions: str({ doc: 'backend prompt: business rules and when to use tools (unset: ai.instructions)', maxLength: 100000 }),
            maxOutputTokens: num({ doc: 'longest backend answer (unset: the service default)', unit: 'tokens', min: 16, max: 128000 }),
            reasoningEffort: oneOf({ doc: 'backend reasoning effort (unset: the model default)', values: ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'] }),
            tools: json({
              doc: `hosted tools, a JSON list passed as given, e.g. [{"type": "web_search"}] (types: ${LIVE_HOSTED_TOOLS.join(', ')}; functions come from tools.*)`,
              default: [] as Record<string, unknown>[],
              check: checkHostedTools,
            }),
            inputPricePerMTokens: num({ doc: 'backend input price for the cost in call records, USD per 1M tokens', default: 0, min: 0, max: 1000, integer: false }),
            cachedInputPricePerMTokens: num({ doc: 'backend cached input price, USD per 1M tokens', default: 0, min: 0, max: 1000, integer: false }),
            outputPricePerMTokens: num({ doc: 'backend output price, USD per 1M tokens', default: 0, min: 0, max: 1000, integer: false }),
          },
        }),
        client: pipelineService("delegation.type client: the chat model that does the delegated work with the agent's tools (POST /chat/completions)", 'gpt-4.1-mini', {
          instructions: str({ doc: 'its prompt (unset: ai.instructions)', maxLength: 100000 }),
          maxTokens: num({ doc: 'longest answer, tokens', default: 400, min: 16, max: 16384 }),
        }),
      },
    }),
  },
});

const transcription = nullable({
  doc: 'transcribe the caller in parallel (for transcripts; the model does not need it), or off',
  defaultOn: true,
  inner: obj({
    doc: 'caller transcription',
    fields: {
      model: oneOf({ doc: 'transcription model (gpt-4o-transcribe-diarize labels speakers; gpt-realtime-whisper takes no prompt)', values: TRANSCRIPTION_MODELS, default: 'gpt-4o-mini-transcribe' }),
      language: str({ doc: 'ISO-639-1 language of the caller, improves accuracy (unset: detect)', check: f.language }),
      prompt: str({ doc: 'hint text: vocabulary, names, spelling (a keyword list for whisper-1)', maxLength: 4096 }),
      delay: oneOf({ doc: 'gpt-realtime-whisper only: how long it waits before writing text, minimal to xhigh (more is later and more accurate; unset: its default)', values: REASONING_EFFORTS }),
    },
  }),
});

const reasoning = obj({
  doc: 'reasoning-capable models (gpt-realtime-2 and later): how much the model thinks before it answers',
  fields: {
    effort: oneOf({ doc: 'minimal, low, medium, high or xhigh; more effort answers hard questions better, and later (unset: the model default, low)', values: REASONING_EFFORTS }),
  },
});

const promptRef = obj({
  doc: 'a stored prompt (made in the OpenAI dashboard) the session uses beside ai.instructions',
  fields: {
    id: str({ doc: 'prompt id, e.g. pmpt_123 (unset: no stored prompt)', check: f.promptId }),
    version: str({ doc: 'prompt version (unset: its current version)', minLength: 1, maxLength: 64, check: f.oneLine }),
    variables: map({
      doc: "values of the prompt's variables; each is a template like ai.instructions ({{caller}}, {{var.<name>}}...), rendered per call",
      value: str({ doc: 'variable value (template)', required: true, maxLength: 4096 }),
      keyPattern: /^[A-Za-z_][A-Za-z0-9_]{0,63}$/,
      keyDoc: 'a letter or _, then letters, digits and _, at most 64',
      maxEntries: 64,
    }),
  },
});

const truncation = obj({
  doc: 'what the server drops when the conversation outgrows the model context',
  fields: {
    type: oneOf({
      doc: 'auto (the server drops the oldest turns), disabled (never; the server errors past the limit) or retention_ratio (drop down to retentionRatio of the limit at once, which keeps the prompt cache longer)',
      values: ['auto', 'disabled', 'retention_ratio'],
      default: 'auto',
    }),
    retentionRatio: num({ doc: 'retention_ratio: fraction of the conversation tokens (after the instructions) kept after a cut, e.g. 0.8', min: 0, max: 1, integer: false }),
    postInstructionsTokens: num({ doc: 'retention_ratio: most conversation tokens after the instructions before a cut (unset: the model limit)', min: 1, max: 10_000_000 }),
  },
});

/** Request headers whose values are secrets (redacted, never logged). */
function httpHeaders(doc: string) {
  return map({
    doc,
    value: str({ doc: 'header value', required: true, secret: true, check: f.oneLine }),
    keyPattern: /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/,
    keyDoc: 'an HTTP header name',
    keyName: '<header>',
    maxEntries: 32,
  });
}

/** A list of tool names of an MCP server. */
function mcpTools(doc: string) {
  return list({ doc, item: str({ doc: 'tool name', required: true, check: f.mcpToolName }), maxItems: 128, uniqueBy: (t) => t });
}

const mcpServer = obj({
  doc: 'a remote MCP server whose tools the model may call; the Realtime API connects to it (ai.provider openai only)',
  fields: {
    label: str({ doc: 'server label the model and the call records see, e.g. orders', required: true, check: f.mcpLabel }),
    url: str({ doc: 'Streamable HTTP endpoint of the server, e.g. https://mcp.example.com/mcp', required: true, check: f.httpUrl, format: 'URL' }),
    description: str({ doc: 'what the server offers (the model reads this)', maxLength: 2048 }),
    headers: httpHeaders('HTTP headers sent to the server; values may hold secrets via ${ENV}'),
    authorization: str({ doc: 'OAuth access token the API presents to the server', secret: true, minLength: 1, maxLength: 8192, check: f.oneLine }),
    authorizationFile: file({ doc: 'file holding the access token (e.g. ${CREDENTIALS_DIRECTORY}/mcp-token)', fills: 'authorization' }),
    allowedTools: mcpTools('tools of the server the model may see (empty: all of them)'),
    requireApproval: oneOf({
      doc: 'which calls the API asks the agent to approve first: always, never, or listed (those in alwaysAsk; not those in neverAsk)',
      values: ['always', 'never', 'listed'],
      default: 'always',
    }),
    alwaysAsk: mcpTools('listed: tools whose calls are asked about'),
    neverAsk: mcpTools('listed: tools called without asking'),
    approvedTools: mcpTools('tools whose calls the agent approves when asked; every other call asked about is refused (nobody on a phone line can approve)'),
  },
});

const prices = obj({
  doc: 'model prices used for the cost in call records, per 1M tokens',
  fields: {
    currency: str({ doc: 'currency of the prices below: USD (costs are recorded and exported as USD)', default: 'USD', check: f.currency }),
    audioInput: num({ doc: 'audio input', unit: 'per 1M tokens', default: 32, min: 0, max: 100000, integer: false }),
    audioCachedInput: num({ doc: 'cached audio input', unit: 'per 1M tokens', default: 0.4, min: 0, max: 100000, integer: false }),
    audioOutput: num({ doc: 'audio output', unit: 'per 1M tokens', default: 64, min: 0, max: 100000, integer: false }),
    textInput: num({ doc: 'text input', unit: 'per 1M tokens', default: 4, min: 0, max: 100000, integer: false }),
    textCachedInput: num({ doc: 'cached text input', unit: 'per 1M tokens', default: 0.4, min: 0, max: 100000, integer: false }),
    textOutput: num({ doc: 'text output', unit: 'per 1M tokens', default: 16, min: 0, max: 100000, integer: false }),
  },
});

const webhook = obj({
  doc: 'a function the model may call, answered by an HTTP request',
  fields: {
    name: str({ doc: 'function name the model sees, e.g. lookup_order', required: true, check: f.toolName }),
    description: str({ doc: 'what the function does and when to call it (the model reads this)', required: true, minLength: 1, maxLength: 4096 }),
    parameters: json({
      doc: 'JSON Schema of the arguments (an object schema)',
      default: { type: 'object', properties: {} } as Record<string, unknown>,
      check: checkParametersSchema,
    }),
    url: str({ doc: 'URL the arguments are sent to (as JSON; the response body goes back to the model)', required: true, check: f.httpUrl, format: 'URL' }),
    method: oneOf({ doc: 'HTTP method', values: ['POST', 'PUT', 'PATCH', 'GET'], default: 'POST', caseInsensitive: true }),
    timeoutMs: num({ doc: 'give up on the request after this long', unit: 'ms', default: 5000, min: 100, max: 60000 }),
    headers: httpHeaders('extra request headers; values may hold secrets via ${ENV}'),
  },
});

/** The whole schema. */
export const SCHEMA = obj({
  doc: 'sip-ai-agent configuration',
  reload: 'restart',
  fields: {
    instance: obj({
      doc: 'this process among several carrying calls for one PBX or trunk (behind a dispatcher, or several on one machine)',
      fields: {
        id: str({
          doc: 'its name, in every log line (instance), every metric (instance_id label), every call record (instanceId) and the SIP User-Agent (unset: no name)',
          check: f.instanceId,
        }),
      },
    }),
    sip: obj({
      doc: 'SIP stack',
      fields: {
        transports: obj({
          doc: 'listeners (at least one enabled)',
          fields: { udp: transport('UDP', 5060), tcp: transport('TCP', 5060), tls },
        }),
        userAgent: str({ doc: 'User-Agent header sent with every request', default: 'sip-ai-agent', minLength: 1, maxLength: 256, check: f.oneLine }),
        limits: obj({
          doc: 'per-source rate limits, applied before any SIP processing; beyond them an admitted source gets 503 with Retry-After and any other source no answer',
          reload: 'live',
          fields: {
            invitesPerSecond: num({ doc: 'new calls (INVITE) per second from one address', unit: '/s', default: 20, min: 0.1, max: 100000, integer: false }),
            inviteBurst: num({ doc: 'INVITEs one address may send at once before its rate applies', default: 40, min: 1, max: 100000 }),
            requestsPerSecond: num({
              doc: 'other requests outside a call (OPTIONS, REGISTER, SUBSCRIBE, CANCEL, stray BYE...) per second from one address',
              unit: '/s',
              default: 50,
              min: 0.1,
              max: 100000,
              integer: false,
            }),
            requestBurst: num({ doc: 'such requests one address may send at once', default: 100, min: 1, max: 100000 }),
            retryAfterSec: num({ doc: 'Retry-After of the 503 sent to an admitted source over its limit', unit: 's', default: 5, min: 1, max: 3600 }),
            logIntervalSec: num({ doc: 'log refused requests at most once per source per this interval (all are counted in /metrics)', unit: 's', default: 60, min: 1, max: 86400 }),
          },
        }),
      },
    }),

    accounts: list({
      doc: 'SIP identities to register or to answer for (at least one)',
      item: account,
      required: true,
      minItems: 1,
      // PJSUA_MAX_ACC is 16, and pjsua keeps one local account per transport.
      maxItems: 12,
      uniqueBy: (a) => (a.uri ? f.addrSpec(a.uri).toLowerCase() : undefined),
    }),

    media: obj({
      doc: 'media (RTP) settings',
      fields: {
        clockRate: oneOf({
          doc: 'conference bridge rate: 8000 narrowband, 16000 keeps G.722/Opus wideband',
          values: [8000, 16000, 24000],
          default: 8000,
        }),
        codecs: list({
          doc: 'codecs offered and accepted, in order of preference (from PCMU, PCMA, G722, opus)',
          item: oneOf({ doc: 'codec name', values: CODECS, required: true, caseInsensitive: true }),
          minItems: 1,
          maxItems: CODECS.length,
          default: ['PCMU', 'PCMA'],
          uniqueBy: (c) => c,
        }),
        jitterBuffer: obj({
          doc: 'adaptive jitter buffer for the caller audio',
          fields: {
            initMs: num({ doc: 'initial prefetch before playing out', unit: 'ms', default: 60, min: 0, max: 2000 }),
            minPrefetchMs: num({ doc: 'lowest prefetch the buffer adapts down to', unit: 'ms', default: 20, min: 0, max: 2000 }),
            maxPrefetchMs: num({ doc: 'highest prefetch the buffer adapts up to', unit: 'ms', default: 400, min: 0, max: 5000 }),
            maxMs: num({ doc: 'buffer capacity; later packets are discarded', unit: 'ms', default: 500, min: 40, max: 5000 }),
          },
        }),
        srtp: oneOf({
          doc: 'SRTP (SDES): disabled, optional (offered, plain RTP accepted) or mandatory',
          values: ['disabled', 'optional', 'mandatory'],
          default: 'disabled',
        }),
        rtpPortStart: num({ doc: 'first local RTP port (even); RTCP uses the next one', default: 10000, min: 1024, max: 65534 }),
        rtpPortRange: num({ doc: 'number of ports from rtpPortStart usable for RTP/RTCP (2 per call)', default: 10000, min: 2, max: 64512 }),
        publicAddress: str({ doc: 'address written in SDP when behind NAT with a fixed public IP (unset: the local address)', check: f.hostOrIp }),
        txBufferMs: num({
          doc: 'per-call playout buffer toward the caller (model audio arrives faster than real time); overflow drops oldest, counted',
          unit: 'ms',
          default: 60000,
          min: 1000,
          max: 600000,
        }),
        rxBufferMs: num({ doc: 'per-call buffer of caller audio waiting for the event loop; overflow drops oldest, counted', unit: 'ms', default: 1000, min: 100, max: 10000 }),
      },
    }),

    ai: obj({
      doc: 'AI backend (OpenAI Realtime API, GA protocol)',
      reload: 'live',
      retired: AI_RETIRED,
      fields: {
        provider: oneOf({
          doc: 'openai (Realtime API), openai-live (GPT-Live, see ai.live), pipeline (speech-to-text, chat and text-to-speech over OpenAI-compatible HTTP APIs) or echo (plays the caller back; for tests)',
          values: ['openai', 'openai-live', 'pipeline', 'echo'],
          default: 'openai',
        }),
        pipeline,
        live,
        url: str({ doc: 'Realtime WebSocket endpoint (Azure: wss://<resource>.openai.azure.com/openai/v1/realtime)', default: 'wss://api.openai.com/v1/realtime', check: f.wsUrl, format: 'URL' }),
        model: str({ doc: 'model (Azure: the deployment name)', default: 'gpt-realtime', minLength: 1, maxLength: 128, check: f.oneLine }),
        apiKey: str({ doc: 'API key (required for openai)', secret: true, minLength: 1, check: f.oneLine }),
        apiKeyFile: file({ doc: 'file holding the API key (e.g. ${CREDENTIALS_DIRECTORY}/openai-key)', fills: 'apiKey' }),
        auth: oneOf({ doc: 'how the key is sent: bearer (Authorization: Bearer) or api-key (Azure api-key header)', values: ['bearer', 'api-key'], default: 'bearer' }),
        voice: oneOf({ doc: 'voice (fixed for the whole call once the agent has spoken)', values: VOICES, default: 'marin' }),
        speed: num({ doc: 'speaking speed', default: 1, min: 0.25, max: 1.5, integer: false }),
        instructions: str({
          doc: 'system prompt; a template with {{caller}}, {{callee}}, {{date}}, {{time}}, {{header.<Name>}}, {{var.<name>}}...',
          default: DEFAULT_INSTRUCTIONS,
          maxLength: 100000,
        }),
        instructionsFile: file({ doc: 'file holding the instructions (instead of instructions)', fills: 'instructions', maxBytes: 100000, trim: 'end' }),
        audioFormat: oneOf({
          doc: 'audio to the model: pcm (24 kHz, resampled) or pcmu/pcma (G.711 passthrough, needs media.clockRate 8000)',
          values: ['pcm', 'pcmu', 'pcma'],
          default: 'pcm',
        }),
        appendMs: num({
          doc: 'caller audio per input_audio_buffer.append: 20 sends each frame at once (least latency), 40 halves the socket writes',
          unit: 'ms',
          default: 20,
          min: 20,
          max: 200,
        }),
        inputGate: oneOf({
          doc: 'openai: vad passes caller audio to the model only while the local neural VAD hears speech (with 300 ms before it), silence otherwise, so coughs, doors and line noise neither start a turn nor cut the agent off; off sends everything',
          values: ['off', 'vad'],
          default: 'off',
        }),
        turnDetection,
        noiseReduction: oneOf({ doc: 'input noise reduction: near_field (handsets), far_field (speakerphones) or off', values: ['near_field', 'far_field', 'off'], default: 'near_field' }),
        transcription,
        reasoning,
        parallelToolCalls: oneOf({ doc: 'reasoning-capable models: let the model call several tools at once (their results go back together; unset: the model default)', values: [true, false] }),
        prompt: promptRef,
        truncation,
        connectTimeoutMs: num({ doc: 'give up connecting to the backend after this long (then prompts.fallbackFile)', unit: 'ms', default: 5000, min: 500, max: 60000 }),
        replyTimeoutMs: num({
          doc: 'after the caller ends a turn, the model must start answering within this long, or the call gets prompts.fallbackFile and calls.onAiFailure (0: wait forever)',
          unit: 'ms',
          default: 10000,
          min: 0,
          max: 120000,
        }),
        maxSessionMinutes: num({ doc: 'rotate the backend session after this long (the API ends sessions at 60 minutes)', unit: 'min', default: 55, min: 1, max: 59 }),
        prices,
        openingLine: str({
          doc: 'when there is no greeting file: what the model is told to say first (template)',
          default: 'Greet the caller briefly and ask how you can help.',
          maxLength: 4096,
        }),
      },
    }),

    greeting: obj({
      doc: 'audio played when the call is answered, while the AI session starts',
      reload: 'live',
      fields: {
        file: path({ doc: 'WAV file (mono 16-bit PCM; unset: the model speaks first, see ai.openingLine)', mustExist: true }),
        interruptible: bool({ doc: 'stop the greeting when the caller starts speaking (keep false for legal notices)', default: false }),
      },
    }),

    prompts: obj({
      doc: 'fixed audio prompts (WAV, mono 16-bit PCM)',
      reload: 'live',
      fields: {
        fallbackFile: path({ doc: 'played before hanging up when the AI backend is unreachable (unset: hang up at once)', mustExist: true }),
        goodbyeFile: path({ doc: 'played to calls still up when the daemon drains for shutdown (unset: hang up at once)', mustExist: true }),
        busyFile: path({ doc: 'played to callers over calls.maxConcurrent before hanging up (unset: 486 Busy Here)', mustExist: true }),
      },
    }),

    tools: obj({
      doc: 'functions the model may call',
      reload: 'live',
      fields: {
        endCall: obj({
          doc: 'end_call: the model hangs up (after its goodbye has played)',
          fields: { enabled: bool({ doc: 'offer end_call', default: true }) },
        }),
        transferCall: obj({
          doc: 'transfer_call: the model transfers the caller (SIP REFER) to a named target',
          fields: {
            enabled: bool({ doc: 'offer transfer_call', default: false }),
            targets: map({
              doc: 'target name (what the model picks) to SIP URI',
              value: str({ doc: 'SIP URI to transfer to', required: true, check: f.sipUri, format: 'SIP URI' }),
              keyPattern: /^[A-Za-z0-9_-]{1,64}$/,
              keyDoc: 'letters, digits, _ and -, at most 64',
              keyName: '<target>',
              maxEntries: 64,
            }),
            defaultTarget: str({ doc: 'target used when the model names none (unset: the model must name one)' }),
          },
        }),
        webhooks: list({ doc: 'HTTP functions', item: webhook, maxItems: 32, uniqueBy: (w) => w.name }),
        mcp: list({ doc: 'remote MCP servers (Streamable HTTP) whose tools the model may call', item: mcpServer, maxItems: 16, uniqueBy: (m) => m.label }),
      },
    }),

    calls: obj({
      doc: 'call admission and limits',
      reload: 'live',
      fields: {
        maxConcurrent: num({ doc: 'simultaneous calls; further calls get 486 Busy Here', default: 8, min: 1, max: 256 }),
        allow: list({
          doc: 'admitted callers besides the registrars and proxies of accounts: source IPs/CIDRs, From URI patterns with * and ?, or any (everyone); others get 403',
          item: str({ doc: 'IP, CIDR, SIP URI pattern or any', required: true, check: checkAllowPattern }),
          maxItems: 256,
        }),
        maxDurationSec: num({ doc: 'hang up calls that last longer than this', unit: 's', default: 1800, min: 10, max: 86400 }),
        dtmf: obj({
          doc: 'keypad digits (RFC 2833 / SIP INFO)',
          fields: {
            toModel: bool({ doc: 'tell the model about each digit the caller presses', default: true }),
            template: str({ doc: 'message sent to the model per digit (template; also {{digit}})', default: 'Caller pressed {{digit}}', minLength: 1, maxLength: 1024 }),
          },
        }),
        onAiFailure: oneOf({ doc: 'when the AI backend fails mid-call: hangup, or transfer to transferTarget', values: ['hangup', 'transfer'], default: 'hangup' }),
        transferTarget: str({ doc: 'for onAiFailure transfer: a tools.transferCall.targets name or a SIP URI' }),
        ringingMs: num({ doc: 'ring at least this long before answering (the answer also waits for the AI session)', unit: 'ms', default: 0, min: 0, max: 30000 }),
        drainTimeoutSec: num({ doc: 'on SIGTERM, let calls finish for this long before playing goodbye and hanging up', unit: 's', default: 30, min: 0, max: 3600 }),
        timeZone: str({ doc: 'IANA time zone for {{date}}, {{time}}, {{weekday}} (unset: the system time zone)', check: f.timeZone }),
      },
    }),

    records: obj({
      doc: 'per-call records: CDR, transcript, recording',
      reload: 'live',
      fields: {
        dir: path({ doc: 'directory records are written to', default: '/var/lib/sip-ai-agent/records', reload: 'restart' }),
        retentionDays: num({ doc: 'delete records older than this (0: keep forever)', unit: 'days', default: 30, min: 0, max: 3650 }),
        recordAudio: bool({ doc: 'record calls as stereo WAV, caller left, agent right (mind the law: announce it)', default: false }),
        transcripts: bool({ doc: 'write a transcript of each call', default: true }),
        store: oneOf({
          doc: 'where records are kept for reading: files (in dir, nothing to install) or postgres (one database for every instance; files in dir stay the local journal and recordings)',
          values: ['files', 'postgres'],
          default: 'files',
          reload: 'restart',
        }),
        postgres: obj({
          doc: 'the database of records.store: postgres (schema created and migrated by the agent)',
          reload: 'restart',
          fields: {
            url: str({ doc: 'connection URL, e.g. postgres://agent@db.example.com/calls (password via ${ENV} or urlFile)', secret: true, check: f.postgresUrl }),
            urlFile: file({ doc: 'file holding the connection URL', fills: 'url' }),
          },
        }),
      },
    }),

    admin: obj({
      doc: 'HTTP admin API (/healthz, /metrics, /calls); the CLI talks to the daemon through it',
      fields: {
        enabled: bool({ doc: 'serve the admin API', default: true }),
        listen: str({ doc: 'address to listen on', default: '127.0.0.1', check: f.listenAddress }),
        port: num({ doc: 'TCP port', default: 8089, min: 1, max: 65535 }),
        token: str({ doc: 'bearer token required by the API (required unless listen is loopback; unset: one is generated into <records.dir>/.admin-token for the local CLI; at least 16 characters)', secret: true, minLength: 16, check: f.oneLine }),
        tokenFile: file({ doc: 'file holding the token', fills: 'token' }),
      },
    }),

    logging: obj({
      doc: 'logging (JSON lines on stdout for journald)',
      fields: {
        level: oneOf({ doc: 'log level', values: LOG_LEVEL_VALUES, default: 'info', reload: 'live' }),
        pjsipLevel: num({ doc: 'PJSIP log level bridged into the log: 0 none ... 3 info ... 6 trace', default: 2, min: 0, max: 6 }),
        pretty: oneOf({ doc: 'human-readable output: auto (when stdout is a terminal), true or false', values: ['auto', true, false], default: 'auto' }),
        sipMessages: bool({ doc: 'log every SIP message in full (debugging)', default: false }),
      },
    }),

    variables: map({
      doc: 'values for {{var.<name>}} in templates (company name, opening hours...)',
      reload: 'live',
      value: str({ doc: 'variable value', required: true, maxLength: 4096 }),
      keyPattern: /^[A-Za-z][A-Za-z0-9_-]{0,63}$/,
      keyDoc: 'a letter, then letters, digits, _ and -, at most 64',
      maxEntries: 128,
    }),
  },
});

function checkParametersSchema(v: unknown): string | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'must be a JSON Schema object';
  const s = v as Record<string, unknown>;
  if (s.type !== 'object') return 'must be an object schema (type: object)';
  if (s.properties !== undefined && (s.properties === null || typeof s.properties !== 'object' || Array.isArray(s.properties))) {
    return 'properties must be a mapping';
  }
  return undefined;
}

/** `ai.live.delegation.responses.tools`: a list of hosted tools, each an object with a known `type`. */
function checkHostedTools(v: unknown): string | undefined {
  if (!Array.isArray(v)) return 'must be a JSON list of tool objects';
  if (v.length > 32) return `at most 32 tools (got ${v.length})`;
  for (const [i, t] of v.entries()) {
    if (t === null || typeof t !== 'object' || Array.isArray(t)) return `[${i}] must be an object`;
    const type = (t as Record<string, unknown>).type;
    if (type === 'function') return `[${i}] function tools come from tools.endCall, tools.transferCall and tools.webhooks, not from this list`;
    if (typeof type !== 'string' || !(LIVE_HOSTED_TOOLS as readonly string[]).includes(type)) {
      return `[${i}].type must be one of ${LIVE_HOSTED_TOOLS.join(', ')} (got ${JSON.stringify(type)})`;
    }
  }
  return undefined;
}

/** The loaded configuration: every default filled, every path absolute, every `*File` secret read. */
export type AgentConfig = Infer<typeof SCHEMA>;
/** `sip` section. */
export type SipConfig = AgentConfig['sip'];
/** One `sip.transports.*` entry (TLS has more keys, see {@link TlsTransportConfig}). */
export type TransportConfig = AgentConfig['sip']['transports']['udp'];
/** `sip.transports.tls`. */
export type TlsTransportConfig = AgentConfig['sip']['transports']['tls'];
/** One `accounts[]` entry. */
export type AccountConfig = AgentConfig['accounts'][number];
/** `media` section. */
export type MediaConfig = AgentConfig['media'];
/** A codec name. */
export type CodecName = (typeof CODECS)[number];
/** `ai` section. */
export type AiConfig = AgentConfig['ai'];
/** `ai.turnDetection`. */
export type TurnDetectionConfig = AgentConfig['ai']['turnDetection'];
/** `ai.transcription` when on. */
export type TranscriptionConfig = NonNullable<AgentConfig['ai']['transcription']>;
/** `ai.prices`. */
export type PricesConfig = AgentConfig['ai']['prices'];
/** A voice name. */
export type Voice = (typeof VOICES)[number];
/** `ai.truncation`. */
export type TruncationConfig = AgentConfig['ai']['truncation'];
/** One `tools.mcp[]` entry. */
export type McpServerConfig = AgentConfig['tools']['mcp'][number];
/** `greeting` section. */
export type GreetingConfig = AgentConfig['greeting'];
/** `prompts` section. */
export type PromptsConfig = AgentConfig['prompts'];
/** `tools` section. */
export type ToolsConfig = AgentConfig['tools'];
/** One `tools.webhooks[]` entry. */
export type WebhookConfig = AgentConfig['tools']['webhooks'][number];
/** `calls` section. */
export type CallsConfig = AgentConfig['calls'];
/** `records` section. */
export type RecordsConfig = AgentConfig['records'];
/** `admin` section. */
export type AdminConfig = AgentConfig['admin'];
/** `logging` section. */
export type LoggingConfig = AgentConfig['logging'];

/** One key of the schema, as listed by {@link describeSchema}. */
export interface SchemaEntry {
  /** Key path; list items are `[]`, free map keys `<name>` (e.g. `accounts[].uri`, `variables.<name>`). */
  path: string;
  /** Value type as shown in docs (`string`, `integer`, `one of: a, b`, `list`, `mapping`...). */
  type: string;
  /** The default as it would be written in YAML, or undefined when the key has none. */
  default?: string;
  /** The doc line. */
  doc: string;
  /** Unit (`ms`, `s`...), when the key has one. */
  unit?: string;
  /** `min–max` for numbers. */
  range?: string;
  /** Presence: `required`, `optional` or `default`. */
  presence: 'required' | 'optional' | 'default';
  /** True for secrets (redacted in status output and logs). */
  secret: boolean;
  /** `live` when a change applies on SIGHUP, `restart` otherwise. */
  reload: 'live' | 'restart';
  /** Whether the key is a section (object, list of objects or map) rather than a value. */
  section: boolean;
  /** One line for reference docs: doc, then unit, range and default. */
  line: string;
}

/** Every key of the schema, depth first in schema order, with its type, default, doc line and reload class. */
export function describeSchema(): SchemaEntry[] {
  const out: SchemaEntry[] = [];
  const walk = (node: AnyNode, p: string, reload: 'live' | 'restart'): void => {
    const r = node.reload ?? reload;
    if (p !== '') out.push(entry(node, p, r));
    if (node.kind === 'object') {
      for (const [k, child] of Object.entries(node.fields)) walk(child, p ? `${p}.${k}` : k, r);
    } else if (node.kind === 'nullable') {
      for (const [k, child] of Object.entries(node.inner.fields)) walk(child, `${p}.${k}`, r);
    } else if (node.kind === 'list' && node.item.kind === 'object') {
      for (const [k, child] of Object.entries(node.item.fields)) walk(child, `${p}[].${k}`, r);
    } else if (node.kind === 'map' && (node.value.kind === 'object' || node.value.kind === 'list')) {
      walk(node.value, `${p}.${node.keyName}`, r);
    }
  };
  walk(SCHEMA as AnyNode, '', 'restart');
  return out;
}

function entry(node: AnyNode, p: string, reload: 'live' | 'restart'): SchemaEntry {
  let type: string;
  let range: string | undefined;
  let unit: string | undefined;
  let section = false;
  switch (node.kind) {
    case 'string':
      type = node.format ?? 'string';
      break;
    case 'path':
      type = 'path';
      break;
    case 'file':
      type = `path (fills ${node.fills})`;
      break;
    case 'number':
      type = node.integer ? 'integer' : 'number';
      range = `${node.min}–${node.max}`;
      unit = node.unit;
      break;
    case 'boolean':
      type = 'boolean';
      break;
    case 'enum':
      type = `one of: ${node.values.join(', ')}`;
      break;
    case 'object':
      type = 'mapping';
      section = true;
      break;
    case 'nullable':
      type = 'mapping or off';
      section = true;
      break;
    case 'list':
      type = node.item.kind === 'enum' ? `list of: ${node.item.values.join(', ')}` : node.item.kind === 'object' ? 'list of mappings' : 'list of strings';
      section = node.item.kind === 'object';
      break;
    case 'map':
      type = `mapping of ${node.keyName} to ${node.value.kind === 'string' ? 'string' : 'mapping'}`;
      section = true;
      break;
    case 'json':
      type = 'JSON Schema';
      break;
  }
  let def: string | undefined;
  if (node.kind === 'nullable') def = node.defaultOn ? 'on' : 'off';
  else if (node.presence === 'default' && node.kind !== 'object' && node.default !== undefined) def = showDefault(node.default);
  const parts: string[] = [];
  if (unit) parts.push(unit);
  if (range) parts.push(range);
  if (def !== undefined) parts.push(`default ${def}`);
  else if (node.presence === 'required') parts.push('required');
  const line = parts.length > 0 ? `${node.doc} (${parts.join(', ')})` : node.doc;
  return { path: p, type, default: def, doc: node.doc, unit, range, presence: node.presence, secret: node.secret === true || (node.kind === 'map' && node.value.secret === true), reload, section, line };
}

function showDefault(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => showDefault(x)).join(', ')}]`;
  if (typeof v === 'string') return v === '' ? '""' : v.length > 60 ? `"${v.slice(0, 57)}..."` : v;
  if (v !== null && typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

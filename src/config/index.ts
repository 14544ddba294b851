/**
 * Configuration: `loadConfig(path)` returns a complete, validated `AgentConfig` or throws one
 * `ConfigError` listing every problem (exit code 78). The schema in `schema.ts` holds every key,
 * default and doc line.
 */

export { loadConfig, parseConfig, validateConfig, MAX_CONFIG_BYTES, type LoadOptions, type ParseOptions } from './load';
export {
  SCHEMA,
  describeSchema,
  DEFAULT_INSTRUCTIONS,
  VOICES,
  CODECS,
  LOG_LEVEL_VALUES,
  BUILTIN_TOOL_NAMES,
  type SchemaEntry,
  type AgentConfig,
  type SipConfig,
  type TransportConfig,
  type TlsTransportConfig,
  type AccountConfig,
  type MediaConfig,
  type CodecName,
  type AiConfig,
  type TurnDetectionConfig,
  type TranscriptionConfig,
  type PricesConfig,
  type Voice,
  type GreetingConfig,
  type PromptsConfig,
  type ToolsConfig,
  type WebhookConfig,
  type CallsConfig,
  type RecordsConfig,
  type AdminConfig,
  type LoggingConfig,
} from './schema';
export { redactConfig, REDACTED } from './redact';
export { diffReloadable, type ReloadDiff, type ChangedKey } from './reload';
export { compileAllowList, checkAllowPattern, normalizeAddress, ANY as ALLOW_ANY, type AllowList, type CallerIdentity } from './allow';
export { compileConfigTemplates, type ConfigTemplates } from './templates';
export { addrSpec, parseSipUri, isLoopback, type SipUriParts } from './formats';
export type { ReloadClass } from './dsl';
export type { Env } from './env';

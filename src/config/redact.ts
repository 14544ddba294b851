/** `redactConfig`: a copy of the configuration that is safe to show (status output, logs). */

import type { AnyNode } from './dsl';
import { redactUrl } from './formats';
import { SCHEMA, type AgentConfig } from './schema';
import { isMapping } from './validate';

/** What a secret is replaced with. */
export const REDACTED = '[redacted]';

/**
 * A deep copy of `cfg` with every secret (passwords, API key, admin token, webhook header values)
 * replaced by `"[redacted]"` and passwords inside URLs masked. Absent secrets stay absent, so the
 * output still shows whether one is set.
 */
export function redactConfig(cfg: AgentConfig): AgentConfig {
  return redact(SCHEMA as AnyNode, cfg) as AgentConfig;
}

function redact(node: AnyNode, v: unknown): unknown {
  if (v === undefined || v === null) return v;
  if (node.secret) return REDACTED;
  switch (node.kind) {
    case 'object':
      return isMapping(v) ? mapObject(v, (k, x) => (node.fields[k] ? redact(node.fields[k], x) : copy(x))) : copy(v);
    case 'nullable':
      return redact(node.inner, v);
    case 'list':
      return Array.isArray(v) ? v.map((x) => redact(node.item, x)) : copy(v);
    case 'map':
      return isMapping(v) ? mapObject(v, (_k, x) => redact(node.value, x)) : copy(v);
    case 'string':
      return typeof v === 'string' ? redactUrl(v) : v;
    default:
      return copy(v);
  }
}

function mapObject(o: Record<string, unknown>, f: (k: string, v: unknown) => unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = f(k, v);
  return out;
}

function copy(v: unknown): unknown {
  return v !== null && typeof v === 'object' ? structuredClone(v) : v;
}

import { join } from 'node:path';
import { validateConfig, type AgentConfig, type LoadOptions } from '../../../src/config';
import { ConfigError } from '../../../src/util/errors';

/** Directory of the config fixtures. */
export const FIXTURES = join(__dirname, '..', '..', 'fixtures', 'config');

/** A minimal valid raw configuration (echo backend: no API key needed; callers on loopback admitted). */
export function base(): Record<string, unknown> {
  return { accounts: [{ uri: 'sip:100@127.0.0.1' }], ai: { provider: 'echo' }, calls: { allow: ['127.0.0.1'] } };
}

/** Deep-merge `patch` into `base()` (lists replace). */
export function withBase(patch: Record<string, unknown>): Record<string, unknown> {
  return merge(base(), patch);
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)
        ? merge(cur as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** Validate and return the config (failing the test with the problems if it is invalid). */
export function valid(raw: Record<string, unknown>, opts: LoadOptions & { baseDir?: string } = {}): AgentConfig {
  try {
    return validateConfig(raw, { env: {}, baseDir: FIXTURES, ...opts });
  } catch (err) {
    if (err instanceof ConfigError) throw new Error(`unexpected problems:\n${err.message}`);
    throw err;
  }
}

/** The problems (as `path: message` lines) validating `raw` reports; [] when it is valid. */
export function problems(raw: unknown, opts: LoadOptions & { baseDir?: string } = {}): string[] {
  try {
    validateConfig(raw, { env: {}, baseDir: FIXTURES, ...opts });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message));
  }
}

/** The warnings validating `raw` reports (as `path: message` lines). */
export function warnings(raw: unknown, opts: LoadOptions & { baseDir?: string } = {}): string[] {
  const out: string[] = [];
  validateConfig(raw, { env: {}, baseDir: FIXTURES, ...opts, onWarning: (w) => out.push(`${w.path}: ${w.message}`) });
  return out;
}

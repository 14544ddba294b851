/**
 * `diffReloadable`: what changed between two loaded configurations, split into keys SIGHUP can apply
 * without dropping calls (new calls pick them up) and keys that need a restart. The reload class of
 * each key is declared on the schema (`reload: 'live'` on the ai, greeting, prompts, tools, calls,
 * records and variables sections and on logging.level; everything else restarts).
 */

import type { AnyNode, ReloadClass } from './dsl';
import { SCHEMA, type AgentConfig } from './schema';
import { isMapping, joinPath } from './validate';

/** One changed key. */
export interface ChangedKey {
  /** Key path (`ai.instructions`, `accounts[0].password`, `variables.company`). */
  path: string;
  /** Whether SIGHUP can apply it. */
  reload: ReloadClass;
}

/** Result of {@link diffReloadable}. */
export interface ReloadDiff {
  /** Every changed key, in schema order. */
  changed: ChangedKey[];
  /** Paths that apply on reload. */
  live: string[];
  /** Paths that need a restart. */
  restart: string[];
  /** True when `restart` is not empty. */
  needsRestart: boolean;
}

/** Compare two loaded configurations. Values are not included, so the result is safe to log. */
export function diffReloadable(oldCfg: AgentConfig, newCfg: AgentConfig): ReloadDiff {
  const changed: ChangedKey[] = [];
  diff(SCHEMA as AnyNode, oldCfg, newCfg, '', 'restart', changed);
  const live = changed.filter((c) => c.reload === 'live').map((c) => c.path);
  const restart = changed.filter((c) => c.reload === 'restart').map((c) => c.path);
  return { changed, live, restart, needsRestart: restart.length > 0 };
}

function diff(node: AnyNode, a: unknown, b: unknown, path: string, inherited: ReloadClass, out: ChangedKey[]): void {
  const reload = node.reload ?? inherited;
  const whole = (): void => {
    if (!deepEqual(a, b)) out.push({ path, reload });
  };
  switch (node.kind) {
    case 'object':
      if (!isMapping(a) || !isMapping(b)) return whole();
      for (const [k, child] of Object.entries(node.fields)) diff(child, a[k], b[k], joinPath(path, k), reload, out);
      return;
    case 'nullable':
      if (!isMapping(a) || !isMapping(b)) return whole();
      return diff(node.inner, a, b, path, reload, out);
    case 'list':
      if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length || node.item.kind !== 'object') return whole();
      a.forEach((x, i) => diff(node.item, x, b[i], joinPath(path, i), reload, out));
      return;
    case 'map': {
      if (!isMapping(a) || !isMapping(b)) return whole();
      const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
      for (const k of [...keys].sort()) diff(node.value, a[k], b[k], joinPath(path, k), reload, out);
      return;
    }
    default:
      return whole();
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isMapping(a) && isMapping(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

/**
 * Walks raw parsed configuration against the schema: substitutes `${ENV}`, fills defaults, coerces
 * what is unambiguous (numbers and booleans written as strings), resolves paths, reads `*File`
 * secrets, and collects every problem with its path instead of stopping at the first.
 */

import { readFileSync, statSync, accessSync, constants as fsConstants } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type { ConfigProblem } from '../util/errors';
import { didYouMean } from '../util/template';
import type { AnyNode, FileNode, Literal, ObjectNode } from './dsl';
import { substituteEnv, type Env } from './env';

/** Where problems and warnings are collected during one load. */
export class ProblemSink {
  readonly problems: ConfigProblem[] = [];
  readonly warnings: ConfigProblem[] = [];

  /** Record a problem at `path`. */
  report(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  /** Record a problem unless `path` (or a key below it, or a `*File` sibling) already has one. */
  reportOnce(path: string, message: string): void {
    if (!this.hasProblem(path) && !this.hasProblem(`${path}File`)) this.report(path, message);
  }

  /** Record a warning (a setting that works but is probably not what was meant). */
  warn(path: string, message: string): void {
    this.warnings.push({ path, message });
  }

  /** Whether a problem was recorded at `path` or below it. */
  hasProblem(path: string): boolean {
    return this.problems.some((p) => p.path === path || p.path.startsWith(`${path}.`) || p.path.startsWith(`${path}[`));
  }
}

/** What the walk needs besides the raw value. */
export interface WalkContext {
  readonly sink: ProblemSink;
  readonly env: Env;
  /** Directory relative paths resolve against. */
  readonly baseDir: string;
  /** Check that `mustExist` files exist (off for checking a config meant for another machine). */
  readonly checkFiles: boolean;
}

/** Join a key onto a path (`a.b`, `a[0]`, `a["x.y"]`). */
export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  if (/^[A-Za-z0-9_-]+$/.test(key)) return base === '' ? key : `${base}.${key}`;
  return `${base}[${JSON.stringify(key)}]`;
}

/** True for a plain mapping (what YAML/JSON objects parse to). */
export function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Validate `raw` against `node`; returns the loaded value (the default where `raw` is invalid). */
export function walk(node: AnyNode, raw: unknown, path: string, ctx: WalkContext, subst = true): unknown {
  if (raw === null && node.kind === 'nullable') return null;
  if (raw === undefined || raw === null) return absent(node, path, ctx);

  if (typeof raw === 'string' && subst && node.kind !== 'object' && node.kind !== 'list' && node.kind !== 'map') {
    const r = substituteEnv(raw, ctx.env);
    if (!r.ok) {
      for (const m of r.problems) ctx.sink.report(path, m);
      return fallback(node);
    }
    // Passwords, keys and tokens (non-empty secrets) belong in the environment or a credential file;
    // webhook header values are marked secret only so that they are redacted, and stay quiet here.
    if (node.secret && node.kind === 'string' && node.minLength > 0 && !r.substituted) {
      ctx.sink.warn(path, 'secret written in the config file in clear; prefer ${ENV} or the *File key');
    }
    raw = r.value;
  }

  switch (node.kind) {
    case 'string': {
      if (typeof raw === 'number' || typeof raw === 'boolean') raw = String(raw);
      if (typeof raw !== 'string') return typeError(node, raw, 'a string', path, ctx);
      if (raw.length < node.minLength) {
        ctx.sink.report(path, node.minLength === 1 ? 'must not be empty' : `too short (at least ${node.minLength} characters)`);
        return fallback(node);
      }
      if (raw.length > node.maxLength) {
        ctx.sink.report(path, `too long (${raw.length} characters, at most ${node.maxLength})`);
        return fallback(node);
      }
      const problem = node.check?.(raw);
      if (problem) {
        ctx.sink.report(path, problem);
        return fallback(node);
      }
      return raw;
    }
    case 'path':
    case 'file': {
      if (typeof raw !== 'string' || raw === '') return typeError(node, raw, 'a file path', path, ctx);
      const abs = resolvePath(ctx.baseDir, raw);
      if (node.kind === 'path' && node.mustExist && ctx.checkFiles) {
        const problem = fileProblem(abs);
        if (problem) ctx.sink.report(path, problem);
      }
      return abs;
    }
    case 'number': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' ? parseNumber(raw) : undefined;
      if (n === undefined || !Number.isFinite(n)) return typeError(node, raw, 'a number', path, ctx);
      if (node.integer && !Number.isInteger(n)) {
        ctx.sink.report(path, `must be a whole number (got ${n})`);
        return fallback(node);
      }
      if (n < node.min || n > node.max) {
        ctx.sink.report(path, `must be between ${node.min} and ${node.max}${node.unit ? ` ${node.unit}` : ''} (got ${n})`);
        return fallback(node);
      }
      return n;
    }
    case 'boolean': {
      const b = parseBool(raw);
      if (b === undefined) return typeError(node, raw, 'true or false', path, ctx);
      return b;
    }
    case 'enum': {
      const v = matchEnum(node.values, raw, node.caseInsensitive);
      if (v === undefined) {
        const strings = node.values.filter((x): x is string => typeof x === 'string');
        const hint = typeof raw === 'string' ? didYouMean(raw, strings) : undefined;
        ctx.sink.report(path, `must be one of ${node.values.join(', ')} (got ${show(raw)}${hint ? `; did you mean ${hint}?` : ''})`);
        return fallback(node);
      }
      return v;
    }
    case 'object':
      if (!isMapping(raw)) return typeError(node, raw, 'a mapping', path, ctx);
      return walkObject(node, raw, path, ctx);
    case 'nullable': {
      if (raw === false || (typeof raw === 'string' && /^(off|none|false|no|disabled)$/i.test(raw))) return null;
      if (raw === true || (typeof raw === 'string' && /^(on|true|yes|enabled)$/i.test(raw))) return walkObject(node.inner, {}, path, ctx);
      if (!isMapping(raw)) return typeError(node, raw, 'a mapping or off', path, ctx);
      return walkObject(node.inner, raw, path, ctx);
    }
    case 'list': {
      if (!Array.isArray(raw)) {
        ctx.sink.report(path, `expected a list, got ${describe(raw)} (write each entry on its own "- " line)`);
        return structuredClone(node.default ?? []);
      }
      if (raw.length < node.minItems) ctx.sink.report(path, `needs at least ${node.minItems} ${node.minItems === 1 ? 'entry' : 'entries'}`);
      if (raw.length > node.maxItems) {
        ctx.sink.report(path, `too many entries (${raw.length}, at most ${node.maxItems})`);
        return structuredClone(node.default ?? []);
      }
      const out = raw.map((item, i) => walk(node.item, item, joinPath(path, i), ctx, subst));
      if (node.uniqueBy) {
        const seen = new Map<string, number>();
        out.forEach((item, i) => {
          const key = node.uniqueBy!(item);
          if (key === undefined) return;
          const first = seen.get(key);
          if (first !== undefined) ctx.sink.report(joinPath(path, i), `duplicate of ${joinPath(path, first)} (${key})`);
          else seen.set(key, i);
        });
      }
      return out;
    }
    case 'map': {
      if (!isMapping(raw)) return typeError(node, raw, 'a mapping', path, ctx);
      const keys = Object.keys(raw);
      if (keys.length > node.maxEntries) {
        ctx.sink.report(path, `too many entries (${keys.length}, at most ${node.maxEntries})`);
        return {};
      }
      const out: Record<string, unknown> = {};
      for (const k of keys) {
        const p = joinPath(path, k);
        if (!node.keyPattern.test(k)) {
          ctx.sink.report(p, `not a valid name (${node.keyDoc})`);
          continue;
        }
        const v = raw[k];
        if (v === undefined || v === null) {
          ctx.sink.report(p, 'missing value');
          continue;
        }
        out[k] = walk(node.value, v, p, ctx, subst);
      }
      return out;
    }
    case 'json': {
      const value = substituteDeep(raw, path, ctx);
      const size = JSON.stringify(value)?.length ?? 0;
      if (size > node.maxBytes) {
        ctx.sink.report(path, `too large (${size} bytes as JSON, at most ${node.maxBytes})`);
        return structuredClone(node.default);
      }
      const problem = node.check?.(value);
      if (problem) {
        ctx.sink.report(path, problem);
        return structuredClone(node.default);
      }
      return value;
    }
  }
}

/** Validate a mapping against an object node: unknown keys, every field, then `*File` keys. */
export function walkObject(node: ObjectNode, raw: Record<string, unknown>, path: string, ctx: WalkContext): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const fieldNames = Object.keys(node.fields);
  for (const k of Object.keys(raw)) {
    if (Object.prototype.hasOwnProperty.call(node.fields, k)) continue;
    const retired = node.retired?.[k];
    if (retired) {
      ctx.sink.report(joinPath(path, k), retired);
      continue;
    }
    const hint = didYouMean(k, [...fieldNames, ...Object.keys(node.retired ?? {})]);
    const note = hint !== undefined && node.retired?.[hint] ? ` ${hint} is ${node.retired[hint]}` : '';
    ctx.sink.report(joinPath(path, k), `unknown key${hint ? ` (did you mean ${hint}?${note})` : ''}`);
  }
  for (const [k, child] of Object.entries(node.fields)) {
    const v = walk(child, raw[k], joinPath(path, k), ctx);
    if (v !== undefined) out[k] = v;
  }
  for (const [k, child] of Object.entries(node.fields)) {
    if (child.kind !== 'file' || typeof out[k] !== 'string') continue;
    const filePath = joinPath(path, k);
    if (raw[child.fills] !== undefined && raw[child.fills] !== null) {
      ctx.sink.report(filePath, `set either ${child.fills} or ${k}, not both`);
      continue;
    }
    const content = readFileKey(child, out[k] as string, filePath, ctx);
    if (content === undefined) continue;
    // File content is taken literally (a password may contain "${"), then checked like the key it fills.
    const target = node.fields[child.fills]!;
    const before = ctx.sink.problems.length;
    const v = walk(target, content, filePath, ctx, false);
    if (ctx.sink.problems.length === before) out[child.fills] = v;
  }
  return out;
}

function readFileKey(node: FileNode<unknown>, abs: string, path: string, ctx: WalkContext): string | undefined {
  let buf: Buffer;
  try {
    const st = statSync(abs);
    if (!st.isFile()) {
      ctx.sink.report(path, `not a regular file: ${abs}`);
      return undefined;
    }
    if (st.size > node.maxBytes) {
      ctx.sink.report(path, `file too large: ${abs} (${st.size} bytes, at most ${node.maxBytes})`);
      return undefined;
    }
    buf = readFileSync(abs);
  } catch (err) {
    ctx.sink.report(path, `cannot read ${abs} (${errCode(err)})`);
    return undefined;
  }
  const text = buf.toString('utf8');
  const content = node.trim === 'all' ? text.trim() : text.trimEnd();
  if (content === '') {
    ctx.sink.report(path, `file is empty: ${abs}`);
    return undefined;
  }
  return content;
}

function fileProblem(abs: string): string | undefined {
  try {
    const st = statSync(abs);
    if (!st.isFile()) return `not a regular file: ${abs}`;
    accessSync(abs, fsConstants.R_OK);
    return undefined;
  } catch (err) {
    return errCode(err) === 'ENOENT' ? `file not found: ${abs}` : `cannot read ${abs} (${errCode(err)})`;
  }
}

function errCode(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code ?? (err instanceof Error ? err.message : String(err));
}

function absent(node: AnyNode, path: string, ctx: WalkContext): unknown {
  switch (node.presence) {
    case 'required':
      ctx.sink.report(path, node.kind === 'list' ? 'required (at least one entry)' : 'required');
      return node.kind === 'list' ? [] : undefined;
    case 'optional':
      return undefined;
    case 'default':
      if (node.kind === 'object') return walkObject(node, {}, path, ctx);
      if (node.kind === 'nullable') return node.defaultOn ? walkObject(node.inner, {}, path, ctx) : null;
      return structuredClone(node.default);
  }
}

function fallback(node: AnyNode): unknown {
  return node.presence === 'default' && node.kind !== 'object' && node.kind !== 'nullable' ? structuredClone(node.default) : undefined;
}

function typeError(node: AnyNode, raw: unknown, expected: string, path: string, ctx: WalkContext): unknown {
  ctx.sink.report(path, `expected ${expected}, got ${describe(raw)}`);
  if (node.kind === 'object') return walkObject(node, {}, path, ctx);
  if (node.kind === 'nullable') return null;
  if (node.kind === 'map') return {};
  return fallback(node);
}

function substituteDeep(v: unknown, path: string, ctx: WalkContext): unknown {
  if (typeof v === 'string') {
    const r = substituteEnv(v, ctx.env);
    if (r.ok) return r.value;
    for (const m of r.problems) ctx.sink.report(path, m);
    return v;
  }
  if (Array.isArray(v)) return v.map((x) => substituteDeep(x, path, ctx));
  if (isMapping(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substituteDeep(x, path, ctx)]));
  return v;
}

function parseNumber(s: string): number | undefined {
  const t = s.trim();
  return /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(t) ? Number(t) : undefined;
}

/** true/false, plus the YAML 1.1 spellings yes/no/on/off (and the strings "true"/"false" from ${ENV}). */
export function parseBool(raw: unknown): boolean | undefined {
  if (typeof raw === 'boolean') return raw;
  if (typeof raw !== 'string') return undefined;
  const t = raw.trim().toLowerCase();
  if (t === 'true' || t === 'yes' || t === 'on') return true;
  if (t === 'false' || t === 'no' || t === 'off') return false;
  return undefined;
}

function matchEnum(values: readonly Literal[], raw: unknown, caseInsensitive: boolean): Literal | undefined {
  for (const v of values) {
    if (raw === v) return v;
    if (typeof v === 'number' && typeof raw === 'string' && parseNumber(raw) === v) return v;
    if (typeof v === 'boolean' && typeof raw === 'string' && parseBool(raw) === v) return v;
    if (typeof v === 'string' && typeof raw === 'number' && String(raw) === v) return v;
    if (typeof v === 'string' && typeof raw === 'string' && caseInsensitive && raw.toLowerCase() === v.toLowerCase()) return v;
  }
  return undefined;
}

function describe(v: unknown): string {
  if (v === null) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `a string (${show(v)})`;
  if (typeof v === 'number') return `a number (${v})`;
  if (typeof v === 'boolean') return `${v}`;
  return typeof v;
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (v !== null && typeof v === 'object') return Array.isArray(v) ? 'a list' : 'a mapping';
  return String(v);
}

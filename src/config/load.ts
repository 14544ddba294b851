/**
 * Loading: read the file (YAML or JSON), parse, walk the schema, apply the cross-key rules, and
 * either return a complete `AgentConfig` or throw one `ConfigError` listing every problem.
 */

import { readFileSync, statSync } from 'node:fs';
import { dirname, extname, resolve as resolvePath } from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigError, type ConfigProblem } from '../util/errors';
import type { ObjectNode } from './dsl';
import type { Env } from './env';
import { applyRules } from './rules';
import { SCHEMA, type AgentConfig } from './schema';
import { isMapping, ProblemSink, walkObject } from './validate';

/** Largest configuration file accepted. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** Options shared by every loading entry point. */
export interface LoadOptions {
  /** Environment for `${VAR}` substitution (default: `process.env`). */
  env?: Env;
  /** Check that greeting, prompt and certificate files exist (default true). */
  checkFiles?: boolean;
  /** Called for each warning: settings that work but are probably not what was meant. */
  onWarning?: (warning: ConfigProblem) => void;
}

/** Options for {@link parseConfig}. */
export interface ParseOptions extends LoadOptions {
  /** `yaml` or `json` (default: sniffed from the text). */
  format?: 'yaml' | 'json';
  /** Directory relative paths resolve against (default: the working directory). */
  baseDir?: string;
}

/**
 * Load and validate the configuration file at `file` (YAML, or JSON by `.json` extension or content).
 * Relative paths inside resolve against the file's directory.
 * @throws ConfigError listing every problem found, each with its key path.
 */
export function loadConfig(file: string, opts: LoadOptions = {}): AgentConfig {
  const abs = resolvePath(file);
  let text: string;
  try {
    const st = statSync(abs);
    if (!st.isFile()) throw new ConfigError(`config file is not a regular file [path:${abs}]`);
    if (st.size > MAX_CONFIG_BYTES) throw new ConfigError(`config file too large [path:${abs}, bytes:${st.size}, max:${MAX_CONFIG_BYTES}]`);
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new ConfigError(`cannot read config file [path:${abs}, error:${code}]`, { cause: err });
  }
  const ext = extname(abs).toLowerCase();
  const format = ext === '.json' ? 'json' : ext === '.yaml' || ext === '.yml' ? 'yaml' : undefined;
  return parseConfig(text, { ...opts, format, baseDir: dirname(abs) });
}

/**
 * Parse and validate configuration text.
 * @throws ConfigError listing every problem found.
 */
export function parseConfig(text: string, opts: ParseOptions = {}): AgentConfig {
  const body = text.replace(/^\uFEFF/, '');
  const format = opts.format ?? (/^\s*[{[]/.test(body) ? 'json' : 'yaml');
  const raw = format === 'json' ? parseJson(body) : parseYaml(body, opts.onWarning);
  return validateConfig(raw, opts);
}

/**
 * Validate an already parsed configuration object (what a YAML or JSON file holds).
 * @throws ConfigError listing every problem found.
 */
export function validateConfig(raw: unknown, opts: LoadOptions & { baseDir?: string } = {}): AgentConfig {
  if (raw === undefined || raw === null) throw new ConfigError('config file is empty');
  if (!isMapping(raw)) throw new ConfigError('config file must hold a mapping of sections (sip, accounts, ai...)');
  const sink = new ProblemSink();
  const ctx = {
    sink,
    env: opts.env ?? process.env,
    baseDir: opts.baseDir ?? process.cwd(),
    checkFiles: opts.checkFiles ?? true,
  };
  const cfg = walkObject(SCHEMA as ObjectNode, raw, '', ctx) as unknown as AgentConfig;
  applyRules(cfg, raw, sink);
  if (sink.problems.length > 0) throw new ConfigError(sink.problems);
  for (const w of sink.warnings) opts.onWarning?.(w);
  return cfg;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    // V8 quotes the input in some messages, which could put a secret in a log line: keep only
    // what went wrong, and find the line ourselves.
    const msg = err instanceof Error ? err.message : String(err);
    const what = msg.split(/,? "| in JSON| is not valid JSON/)[0]!.trim();
    const pos = /position (\d+)/.exec(msg);
    let line: number | undefined;
    if (pos) line = text.slice(0, Number(pos[1])).split('\n').length;
    else line = parseDocument(text).errors[0]?.linePos?.[0].line;
    throw new ConfigError(`not valid JSON${line ? ` (line ${line})` : ''}: ${what}`);
  }
}

function parseYaml(text: string, onWarning: LoadOptions['onWarning']): unknown {
  const doc = parseDocument(text, { merge: true, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => ({ path: '', message: `YAML syntax error: ${oneLineYamlMessage(e.message)}` })));
  }
  for (const w of doc.warnings) onWarning?.({ path: '', message: `YAML: ${oneLineYamlMessage(w.message)}` });
  try {
    // Bounded alias expansion: a few anchors must not expand into gigabytes ("billion laughs").
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(`YAML error: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

// yaml's pretty errors append a source excerpt over several lines; the first line says it all.
function oneLineYamlMessage(m: string): string {
  return m.split('\n')[0]!.trim();
}

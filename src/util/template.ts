/**
 * `{{ name }}` templates for the AI instructions, the opening line and the DTMF message.
 *
 * A template is compiled once, when the configuration is loaded, against the list of names it may
 * use, so a typo (`{{calller}}`) is a configuration error and never reaches the model unreplaced.
 * Rendering is total: a value missing at call time (a SIP header the caller did not send) renders
 * as the empty string.
 *
 * Syntax: `{{name}}` with optional whitespace inside the braces; dotted names address a group
 * (`{{header.X-Customer-Id}}`, `{{var.company}}`); `\{{` writes a literal `{{`.
 */

import { ConfigError, type ConfigProblem } from './errors';

/** A value a template can render: scalars, or a group of named strings for dotted names. */
export type TemplateValue = string | number | boolean | null | undefined | TemplateGroup;

/** A group addressed by a dotted name (`header.*`, `var.*`); lookups fall back to case-insensitive. */
export type TemplateGroup = { readonly [key: string]: string | undefined };

/** The values passed to {@link Template.render}, by first name segment. */
export type TemplateValues = { readonly [name: string]: TemplateValue };

/** Options for {@link compileTemplate}. */
export interface TemplateOptions {
  /** Names the template may use; an entry ending in `.*` allows any suffix (`header.*`). */
  allowed: readonly string[];
  /** Key path used in error problems, e.g. `ai.instructions` (default: none). */
  path?: string;
}

/** A compiled template. */
export interface Template {
  /** The template text as written. */
  readonly source: string;
  /** Distinct names the template refers to, in order of first use. */
  readonly names: readonly string[];
  /** Render with the given values; missing values render as the empty string. */
  render(values: TemplateValues): string;
}

/** Longest rendering of one value: caller-controlled values (SIP headers) must not flood the prompt. */
export const MAX_RENDERED_VALUE_CHARS = 1024;

/** Standard per-call names every call template may use (besides `header.*` and `var.*`). */
export const CALL_TEMPLATE_NAMES = [
  'caller',
  'callerName',
  'callerNumber',
  'callee',
  'callId',
  'date',
  'time',
  'weekday',
] as const;

/** A standard per-call template name. */
export type CallTemplateName = (typeof CALL_TEMPLATE_NAMES)[number];

type Segment = string | { name: string };

// RFC 3261 `token` characters, which is what a SIP header name is made of.
const TOKEN_RE = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*(?:\.(.+))?$/;

/**
 * Compile `text`, checking every `{{name}}` against `opts.allowed`.
 * @throws ConfigError listing every problem in the template (unknown names, malformed or unclosed braces),
 *   each with the template line number and `opts.path` as its path.
 */
export function compileTemplate(text: string, opts: TemplateOptions): Template {
  const problems: ConfigProblem[] = [];
  const path = opts.path ?? '';
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const a of opts.allowed) {
    if (a.endsWith('.*')) prefixes.push(a.slice(0, -1));
    else exact.add(a);
  }

  const segments: Segment[] = [];
  const names: string[] = [];
  let literal = '';
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('\\{{', i)) {
      literal += '{{';
      i += 3;
      continue;
    }
    if (!text.startsWith('{{', i)) {
      literal += text[i];
      i += 1;
      continue;
    }
    const line = lineAt(text, i);
    const close = text.indexOf('}}', i + 2);
    const nextOpen = text.indexOf('{{', i + 2);
    const newline = text.indexOf('\n', i + 2);
    if (close < 0 || (nextOpen >= 0 && nextOpen < close) || (newline >= 0 && newline < close)) {
      problems.push({ path, message: `unclosed {{ (line ${line})` });
      literal += '{{';
      i += 2;
      continue;
    }
    const inner = text.slice(i + 2, close).trim();
    i = close + 2;
    const shown = `{{${inner}}}`;
    const m = NAME_RE.exec(inner);
    if (inner === '') {
      problems.push({ path, message: `empty template variable {{}} (line ${line})` });
      continue;
    }
    if (!m || (m[1] !== undefined && !TOKEN_RE.test(m[1]))) {
      problems.push({ path, message: `malformed template variable ${shown} (line ${line})` });
      continue;
    }
    if (!isAllowed(inner, exact, prefixes)) {
      const candidates = [...exact, ...prefixes.map((p) => `${p}…`)];
      const hint = didYouMean(inner, [...exact]);
      let known = candidates.length > 0 ? `; known: ${candidates.map((c) => `{{${c}}}`).join(', ')}` : '';
      const dot = inner.indexOf('.');
      if (dot > 0) {
        const group = inner.slice(0, dot + 1);
        const members = [...exact].filter((e) => e.startsWith(group)).map((e) => e.slice(group.length));
        known = `; ${group.slice(0, -1)} has no "${inner.slice(dot + 1)}"${members.length > 0 ? `, only ${members.join(', ')}` : ''}`;
      }
      problems.push({
        path,
        message: `unknown template variable ${shown} (line ${line}${hint ? `; did you mean {{${hint}}}?` : known})`,
      });
      continue;
    }
    if (literal) segments.push(literal);
    literal = '';
    segments.push({ name: inner });
    if (!names.includes(inner)) names.push(inner);
  }
  if (literal) segments.push(literal);
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    source: text,
    names,
    render(values: TemplateValues): string {
      let out = '';
      for (const s of segments) out += typeof s === 'string' ? s : lookup(values, s.name);
      return out;
    },
  };
}

function isAllowed(name: string, exact: Set<string>, prefixes: string[]): boolean {
  if (exact.has(name)) return true;
  return prefixes.some((p) => name.length > p.length && name.startsWith(p));
}

function lineAt(text: string, index: number): number {
  let line = 1;
  for (let k = 0; k < index; k++) if (text.charCodeAt(k) === 10) line++;
  return line;
}

function lookup(values: TemplateValues, name: string): string {
  let v: TemplateValue = values[name];
  if (v === undefined) {
    const dot = name.indexOf('.');
    if (dot > 0) {
      const group = values[name.slice(0, dot)];
      if (group !== null && typeof group === 'object') v = groupGet(group, name.slice(dot + 1));
    }
  }
  if (v === undefined || v === null || typeof v === 'object') return '';
  return clean(String(v));
}

function groupGet(group: TemplateGroup, key: string): string | undefined {
  if (Object.prototype.hasOwnProperty.call(group, key)) return group[key];
  // SIP header names are case-insensitive (RFC 3261 §7.3.1).
  const lower = key.toLowerCase();
  for (const k of Object.keys(group)) if (k.toLowerCase() === lower) return group[k];
  return undefined;
}

// Values can come from the caller (SIP headers): no control characters that could fake prompt
// structure, and a cap on length.
function clean(s: string): string {
  // eslint-disable-next-line no-control-regex
  const flat = s.replace(/[\u0000-\u001f\u007f]+/g, ' ');
  return flat.length > MAX_RENDERED_VALUE_CHARS ? flat.slice(0, MAX_RENDERED_VALUE_CHARS) : flat;
}

/** The names a per-call template may use: the standard ones, `header.*`, `var.<each variable>` and `extra`. */
export function callTemplateAllowed(variableNames: Iterable<string>, extra: readonly string[] = []): string[] {
  return [...CALL_TEMPLATE_NAMES, 'header.*', ...[...variableNames].map((n) => `var.${n}`), ...extra];
}

/** What {@link callTemplateValues} needs to know about a call. */
export interface CallTemplateInfo {
  /** The caller: a SIP URI or a whole From value (`"Alice" <sip:alice@pbx>;tag=1`). */
  caller: string;
  /** The called party (To / request URI), same forms as `caller`. */
  callee: string;
  /** Our call id (the one used in logs and records). */
  callId: string;
  /** SIP headers of the INVITE by name (any case). */
  headers?: TemplateGroup;
  /** `variables` from the configuration. */
  variables?: TemplateGroup;
  /** Call start time (default: now). */
  now?: Date;
  /** IANA time zone for date, time and weekday (default: the process's). */
  timeZone?: string;
  /** Extra names (e.g. `digit` for the DTMF template). */
  extra?: TemplateValues;
}

const DATE_PARTS = {
  date: { year: 'numeric', month: '2-digit', day: '2-digit' },
  time: { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' },
  weekday: { weekday: 'long' },
} as const satisfies Record<string, Intl.DateTimeFormatOptions>;

// Building the three Intl.DateTimeFormats took a third of a call's set-up time on the JS thread
// (about 1 ms a call, measured with --cpu-prof in a burst of 150 calls); they are kept per time
// zone (a config names at most a few).
const formatters = new Map<string, Intl.DateTimeFormat>();
const MAX_FORMATTERS = 64;

function formatter(kind: keyof typeof DATE_PARTS, tz: string | undefined): Intl.DateTimeFormat {
  const key = `${kind} ${tz ?? ''}`;
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { ...DATE_PARTS[kind], timeZone: tz });
    if (formatters.size >= MAX_FORMATTERS) formatters.delete(formatters.keys().next().value as string);
    formatters.set(key, f);
  }
  return f;
}

/** Build the values for a per-call template: caller, callerName, callerNumber, callee, callId, date, time, weekday, header, var. */
export function callTemplateValues(info: CallTemplateInfo): TemplateValues {
  const now = info.now ?? new Date();
  const tz = info.timeZone;
  const caller = parseNameAddr(info.caller);
  const callee = parseNameAddr(info.callee);
  const part = (kind: keyof typeof DATE_PARTS): Intl.DateTimeFormatPart[] => formatter(kind, tz).formatToParts(now);
  const pick = (parts: Intl.DateTimeFormatPart[], t: string): string => parts.find((p) => p.type === t)?.value ?? '';
  const d = part('date');
  const t = part('time');
  return {
    ...info.extra,
    caller: caller.uri,
    callerName: caller.name,
    callerNumber: caller.user,
    callee: callee.uri,
    callId: info.callId,
    date: `${pick(d, 'year')}-${pick(d, 'month')}-${pick(d, 'day')}`,
    time: `${pick(t, 'hour')}:${pick(t, 'minute')}`,
    weekday: pick(part('weekday'), 'weekday'),
    header: info.headers ?? {},
    var: info.variables ?? {},
  };
}

/** The parts of a SIP name-addr (`"Alice" <sip:alice@pbx;transport=tcp>;tag=x`). */
export interface NameAddr {
  /** Display name, unquoted ('' when absent). */
  name: string;
  /** The URI without angle brackets or header parameters. */
  uri: string;
  /** User part of the URI (e.g. the number), '' when absent. */
  user: string;
}

/** Split a SIP From/To value or bare URI into display name, URI and user part. */
export function parseNameAddr(value: string): NameAddr {
  const s = value.trim();
  let name = '';
  let uri = s;
  const lt = s.indexOf('<');
  const gt = lt >= 0 ? s.indexOf('>', lt) : -1;
  if (lt >= 0 && gt > lt) {
    name = s.slice(0, lt).trim();
    if (name.startsWith('"') && name.endsWith('"') && name.length >= 2) name = name.slice(1, -1).replace(/\\(.)/g, '$1');
    uri = s.slice(lt + 1, gt).trim();
  } else {
    // A bare addr-spec: parameters after ';' belong to the header, not the URI (RFC 3261 §20.10).
    const semi = s.indexOf(';');
    if (semi >= 0) uri = s.slice(0, semi);
  }
  const m = /^(?:sips?|tel):([^@;?]*)@?/i.exec(uri);
  let user = '';
  if (m) user = uri.includes('@') || /^tel:/i.test(uri) ? decodeURIComponentSafe(m[1]!) : '';
  return { name, uri, user };
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * The candidate closest to `word` by edit distance (case-insensitive, snake/kebab-case folded to
 * camelCase first), or undefined when none is close enough to be a plausible typo.
 */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const folded = word.replace(/[-_]+([a-z0-9])/gi, (_m, c: string) => c.toUpperCase()).toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const lc = c.toLowerCase();
    if (lc === folded) return c;
    const d = editDistance(word.toLowerCase(), lc);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  const limit = Math.max(1, Math.floor(word.length / 3));
  return bestD <= limit ? best : undefined;
}

// Optimal string alignment distance: adjacent transpositions ("temprature") count as one edit.
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 8) return Infinity;
  const d: number[][] = Array.from({ length: a.length + 1 }, (_r, i) =>
    Array.from({ length: b.length + 1 }, (_c, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

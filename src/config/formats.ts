/**
 * Value formats the configuration checks: SIP URIs, WebSocket and HTTP URLs, hosts and addresses,
 * tool names. Each check returns a problem message, or undefined when the value is fine.
 */

import { isIP } from 'node:net';

const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
// RFC 3261 §25.1 user part: unreserved / escaped / user-unreserved, plus an optional password.
const SIP_USER_RE = /^[A-Za-z0-9\-_.!~*'()&=+$,;?/%:]+$/;

/** True when `host` is a hostname, an IPv4 address or a bracketed IPv6 address. */
export function isHost(host: string): boolean {
  if (host.startsWith('[') && host.endsWith(']')) return isIP(host.slice(1, -1)) === 6;
  return isIP(host) === 4 || HOSTNAME_RE.test(host);
}

/** Parse `host[:port]`; undefined when malformed. */
function hostPort(s: string): { host: string; port?: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(s);
  if (!m || !isHost(m[1]!)) return undefined;
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  return { host: m[1]!, port };
}

/** Parts of a SIP URI. */
export interface SipUriParts {
  scheme: 'sip' | 'sips';
  user?: string;
  host: string;
  port?: number;
  params: Record<string, string>;
}

/** Parse `sip:`/`sips:` URIs (`sip:100@pbx.example.com:5060;transport=tcp`); undefined when not one. */
export function parseSipUri(uri: string): SipUriParts | undefined {
  const m = /^(sips?):(.*)$/i.exec(uri.trim());
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase() as 'sip' | 'sips';
  let rest = m[2]!;
  const q = rest.indexOf('?');
  if (q >= 0) rest = rest.slice(0, q);
  let user: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (user === '' || !SIP_USER_RE.test(user)) return undefined;
  }
  const [hp, ...paramParts] = rest.split(';');
  const parsed = hostPort(hp ?? '');
  if (!parsed) return undefined;
  const params: Record<string, string> = {};
  for (const p of paramParts) {
    if (p === '') return undefined;
    const eq = p.indexOf('=');
    params[(eq < 0 ? p : p.slice(0, eq)).toLowerCase()] = eq < 0 ? '' : p.slice(eq + 1);
  }
  return { scheme, user, host: parsed.host, port: parsed.port, params };
}

/** A SIP or SIPS URI. */
export function sipUri(s: string): string | undefined {
  return parseSipUri(s) ? undefined : `not a SIP URI (got "${s}"; expected e.g. sip:pbx.example.com)`;
}

/** The URI inside a name-addr (`"Agent" <sip:100@pbx>;tag=1`), or the value itself for a bare URI. */
export function addrSpec(s: string): string {
  const m = /<([^>]*)>/.exec(s);
  return m ? m[1]!.trim() : s.trim();
}

/** A SIP URI with a user part, optionally with a display name (`"Agent" <sip:100@pbx>`). */
export function sipAddress(s: string): string | undefined {
  const u = parseSipUri(addrSpec(s));
  if (!u) return `not a SIP URI (got "${s}"; expected e.g. sip:100@pbx.example.com)`;
  if (u.user === undefined) return `needs a user part (got "${s}"; expected e.g. sip:100@pbx.example.com)`;
  return undefined;
}

/** A `ws://` or `wss://` URL. */
export function wsUrl(s: string): string | undefined {
  const u = tryUrl(s);
  if (!u || (u.protocol !== 'ws:' && u.protocol !== 'wss:')) return `not a ws:// or wss:// URL (got "${s}")`;
  return undefined;
}

/** An `http://` or `https://` URL. */
export function httpUrl(s: string): string | undefined {
  const u = tryUrl(s);
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) return `not an http:// or https:// URL (got "${redactUrl(s)}")`;
  return undefined;
}

/** Replace the password in a URL's or SIP URI's userinfo with `[redacted]` (other values pass through). */
export function redactUrl(s: string): string {
  const sip = /^(\s*(?:[^<]*<)?sips?:[^:@;?<>]+):[^@;?<>]+@/i.exec(s);
  if (sip) return `${sip[1]}:[redacted]@${s.slice(sip[0].length)}`;
  const u = tryUrl(s);
  if (!u || u.password === '') return s;
  return s.replace(`:${u.password}@`, ':[redacted]@');
}

function tryUrl(s: string): URL | undefined {
  try {
    return new URL(s);
  } catch {
    return undefined;
  }
}

/** An IPv4 or IPv6 address (no brackets), or `localhost`. */
export function listenAddress(s: string): string | undefined {
  return s === 'localhost' || isIP(s) !== 0 ? undefined : `not an IP address (got "${s}")`;
}

/** A hostname or IP address (no port), as written in SDP or Via. */
export function hostOrIp(s: string): string | undefined {
  return isIP(s) !== 0 || HOSTNAME_RE.test(s) ? undefined : `not a hostname or IP address (got "${s}")`;
}

/** True for loopback listen addresses: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  return v4mapped !== null && v4mapped[1]!.startsWith('127.');
}

/** An ISO-639-1 language code (`en`, `de`). */
export function language(s: string): string | undefined {
  return /^[a-z]{2}$/.test(s) ? undefined : `not an ISO-639-1 language code (got "${s}"; expected e.g. en)`;
}

/** A function name the Realtime API accepts. */
export function toolName(s: string): string | undefined {
  return /^[A-Za-z0-9_-]{1,64}$/.test(s) ? undefined : `not a valid tool name (got "${s}"; letters, digits, _ and -, at most 64)`;
}

/** An MCP server label (`server_label`): letters, digits, _ and -, at most 64. */
export function mcpLabel(s: string): string | undefined {
  return /^[A-Za-z0-9_-]{1,64}$/.test(s) ? undefined : `not a valid server label (got "${s}"; letters, digits, _ and -, at most 64)`;
}

/** A tool name an MCP server may expose: letters, digits, _, - and ., at most 128. */
export function mcpToolName(s: string): string | undefined {
  return /^[A-Za-z0-9_.-]{1,128}$/.test(s) ? undefined : `not a valid MCP tool name (got "${s}"; letters, digits, _, - and ., at most 128)`;
}

/** A stored prompt id (`pmpt_...`). */
export function promptId(s: string): string | undefined {
  return /^[A-Za-z0-9_-]{1,128}$/.test(s) ? undefined : `not a valid prompt id (got "${s}"; e.g. pmpt_123)`;
}

/** An ISO 639-1 language code, optionally with a region (`tr`, `pt-BR`). */
export function languageCode(s: string): string | undefined {
  return /^[a-z]{2,3}(-[A-Za-z]{2,4})?$/.test(s) ? undefined : `not a language code (got "${s}"; e.g. en, tr, pt-BR)`;
}

/** A PostgreSQL connection URL (postgres:// or postgresql://). */
export function postgresUrl(s: string): string | undefined {
  try {
    const u = new URL(s);
    if (u.protocol === 'postgres:' || u.protocol === 'postgresql:') return u.hostname || u.searchParams.get('host') ? undefined : 'names no host';
  } catch {
    // fall through
  }
  return 'not a postgres:// URL';
}

/** An instance name: letters, digits, `.`, `_` and `-`, at most 64 (it goes into headers and labels). */
export function instanceId(s: string): string | undefined {
  return /^[A-Za-z0-9._-]{1,64}$/.test(s) ? undefined : `not a valid instance id (got "${s}"; letters, digits, ., _ and -, at most 64)`;
}

/** An IANA time zone known to this Node.js build. */
export function timeZone(s: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: s });
    return undefined;
  } catch {
    return `not a known IANA time zone (got "${s}"; expected e.g. Europe/Berlin)`;
  }
}

/**
 * The currency of ai.prices: costs are reported as USD (record field `usage.costUsd`, metric
 * `sip_ai_agent_cost_usd_total`), so a price table in another currency would be mislabelled.
 */
export function currency(s: string): string | undefined {
  if (!/^[A-Z]{3}$/.test(s)) return `not an ISO-4217 currency code (got "${s}")`;
  return s === 'USD' ? undefined : `only USD is supported: costs are recorded and exported as USD (got "${s}"; convert the prices to USD)`;
}

/** A printable one-line string: SIP header values and the User-Agent must not break the message. */
export function oneLine(s: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(s) ? 'must be a single line without control characters' : undefined;
}

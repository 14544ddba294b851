/** Request validation and the health verdict: pure functions, so they are tested without a server. */
import type { HealthInput, HealthReport, PlaceCallRequest } from './types';

/** An HTTP error answered as `{"error": message, "field"?: field}`. */
export class HttpError extends Error {
  readonly status: number;
  /** The request field at fault (400s). */
  readonly field: string | undefined;
  /** Extra response headers (Allow, WWW-Authenticate...). */
  readonly headers: Record<string, string>;
  constructor(status: number, message: string, opts: { field?: string; headers?: Record<string, string> } = {}) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.field = opts.field;
    this.headers = opts.headers ?? {};
  }
}

/** Longest URI accepted by POST /calls. */
export const MAX_URI_CHARS = 2048;
/** Longest per-call instructions accepted by POST /calls. */
export const MAX_INSTRUCTIONS_CHARS = 32 * 1024;
/** Most extra headers accepted by POST /calls. */
export const MAX_HEADERS = 16;

const URI_RE = /^(sips?:[^\s<>"]+|tel:\+?[0-9A-Fa-f*#().\-;=%+]+)$/;
// Only X- headers: the request must not be able to rewrite From, Via, Route or Contact of the INVITE.
const HEADER_NAME_RE = /^X-[A-Za-z0-9!#$%&'*+.^_`|~-]{1,62}$/;
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

function bad(field: string, message: string): HttpError {
  return new HttpError(400, `invalid request: ${field} ${message}`, { field });
}

/** Validate a POST /calls body. @throws HttpError 400 naming the first field at fault. */
export function validatePlaceCall(body: unknown): PlaceCallRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpError(400, 'invalid request: the body must be a JSON object like {"uri": "sip:1000@pbx"}');
  }
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (k !== 'uri' && k !== 'instructions' && k !== 'headers') throw bad(k, 'is not a known field (uri, instructions, headers)');
  }
  if (b.uri === undefined) throw bad('uri', 'is required');
  if (typeof b.uri !== 'string') throw bad('uri', 'must be a string');
  const uri = b.uri.trim();
  if (uri.length === 0) throw bad('uri', 'must not be empty');
  if (uri.length > MAX_URI_CHARS) throw bad('uri', `must be at most ${MAX_URI_CHARS} characters`);
  if (!URI_RE.test(uri)) throw bad('uri', 'must be a sip:, sips: or tel: URI (e.g. sip:1000@pbx.example.com)');
  const out: PlaceCallRequest = { uri };
  if (b.instructions !== undefined) {
    if (typeof b.instructions !== 'string') throw bad('instructions', 'must be a string');
    if (b.instructions.trim().length === 0) throw bad('instructions', 'must not be empty');
    if (b.instructions.length > MAX_INSTRUCTIONS_CHARS) throw bad('instructions', `must be at most ${MAX_INSTRUCTIONS_CHARS} characters`);
    out.instructions = b.instructions;
  }
  if (b.headers !== undefined) {
    const h = b.headers;
    if (h === null || typeof h !== 'object' || Array.isArray(h)) throw bad('headers', 'must be an object of header names to strings');
    const entries = Object.entries(h as Record<string, unknown>);
    if (entries.length > MAX_HEADERS) throw bad('headers', `must have at most ${MAX_HEADERS} entries`);
    const headers: Record<string, string> = {};
    for (const [name, value] of entries) {
      const f = `headers.${name}`;
      if (!HEADER_NAME_RE.test(name)) throw bad(f, 'is not allowed: only X- headers (letters, digits, -) may be added');
      if (typeof value !== 'string') throw bad(f, 'must be a string');
      if (value.length > 1024) throw bad(f, 'must be at most 1024 characters');
      if (CONTROL_RE.test(value)) throw bad(f, 'must not contain control characters');
      headers[name] = value;
    }
    out.headers = headers;
  }
  return out;
}

/**
 * Healthy when every registering account is registered (accounts that do not register are fine as
 * they are), the AI endpoint is configured and no other problem is reported.
 */
export function evaluateHealth(h: HealthInput): HealthReport {
  const reasons: string[] = [];
  for (const a of h.accounts) {
    if (a.registers && !a.registered) {
      const why = [a.status ? `status ${a.status}` : '', a.reason ?? ''].filter(Boolean).join(' ');
      reasons.push(`account ${a.name} is not registered${why ? ` (${why})` : ''}`);
    } else if (a.registers && a.registrarReachable === false) {
      reasons.push(`account ${a.name}: the registrar does not answer OPTIONS`);
    }
  }
  if (!h.aiConfigured) reasons.push('the AI endpoint is not configured');
  for (const p of h.problems ?? []) reasons.push(p);
  return { healthy: reasons.length === 0, reasons };
}

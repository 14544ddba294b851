/**
 * The few error classes that cross every boundary of sip-ai-agent. Each has a stable `code`
 * so callers (and the admin API) can branch on it without parsing messages. Messages carry
 * bracketed context, e.g. `hangup() failed [callId:3, status:481]`.
 */

/** Base class: an error with a stable machine-readable code. */
export class AgentError extends Error {
  /** Stable code, e.g. `ERR_CONFIG`. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** One problem in a configuration file, named by its path (`accounts[0].registrar`). */
export interface ConfigProblem {
  /** Dotted path of the offending key, e.g. `accounts[0].registrar`. */
  path: string;
  /** What is wrong with it, as a sentence fragment. */
  message: string;
}

/** The configuration is invalid; carries every problem found at once. Exit code 78 (EX_CONFIG). */
export class ConfigError extends AgentError {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[] | string, options?: { cause?: unknown }) {
    const list = typeof problems === 'string' ? [{ path: '', message: problems }] : problems;
    super('ERR_CONFIG', list.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('\n'), options);
    this.problems = list;
  }
}

/** A SIP operation failed; keeps the SIP status code (e.g. 401, 486, 503). */
export class SipError extends AgentError {
  /** SIP status code, or 0 when the failure happened before any SIP response. */
  readonly status: number;
  constructor(message: string, status = 0, options?: { cause?: unknown }) {
    super('ERR_SIP', message, options);
    this.status = status;
  }
}

/** The AI backend (Realtime session) failed; `aiCode` is the backend's error code when it sent one. */
export class AiSessionError extends AgentError {
  readonly aiCode: string | undefined;
  constructor(message: string, aiCode?: string, options?: { cause?: unknown }) {
    super('ERR_AI_SESSION', message, options);
    this.aiCode = aiCode;
  }
}

/** An operation was asked of an object in a state that does not allow it (e.g. answer() after hangup). */
export class InvalidStateError extends AgentError {
  constructor(message: string) {
    super('ERR_INVALID_STATE', message);
  }
}

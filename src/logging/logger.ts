import pino from 'pino';
import { setListenerErrorHandler } from '../util/TypedEmitter';

/** The logger type used everywhere (a pino logger or child). */
export type Logger = pino.Logger;

/** Log levels accepted by config and the CLI. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** A log level name. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Keys whose values are never written to a log line. */
const REDACT = [
  'password', '*.password', '*.*.password', 'apiKey', '*.apiKey', '*.*.apiKey',
  'authorization', '*.authorization', 'headers.authorization', 'headers["api-key"]', 'token', '*.token',
];

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  level?: LogLevel;
  /** Pretty, human-readable output (default: when stdout is a terminal and pino-pretty is installed). */
  pretty?: boolean;
  /** Write to this stream instead of stdout (tests). */
  destination?: NodeJS.WritableStream;
}

/**
 * Root logger: JSON lines on stdout (what journald expects), pretty when stdout is a terminal.
 * Secrets are redacted by key name.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  const base = { level, redact: { paths: REDACT, censor: '[redacted]' }, base: { pid: process.pid } };
  let logger: Logger;
  const wantPretty = opts.pretty ?? (opts.destination === undefined && process.stdout.isTTY === true);
  if (wantPretty && hasPretty()) {
    logger = pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true } } });
  } else if (opts.destination) {
    logger = pino(base, opts.destination as pino.DestinationStream);
  } else {
    logger = pino(base, pino.destination({ fd: 1, sync: false }));
  }
  setListenerErrorHandler((event, err) => logger.error({ err, event }, 'event listener threw'));
  return logger;
}

function hasPretty(): boolean {
  try {
    require.resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/** A logger that discards everything (unit tests, library use without logging). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

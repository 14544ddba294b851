/**
 * `sip-ai-agent --config FILE`: run the daemon in the foreground until SIGTERM/SIGINT.
 * READY=1 to systemd once calls can be taken; SIGHUP reloads; SIGTERM drains and exits 0.
 * A second SIGTERM/SIGINT while draining stops at once (calls get their BYE, records are written).
 */
import { loadConfig } from '../config';
import { createLogger, type LogLevel } from '../logging/logger';
import { ConfigError } from '../util/errors';
import { Daemon } from './Daemon';
import { EXIT_FAILURE, EXIT_OK } from './exitCodes';
import { sdNotify } from './systemd';

/** Options of {@link runDaemon}. */
export interface RunOptions {
  configPath: string;
  logLevel?: LogLevel;
}

/** Run until stopped; resolves with the exit code. ConfigError propagates (exit 78). */
export async function runDaemon(o: RunOptions): Promise<number> {
  const cfg = loadConfig(o.configPath, {
    onWarning: (w) => process.stderr.write(`sip-ai-agent: warning: ${typeof w === 'string' ? w : JSON.stringify(w)}\n`),
  });
  const pretty = cfg.logging.pretty === 'auto' ? undefined : cfg.logging.pretty === true;
  const root = createLogger({ level: o.logLevel ?? cfg.logging.level, pretty });
  // A named instance says so in every line, so the logs of several can be merged.
  const logger = cfg.instance.id ? root.child({ instance: cfg.instance.id }) : root;
  // Signal handlers go in before anything starts: a SIGTERM during start-up (or while READY=1 is
  // being delivered) must drain and exit 0, never hit Node's default and kill the process.
  let daemon: Daemon | undefined;
  let pending: string | undefined;
  let stop: (signal: string) => void = (signal) => {
    pending = signal;
  };
  let reload = (): void => logger.info('SIGHUP during start-up: the configuration being started is already the newest');
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => reload());

  try {
    daemon = await Daemon.start(cfg, { configPath: o.configPath, logger });
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    logger.fatal({ err: (err as Error).message }, 'start-up failed');
    logger.flush?.();
    throw err;
  }
  const running = daemon;

  return new Promise<number>((resolve) => {
    let stopping = false;
    stop = (signal: string): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: stopping now');
        process.exit(EXIT_FAILURE);
      }
      stopping = true;
      logger.info({ signal }, 'signal received');
      // The notification goes out while draining; exit waits for it so it is never lost.
      Promise.all([sdNotify({ STOPPING: '1' }, logger), running.stop()]).then(
        () => {
          logger.flush?.();
          resolve(EXIT_OK);
        },
        (err: Error) => {
          logger.error({ err: err.message }, 'stop failed');
          resolve(EXIT_FAILURE);
        },
      );
    };
    reload = (): void => {
      logger.info('SIGHUP: reloading configuration');
      void sdNotify({ RELOADING: '1' }, logger);
      void running.reload().finally(() => void sdNotify({ READY: '1' }, logger));
    };
    if (pending) {
      stop(pending);
      return;
    }
    void sdNotify({ READY: '1', STATUS: `taking calls on ${Object.values(running.transports).join(', ')}` }, logger);
  });
}

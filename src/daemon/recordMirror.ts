/**
 * records.store: postgres. The record files stay the local journal; every change of a call's record
 * is mirrored into the database off the audio path (RecordSync), and the admin API reads the
 * calls of every instance from it. A database that is down at start or later costs nothing but
 * the delay: the records wait on disk and are written when it answers.
 */
import { join } from 'node:path';
import type { AgentConfig } from '../config';
import type { Logger } from '../logging/logger';
import { PostgresRecords, RecordSync, type RecordStore } from '../records';

export interface RecordMirror {
  readonly db: PostgresRecords;
  readonly sync: RecordSync;
  close(): Promise<void>;
}

/** The mirror records.store asks for, started; undefined for files. */
export async function startRecordMirror(cfg: AgentConfig, records: RecordStore, log: Logger): Promise<RecordMirror | undefined> {
  if (cfg.records.store !== 'postgres' || !cfg.records.postgres.url) return undefined;
  const db = new PostgresRecords({ url: cfg.records.postgres.url, recordsDir: cfg.records.dir });
  let ready: Promise<void> | undefined;
  const migrate = (): Promise<void> => {
    ready ??= db.migrate().then(
      (m) => log.info({ schemaFrom: m.from, schemaTo: m.to }, 'record database ready'),
      (err: unknown) => {
        ready = undefined;
        throw err;
      },
    );
    return ready;
  };
  await migrate().catch((err: Error) =>
    log.error({ err: err.message }, 'record database unreachable at start: records are kept on disk and written when it answers'),
  );
  const sync = new RecordSync({
    write: async (rec) => {
      await migrate();
      await db.upsert(rec);
    },
    read: (id) => records.read(id),
    writtenSince: (ms) => records.writtenSince(ms),
    stateFile: join(cfg.records.dir, '.postgres-backlog.json'),
    logger: log,
  });
  await sync.start();
  return {
    db,
    sync,
    async close() {
      await sync.close();
      await db.close().catch(() => undefined);
    },
  };
}

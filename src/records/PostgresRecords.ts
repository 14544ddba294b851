/**
 * Call records in PostgreSQL, for several instances writing to one database (records.store:
 * postgres). One row a call, keyed by call id: the indexed fields a query needs (instance, times,
 * status, caller, end reason, recording path) and the whole record as jsonb. A write is an upsert
 * of the record as it stands, so writing again after a failure, or twice, is harmless; an older
 * version never overwrites a newer one (updated_at).
 *
 * The schema is created and migrated by the agent at start, under an advisory lock so instances
 * that start together do not race. Files stay the local journal: the daemon replays them here when
 * the database comes back (RecordSync).
 */
import { join } from 'node:path';
import { Pool, type PoolConfig } from 'pg';
import { dayDirName } from './paths';
import { likePattern, type RecordPage, type RecordQuery } from './query';
import type { CallRecord, CallRecordSummary } from './types';

/** Migrations, in order; each runs once, inside one transaction with the version bump. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE calls (
     call_id        text PRIMARY KEY,
     instance_id    text,
     status         text NOT NULL,
     direction      text NOT NULL,
     from_uri       text NOT NULL,
     to_uri         text NOT NULL,
     started_at     timestamptz NOT NULL,
     answered_at    timestamptz,
     ended_at       timestamptz,
     duration_ms    bigint,
     end_reason     text,
     recording_path text,
     record         jsonb NOT NULL,
     updated_at     timestamptz NOT NULL
   );
   CREATE INDEX calls_started_at ON calls (started_at DESC);
   CREATE INDEX calls_status ON calls (status) WHERE status = 'in_progress';`,
];

/** Arbitrary constant: the advisory lock that serialises migrations across instances. */
const MIGRATION_LOCK = 0x51_9a_17;

export interface PostgresRecordsOptions {
  /** `postgres://user:password@host:port/db` (a secret: never logged). */
  url: string;
  /** Give up connecting after this long, ms (default 5000). */
  connectTimeoutMs?: number;
  /** Give up on one statement after this long, ms (default 10 000). */
  statementTimeoutMs?: number;
  /** Most connections per instance (default 4). */
  maxConnections?: number;
  /** records.dir: recordings stay there, and their path goes into the row. */
  recordsDir: string;
}

export class PostgresRecords {
  readonly #pool: Pool;
  readonly #dir: string;
  #closed = false;

  constructor(opts: PostgresRecordsOptions) {
    this.#dir = opts.recordsDir;
    const cfg: PoolConfig = {
      connectionString: opts.url,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
      query_timeout: opts.statementTimeoutMs ?? 10_000,
      max: opts.maxConnections ?? 4,
      idleTimeoutMillis: 30_000,
      application_name: 'sip-ai-agent',
    };
    this.#pool = new Pool(cfg);
    // A connection that dies while idle (the server restarted) is dropped by the pool; without a
    // listener the error would be thrown at the process.
    this.#pool.on('error', () => undefined);
  }

  /** Create or bring the schema up to date. Rejects when the database cannot be reached. */
  async migrate(): Promise<{ from: number; to: number }> {
    const c = await this.#pool.connect();
    try {
      await c.query('BEGIN');
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query('CREATE TABLE IF NOT EXISTS sip_ai_agent_schema (version integer NOT NULL)');
      const r = await c.query<{ version: number }>('SELECT version FROM sip_ai_agent_schema');
      let from = r.rows[0]?.version ?? 0;
      if (r.rows.length === 0) await c.query('INSERT INTO sip_ai_agent_schema (version) VALUES (0)');
      if (from > MIGRATIONS.length) {
        throw new Error(`the database schema is version ${from}, newer than this agent knows (${MIGRATIONS.length}): upgrade the agent`);
      }
      const start = from;
      for (; from < MIGRATIONS.length; from++) await c.query(MIGRATIONS[from]!);
      await c.query('UPDATE sip_ai_agent_schema SET version = $1', [from]);
      await c.query('COMMIT');
      return { from: start, to: from };
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  /** Write a record as it stands (insert, or update an older version of it). */
  async upsert(rec: CallRecord): Promise<void> {
    await this.#pool.query(
      `INSERT INTO calls (call_id, instance_id, status, direction, from_uri, to_uri, started_at, answered_at, ended_at,
                          duration_ms, end_reason, recording_path, record, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
       ON CONFLICT (call_id) DO UPDATE SET
         instance_id = EXCLUDED.instance_id, status = EXCLUDED.status, answered_at = EXCLUDED.answered_at,
         ended_at = EXCLUDED.ended_at, duration_ms = EXCLUDED.duration_ms, end_reason = EXCLUDED.end_reason,
         recording_path = EXCLUDED.recording_path, record = EXCLUDED.record, updated_at = EXCLUDED.updated_at
       WHERE calls.updated_at <= EXCLUDED.updated_at`,
      [
        rec.callId,
        rec.instanceId,
        rec.status,
        rec.direction,
        rec.from,
        rec.to,
        rec.startedAt,
        rec.answeredAt,
        rec.endedAt,
        rec.durationMs,
        rec.endReason,
        rec.recording ? join(this.#dir, dayDirName(Date.parse(rec.startedAt)), rec.recording.file) : null,
        JSON.stringify(rec),
        rec.updatedAt,
      ],
    );
  }

  /** One call's record, from any instance. */
  async get(callId: string): Promise<CallRecord | undefined> {
    const r = await this.#pool.query<{ record: CallRecord }>('SELECT record FROM calls WHERE call_id = $1', [callId]);
    return r.rows[0]?.record;
  }

  /** The `n` calls that started last, from every instance, without transcripts. */
  async listRecent(n: number): Promise<CallRecordSummary[]> {
    const r = await this.#pool.query<{ record: CallRecord; lines: number }>(
      `SELECT record - 'transcript' AS record, COALESCE(jsonb_array_length(record->'transcript'), 0) AS lines
         FROM calls ORDER BY started_at DESC LIMIT $1`,
      [Math.max(0, Math.min(1000, Math.floor(n)))],
    );
    return r.rows.map((row) => ({ ...row.record, transcriptLines: Number(row.lines) }));
  }

  /** Records of every instance matching a history query, newest first, a page at a time. */
  async search(q: RecordQuery): Promise<RecordPage> {
    const r = await this.#pool.query<{ record: CallRecord; lines: number }>(
      `SELECT record - 'transcript' AS record, COALESCE(jsonb_array_length(record->'transcript'), 0) AS lines
         FROM calls
        WHERE ($1::timestamptz IS NULL OR started_at >= $1)
          AND ($2::timestamptz IS NULL OR started_at < $2)
          AND ($3::text IS NULL OR from_uri ILIKE $3 ESCAPE '\\' OR to_uri ILIKE $3 ESCAPE '\\')
          AND ($4::text[] IS NULL OR end_reason = ANY($4))
          AND ($5::bigint IS NULL OR duration_ms >= $5)
          AND ($6::bigint IS NULL OR duration_ms <= $6)
          AND ($7::text IS NULL OR (jsonb_typeof(record->'transcript') = 'array' AND EXISTS (
                SELECT 1 FROM jsonb_array_elements(record->'transcript') AS line WHERE line->>'text' ILIKE $7 ESCAPE '\\')))
        ORDER BY started_at DESC, call_id
        LIMIT $8 OFFSET $9`,
      [
        q.since?.toISOString() ?? null,
        q.until?.toISOString() ?? null,
        q.caller ? likePattern(q.caller) : null,
        q.outcomes ? [...q.outcomes] : null,
        q.minDurationMs ?? null,
        q.maxDurationMs ?? null,
        q.text ? likePattern(q.text) : null,
        q.limit + 1,
        q.offset,
      ],
    );
    const rows = r.rows.slice(0, q.limit);
    return {
      records: rows.map((row) => ({ ...row.record, transcriptLines: Number(row.lines) })),
      next: r.rows.length > q.limit ? q.offset + q.limit : null,
      complete: true,
    };
  }

  get closed(): boolean {
    return this.#closed;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }
}

/**
 * The admin token of a daemon with no `admin.token`: generated at every start and written where
 * only the daemon's user can read it (`<records.dir>/.admin-token`, mode 0600, in a directory of
 * mode 0750). Call transcripts and call control always need a token; with this one, the CLI of a
 * user who may read the records (root, the service user) finds it by itself, and every other local
 * user is locked out. /healthz and /metrics stay open on loopback.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RECORD_DIR_MODE, writeFileAtomic } from '../records/atomic';

/** Where the generated token of a daemon with records in `recordsDir` lives. */
export function localTokenPath(recordsDir: string): string {
  return join(recordsDir, '.admin-token');
}

/** Generate a token and write it (0600, atomically); returns it. Throws when the file cannot be written. */
export async function writeLocalToken(recordsDir: string): Promise<string> {
  const token = randomBytes(24).toString('base64url');
  await fsp.mkdir(recordsDir, { recursive: true, mode: RECORD_DIR_MODE });
  await writeFileAtomic(localTokenPath(recordsDir), `${token}\n`, 0o600);
  return token;
}

/** The generated token, when this user may read it. */
export function readLocalToken(recordsDir: string): string | undefined {
  try {
    const t = readFileSync(localTokenPath(recordsDir), 'utf8').trim();
    return t || undefined;
  } catch {
    return undefined;
  }
}

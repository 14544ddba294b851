/**
 * Crash-safe file replacement: write a temporary file in the same directory, fsync it, rename it over
 * the target and fsync the directory. A reader (or a crash) sees the old file or the new one, never a
 * torn one.
 */
import { promises as fsp } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Mode of record files: readable by the service group, not by everyone (they hold phone numbers). */
export const RECORD_FILE_MODE = 0o640;
/** Mode of record directories. */
export const RECORD_DIR_MODE = 0o750;

/** Suffix of temporary files; anything ending so is a leftover of an interrupted write. */
export const TMP_SUFFIX = '.tmp';

let seq = 0;

/** The temporary name used for `path`: hidden, in the same directory, unique per process and write. */
export function tmpPathFor(path: string): string {
  seq = (seq + 1) % Number.MAX_SAFE_INTEGER;
  return join(dirname(path), `.${basename(path)}.${process.pid}.${seq}${TMP_SUFFIX}`);
}

/**
 * Replace `path` atomically with `data`.
 * @throws the file system error (ENOSPC, EACCES...) after removing the temporary file; the old
 * content of `path`, if any, is untouched.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = RECORD_FILE_MODE): Promise<void> {
  const tmp = tmpPathFor(path);
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, 'wx', mode);
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, path);
  } catch (err) {
    if (fh) await fh.close().catch(() => undefined);
    await fsp.unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncDir(dirname(path));
}

/** fsync a directory so a rename in it survives a power loss (best effort: some file systems refuse). */
export async function syncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch {
    // EISDIR/EINVAL/EPERM on file systems that cannot fsync a directory; the rename itself is done.
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

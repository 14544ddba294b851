/**
 * The operator console's built files (npm run build:console writes them to dist/console/), served
 * from memory: the directory is read once, only regular files of known types directly inside it,
 * so a request path is only ever a key looked up in a map and can never name another file.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Content types of the files the console is built of; any other file is not served. */
const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** Most bytes of console files loaded (the built console is far smaller). */
const MAX_TOTAL_BYTES = 16 * 1024 * 1024;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** Content-Security-Policy of the console pages: nothing inline, nothing from elsewhere, no framing. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "media-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** One built file. */
export interface ConsoleAsset {
  body: Buffer;
  contentType: string;
  etag: string;
}

/** Where `npm run build:console` puts the console: `<package root>/dist/console`. */
export function defaultConsoleDir(): string {
  // From src/admin/console (ts-jest) or dist/src/admin/console (compiled), find the package root.
  for (const up of ['../../..', '../../../..']) {
    const root = resolve(__dirname, up);
    if (existsSync(join(root, 'package.json')) && existsSync(join(root, 'src', 'admin'))) return join(root, 'dist', 'console');
  }
  return resolve(__dirname, '../../../console');
}

/** Load the console files of `dir` (empty map when it is missing: the console is not built). */
export function loadConsoleAssets(dir: string): Map<string, ConsoleAsset> {
  const out = new Map<string, ConsoleAsset>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  let total = 0;
  for (const name of names.sort()) {
    const ext = name.slice(name.lastIndexOf('.'));
    const type = TYPES[ext];
    if (!type || !NAME_RE.test(name)) continue;
    const path = join(dir, name);
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st?.isFile()) continue;
    total += st.size;
    if (total > MAX_TOTAL_BYTES) break;
    const body = readFileSync(path);
    out.set(name, { body, contentType: type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return out;
}

/**
 * The asset a path under /console/ names: `''` is index.html; anything with a slash, a dot-dot, or
 * not in the map is undefined (404).
 */
export function consoleAsset(assets: ReadonlyMap<string, ConsoleAsset>, rest: string): ConsoleAsset | undefined {
  const name = rest === '' ? 'index.html' : rest;
  if (!NAME_RE.test(name)) return undefined;
  return assets.get(name);
}

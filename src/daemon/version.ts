/** The package version (from package.json), for --version, /status and the User-Agent. */
import * as fs from 'node:fs';
import * as path from 'node:path';

function readVersion(): string {
  for (const up of ['../..', '../../..']) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, up, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'sip-ai-agent' && pkg.version) return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return '0.0.0';
}

/** sip-ai-agent's version. */
export const VERSION = readVersion();

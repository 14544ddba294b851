#!/usr/bin/env node
// Entry point of the `sip-ai-agent` command (compiled TypeScript in dist/).
'use strict';
const path = require('node:path');
const main = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');
try {
  require.resolve(main);
} catch {
  process.stderr.write("sip-ai-agent is not built: run 'npm run setup' in " + path.join(__dirname, '..') + '\n');
  process.exit(1);
}
require(main).main(process.argv).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`sip-ai-agent: ${err && err.message ? err.message : String(err)}\n`);
    process.exit(1);
  },
);

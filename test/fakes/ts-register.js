/**
 * Minimal require hook so the fake's CLI runs straight from TypeScript without a build step:
 *   node -r ./test/fakes/ts-register.js test/fakes/fake-realtime-cli.ts --port 0
 * Transpile-only (no type check), CommonJS, using the project's own `typescript` package.
 */
'use strict';
const fs = require('node:fs');
const ts = require('typescript');

require.extensions['.ts'] = function compileTs(module, filename) {
  const source = fs.readFileSync(filename, 'utf8');
  const out = ts.transpileModule(source, {
    fileName: filename,
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      esModuleInterop: true,
      sourceMap: false,
    },
  });
  module._compile(out.outputText, filename);
};

#!/usr/bin/env bash
# The test command (npm test): set everything up (idempotent), type-check, then run the unit
# tests and the integration/e2e tests against real SIP peers on loopback. Ends with one summary
# line: "tests: N passed, N failed".
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
bash scripts/setup.sh
# Asterisk, the PBX test peer (built once, cached outside the clone).
bash scripts/build-asterisk.sh >/dev/null
results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT
status=0
log "unit tests"
npx --no-install jest --selectProjects unit --ci --json --outputFile="$results/unit.json" "$@" || status=1
log "integration and end-to-end tests (real SIP peers, one at a time)"
npx --no-install jest --selectProjects integration e2e --ci --maxWorkers=1 --json --outputFile="$results/e2e.json" "$@" || status=1
node -e '
  let passed = 0, failed = 0;
  for (const f of process.argv.slice(1)) {
    try { const r = require(f); passed += r.numPassedTests; failed += r.numFailedTests + (r.numRuntimeErrorTestSuites || 0); }
    catch { failed += 1; }
  }
  console.log(`tests: ${passed} passed, ${failed} failed`);
' "$results/unit.json" "$results/e2e.json"
exit $status

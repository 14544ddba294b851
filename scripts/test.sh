#!/usr/bin/env bash
# The test command (npm test): set everything up (idempotent), type-check, then run the unit
# tests and the integration/e2e tests against real SIP peers on loopback.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
bash scripts/setup.sh
log "unit tests"
npx --no-install jest --selectProjects unit --ci "$@"
log "integration and end-to-end tests (real SIP peers, one at a time)"
npx --no-install jest --selectProjects integration e2e --ci --maxWorkers=1 "$@"

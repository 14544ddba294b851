#!/usr/bin/env bash
# Everything a fresh clone needs, idempotent: Debian packages (as root), npm packages, pjproject
# (fetched from Debian's source package and built static), the addon, the TypeScript build and the
# console.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
t0=$(date +%s)
bash scripts/install-debian-deps.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages"
  npm ci --no-audit --no-fund >&2
fi
bash scripts/fetch-pjproject.sh
bash scripts/build-pjproject.sh
if [ ! -f build/Release/sip_ai_agent.node ] || [ -n "$(find native CMakeLists.txt "$PJ_DIR/.sip-ai-agent-build" -newer build/Release/sip_ai_agent.node 2>/dev/null | head -n1)" ]; then
  bash scripts/build-addon.sh
fi
npx --no-install tsc -p tsconfig.json
# The operator console the admin API serves at /console/ (bundled into dist/console).
node console/build.mjs >&2
log "setup done in $(( $(date +%s) - t0 )) s"

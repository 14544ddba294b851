#!/usr/bin/env bash
# Build the Node-API addon with cmake-js (Node-API headers from node-api-headers, no download).
# Output: build/Release/sip_ai_agent.node
. "$(dirname "$0")/lib.sh"
[ -f "$PJ_DIR/.sip-ai-agent-build" ] || die "pjproject is not built: run scripts/build-pjproject.sh"
cd "$ROOT"
start=$(date +%s)
npx --no-install cmake-js compile --CDPJ_ROOT="$PJ_DIR" ${CMAKE_JS_FLAGS:-} >&2
log "addon built in $(( $(date +%s) - start )) s: build/Release/sip_ai_agent.node"

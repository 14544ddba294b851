#!/usr/bin/env bash
# npm start: set everything up (idempotent), run the daemon with examples/demo.yaml (echo backend,
# calls on sip:agent@127.0.0.1:5070), place one scripted call from the built-in test caller, print
# what happened and the call record. The daemon then keeps taking calls until Ctrl-C (when run
# from a terminal); without a terminal, or with SIP_AI_AGENT_DEMO_ONCE=1, it stops after the call.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
bash scripts/setup.sh
CONFIG="${SIP_AI_AGENT_CONFIG:-examples/demo.yaml}"
if [ -n "${OPENAI_API_KEY:-}" ]; then export SIP_AI_AGENT_PROVIDER="${SIP_AI_AGENT_PROVIDER:-openai}"; fi
node bin/sip-ai-agent.js --config "$CONFIG" --check
log "starting the daemon (ai.provider: ${SIP_AI_AGENT_PROVIDER:-echo}); logs: .state/demo-daemon.log"
mkdir -p .state
node bin/sip-ai-agent.js --config "$CONFIG" > .state/demo-daemon.log 2>&1 &
daemon=$!
stop_daemon() { kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null; }
trap stop_daemon EXIT
for _ in $(seq 1 100); do
  if node -e "fetch('http://127.0.0.1:8089/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" 2>/dev/null; then break; fi
  kill -0 "$daemon" 2>/dev/null || { tail -20 .state/demo-daemon.log >&2; die "the daemon exited during start-up"; }
  sleep 0.1
done
log "placing a scripted test call"
node bin/sip-ai-agent.js --config "$CONFIG" test-call || status=$?
sleep 1
record="$(ls -t .state/records/*/*.json 2>/dev/null | head -n1)"
if [ -n "$record" ]; then
  echo "call record: $record"
  node -e 'const r=require(require("path").resolve(process.argv[1])); console.log(`  ${r.direction} call from ${r.from}, ${(r.durationMs/1000).toFixed(1)} s, ended: ${r.endReason} (SIP ${r.sipStatus}), ${r.transcript ? r.transcript.length : 0} transcript lines`)' "$record"
  ls "${record%.json}.wav" 2>/dev/null | sed 's/^/  recording: /'
fi
[ "${status:-0}" = 0 ] || die "the test call failed"
if [ -t 0 ] && [ -z "${SIP_AI_AGENT_DEMO_ONCE:-}" ]; then
  log "the agent keeps taking calls on sip:agent@127.0.0.1:5070 (admin API http://127.0.0.1:8089); Ctrl-C to stop"
  wait "$daemon"
fi

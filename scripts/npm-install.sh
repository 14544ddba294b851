#!/usr/bin/env bash
# npm's install hook. Without it npm would run `node-gyp rebuild` (binding.gyp is at the top) before
# pjproject exists. The addon is built by scripts/setup.sh (npm run setup, npm test, npm start).
if [ ! -f build/Release/sip_ai_agent.node ]; then
  echo "[sip-ai-agent] the native addon is built by 'npm run setup' (it fetches and builds pjproject first)" >&2
fi
exit 0

#!/usr/bin/env bash
# Build the addon with node-gyp (binding.gyp) in a scratch copy and require() it: proves the
# node-gyp path still matches the CMake one. Uses Node's own headers (no download).
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
gyp="$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$gyp" ] || gyp="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$gyp" ] || die "node-gyp (bundled with npm) not found"
nodedir="$(dirname "$(dirname "$(command -v node)")")"
[ -f "$nodedir/include/node/node_api.h" ] || die "Node's headers are missing at $nodedir/include/node"
scratch="$(mktemp -d)"
trap '[ -n "${KEEP_SCRATCH:-}" ] || rm -rf "$scratch"' EXIT
cp -r binding.gyp native scripts "$scratch/"
ln -s "$ROOT/node_modules" "$scratch/node_modules"
PJ_BUILD_DIR="$PJ_DIR" node "$gyp" rebuild --directory="$scratch" --nodedir="$nodedir" -j "$(nproc)" > "$scratch/gyp.log" 2>&1 \
  || { tail -30 "$scratch/gyp.log" >&2; die "node-gyp build failed"; }
node -e "const a=require(process.argv[1]); if(!a.UserAgent||!a.pjVersion) process.exit(1); console.error('[check-node-gyp.sh] node-gyp build loads, pjproject '+a.pjVersion)" "$scratch/build/Release/sip_ai_agent.node"

#!/usr/bin/env bash
# npm run bench: every benchmark in bench/, each printing its figures (see docs/BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
npx --no-install tsc -p tsconfig.json
echo "== resampler (ns per sample, 60 s of signal in 20 ms frames)"
node dist/bench/resampler.js
echo "== resampler vs speexdsp q3/q5/q10 (same input files; needs cc and libspeexdsp-dev)"
node dist/bench/resampler-vs-speexdsp.js
node dist/bench/capacity.js  # capacity: N concurrent calls, daemon vs bare pjsua (~10 min, see bench/results/capacity.md)

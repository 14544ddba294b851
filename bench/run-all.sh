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
echo "== flood: INVITEs at 10x capacity from a stranger and from the admitted source while calls run (~3 min)"
node dist/bench/flood.js --calls 10 --flood-s 60 --factor 10 --after-s 60
echo "== soak: 10,000 short calls; RSS, open fds and threads (~4 min)"
node dist/bench/soak.js --calls 10000 --concurrency 10

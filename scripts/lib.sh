# Shared helpers for the build scripts (sourced, not executed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=pjproject.env
. "$ROOT/scripts/pjproject.env"
PJ_DIR="${PJPROJECT_SRC:-$ROOT/third_party/pjproject}"
# pjproject's target triple (config.guess), read from the configured tree; library and app names carry it.
pj_target() { sed -n 's/^export TARGET_NAME := //p' "$PJ_DIR/build.mak" 2>/dev/null | head -n1; }
log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

# Shared helpers for the build scripts (sourced, not executed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=pjproject.env
. "$ROOT/scripts/pjproject.env"
# The pjproject source tree: the submodule path, or a tree of the user's own.
PJ_SRC="${PJPROJECT_SRC:-$ROOT/third_party/pjproject}"
# Heavy builds (pjproject, the Asterisk test peer) live outside the clone, keyed by version and
# configuration, so a machine that has built them once skips them.
CACHE_DIR="${SIP_AI_AGENT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sip-ai-agent}"
# The configured, built pjproject tree the addon links against: a link into CACHE_DIR.
PJ_DIR="${PJ_BUILD_DIR:-$ROOT/third_party/.build/pjproject}"
# pjproject's target triple (config.guess), read from the configured tree; library and app names carry it.
pj_target() { sed -n 's/^export TARGET_NAME := //p' "$PJ_DIR/build.mak" 2>/dev/null | head -n1; }
log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
# A checksum of a directory's files and symlinks (content and relative path), independent of
# timestamps, owners and the archive it came from.
tree_checksum() {
  (cd "$1" && {
    find . -type f ! -name '.sip-ai-agent-*' ! -path './.git/*' ! -name .git -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
    find . -type l ! -path './.git/*' -printf 'link %l  %p\n' | LC_ALL=C sort
  }) | sha256sum | cut -d' ' -f1
}

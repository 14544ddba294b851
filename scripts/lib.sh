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

# Install the named Debian packages that are missing (as root), or die naming them and the command
# to run. Returns 0 at once when all are installed.
ensure_debian_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  is_root || die "missing Debian packages: ${missing[*]}. Install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}"
  log "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
    || die "apt-get install ${missing[*]} failed"
}

# Download Debian $PJ_DEB_SUITE's newest source package $1 into $CACHE_DIR/debian-source/$1 and
# print its version. apt runs on a private source list and state under $CACHE_DIR/apt: nothing is
# written under /etc/apt, and the deb-src entries are derived from this machine's own Debian
# archive entries (same mirror and keyring; third-party repositories often publish no sources), so
# no host name lives in this repository. apt verifies every file against the signed index.
deb_source_fetch() {
  local pkg="$1" apt_dir="$CACHE_DIR/apt" src_dir="$CACHE_DIR/debian-source/$1" version f
  command -v dpkg-source >/dev/null || { log "dpkg-source is missing: install the Debian package dpkg-dev (scripts/install-debian-deps.sh does it as root)"; return 1; }
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$src_dir"
  {
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -e "$f" ] || continue
      awk -v suite="$PJ_DEB_SUITE" 'BEGIN{RS=""}
        /(^|\n)Types:[ \t]*([^\n]* )?deb([ \t]|\n|$)/ {
          uris=""; key="";
          n=split($0, L, "\n");
          for (i=1;i<=n;i++) {
            if (L[i] ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", L[i]); uris=L[i] }
            if (L[i] ~ /^Signed-By:/) { sub(/^Signed-By:[ \t]*/, "", L[i]); key=L[i] }
          }
          m=split(uris, U, /[ \t]+/);
          for (j=1;j<=m;j++) if (U[j] ~ /\/debian\/?$/) {
            opt = key != "" && key !~ /^-----/ ? "[signed-by=" key "] " : "";
            print "deb-src " opt U[j] " " suite " main"
          }
        }' "$f"
    done
    { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } \
      | awk -v suite="$PJ_DEB_SUITE" '$1=="deb" { opt=""; i=2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) { opt=opt $i " "; i++ } opt=opt $i " "; i++ }
          if ($i ~ /\/debian\/?$/) print "deb-src " opt $i " " suite " main" }'
  } | sort -u > "$apt_dir/sources.list"
  [ -s "$apt_dir/sources.list" ] || { log "no Debian archive entry (a URI ending in /debian) in this machine's apt sources to derive a deb-src entry from"; return 1; }
  local opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/none"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "APT::Sandbox::User=$(id -un)"
    -o "Acquire::Languages=none" -q)
  log "reading the $PJ_DEB_SUITE source index (private apt lists in $apt_dir)"
  apt-get "${opts[@]}" update >&2 || { log "apt-get update on the private $PJ_DEB_SUITE source list failed"; return 1; }
  version="$(apt-cache "${opts[@]}" showsrc "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n1)"
  [ -n "$version" ] || { log "Debian $PJ_DEB_SUITE has no source package $pkg"; return 1; }
  log "downloading $pkg $version (apt verifies it against the signed index)"
  (cd "$src_dir" && apt-get "${opts[@]}" source --download-only "$pkg=$version" >&2) || { log "apt-get source $pkg=$version failed"; return 1; }
  echo "$version"
}

#!/usr/bin/env bash
# Fill third_party/pjproject with the pinned pjproject release (scripts/pjproject.env).
#  1. PJPROJECT_SRC=/path: your own tree; nothing is fetched.
#  2. The git submodule, when populated (git clone --recursive, or git submodule update --init):
#     checked to be at the pinned commit.
#  3. Otherwise the same release from Debian unstable's `asterisk` source package (component
#     tarball orig-Xpjproject), fetched by apt with a private source list and state directory under
#     the cache (nothing is written under /etc/apt; the mirrors come from the machine's own apt
#     entries, so no host name lives in this repository), verified by a checksum of the extracted
#     tree. Idempotent: a stamp naming the version and tree checksum skips the work.
. "$(dirname "$0")/lib.sh"

ALTERNATIVES="Alternatives: 'git submodule update --init third_party/pjproject' (needs GitHub), or PJPROJECT_SRC=/path/to/pjproject-$PJ_VERSION"

if [ -n "${PJPROJECT_SRC:-}" ]; then
  [ -f "$PJPROJECT_SRC/version.mak" ] || die "PJPROJECT_SRC=$PJPROJECT_SRC is not a pjproject tree (no version.mak)"
  grep -q "PJ_VERSION_MINOR *:= *${PJ_VERSION#*.}\$" "$PJPROJECT_SRC/version.mak" \
    || log "warning: PJPROJECT_SRC=$PJPROJECT_SRC is not pjproject $PJ_VERSION; the agent is tested on $PJ_VERSION only"
  log "using the pjproject tree at PJPROJECT_SRC=$PJPROJECT_SRC"
  exit 0
fi

DEST="$ROOT/third_party/pjproject"
STAMP="$DEST/.sip-ai-agent-source"
WANT="debian $PJ_DEB_SOURCE_PACKAGE $PJ_DEB_COMPONENT $PJ_VERSION $PJ_TREE_SHA256"

# 2. A populated submodule.
if [ -e "$DEST/.git" ] && [ -f "$DEST/version.mak" ]; then
  head="$(git -C "$DEST" rev-parse HEAD 2>/dev/null || true)"
  [ "$head" = "$PJ_COMMIT" ] || die "the submodule third_party/pjproject is at ${head:-an unknown commit}, not the pinned $PJ_VERSION release $PJ_COMMIT: run 'git submodule update --init third_party/pjproject'"
  log "pjproject $PJ_VERSION from the git submodule ($PJ_COMMIT)"
  exit 0
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  log "pjproject $PJ_VERSION source already in place ($DEST)"
  exit 0
fi
if [ -n "$(ls -A "$DEST" 2>/dev/null)" ] && [ ! -f "$STAMP" ]; then
  die "$DEST holds files this script did not put there and is not the pinned submodule. Remove them, or keep them and set PJPROJECT_SRC=$DEST. $ALTERNATIVES"
fi

# 3. Debian's source package, with apt on private lists.
command -v apt-get >/dev/null || die "apt-get is missing: this route needs Debian's apt. $ALTERNATIVES"
command -v dpkg-source >/dev/null || die "dpkg-source is missing: install the Debian package dpkg-dev (scripts/install-debian-deps.sh does it as root). $ALTERNATIVES"
APT_DIR="$CACHE_DIR/apt"
SRC_DIR="$CACHE_DIR/debian-source/$PJ_DEB_SOURCE_PACKAGE"
mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$SRC_DIR"
# deb-src entries for the suite, derived from the machine's Debian archive entries (same mirror and
# keyring; third-party repositories often publish no sources).
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
} | sort -u > "$APT_DIR/sources.list"
[ -s "$APT_DIR/sources.list" ] || die "no Debian archive entry (a URI ending in /debian) in this machine's apt sources to derive a deb-src entry from. $ALTERNATIVES"
APT_OPTS=(-o "Dir::Etc::SourceList=$APT_DIR/sources.list" -o "Dir::Etc::SourceParts=$APT_DIR/none"
  -o "Dir::State::Lists=$APT_DIR/lists" -o "Dir::Cache=$APT_DIR/cache" -o "APT::Sandbox::User=$(id -un)"
  -o "Acquire::Languages=none" -q)
log "reading the $PJ_DEB_SUITE source index (private apt lists in $APT_DIR)"
apt-get "${APT_OPTS[@]}" update >&2 || die "apt-get update on the private $PJ_DEB_SUITE source list failed. $ALTERNATIVES"
version="$(apt-cache "${APT_OPTS[@]}" showsrc "$PJ_DEB_SOURCE_PACKAGE" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n1)"
[ -n "$version" ] || die "Debian $PJ_DEB_SUITE has no source package $PJ_DEB_SOURCE_PACKAGE. $ALTERNATIVES"
log "downloading $PJ_DEB_SOURCE_PACKAGE $version (apt verifies it against the signed index)"
(cd "$SRC_DIR" && apt-get "${APT_OPTS[@]}" source --download-only "$PJ_DEB_SOURCE_PACKAGE=$version" >&2) \
  || die "apt-get source $PJ_DEB_SOURCE_PACKAGE=$version failed. $ALTERNATIVES"
upstream="${version#*:}"; upstream="${upstream%-*}"  # no epoch, no Debian revision: the file names
tarball="$(ls "$SRC_DIR"/"${PJ_DEB_SOURCE_PACKAGE}_${upstream}".orig-"$PJ_DEB_COMPONENT".tar.* 2>/dev/null | head -n1)"
[ -n "$tarball" ] || die "$PJ_DEB_SOURCE_PACKAGE $version has no orig-$PJ_DEB_COMPONENT component tarball. $ALTERNATIVES"

scratch="$(mktemp -d "$CACHE_DIR/unpack.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
tar -xf "$tarball" -C "$scratch"
top="$(dirname "$(find "$scratch" -maxdepth 2 -name version.mak | head -n1)")"
[ -f "$top/version.mak" ] || die "$(basename "$tarball") holds no pjproject tree (no version.mak). $ALTERNATIVES"
got_version="$(sed -n 's/^export PJ_VERSION_MAJOR *:= *//p' "$top/version.mak").$(sed -n 's/^export PJ_VERSION_MINOR *:= *//p' "$top/version.mak")"
[ "$got_version" = "$PJ_VERSION" ] || die "$(basename "$tarball") carries pjproject $got_version, not the pinned $PJ_VERSION. $ALTERNATIVES"
sum="$(tree_checksum "$top")"
[ "$sum" = "$PJ_TREE_SHA256" ] || die "the pjproject $PJ_VERSION tree in $(basename "$tarball") has checksum $sum, not the pinned $PJ_TREE_SHA256 (scripts/pjproject.env). Refusing to build from an unexpected tree. $ALTERNATIVES"
mkdir -p "$DEST"
# Keep the directory itself (it is the submodule's path); replace its contents.
find "$DEST" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
(cd "$top" && tar -cf - .) | (cd "$DEST" && tar -xf -)
echo "$WANT" > "$STAMP"
log "pjproject $PJ_VERSION ($PJ_DEB_SOURCE_PACKAGE $version, orig-$PJ_DEB_COMPONENT, tree $sum) ready in $DEST"

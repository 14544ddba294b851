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
SRC_DIR="$CACHE_DIR/debian-source/$PJ_DEB_SOURCE_PACKAGE"
version="$(deb_source_fetch "$PJ_DEB_SOURCE_PACKAGE")" || die "could not fetch Debian's $PJ_DEB_SOURCE_PACKAGE source package. $ALTERNATIVES"
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

#!/usr/bin/env bash
# Build Asterisk, the PBX the end-to-end tests register the agent to, from Debian unstable's
# `asterisk` source package (the one scripts/fetch-pjproject.sh downloads for its pjproject
# component). Asterisk uses its bundled pjproject, made from that same component tarball, so no
# download happens at build time.
#
# Installed into a prefix under the cache, never system-wide: $CACHE_DIR/asterisk/<version>-<key>,
# the key covering the source version and this script's build options; a machine that has built a
# key once reuses it. third_party/.build/asterisk links to the installed prefix. As root the
# Debian build packages are installed; otherwise the missing ones are named with the command.
. "$(dirname "$0")/lib.sh"

BUILD_PKGS=(build-essential pkg-config dpkg-dev bzip2 patch libjansson-dev libxml2-dev libsqlite3-dev
  libedit-dev libssl-dev uuid-dev libncurses-dev)
CONFIGURE_FLAGS=(--with-pjproject-bundled --without-dahdi --without-pri --without-ss7)
# BUILD_NATIVE would tie the binaries to this CPU; the test framework (enabled by a Debian patch)
# only adds build time; sounds are downloads, which a build here must not attempt.
MENUSELECT_OPTS=(--disable BUILD_NATIVE --disable TEST_FRAMEWORK
  --disable-category MENUSELECT_CORE_SOUNDS --disable-category MENUSELECT_MOH
  --disable-category MENUSELECT_EXTRA_SOUNDS)
LINK="$ROOT/third_party/.build/asterisk"
SRC_DIR="$CACHE_DIR/debian-source/$PJ_DEB_SOURCE_PACKAGE"

dsc() { ls "$SRC_DIR"/"${PJ_DEB_SOURCE_PACKAGE}"_*.dsc 2>/dev/null | sort -V | tail -n1; }
# The same source package scripts/fetch-pjproject.sh takes pjproject from (already here after its
# Debian route; fetched now after a submodule or PJPROJECT_SRC route).
if [ -z "$(dsc)" ]; then
  deb_source_fetch "$PJ_DEB_SOURCE_PACKAGE" >/dev/null || die "could not fetch Debian's $PJ_DEB_SOURCE_PACKAGE source package"
fi
DSC="$(dsc)"
[ -n "$DSC" ] || die "no $PJ_DEB_SOURCE_PACKAGE source package (.dsc) in $SRC_DIR"
VERSION="$(sed -n 's/^Version: //p' "$DSC" | head -n1)"
[ -n "$VERSION" ] || die "$DSC names no Version"
# The upstream release for paths (no epoch: a colon would break rpaths and PATH-like variables).
UPSTREAM="${VERSION#*:}"; UPSTREAM="${UPSTREAM%%+*}"

KEY="$( { echo "$VERSION"; echo "${CONFIGURE_FLAGS[*]}"; echo "${MENUSELECT_OPTS[*]}"; } | sha256sum | cut -c1-16)"
PREFIX="$CACHE_DIR/asterisk/$UPSTREAM-$KEY"
STAMP="$PREFIX/.sip-ai-agent-build"

link_prefix() {
  mkdir -p "$(dirname "$LINK")"
  ln -sfn "$PREFIX" "$LINK"
  echo "$PREFIX"
}
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$KEY" ] && [ -x "$PREFIX/sbin/asterisk" ]; then
  log "Asterisk $VERSION already built for this configuration ($PREFIX)"
  link_prefix
  exit 0
fi

ensure_debian_packages "${BUILD_PKGS[@]}"

start=$(date +%s)
mkdir -p "$CACHE_DIR/asterisk"
WORK="$(mktemp -d "$CACHE_DIR/asterisk/build.XXXXXX")"
LOGFILE="$CACHE_DIR/asterisk/build-$UPSTREAM-$KEY.log"
trap 'rm -rf "$WORK"' EXIT
: > "$LOGFILE"
fail() { tail -n 40 "$LOGFILE" >&2; die "$1 (full log: $LOGFILE)"; }
step() { log "$1"; echo "=== $1" >> "$LOGFILE"; }

step "unpacking $(basename "$DSC") (with Debian's patches) in $WORK"
dpkg-source -x "$DSC" "$WORK/src" >> "$LOGFILE" 2>&1 || fail "dpkg-source -x failed"
cd "$WORK/src"
[ -f Xpjproject/version.mak ] || fail "the source package has no Xpjproject component"
pj_ver="$(sed -n 's/^export PJ_VERSION_MAJOR *:= *//p' Xpjproject/version.mak).$(sed -n 's/^export PJ_VERSION_MINOR *:= *//p' Xpjproject/version.mak)"
pj_rev="$(sed -n 's/^export PJ_VERSION_REV *:= *//p' Xpjproject/version.mak)"
pj_ver="$pj_ver${pj_rev:+.$pj_rev}"

# Asterisk's bundled-pjproject build takes pjproject-<version>.tar.bz2 from the externals cache
# and checks it against the md5 in its tree; Debian's rules make the same tarball this way.
EXTERNALS="$WORK/externals"
mkdir -p "$EXTERNALS"
ln -s ../src/Xpjproject "$EXTERNALS/pjproject-$pj_ver"
(cd "$EXTERNALS" && tar -chf - "pjproject-$pj_ver" | bzip2 --fast > "pjproject-$pj_ver.tar.bz2" \
  && rm "pjproject-$pj_ver") || fail "packing the bundled pjproject tarball failed"
(cd "$EXTERNALS" && md5sum "pjproject-$pj_ver.tar.bz2") > "third-party/pjproject/pjproject-$pj_ver.tar.bz2.md5"

rm -rf "$PREFIX"
step "configuring Asterisk $VERSION (bundled pjproject $pj_ver) for $PREFIX"
./configure "${CONFIGURE_FLAGS[@]}" --with-externals-cache="$EXTERNALS" --prefix="$PREFIX" \
  >> "$LOGFILE" 2>&1 || fail "configure failed"
{ make menuselect.makeopts && menuselect/menuselect "${MENUSELECT_OPTS[@]}" menuselect.makeopts; } \
  >> "$LOGFILE" 2>&1 || fail "menuselect failed"
JOBS="${JOBS:-$(nproc)}"
step "building with $JOBS jobs (log: $LOGFILE)"
make -j"$JOBS" >> "$LOGFILE" 2>&1 || fail "make failed"
step "installing into $PREFIX"
make install >> "$LOGFILE" 2>&1 || fail "make install failed"
[ -x "$PREFIX/sbin/asterisk" ] || fail "make install left no $PREFIX/sbin/asterisk"
[ -f "$PREFIX/lib/asterisk/modules/res_pjsip.so" ] || fail "res_pjsip was not built (bundled pjproject missing?)"
mv "$LOGFILE" "$PREFIX/build.log"
echo "$KEY" > "$STAMP"
log "Asterisk $VERSION built in $(( $(date +%s) - start )) s ($PREFIX)"
link_prefix

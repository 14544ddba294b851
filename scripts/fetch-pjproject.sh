#!/usr/bin/env bash
# Fetch the pinned pjproject 2.12.1 tree from Debian's `ring` source package into
# third_party/pjproject, with Debian's patches applied. Idempotent: a stamp naming the source
# version and checksum skips the work. PJPROJECT_SRC=/path makes this a no-op (bring your own tree).
. "$(dirname "$0")/lib.sh"

if [ -n "${PJPROJECT_SRC:-}" ]; then
  [ -f "$PJPROJECT_SRC/version.mak" ] || die "PJPROJECT_SRC=$PJPROJECT_SRC is not a pjproject tree (no version.mak)"
  log "using the pjproject tree at PJPROJECT_SRC=$PJPROJECT_SRC"
  exit 0
fi

STAMP="$PJ_DIR/.sip-ai-agent-source"
WANT="$PJ_DEB_SOURCE_PACKAGE $PJ_DEB_SOURCE_VERSION $PJ_DEB_ORIG_SHA256 $PJ_DEB_DEBIAN_SHA256"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  log "pjproject $PJ_VERSION source already in place ($PJ_DIR)"
  exit 0
fi

command -v dpkg-source >/dev/null || die "dpkg-source is missing: install the Debian package dpkg-dev (scripts/install-debian-deps.sh does it as root)"

# apt needs deb-src entries. Derive them from the machine's own deb entries (same mirrors, suites
# and keys), so no host name ever lives in this repository.
have_source() {
  local out
  out="$(apt-cache showsrc "$PJ_DEB_SOURCE_PACKAGE" 2>/dev/null || true)"
  grep -qxF "Version: $PJ_DEB_SOURCE_VERSION" <<<"$out"
}
if ! have_source; then
  SRC_LIST=/etc/apt/sources.list.d/sip-ai-agent-deb-src.sources
  if ! is_root; then
    die "apt has no source entry for $PJ_DEB_SOURCE_PACKAGE $PJ_DEB_SOURCE_VERSION. As root, run: bash scripts/install-debian-deps.sh (it adds deb-src entries derived from your apt sources), or set PJPROJECT_SRC to a pjproject $PJ_VERSION tree."
  fi
  log "adding deb-src entries derived from the existing apt sources ($SRC_LIST)"
  tmp="$(mktemp)"
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    [ "$f" = "$SRC_LIST" ] && continue
    # deb822: copy every stanza whose Types include deb, as deb-src.
    # Only Debian archive stanzas (URI path /debian or /debian-security): third-party repos often
    # publish no sources and would make apt-get update fail.
    awk 'BEGIN{RS="";ORS="\n\n"}
         /(^|\n)Types:[ \t]*([^\n]* )?deb([ \t]|\n|$)/ && /(^|\n)URIs:[^\n]*\/debian(-security)?\/?([ \t]|\n|$)/ {
           gsub(/Types:[^\n]*/, "Types: deb-src"); print }' "$f" >> "$tmp"
  done
  if [ -f /etc/apt/sources.list ] || ls /etc/apt/sources.list.d/*.list >/dev/null 2>&1; then
    lst="${SRC_LIST%.sources}.list"
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | grep -E '^[[:space:]]*deb[[:space:]]' | grep -E '/debian(-security)?/?[[:space:]]' \
      | sed -E 's/^[[:space:]]*deb[[:space:]]/deb-src /' > "$lst.tmp" || true
    if [ -s "$lst.tmp" ]; then mv "$lst.tmp" "$lst"; else rm -f "$lst.tmp"; fi
  fi
  if [ -s "$tmp" ]; then install -m 0644 "$tmp" "$SRC_LIST"; fi
  rm -f "$tmp"
  apt-get update -q >&2 || die "apt-get update failed"
  have_source || die "apt still has no source package $PJ_DEB_SOURCE_PACKAGE=$PJ_DEB_SOURCE_VERSION (is the Debian archive reachable, and is this Debian 12?)"
fi

WORK="$ROOT/third_party/.cache/ring"
mkdir -p "$WORK"
cd "$WORK"
if ! sha256sum -c --status <(printf '%s  %s\n%s  %s\n' "$PJ_DEB_ORIG_SHA256" "$PJ_DEB_ORIG_TARBALL" "$PJ_DEB_DEBIAN_SHA256" "$PJ_DEB_DEBIAN_TARBALL") 2>/dev/null; then
  log "downloading Debian source package $PJ_DEB_SOURCE_PACKAGE=$PJ_DEB_SOURCE_VERSION"
  rm -rf "$WORK"/*
  apt-get source --download-only -q "$PJ_DEB_SOURCE_PACKAGE=$PJ_DEB_SOURCE_VERSION" >&2 || die "apt-get source failed"
fi
for pair in "$PJ_DEB_ORIG_SHA256 $PJ_DEB_ORIG_TARBALL" "$PJ_DEB_DEBIAN_SHA256 $PJ_DEB_DEBIAN_TARBALL"; do
  set -- $pair
  got="$(sha256sum "$2" | cut -d' ' -f1)"
  [ "$got" = "$1" ] || die "checksum mismatch for $2: expected sha256 $1, got $got. Refusing to build from an unexpected source; delete $WORK and retry, or set PJPROJECT_SRC."
done
log "checksums verified; unpacking with Debian's patches"
rm -rf "$WORK/unpacked"
dpkg-source --no-check -x "$(ls ./*.dsc | head -n1)" "$WORK/unpacked" >&2 || die "dpkg-source -x failed"
[ -f "$WORK/unpacked/$PJ_SUBTREE/version.mak" ] || die "the source package has no pjproject tree at $PJ_SUBTREE"
grep -q "PJ_VERSION_MINOR  := 12" "$WORK/unpacked/$PJ_SUBTREE/version.mak" || die "unexpected pjproject version in $PJ_SUBTREE"

rm -rf "$PJ_DIR"
mkdir -p "$(dirname "$PJ_DIR")"
mv "$WORK/unpacked/$PJ_SUBTREE" "$PJ_DIR"
rm -rf "$WORK/unpacked"
echo "$WANT" > "$STAMP"
log "pjproject $PJ_VERSION ready in $PJ_DIR"

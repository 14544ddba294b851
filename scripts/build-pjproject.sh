#!/usr/bin/env bash
# Build pjproject static (-fPIC, -DNDEBUG), no video, no sound device, epoll ioqueue, with Debian's
# opus, speex/speexdsp (including the speex resampler), gsm, srtp2 and OpenSSL. Also builds the
# pjsua app (the tests' SIP caller).
#
# The build runs in a copy of the source outside the clone, under $CACHE_DIR/pjproject/, keyed on
# the source (commit or tree checksum), these flags and native/pj_config_site.h; a machine that has
# built a key once reuses it. third_party/.build/pjproject links to the build the addon uses.
. "$(dirname "$0")/lib.sh"

[ -f "$PJ_SRC/version.mak" ] || die "no pjproject tree at $PJ_SRC: run scripts/fetch-pjproject.sh first (or set PJPROJECT_SRC)"

CONFIGURE_FLAGS=(
  --disable-shared --enable-epoll
  --disable-video --disable-sound --disable-libyuv --disable-libwebrtc --disable-v4l2 --disable-ffmpeg
  --disable-sdl --disable-openh264 --disable-vpx --disable-opencore-amr --disable-silk --disable-bcg729
  --disable-lyra --disable-upnp --disable-ilbc-codec --disable-g7221-codec --disable-android-mediacodec
  --enable-speex-resample
  --with-external-speex --with-external-gsm --with-external-srtp --with-ssl=/usr
)
# Release build: NDEBUG turns pjproject's assert() off, so no remotely reachable assertion can
# abort the daemon (PJ_ASSERT_RETURN checks still return their error codes).
PJ_CFLAGS="-O2 -g -fPIC -DNDEBUG"
CONFIG_SITE="$ROOT/native/pj_config_site.h"

# What identifies the source: the submodule commit, the fetch stamp, or (a tree of the user's own)
# a checksum of its files.
if [ -e "$PJ_SRC/.git" ]; then source_id="git $(git -C "$PJ_SRC" rev-parse HEAD)"
elif [ -f "$PJ_SRC/.sip-ai-agent-source" ]; then source_id="$(cat "$PJ_SRC/.sip-ai-agent-source")"
else source_id="tree $(tree_checksum "$PJ_SRC")"; fi
KEY="$( { echo "$source_id"; echo "${CONFIGURE_FLAGS[*]}"; echo "$PJ_CFLAGS"; cat "$CONFIG_SITE"; } | sha256sum | cut -c1-16)"
BUILD="$CACHE_DIR/pjproject/$PJ_VERSION-$KEY"
STAMP="$BUILD/.sip-ai-agent-build"
target_of() { sed -n 's/^export TARGET_NAME := //p' "$1/build.mak" 2>/dev/null | head -n1; }

link_build() {
  mkdir -p "$(dirname "$PJ_DIR")"
  ln -sfn "$BUILD" "$PJ_DIR"
}
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$KEY" ] && [ -x "$BUILD/pjsip-apps/bin/pjsua-$(target_of "$BUILD")" ]; then
  link_build
  log "pjproject $PJ_VERSION already built for this configuration ($BUILD)"
  exit 0
fi

for h in opus/opus.h speex/speex.h speex/speexdsp_types.h speex/speex_resampler.h gsm.h srtp2/srtp.h openssl/ssl.h uuid/uuid.h; do
  [ -f "/usr/include/$h" ] || die "missing /usr/include/$h: install the Debian build packages (bash scripts/install-debian-deps.sh as root)"
done

start=$(date +%s)
rm -rf "$BUILD"
mkdir -p "$BUILD"
(cd "$PJ_SRC" && tar --exclude=./.git -cf - .) | (cd "$BUILD" && tar -xf -)
cd "$BUILD"
cp "$CONFIG_SITE" pjlib/include/pj/config_site.h
# Debian's repack drops the BDIMAD audio-device source (non-free); the makefile still names it.
# With no sound device configured it compiles to nothing, so an empty unit stands in for it.
bdimad=pjmedia/src/pjmedia-audiodev/bdimad_dev.c
[ -f "$bdimad" ] || echo '/* BDIMAD audio device: not part of this build. */' > "$bdimad"
log "configuring pjproject $PJ_VERSION in $BUILD"
CFLAGS="$PJ_CFLAGS" CXXFLAGS="$PJ_CFLAGS" ./aconfigure "${CONFIGURE_FLAGS[@]}" > build-configure.log 2>&1 \
  || { tail -30 build-configure.log >&2; die "configure failed (see $BUILD/build-configure.log)"; }
JOBS="${JOBS:-$(nproc)}"
log "building with $JOBS jobs (log: $BUILD/build-make.log)"
{ make dep && make -j"$JOBS" lib && make -j"$JOBS"; } > build-make.log 2>&1 \
  || { tail -40 build-make.log >&2; die "make failed (see $BUILD/build-make.log)"; }
[ -x "pjsip-apps/bin/pjsua-$(target_of "$BUILD")" ] || die "the pjsua app was not built"
echo "$KEY" > "$STAMP"
link_build
log "pjproject $PJ_VERSION built in $(( $(date +%s) - start )) s ($BUILD)"

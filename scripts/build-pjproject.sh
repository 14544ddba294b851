#!/usr/bin/env bash
# Build pjproject static (-fPIC), no video, no sound device, epoll ioqueue, with Debian's opus,
# speex/speexdsp, gsm, srtp2 and OpenSSL. Also builds the pjsua app (the tests' SIP caller).
# Idempotent: a stamp keyed on the source, these flags and native/pj_config_site.h skips a rebuild.
. "$(dirname "$0")/lib.sh"

[ -f "$PJ_DIR/version.mak" ] || die "no pjproject tree at $PJ_DIR: run scripts/fetch-pjproject.sh first (or set PJPROJECT_SRC)"

CONFIGURE_FLAGS=(
  --disable-shared --enable-epoll
  --disable-video --disable-sound --disable-libyuv --disable-libwebrtc --disable-v4l2 --disable-ffmpeg
  --disable-sdl --disable-openh264 --disable-vpx --disable-opencore-amr --disable-silk --disable-bcg729
  --disable-ilbc-codec --disable-g7221-codec --disable-android-mediacodec
  --with-external-speex --with-external-gsm --with-external-srtp --with-ssl=/usr
)
PJ_CFLAGS="-O2 -g -fPIC"
CONFIG_SITE="$ROOT/native/pj_config_site.h"
STAMP="$PJ_DIR/.sip-ai-agent-build"
KEY="$( { cat "$PJ_DIR/.sip-ai-agent-source" 2>/dev/null || echo "$PJ_DIR"; echo "${CONFIGURE_FLAGS[*]}"; echo "$PJ_CFLAGS"; cat "$CONFIG_SITE"; } | sha256sum | cut -d' ' -f1)"
pjsua_bin() { echo "$PJ_DIR/pjsip-apps/bin/pjsua-$(pj_target)"; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$KEY" ] && [ -x "$(pjsua_bin)" ]; then
  log "pjproject already built for this configuration (stamp $KEY)"
  exit 0
fi

for h in opus/opus.h speex/speex.h speex/speexdsp_types.h gsm.h srtp2/srtp.h openssl/ssl.h uuid/uuid.h; do
  [ -f "/usr/include/$h" ] || die "missing /usr/include/$h: install the Debian build packages (bash scripts/install-debian-deps.sh as root)"
done

cd "$PJ_DIR"
cp "$CONFIG_SITE" pjlib/include/pj/config_site.h
start=$(date +%s)
log "configuring pjproject $PJ_VERSION"
CFLAGS="$PJ_CFLAGS" CXXFLAGS="$PJ_CFLAGS" ./aconfigure "${CONFIGURE_FLAGS[@]}" > build-configure.log 2>&1 \
  || { tail -30 build-configure.log >&2; die "configure failed (see $PJ_DIR/build-configure.log)"; }
JOBS="${JOBS:-$(nproc)}"
log "building with $JOBS jobs (log: $PJ_DIR/build-make.log)"
{ make dep && make -j"$JOBS" lib && make -j"$JOBS"; } > build-make.log 2>&1 \
  || { tail -40 build-make.log >&2; die "make failed (see $PJ_DIR/build-make.log)"; }
[ -x "$(pjsua_bin)" ] || die "pjsua app was not built ($(pjsua_bin))"
echo "$KEY" > "$STAMP"
log "pjproject built in $(( $(date +%s) - start )) s"

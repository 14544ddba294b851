#!/usr/bin/env bash
# Prints pjproject paths for binding.gyp (node-gyp builds): `includes` or `libs`.
. "$(dirname "$0")/lib.sh"
t="$(pj_target)"
[ -n "$t" ] || die "pjproject at $PJ_DIR is not configured: run scripts/build-pjproject.sh"
case "${1:-}" in
  includes) for d in pjlib pjlib-util pjnath pjmedia pjsip; do echo "$PJ_DIR/$d/include"; done ;;
  libs)
    echo "-Wl,--start-group"
    for n in pjsip/lib/libpjsua2 pjsip/lib/libpjsua pjsip/lib/libpjsip-ua pjsip/lib/libpjsip-simple pjsip/lib/libpjsip \
      pjmedia/lib/libpjmedia-codec pjmedia/lib/libpjmedia pjmedia/lib/libpjmedia-videodev pjmedia/lib/libpjmedia-audiodev \
      pjnath/lib/libpjnath pjlib-util/lib/libpjlib-util third_party/lib/libresample pjlib/lib/libpj; do
      echo "$PJ_DIR/$n-$t.a"
    done
    echo "-Wl,--end-group"
    ;;
  *) die "usage: pj-gyp.sh includes|libs" ;;
esac

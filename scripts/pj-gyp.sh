#!/usr/bin/env bash
# Prints pjproject paths for binding.gyp (node-gyp builds): `includes` or `libs`.
. "$(dirname "$0")/lib.sh"
t="$(pj_target)"
[ -n "$t" ] || die "pjproject at $PJ_DIR is not built: run scripts/build-pjproject.sh"
case "${1:-}" in
  includes) for d in pjlib pjlib-util pjnath pjmedia pjsip; do echo "$PJ_DIR/$d/include"; done ;;
  libs)
    # Every static library of the build, as one group (order-independent).
    echo "-Wl,--start-group"
    for f in "$PJ_DIR"/*/lib/lib*-"$t".a "$PJ_DIR"/third_party/lib/lib*-"$t".a; do
      if [ -e "$f" ]; then echo "$f"; fi
    done
    echo "-Wl,--end-group"
    ;;
  *) die "usage: pj-gyp.sh includes|libs" ;;
esac

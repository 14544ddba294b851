#!/usr/bin/env bash
# Install the Debian packages needed to build pjproject and the addon, and the real SIP peers the
# tests use. As root it installs them; otherwise it lists what is missing and the command to run.
. "$(dirname "$0")/lib.sh"

BUILD_PKGS=(build-essential cmake pkg-config python3 dpkg-dev libopus-dev libspeex-dev libspeexdsp-dev libgsm1-dev
  libsrtp2-dev libssl-dev uuid-dev)
TEST_PKGS=(kamailio baresip-core sox openssl postgresql chromium)
# Asterisk, the PBX test peer, is built from source (scripts/build-asterisk.sh) with these.
ASTERISK_BUILD_PKGS=(bzip2 patch libjansson-dev libxml2-dev libsqlite3-dev libedit-dev libncurses-dev)
ALL=("${BUILD_PKGS[@]}" "${ASTERISK_BUILD_PKGS[@]}" "${TEST_PKGS[@]}")
[ "${1:-}" = "--build-only" ] && ALL=("${BUILD_PKGS[@]}")

ensure_debian_packages "${ALL[@]}"
log "all Debian packages present"
# The kamailio and postgresql packages start system services on the default ports; tests run
# their own instances (PostgreSQL as a throwaway cluster in a tmp dir).
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now kamailio postgresql >/dev/null 2>&1 || true; fi

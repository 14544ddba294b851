#!/usr/bin/env bash
# Install the Debian packages needed to build pjproject and the addon, and the real SIP peers the
# tests use. As root it installs them; otherwise it lists what is missing and the command to run.
. "$(dirname "$0")/lib.sh"

BUILD_PKGS=(build-essential cmake pkg-config python3 dpkg-dev libopus-dev libspeex-dev libspeexdsp-dev libgsm1-dev
  libsrtp2-dev libssl-dev uuid-dev)
TEST_PKGS=(kamailio baresip-core sox openssl)
# Asterisk, the PBX test peer, is built from source (scripts/build-asterisk.sh) with these.
ASTERISK_BUILD_PKGS=(bzip2 patch libjansson-dev libxml2-dev libsqlite3-dev libedit-dev libncurses-dev)
ALL=("${BUILD_PKGS[@]}" "${ASTERISK_BUILD_PKGS[@]}" "${TEST_PKGS[@]}")
[ "${1:-}" = "--build-only" ] && ALL=("${BUILD_PKGS[@]}")

missing=()
for p in "${ALL[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  log "all Debian packages present"
  exit 0
fi
if ! is_root; then
  die "missing Debian packages: ${missing[*]}. Install them with: sudo apt-get install -y ${missing[*]}"
fi
log "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
# The kamailio package starts a system service on the default port; tests run their own instances.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now kamailio >/dev/null 2>&1 || true; fi

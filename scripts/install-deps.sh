#!/usr/bin/env bash
# Installs what pbx needs on a fresh Debian machine: the wasm32-wasip2 Rust target for the apps,
# espeak-ng for text-to-speech, and (with --test) the SIP peers and audio tools the tests drive.
# Every step is skipped when its tool is already there, so it is cheap to run every time.
set -euo pipefail

want_test_peers=0
[ "${1:-}" = "--test" ] && want_test_peers=1

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "== rustup target add wasm32-wasip2"
    rustup target add wasm32-wasip2
fi

missing=()
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
if [ "$want_test_peers" = 1 ]; then
    command -v sipp >/dev/null || missing+=(sip-tester)
    command -v baresip >/dev/null || missing+=(baresip-core)
    command -v sox >/dev/null || missing+=(sox)
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "== apt-get install ${missing[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

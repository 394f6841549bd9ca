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

# The API fuzzer (tests/e2e/api_fuzz.rs): schemathesis from PyPI in a venv of its own, pinned
# (its `st run` flags change between releases). Offline with it already there: nothing to do;
# offline without it: a warning, and only that test fails, saying so.
if [ "$want_test_peers" = 1 ]; then
    st_venv="$HOME/.local/share/pbx/schemathesis"
    st_version=4.32.5
    if ! "$st_venv/bin/st" --version 2>/dev/null | grep -q "$st_version"; then
        echo "== pip install schemathesis==$st_version (into $st_venv)"
        if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
            SUDO=""
            [ "$(id -u)" = 0 ] || SUDO="sudo"
            $SUDO apt-get update -qq
            DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv || true
        fi
        if ! { python3 -m venv "$st_venv" && "$st_venv/bin/pip" install -q "schemathesis==$st_version"; }; then
            echo "warning: cannot install schemathesis; tests/e2e/api_fuzz.rs will fail" >&2
        fi
    fi
fi

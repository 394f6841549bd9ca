#!/usr/bin/env bash
# Builds pbx and the example apps, then starts pbx with its embedded defaults: SQLite under
# ./pbx-data, espeak-ng for speech, `hello` on number 1000 and `ivr` on number 2000.
# Settings can be overridden with the environment: PBX_SIP, PBX_HTTP, PBX_DATA, PBX_ADMIN_TOKEN.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build-plugins.sh
cargo build -p pbx

export PBX_SIP="${PBX_SIP:-127.0.0.1:5060}"
export PBX_HTTP="${PBX_HTTP:-127.0.0.1:8080}"
export PBX_DATA="${PBX_DATA:-$PWD/pbx-data}"
export PBX_EXAMPLE_APPS="$PWD/plugins/target/wasm32-wasip2/release"
exec target/debug/pbx serve "$@"

#!/usr/bin/env bash
# Builds the example call apps and the runtime's test fixtures as WebAssembly components into
# plugins/target/wasm32-wasip2/release/<name>.wasm. Cargo makes this a no-op when nothing
# changed, so tests and CI can run it unconditionally.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if ! rustup target list --installed | grep -qx 'wasm32-wasip2'; then
    rustup target add wasm32-wasip2
fi

cargo build --release --target wasm32-wasip2 --manifest-path "$root/plugins/Cargo.toml" "$@"

#!/usr/bin/env bash
# Runs the whole test suite: formatting and lints, then every unit, simulation, runtime and
# end-to-end test. End-to-end tests start the real pbx binary and real SIP peers (sipp,
# baresip) on 127.0.0.1 inside a loopback-only network namespace, so nothing leaves the
# machine and no port can clash with other work.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --test

echo "== cargo fmt --check"
cargo fmt --all -- --check
(cd plugins && cargo fmt --all -- --check)

echo "== build the example and fixture apps (wasm32-wasip2)"
scripts/build-plugins.sh

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
(cd plugins && cargo clippy --workspace --release -- -D warnings)

echo "== build everything the tests need (outside the namespace, where the registry is reachable)"
cargo build --workspace --all-targets
cargo bench --workspace --no-run

# Inside a fresh network namespace only `lo` exists: no traffic can leave, no port clashes.
# Without one, PBX_TEST_NO_NETNS=1 tells the tests so: those that could reach beyond
# loopback (the API fuzzer) then skip, saying why.
run_isolated() {
    if [ "${PBX_TEST_NO_NETNS:-0}" != 1 ] && unshare -n true 2>/dev/null; then
        unshare -n bash -c 'ip link set lo up && exec "$@"' _ "$@"
    else
        echo "(no network namespace available: running on the host's loopback)"
        PBX_TEST_NO_NETNS=1 "$@"
    fi
}

echo "== cargo test (in a loopback-only network namespace)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
run_isolated cargo test --workspace --offline --no-fail-fast -- "$@" 2>&1 | tee "$log" || status=$?

echo "== the apps' own tests (the SDK's host-side stand-in, no pbx needed)"
host_target=$(rustc -vV | awk '/^host:/ { print $2 }')
(cd plugins && cargo test --workspace --offline --target "$host_target" -- "$@") 2>&1 | tee -a "$log" || status=$?

# One closing line for the whole run: the sum over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
exit "$status"

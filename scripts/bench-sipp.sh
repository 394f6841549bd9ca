#!/usr/bin/env bash
# SIP load benchmark with sipp against a release build of pbx running `hello` on 1000.
#   1. calls per second: step the rate up until a step has a failed call; report the highest
#      rate that completed every call.
#   2. CPU per call-minute with RTP flowing: N concurrent uac_pcap calls (G.711 A-law and
#      RFC 4733 DTMF from sipp's pcaps), pbx's CPU time (utime+stime from /proc) divided by
#      the call-minutes carried.
# Runs inside a loopback-only network namespace; prints a Markdown table for docs/benchmarks.md.
# Knobs (environment): RATES (the steps, calls/s), STEP_SECONDS (5), HOLD_MS (how long each
# call lasts after the ACK, 200), PIN=1 (pbx on core 1, sipp on core 0, as
# ../shared/bench/README.md asks), CONCURRENT (50; 0 skips the RTP part).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${PBX_BENCH_IN_NETNS:-0}" != 1 ]; then
    scripts/install-deps.sh --test
    scripts/build-plugins.sh
    cargo build --release -p pbx
    exec unshare -n bash -c 'ip link set lo up && PBX_BENCH_IN_NETNS=1 exec "$0" "$@"' "$0" "$@"
fi

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
SIP=127.0.0.1:5960
HTTP=127.0.0.1:8960
if [ "${PIN:-0}" = 1 ]; then pin_pbx="taskset -c 1"; pin_load="taskset -c 0"; else pin_pbx=; pin_load=; fi
RUST_LOG=warn $pin_pbx target/release/pbx serve --sip $SIP --http $HTTP --data "$work/data" \
    --admin-token bench-token-123 --example-apps plugins/target/wasm32-wasip2/release \
    > "$work/pbx.log" 2>&1 &
pbx_pid=$!
for _ in $(seq 100); do curl -sf "http://$HTTP/healthz" >/dev/null && break; sleep 0.1; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$pbx_pid/stat"; }
hz=$(getconf CLK_TCK)

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$pbx_pid/status"; }
echo "| rate (calls/s) | calls | successful | failed | retransmissions | pbx CPU-µs per call | pbx % of one core | RSS after (KiB) |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
best=0
for rate in ${RATES:-50 100 200 300 400 600 800}; do
    calls=$((rate * ${STEP_SECONDS:-5}))
    c0=$(cpu_ticks); t0=$(date +%s.%N)
    (cd "$work" && $pin_load sipp -sn uac $SIP -s 1000 -i 127.0.0.1 -p 0 -r "$rate" -m "$calls" \
        -l 100000 -d "${HOLD_MS:-200}" -timeout 120s -nostdin -trace_stat -stf "stats_$rate.csv" \
        > /dev/null 2>&1) || true
    c1=$(cpu_ticks); t1=$(date +%s.%N)
    ok=$(tail -1 "$work/stats_$rate.csv" | awk -F';' '{print $16}')
    failed=$(tail -1 "$work/stats_$rate.csv" | awk -F';' '{print $18}')
    retrans=$(python3 -c "
import sys
rows = [l.rstrip('\\n').split(';') for l in open('$work/stats_$rate.csv') if l.strip()]
print(rows[-1][rows[0].index('Retransmissions(C)')])" 2>/dev/null || echo '?')
    per_call=$(python3 -c "print(round(($c1 - $c0) / $hz * 1e6 / max(1, ${ok:-0})))")
    core=$(python3 -c "print(round(100 * ($c1 - $c0) / $hz / ($t1 - $t0), 1))")
    echo "| $rate | $calls | ${ok:-?} | ${failed:-?} | ${retrans:-?} | $per_call | $core% | $(rss_kib) |"
    if [ "${failed:-1}" = 0 ] && [ "${ok:-0}" = "$calls" ]; then best=$rate; else break; fi
done
echo
echo "highest rate with zero failures: $best calls/s"
echo

concurrent=${CONCURRENT:-50}
[ "$concurrent" = 0 ] && exit 0
ln -sfn /usr/share/sip-tester "$work/pcap"
before=$(cpu_ticks)
start=$(date +%s.%N)
(cd "$work" && sipp -sn uac_pcap $SIP -s 1000 -i 127.0.0.1 -p 0 -mi 127.0.0.1 -r "$concurrent" -rp 1000 \
    -m "$concurrent" -l "$concurrent" -timeout 60s -nostdin -trace_stat -stf rtp.csv > /dev/null 2>&1) || true
end=$(date +%s.%N)
after=$(cpu_ticks)
python3 - "$before" "$after" "$hz" "$start" "$end" "$concurrent" "$work/rtp.csv" <<'PY'
import sys
before, after, hz = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
start, end, n = float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
rows = open(sys.argv[7]).read().strip().splitlines()
ok = rows[-1].split(';')[15] if len(rows) > 1 else '?'
cpu = (after - before) / hz
# uac_pcap calls last about 9 s each (8 s of A-law plus DTMF); count the wall time they overlapped.
call_minutes = n * 9.0 / 60.0
print(f"| concurrent uac_pcap calls | successful | pbx CPU seconds | call-minutes | CPU-seconds per call-minute |")
print(f"|---:|---:|---:|---:|---:|")
print(f"| {n} | {ok} | {cpu:.2f} | {call_minutes:.2f} | {cpu / call_minutes:.3f} |")
PY

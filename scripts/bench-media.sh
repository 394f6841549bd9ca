#!/usr/bin/env bash
# Call-control media benchmark: pbx CPU per bridged call (RTP relay and PCMA->PCMU
# transcoding) and per conference (N-1 mixing), with RTP flowing on every leg.
#
#   callers   sipp UAC, one custom scenario: INVITE offering PCMA only, then plays a generated
#             A-law pcap with 20 ms packets (the speech of sipp's g711a.pcap, looped) for
#             TALK seconds, stays silent for QUIET more seconds, then BYE
#   callees   two sipp UAS with -rtp_echo: :7100 answers PCMA (same codec as the caller, so
#             the bridge relays RTP without decoding) and :7200 answers PCMU only (so the
#             bridge decodes and re-encodes every frame); each echoes back every RTP packet
#             it receives, so every leg "talks"
#   app       plugins/fixtures/bench-media, bound to relay-7100, relay-7200, conf-<n>-7100
#
# For each case the script waits until every leg is answered (and, for conferences, joined),
# then reads pbx's utime+stime from /proc/PID/stat over a WINDOW-second window while the
# callers talk. CPU per call-minute = CPU seconds / (calls * WINDOW / 60). For the bridges it
# also counts the UDP datagrams the whole namespace sends during the callers' silence: a
# relayed bridge forwards only what arrives (about zero), a decoding bridge sends a frame to
# each leg every 20 ms; this is the check that relay really happens.
#
# Runs pbx (release) inside a loopback-only network namespace like bench-sipp.sh; prints
# Markdown tables for docs/benchmarks.md. Knobs (environment): ANSWERED (numbers of concurrent
# calls answered by the app, which plays music to each: media anchored in pbx, nothing
# dialled; default none), BRIDGES (numbers of concurrent
# bridged calls, default "50"), CONFS (conference sizes, default "5 15 32 50 100", 2..100),
# WINDOW (measured seconds, default 20), KEEP=1 keeps the work directory (pbx log, sipp
# stats). A case whose legs do not all come up (a host limit such as MAX_LIVE_LEGS in
# host/plugin/src/host/call_control.rs, a failed dial) is listed as not measured.
# PIN=1 pins pbx to core 1 and sipp to core 0 (`taskset`), as ../shared/bench/README.md asks.
# RATE (new calls per second, default 50) and SETUP_LIMIT (seconds until every leg must be up,
# default 6) size the ramp: 1,000 calls want RATE=100 SETUP_LIMIT=14.
# REFERENCE=N also measures rtpengine's userspace relay (Debian rtpengine-daemon, installed on
# demand) relaying N calls for WINDOW s in the same run, pinned like pbx, with
# ../shared/bench/ng.py and rtpgen.c; its CPU-s per call-minute is the ratio's denominator.
# "UDP drops" counts the namespace's UDP InErrors + RcvbufErrors: sipp's callers never read
# the RTP pbx sends them, so their bound media sockets fill and drop (about 80/s in every
# case); `ss -uamn` in the namespace shows pbx's own sockets with no drops.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${PBX_BENCH_IN_NETNS:-0}" != 1 ]; then
    scripts/install-deps.sh --test
    if [ -n "${REFERENCE:-}" ] && ! command -v rtpengine >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q rtpengine-daemon >/dev/null
    fi
    scripts/build-plugins.sh -p bench-media
    cargo build --release -p pbx
    exec unshare -n bash -c 'ip link set lo up && PBX_BENCH_IN_NETNS=1 exec "$0" "$@"' "$0" "$@"
fi

root=$(pwd)
work=$(mktemp -d)
cleanup() {
    kill $(jobs -p) 2>/dev/null || true
    wait 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

ANSWERED=${ANSWERED:-}
BRIDGES=${BRIDGES-50}
CONFS=${CONFS:-5 15 32 50 100}
WINDOW=${WINDOW:-20}
SETUP_LIMIT=${SETUP_LIMIT:-6}  # seconds from the first INVITE until every leg is up
RATE=${RATE:-50}               # new calls per second while a case sets up
TALK=$((WINDOW + SETUP_LIMIT + 2))
QUIET=10
QUIET_WINDOW=4
SIP=127.0.0.1:5970
HTTP=127.0.0.1:8970
TOKEN=bench-token-123
RELAY_PORT=7100                # UAS answering PCMA: same codec as the callers
TRANSCODE_PORT=7200            # UAS answering PCMU only
hz=$(getconf CLK_TCK)
if [ "${PIN:-0}" = 1 ]; then pin_pbx="taskset -c 1"; pin_load="taskset -c 0"; else pin_pbx=; pin_load=; fi

# ----- inputs: the 20 ms A-law pcap and the sipp scenarios ------------------------------------

python3 - /usr/share/sip-tester/g711a.pcap "$work/talk.pcap" "$TALK" <<'PY'
# Re-packetises the A-law speech of sipp's g711a.pcap (30 ms packets, 7 s) into 20 ms RTP
# packets (160 bytes, PT 8), looped to the requested length, as an Ethernet pcap.
import struct, sys
src, dst, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
raw = open(src, 'rb').read()
speech, off = bytearray(), 24
while off < len(raw):
    _, _, incl, _ = struct.unpack('<IIII', raw[off:off + 16])
    speech += raw[off + 16 + 14 + 20 + 8 + 12:off + 16 + incl]   # eth, IPv4, UDP, RTP
    off += 16 + incl
frames = seconds * 50
need = frames * 160
audio = (bytes(speech) * (need // len(speech) + 1))[:need]
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
out = [struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1)]
for i in range(frames):
    rtp = struct.pack('!BBHII', 0x80, 8 | (0x80 if i == 0 else 0), i & 0xffff, i * 160,
                      0x62656e63) + audio[i * 160:(i + 1) * 160]
    udp = struct.pack('!HHHH', 6000, 6000, 8 + len(rtp), 0) + rtp
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), i & 0xffff, 0, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    frame = b'\0' * 12 + b'\x08\x00' + ip + udp
    t = i * 20_000
    out.append(struct.pack('<IIII', t // 1_000_000, t % 1_000_000, len(frame), len(frame)))
    out.append(frame)
open(dst, 'wb').write(b''.join(out))
PY

# uac.xml HOLD_MS: the caller. INVITE with a PCMA-only offer, play the pcap, hang up after HOLD_MS.
uac_scenario() {
    cat <<EOF
<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="bench-media caller">
  <send retrans="500"><![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[local_ip_type] [local_ip]
      t=0 0
      m=audio [auto_media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-11,16

  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0

  ]]></send>
  <nop><action><exec play_pcap_audio="$work/talk.pcap"/></action></nop>
  <pause milliseconds="$1"/>
  <send retrans="500"><![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0

  ]]></send>
  <recv response="200"/>
</scenario>
EOF
}

# uas.xml PT NAME: the callee. Answers with one codec and echoes RTP (sipp -rtp_echo).
uas_scenario() {
    cat <<EOF
<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="bench-media callee $2">
  <recv request="INVITE"/>
  <send retrans="500"><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP $1
      a=rtpmap:$1 $2/8000

  ]]></send>
  <recv request="ACK" optional="true"/>
  <recv request="BYE"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

  ]]></send>
  <timewait milliseconds="2000"/>
</scenario>
EOF
}

uac_scenario $(((TALK + QUIET) * 1000)) > "$work/uac-bridge.xml"
uac_scenario $((TALK * 1000)) > "$work/uac-conf.xml"
uas_scenario 8 PCMA > "$work/uas-pcma.xml"
uas_scenario 0 PCMU > "$work/uas-pcmu.xml"

# ----- pbx, the callees and the app ---------------------------------------------------------

RUST_LOG=${PBX_LOG:-warn} $pin_pbx "$root/target/release/pbx" serve --sip $SIP --http $HTTP \
    --data "$work/data" --admin-token $TOKEN > "$work/pbx.log" 2>&1 &
pbx_pid=$!
for _ in $(seq 100); do curl -sf "http://$HTTP/healthz" >/dev/null && break; sleep 0.1; done

cd "$work"
$pin_load sipp -sf uas-pcma.xml -i 127.0.0.1 -p $RELAY_PORT -mi 127.0.0.1 -mp 16000 -rtp_echo \
    -l 1000 -nostdin -trace_err > uas-pcma.out 2>&1 &
uas_pcma_pid=$!
$pin_load sipp -sf uas-pcmu.xml -i 127.0.0.1 -p $TRANSCODE_PORT -mi 127.0.0.1 -mp 17000 -rtp_echo \
    -l 1000 -nostdin -trace_err > uas-pcmu.out 2>&1 &
uas_pcmu_pid=$!

api() { curl -sS --fail-with-body -H "Authorization: Bearer $TOKEN" "$@"; }
json() { api -H 'Content-Type: application/json' "$@"; }
app_id=$(json -X POST -d '{"name":"bench-media"}' "http://$HTTP/v1/apps" | jq -r .id)
version=$(api -X POST -H 'Content-Type: application/wasm' \
    --data-binary @"$root/plugins/target/wasm32-wasip2/release/bench_media.wasm" \
    "http://$HTTP/v1/apps/$app_id/versions" | jq -r .version)
json -X POST -d "{\"version\":$version}" "http://$HTTP/v1/apps/$app_id/deploy" >/dev/null
numbers="music relay-$RELAY_PORT relay-$TRANSCODE_PORT"
for n in $CONFS; do numbers="$numbers conf-$n-$RELAY_PORT"; done
for number in $numbers; do
    json -X PUT -d "{\"app_id\":\"$app_id\"}" "http://$HTTP/v1/numbers/$number" >/dev/null
done

# ----- measuring --------------------------------------------------------------------------------

ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
udp_out() { awk '/^Udp:/ && $2 ~ /^[0-9]+$/ {print $5}' /proc/net/snmp; }
# Datagrams the kernel dropped for a full receive buffer or an error (InErrors + RcvbufErrors).
udp_drops() { awk '/^Udp:/ && $2 ~ /^[0-9]+$/ {print $4 + $6}' /proc/net/snmp; }
now() { date +%s.%N; }
answered() { api "http://$HTTP/v1/calls" | jq '[.calls[] | select(.status == "progressing")] | length' || echo 0; }
joined() { api "http://$HTTP/v1/conferences" | jq '[.conferences[]?.participants | length] | add // 0' || echo 0; }
live() { api "http://$HTTP/v1/calls" | jq '.calls | length' || echo 0; }
calc() { python3 -c "print($1)"; }

results=()
quiet_results=()

# run_case LABEL NUMBER CALLS SCENARIO READY_CMD READY_COUNT QUIET(0|1)
run_case() {
    local label=$1 number=$2 calls=$3 scenario=$4 ready_cmd=$5 want=$6 quiet=$7
    local rate=$((calls < RATE ? calls : RATE))
    local start ready c0 c1 t0 t1 s0 s1 d0 d1 x0 x1 load
    start=$(now)
    $pin_load sipp -sf "$scenario" $SIP -s "$number" -i 127.0.0.1 -p 0 -mi 127.0.0.1 -mp 20000 \
        -r $rate -rp 1000 -m "$calls" -l "$calls" -timeout $((TALK + QUIET + 60))s \
        -nostdin -trace_stat -stf "$label.csv" -trace_err > "$label.out" 2>&1 &
    local uac_pid=$!
    local got=0
    for _ in $(seq $((SETUP_LIMIT * 10))); do
        got=$($ready_cmd)
        [ "${got:-0}" -ge "$want" ] && break
        sleep 0.1
    done
    ready=$(now)
    if [ "${got:-0}" -lt "$want" ]; then
        results+=("| $label | $calls | ${got:-0}/$want | not measured: not every leg came up in ${SETUP_LIMIT}s (see the pbx log) |")
        kill "$uac_pid" 2>/dev/null || true
        wait "$uac_pid" 2>/dev/null || true
        for _ in $(seq 100); do [ "$(live)" = 0 ] && break; sleep 0.2; done
        return
    fi
    load=$(cut -d' ' -f1 /proc/loadavg)
    s0=$(( $(ticks $uac_pid) + $(ticks $uas_pcma_pid) + $(ticks $uas_pcmu_pid) ))
    c0=$(ticks $pbx_pid); t0=$(now); d0=$(udp_out); x0=$(udp_drops)
    sleep "$WINDOW"
    c1=$(ticks $pbx_pid); t1=$(now); d1=$(udp_out); x1=$(udp_drops)
    s1=$(( $(ticks $uac_pid) + $(ticks $uas_pcma_pid) + $(ticks $uas_pcmu_pid) ))
    local up_end
    up_end=$($ready_cmd)
    if [ "$quiet" = 1 ]; then
        # Every caller's pcap has ended TALK s after its ACK; the first BYE comes QUIET s later.
        local q_from q_to u0 u1 q0 q1
        q_from=$(calc "$ready + $TALK + 0.5")
        q_to=$(calc "$start + $TALK + $QUIET - 0.5")
        sleep "$(calc "max(0.0, $q_from - $(now))")"
        u0=$(udp_out); q0=$(ticks $pbx_pid)
        sleep "$QUIET_WINDOW"
        u1=$(udp_out); q1=$(ticks $pbx_pid)
        local fits
        fits=$(calc "int($q_from + $QUIET_WINDOW <= $q_to)")
        quiet_results+=("| $label | $calls | $((u1 - u0)) | $(calc "round(($u1 - $u0) / $QUIET_WINDOW / $calls)") | $(calc "round(($q1 - $q0) / $hz, 2)") |$([ "$fits" = 1 ] || echo ' (window overlapped a hangup)')")
    fi
    wait $uac_pid || true
    local ok failed
    ok=$(tail -1 "$label.csv" | awk -F';' '{print $16}')
    failed=$(tail -1 "$label.csv" | awk -F';' '{print $18}')
    for _ in $(seq 100); do [ "$(live)" = 0 ] && break; sleep 0.2; done
    results+=("$(python3 - "$label" "$calls" "$want" "$got" "$up_end" "$c0" "$c1" "$t0" "$t1" "$hz" \
        "$s0" "$s1" "${ok:-?}" "${failed:-?}" "$load" "$d0" "$d1" "$x0" "$x1" <<'PY'
import sys
(label, calls, want, got, up_end, c0, c1, t0, t1, hz, s0, s1, ok, failed, load, d0, d1, x0, x1) = sys.argv[1:]
calls, hz = int(calls), int(hz)
cpu = (int(c1) - int(c0)) / hz
wall = float(t1) - float(t0)
minutes = calls * wall / 60
sipp = (int(s1) - int(s0)) / hz
legs = f"{got}/{want}" if got == up_end else f"{got}/{want} (end {up_end})"
rate = (int(d1) - int(d0)) / wall
print(f"| {label} | {calls} | {legs} | {rate:.0f} | {int(x1) - int(x0)} | {wall:.1f} | {cpu:.2f} | {100 * cpu / wall:.1f}% "
      f"| {cpu / minutes:.3f} | {cpu / (int(want) * wall / 60):.4f} | {sipp:.2f} | {ok}/{failed} | {load} |")
PY
)")
}

# Idle baseline: pbx with the app deployed and no calls.
i0=$(ticks $pbx_pid); sleep 5; i1=$(ticks $pbx_pid)
idle=$(calc "round(($i1 - $i0) / $hz / 5 * 100, 2)")

for a in $ANSWERED; do
    run_case "answered, music" music "$a" uac-bridge.xml answered "$a" 0
done
for b in $BRIDGES; do
    run_case "relay bridges" "relay-$RELAY_PORT" "$b" uac-bridge.xml answered $((2 * b)) 1
    run_case "transcoded bridges" "relay-$TRANSCODE_PORT" "$b" uac-bridge.xml answered $((2 * b)) 1
done
for n in $CONFS; do
    run_case "conference of $n" "conf-$n-$RELAY_PORT" 1 uac-conf.xml joined "$n" 0
done

# The same-run reference: rtpengine relaying REFERENCE calls (each 50 packets/s each way).
reference=
if [ -n "${REFERENCE:-}" ]; then
    gcc -O2 -o rtpgen "$root/../shared/bench/rtpgen.c"
    $pin_pbx rtpengine --foreground --table=-1 --interface=127.0.0.1 \
        --listen-ng=127.0.0.1:2223 --port-min=30000 --port-max=39999 > rtpengine.log 2>&1 &
    rtpe_pid=$!
    sleep 1
    python3 "$root/../shared/bench/ng.py" setup "$REFERENCE" pairs.txt > ng.out
    $pin_load ./rtpgen pairs.txt $((WINDOW + 6)) > rtpgen.out &
    gen_pid=$!
    sleep 3
    r0=$(ticks $rtpe_pid); rt0=$(now)
    sleep "$WINDOW"
    r1=$(ticks $rtpe_pid); rt1=$(now)
    wait $gen_pid || true
    reference=$(python3 -c "
cpu = ($r1 - $r0) / $hz; wall = $rt1 - $rt0
print(f'| rtpengine userspace relay (reference) | $REFERENCE | {cpu:.2f} s over {wall:.1f} s | {100 * cpu / wall:.1f}% | {cpu / ($REFERENCE * wall / 60):.3f} | $(cat rtpgen.out) |')")
    kill $rtpe_pid 2>/dev/null || true
fi

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //');" \
    "pbx idle $idle% of a core. WINDOW=${WINDOW}s per case; sipp runs on the same cores."
echo
echo "| case | calls (caller legs) | legs up / expected | UDP datagrams/s sent in netns | UDP drops in netns | window s | pbx CPU s | pbx % of one core | pbx CPU-s per call-minute | pbx CPU-s per leg-minute | sipp CPU s (all) | sipp calls ok/failed | load avg (1 min) at start |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${results[@]}"
echo
echo "Relay check: UDP datagrams sent in the namespace during ${QUIET_WINDOW}s of the callers' silence"
echo "(a relayed bridge forwards only what arrives; a decoding bridge sends a frame to each leg every 20 ms):"
echo
echo "| case | calls | datagrams | per call per second | pbx CPU s |"
echo "|---|---:|---:|---:|---:|"
printf '%s\n' "${quiet_results[@]}"
if [ -n "$reference" ]; then
    echo
    echo "| reference | calls | CPU | % of one core | CPU-s per call-minute | rtpgen |"
    echo "|---|---:|---:|---:|---:|---|"
    echo "$reference"
fi
if grep -qiE 'panic|error' "$work/pbx.log"; then
    echo
    echo "pbx log has errors (first 5):"
    grep -iE 'panic|error' "$work/pbx.log" | head -5
fi
if grep -q 'WARN' "$work/pbx.log"; then
    echo
    echo "pbx warnings (first 5, colour codes stripped):"
    grep 'WARN' "$work/pbx.log" | sed -E 's/\x1b\[[0-9;]*m//g; s/^[0-9T:.Z-]+ +//; s/ session=.*//' |
        sort | uniq -c | sort -rn | head -5
fi

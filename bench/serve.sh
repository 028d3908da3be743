#!/usr/bin/env bash
# Gateway benchmark (not a test): the CT series of bench/corpus/make_corpus.py
# (2,000 files, ~1.06 GB) sent with DCMTK storescu to
#   1. storescp alone (receive and write files),
#   2. obscura serve (receive durably, queue, de-identify, forward over C-STORE
#      to a storescp), timed until the last instance is forwarded, with the
#      audit log off and then on ([audit], fsync per record),
#   3. Orthanc, if installed (`apt-get install orthanc`), receiving.
# Prints instances/s and MB/s and the gateway/storescp ratio.
# Usage: bench/serve.sh [CORPUS_ROOT]   (default /tmp/bench-corpus)
# Environment: OBSCURA (a binary to time instead of building one), COUNT
# (send only the first COUNT files), AUDIT_ONLY=1 (only the gateway, audit
# off and on: no storescp alone, no Orthanc), AUDIT_ORDER ("off on", the
# default, or "on off": alternate it between runs to cancel drift).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${1:-/tmp/bench-corpus}
CT="$ROOT/ct-series"
if [ ! -d "$CT" ]; then
  python3 bench/corpus/make_corpus.py --root "$ROOT" --only ct-series
fi
if [ -n "${OBSCURA:-}" ]; then
  BIN=$OBSCURA
else
  cargo build --release -q -p obscura-cli
  BIN=${CARGO_TARGET_DIR:-target}/release/obscura
fi
WORK=$(mktemp -d /tmp/obscura-serve-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
if [ -n "${COUNT:-}" ]; then
  mkdir "$WORK/subset"
  find "$CT" -type f | sort | awk -v n="$COUNT" 'NR <= n' | while read -r f; do ln -s "$f" "$WORK/subset/"; done
  CT="$WORK/subset"
fi
N=$(find -L "$CT" -type f | wc -l)
BYTES=$(find -L "$CT" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
waitport() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.1; done; }
send() { /usr/bin/storescu -aet BENCH -aec "$2" +sd +r 127.0.0.1 "$1" "$CT" >/dev/null 2>"$WORK/storescu.log"; }
now() { date +%s.%N; }
report() { # name seconds
  awk -v n="$N" -v b="$BYTES" -v t="$2" -v name="$1" \
    'BEGIN { printf "%-34s %7.2f s %8.1f inst/s %8.1f MB/s\n", name, t, n/t, b/1e6/t }'
}

# Warm the page cache, so the first receiver measured does not pay the
# corpus's disk reads for the others (storescu reads every file up front).
find -L "$CT" -type f -print0 | xargs -0 cat >/dev/null
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $N files, $("$BIN" --version 2>/dev/null || echo "$BIN")"

# 1. storescp alone
if [ -z "${AUDIT_ONLY:-}" ]; then
  P1=$(port); mkdir -p "$WORK/scp"
  /usr/bin/storescp -od "$WORK/scp" -aet SCP "$P1" >/dev/null 2>&1 & PIDS+=($!)
  waitport "$P1"
  t0=$(now); send "$P1" SCP; t_scp=$(echo "$(now) - $t0" | bc)
  report "storescp alone (receive)" "$t_scp"
fi

# 2. obscura serve -> storescp, with the audit log off, then on (same run)
gateway_run() { # label audit(0|1); sets t_recv t_all
  # the previous run's files are written back now, not during this run's fsyncs
  sync
  local D="$WORK/gw-$2"
  local P2 P3; P2=$(port); P3=$(port); mkdir -p "$D" "$D/fwd"
  /usr/bin/storescp -od "$D/fwd" -aet VENDOR "$P3" >/dev/null 2>&1 & PIDS+=($!)
  "$BIN" keygen "$D/vendor.key" 2>/dev/null
  local AUDIT=""
  if [ "$2" = 1 ]; then
    "$BIN" keygen "$D/audit-site.key" 2>/dev/null
    "$BIN" audit keygen bench/audit "$D/audit-signing.key" "$D/audit.pub" >/dev/null 2>&1
    AUDIT=$'[audit]\ndir = "audit"\nsigning_key = "audit-signing.key"\nkey_file = "audit-site.key"\nwitness = "witness"\n'
  fi
  cat > "$D/gateway.toml" <<TOML
[server]
ae_title = "OBSCURA"
listen = "127.0.0.1:$P2"
data_dir = "data"
retention_secs = 0

$AUDIT
[[peer]]
name = "bench"
calling_ae = "BENCH"
addresses = ["127.0.0.1"]
plain = true

[[destination]]
name = "vendor"
host = "127.0.0.1:$P3"
called_ae = "VENDOR"
plain = true
key_file = "vendor.key"

[[route]]
from = ["bench"]
to = ["vendor"]
TOML
  "$BIN" serve --config "$D/gateway.toml" 2>"$D/log" & GW=$!; PIDS+=($GW)
  waitport "$P2"
  t0=$(now); send "$P2" OBSCURA; t_recv=$(echo "$(now) - $t0" | bc)
  while :; do
    done_n=$("$BIN" status --config "$D/gateway.toml" | awk '$1=="vendor"{print $4}')
    [ "${done_n:-0}" -ge "$N" ] && break
    sleep 0.2
  done
  t_all=$(echo "$(now) - $t0" | bc)
  report "obscura serve $1 (receive, durable)" "$t_recv"
  report "obscura serve $1 (received+forwarded)" "$t_all"
  rss=$(awk '/VmHWM/{print $2}' /proc/$GW/status)
  kill -TERM $GW; wait $GW || true
  echo "gateway $1 peak RSS: $((rss / 1024)) MiB; forwarded files: $(find "$D/fwd" -type f | wc -l)"
  if [ "$2" = 1 ]; then
    grep -o "audit log closed.*" "$D/log" || true
    echo "audit records: $(cat "$D"/audit/segments/*.jsonl | wc -l); verify: $("$BIN" audit verify "$D/audit" --public-key "$D/audit.pub" --checkpoint "$(ls "$D"/witness/*.note | tail -1)" | head -1)"
  fi
}
for which in ${AUDIT_ORDER:-off on}; do
  if [ "$which" = off ]; then
    gateway_run "audit off" 0; t_recv_off=$t_recv; t_all_off=$t_all
  else
    gateway_run "audit on " 1; t_recv_on=$t_recv; t_all_on=$t_all
  fi
done
t_recv=$t_recv_off; t_all=$t_all_off
awk -v a="$t_recv_off" -v b="$t_recv_on" -v c="$t_all_off" -v d="$t_all_on" -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
  printf "audit on vs off: receive rate %.1f%%, received+forwarded rate %.1f%% (load %s)\n", 100*a/b, 100*c/d, l }'
[ -n "${AUDIT_ONLY:-}" ] && exit 0

# 3. Orthanc, if installed
if command -v Orthanc >/dev/null; then
  P4=$(port); P5=$(port); mkdir -p "$WORK/orthanc/db"
  cat > "$WORK/orthanc/orthanc.json" <<JSON
{ "Name": "bench", "StorageDirectory": "$WORK/orthanc/db", "IndexDirectory": "$WORK/orthanc/db",
  "DicomAet": "ORTHANC", "DicomPort": $P4, "HttpPort": $P5, "RemoteAccessAllowed": false,
  "DicomCheckCalledAet": false, "Plugins": [] }
JSON
  Orthanc "$WORK/orthanc/orthanc.json" >/dev/null 2>&1 & PIDS+=($!)
  waitport "$P4"
  t0=$(now); send "$P4" ORTHANC; t_orthanc=$(echo "$(now) - $t0" | bc)
  report "Orthanc (receive)" "$t_orthanc"
fi

awk -v a="$t_scp" -v r="$t_recv" -v f="$t_all" 'BEGIN {
  printf "gateway receive rate vs storescp: %.0f%%; received+forwarded vs storescp: %.0f%%\n", 100*a/r, 100*a/f }'

#!/usr/bin/env bash
# Scale-out benchmark (not a test): COUNT files of the CT series of
# bench/corpus/make_corpus.py sent with DCMTK storescu, in one run, to
#   1. storescp alone (receive and write files),
#   2. one obscura serve on the embedded SQLite queue,
#   3. one obscura serve on a PostgreSQL queue (a throwaway cluster),
#   4. two obscura serve processes sharing that queue and a spool folder,
#      half of the files sent to each at the same time,
# each gateway forwarding de-identified copies to a storescp, timed until the
# last instance is forwarded. Prints instances/s and the ratios.
# Usage: bench/serve_scaleout.sh [CORPUS_ROOT] [COUNT]   (default /tmp/bench-corpus, all)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${1:-/tmp/bench-corpus}
CT="$ROOT/ct-series"
if [ ! -d "$CT" ]; then
  python3 bench/corpus/make_corpus.py --root "$ROOT" --only ct-series
fi
mapfile -t FILES < <(find "$CT" -type f | sort | head -n "${2:-1000000}")
N=${#FILES[@]}
HALF=$((N / 2))
cargo build --release -q -p obscura-cli
BIN=$(pwd)/${CARGO_TARGET_DIR:-target}/release/obscura
PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort | tail -1)")
WORK=$(mktemp -d /tmp/obscura-scaleout-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -d "$WORK/pg" ] && as_pg "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
waitport() { for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.1; done; }
send() { /usr/bin/storescu -aet BENCH -aec "$2" 127.0.0.1 "$1" "${@:3}" >/dev/null 2>>"$WORK/storescu.log"; }
now() { date +%s.%N; }
report() { # name seconds
  awk -v n="$N" -v t="$2" -v name="$1" 'BEGIN { printf "%-62s %7.2f s %8.1f inst/s\n", name, t, n/t }'
}
find "$CT" -type f -print0 | xargs -0 cat >/dev/null

# the throwaway PostgreSQL cluster (trust on loopback)
PGPORT=$(port); mkdir -p "$WORK/pg/sock"
[ "$(id -u)" = 0 ] && chown -R postgres "$WORK/pg"
as_pg "$PGBIN/initdb" -D "$WORK/pg/data" -U obscura -A trust -E UTF8 --no-locale >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/pg/data" -w -l "$WORK/pg/log" \
  -o "-k $WORK/pg/sock -p $PGPORT -c listen_addresses=127.0.0.1" start >/dev/null

# 1. storescp alone
P=$(port); mkdir -p "$WORK/scp"
/usr/bin/storescp -od "$WORK/scp" -aet SCP "$P" >/dev/null 2>&1 & PIDS+=($!)
waitport "$P"
t0=$(now); send "$P" SCP "${FILES[@]}"; t_scp=$(echo "$(now) - $t0" | bc)
report "storescp alone (receive)" "$t_scp"

gateway() { # dir port scp_port queue_lines; starts it
  mkdir -p "$1"
  cp "$WORK/vendor.key" "$1/vendor.key"
  cat > "$1/gateway.toml" <<TOML
[server]
ae_title = "OBSCURA"
listen = "127.0.0.1:$2"
data_dir = "data"
retention_secs = 0
$4

[[peer]]
name = "bench"
calling_ae = "BENCH"
addresses = ["127.0.0.1"]
plain = true

[[destination]]
name = "vendor"
host = "127.0.0.1:$3"
called_ae = "VENDOR"
plain = true
key_file = "vendor.key"

[[route]]
from = ["bench"]
to = ["vendor"]
TOML
  "$BIN" serve --config "$1/gateway.toml" 2>"$1/log" & PIDS+=($!)
  waitport "$2"
}
"$BIN" keygen "$WORK/vendor.key" 2>/dev/null

run() { # label database(0|1) processes(1|2); sets t_all
  local D="$WORK/run-$2-$3" S; S=$(port); mkdir -p "$D/fwd"
  /usr/bin/storescp -od "$D/fwd" -aet VENDOR "$S" >/dev/null 2>&1 & PIDS+=($!)
  local Q=""
  if [ "$2" = 1 ]; then
    as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U obscura -d postgres -qc "CREATE DATABASE q$3" >/dev/null
    Q=$(printf 'database_url = "postgres://obscura@127.0.0.1:%s/q%s"\nspool_dir = "%s/spool"' "$PGPORT" "$3" "$D")
  fi
  local A B; A=$(port); B=$(port)
  gateway "$D/a" "$A" "$S" "$Q"
  [ "$3" = 2 ] && gateway "$D/b" "$B" "$S" "$Q"
  t0=$(now)
  if [ "$3" = 2 ]; then
    send "$A" OBSCURA "${FILES[@]:0:$HALF}" & s1=$!
    send "$B" OBSCURA "${FILES[@]:$HALF}" & s2=$!
    wait $s1 $s2
  else
    send "$A" OBSCURA "${FILES[@]}"
  fi
  while :; do
    done_n=$("$BIN" status --config "$D/a/gateway.toml" | awk '$1=="vendor"{print $4}')
    [ "${done_n:-0}" -ge "$N" ] && break
    sleep 0.2
  done
  t_all=$(echo "$(now) - $t0" | bc)
  report "$1 (received+forwarded)" "$t_all"
  echo "  forwarded files: $(find "$D/fwd" -type f | wc -l)"
}
run "obscura serve, SQLite queue" 0 1; t_sqlite=$t_all
run "obscura serve, PostgreSQL queue" 1 1; t_pg=$t_all
run "2 x obscura serve, one PostgreSQL queue" 1 2; t_pg2=$t_all
awk -v s="$t_scp" -v a="$t_sqlite" -v b="$t_pg" -v c="$t_pg2" 'BEGIN {
  printf "vs storescp: SQLite %.0f%%, PostgreSQL %.0f%%, two processes %.0f%%\n", 100*s/a, 100*s/b, 100*s/c
  printf "PostgreSQL vs SQLite: one process %.2fx, two processes %.2fx\n", a/b, a/c }'

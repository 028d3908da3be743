#!/usr/bin/env bash
# Breach-impact report benchmark (not a test): a log of N audit events
# (default 10,000,000, ~3.5 GB) over a real archive (the devset's files),
# written by the obscura-breach example gen_log (200 web principals, the
# gateway's forwards, one stolen credential at 1 event in 1,000); then
# `obscura breach-report` for that credential over the whole 30 days, RUNS
# times (default 5), beside `cat` of the same segments to /dev/null (the
# floor of reading them) in the same run. Prints each time, the medians
# and the ratio. The log is in the page cache after the first read (24 GiB
# machine): the figures are for a warm cache.
# Usage: bench/breach.sh [N] [RUNS]   (needs ~N*350 bytes free in /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000000}
RUNS=${2:-5}
cargo build --release -q -p obscura-cli
cargo build --release -q -p obscura-breach --example gen_log
T=${CARGO_TARGET_DIR:-target}/release
WORK=$(mktemp -d /tmp/obscura-breach-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
"$T/examples/gen_log" "$WORK/site" "$N"
du -sh "$WORK/site/audit" | awk '{print "log size: " $1}'
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }
: >"$WORK/report.t"; : >"$WORK/cat.t"
for i in $(seq "$RUNS"); do
  s=$(now); find "$WORK/site/audit/segments" -type f -print0 | xargs -0 cat >/dev/null; e=$(now)
  echo "$e - $s" | bc >>"$WORK/cat.t"
  s=$(now)
  "$T/obscura" breach-report --config "$WORK/site/serve.toml" --principal vendor-x \
    --from 2026-11-01 --to 2026-12-01 --discovered 2026-12-02 --out "$WORK/out" >"$WORK/report.log"
  e=$(now)
  echo "$e - $s" | bc >>"$WORK/report.t"
  echo "run $i: breach-report $(tail -1 "$WORK/report.t") s, cat $(tail -1 "$WORK/cat.t") s"
done
cat "$WORK/report.log"
R=$(median <"$WORK/report.t"); C=$(median <"$WORK/cat.t")
echo "median over $RUNS runs: breach-report ${R} s for $N events; cat ${C} s; ratio $(echo "scale=2; $R / $C" | bc)x cat"

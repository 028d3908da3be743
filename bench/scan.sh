#!/usr/bin/env bash
# bench/scan.sh: time `obscura scan` (headers only, pixels never read) against
# reading the same files with `cat FILES > /dev/null`, on the corpora of
# bench/corpus/make_corpus.py, and print a markdown table. See bench/README.md.
#
# Usage
#   bench/scan.sh              cargo build --release, then measure
#   bench/scan.sh --no-build   measure the existing binary
#
# Env (defaults)
#   CORPORA="ct-series big-mr"  corpora under CORPUS_ROOT (make_corpus.py builds them)
#   N=3                         timed runs per command and corpus, after 1 untimed warm-up
#   JOBS=                       obscura scan --jobs (default: all cores)
#   CORPUS_ROOT=/tmp/bench-corpus
#   OBSCURA=<repo>/target/release/obscura
set -euo pipefail

REPO=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
CORPORA=${CORPORA:-"ct-series big-mr"}
N=${N:-3}
JOBS=${JOBS:-}
CORPUS_ROOT=${CORPUS_ROOT:-/tmp/bench-corpus}
OBSCURA=${OBSCURA:-$REPO/target/release/obscura}

say() { printf '%s\n' "$*" >&2; }
die() { say "bench/scan.sh: $*"; exit 2; }

build=1
for arg in "$@"; do
  case $arg in
    --no-build) build=0 ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $arg (see --help)" ;;
  esac
done
if [ "$build" = 1 ]; then
  (cd "$REPO" && cargo build --release -q -p obscura-cli) || die "cargo build failed"
fi
[ -x "$OBSCURA" ] || die "no binary at $OBSCURA"

# wall seconds of one run of "$@" (output discarded; a failure aborts)
wall() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || die "failed: $*"
  t1=$(date +%s.%N)
  awk -v a="$t1" -v b="$t0" 'BEGIN {printf "%.4f\n", a - b}'
}

# median of N timed runs after one warm-up (the page cache is then warm for
# both commands alike)
median_wall() {
  local times=() i
  "$@" >/dev/null 2>&1 || die "failed: $*"
  for ((i = 0; i < N; i++)); do times+=("$(wall "$@")"); done
  printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; mn=a[1]; mx=a[NR]; printf "%.3f %.3f %.3f\n", m, mn, mx}'
}

cat_files() { find "$1" -type f -print0 | xargs -0 cat >/dev/null; }
scan_files() {
  local jobs=()
  [ -n "$JOBS" ] && jobs=(--jobs "$JOBS")
  "$OBSCURA" scan "$1" "${jobs[@]}"
}

commit=$(git -C "$REPO" rev-parse --short HEAD)
printf '# obscura scan vs cat\n\n%s, commit %s, %s cores, load %s, N=%s (median, min-max)\n\n' \
  "$(date -u +%Y-%m-%dT%H:%MZ)" "$commit" "$(nproc)" "$(cut -d' ' -f1 /proc/loadavg)" "$N"
printf '| corpus | files | MB | cat > /dev/null s | obscura scan s | scan vs cat | scan MB/s |\n'
printf '| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n'
for corpus in $CORPORA; do
  dir=$CORPUS_ROOT/$corpus
  [ -d "$dir" ] || die "no corpus $dir: python3 $REPO/bench/corpus/make_corpus.py --root $CORPUS_ROOT"
  files=$(find "$dir" -type f | wc -l)
  bytes=$(find "$dir" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
  export -f cat_files scan_files die say
  export OBSCURA JOBS
  read -r c_med c_min c_max < <(median_wall bash -c 'cat_files "$0"' "$dir")
  read -r s_med s_min s_max < <(median_wall bash -c 'scan_files "$0"' "$dir")
  ratio=$(awk -v a="$s_med" -v b="$c_med" 'BEGIN {print a / b}')
  mbs=$(awk -v a="$bytes" -v b="$s_med" 'BEGIN {print a / 1e6 / b}')
  printf '| %s | %s | %.0f | %s (%s-%s) | %s (%s-%s) | **%.2fx** | %.0f |\n' \
    "$corpus" "$files" "$(awk -v a="$bytes" 'BEGIN {print a / 1e6}')" "$c_med" "$c_min" "$c_max" \
    "$s_med" "$s_min" "$s_max" "$ratio" "$mbs"
done
printf '\nscan vs cat = median wall of `obscura scan DIR` / median wall of `cat` over the same files; lower is faster.\n'

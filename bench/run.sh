#!/usr/bin/env bash
# bench/run.sh: time Obscura against `cp -r` and the peer de-identifiers, on the
# same corpora, in the same run, and write a markdown table per corpus to stdout
# and to bench/results.md (overwritten). See bench/README.md.
#
# Usage
#   bench/run.sh                  measure (installs nothing; a peer that is not
#                                 installed gets a "not installed" row)
#   bench/run.sh --install-peers  install the peers as bench/corpus/baseline.md
#                                 section 1 says (pip + apt), then exit
#   bench/run.sh --no-build       measure without `cargo build --release` first
#
# Env (defaults)
#   CORPORA="ct-series big-mr"    corpora under CORPUS_ROOT (make_corpus.py builds them)
#   PEERS="gdcmanon-basic dicognito dicom-anonymizer deid"
#                                 tool names of run_peers.sh `one TOOL CORPUS`
#   N=3                           timed runs per tool and corpus, after 1 untimed warm-up
#   N_SLOW=1                      timed runs, no warm-up, for the SLOW pairs
#   SLOW="deid:ct-series"         TOOL:CORPUS pairs that take minutes a run
#   JOBS_RSS="1 2"                extra `obscura --jobs J` rows on big-mr (peak-memory check)
#   RSS_TARGET_MB=200             obscura's peak-RSS target on big-mr (10^6 bytes)
#   CORPUS_ROOT=/tmp/bench-corpus
#   BENCH_TMP=/dev/shm            where outputs go (tmpfs: see baseline.md, Method)
#   OBSCURA=<repo>/target/release/obscura
#   RUN_PEERS=<repo>/bench/corpus/run_peers.sh
#   PY=python3                    the Python that has the PyPI peers
#   LOG_DIR=<repo>/target/bench-logs   tool logs of the last run are copied here
set -euo pipefail

REPO=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
CORPORA=${CORPORA:-"ct-series big-mr"}
PEERS=${PEERS-"gdcmanon-basic dicognito dicom-anonymizer deid"}
N=${N:-3}
N_SLOW=${N_SLOW:-1}
SLOW=${SLOW-"deid:ct-series"}
JOBS_RSS=${JOBS_RSS-"1 2"}
RSS_TARGET_MB=${RSS_TARGET_MB:-200}
CORPUS_ROOT=${CORPUS_ROOT:-/tmp/bench-corpus}
BENCH_TMP=${BENCH_TMP:-/dev/shm}
OBSCURA=${OBSCURA:-$REPO/target/release/obscura}
RUN_PEERS=${RUN_PEERS:-$REPO/bench/corpus/run_peers.sh}
PY=${PY:-python3}
LOG_DIR=${LOG_DIR:-$REPO/target/bench-logs}
RESULTS=$REPO/bench/results.md
GNU_TIME=/usr/bin/time
TFMT='%e %M %U %S'  # wall s, peak RSS KiB (largest single process), user s, system s

say() { printf '%s\n' "$*" >&2; }
die() { say "bench/run.sh: $*"; exit 2; }

install_peers() {
  local sudo=() pkgs=(libgdcm-tools)
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  # PyPI peers, pinned to the versions of baseline.md section 1
  "$PY" -m pip install --disable-pip-version-check dicognito==0.19.0 deid==0.4.13 dicom-anonymizer==2.1.0
  if command -v pyenv >/dev/null; then pyenv rehash; fi  # shims for the new console scripts
  # Debian: GDCM's gdcmanon; GNU time for the peak RSS
  "$GNU_TIME" --version 2>&1 | grep -q GNU || pkgs+=(time)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"
  say "installed: ${pkgs[*]}, dicognito 0.19.0, deid 0.4.13, dicom-anonymizer 2.1.0"
}

BUILD=1
for arg in "$@"; do
  case $arg in
    --install-peers) install_peers; exit 0 ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,28p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument $arg (try --help)" ;;
  esac
done

# ---------------------------------------------------------------- preconditions
"$GNU_TIME" --version 2>&1 | grep -q GNU \
  || die "GNU time is missing at $GNU_TIME (apt-get install time, or bench/run.sh --install-peers)"
if [ -n "${PEERS// /}" ] && [ ! -x "$RUN_PEERS" ]; then
  die "peer harness not found: $RUN_PEERS (bench/corpus/run_peers.sh, expected beside the repo); set RUN_PEERS=... or PEERS=\"\""
fi
for corpus in $CORPORA; do
  [ -d "$CORPUS_ROOT/$corpus" ] || die "no corpus $CORPUS_ROOT/$corpus: python3 $REPO/bench/corpus/make_corpus.py --root $CORPUS_ROOT"
done
[ -d "$BENCH_TMP" ] || die "no $BENCH_TMP (set BENCH_TMP to a tmpfs folder)"
if [ "$BUILD" = 1 ] && [ "$OBSCURA" = "$REPO/target/release/obscura" ]; then
  say "building obscura (cargo build --release)"
  (cd "$REPO" && cargo build --release --bin obscura >&2)
fi
[ -x "$OBSCURA" ] || die "no obscura binary at $OBSCURA (cargo build --release)"
COMMIT=$(git -C "$REPO" rev-parse --short=12 HEAD)  # read once: the binary was built from this tree

WORK=$(mktemp -d -p "$BENCH_TMP" obscura-bench.XXXXXX)
OUT_ROOT=$WORK/out  # every tool writes a fresh folder here; run_peers.sh also keeps its logs/ here
export OUT_ROOT CORPUS_ROOT PY
mkdir -p "$OUT_ROOT/logs" "$WORK/md"
finish() {
  if mkdir -p "$LOG_DIR"; then
    find "$LOG_DIR" -maxdepth 1 -name '*.log' -delete
    cp -r "$OUT_ROOT/logs/." "$LOG_DIR/" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap finish EXIT
KEY=$WORK/obscura.key
"$OBSCURA" keygen "$KEY" >/dev/null 2>&1 || die "obscura keygen $KEY failed"
TF=$WORK/time.out

# ---------------------------------------------------------------- tools
peer_installed() {  # TOOL: is the peer there?
  case ${1%@loop} in
    gdcmanon-basic|gdcmanon-dumb) command -v gdcmanon >/dev/null ;;
    dcmanon) command -v dcmanon >/dev/null ;;
    dicognito|deid|dicom-anonymizer) "$PY" -c "import importlib.metadata as m; m.version('${1%@loop}')" 2>/dev/null ;;
    floor-cat) true ;;
    *) return 1 ;;
  esac
}

pyver() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || echo "?"; }

version_of() {  # TOOL -> version string
  case ${1%@loop} in
    cp|floor-cat) cp --version | awk 'NR==1{print "coreutils " $NF}' ;;
    obscura*) echo "$("$OBSCURA" --version | awk '{print $NF}') (${COMMIT:0:7})" ;;
    gdcmanon-*) gdcmanon --version 2>&1 | grep -o 'gdcm [0-9.]*' | head -1 | sed 's/gdcm/GDCM/' ;;
    dcmanon) dcmanon --version | awk '{print $NF}' ;;
    dicognito|deid|dicom-anonymizer) pyver "${1%@loop}" ;;
    *) echo "?" ;;
  esac
}

label_of() {  # TOOL -> table label
  case $1 in
    cp) echo "cp -r (floor)" ;;
    obscura) echo "**obscura** (all cores)" ;;
    obscura-clean) echo "**obscura** + clean-descriptors, -structured-content, -graphics" ;;
    obscura-j*) echo "**obscura** --jobs ${1#obscura-j}" ;;
    gdcmanon-basic) echo "gdcmanon -e (basic profile)" ;;
    gdcmanon-dumb) echo "gdcmanon --dumb (20 rules)" ;;
    deid) echo "deid (default recipe)" ;;
    *) echo "$1" ;;
  esac
}

run_once() {  # TOOL CORPUS: one timed pass; GNU time's figures land in $TF; returns the tool's status
  local tool=$1 corpus=$2 in="$CORPUS_ROOT/$2" out log="$OUT_ROOT/logs/$1.$2.log"
  case $tool in
    cp)
      out=$(mktemp -d -p "$OUT_ROOT" "cp.$corpus.XXXXXX")
      "$GNU_TIME" -f "$TFMT" -o "$TF" cp -r "$in" "$out/" ;;
    obscura|obscura-j*)
      local jobs=()
      [ "$tool" = obscura ] || jobs=(--jobs "${tool#obscura-j}")
      out=$(mktemp -d -p "$OUT_ROOT" "$tool.$corpus.XXXXXX")
      "$GNU_TIME" -f "$TFMT" -o "$TF" "$OBSCURA" deid "$in" "$out/$corpus" --key-file "$KEY" "${jobs[@]}" >>"$log" 2>&1 ;;
    obscura-clean)
      out=$(mktemp -d -p "$OUT_ROOT" "$tool.$corpus.XXXXXX")
      "$GNU_TIME" -f "$TFMT" -o "$TF" "$OBSCURA" deid "$in" "$out/$corpus" --key-file "$KEY" \
        --option clean-descriptors --option clean-structured-content --option clean-graphics >>"$log" 2>&1 ;;
    *)  # run_peers.sh exec's the tool: the timed process is the tool; it writes into a new folder under $OUT_ROOT
      "$GNU_TIME" -f "$TFMT" -o "$TF" "$RUN_PEERS" one "$tool" "$corpus" ;;
  esac
}

cpu_busy() {  # CPU-seconds the whole machine has spent busy (user..steal, not idle/iowait) since boot
  awk -v hz="$(getconf CLK_TCK)" '/^cpu /{print ($2+$3+$4+$7+$8+$9)/hz; exit}' /proc/stat
}
files_out() { find "$OUT_ROOT" -path "$OUT_ROOT/logs" -prune -o -type f -print | wc -l; }
clear_out() { find "$OUT_ROOT" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +; }
stat_of() {  # median|min|max < numbers
  sort -g | awk -v w="$1" '{a[NR]=$1} END{
    if (w=="min") print a[1]; else if (w=="max") print a[NR];
    else print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2 }'
}
num() {  # human precision: 3 significant-ish figures
  awk -v x="$1" 'BEGIN{ if (x>=100) printf "%.0f", x; else if (x>=10) printf "%.1f", x; else printf "%.2f", x }'
}

# measure TOOL CORPUS -> sets R_MED R_MIN R_MAX R_CPU R_RSS_MIB R_OUT R_NOTE
measure() {
  local tool=$1 corpus=$2 runs=$N warm=1 i rc w m u s b0 b1 other fails="" walls=() cpus=() others=() rss=0
  if [[ " $SLOW " == *" $tool:$corpus "* ]]; then runs=$N_SLOW; warm=0; fi
  for ((i = 1 - warm; i <= runs; i++)); do  # i = 0 is the warm-up
    clear_out; sync
    b0=$(cpu_busy)
    rc=0; run_once "$tool" "$corpus" || rc=$?
    b1=$(cpu_busy)
    read -r w m u s < <(tail -n 1 "$TF")
    # CPU spent during the run by anything but the timed tool: other work on the machine disturbs the timing
    other=$(awk -v a="$b0" -v b="$b1" -v u="$u" -v s="$s" 'BEGIN{o=b-a-u-s; printf "%.2f", (o>0)?o:0}')
    [ "$rc" -eq 0 ] || fails+=" $rc"
    if [ "$i" -ge 1 ]; then
      walls+=("$w"); cpus+=("$(awk -v u="$u" -v s="$s" 'BEGIN{print u+s}')")
      others+=("$other")
      if [ "${m:-0}" -gt "$rss" ]; then rss=$m; fi
    fi
    R_OUT=$(files_out)
    say "  $tool $corpus run $i/$runs: ${w}s, $((${m:-0} / 1024)) MiB, exit $rc, $R_OUT files out, other CPU ${other}s"
  done
  clear_out
  R_MED=$(printf '%s\n' "${walls[@]}" | stat_of median)
  R_MIN=$(printf '%s\n' "${walls[@]}" | stat_of min)
  R_MAX=$(printf '%s\n' "${walls[@]}" | stat_of max)
  R_CPU=$(printf '%s\n' "${cpus[@]}" | stat_of median)
  R_RSS_MIB=$(awk -v k="$rss" 'BEGIN{printf "%.0f", k/1024}')
  R_NOTE="$R_MED ($R_MIN–$R_MAX), CPU $R_CPU; $runs run(s)"
  if [ "$warm" = 1 ]; then R_NOTE+=" + warm-up"; else R_NOTE+=", no warm-up"; fi
  R_NOTE+="; $R_OUT files out"
  R_OTHER=$(printf '%s\n' "${others[@]}" | stat_of max)
  R_OTHER_FRAC=$(awk -v o="$R_OTHER" -v w="$R_MED" 'BEGIN{printf "%.2f", o/w}')
  if awk -v f="$R_OTHER_FRAC" 'BEGIN{exit !(f > 0.1)}'; then
    R_NOTE+="; **disturbed**: other processes used up to ${R_OTHER} CPU s during a run"
    DISTURBED+=("$tool on $corpus (up to $R_OTHER CPU s of other work in a ${R_MED} s run)")
  fi
  if [ -n "$fails" ]; then R_NOTE+="; **exit status${fails}** (see its log, $tool.$corpus.log)"; fi
}

# ---------------------------------------------------------------- header
cpu_model=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
mem_gib=$(awk '/^MemTotal/{printf "%.0f", $2/1048576}' /proc/meminfo)
commit=$COMMIT
dirty=$(git -C "$REPO" status --porcelain -- crates Cargo.toml Cargo.lock | wc -l)
[ "$dirty" -eq 0 ] || commit+=" (+ uncommitted changes in $dirty file(s) under crates/ or Cargo.*)"
obscura_version=$(version_of obscura)
{
  echo "# Obscura benchmark results"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(nproc) cores (nproc), $cpu_model, ${mem_gib} GiB RAM, $(uname -sr); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- obscura $obscura_version, commit $commit"
  echo "- corpus: \`$CORPUS_ROOT\` (bench/corpus/make_corpus.py), read warm from the page cache; outputs written to \`$BENCH_TMP\` (tmpfs), removed after each run"
  echo "- method: whole-process wall time and peak RSS (largest single process) from GNU \`time -f '%e %M'\`;" \
    "median of N=$N runs after 1 untimed warm-up (SLOW pairs \`$SLOW\`: N_SLOW=$N_SLOW, no warm-up), min–max in brackets." \
    "cp and obscura are run directly; peers through \`bench/corpus/run_peers.sh one TOOL CORPUS\` (which exec's the tool)." \
    "files/s and MB/s (10^6 bytes) = corpus size / median wall; **vs cp** = median wall / median wall of \`cp -r\` of the same corpus in this run."
  echo "- reproduce: \`bash bench/run.sh --install-peers\` once, then \`bash bench/run.sh\`"
} >"$WORK/md/00-header"

# ---------------------------------------------------------------- measure
row() { printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$@"; }
summary=() DISTURBED=() k=10
for corpus in $CORPORA; do
  k=$((k + 1))
  in=$CORPUS_ROOT/$corpus
  nfiles=$(find "$in" -type f | wc -l)
  mb=$(find "$in" -type f -printf '%s\n' | awk '{s+=$1} END{printf "%.1f", s/1e6}')
  md=$WORK/md/$k-$corpus
  {
    echo
    echo "## $corpus: $nfiles files, $mb MB"
    echo
    echo "| tool | version | files/s | MB/s | peak RSS MiB | time vs cp | note: wall s median (min–max), CPU s median |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | --- |"
  } >"$md"
  tools=(cp obscura obscura-clean)
  if [ "$corpus" = big-mr ]; then for j in $JOBS_RSS; do tools+=("obscura-j$j"); done; fi
  for p in $PEERS; do tools+=("$p"); done
  cp_med=""
  for tool in "${tools[@]}"; do
    label=$(label_of "$tool")
    case $tool in
      cp|obscura*) ;;
      orthanc) row "$label" - - - - - "skipped: needs its server; time it with run_peers.sh's own harness" >>"$md"; continue ;;
      *) if ! peer_installed "$tool"; then
           row "$label" - - - - - "skipped: not installed (\`bash bench/run.sh --install-peers\`)" >>"$md"; continue
         fi ;;
    esac
    say "$corpus: $tool"
    measure "$tool" "$corpus"
    if [ "$tool" = cp ]; then cp_med=$R_MED; fi
    vs=$(awk -v a="$R_MED" -v b="$cp_med" 'BEGIN{r=a/b; if (r>=10) printf "%.0fx", r; else printf "%.2fx", r}')
    row "$label" "$(version_of "$tool")" "$(num "$(awk -v n="$nfiles" -v t="$R_MED" 'BEGIN{print n/t}')")" \
      "$(num "$(awk -v n="$mb" -v t="$R_MED" 'BEGIN{print n/t}')")" "$R_RSS_MIB" "$vs" "$R_NOTE" >>"$md"
    case $tool in
      obscura) summary+=("- obscura / cp on $corpus: **$vs** (median wall $R_MED s vs $cp_med s); peak RSS $R_RSS_MIB MiB") ;;
      obscura-clean) summary+=("- obscura with the three clean options / cp on $corpus: **$vs** (median wall $R_MED s)") ;;
      obscura-j*)
        verdict=$(awk -v r="$R_RSS_MIB" -v t="$RSS_TARGET_MB" 'BEGIN{mb=r*1048576/1e6; printf "%.0f MB, %s", mb, (mb<t) ? "under" : "**over**"}')
        summary+=("- obscura --jobs ${tool#obscura-j} on $corpus: peak RSS $R_RSS_MIB MiB ($verdict the $RSS_TARGET_MB MB target)") ;;
    esac
  done
done
{
  echo; echo "## Summary"; echo
  printf '%s\n' "${summary[@]}"
  echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  if [ "${#DISTURBED[@]}" -gt 0 ]; then
    dist=$(printf '%s; ' "${DISTURBED[@]}")
    echo "- **other work ran during some timed runs** (more than 10% of a core-second per wall second), so these rows are slower than on a quiet machine: ${dist%; }"
  else
    echo "- no timed run saw more than 0.1 CPU s per wall second of other work on the machine"
  fi
} >"$WORK/md/90-summary"

cat "$WORK"/md/* | tee "$RESULTS"
say "written: $RESULTS; tool logs: $LOG_DIR"

#!/usr/bin/env bash
# Burned-in text (issue 14), side by side on the same images in the same run:
# obscura deid --option clean-pixel-data, Presidio's DICOM image redactor
# (blank spaCy pipeline) and Tesseract alone, scored by
# tests/burned_in/score.py on the labelled set; then the quarantine share on
# the devset plus the labelled set, single-frame ultrasound speed, the cost
# of the cheap pass against an OCR, peak RSS, and dciodvfy on the outputs.
#
#   bash bench/burned_in.sh            # SET=/tmp/burned-in-set (made if missing), JOBS=2
#
# Prints one markdown table and the other figures; docs/pixels.md quotes them.
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel)
SET=${SET:-/tmp/burned-in-set}
WORK=${WORK:-/tmp/burned-in-bench}
JOBS=${JOBS:-2}
RUNS=${RUNS:-3}
BIN=$ROOT/target/release/obscura
# Tesseract's OpenMP teams spin against each other when processes or
# workers run side by side: one thread each for every tool (obscura sets
# this for itself when unset)
# (nproc itself obeys OMP_THREAD_LIMIT, which a caller may have set: not here)
CORES=$(env -u OMP_THREAD_LIMIT -u OMP_NUM_THREADS nproc)
export OMP_THREAD_LIMIT=1
TIME=/usr/bin/time

nice -n 15 cargo build --release -p obscura-cli --manifest-path "$ROOT/Cargo.toml" >&2
[ -f "$SET/answer_key.json" ] || python3 "$ROOT/tests/burned_in/make_set.py" "$SET" --count 320 --seed 14 >&2
rm -rf "$WORK" && mkdir -p "$WORK"
"$BIN" keygen "$WORK/key" >/dev/null

echo "# burned-in bench, $(date -u +%FT%TZ), $CORES cores, load $(cut -d' ' -f1-3 /proc/loadavg), obscura $(git -C "$ROOT" rev-parse --short HEAD)"
echo
echo "| tool | recall (identifying) | recall (header values) | precision | quarantined / failed | wall s | CPU s | peak RSS MB |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
score() {  # score.py's figures as table cells
    python3 "$ROOT/tests/burned_in/score.py" "$SET" "$1" --json "$1.score.json" >/dev/null
    python3 - "$1.score.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
pct = lambda x: "n/a" if x is None else f"{100 * x:.1f} %"
print(f"{pct(r['recall_identifying'])} | {pct(r['recall_matching_header'])} | {pct(r['precision'])}")
PY
}
timed() {  # wall, CPU and peak RSS of a command, as table cells
    local log=$1; shift
    $TIME -f '%e %U %S %M' -o "$log" nice -n 15 "$@" >"$log.out" 2>"$log.err" || true
    tail -1 "$log" | awk '{printf "%s | %.1f | %.0f", $1, $2 + $3, $4 / 1024}'
}

# the three run at the same time (the machine is shared and the deadline
# short): compare their CPU seconds; wall times overlap
timed "$WORK/obscura.time" "$BIN" deid "$SET" "$WORK/obscura" --key-file "$WORK/key" \
    --option clean-pixel-data --jobs "$JOBS" --report "$WORK/obscura.json" >"$WORK/obscura.cells" &
for peer in presidio tesseract; do
    timed "$WORK/$peer.time" python3 "$ROOT/bench/burned_in_peers.py" "$peer" "$SET" "$WORK/$peer" >"$WORK/$peer.cells" &
done
wait
q=$(python3 -c "import json,sys; r=json.load(open('$WORK/obscura.json')); print(r['quarantined_by_reason'].get('burned_in', 0))")
echo "| obscura (--jobs $JOBS) | $(score "$WORK/obscura") | $q quarantined | $(cat "$WORK/obscura.cells") |"
for peer in presidio tesseract; do
    f=$(python3 -c "import json; r=json.loads(open('$WORK/$peer.time.out').read()); print(r['failed'], 'failed', r['failures'] or '')" 2>/dev/null || echo "did not run")
    echo "| $peer (1 process) | $(score "$WORK/$peer") | $f | $(cat "$WORK/$peer.cells") |"
done
echo
python3 "$ROOT/tests/burned_in/score.py" "$SET" "$WORK/obscura" | sed 's/^/    /'

echo
echo "## quarantined for burned-in risk, devset + labelled set, --option clean-pixel-data (the labelled set's from the run above)"
"$BIN" deid "$ROOT/tests/devset/data" "$WORK/devset-out" --key-file "$WORK/key" --option clean-pixel-data \
    --jobs "$JOBS" --report "$WORK/devset.json" >/dev/null 2>&1 || true
python3 - "$WORK/devset.json" "$WORK/obscura.json" <<'PY'
import json, sys
files = [f for p in sys.argv[1:] for f in json.load(open(p))["files"] if f["outcome"] != "skipped"]
burned = [f for f in files if f.get("reason") == "burned_in"]
other = sum(1 for f in files if f["outcome"] == "quarantined") - len(burned)
print(f"{len(burned)} of {len(files)} files ({100 * len(burned) / max(len(files), 1):.1f} %) quarantined "
      f"burned_in ({other} quarantined for other reasons)")
PY
echo
SET=$SET WORK=$WORK/speed JOBS=$JOBS RUNS=$RUNS bash "$ROOT/bench/burned_in_speed.sh"

echo
echo "## dciodvfy: errors in the redacted outputs that the inputs did not have (the first 80)"
python3 - "$SET" "$WORK/obscura" <<'PY'
import subprocess, sys
from pathlib import Path
def errors(p):
    r = subprocess.run(["dciodvfy", str(p)], capture_output=True, text=True, errors="replace")
    return {l for l in (r.stderr + r.stdout).splitlines() if "Error" in l}
outs = sorted(Path(sys.argv[2]).glob("*.dcm"))[:80]
new = {o.name: errors(o) - errors(Path(sys.argv[1]) / o.name) for o in outs}
bad = {k: v for k, v in new.items() if v}
print(f"{len(outs)} outputs checked, {len(bad)} with new errors")
for k, v in list(bad.items())[:5]:
    print(f"  {k}: {sorted(v)[:3]}")
PY

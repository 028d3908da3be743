#!/usr/bin/env bash
# Burned-in text speed (issue 14): single-frame ultrasounds per second with
# --option clean-pixel-data, and the cheap pass's cost against an OCR on the
# labelled images it clears; then peak RSS on deid-data's 30-frame
# ultrasound. The machine may be shared: CPU seconds per image and the load
# are printed beside every wall time.
#
#   bash bench/burned_in_speed.sh      # SET=/tmp/burned-in-set (made if missing), JOBS=2, RUNS=5
#
# The first line printed is the ultrasound figure: "US images/s: ...". Then,
# unless CODECS=0, bench/cheap_pass_codecs.py: the cheap pass against an OCR
# on real images of every transfer syntax (pydicom's test files, deid-data),
# with the fastest decoders' cost alone beside the compressed ones (PyPI's
# simplejpeg and pylibjpeg-openjpeg, installed here), a table and last line
# "cheap pass on cleared images, every transfer syntax: ..." (a few minutes
# more).
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel)
SET=${SET:-/tmp/burned-in-set}
WORK=${WORK:-/tmp/burned-in-speed}
JOBS=${JOBS:-2}
RUNS=${RUNS:-5}
BIN=$ROOT/target/release/obscura
# (nproc itself obeys OMP_THREAD_LIMIT, which a caller may have set: not here)
CORES=$(env -u OMP_THREAD_LIMIT -u OMP_NUM_THREADS nproc)
export OMP_THREAD_LIMIT=1
TIME=/usr/bin/time

nice -n 15 cargo build --release -p obscura-cli --manifest-path "$ROOT/Cargo.toml" >&2
rm -rf "$WORK" && mkdir -p "$WORK"
"$BIN" keygen "$WORK/key" >/dev/null
US=$(python3 -c "import deid_data, os; print(os.path.join(os.path.dirname(deid_data.__file__), 'data', 'ultrasounds'))")
mkdir -p "$WORK/us" "$WORK/mf"
for i in $(seq -w 1 20); do
    cp "$US/GREYSCALE_IMAGE.dcm" "$WORK/us/g$i.dcm"; cp "$US/RGB_IMAGE.dcm" "$WORK/us/r$i.dcm"
done
cp "$US/ultrasound-multiframe.dcm" "$WORK/mf/"
load() { cut -d' ' -f1 /proc/loadavg; }
# RUNS runs of `deid US OUT MODE`: "median wall s, median CPU s, loads seen"
runs() {
    local walls=() cpus=() loads=()
    for _ in $(seq "$RUNS"); do
        rm -rf "$WORK/us-out"
        loads+=("$(load)")
        $TIME -f '%e %U %S' -o "$WORK/us.time" nice -n 15 "$BIN" deid "$WORK/us" "$WORK/us-out" \
            --key-file "$WORK/key" "$@" --jobs "$JOBS" >/dev/null 2>&1 || true
        walls+=("$(cut -d' ' -f1 "$WORK/us.time")")
        cpus+=("$(awk '{print $2 + $3}' "$WORK/us.time")")
    done
    local mid=$(( (RUNS + 1) / 2 ))
    echo "$(printf '%s\n' "${walls[@]}" | sort -n | sed -n "${mid}p") $(printf '%s\n' "${cpus[@]}" | sort -n | sed -n "${mid}p") $(printf '%s\n' "${loads[@]}" | sort -n | sed -n '1p;$p' | paste -sd-)"
}
read -r wall cpu loads <<<"$(runs --option clean-pixel-data)"
read -r uwall ucpu _ <<<"$(runs --allow-burned-in)"
python3 -c "
wall, cpu, uwall, ucpu = $wall, $cpu, $uwall, $ucpu
print(f'US images/s: {40 / wall:.1f} wall ({wall} s for 40, median of $RUNS, --jobs $JOBS, load $loads, $CORES cores); '
      f'{cpu / 40:.3f} CPU s an image: {$CORES * 40 / cpu:.1f} images/s on $CORES idle cores '
      f'(--allow-burned-in: {ucpu / 40:.4f} CPU s an image)')"

# without the option, at-risk files are read by the cheap pass alone and
# written when it clears them: its cost against an OCR on those of the
# labelled set's first 80 it clears (bench/cheap_pass_codecs.py, as on the
# test files below)
[ -f "$SET/answer_key.json" ] || python3 "$ROOT/tests/burned_in/make_set.py" "$SET" --count 320 --seed 14 >&2
python3 "$ROOT/bench/cheap_pass_codecs.py" --bin "$BIN" --work "$WORK/set-cheap" --runs "$RUNS" \
    --images "$SET" --first 80 | tail -n 1

$TIME -f '%e %M' -o "$WORK/mf.time" nice -n 15 "$BIN" deid "$WORK/mf" "$WORK/mf-out" --key-file "$WORK/key" \
    --option clean-pixel-data --report "$WORK/mf.json" >/dev/null 2>&1 || true
echo "30-frame ultrasound (43 MB): $(python3 -c "import json; print(json.load(open('$WORK/mf.json'))['files'][0]['outcome'])"), peak RSS $(( $(cut -d' ' -f2 "$WORK/mf.time") / 1024 )) MB, $(cut -d' ' -f1 "$WORK/mf.time") s wall"

if [ "${CODECS:-1}" != 0 ]; then
  # the fastest decoders on PyPI, timed beside the cheap pass on the
  # compressed images (the floor no pass that reads their pixels goes under)
  python3 -m pip install -q --disable-pip-version-check simplejpeg pylibjpeg-openjpeg >&2
  python3 "$ROOT/bench/cheap_pass_codecs.py" --bin "$BIN" --work "$WORK/codecs" --runs "$RUNS"
fi

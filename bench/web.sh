#!/usr/bin/env bash
# DICOMweb benchmark (not a test), side by side in one run with Debian's
# Orthanc 1.10.1 + DICOMweb plugin 1.7 (a 2022 release;
# `apt-get install orthanc orthanc-dicomweb`): STOW-RS ingest of the CT
# series of bench/corpus/make_corpus.py (2,000 files), QIDO-RS study search
# p50/p95, WADO-RS retrieval of every instance by curl against the same curl
# reading the files from disk, each server's peak RSS, and the same Obscura
# with unencrypted objects (bench/web_side_by_side.py); WADO and QIDO
# through a de-identified view against the original view, and through a
# JWT against an opaque token (bench/web_views.py, one line
# `views: ...`); the cost of deciding a request alone (obscura-access's
# `cost` example: JWT validation, grant store); then Obscura
# alone streaming a 1 GiB object (bench/web.py: peak RSS while streaming).
# Usage: bench/web.sh [CORPUS_ROOT] [BATCH] [QUERIES] [REPS] [CONCURRENCY]
#        (default /tmp/bench-corpus 50 200 5 1,8)
# Results and conditions: bench/web-results.md. The WADO ratio alone, without
# Orthanc or the second build: python3 bench/web_wado.py [CORPUS_DIR] [C] [REPS].
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${1:-/tmp/bench-corpus}
if [ ! -d "$ROOT/ct-series" ]; then
  python3 bench/corpus/make_corpus.py --root "$ROOT" --only ct-series
fi
# The cost of encryption: a second, benchmark-only binary whose objects are
# stored unencrypted (it refuses to open a vault unless
# OBSCURA_UNENCRYPTED_OBJECTS_BENCH_ONLY=1, which only the benchmark sets).
# Built first and copied aside, so target/release/obscura is the real build.
nice -n 10 cargo build --release -q -p obscura-cli --features unencrypted-objects-bench-only
cp target/release/obscura target/release/obscura-unencrypted-objects-bench-only
nice -n 10 cargo build --release -q -p obscura-cli
python3 bench/web_side_by_side.py "$ROOT/ct-series" "${2:-50}" "${3:-200}" "${4:-5}" "${5:-1,8}"
echo
# a de-identified view against the original view, a JWT against an opaque
# token (issue 11), same server, same run
python3 bench/web_views.py "$ROOT/ct-series" 500 "${4:-5}" "${5:-1,8}" 50
echo
# what validating a JWT and asking the grant store cost per request, alone
nice -n 10 cargo run --release -q -p obscura-access --example cost -- 1000
echo
python3 bench/web.py 1000 1

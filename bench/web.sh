#!/usr/bin/env bash
# DICOMweb benchmark (not a test), side by side in one run with Debian's
# Orthanc 1.10.1 + DICOMweb plugin 1.7 (a 2022 release;
# `apt-get install orthanc orthanc-dicomweb`): STOW-RS ingest of the CT
# series of bench/corpus/make_corpus.py (2,000 files), QIDO-RS study search
# p50/p95, WADO-RS retrieval of every instance against reading the files from
# disk, each server's peak RSS (bench/web_side_by_side.py); then Obscura
# alone streaming a 1 GiB object (bench/web.py: peak RSS while streaming).
# Usage: bench/web.sh [CORPUS_ROOT] [BATCH] [QUERIES]   (default /tmp/bench-corpus 50 200)
# Results and conditions: bench/web-results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${1:-/tmp/bench-corpus}
if [ ! -d "$ROOT/ct-series" ]; then
  python3 bench/corpus/make_corpus.py --root "$ROOT" --only ct-series
fi
nice -n 10 cargo build --release -q -p obscura-cli
python3 bench/web_side_by_side.py "$ROOT/ct-series" "${2:-50}" "${3:-200}"
echo
python3 bench/web.py 1000 1

#!/usr/bin/env bash
# Seed the fuzz corpus for deid_roundtrip with real DICOM files nobody here
# wrote: pydicom's test files, pydicom-data's and deid-data's files (each
# under 1 MB), and the repository's own samples/. Files are named by their
# SHA-1, as libFuzzer does, so duplicates collapse and names never collide.
# Needs the Python packages of tests/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=fuzz/corpus/deid_roundtrip
mkdir -p "$dest"

py() { python3 -c "$1"; }
pydicom_dir=$(py 'import pydicom, os; print(os.path.dirname(pydicom.__file__))')
site=$(dirname "$pydicom_dir")
deid_dir=$(py 'import deid_data, os; print(os.path.dirname(deid_data.__file__))')

copy_tree() { # dir, max size (find -size), label
  local dir=$1 size=$2 n=0
  if [ ! -d "$dir" ]; then
    echo "seed: $3: $dir not found, skipped" >&2
    return
  fi
  while IFS= read -r -d '' f; do
    cp "$f" "$dest/$(sha1sum "$f" | cut -c1-40)"
    n=$((n + 1))
  done < <(find "$dir" -type f $size ! -name '*.py' ! -name '*.pyc' ! -path '*/__pycache__/*' -print0)
  echo "seed: $3: $n files"
}

copy_tree "$pydicom_dir/data/test_files" "" "pydicom test_files"
copy_tree "$site/data_store/data" "-size -1024k" "pydicom-data"
copy_tree "$deid_dir" "-size -1024k" "deid-data"
copy_tree samples "" "samples"
echo "seed: $(find "$dest" -type f | wc -l) distinct inputs in $dest"

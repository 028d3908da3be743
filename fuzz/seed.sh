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

# Small variants: the same headers with the pixel data cut to a few bytes, so
# that runs with a small -max_len (many more executions a second) still start
# from whole, parseable files.
python3 - "$dest" <<'PY'
import hashlib, io, os, sys, warnings
import pydicom
from pydicom.encaps import encapsulate
warnings.simplefilter("ignore")
dest = sys.argv[1]
made = 0
for name in sorted(os.listdir(dest)):
    path = os.path.join(dest, name)
    try:
        ds = pydicom.dcmread(path, force=True)
        kws = [k for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData") if k in ds]
        if not kws:
            continue
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        for kw in kws:
            el = ds[kw]
            if ts is not None and ts.is_compressed:
                el.value = encapsulate([b"\xff\xd8\xff\xd9"])
            else:
                el.value = bytes(el.value[:16]) if isinstance(el.value, bytes) else bytes(16)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=False)
        data = buf.getvalue()
        if len(data) < os.path.getsize(path):
            with open(os.path.join(dest, hashlib.sha1(data).hexdigest()), "wb") as f:
                f.write(data)
            made += 1
    except Exception:
        pass
print(f"seed: {made} small variants (pixel data cut)")
PY
echo "seed: $(find "$dest" -type f | wc -l) distinct inputs in $dest"

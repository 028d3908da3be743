#!/usr/bin/env python3
"""Decode + render one frame to PNG: obscura-pixels (its `decode` example,
a whole process per run) against pydicom 3 (pixel_array through its
plugins: numpy, pylibjpeg/libjpeg, openjpeg, pyjpegls, rle; windowed with
pydicom's apply_voi_lut, saved with Pillow; in process, so no start-up
cost). Median of N runs per file, same machine, same run; ratio < 1 means
Obscura is faster.

    cargo build --release -p obscura-pixels --example decode
    python3 bench/pixels.py [N]
"""
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut, apply_voi_lut

REPO = Path(__file__).resolve().parents[1]
DECODE = REPO / "target" / "release" / "examples" / "decode"
FILES = ["CT_small.dcm", "MR_small_RLE.dcm", "JPEG-LL.dcm", "SC_rgb_jpeg_dcmtk.dcm",
         "emri_small_jpeg_ls_lossless.dcm", "US1_J2KR.dcm", "RG1_J2KR.dcm", "RG1_UNCR.dcm"]


def pydicom_png(path, out):
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    if ds.get("NumberOfFrames", 1) and int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[0]
    if ds.SamplesPerPixel == 1:
        x = apply_voi_lut(apply_modality_lut(arr, ds), ds)
        lo, hi = float(x.min()), float(x.max())
        arr = ((x - lo) / max(hi - lo, 1) * 255).astype(np.uint8)
    else:
        arr = arr.astype(np.uint8)
    Image.fromarray(arr).save(out, compress_level=1)


def median(f, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    out = Path(tempfile.mkdtemp()) / "x.png"
    print(f"{'file':36} {'obscura ms':>10} {'pydicom ms':>10} {'ratio':>6}")
    ratios = []
    for name in FILES:
        path = get_testdata_file(name)
        ob = median(lambda: subprocess.run([DECODE, path, "0", "--png", out], check=True), n)
        py = median(lambda: pydicom_png(path, out), n)
        ratios.append(ob / py)
        print(f"{name:36} {ob * 1e3:10.1f} {py * 1e3:10.1f} {ob / py:6.2f}")
    print(f"geometric mean ratio: {float(np.exp(np.mean(np.log(ratios)))):.2f}")


if __name__ == "__main__":
    main()

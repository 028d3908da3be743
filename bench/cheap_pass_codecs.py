#!/usr/bin/env python3
"""The cheap pass's cost against an OCR, per image and per transfer syntax
(issue 14: "images that the cheap pass clears cost < 5 % of an OCR").

Images: every pydicom test file (pydicom and pydicom-data) and deid-data file
of at least 64 x 64 pixels in a transfer syntax obscura decodes, plus three
native ones (pydicom's US1_UNCR RGB ultrasound, 693_UNCR CT, MR2_UNCR MR)
transcoded to JPEG-LS lossless by DCMTK's dcmcjpls when it is installed (the
test files hold no JPEG-LS image larger than 64 x 64). Each is marked Burned
In Annotation YES and run through `obscura deid` without the option (the
cheap pass alone, docs/pixels.md); those it writes are the images it clears.

Per cleared image: CPU of `deid DIR` minus `deid DIR --allow-burned-in`
(`--jobs 1`, DIR holding enough copies for about 0.3 s of cheap pass, at
least --copies and at most 40, the two run back to back RUNS times, the
median difference / copies; CPU from the child's rusage, user + system)
against the Tesseract CLI (`--psm 11`, OMP_THREAD_LIMIT=1, start-up
included) on its frames rendered to PNG (the first OCR_FRAMES frames, the
median of 3 runs, scaled to all the frames the cheap pass reads).

    python3 bench/cheap_pass_codecs.py --bin target/release/obscura --work DIR
        [--images SET --first 80]

Per cleared JPEG baseline and JPEG 2000 image also the floor any pass that
reads its pixels stands on: the CPU of the fastest decoder on PyPI for it,
single-threaded and in this process (no start-up, nothing written), on its
first frame's code stream (median of 5, scaled to all the frames the cheap
pass reads), against the same OCR: libjpeg-turbo (PyPI simplejpeg) and
OpenJPEG (PyPI pylibjpeg-openjpeg; "-" when not installed).

With --images, the images are the first --first files of SET instead (the
labelled burned-in set: bench/burned_in_speed.sh). Prints a table, one line
per transfer syntax, and last one summary line: "cheap pass on cleared
images, every transfer syntax: ..." (or "..., SET's first N: ...").
"""

import argparse
import hashlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.data import get_testdata_files
from pydicom.encaps import generate_frames
from pydicom.pixels import apply_color_lut

warnings.simplefilter("ignore")

SYNTAXES = {
    "1.2.840.10008.1.2": "native",
    "1.2.840.10008.1.2.1": "native",
    "1.2.840.10008.1.2.1.99": "native (deflated)",
    "1.2.840.10008.1.2.2": "native (big endian)",
    "1.2.840.10008.1.2.5": "RLE",
    "1.2.840.10008.1.2.4.50": "JPEG baseline",
    "1.2.840.10008.1.2.4.51": "JPEG extended",
    "1.2.840.10008.1.2.4.57": "JPEG lossless",
    "1.2.840.10008.1.2.4.70": "JPEG lossless SV1",
    "1.2.840.10008.1.2.4.80": "JPEG-LS lossless",
    "1.2.840.10008.1.2.4.81": "JPEG-LS near-lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
}
MIN_PIXELS = 64 * 64
# each image's copies hold about this much cheap-pass CPU a run (s), at most MAX_COPIES
CHEAP_CPU = 0.3
MAX_COPIES = 40
TRANSCODE_JLS = ["US1_UNCR.dcm", "693_UNCR.dcm", "MR2_UNCR.dcm"]


def sources(images=None, first=None):
    """(label, path) of every real image considered, deduplicated by content;
    or the first `first` files of the folder `images`."""
    if images is not None:
        return [(p.name, p) for p in sorted(Path(images).glob("*.dcm"))[:first]]
    import deid_data

    paths = [Path(p) for p in get_testdata_files("*")]
    paths += sorted(Path(os.path.dirname(deid_data.__file__)).rglob("*.dcm"))
    seen, out = set(), []
    for p in paths:
        if p.suffix != ".dcm":
            continue
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            out.append((p.name, p))
    return out


def header(path):
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        ts = str(ds.file_meta.TransferSyntaxUID)
        rows, cols = int(ds.Rows), int(ds.Columns)
    except Exception:
        return None
    if ts not in SYNTAXES or rows * cols < MIN_PIXELS:
        return None
    return ds, ts


def gather(work, images=None, first=None):
    """Copy the candidates, marked Burned In Annotation YES, into work/risk."""
    risk = work / "risk"
    risk.mkdir(parents=True)
    kept = []
    for label, path in sources(images, first):
        if header(path) is None:
            continue
        try:
            ds = pydicom.dcmread(path)
            ds.BurnedInAnnotation = "YES"
            ds.save_as(risk / label)
        except Exception:
            continue
        kept.append(label)
    if images is None and shutil.which("dcmcjpls"):
        for name in TRANSCODE_JLS:
            src = risk / name
            if src.exists():
                dst = risk / name.replace(".dcm", "_dcmcjpls.dcm")
                if subprocess.run(["dcmcjpls", src, dst], capture_output=True).returncode == 0:
                    kept.append(dst.name)
    return risk, sorted(set(kept))


def rusage_cpu(cmd, env=None):
    """Run cmd; its CPU seconds (user + system, children included)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, _, ru = os.wait4(proc.pid, 0)
    return ru.ru_utime + ru.ru_stime


def cheap_pass(binary, key, work, path, copies, runs):
    """CPU seconds the cheap pass costs on one image: `deid` of `copies` copies
    minus the same with --allow-burned-in, run back to back, median of `runs`."""
    one = work / "one"
    shutil.rmtree(one, ignore_errors=True)
    one.mkdir()
    for c in range(copies):
        shutil.copy(path, one / f"{c}-{path.name}")
    diffs = []
    for _ in range(runs):
        shutil.rmtree(work / "o1", ignore_errors=True)
        shutil.rmtree(work / "o2", ignore_errors=True)
        base = [binary, "deid", one]
        checked = rusage_cpu(base + [work / "o1", "--key-file", key, "--jobs", "1"])
        unread = rusage_cpu(base + [work / "o2", "--key-file", key, "--jobs", "1", "--allow-burned-in"])
        diffs.append(max(checked - unread, 0.0) / copies)
    return statistics.median(diffs)


def reference_decoder(syntax):
    """The fastest decoder on PyPI of a transfer syntax's frames, in this
    process (no start-up, no output written): libjpeg-turbo for JPEG
    baseline (PyPI simplejpeg), OpenJPEG for JPEG 2000 (PyPI
    pylibjpeg-openjpeg); None for others or when not installed."""
    try:
        if syntax == "JPEG baseline":
            import simplejpeg

            return lambda stream: simplejpeg.decode_jpeg(stream, colorspace="RGB")
        if syntax.startswith("JPEG 2000"):
            import openjpeg

            return openjpeg.decode
    except ImportError:
        return None
    return None


def reference_decode(path, runs=5):
    """CPU seconds of the fastest decoder on PyPI on `path`'s first frame
    (median of `runs`, single-threaded), or None (reference_decoder)."""
    ds = pydicom.dcmread(path)
    decode = reference_decoder(SYNTAXES[str(ds.file_meta.TransferSyntaxUID)])
    if decode is None:
        return None
    frame = next(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))
    cpu = []
    for _ in range(runs):
        start = time.process_time()
        decode(frame)
        cpu.append(time.process_time() - start)
    return statistics.median(cpu)


def frames_png(path, out, limit):
    """Render the first `limit` frames of `path` to PNG as the OCR bench reads them."""
    ds = pydicom.dcmread(path)
    a = ds.pixel_array
    n = int(ds.get("NumberOfFrames", 1) or 1)
    frames = [a[i] for i in range(min(n, limit))] if n > 1 else [a]
    pngs = []
    for i, f in enumerate(frames):
        if ds.PhotometricInterpretation == "PALETTE COLOR":
            f = apply_color_lut(f, ds)
        f = f.astype(float)
        f = (255 * (f - f.min()) / max(np.ptp(f), 1)).astype(np.uint8)
        png = out / f"{path.stem}-{i}.png"
        Image.fromarray(f).save(png)
        pngs.append(png)
    return pngs, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--copies", type=int, default=5)
    ap.add_argument("--ocr-frames", type=int, default=3)
    ap.add_argument("--images", help="a folder of images instead of the test files")
    ap.add_argument("--first", type=int, help="with --images: its first N files")
    args = ap.parse_args()
    source = "every transfer syntax" if args.images is None else f"{args.images}'s first {args.first or 'all'}"
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    key = work / "key"
    subprocess.run([args.bin, "keygen", key], check=True, capture_output=True)
    risk, names = gather(work, args.images, args.first)
    report = work / "risk.json"
    subprocess.run(
        [args.bin, "deid", risk, work / "risk-out", "--key-file", key, "--jobs", "1", "--report", report],
        capture_output=True,
    )
    cleared = sorted(p.name for p in (work / "risk-out").glob("*.dcm"))
    by_syntax = {}
    for name in names:
        ts = SYNTAXES[str(pydicom.dcmread(risk / name, stop_before_pixels=True).file_meta.TransferSyntaxUID)]
        by_syntax.setdefault(ts, [0, 0])[0] += 1
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    rows = []
    png_dir = work / "png"
    png_dir.mkdir()
    for name in cleared:
        ds = pydicom.dcmread(risk / name, stop_before_pixels=True)
        ts = SYNTAXES[str(ds.file_meta.TransferSyntaxUID)]
        by_syntax[ts][1] += 1
        # copies enough for CHEAP_CPU s of cheap pass a run (the machine is noisy)
        estimate = cheap_pass(args.bin, key, work, risk / name, 1, 1)
        copies = min(MAX_COPIES, max(args.copies, math.ceil(CHEAP_CPU / max(estimate, 1e-3))))
        cheap = cheap_pass(args.bin, key, work, risk / name, copies, args.runs)
        pngs, frames = frames_png(risk / name, png_dir, args.ocr_frames)
        ocr_runs = []
        for _ in range(3):
            ocr_runs.append(
                sum(rusage_cpu(["tesseract", p, "-", "--psm", "11"], env=env) for p in pngs) / len(pngs)
            )
        ocr = statistics.median(ocr_runs) * frames
        spp = int(ds.get("SamplesPerPixel", 1))
        size = f"{ds.Rows}x{ds.Columns}{'x3' if spp == 3 else ''}{f' x{frames}f' if frames > 1 else ''}"
        floor = reference_decode(risk / name)
        floor = None if floor is None else floor * frames
        rows.append((ts, name, size, cheap, ocr, cheap / ocr, floor))
    rows.sort()
    print(
        f"{'transfer syntax':<22} {'image':<44} {'size':<18} {'cheap ms':>9} {'OCR ms':>9} {'ratio':>7}"
        f" {'decoder ms':>10} {'its ratio':>9}"
    )
    for ts, name, size, cheap, ocr, ratio, floor in rows:
        decoder = f"{1000 * floor:10.1f} {100 * floor / ocr:8.1f}%" if floor is not None else f"{'-':>10} {'-':>9}"
        print(f"{ts:<22} {name:<44} {size:<18} {1000 * cheap:9.1f} {1000 * ocr:9.0f} {100 * ratio:6.1f}% {decoder}")
    print()
    for ts, (seen, kept) in sorted(by_syntax.items()):
        ratios = [r[5] for r in rows if r[0] == ts]
        figures = (
            f"median {100 * statistics.median(ratios):.1f} %, worst {100 * max(ratios):.1f} %" if ratios else "-"
        )
        print(f"{ts:<22} {kept:>3} cleared of {seen:>3}: {figures}")
    floored = [r for r in rows if r[6] is not None and r[6] >= 0.05 * r[4]]
    print(
        f"cleared images whose decoding alone by the fastest decoder (libjpeg-turbo, OpenJPEG) "
        f"costs 5 % of an OCR or more: {len(floored)} ({', '.join(r[1] for r in floored) or 'none'})"
    )
    quarantined = json.loads(report.read_text()).get("quarantined_by_reason", {}) if report.exists() else {}
    print(f"not cleared, by reason: {quarantined}")
    ratios = [r[5] for r in rows]
    worst = max(rows, key=lambda r: r[5])
    print(
        f"cheap pass on cleared images, {source}: {len(rows)} of {len(names)} images cleared "
        f"({len({r[0] for r in rows})} syntaxes); CPU median {100 * statistics.median(ratios):.1f} %, "
        f"worst {100 * worst[5]:.1f} % ({worst[1]}, {worst[0]}) of a Tesseract CLI run on the same frames "
        f"(--jobs 1, median of {args.runs}, OMP_THREAD_LIMIT=1)"
    )


if __name__ == "__main__":
    sys.exit(main())

"""DICOMweb throughput of `obscura serve`, in one run on this machine:

- STOW-RS ingest: N instances (pydicom's CT_small with fresh UIDs, ~39 KB
  each) in requests of 50, instances/s (each one encrypted, fsync'd and
  indexed; one index transaction per request, group commit);
- WADO-RS: a 1 GiB multi-frame instance retrieved (multipart, decrypted as it
  streams), MB/s, against reading the same file from disk with `cat`
  (page cache warm), and the server's peak RSS;
- metadata of that instance (its header read from the encrypted stream).

Usage: python3 bench/web.py [N] [GIB]   (from the repository root, after
`cargo build --release`). Plain HTTP on loopback, so the server is measured,
not TLS.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from web_common import configure_obscura, peak_rss_mib, start_obscura


def big_instance(path, gib):
    """A native 8-bit multi-frame instance of about `gib` GiB, written in pieces."""
    rows = cols = 1024
    frames = int(gib * 1024)
    ds = pydicom.Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7.2"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "Bench^Big"
    ds.PatientID = "BIG-1"
    ds.Modality = "OT"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta = meta
    head = BytesIO()
    pydicom.dcmwrite(head, ds, enforce_file_format=True)
    n = rows * cols * frames
    with open(path, "wb") as f:
        f.write(head.getvalue())
        f.write(b"\xe0\x7f\x10\x00OB\x00\x00" + n.to_bytes(4, "little"))
        frame = np.random.default_rng(1).integers(0, 255, rows * cols, dtype=np.uint8).tobytes()
        for _ in range(frames):
            f.write(frame)
    return ds


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    gib = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    work = Path(tempfile.mkdtemp(prefix="obscura-web-bench-", dir=os.environ.get("BENCH_DIR")))
    limit = int((gib + 1) * (1 << 30))
    token, web_port = configure_obscura(work, f"max_part_bytes = {limit}\nmax_request_bytes = {limit}\n")
    base = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    blobs = []
    study, series = generate_uid(), generate_uid()
    for i in range(n):
        base.SOPInstanceUID = base.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        base.StudyInstanceUID = study
        base.SeriesInstanceUID = series
        b = BytesIO()
        pydicom.dcmwrite(b, base)
        blobs.append(b.getvalue())
    big = work / "big.dcm"
    big_ds = big_instance(big, gib)
    proc = None
    try:
        proc, url, s = start_obscura(work, token, web_port)
        ct = 'multipart/related; type="application/dicom"; boundary=bench'

        def body(parts):
            for p in parts:
                yield b"--bench\r\nContent-Type: application/dicom\r\n\r\n"
                yield p
                yield b"\r\n"
            yield b"--bench--\r\n"

        t = time.perf_counter()
        for i in range(0, n, 50):
            r = s.post(url + "/studies", data=b"".join(body(blobs[i:i + 50])), headers={"Content-Type": ct})
            assert r.status_code == 200, r.text[:300]
        stow = time.perf_counter() - t
        size = sum(map(len, blobs))
        print(f"STOW-RS: {n} instances ({size / 1e6:.1f} MB) in {stow:.2f} s: {n / stow:.0f} instances/s, "
              f"{size / stow / 1e6:.1f} MB/s")

        t = time.perf_counter()
        r = s.post(url + "/studies", data=_file_body(big), headers={"Content-Type": ct})
        assert r.status_code == 200, r.text[:300]
        big_stow = time.perf_counter() - t
        big_size = big.stat().st_size
        print(f"STOW-RS of one {big_size / 2**30:.2f} GiB instance: {big_stow:.2f} s, "
              f"{big_size / big_stow / 1e6:.0f} MB/s")

        subprocess.run(["cat", str(big)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
        t = time.perf_counter()
        subprocess.run(["cat", str(big)], stdout=subprocess.DEVNULL, check=True)
        cat = time.perf_counter() - t
        inst = f"{url}/studies/{big_ds.StudyInstanceUID}/series/{big_ds.SeriesInstanceUID}/instances/{big_ds.SOPInstanceUID}"
        t = time.perf_counter()
        got = 0
        with s.get(inst, stream=True) as r:
            assert r.status_code == 200
            for chunk in r.iter_content(1 << 20):
                got += len(chunk)
        wado = time.perf_counter() - t
        assert got > big_size
        print(f"WADO-RS of it: {wado:.2f} s, {big_size / wado / 1e6:.0f} MB/s; cat from the page cache "
              f"{cat:.2f} s, {big_size / cat / 1e6:.0f} MB/s; ratio {cat / wado:.2f}x")
        if shutil.which("curl"):
            t = time.perf_counter()
            subprocess.run(["curl", "-s", "-o", "/dev/null", "-H", f"Authorization: Bearer {token}", inst],
                           check=True)
            curl = time.perf_counter() - t
            print(f"WADO-RS of it with curl: {curl:.2f} s, {big_size / curl / 1e6:.0f} MB/s; "
                  f"ratio to cat {cat / curl:.2f}x")
        t = time.perf_counter()
        r = s.get(inst + "/metadata")
        assert r.status_code == 200
        print(f"metadata of it: {time.perf_counter() - t:.2f} s")
        t = time.perf_counter()
        r = s.get(inst + "/frames/1000" if big_ds.NumberOfFrames >= 1000 else inst + "/frames/1")
        assert r.status_code == 200
        print(f"one frame near its end: {time.perf_counter() - t:.2f} s")
        t = time.perf_counter()
        r = s.get(url + "/studies", params={"PatientName": "bench*"})
        assert r.status_code == 200
        print(f"QIDO studies by name wildcard: {(time.perf_counter() - t) * 1000:.1f} ms")
        print(f"server peak RSS: {peak_rss_mib(proc.pid):.0f} MiB")
    finally:
        if proc:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        subprocess.run(["rm", "-rf", str(work)])


def _file_body(path):
    yield b"--bench\r\nContent-Type: application/dicom\r\n\r\n"
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk
    yield b"\r\n--bench--\r\n"


if __name__ == "__main__":
    main()

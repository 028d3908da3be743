#!/usr/bin/env python3
"""Burned-in text peers on the labelled set, for bench/burned_in.sh.

    python3 bench/burned_in_peers.py presidio SET OUT
    python3 bench/burned_in_peers.py tesseract SET OUT

presidio: Microsoft Presidio's DICOM image redactor (PyPI
presidio-image-redactor) with a blank spaCy English pipeline (the large
models are not on PyPI), its defaults otherwise (fill "contrast", header
values used as ad hoc recognisers). tesseract: Tesseract alone, every word
it reads (PSM 11, sparse text) on a frame blacked out, the boxes of frame 1
in every frame. Each writes OUT/NAME for every image of SET; an image the
tool fails on is copied unchanged (its text counts as missed) and named on
stderr. Prints one JSON line: images, failures (by reason), seconds.
"""
import json
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom

warnings.filterwarnings("ignore")


def presidio_engine():
    import spacy
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_image_redactor import DicomImageRedactorEngine, ImageAnalyzerEngine
    folder = Path(tempfile.mkdtemp(prefix="blank-en-"))
    spacy.blank("en").to_disk(folder)
    nlp = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": str(folder)}])
    analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    engine = DicomImageRedactorEngine(ImageAnalyzerEngine(analyzer_engine=analyzer))
    return lambda ds: engine.redact(ds, fill="contrast")


def tesseract_engine():
    import pytesseract
    from PIL import Image
    from pydicom.pixels import apply_color_lut, apply_voi_lut

    def redact(ds):
        arr = ds.pixel_array
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        first = arr[0] if frames > 1 else arr
        shown = apply_color_lut(first, ds) if ds.PhotometricInterpretation == "PALETTE COLOR" \
            else apply_voi_lut(first, ds) if ds.SamplesPerPixel == 1 else first
        shown = shown.astype(float)
        shown = (255 * (shown - shown.min()) / max(np.ptp(shown), 1)).astype(np.uint8)
        data = pytesseract.image_to_data(Image.fromarray(shown), config="--psm 11",
                                         output_type=pytesseract.Output.DICT)
        out = arr.copy()
        fill = out.min()
        for i, text in enumerate(data["text"]):
            if not any(c.isalnum() for c in text):
                continue
            x, y, w, h = (data[k][i] for k in ("left", "top", "width", "height"))
            if frames > 1:
                out[:, y:y + h, x:x + w] = fill
            else:
                out[y:y + h, x:x + w] = fill
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            ds.decompress()
        if ds.PhotometricInterpretation.startswith("YBR"):
            ds.PhotometricInterpretation = "RGB"
        ds.PixelData = out.tobytes()
        return ds

    return redact


def main():
    tool, set_dir, out_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    out_dir.mkdir(parents=True, exist_ok=True)
    redact = {"presidio": presidio_engine, "tesseract": tesseract_engine}[tool]()
    names = sorted(p.name for p in set_dir.glob("*.dcm"))
    failures = Counter()
    start = time.monotonic()
    for name in names:
        ds = pydicom.dcmread(set_dir / name)
        try:
            redact(ds).save_as(out_dir / name)
        except Exception as e:  # the peer's own failure: counted, image copied unchanged
            failures[type(e).__name__] += 1
            print(f"{tool}: {name}: {type(e).__name__}", file=sys.stderr)
            shutil.copyfile(set_dir / name, out_dir / name)
    seconds = time.monotonic() - start
    print(json.dumps({"tool": tool, "images": len(names), "failed": sum(failures.values()),
                      "failures": dict(failures), "seconds": round(seconds, 1)}))


if __name__ == "__main__":
    main()

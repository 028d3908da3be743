#!/usr/bin/env python3
"""How visible each missed text is: its contrast as a viewer would show it.

    python3 tests/burned_in/miss_contrast.py SET SCORE_JSON

SCORE_JSON is what `score.py SET OUTPUT --json FILE` wrote. For every
identifying text it lists as missed, prints the image, kind, size, modality
and the difference in grey levels (0-255) between the text's own pixels and
its ground (the pixels within 2 px of them) in the SET image (the frame it
was drawn on, median of each; and, in brackets, the 90th percentile of its
pixels' distance from the ground's median: the strokes' cores; and the
share of its pixels 16 levels or more from the ground: a few scattered
dots are not legible text), rendered as a viewer shows it by default: grey images through their
first window (or their full stored range without one), palette images
through their palette, colour images as luminance; for colour, also the
difference in chroma (max - min of R, G, B), which luminance does not show;
for grey, also the strokes' contrast rendered spanning the frame's stored
range (the 8-bit rendering of all its values: what the cheap pass reads
when the window clips nothing).
"""
import json
import sys
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import apply_color_lut


def rendered(ds, windowed=True):
    """All frames as (frames, rows, cols, channels) float 0-255, as shown
    (or spanning the stored range, not windowed)."""
    arr = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        bits = ds.RedPaletteColorLookupTableDescriptor[2]
        arr = apply_color_lut(arr, ds).astype(float) * (255.0 / ((1 << bits) - 1))
    elif ds.SamplesPerPixel == 1:
        arr = arr.astype(float) * float(ds.get("RescaleSlope", 1)) + \
            float(ds.get("RescaleIntercept", 0))
        lo, hi = float(arr.min()), float(arr.max())
        if windowed and "WindowCenter" in ds:
            centre = float(np.atleast_1d(ds.WindowCenter)[0])
            width = float(np.atleast_1d(ds.WindowWidth)[0])
            lo, hi = centre - width / 2, centre + width / 2
        arr = np.clip((arr - lo) / max(hi - lo, 1e-9), 0, 1) * 255
        if ds.PhotometricInterpretation == "MONOCHROME1":
            arr = 255 - arr
        arr = arr[..., np.newaxis]
    else:
        arr = arr.astype(float)
    if frames == 1:
        arr = arr[np.newaxis]
    return arr


def around(mask, reach=2):
    """The pixels within reach of the text's (its ground), not its own."""
    grown = mask.copy()
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            shifted = np.roll(np.roll(mask, dy, axis=0), dx, axis=1)
            grown |= shifted
    ring = grown & ~mask
    return ring if ring.any() else ~mask


def contrast(lum, mask):
    """The text's median and its strokes' distance from its ground's median,
    and the share of its pixels at least 16 levels from it (drawn)."""
    ground = np.median(lum[around(mask)])
    distance = abs(lum[mask] - ground)
    return (abs(np.median(lum[mask]) - ground), np.percentile(distance, 90),
            float((distance >= 16).mean()))


def main():
    set_dir, score = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
    key = json.loads((set_dir / "answer_key.json").read_text())
    masks = np.load(set_dir / "masks.npz")
    for miss in score["missed"]:
        name = miss["image"]
        image = key["images"][name]
        i, text = next((i, t) for i, t in enumerate(image["texts"]) if t["box"] == miss["box"])
        mask = masks[f"{name}:{i}"]
        ds = pydicom.dcmread(set_dir / name)
        frame = rendered(ds)[text["frames"][0]]
        x0, y0, x1, y1 = text["box"]
        region = frame[y0:y1, x0:x1]
        if region.shape[-1] == 3:
            lum = region @ np.array([0.299, 0.587, 0.114])
            chroma = region.max(axis=-1) - region.min(axis=-1)
            extra = f" chroma {abs(np.median(chroma[mask]) - np.median(chroma[around(mask)])):5.1f}"
        else:
            lum = region[..., 0]
            full = rendered(ds, windowed=False)[text["frames"][0]][y0:y1, x0:x1, 0]
            extra = f" full range {contrast(full, mask)[1]:5.1f}"
        diff, peak, drawn = contrast(lum, mask)
        print(f"{name} {text['kind']:12s} {text['size']:2d} px {image['modality']:3s} "
              f"{ds.PhotometricInterpretation:12s} bits {ds.BitsStored:2d}: "
              f"{diff:5.1f} grey levels (strokes {peak:5.1f}, {100 * drawn:3.0f} % drawn){extra}")


if __name__ == "__main__":
    main()

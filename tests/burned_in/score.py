#!/usr/bin/env python3
"""Scores burned-in text redaction against the answer key of make_set.py.

    python3 tests/burned_in/score.py SET OUTPUT [--json FILE]

SET is the folder make_set.py wrote (the images, answer_key.json,
masks.npz); OUTPUT holds the redacted images under the same names (as
`obscura deid SET OUTPUT` writes them). An image missing from OUTPUT was
quarantined (or lost): its text did not leak, and it is counted apart.

A text is redacted when it can no longer be told from its surroundings in
every frame it was drawn on: the contrast between its own pixels and the
other pixels of its box cut to its ink (mean luminance) is at most a
tenth of what it was in SET. A black box, a fill with the background or a solid colour all pass;
a text left alone or only dimmed does not.

A text whose pixels cannot be told from its box in SET (no contrast to
lose) is not scored, and counted apart.

Reported: recall over identifying texts and over those matching a header
value (of the images written), precision (identifying texts among the
redacted ones), the area changed outside every labelled box (redaction of
image content nobody asked for), the images quarantined, and recall by
text size, kind, modality and transfer syntax.
"""
import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import apply_color_lut

CONTRAST_LEFT = 0.1  # a redacted text keeps at most this share of its contrast


def luminance(ds):
    """All frames as float luminance, (frames, rows, cols)."""
    arr = ds.pixel_array
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    colour = arr.shape[-1] == 3 and (arr.ndim == 4 or (arr.ndim == 3 and frames == 1))
    if frames == 1:
        arr = arr[np.newaxis]
    arr = arr.astype(float)
    if colour:  # elementwise, not a matrix product: the same bits whatever the layout
        arr = 0.299 * arr[..., 0] + 0.587 * arr[..., 1] + 0.114 * arr[..., 2]
    return arr


def inked(box, mask):
    """The box and mask cut to the text's ink: the font's box has margins
    of ground no glyph touches, which a fill need not cover."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return box, mask
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    x0, y0 = box[0], box[1]
    return [x0 + left, y0 + top, x0 + right, y0 + bottom], mask[top:bottom, left:right]


def contrast(frame, box, mask):
    x0, y0, x1, y1 = box
    region = frame[y0:y1, x0:x1]
    if mask.all() or not mask.any():
        return 0.0
    return abs(region[mask].mean() - region[~mask].mean())


def changed_outside(before, after, boxes, margin=3):
    """Share of the image changed outside every labelled box (dilated)."""
    outside = np.ones(before.shape[1:], bool)
    for x0, y0, x1, y1 in boxes:
        outside[max(y0 - margin, 0):y1 + margin, max(x0 - margin, 0):x1 + margin] = False
    diff = (before != after).any(axis=0) & outside
    return float(diff.sum()) / outside.size


def bucket(size):
    low = min(size, 20) // 4 * 4
    return f"{low:02d}-{24 if low == 20 else low + 3} px"


def score(set_dir, out_dir):
    key = json.loads((set_dir / "answer_key.json").read_text())
    masks = np.load(set_dir / "masks.npz")
    texts, quarantined, outside_changes, unscorable = [], [], [], []
    for name, image in sorted(key["images"].items()):
        out = out_dir / name
        if not out.is_file():
            quarantined.append(name)
            continue
        before = luminance(pydicom.dcmread(set_dir / name))
        after = luminance(pydicom.dcmread(out))
        if before.shape != after.shape:
            sys.exit(f"score.py: {name}: output pixels have another shape")
        outside_changes.append(changed_outside(before, after, [t["box"] for t in image["texts"]]))
        for i, text in enumerate(image["texts"]):
            box, mask = inked(text["box"], masks[f"{name}:{i}"])
            was = {f: contrast(before[f], box, mask) for f in text["frames"]}
            if min(was.values()) == 0:
                unscorable.append(f"{name}:{i}")  # nothing to see in SET: not counted
                continue
            kept = max(contrast(after[f], box, mask) / was[f] for f in text["frames"])
            texts.append({**text, "image": name, "modality": image["modality"],
                          "transfer_syntax": image["transfer_syntax"],
                          "redacted": kept <= CONTRAST_LEFT})
    return key, texts, quarantined, outside_changes, unscorable


def rate(items):
    items = list(items)
    return (sum(t["redacted"] for t in items) / len(items)) if items else None, len(items)


def summary(key, texts, quarantined, outside_changes, unscorable):
    identifying = [t for t in texts if t["identifying"]]
    redacted = [t for t in texts if t["redacted"]]
    result = {
        "images": len(key["images"]), "quarantined": len(quarantined),
        "quarantined_share": len(quarantined) / len(key["images"]),
        "texts_scored": len(texts),
        "texts_unscorable": unscorable,
        "recall_identifying": rate(identifying)[0],
        "recall_matching_header": rate(t for t in identifying if t["matches_header"])[0],
        "precision": (sum(t["identifying"] for t in redacted) / len(redacted)) if redacted
        else None,
        "not_identifying_redacted": sum(not t["identifying"] for t in redacted),
        "changed_outside_boxes_median": float(np.median(outside_changes)) if outside_changes
        else None,
        "changed_outside_boxes_max": max(outside_changes, default=None),
        "missed": [{"image": t["image"], "index": t["text"] and texts.index(t),
                    "kind": t["kind"], "size": t["size"], "font": t["font"],
                    "box": t["box"]} for t in identifying if not t["redacted"]],
        "quarantined_images": quarantined,
    }
    breakdown = {}
    for field in ("size", "kind", "modality", "transfer_syntax"):
        groups = defaultdict(list)
        for t in identifying:
            groups[bucket(t["size"]) if field == "size" else t[field]].append(t)
        breakdown[field] = {k: {"recall": rate(v)[0], "texts": len(v)}
                            for k, v in sorted(groups.items())}
    result["recall_by"] = breakdown
    return result


def pct(x):
    return "n/a" if x is None else f"{100 * x:.1f} %"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = summary(*score(args.set_dir, args.out_dir))
    print(f"images {result['images']}, quarantined {result['quarantined']} "
          f"({pct(result['quarantined_share'])}), texts scored {result['texts_scored']}"
          f" ({len(result['texts_unscorable'])} without contrast in SET, not scored)")
    print(f"recall identifying {pct(result['recall_identifying'])}, matching the header "
          f"{pct(result['recall_matching_header'])}, precision {pct(result['precision'])}")
    print(f"changed outside the labelled boxes: median {pct(result['changed_outside_boxes_median'])}"
          f", max {pct(result['changed_outside_boxes_max'])}")
    for field, groups in result["recall_by"].items():
        print(f"  by {field}: " + ", ".join(f"{k} {pct(v['recall'])} ({v['texts']})"
                                             for k, v in groups.items()))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

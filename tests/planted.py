"""The devset's planted identities (names, IDs, birth dates, original
UIDs), as byte strings to look for in whatever an archive keeps at rest
(its data folder, a database dump, a bucket)."""
import json

import pydicom

from conftest import DEVSET


def devset_files():
    """The devset's DICOM files, in a stable order."""
    files = sorted((DEVSET / "data").rglob("*.dcm"))
    assert len(files) == 63
    return files


def devset_needles():
    """Every planted name, ID and date of 6+ characters in the answer key,
    every original UID, and each file's PatientName, PatientID,
    PatientBirthDate and AccessionNumber."""
    key = json.loads((DEVSET / "answer_key.json").read_text())
    needles = set()
    for entry in key["files"].values():
        for n in entry["needles"]:
            if n["kind"] in ("name", "id", "date") and len(n["n"]) >= 6:
                needles.add(n["n"])
        for u in entry.get("uids", []):
            needles.add(u["uid"])
    for f in devset_files():
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        for kw in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber"):
            v = str(ds.get(kw, "") or "")
            if len(v) >= 6:
                needles.add(v)
    assert len(needles) > 300
    return needles


def found_in(blobs, needles):
    """The needles that occur in any of `blobs` (bytes), sorted."""
    return sorted(n for n in needles if any(n.encode() in b for b in blobs))

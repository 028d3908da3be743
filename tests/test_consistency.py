"""Same key, same output; references and groups intact across files; mappings."""
import csv
import stat
from pathlib import Path

import pydicom
import pytest

from conftest import REPO, SHARED, make_key, run_deid

SAMPLES = REPO / "samples"


def outputs(out):
    return {str(p.relative_to(out)): p for p in sorted(out.rglob("*")) if p.is_file()}


def test_same_key_same_bytes_other_key_other_pseudonyms(key, tmp_path):
    run_deid(SAMPLES, tmp_path / "a", key)
    run_deid(SAMPLES, tmp_path / "b", key)
    a, b = outputs(tmp_path / "a"), outputs(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) >= 6
    for rel in a:
        assert a[rel].read_bytes() == b[rel].read_bytes(), rel
    other = make_key(tmp_path / "other.key")
    run_deid(SAMPLES, tmp_path / "c", other)
    for rel, path in a.items():
        x, y = pydicom.dcmread(str(path)), pydicom.dcmread(str(tmp_path / "c" / rel))
        assert x.SOPInstanceUID != y.SOPInstanceUID, rel
        assert x.PatientID != y.PatientID, rel


def test_references_and_groups_survive(key, tmp_path):
    out = tmp_path / "out"
    run_deid(SAMPLES, out, key, "--mapping-out", tmp_path / "map")
    ds = {rel: pydicom.dcmread(str(p)) for rel, p in outputs(out).items()}
    cts = [v for k, v in ds.items() if k.startswith("patient1/study1/ct_")]
    assert len(cts) == 3
    assert len({c.StudyInstanceUID for c in cts}) == 1
    assert len({c.SeriesInstanceUID for c in cts}) == 1
    assert len({c.FrameOfReferenceUID for c in cts}) == 1
    assert len({c.PatientID for c in cts}) == 1
    ct1, ct2 = ds["patient1/study1/ct_001.dcm"], ds["patient1/study1/ct_002.dcm"]
    assert ct2.ReferencedImageSequence[0].ReferencedSOPInstanceUID == ct1.SOPInstanceUID
    mr, rt = ds["patient2/study1/mr_001.dcm"], ds["patient2/study1/rtstruct_001.dcm"]
    ref = rt.ReferencedFrameOfReferenceSequence[0]
    assert ref.FrameOfReferenceUID == mr.FrameOfReferenceUID
    contour = ref.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0].ContourImageSequence[0]
    assert contour.ReferencedSOPInstanceUID == mr.SOPInstanceUID
    assert mr.PatientID != ct1.PatientID, "two patients, two pseudonyms"
    assert rt.PatientID == mr.PatientID
    for item in ds.values():
        assert item.file_meta.MediaStorageSOPInstanceUID == item.SOPInstanceUID
    # mapping files: owner-only, and they map the originals to what was written
    uid_map = tmp_path / "map" / "uid_mapping.csv"
    for f in (uid_map, tmp_path / "map" / "patid_mapping.csv"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    rows = {r["id_old"]: r["id_new"] for r in csv.DictReader(uid_map.open())}
    original = pydicom.dcmread(str(SAMPLES / "patient1/study1/ct_001.dcm"))
    assert rows[original.StudyInstanceUID] == ct1.StudyInstanceUID
    pids = {r["id_old"]: r["id_new"] for r in csv.DictReader((tmp_path / "map" / "patid_mapping.csv").open())}
    assert pids[original.PatientID] == ct1.PatientID


DEVSET = SHARED / "devset" / "data"


@pytest.mark.skipif(not DEVSET.exists(), reason="shared/devset not beside the checkout")
def test_devset_runs_are_identical_and_linked(key, tmp_path):
    run_deid(DEVSET, tmp_path / "a", key, "--allow-burned-in")
    run_deid(DEVSET, tmp_path / "b", key, "--allow-burned-in")
    a, b = outputs(tmp_path / "a"), outputs(tmp_path / "b")
    assert len(a) == 63
    assert all(a[r].read_bytes() == b[r].read_bytes() for r in a)

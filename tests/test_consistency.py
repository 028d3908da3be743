"""Pseudonyms are a function of the key and the original: the same key gives
the same bytes, another key other pseudonyms; within a run every original UID
and PatientID has one pseudonym, so groups (patient, study, series, frame of
reference) and cross-file references survive; the mapping files say so too."""
import csv
import stat
from collections import defaultdict

import pydicom
import pytest
from pydicom.tag import BaseTag

from conftest import DEVSET, SAMPLES, STANDARD_UID_ROOT, make_key, outputs, read_any, run_deid

DATASETS = {
    "samples": SAMPLES,
    "devset": DEVSET / "data",
}
GROUPS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")


@pytest.fixture(scope="module", params=sorted(DATASETS))
def runs(request, tmp_path_factory):
    """Three runs of one data set: `a` (key 1, 2 jobs, with mappings), `b`
    (key 1, 1 job) and `c` (key 2)."""
    name, src = request.param, DATASETS[request.param]
    assert src.is_dir(), f"{src} is missing from the repository"
    tmp = tmp_path_factory.mktemp(f"consistency-{name}")
    key1, key2 = make_key(tmp / "key1"), make_key(tmp / "key2")
    result = {"name": name, "src": src, "tmp": tmp}
    for run, key, extra in (("a", key1, ["--jobs", 2, "--mapping-out", tmp / "map"]),
                            ("b", key1, ["--jobs", 1]),
                            ("c", key2, ["--jobs", 2])):
        code, report = run_deid(src, tmp / run, "--key-file", key, "--allow-burned-in", *extra)
        assert code in (0, 1), f"{name} run {run}: exit {code}"
        result[run] = tmp / run
        result[run + "_report"] = report
    written = [f["path"] for f in result["a_report"]["files"] if f["outcome"] == "written"]
    assert len(written) >= 6, f"{name}: only {len(written)} files written"
    result["written"] = written
    result["inputs"] = {rel: read_any(src / rel, stop_before_pixels=True) for rel in written}
    result["outputs"] = {rel: pydicom.dcmread(str(tmp / "a" / rel), stop_before_pixels=True) for rel in written}
    return result


def walk_uids(ds, path=()):
    """(path, keyword, value) of every single-valued UI element, any depth."""
    for elem in ds:
        here = path + (elem.tag,)
        if elem.VR == "SQ" and elem.value:
            for i, item in enumerate(elem.value):
                yield from walk_uids(item, here + (i,))
        elif elem.VR == "UI" and isinstance(elem.value, str) and elem.value:
            yield here, elem.keyword, elem.value


def at(ds, path):
    """The value at `path` (tags and item indexes) in ds, or None."""
    node = ds
    for step in path:
        try:
            node = node[step].value if isinstance(step, BaseTag) else node[step]
        except (KeyError, IndexError, TypeError):
            return None
    return node if isinstance(node, str) else None


def uid_pairs(runs):
    """(file, path, original, pseudonym) of every UI element that is in the
    output at the same place as in the input, originals under the standard
    root (classes, syntaxes) left out."""
    for rel in runs["written"]:
        src, out = runs["inputs"][rel], runs["outputs"][rel]
        for path, keyword, value in walk_uids(src):
            if value.startswith(STANDARD_UID_ROOT) or keyword.endswith("ClassUID") \
                    or keyword in ("CodingSchemeUID", "TransferSyntaxUID"):
                continue
            new = at(out, path)
            if new is not None:
                yield rel, path, value, new


# ---------------------------------------------------------------- the key


def test_same_key_gives_byte_identical_output(runs):
    a, b = outputs(runs["a"]), outputs(runs["b"])
    assert a.keys() == b.keys()
    assert set(a) == set(runs["written"])
    differ = [rel for rel in a if a[rel].read_bytes() != b[rel].read_bytes()]
    assert not differ, f"{runs['name']}: same key, other bytes (2 jobs vs 1): {differ}"
    assert runs["a_report"]["files"] == runs["b_report"]["files"]


def test_another_key_gives_other_uids_and_patient_ids(runs):
    same = []
    for rel in runs["written"]:
        x = runs["outputs"][rel]
        y = pydicom.dcmread(str(runs["c"] / rel), stop_before_pixels=True)
        for kw in ("SOPInstanceUID",) + GROUPS:
            vx, vy = str(x.get(kw, "") or ""), str(y.get(kw, "") or "")
            if vx and vx == vy:
                same.append(f"{rel}: {kw}")
    assert not same, f"{runs['name']}: equal under two keys: {same}"


# ---------------------------------------------------------- within a run


@pytest.mark.parametrize("keyword", GROUPS)
def test_groups_keep_one_pseudonym_each_and_stay_apart(runs, keyword):
    """Files that share an original value share the new one; files with
    different originals get different new values."""
    new_by_old, old_by_new = defaultdict(set), defaultdict(set)
    for rel in runs["written"]:
        old = str(runs["inputs"][rel].get(keyword, "") or "")
        new = str(runs["outputs"][rel].get(keyword, "") or "")
        if not old:
            continue
        assert new, f"{rel}: {keyword} emptied"
        new_by_old[old].add(new)
        old_by_new[new].add(old)
    if keyword in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID"):
        assert new_by_old, f"no input with {keyword}"
    split = {o: n for o, n in new_by_old.items() if len(n) > 1}
    merged = {n: o for n, o in old_by_new.items() if len(o) > 1}
    assert not split, f"one original {keyword}, several pseudonyms: {len(split)} group(s)"
    assert not merged, f"different originals, one pseudonym {keyword}: {len(merged)} group(s)"
    kept = [o for o in new_by_old if o in old_by_new]
    assert not kept, f"original {keyword} kept: {len(kept)}"


def test_series_share_frame_of_reference(runs):
    by_series = defaultdict(set)
    for rel in runs["written"]:
        src, out = runs["inputs"][rel], runs["outputs"][rel]
        if "FrameOfReferenceUID" in src and src.get("SeriesInstanceUID"):
            by_series[src.SeriesInstanceUID].add(str(out.get("FrameOfReferenceUID", "")))
    split = {s: f for s, f in by_series.items() if len(f) > 1}
    assert not split, f"series with several FrameOfReferenceUIDs: {len(split)}"


def test_every_uid_is_replaced_the_same_way_everywhere(runs):
    """References included: a UID met in one file's ReferencedSOPInstanceUID
    gets the same pseudonym as in the file that owns it."""
    new_by_old, old_by_new, where = defaultdict(set), defaultdict(set), {}
    for rel, path, old, new in uid_pairs(runs):
        new_by_old[old].add(new)
        old_by_new[new].add(old)
        where.setdefault(old, f"{rel} {'/'.join(map(str, path))}")
    assert new_by_old
    split = [where[o] for o, n in new_by_old.items() if len(n) > 1]
    merged = sorted(n for n, o in old_by_new.items() if len(o) > 1)
    kept = [where[o] for o in new_by_old if o in new_by_old[o]]
    assert not split, f"one original UID, several pseudonyms, e.g. at: {split[:5]}"
    assert not merged, f"different original UIDs, one pseudonym: {merged[:5]}"
    assert not kept, f"original UIDs kept at: {kept[:5]}"


def test_references_point_at_the_referenced_files_new_uids(runs):
    """Every reference to another written file's SOPInstanceUID that is still
    in the output points at that file's new SOPInstanceUID."""
    new_sop = {str(runs["inputs"][r].get("SOPInstanceUID", "")): str(runs["outputs"][r].SOPInstanceUID)
               for r in runs["written"]}
    new_sop.pop("", None)
    broken = []
    for rel, path, old, new in uid_pairs(runs):
        if len(path) > 1 and old in new_sop and new != new_sop[old]:
            broken.append(f"{rel}: {'/'.join(map(str, path))}")
    assert not broken, broken[:10]


def test_media_storage_sop_instance_uid_matches(runs):
    bad = [rel for rel, ds in runs["outputs"].items()
           if ds.file_meta.get("MediaStorageSOPInstanceUID") != ds.get("SOPInstanceUID")
           or ds.file_meta.get("MediaStorageSOPClassUID") != ds.get("SOPClassUID")]
    assert not bad, bad


def test_mapping_files_are_private_and_match_the_output(runs):
    folder = runs["tmp"] / "map"
    tables = {}
    for name in ("uid_mapping.csv", "patid_mapping.csv"):
        path = folder / name
        assert path.is_file(), f"{name} missing"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{name} mode {oct(path.stat().st_mode)}"
        with path.open(newline="") as f:
            reader = csv.reader(f)
            assert next(reader) == ["id_old", "id_new"], f"{name} header"
            rows = list(reader)
        table = dict(rows)
        assert len(table) == len(rows), f"{name}: an original listed twice"
        tables[name] = table
    uids, pids = tables["uid_mapping.csv"], tables["patid_mapping.csv"]
    wrong = []
    for rel in runs["written"]:
        src, out = runs["inputs"][rel], runs["outputs"][rel]
        for kw in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            if src.get(kw) and uids.get(str(src.get(kw))) != str(out.get(kw)):
                wrong.append(f"{rel}: {kw}")
        if src.get("PatientID") and pids.get(str(src.PatientID)) != str(out.get("PatientID")):
            wrong.append(f"{rel}: PatientID")
    assert not wrong, wrong


# ------------------------------------------------- the samples' references


@pytest.mark.parametrize("runs", ["samples"], indirect=True)
def test_sample_references_are_intact(runs):
    """The references planted in samples/ (see samples/MANIFEST.md)."""
    ds = runs["outputs"]
    ct1, ct2 = ds["patient1/study1/ct_001.dcm"], ds["patient1/study1/ct_002.dcm"]
    assert ct2.ReferencedImageSequence[0].ReferencedSOPInstanceUID == ct1.SOPInstanceUID
    mr, rt = ds["patient2/study1/mr_001.dcm"], ds["patient2/study1/rtstruct_001.dcm"]
    ref_for = rt.ReferencedFrameOfReferenceSequence[0]
    assert ref_for.FrameOfReferenceUID == mr.FrameOfReferenceUID
    study = ref_for.RTReferencedStudySequence[0]
    assert study.ReferencedSOPInstanceUID == mr.StudyInstanceUID
    series = study.RTReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == mr.SeriesInstanceUID
    assert series.ContourImageSequence[0].ReferencedSOPInstanceUID == mr.SOPInstanceUID
    assert rt.StructureSetROISequence[0].ReferencedFrameOfReferenceUID == mr.FrameOfReferenceUID
    contour = rt.ROIContourSequence[0].ContourSequence[0].ContourImageSequence[0]
    assert contour.ReferencedSOPInstanceUID == mr.SOPInstanceUID
    if "FrameOfReferenceUID" in rt:
        assert rt.FrameOfReferenceUID == mr.FrameOfReferenceUID
    # two patients, two pseudonyms; one patient, one pseudonym across files
    patient1 = {ds[r].PatientID for r in ds if r.startswith("patient1/")}
    patient2 = {ds[r].PatientID for r in ds if r.startswith("patient2/")}
    assert len(patient1) == 1 and len(patient2) == 1 and patient1 != patient2, (patient1, patient2)

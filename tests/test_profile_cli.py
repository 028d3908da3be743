"""`obscura profile show` and `obscura deid --explain`: output snapshots,
no values in explanations, clear errors for broken profile files.

Each snapshot test compares stdout with a checked-in file under
tests/snapshots/. When a change of the table or of an option is intended,
regenerate the snapshots and review the diff before committing:

    OBSCURA_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/test_profile_cli.py

Only what legitimately varies is normalized: the input path in the `file:`
header line of --explain.
"""
import os
import re

import pydicom
import pytest

from conftest import REPO, iter_elements, obscura, pydicom_test_files

SNAPSHOTS = REPO / "tests" / "snapshots"
UPDATE = os.environ.get("OBSCURA_UPDATE_SNAPSHOTS") == "1"
EXPLAIN_FILE = "CT_small.dcm"

CASES = {
    "profile-show-basic": ["profile", "show"],
    "profile-show-modified-dates-clean-descriptors": [
        "profile", "show", "--option", "retain-long-modified-dates", "--option", "clean-descriptors"],
    "profile-show-ai-vendor": ["profile", "show", "--profile", REPO / "profiles" / "ai-vendor.toml"],
    "explain-ct-small-basic": ["deid", "--explain", "{file}"],
    "explain-ct-small-research": ["deid", "--explain", "{file}", "--profile", REPO / "profiles" / "research.toml"],
    "explain-ct-small-options": [
        "deid", "--explain", "{file}", "--option", "retain-long-full-dates", "--option", "retain-safe-private",
        "--option", "retain-patient-characteristics", "--option", "clean-descriptors"],
}


def run_case(name):
    path = pydicom_test_files() / EXPLAIN_FILE
    args = [str(path) if a == "{file}" else a for a in CASES[name]]
    proc = obscura(*args)
    assert proc.returncode == 0, f"{name}: exit {proc.returncode}: {proc.stderr}"
    return normalize(proc.stdout, path)


def normalize(out, path):
    return out.replace(str(path), f"<pydicom>/{path.name}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_snapshot(name):
    actual = run_case(name)
    snapshot = SNAPSHOTS / f"{name}.txt"
    if UPDATE:
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        snapshot.write_text(actual)
    assert snapshot.is_file(), f"{snapshot} missing: run with OBSCURA_UPDATE_SNAPSHOTS=1"
    expected = snapshot.read_text()
    if actual != expected:
        import difflib

        diff = "".join(list(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                                 str(snapshot), "actual"))[:80])
        pytest.fail(f"{name} differs from its snapshot (OBSCURA_UPDATE_SNAPSHOTS=1 to accept):\n{diff}")


def test_snapshots_are_all_used():
    names = {p.stem for p in SNAPSHOTS.glob("*.txt")}
    assert names <= set(CASES), f"stale snapshots: {sorted(names - set(CASES))}"


# -------------------------------------------------------- no values shown

VALUE_KEYWORDS = ("PatientName", "PatientID", "InstitutionName", "StudyDate", "PatientBirthDate",
                  "StationName", "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyInstanceUID",
                  "SeriesInstanceUID", "SOPInstanceUID", "StudyDescription", "ImageComments", "PatientWeight",
                  "PatientAge")


@pytest.mark.parametrize("name", [n for n in sorted(CASES) if n.startswith("explain")])
def test_explain_shows_no_value(name):
    ds = pydicom.dcmread(str(pydicom_test_files() / EXPLAIN_FILE), stop_before_pixels=True)
    out = run_case(name)
    values = set()
    for kw in VALUE_KEYWORDS:
        v = str(ds.get(kw, "") or "").strip(" \0")
        if v:
            values.add(v)
            values.update(p for p in re.split(r"[\^ ]+", v) if len(p) >= 4)
    # every text value of the file, private ones included, at any depth; not
    # private creators, which name a vendor's dictionary and are shown on purpose
    for elem in iter_elements(ds):
        if elem.tag.group % 2 and elem.tag.element <= 0xFF:
            continue
        if elem.VR in ("LO", "SH", "PN", "LT", "ST", "UT", "DA", "DT", "TM", "UI", "AS") \
                and isinstance(elem.value, str) and len(elem.value.strip(" \0")) >= 6:
            values.add(elem.value.strip(" \0"))
    assert len(values) > 20
    found = sorted(v for v in values if v in out)
    assert not found, f"{name}: values of the input printed: {found}"
    lines = out.splitlines()
    assert any(l.startswith("PATH") and "ACTION" in l and "RULE" in l for l in lines)
    # every element of the file, at every depth, has a line, except inside a
    # sequence that is removed whole (trailing padding (FFFC,FFFC) is dropped
    # by design; pixel data: see the test below)
    actions = {l.split()[0]: l for l in lines if l.startswith("(")}
    missing = [p for p in element_paths(ds) if p not in actions
               and not any(" remove " in actions.get(a, "") for a in ancestors(p))]
    missing = [p for p in missing if not p.endswith(("(FFFC,FFFC)", "(7FE0,0010)"))]
    assert not missing, f"{name}: elements without a line: {missing[:10]}"


def element_paths(ds, prefix=""):
    for elem in ds:
        path = f"{prefix}({elem.tag.group:04X},{elem.tag.element:04X})"
        yield path
        if elem.VR == "SQ" and elem.value:
            for i, item in enumerate(elem.value):
                yield from element_paths(item, f"{path}/[{i}]/")


def ancestors(path):
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts), 2)]


def test_explain_lists_pixel_data():
    """--explain prints "every element (at every depth)" (docs/profiles.md),
    the pixel data too, though it never enters the engine."""
    out = run_case("explain-ct-small-basic")
    assert any(l.startswith("(7FE0,0010)") for l in out.splitlines()), "no (7FE0,0010) line"


# ------------------------------------------------------ broken profiles

BROKEN = {
    "unknown-option": ('name = "x"\nbase = "basic"\noptions = ["retain-everything"]\n', "retain-everything"),
    "unknown-action": ('name = "x"\nbase = "basic"\n[[override]]\nattribute = "PatientSex"\naction = "obliterate"\n',
                       "action must be"),
    "unknown-attribute": ('name = "x"\nbase = "basic"\n[[override]]\nattribute = "PatientShoeSize"\naction = "keep"\n',
                          "PatientShoeSize"),
    "unknown-base": ('name = "x"\nbase = "paranoid"\n', "paranoid"),
    "conflicting-dates": ('name = "x"\nbase = "basic"\n'
                          'options = ["retain-long-full-dates", "retain-long-modified-dates"]\n', "conflict"),
    "not-toml": ('name = "x\nbase = basic\n', None),
    "unknown-key": ('name = "x"\nbase = "basic"\nkeep_everything = true\n', "keep_everything"),
    "replace-without-value": ('name = "x"\nbase = "basic"\n[[override]]\nattribute = "StudyDescription"\n'
                              'action = "replace"\n', "value"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_profile_is_refused_with_a_clear_message(case, tmp_path, key):
    content, needle = BROKEN[case]
    profile = tmp_path / f"{case}.toml"
    profile.write_text(content)
    src = pydicom_test_files() / EXPLAIN_FILE
    for args in (["profile", "show", "--profile", profile],
                 ["deid", "--explain", src, "--profile", profile],
                 ["deid", src, tmp_path / "out", "--key-file", key, "--profile", profile]):
        proc = obscura(*args)
        assert proc.returncode == 2, f"{case}: {args[:2]}: exit {proc.returncode}\n{proc.stdout[-500:]}"
        message = proc.stderr.strip()
        assert message, f"{case}: no message"
        assert str(profile.name) in message or "profile" in message.lower(), f"{case}: {message}"
        if needle:
            assert needle.lower() in message.lower(), f"{case}: message does not name {needle!r}: {message}"
        assert len(message) < 2000 and "panicked" not in message, message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.dcm")), "written anyway"

"""Identity anywhere: a value the profile removes where Table E.1-1 names it
does not survive where the table does not name it.

A patient's name, ID and birth date and a referring physician's name are
planted into attributes the table does not name (code meanings at two
depths, an SR code meaning, Dose Comment, waveform annotation text, an
overlay label, a content label, a private element without a creator, a safe
private element, an unknown even-group element, a label, a body part, a
convolution kernel, a date, a person name) of real files from pydicom's test set, beside the
same values in the attributes the table does name. None may survive the
basic profile or any of six option combinations; with the check turned off
by a profile, they do (so the test can fail).
"""
import re

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from conftest import obscura, run_deid

NAME = "QUIMBY^HARRIET^ANNE"
PATIENT_ID = "QX-48213977"
BIRTH_DATE = "19640217"
PHYSICIAN = "FAIRWEATHER^IGNATIUS"

# What must not be found anywhere in an output file (case-insensitive bytes).
NEEDLES = [b"quimby", b"harriet", b"48213977", b"19640217", b"02/17/1964", b"1964-02-17",
           b"fairweather", b"ignatius"]

OPTION_SETS = {
    "basic": [],
    "clean": ["clean-descriptors", "clean-structured-content"],
    "graphics": ["clean-graphics"],
    "safe-private": ["retain-safe-private"],
    "modified-dates": ["retain-long-modified-dates", "clean-descriptors"],
    "retain-identity": ["retain-device-identity", "retain-institution-identity",
                        "retain-patient-characteristics"],
    "full-dates-uids": ["retain-long-full-dates", "retain-uids", "clean-structured-content",
                        "clean-graphics"],
}


def code(meaning, value="T-D0001", scheme="SRT"):
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def with_identity(ds):
    """The identity where the table names it."""
    ds.PatientName = NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = BIRTH_DATE
    ds.ReferringPhysicianName = PHYSICIAN
    return ds


# Each planting takes a file of pydicom's test set and plants in it.
def plant_ct(ds):
    anatomy = code("Chest of Harriet Quimby")
    anatomy.AnatomicRegionModifierSequence = Sequence([code("Dr. Ignatius Fairweather's side")])
    ds.AnatomicRegionSequence = Sequence([anatomy])
    ds.BodyPartExamined = "QUIMBY"
    ds.ConvolutionKernel = "QX-48213977"
    ds.add_new(0x00700080, "CS", "QUIMBY_HARRIET")  # Content Label
    ds.add_new(0x00700081, "LO", "For Quimby, Harriet, DOB 02/17/1964")  # Content Description
    ds.add_new(0x00209453, "LO", "Quimby 1")  # Frame Label
    ds.add_new(0x00141020, "DA", BIRTH_DATE)  # Expiry Date
    ds.add_new(0x00142006, "PN", PHYSICIAN)  # Evaluator Name
    ds.add_new(0x00091010, "LO", "QUIMBY^HARRIET")  # private, no creator
    block = ds.private_block(0x0043, "GEMS_PARM_01", create=True)
    block.add_new(0x27, "SH", "48213977")  # Scan Pitch Ratio, listed safe
    ds.add_new(0x0040FFF0, "UN", b"Harriet Quimby ")  # unknown even-group element
    # a region overlay with a label
    ds.add_new(0x60000010, "US", 8)
    ds.add_new(0x60000011, "US", 8)
    ds.add_new(0x60000040, "CS", "R")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60001500, "LO", "Quimby region")
    ds.add_new(0x60003000, "OW", b"\x00" * 8)
    return ds


def plant_sr(ds):
    items = list(ds.ContentSequence)
    items[0].ConceptNameCodeSequence[0].CodeMeaning = "Findings for Harriet Quimby"
    return ds


def plant_dose(ds):
    ds.DoseComment = "Plan of Harriet Quimby (QX-48213977), ordered by Dr Fairweather"
    return ds


def plant_waveform(ds):
    note = Dataset()
    note.UnformattedTextValue = "Quimby Harriet 1964-02-17 read by Ignatius Fairweather"
    note.ReferencedWaveformChannels = [1, 1]
    ds.WaveformAnnotationSequence = Sequence([note])
    return ds


PLANTINGS = {
    "CT_small.dcm": plant_ct,
    "test-SR.dcm": plant_sr,
    "rtdose.dcm": plant_dose,
    "waveform_ecg.dcm": plant_waveform,
}

# The attributes planted outside the table, as (gggg,eeee) of the leaf.
OUTSIDE_TABLE = ["(0008,0104)", "(0018,0015)", "(0018,1210)", "(0070,0080)", "(0070,0081)",
                 "(0020,9453)", "(0014,1020)", "(0014,2006)", "(3004,0006)", "(0070,0006)",
                 "(60xx,1500)", "(0040,FFF0)", "(0043,xx27)", "(0009,1010)"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("planted") / "in"
    folder.mkdir()
    for name, plant in PLANTINGS.items():
        ds = pydicom.dcmread(get_testdata_file(name))
        plant(with_identity(ds)).save_as(folder / name, enforce_file_format=True)
    return folder


def table_rows():
    """The tags `obscura profile show` lists as rows of Table E.1-1."""
    out = obscura("profile", "show").stdout
    return set(re.findall(r"^(\([0-9A-Fx]{4},[0-9A-Fx]{4}\))", out, re.M))


def test_the_planted_attributes_are_not_named_by_the_table():
    rows = table_rows()
    assert len(rows) > 500
    named = [t for t in OUTSIDE_TABLE if t in rows and not t.startswith("(0043") and t != "(0009,1010)"]
    assert named == [], "planted where the table acts: not a test of identity elsewhere"
    assert len(OUTSIDE_TABLE) >= 12


def survivors(folder):
    """{file: [needles found]} over every output file."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes().lower()
        hits = [n.decode() for n in NEEDLES if n in data]
        if hits:
            found[path.name] = hits
    return found


@pytest.mark.parametrize("name", OPTION_SETS)
def test_no_planted_value_survives(planted, tmp_path, key, name):
    out = tmp_path / "out"
    options = [a for o in OPTION_SETS[name] for a in ("--option", o)]
    code, report = run_deid(planted, out, "--key-file", key, *options)
    assert code == 0, report["counts"]
    assert report["counts"]["written"] == len(PLANTINGS)
    assert survivors(out) == {}
    for path in out.rglob("*.dcm"):
        pydicom.dcmread(path)  # still a readable DICOM file


def test_with_the_check_off_they_survive(planted, tmp_path, key):
    """The profile switch works, and the plantings are real leaks without it."""
    profile = tmp_path / "off.toml"
    profile.write_text("find_identity_elsewhere = false\n")
    out = tmp_path / "out"
    code, _ = run_deid(planted, out, "--key-file", key, "--profile", profile)
    assert code == 0
    found = survivors(out)
    assert set(found) == set(PLANTINGS), found
    assert {"quimby", "harriet", "fairweather"} <= set(found["CT_small.dcm"])


def test_explain_names_the_rule(planted):
    proc = obscura("deid", "--explain", planted / "rtdose.dcm")
    assert proc.returncode == 0, proc.stderr
    line = next(l for l in proc.stdout.splitlines() if "(3004,0006)" in l)
    assert "check" in line and "identity removed elsewhere" in line, line
    assert "Quimby" not in proc.stdout

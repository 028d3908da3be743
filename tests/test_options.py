"""PS3.15 Annex E options (`obscura deid --option NAME`) on the real corpus.

Every test compares the basic run (`real_run`) with a run of the same inputs
and key with the option on (`corpus_run`, one run per option set per
session), and fails if the option were ignored: what the option retains is
kept, what it moves is moved consistently, what it cleans is there, with its
clinical words and without the identifying values of the header.

The attributes each retain option keeps are read from `obscura profile show
--option NAME` (its table rows whose rule names the option) and checked on
every file that carries them; each test also names attributes that the real
corpus must exercise, so an empty set cannot pass.

Clean Graphics has no real input in the corpus beyond two Siemens graphics
overlays (type G), so its test also uses copies of real files given a region
overlay (type R), overlay comments and a graphic annotation (built with
pydicom in the test, see `graphics_inputs`).
"""
import datetime
import re
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from conftest import (
    CLEAN_ALL, OPTION_CODES, REPO, RETAIN_ALL, STANDARD_UID_ROOT, corpus_sources, iter_elements,
    obscura, read_any, run_deid,
)

# Every option set run in this session (the dciodvfy tests use three of them):
# the codes test checks each.
COMBOS = [(o,) for o in OPTION_CODES] + [
    RETAIN_ALL + CLEAN_ALL + ("retain-long-full-dates",),
    RETAIN_ALL + CLEAN_ALL + ("retain-long-modified-dates",),
    ("clean-descriptors", "clean-structured-content"),
]


def written(report):
    return [f["path"] for f in report["files"] if f["outcome"] == "written"]


def text(value):
    return "" if value is None else str(value).strip(" \0")


def problems_message(problems, limit=40):
    more = f"\n... and {len(problems) - limit} more" if len(problems) > limit else ""
    return f"{len(problems)} problem(s):\n" + "\n".join(problems[:limit]) + more


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def inputs(real_corpus, real_run):
    """{rel: input dataset (no pixels)} of every file the basic run wrote."""
    _, _, _, report = real_run
    return {rel: read_any(real_corpus / rel, stop_before_pixels=True) for rel in written(report)}


@pytest.fixture(scope="session")
def pairs(corpus_run, inputs):
    """pairs(*options) -> [(rel, input dataset, output dataset)] of the run
    with these options (outputs read once per option set)."""
    cache = {}

    def get(*options):
        key = tuple(sorted(options))
        if key not in cache:
            _, out, code, report = corpus_run(*options)
            assert code in (0, 1), f"--option {options}: exit {code}"
            result = []
            for rel in written(report):
                src = inputs.get(rel)
                if src is None:
                    continue
                result.append((rel, src, pydicom.dcmread(str(out / rel), stop_before_pixels=True)))
            assert len(result) > 150, f"{options}: only {len(result)} outputs"
            cache[key] = result
        return cache[key]

    return get


def profile_rows(*options):
    """[(tag text, attribute, action, rule)] of `obscura profile show --option ...`."""
    args = [a for o in options for a in ("--option", o)]
    proc = obscura("profile", "show", *args)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = next(i for i, l in enumerate(lines) if l.startswith("TAG") and "ACTION" in l)
    h = lines[header]
    cols = [h.index("ATTRIBUTE"), h.index("ACTION"), h.index("RULE")]
    rows = []
    for line in lines[header + 1:]:
        if not line.startswith("("):
            continue
        rows.append((line[:cols[0]].strip(), line[cols[0]:cols[1]].strip(),
                     line[cols[1]:cols[2]].strip(), line[cols[2]:].strip()))
    return rows


def option_tags(option, action):
    """Standard tags (ints) the option gives `action` in `profile show`."""
    tags = set()
    for tag, _, act, rule in profile_rows(option):
        m = re.fullmatch(r"\(([0-9A-F]{4}),([0-9A-F]{4})\)", tag)
        if m and act == action and option in rule:
            tags.add(int(m.group(1) + m.group(2), 16))
    assert tags, f"profile show lists no {action} row for {option}"
    return tags


def same_value(a, b):
    if a.VR == "SQ" or b.VR == "SQ":
        return len(a.value or []) == len(b.value or [])
    return a.value == b.value or text(a.value) == text(b.value)


# ----------------------------------------------------------- retain options

RETAIN_CASES = {
    # option: attributes the corpus must show kept
    "retain-uids": {"SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"},
    "retain-device-identity": {"StationName", "DeviceSerialNumber"},
    "retain-institution-identity": {"InstitutionName", "InstitutionAddress"},
    "retain-patient-characteristics": {"PatientSex", "PatientAge", "PatientWeight", "PatientSize"},
    "retain-long-full-dates": {"StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate",
                               "StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime"},
}


@pytest.mark.parametrize("option", sorted(RETAIN_CASES))
def test_retain_option_keeps_its_attributes(pairs, option):
    """Every attribute the option keeps (per `profile show`) that an input
    carries with a value comes out with the same value; the basic run
    changes at least one of them on the same files."""
    kept = option_tags(option, "keep")
    problems, seen, basic_changed = [], set(), set()
    basic = {rel: out for rel, _, out in pairs()}
    for rel, src, out in pairs(option):
        for elem in src:
            if elem.tag not in kept or elem.VR == "SQ" or not text(elem.value):
                continue
            seen.add(elem.keyword)
            if elem.tag not in out:
                problems.append(f"{rel}: {elem.keyword} removed")
            elif not same_value(elem, out[elem.tag]):
                problems.append(f"{rel}: {elem.keyword} changed")
            b = basic.get(rel)
            if b is not None and (elem.tag not in b or not same_value(elem, b[elem.tag])):
                basic_changed.add(elem.keyword)
    assert RETAIN_CASES[option] <= seen, f"corpus lacks {RETAIN_CASES[option] - seen}"
    assert RETAIN_CASES[option] <= basic_changed, \
        f"the basic run already keeps {RETAIN_CASES[option] - basic_changed}: the test cannot tell"
    assert not problems, problems_message(problems)


def public_elements(ds):
    """Every standard element at any depth, private ones (and what they nest) left out."""
    for elem in ds:
        if elem.tag.group % 2:
            continue
        yield elem
        if elem.VR == "SQ" and elem.value:
            for item in elem.value:
                yield from public_elements(item)


def instance_uids(ds):
    """UI values of the data set (not the file meta), any depth, except those
    naming a kind of thing (classes, syntaxes, coding schemes)."""
    found = set()
    for elem in public_elements(ds):
        if elem.VR != "UI" or not elem.value or re.search(r"(ClassUID|TransferSyntaxUID|CodingSchemeUID)",
                                                          elem.keyword or ""):
            continue
        values = [elem.value] if isinstance(elem.value, str) else list(elem.value)
        found.update(text(v) for v in values if text(v))
    return found


def test_retain_uids_keeps_every_instance_uid_at_any_depth(pairs):
    """File meta and references included."""
    problems, checked = [], 0
    for rel, src, out in pairs("retain-uids"):
        originals = {u for u in instance_uids(src) if not u.startswith(STANDARD_UID_ROOT)}
        checked += len(originals)
        missing = sorted(originals - instance_uids(out))
        if missing:
            problems.append(f"{rel}: {len(missing)} UID(s) not kept, e.g. {missing[:2]}")
        if out.file_meta.MediaStorageSOPInstanceUID != src.get("SOPInstanceUID", out.file_meta.MediaStorageSOPInstanceUID):
            problems.append(f"{rel}: MediaStorageSOPInstanceUID is not the original SOPInstanceUID")
    assert checked > 500
    assert not problems, problems_message(problems)


# ------------------------------------------------------ retain-safe-private

SAFE_PRIVATE_RS = REPO / "crates" / "obscura-deid" / "src" / "table" / "safe_private.rs"


def safe_private_table():
    """{(CREATOR upper, group, element offset)} listed safe."""
    src = SAFE_PRIVATE_RS.read_text()
    rows = re.findall(r'SafePrivate \{ creator: "((?:[^"\\]|\\.)*)", group: 0x([0-9A-Fa-f]+), '
                      r'element: 0x([0-9A-Fa-f]+)', src)
    assert len(rows) > 300, "safe_private.rs not parsed"
    return {(c.replace('\\"', '"').strip().upper(), int(g, 16), int(e, 16)) for c, g, e in rows}


def private_elements(ds):
    """({(CREATOR, group, offset): element}, {(group, block): creator},
    [tags of private elements without a creator]) at the top level."""
    creators = {}
    for elem in ds:
        if elem.tag.group % 2 and 0x10 <= elem.tag.element <= 0xFF and isinstance(elem.value, (str, bytes)):
            value = elem.value.decode("latin-1") if isinstance(elem.value, bytes) else elem.value
            creators[(elem.tag.group, elem.tag.element)] = value.strip(" \0").upper()
    found, orphans = {}, []
    for elem in ds:
        g, e = elem.tag.group, elem.tag.element
        if not g % 2 or e < 0x1000 or g <= 0x0007:
            continue
        creator = creators.get((g, e >> 8))
        if creator is None:
            orphans.append(str(elem.tag))
        else:
            found[(creator, g, e & 0xFF)] = elem
    return found, creators, orphans


def test_retain_safe_private_keeps_safe_and_drops_the_rest(pairs):
    safe = safe_private_table()
    problems, kept, dropped = [], set(), 0
    for rel, src, out in pairs("retain-safe-private"):
        before, _, _ = private_elements(src)
        after, out_creators, orphans = private_elements(out)
        if orphans:
            problems.append(f"{rel}: private elements without their creator: {orphans[:4]}")
        for key, elem in before.items():
            if key in safe:
                if key not in after:
                    problems.append(f"{rel}: safe {key[0]} ({key[1]:04X},xx{key[2]:02X}) removed")
                elif not same_value(elem, after[key]):
                    problems.append(f"{rel}: safe {key[0]} ({key[1]:04X},xx{key[2]:02X}) changed")
                else:
                    kept.add(key)
            elif key in after:
                problems.append(f"{rel}: unsafe {key[0]} ({key[1]:04X},xx{key[2]:02X}) kept")
            else:
                dropped += 1
        for key in after:
            if key not in safe:
                problems.append(f"{rel}: {key} in the output, not listed safe")
    assert {k[0] for k in kept} >= {"GEMS_ACQU_01"}, f"kept only {sorted(kept)[:10]}"
    assert dropped > 100
    assert not problems, problems_message(problems)


def test_retain_safe_private_drops_creators_with_nothing_kept(pairs):
    """docs/profiles.md: "every other private attribute and creator is
    removed": a creator listed in the safe table goes when none of its
    attributes in the file is safe (pydicom-data/JPGLosslessP14SV1_1s_1f_8b.dcm
    has (2001,0010) 'Philips Imaging DD 001' with only (2001,1063), not safe)."""
    problems = []
    for rel, _, out in pairs("retain-safe-private"):
        after, out_creators, _ = private_elements(out)
        useful = {(c, g, e >> 8) for (c, g, _), e in ((k, v.tag.element) for k, v in after.items())}
        for (g, block), creator in out_creators.items():
            if (creator, g, block) not in useful:
                problems.append(f"{rel}: creator {creator!r} ({g:04X},00{block:02X}) kept with nothing safe")
    assert not problems, problems_message(problems)


# ------------------------------------------------------------------- dates

def parse_da(value):
    try:
        if not re.fullmatch(r"\d{8}", value):
            return None
        return datetime.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None


def walk_dates(ds, path=()):
    """(path, keyword, VR, value) of every single-valued DA/DT/TM element, any depth."""
    for elem in ds:
        here = path + (elem.tag,)
        if elem.VR == "SQ" and elem.value:
            for i, item in enumerate(elem.value):
                yield from walk_dates(item, here + (i,))
        elif elem.VR in ("DA", "DT", "TM") and isinstance(elem.value, (str, pydicom.valuerep.DA,
                                                                         pydicom.valuerep.DT,
                                                                         pydicom.valuerep.TM)):
            raw = elem.value
            original = getattr(raw, "original_string", None)
            yield here, elem.keyword, elem.VR, text(original if original is not None else raw)


def date_value(ds, path):
    elem = None
    node = ds
    for i, step in enumerate(path):
        try:
            if i % 2 == 0:
                elem = node[step]
                node = elem.value
            else:
                node = node[step]
        except (KeyError, IndexError, TypeError):
            return None
    if elem is None or isinstance(node, (Sequence, list)):
        return None
    original = getattr(node, "original_string", None)
    return text(original if original is not None else node)


CONTENT_SEQUENCE = pydicom.tag.Tag(0x0040A730)


def patient_identity(ds):
    """Whose dates these are: the PatientID, or without one the name and
    birth date (as the engine keys pseudonyms and date offsets)."""
    pid = text(ds.get("PatientID"))
    return pid or ("name", text(ds.get("PatientName")), text(ds.get("PatientBirthDate")))


def test_retain_long_modified_dates_moves_each_patients_dates_consistently(pairs):
    """Each patient's dates (DA and the date part of DT, any depth) move back
    by one offset: a whole number of weeks, 1 to 520; DT times and UTC
    offsets and TM values are kept; every date left is a valid date."""
    offsets, problems, moved, times = {}, [], 0, 0
    for rel, src, out in pairs("retain-long-modified-dates"):
        patient = patient_identity(src)
        for path, keyword, vr, old in walk_dates(src):
            new = date_value(out, path)
            if not old or not new:
                continue
            if new in ("19000101", "19000101000000", "000000"):
                continue  # inside content replaced as D: see test_sr_dates_...
            if vr == "TM":
                times += 1
                if new != old:
                    problems.append(f"{rel}: {keyword} (TM) changed: {old!r} -> {new!r} at {path}")
                continue
            d_old, d_new = parse_da(old[:8]), parse_da(new[:8])
            if d_new is None:
                problems.append(f"{rel}: {keyword} is not a valid date in the output")
                continue
            if d_old is None:
                problems.append(f"{rel}: {keyword}: invalid input date kept as a date")
                continue
            if vr == "DT" and new[8:] != old[8:]:
                problems.append(f"{rel}: {keyword}: DT time part / UTC offset changed")
            days = (d_old - d_new).days
            moved += 1
            offsets.setdefault(patient, {}).setdefault(days, []).append(f"{rel}:{keyword}")
        # nothing invalid anywhere in the output
        for path, keyword, vr, new in walk_dates(out):
            if new and vr in ("DA", "DT") and parse_da(new[:8]) is None:
                problems.append(f"{rel}: output {keyword} {vr} is not a valid date")
    for patient, by_days in offsets.items():
        if len(by_days) > 1:
            summary = {d: v[:2] for d, v in by_days.items()}
            problems.append(f"a patient's dates move by several offsets: {summary}")
        for days in by_days:
            if days % 7 or not 7 <= days <= 3640:
                problems.append(f"offset {days} days is not 1..520 whole weeks back ({by_days[days][:2]})")
    assert moved > 300 and len(offsets) >= 10, f"only {moved} dates of {len(offsets)} patients moved"
    assert times > 100
    assert not problems, problems_message(problems)


def test_retain_long_modified_dates_moves_study_dates_the_basic_run_removes(pairs):
    basic = {rel: out for rel, _, out in pairs()}
    shifted = 0
    for rel, src, out in pairs("retain-long-modified-dates"):
        old = text(src.get("StudyDate"))
        if parse_da(old) is None:
            continue
        assert text(basic[rel].get("StudyDate")) != old, f"{rel}: basic run kept StudyDate"
        new = parse_da(text(out.get("StudyDate")))
        assert new is not None, f"{rel}: StudyDate not kept as a date"
        assert new != parse_da(old), f"{rel}: StudyDate not moved"
        assert new.weekday() == parse_da(old).weekday(), f"{rel}: weekday changed"
        shifted += 1
    assert shifted > 50


def test_sr_dates_follow_the_date_option(pairs):
    """test-SR.dcm's DATE/DATETIME content items, with clean-structured-content:
    kept with full dates, moved by the patient's offset with modified dates."""
    rel = "pydicom/test-SR.dcm"

    def sr_dates(ds):
        return [text(e.value) for e in iter_elements(ds) if e.keyword in ("Date", "DateTime") and text(e.value)]

    full = dict((r, o) for r, _, o in pairs(*CLEAN_ALL, *RETAIN_ALL, "retain-long-full-dates"))[rel]
    mod = dict((r, o) for r, _, o in pairs(*CLEAN_ALL, *RETAIN_ALL, "retain-long-modified-dates"))[rel]
    assert sr_dates(full) == ["20001206", "20001206120000"]
    moved = sr_dates(mod)
    assert len(moved) == 2 and moved[1][8:] == "120000", moved
    days = (datetime.date(2000, 12, 6) - parse_da(moved[0])).days
    assert days % 7 == 0 and 7 <= days <= 3640, moved
    assert moved[0] == moved[1][:8]


def test_sr_dates_are_replaced_with_the_content_unless_it_is_cleaned(pairs):
    """Without clean-structured-content the basic profile replaces the SR
    Content Sequence (D): every identifying value in it, its Date, Time,
    DateTime and Observation DateTime items included, is a dummy whatever the
    date option (options do not reach inside replaced content; the devset
    scorer judges institution names inside replaced person sequences the same
    way). With clean-structured-content the items follow the date option:
    kept with full dates, moved by whole weeks with modified dates (times and
    time parts kept)."""
    rel = "pydicom/test-SR.dcm"
    src = next(s for r, s, _ in pairs() if r == rel)

    def items(ds):
        return [(keyword, value) for path, keyword, _, value in walk_dates(ds)
                if CONTENT_SEQUENCE in path]

    assert items(src), "test-SR.dcm has date and time items in its content"
    problems = []
    for option in ("retain-long-full-dates", "retain-long-modified-dates"):
        replaced = next(o for r, _, o in pairs(option) if r == rel)
        for (kw, old), (_, new) in zip(items(src), items(replaced)):
            if new == old:
                problems.append(f"{option} alone: {kw} {old!r} kept inside replaced content")
    full = next(o for r, _, o in pairs("retain-long-full-dates", "clean-structured-content") if r == rel)
    if items(full) != items(src):
        problems.append(f"full dates + clean: {items(src)} -> {items(full)}")
    mod = next(o for r, _, o in pairs("retain-long-modified-dates", "clean-structured-content")
               if r == rel)
    for (kw, old), (_, new) in zip(items(src), items(mod)):
        if kw == "Time" and new != old:
            problems.append(f"modified dates + clean: Time {old!r} -> {new!r}")
        if kw != "Time" and (new[8:] != old[8:] or parse_da(new[:8]) is None or new[:8] == old[:8]):
            problems.append(f"modified dates + clean: {kw} {old!r} -> {new!r}")
    assert not problems, problems_message(problems)


# ------------------------------------------------------------ clean options

NAME_SPLIT = re.compile(r"[\^=\s,]+")


def identifying_values(src):
    """Values of the header a cleaned text must not contain: patient and
    physician name parts, IDs, institution, birth date and study date."""
    values = set()
    for kw in ("PatientName", "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
               "PatientBirthName", "PatientMotherBirthName"):
        for part in NAME_SPLIT.split(text(src.get(kw))):
            if len(part) >= 3:
                values.add(part)
    for kw in ("PatientID", "AccessionNumber", "InstitutionName", "PatientBirthDate", "StudyDate",
               "OtherPatientIDs", "PatientAddress"):
        v = text(src.get(kw))
        if len(v) >= 4:
            values.add(v)
    return values


PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")


def leaked(cleaned, values):
    """The values found in `cleaned` as whole words (placeholders such as
    [NAME] left out), case-insensitive."""
    cleaned = PLACEHOLDER.sub(" ", cleaned)
    return sorted(v for v in values
                  if re.search(r"(?<![A-Za-z0-9])" + re.escape(v) + r"(?![A-Za-z0-9])", cleaned, re.I))


# (file, keyword, a clinical word the cleaned text must keep)
CLINICAL_WORDS = [
    ("deid-data/data/humans/ctbrain1.dcm", "StudyDescription", "BRAIN"),
    ("deid-data/data/humans/ctbrain1.dcm", "AdditionalPatientHistory", "Seizure"),
    ("deid-data/data/humans/ctbrain1.dcm", "ProtocolName", "NEURO"),
    ("pydicom-data/RG3_UNCR.dcm", "StudyDescription", "fibroma"),
    ("pydicom-data/MR-SIEMENS-DICOM-WithOverlays.dcm", "SeriesDescription", "lesion"),
    ("pydicom-data/MR-SIEMENS-DICOM-WithOverlays.dcm", "RequestedProcedureDescription", "Abdomen"),
    ("deid-data/data/dicom-cookies/image1.dcm", "ImageComments", "tumor"),
    ("pydicom/dicomdirtests/77654033/CT2/17106", "StudyDescription", "CONTRAST"),
    ("deid-data/data/ultrasounds/GREYSCALE_IMAGE.dcm", "StudyDescription", "KIDNEY"),
]


def test_clean_descriptors_keeps_descriptions_without_identity(pairs):
    cleaned = option_tags("clean-descriptors", "clean")
    basic = {rel: out for rel, _, out in pairs()}
    by_rel = {}
    problems, present, basic_removed = [], 0, 0
    for rel, src, out in pairs("clean-descriptors"):
        by_rel[rel] = out
        ids = identifying_values(src)
        for elem in src:
            if elem.tag not in cleaned or elem.VR == "SQ" or not text(elem.value):
                continue
            if elem.tag not in out or not text(out[elem.tag].value):
                problems.append(f"{rel}: {elem.keyword} not kept (cleaned)")
                continue
            present += 1
            if text(basic[rel].get(elem.tag).value if elem.tag in basic[rel] else "") != text(elem.value):
                basic_removed += 1
            found = leaked(text(out[elem.tag].value), ids)
            if found:
                problems.append(f"{rel}: {elem.keyword} still holds header value(s) {found}")
    for rel, kw, word in CLINICAL_WORDS:
        value = text(by_rel[rel].get(kw)) if rel in by_rel else ""
        if word.lower() not in value.lower():
            problems.append(f"{rel}: {kw} lost the clinical word {word!r}: {value!r}")
    assert present > 100 and basic_removed > 100, (present, basic_removed)
    assert not problems, problems_message(problems)


def sr_items(ds):
    """(ValueType, concept code value, value) of every SR content item."""
    out = []

    def walk(seq):
        for item in seq:
            code = ""
            if "ConceptNameCodeSequence" in item and item.ConceptNameCodeSequence:
                code = text(item.ConceptNameCodeSequence[0].get("CodeValue"))
            vt = text(item.get("ValueType"))
            value = {"TEXT": item.get("TextValue"), "PNAME": item.get("PersonName"),
                     "UIDREF": item.get("UID")}.get(vt)
            if vt == "CODE" and "ConceptCodeSequence" in item:
                value = text(item.ConceptCodeSequence[0].get("CodeValue"))
            out.append((vt, code, text(value)))
            if "ContentSequence" in item:
                walk(item.ContentSequence)

    walk(ds.get("ContentSequence") or [])
    return out


SR_FILES = ["pydicom/test-SR.dcm", "pydicom/reportsi.dcm", "pydicom/reportsi_with_empty_number_tags.dcm"]


def test_clean_structured_content_keeps_sr_text_cleaned(pairs):
    """SR content: codes and structure kept, TEXT kept with its clinical
    words and none of the header's identifying values, PNAME replaced,
    UIDREF remapped; acquisition context kept with its codes. The basic run
    does not keep the clinical words."""
    basic = {rel: out for rel, _, out in pairs()}
    opt = {rel: (src, out) for rel, src, out in pairs("clean-structured-content")}
    problems = []
    for rel in SR_FILES:
        src, out = opt[rel]
        before, after = sr_items(src), sr_items(out)
        if [(vt, c) for vt, c, _ in before] != [(vt, c) for vt, c, _ in after]:
            problems.append(f"{rel}: content tree or concept codes changed")
            continue
        ids = identifying_values(src)
        for (vt, code, old), (_, _, new) in zip(before, after):
            if vt == "CODE" and old != new:
                problems.append(f"{rel}: CODE {code} value changed")
            if vt == "TEXT" and old and leaked(new, ids):
                problems.append(f"{rel}: TEXT {code} keeps {leaked(new, ids)}")
            if vt == "PNAME" and old and new == old:
                problems.append(f"{rel}: PNAME {code} kept")
            if vt == "UIDREF" and old and (new == old or not new):
                problems.append(f"{rel}: UIDREF {code} not remapped")
    texts = [v for vt, _, v in sr_items(opt["pydicom/test-SR.dcm"][1]) if vt == "TEXT"]
    for phrase in ("A mass of", "was detected."):
        if phrase not in texts:
            problems.append(f"test-SR.dcm: TEXT {phrase!r} lost: {texts}")
        if phrase in [v for vt, _, v in sr_items(basic["pydicom/test-SR.dcm"]) if vt == "TEXT"]:
            problems.append(f"test-SR.dcm: the basic run keeps {phrase!r} too: the test cannot tell")
    # the remapped UIDREF is the same in every run with the key (consistent)
    uidrefs = {v for vt, _, v in sr_items(opt["pydicom/test-SR.dcm"][1]) if vt == "UIDREF"}
    uidrefs_all = {v for vt, _, v in sr_items(
        dict((r, o) for r, _, o in pairs("clean-descriptors", "clean-structured-content"))["pydicom/test-SR.dcm"])
        if vt == "UIDREF"}
    if uidrefs != uidrefs_all:
        problems.append(f"UIDREF remapped differently in two runs with one key: {uidrefs} {uidrefs_all}")
    src, out = opt["pydicom/waveform_ecg.dcm"]
    codes = lambda ds: [text(e.value) for e in iter_elements(Dataset() if "AcquisitionContextSequence" not in ds
                                                             else ds.AcquisitionContextSequence[0])
                        if e.keyword == "CodeValue"]
    if not codes(out) or codes(out) != codes(src):
        problems.append(f"waveform_ecg.dcm: AcquisitionContextSequence codes {codes(src)} -> {codes(out)}")
    assert not problems, problems_message(problems)


# ------------------------------------------------------------ clean graphics

OVERLAY_FILE = "MR-SIEMENS-DICOM-WithOverlays.dcm"  # pydicom-data, overlay type G
ANNOTATION = "Lesion 12 mm, see prior for {name} at {inst}"


@pytest.fixture(scope="module")
def graphics_inputs(tmp_path_factory, session_key):
    """Real files and real files given graphics: the Siemens overlay (type G)
    as is, the same relabelled as a region overlay (type R) with overlay
    comments, and CT_small.dcm with a graphic annotation whose text names the
    patient and the institution. Run basic and with clean-graphics."""
    src = tmp_path_factory.mktemp("graphics") / "in"
    src.mkdir()
    data = corpus_sources()
    shutil.copy(data["pydicom-data"] / OVERLAY_FILE, src / "overlay_g.dcm")
    ds = pydicom.dcmread(str(data["pydicom-data"] / OVERLAY_FILE))
    ds[0x60000040].value = "R"  # OverlayType
    ds.add_new(0x60004000, "LT", f"ROI liver lesion drawn for {ds.PatientName.family_name}")
    ds.save_as(str(src / "overlay_r.dcm"))
    ct = pydicom.dcmread(str(data["pydicom"] / "CT_small.dcm"))
    text_obj = Dataset()
    text_obj.UnformattedTextValue = ANNOTATION.format(name=ct.PatientName.family_name, inst=ct.InstitutionName)
    text_obj.BoundingBoxAnnotationUnits = "PIXEL"
    text_obj.BoundingBoxTopLeftHandCorner = [10, 10]
    text_obj.BoundingBoxBottomRightHandCorner = [60, 20]
    text_obj.BoundingBoxTextHorizontalJustification = "LEFT"
    graphic = Dataset()
    graphic.GraphicAnnotationUnits = "PIXEL"
    graphic.GraphicDimensions = 2
    graphic.NumberOfGraphicPoints = 2
    graphic.GraphicData = [12.0, 30.0, 40.0, 30.0]
    graphic.GraphicType = "POLYLINE"
    graphic.GraphicFilled = "N"
    annotation = Dataset()
    annotation.GraphicLayer = "LAYER1"
    annotation.TextObjectSequence = Sequence([text_obj])
    annotation.GraphicObjectSequence = Sequence([graphic])
    ct.GraphicAnnotationSequence = Sequence([annotation])
    ct.save_as(str(src / "ct_annotated.dcm"))
    runs = {}
    for name, extra in (("basic", []), ("clean", ["--option", "clean-graphics"])):
        out = src.parent / name
        code, _ = run_deid(src, out, "--key-file", session_key, "--allow-burned-in", *extra)
        assert code == 0, f"{name}: exit {code}"
        runs[name] = {p.name: pydicom.dcmread(str(p)) for p in out.iterdir()}
    runs["in"] = {p.name: pydicom.dcmread(str(p)) for p in src.iterdir()}
    return runs


def test_clean_graphics_keeps_region_overlays_and_removes_graphics_overlays(graphics_inputs):
    src, basic, clean = graphics_inputs["in"], graphics_inputs["basic"], graphics_inputs["clean"]
    # a graphics overlay (type G) may draw text: removed in both
    for run in (basic, clean):
        assert 0x60003000 not in run["overlay_g.dcm"], "type G overlay data kept"
    # a region overlay: removed by the basic profile, kept bit for bit with the option
    assert 0x60003000 not in basic["overlay_r.dcm"]
    assert 0x60003000 in clean["overlay_r.dcm"], "clean-graphics dropped a region overlay"
    assert clean["overlay_r.dcm"][0x60003000].value == src["overlay_r.dcm"][0x60003000].value
    # overlay comments: cleaned, kept with their clinical words
    assert 0x60004000 not in basic["overlay_r.dcm"] or \
        text(basic["overlay_r.dcm"][0x60004000].value) != text(src["overlay_r.dcm"][0x60004000].value)
    comments = text(clean["overlay_r.dcm"].get(0x60004000).value if 0x60004000 in clean["overlay_r.dcm"] else "")
    assert "liver lesion" in comments, f"overlay comments: {comments!r}"
    assert not leaked(comments, identifying_values(src["overlay_r.dcm"])), comments


def test_clean_graphics_keeps_graphic_annotations_with_text_cleaned(graphics_inputs):
    src, basic, clean = (graphics_inputs[k]["ct_annotated.dcm"] for k in ("in", "basic", "clean"))
    original = src.GraphicAnnotationSequence[0].TextObjectSequence[0].UnformattedTextValue

    def annotation_text(ds):
        try:
            return text(ds.GraphicAnnotationSequence[0].TextObjectSequence[0].UnformattedTextValue)
        except (AttributeError, IndexError):
            return ""

    assert "Lesion 12 mm" not in annotation_text(basic), "the basic profile keeps the annotation text"
    cleaned = annotation_text(clean)
    assert "Lesion 12 mm" in cleaned, f"annotation text lost its clinical words: {cleaned!r}"
    assert cleaned != original
    found = leaked(cleaned, identifying_values(src) | {text(src.InstitutionName)})
    assert not found, f"annotation text keeps {found}: {cleaned!r}"
    graphic = clean.GraphicAnnotationSequence[0].GraphicObjectSequence[0]
    assert list(graphic.GraphicData) == [12.0, 30.0, 40.0, 30.0]
    assert graphic.GraphicType == "POLYLINE"


# ------------------------------------------------------------------ codes


@pytest.mark.parametrize("combo", COMBOS, ids=lambda c: "+".join(sorted(c)) if len(c) < 3 else f"{len(c)}-options")
def test_method_codes_are_113100_and_the_options_applied(corpus_run, combo):
    """In every output: DeidentificationMethodCodeSequence is 113100 then
    each option's code, once; LongitudinalTemporalInformationModified
    follows the date option; the report's profile_codes agree."""
    _, out, code, report = corpus_run(*combo)
    assert code in (0, 1), f"exit {code}"
    expected = {OPTION_CODES[o] for o in combo}
    temporal = ("UNMODIFIED" if "retain-long-full-dates" in combo
                else "MODIFIED" if "retain-long-modified-dates" in combo else "REMOVED")
    assert report["profile_codes"][0] == "113100"
    assert sorted(report["profile_codes"][1:]) == sorted(expected)
    problems = []
    files = written(report)
    for rel in files:
        ds = pydicom.dcmread(str(out / rel), stop_before_pixels=True)
        seq = ds.get("DeidentificationMethodCodeSequence") or []
        codes = [text(item.get("CodeValue")) for item in seq]
        schemes = {text(item.get("CodingSchemeDesignator")) for item in seq}
        if not codes or codes[0] != "113100" or sorted(codes[1:]) != sorted(expected) \
                or len(set(codes)) != len(codes):
            problems.append(f"{rel}: codes {codes}")
        if schemes != {"DCM"}:
            problems.append(f"{rel}: coding schemes {schemes}")
        if text(ds.get("LongitudinalTemporalInformationModified")) != temporal:
            problems.append(f"{rel}: LongitudinalTemporalInformationModified "
                            f"{ds.get('LongitudinalTemporalInformationModified')!r}, expected {temporal}")
    assert len(files) > 150
    assert not problems, problems_message(problems)


def test_full_and_modified_dates_together_are_refused(real_corpus, session_key, tmp_path):
    out = tmp_path / "out"
    proc = obscura("deid", real_corpus / "pydicom" / "CT_small.dcm", out, "--key-file", session_key,
                   "--option", "retain-long-full-dates", "--option", "retain-long-modified-dates")
    assert proc.returncode == 2, proc.stderr
    assert "conflict" in proc.stderr.lower(), proc.stderr
    assert not out.exists() or not any(out.iterdir()), "something was written"
    proc = obscura("profile", "show", "--option", "retain-long-modified-dates",
                   "--option", "retain-long-full-dates")
    assert proc.returncode == 2 and "conflict" in proc.stderr.lower(), proc.stderr

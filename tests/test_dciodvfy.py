"""dciodvfy (dicom3tools) finds no more errors in an output than in its input."""
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import DEFLATED, input_files

DCIODVFY = Path("/usr/bin/dciodvfy")

pytestmark = pytest.mark.skipif(not DCIODVFY.is_file(), reason="dciodvfy (Debian dicom3tools) not installed")

# Files whose output may have more dciodvfy errors than the input, and why.
KNOWN_EXCEPTIONS = {
    # Data-set fragments: SOPClassUID and SOPInstanceUID only in the file meta,
    # so dciodvfy can't pick an IOD for the input and reports only the two
    # "MediaStorage...UID but missing SOP...UID" errors. The output carries
    # both in the data set too (the writer takes them from the file meta), so
    # dciodvfy checks the whole IOD and reports the Patient, Study and Series
    # attributes the fragment never had (PatientName, StudyInstanceUID, ...).
    "pydicom/UN_sequence.dcm": "fragment: CT Image IOD now checked",
    "pydicom/no_meta_group_length.dcm": "fragment: RT Image IOD now checked",
    "pydicom/priv_SQ.dcm": "fragment: MR Image IOD now checked",
}


def error_lines(path):
    """dciodvfy's lines that contain 'Error' (it writes them to stderr)."""
    proc = subprocess.run([str(DCIODVFY), str(path)], capture_output=True, text=True, errors="replace")
    return [line for line in (proc.stderr + "\n" + proc.stdout).splitlines() if "Error" in line]


def checkable(path, scratch):
    """`path`, or for a deflated file an explicit VR little endian copy: this
    dciodvfy build has no zlib and reads a deflated data set as garbage."""
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    try:
        syntax = pydicom.filereader.read_file_meta_info(str(path)).get("TransferSyntaxUID")
    except Exception:  # no Part 10 header: not deflated
        return path
    if syntax != DEFLATED:
        return path
    ds = pydicom.dcmread(str(path), force=True)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    scratch.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(scratch), implicit_vr=False, little_endian=True)
    return scratch


def test_known_exceptions_name_corpus_files(real_corpus):
    files = input_files(real_corpus)
    assert set(KNOWN_EXCEPTIONS) <= set(files), sorted(set(KNOWN_EXCEPTIONS) - set(files))


def test_no_output_has_more_dciodvfy_errors_than_its_input(real_run, tmp_path):
    corpus, out, _, report = real_run
    written = [f["path"] for f in report["files"] if f["outcome"] == "written"]
    assert written

    def compare(rel):
        before = error_lines(checkable(corpus / rel, tmp_path / "in" / rel))
        after = error_lines(checkable(out / rel, tmp_path / "out" / rel))
        return rel, before, after

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(compare, written))

    worse = {rel: (b, a) for rel, b, a in results if len(a) > len(b) and rel not in KNOWN_EXCEPTIONS}
    lines = []
    for rel, (before, after) in sorted(worse.items()):
        new = sorted(set(after) - set(before))
        lines.append(f"{rel}: {len(before)} -> {len(after)} errors; new: {new[:6]}")
    assert not worse, f"{len(worse)} output(s) with more dciodvfy errors than the input:\n" + "\n".join(lines)

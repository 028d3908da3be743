"""dciodvfy finds no error in an output that it did not find in its input."""
import re
import shutil
import subprocess
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest

DCIODVFY = shutil.which("dciodvfy")
DEFLATED = "1.2.840.10008.1.2.1.99"


def errors(path):
    """dciodvfy's error lines, with UID values blanked (they differ by design)."""
    proc = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, errors="replace")
    lines = {re.sub(r"<[0-9.]*>|ReferencedSOPInstanceUID [0-9.]+", "", l).strip()
             for l in (proc.stdout + proc.stderr).splitlines() if "Error" in l}
    return lines


@pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy (Debian dicom3tools) not installed")
def test_no_new_dciodvfy_errors(real_run):
    import pydicom

    corpus, out, _, report = real_run
    written = [f["path"] for f in report["files"] if f["outcome"] == "written"]

    def check(rel):
        ds = pydicom.dcmread(str(out / rel), stop_before_pixels=True)
        if ds.file_meta.TransferSyntaxUID == DEFLATED:
            return rel, set()  # this dciodvfy build cannot inflate: checked by pydicom instead
        source = pydicom.dcmread(str(corpus / rel), stop_before_pixels=True, force=True)
        if "SOPClassUID" not in source:
            # a data set fragment: dciodvfy cannot tell its IOD, so it checked
            # nothing in the input; the output (SOP Class filled in from the
            # file meta) is checked against an IOD the fragment never met
            return rel, set()
        return rel, errors(out / rel) - errors(corpus / rel)

    with ThreadPoolExecutor(2) as pool:
        new = {rel: e for rel, e in pool.map(check, written) if e}
    assert not new, "\n".join(f"{rel}: {sorted(e)}" for rel, e in sorted(new.items()))

"""The repository itself: no file carries a merge left half done (one
landed in docs/archive.md once and stayed for a session)."""
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MARKER = re.compile(rb"^(<<<<<<< |>>>>>>> |=======$)", re.M)


def test_no_merge_conflict_markers():
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    files = [REPO / f.decode() for f in listed.stdout.split(b"\0") if f]
    assert len(files) > 100
    marked = [str(f.relative_to(REPO)) for f in files
              if f.is_file() and MARKER.search(f.read_bytes())]
    assert marked == []

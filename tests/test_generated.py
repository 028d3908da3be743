"""Checked-in generated tables are exactly what their generators make from the standard."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STANDARD = REPO.parent / "shared" / "standard"
TABLES = REPO / "crates" / "obscura-deid" / "src" / "table"

GENERATED = [
    ("gen_annex_e.py", STANDARD / "confidentiality_profile_attributes.json", TABLES / "annex_e.rs"),
    ("gen_safe_private.py", STANDARD / "private_tags_ctp.json", TABLES / "safe_private.rs"),
]


@pytest.mark.parametrize("generator,source,checked_in", GENERATED, ids=[g[0] for g in GENERATED])
def test_generated_table_is_up_to_date(tmp_path, generator, source, checked_in):
    if not source.exists():
        pytest.skip("shared/standard is not beside the checkout")
    out = tmp_path / checked_in.name
    subprocess.run([sys.executable, str(REPO / "tools" / generator), str(source), str(out)],
                   check=True, capture_output=True)
    assert out.read_bytes() == checked_in.read_bytes(), f"rerun tools/{generator} and commit"


def test_sop_class_table_is_up_to_date(tmp_path):
    source = STANDARD / "sops.json"
    if not source.exists():
        pytest.skip("shared/standard is not beside the checkout")
    checked_in = REPO / "crates" / "obscura-dimse" / "src" / "sop_classes.rs"
    out = tmp_path / checked_in.name
    subprocess.run([sys.executable, str(REPO / "tools" / "gen_sop_classes.py"), str(source), str(out)],
                   check=True, capture_output=True)
    assert out.read_bytes() == checked_in.read_bytes(), "rerun tools/gen_sop_classes.py and commit"


def test_name_lists_are_up_to_date(tmp_path):
    """The Census name lists come from PyPI `names` 0.3.0 (fetched here; the
    test skips if the registry cannot be reached)."""
    fetch = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                            "--no-binary", ":all:", "names==0.3.0", "-d", str(tmp_path)],
                           capture_output=True, text=True)
    sdists = list(tmp_path.glob("names-0.3.0.tar.gz"))
    if fetch.returncode != 0 or not sdists:
        pytest.skip(f"cannot fetch names==0.3.0 from PyPI: {fetch.stderr[-200:]}")
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([sys.executable, str(REPO / "tools" / "gen_names.py"), str(sdists[0]), str(out)],
                   check=True, capture_output=True)
    data = REPO / "crates" / "obscura-detect" / "data"
    for name in ("first_names.txt", "surnames.txt"):
        assert (out / name).read_bytes() == (data / name).read_bytes(), \
            f"rerun tools/gen_names.py and commit {name}"

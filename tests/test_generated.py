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

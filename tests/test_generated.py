"""The checked-in Annex E table is exactly what the generator makes from the standard."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "standard" / "confidentiality_profile_attributes.json"
CHECKED_IN = REPO / "crates" / "obscura-deid" / "src" / "table" / "annex_e.rs"


@pytest.mark.skipif(not SOURCE.exists(), reason="shared/standard is not beside the checkout")
def test_generated_table_is_up_to_date(tmp_path):
    out = tmp_path / "annex_e.rs"
    subprocess.run([sys.executable, str(REPO / "tools" / "gen_annex_e.py"), str(SOURCE), str(out)],
                   check=True, capture_output=True)
    assert out.read_bytes() == CHECKED_IN.read_bytes(), "rerun tools/gen_annex_e.py and commit"

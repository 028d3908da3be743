"""The devset scorer: no leak in standard attributes or sequences, linkage, nothing over-scrubbed."""
import json
import subprocess
import sys

import pytest

from conftest import SHARED, run_deid

DEVSET = SHARED / "devset"


@pytest.mark.skipif(not (DEVSET / "score.py").exists(), reason="shared/devset not beside the checkout")
def test_devset_score(key, tmp_path):
    pytest.importorskip("numpy")
    out = tmp_path / "out"
    run_deid(DEVSET / "data", out, key, "--allow-burned-in")
    proc = subprocess.run([sys.executable, "score.py", "answer_key.json", str(out)],
                          cwd=DEVSET, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert "error" not in summary, proc.stdout[-2000:]
    print(lines[-2])
    leak = summary["leak"]["by_category"]
    for cat in ("standard", "sequence", "free_text", "private"):
        assert leak[cat]["leaked_anywhere"] == 0, (cat, lines[-2])
    assert summary["linkage"]["ok"], lines[-2]
    assert summary["overscrub"]["lost_or_altered"] == 0, lines[-2]
    assert summary["validity"]["parseable"] == summary["files_expected"]
    assert summary["uids"]["still_present"] == 0
    dcio = summary["validity"]["dciodvfy"]
    if dcio:
        assert dcio["errors_out"] <= dcio["errors_in_baseline"], lines[-2]

"""The devset (tests/devset) scored by its own scorer: no leak in standard attributes
or sequences, linkage intact, nothing over-scrubbed, every file valid, no
original UID left. Run with -s to see the scorer's one-line summary."""
import importlib.util
import json
import subprocess
import sys

import pytest

from conftest import DEVSET, make_key, run_deid

# What score.py imports (devset/requirements.txt): module names, not packages.
SCORER_MODULES = ("numpy", "pydicom", "PIL", "pylibjpeg", "libjpeg", "openjpeg", "rle", "jpeg_ls")


def missing_modules():
    return [m for m in SCORER_MODULES if importlib.util.find_spec(m) is None]


def require_scorer():
    """The scorer and its modules are part of what the tests need: their
    absence is a failure, not a skip."""
    assert (DEVSET / "score.py").is_file(), f"{DEVSET} is incomplete: score.py is missing"
    if missing_modules():
        pytest.fail(f"score.py needs {missing_modules()}: pip install -r tests/requirements.txt")


def run_and_score(tmp_path_factory, name, options=()):
    """De-identify the devset (--allow-burned-in, these options) and score
    it, telling score.py the options applied; return (holdout line, summary)."""
    require_scorer()
    tmp = tmp_path_factory.mktemp(name)
    key = make_key(tmp / "key")
    out = tmp / "out"
    option_args = [a for o in options for a in ("--option", o)]
    code, report = run_deid(DEVSET / "data", out, "--key-file", key, "--allow-burned-in", *option_args)
    assert code in (0, 1), f"exit {code}"
    proc = subprocess.run([sys.executable, "score.py", "answer_key.json", str(out), *option_args],
                          cwd=DEVSET, capture_output=True, text=True, timeout=600)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) >= 2, f"score.py printed no summary:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    holdout = lines[-2]
    assert holdout.startswith("holdout:"), f"unexpected scorer output:\n{proc.stdout[-2000:]}"
    try:
        summary = json.loads(lines[-1])
    except json.JSONDecodeError:
        pytest.fail(f"score.py's last line is not JSON: {lines[-1][:500]}\n{proc.stderr[-2000:]}")
    print(f"\n{' '.join(options) or 'basic'}: {holdout}")
    return holdout, summary


@pytest.fixture(scope="module")
def score(tmp_path_factory):
    return run_and_score(tmp_path_factory, "devset")


def test_scorer_ran(score):
    holdout, summary = score
    assert "error" not in summary, holdout


@pytest.mark.parametrize("category", ["standard", "sequence"])
def test_no_leak_in(score, category):
    holdout, summary = score
    cat = summary["leak"]["by_category"][category]
    assert cat["strings"] > 0, f"no {category} strings planted?"
    assert cat["leaked_anywhere"] == 0, f"{category}: {cat}; {holdout}"


def test_linkage_ok(score):
    holdout, summary = score
    link = {k: v for k, v in summary["linkage"].items() if k != "ok"}
    assert summary["linkage"]["ok"], f"{link}; {holdout}"


def test_nothing_over_scrubbed(score):
    holdout, summary = score
    assert summary["overscrub"]["lost_or_altered"] == 0, f"{summary['overscrub']}; {holdout}"


def test_every_file_is_valid(score):
    holdout, summary = score
    assert summary["validity"]["parseable"] == summary["files_expected"], holdout


def test_no_original_uid_left(score):
    holdout, summary = score
    assert summary["uids"]["still_present"] == 0, f"{summary['uids']}; {holdout}"


# ------------------------------------------------------------- with options

CLEAN_OPTIONS = ("clean-descriptors", "clean-structured-content")
# every option the scorer knows but retain-long-modified-dates (it conflicts
# with retain-long-full-dates)
SCORER_OPTIONS_BUT_MODIFIED_DATES = (
    "retain-safe-private", "retain-uids", "retain-device-identity", "retain-institution-identity",
    "retain-patient-characteristics", "retain-long-full-dates", "clean-descriptors",
    "clean-structured-content", "clean-graphics",
)


@pytest.fixture(scope="module")
def score_clean(tmp_path_factory):
    return run_and_score(tmp_path_factory, "devset-clean", CLEAN_OPTIONS)


@pytest.fixture(scope="module")
def score_all_options(tmp_path_factory):
    return run_and_score(tmp_path_factory, "devset-all", SCORER_OPTIONS_BUT_MODIFIED_DATES)


def test_scorer_knows_the_options_tested():
    text = (DEVSET / "score.py").read_text()
    for option in set(CLEAN_OPTIONS) | set(SCORER_OPTIONS_BUT_MODIFIED_DATES) | {"retain-long-modified-dates"}:
        assert f'"{option}"' in text, f"score.py does not list {option}"


def test_clean_descriptors_and_structured_content_leak_nothing(score_clean):
    """Cleaned descriptions and SR content keep no planted PHI: leak 0 in
    every category but burned_in (pixels are not obscura's to clean)."""
    holdout, summary = score_clean
    assert "error" not in summary, holdout
    leaks = {cat: v for cat, v in summary["leak"]["by_category"].items()
             if cat != "burned_in" and v.get("leaked_anywhere", 0)}
    assert not leaks, f"leaks with --option {' --option '.join(CLEAN_OPTIONS)}: {leaks}; {holdout}"


def test_all_options_over_scrub_at_most_one_percent(score_all_options):
    holdout, summary = score_all_options
    assert "error" not in summary, holdout
    over = summary["overscrub"]
    assert over["must_keep"] > 0, holdout
    assert over["lost_or_altered"] <= 0.01 * over["must_keep"], f"{over}; {holdout}"

"""Checked-in generated files are exactly what their generators make from the
repository's own sources: the standard's tables in `standard/`, the Census
name lists of the `names` package (tests/requirements.txt), and the samples."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STANDARD = REPO / "standard"
TOOLS = REPO / "tools"

GENERATED = [
    ("gen_annex_e.py", STANDARD / "confidentiality_profile_attributes.json",
     REPO / "crates" / "obscura-deid" / "src" / "table" / "annex_e.rs"),
    ("gen_safe_private.py", STANDARD / "private_tags_ctp.json",
     REPO / "crates" / "obscura-deid" / "src" / "table" / "safe_private.rs"),
    ("gen_sop_classes.py", STANDARD / "sops.json",
     REPO / "crates" / "obscura-dimse" / "src" / "sop_classes.rs"),
]


def generate(*args):
    proc = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, f"{args[0]} failed:\n{proc.stderr[-3000:]}"


@pytest.mark.parametrize("generator,source,checked_in", GENERATED, ids=[g[0] for g in GENERATED])
def test_generated_table_is_up_to_date(tmp_path, generator, source, checked_in):
    assert source.is_file(), f"{source.relative_to(REPO)} is missing from the repository"
    out = tmp_path / checked_in.name
    generate(TOOLS / generator, source, out)
    assert out.read_bytes() == checked_in.read_bytes(), f"rerun tools/{generator} and commit"


@pytest.mark.parametrize("generator,source,checked_in", GENERATED, ids=[g[0] for g in GENERATED])
def test_generator_defaults_to_the_repository_standard(generator, source, checked_in):
    """Run with no arguments, a generator reads standard/ and writes the
    checked-in file: nothing outside the repository."""
    spec = importlib.util.spec_from_file_location(generator[:-3], TOOLS / generator)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert Path(module.DEFAULT_IN).resolve() == source
    assert Path(module.DEFAULT_OUT).resolve() == checked_in


def test_name_lists_are_up_to_date(tmp_path):
    """The Census name lists come from PyPI `names` 0.3.0, which
    tests/requirements.txt installs."""
    spec = importlib.util.find_spec("names")
    assert spec is not None and spec.submodule_search_locations, \
        "the `names` package is missing: pip install -r tests/requirements.txt"
    package = Path(list(spec.submodule_search_locations)[0])
    out = tmp_path / "out"
    out.mkdir()
    generate(TOOLS / "gen_names.py", package, out)
    data = REPO / "crates" / "obscura-detect" / "data"
    for name in ("first_names.txt", "surnames.txt"):
        assert (out / name).read_bytes() == (data / name).read_bytes(), \
            f"rerun tools/gen_names.py and commit {name}"


def test_samples_are_what_make_samples_writes(tmp_path):
    """samples/ (but its hand-written MANIFEST.md) is byte for byte what
    tools/make_samples.py writes."""
    out = tmp_path / "samples"
    generate(TOOLS / "make_samples.py", "--out", out)
    samples = REPO / "samples"
    made = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    checked_in = {str(p.relative_to(samples)) for p in samples.rglob("*") if p.is_file()} - {"MANIFEST.md"}
    assert made == checked_in, "rerun tools/make_samples.py and commit"
    differ = [rel for rel in sorted(made) if (out / rel).read_bytes() != (samples / rel).read_bytes()]
    assert not differ, f"rerun tools/make_samples.py and commit: {differ}"

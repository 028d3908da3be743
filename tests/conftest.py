"""Shared fixtures: the obscura binary, keys, runs, and the real test corpus.

The corpus is real DICOM that nobody here wrote: pydicom's test files,
pydicom-data and deid-data, copied into a temporary folder (the output may
not be inside the input, and site-packages is not ours to write next to).
"""
import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BINARY = REPO / "target" / "release" / "obscura"
SHARED = REPO.parent / "shared"

warnings.filterwarnings("ignore")


def pytest_sessionstart(session):
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "obscura-cli"], cwd=REPO, check=True)


def obscura(*args, env=None, check=False):
    """Run the binary; return the CompletedProcess (text mode)."""
    full_env = dict(os.environ)
    full_env.pop("OBSCURA_KEY_FILE", None)
    full_env.update(env or {})
    proc = subprocess.run([str(BINARY), *map(str, args)], capture_output=True, text=True, env=full_env)
    if check and proc.returncode not in (0, 1):
        raise AssertionError(f"obscura {args} exited {proc.returncode}: {proc.stderr}")
    return proc


def make_key(path):
    proc = obscura("keygen", path)
    assert proc.returncode == 0, proc.stderr
    return Path(path)


@pytest.fixture
def key(tmp_path):
    return make_key(tmp_path / "keys" / "k1")


def run_deid(inp, out, key, *extra):
    """De-identify; return (exit code, report dict, stderr)."""
    report = Path(str(out) + ".report.json")
    proc = obscura("deid", inp, out, "--key-file", key, "--report", report, *extra)
    assert proc.returncode in (0, 1), f"exit {proc.returncode}: {proc.stderr}"
    return proc.returncode, json.loads(report.read_text()), proc.stderr


def corpus_sources():
    """Folders of real DICOM files shipped by PyPI packages."""
    import importlib.util

    import pydicom

    sources = {"pydicom": Path(pydicom.__file__).parent / "data" / "test_files"}
    spec = importlib.util.find_spec("deid_data")
    if spec and spec.origin:
        sources["deid-data"] = Path(spec.origin).parent
    data_store = Path(pydicom.__file__).parent.parent / "data_store" / "data"
    if data_store.is_dir():
        sources["pydicom-data"] = data_store
    return sources


@pytest.fixture(scope="session")
def real_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    for name, src in corpus_sources().items():
        shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("*.py", "*.pyc", "__pycache__"))
    return root


@pytest.fixture(scope="session")
def session_key(tmp_path_factory):
    return make_key(tmp_path_factory.mktemp("key") / "key")


@pytest.fixture(scope="session")
def real_run(real_corpus, session_key, tmp_path_factory):
    """The whole real corpus de-identified once, burned-in files allowed."""
    out = tmp_path_factory.mktemp("real") / "out"
    code, report, _ = run_deid(real_corpus, out, session_key, "--allow-burned-in")
    return real_corpus, out, code, report


def read_dicom(path):
    """pydicom's reading without force, or None."""
    import pydicom

    try:
        return pydicom.dcmread(str(path))
    except Exception:
        return None

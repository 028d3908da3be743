"""Shared fixtures and helpers: the obscura binary, keys, runs, the real corpus.

The corpus is real DICOM that nobody here wrote: every file of pydicom's
test_files, of pydicom-data and of deid-data (non-DICOM files included: they
must come out as skipped). It is copied into a temporary folder, because the
output may not be inside the input and site-packages is not ours to write in.
"""
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The devset (real DICOM, synthetic PHI, its answer key and scorer): a copy in
# the repository, see tests/devset/README.md.
DEVSET = REPO / "tests" / "devset"
SAMPLES = REPO / "samples"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
BINARY = TARGET / "release" / "obscura"

DEFLATED = "1.2.840.10008.1.2.1.99"
STANDARD_UID_ROOT = "1.2.840.10008."
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"



def pytest_configure(config):
    # pydicom warns about every oddity of the real corpus; the tests judge those.
    config.addinivalue_line("filterwarnings", "ignore::UserWarning:pydicom.*")
    logging.getLogger("pydicom").setLevel(logging.ERROR)


# --------------------------------------------------------------- the binary


@pytest.fixture(scope="session", autouse=True)
def obscura_binary():
    """target/release/obscura, (re)built first: a no-op when it is current,
    and never a stale binary tested by mistake."""
    proc = subprocess.run(["cargo", "build", "--release", "-p", "obscura-cli"],
                          cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0 or not BINARY.is_file():
        pytest.exit(f"cannot build obscura:\n{proc.stderr[-3000:]}", returncode=3)
    return BINARY


@pytest.fixture(scope="session", autouse=True)
def private_config_home(tmp_path_factory):
    """Keep a run that is given no key from creating one in the real ~/.config."""
    home = tmp_path_factory.mktemp("config-home")
    saved = {k: os.environ.get(k) for k in ("XDG_CONFIG_HOME", "OBSCURA_KEY_FILE")}
    os.environ["XDG_CONFIG_HOME"] = str(home)
    os.environ.pop("OBSCURA_KEY_FILE", None)
    yield home
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def obscura(*args, env=None, prefix=()):
    """Run `obscura ARGS` (after an optional wrapper command such as
    /usr/bin/time); return the CompletedProcess, text mode."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([*map(str, prefix), str(BINARY), *map(str, args)],
                          capture_output=True, text=True, errors="replace", env=full_env)


class DeidRun(tuple):
    """(exit code, report dict); `.stderr` keeps obscura's stderr for messages."""

    def __new__(cls, code, report, stderr):
        run = super().__new__(cls, (code, report))
        run.stderr = stderr
        return run


def run_deid(input, output, *extra_args, env=None, prefix=()):
    """`obscura deid INPUT OUTPUT EXTRA --report R`; return (exit code, report).

    The report goes beside the output folder unless EXTRA names one. Fails the
    test if obscura wrote no report (it exits 2 only on fatal errors, which
    the callers that expect them check with `obscura()` directly)."""
    extra = [str(a) for a in extra_args]
    if "--report" in extra:
        report = Path(extra[extra.index("--report") + 1])
    else:
        report = Path(output).parent / (Path(output).name + ".report.json")
        extra += ["--report", str(report)]
    proc = obscura("deid", input, output, *extra, env=env, prefix=prefix)
    if not report.is_file():
        pytest.fail(f"obscura deid exited {proc.returncode} without a report:\n{proc.stderr[-3000:]}")
    return DeidRun(proc.returncode, json.loads(report.read_text()), proc.stderr)


# --------------------------------------------------------------------- keys


def make_key(path):
    """`obscura keygen PATH`; return PATH."""
    proc = obscura("keygen", path)
    assert proc.returncode == 0, f"keygen exited {proc.returncode}: {proc.stderr}"
    return Path(path)


@pytest.fixture
def key(tmp_path):
    """A fresh key (mode 0600) in the test's tmp dir."""
    return make_key(tmp_path / "keys" / "key")


@pytest.fixture(scope="session")
def session_key(tmp_path_factory):
    return make_key(tmp_path_factory.mktemp("session-key") / "key")


# ------------------------------------------------------------- real corpus


def pydicom_test_files():
    import pydicom

    return Path(pydicom.__file__).parent / "data" / "test_files"


def pydicom_data_files():
    """pydicom-data's data folder (site-packages/data_store/data)."""
    try:
        files = importlib.metadata.files("pydicom-data") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        parts = Path(str(f)).parts
        if parts[:2] == ("data_store", "data") and len(parts) > 2:
            path = Path(f.locate())
            return path.parents[len(parts) - 3]
    return None


def deid_data_files():
    spec = importlib.util.find_spec("deid_data")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def corpus_sources():
    """{name: folder} of the three real-file packages; fails if one is missing."""
    sources = {"pydicom": pydicom_test_files(), "pydicom-data": pydicom_data_files(),
               "deid-data": deid_data_files()}
    missing = [n for n, p in sources.items() if p is None or not p.is_dir()]
    if missing:
        pytest.fail(f"real corpus incomplete, not installed: {missing} (pip install -r tests/requirements.txt)")
    return sources


@pytest.fixture(scope="session")
def real_corpus(tmp_path_factory):
    """A copy of the whole real corpus: every file, byte for byte."""
    root = tmp_path_factory.mktemp("corpus") / "in"
    for name, src in corpus_sources().items():
        # bytecode caches are the interpreter's, not the packages' files
        shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="session")
def real_run(real_corpus, session_key, tmp_path_factory):
    """The real corpus de-identified once with --allow-burned-in:
    (input root, output root, exit code, report)."""
    out = tmp_path_factory.mktemp("real") / "out"
    code, report = run_deid(real_corpus, out, "--key-file", session_key, "--allow-burned-in", "--jobs", 2)
    return real_corpus, out, code, report


# ------------------------------------------------------------ DICOM helpers


def input_files(root):
    """{relative path (str): path} of every regular file under root."""
    return {str(p.relative_to(root)): p for p in sorted(Path(root).rglob("*")) if p.is_file()}


def read_strict(path, **kw):
    """pydicom's dcmread without force (a Part 10 file), or None."""
    import pydicom

    try:
        return pydicom.dcmread(str(path), **kw)
    except Exception:
        return None


def read_any(path, **kw):
    """dcmread without force, else with force (bare data sets), or None."""
    import pydicom

    ds = read_strict(path, **kw)
    if ds is not None:
        return ds
    try:
        ds = pydicom.dcmread(str(path), force=True, **kw)
        ds.get("SOPClassUID")  # force accepts anything: make sure it really parsed
        return ds if len(ds) else None
    except Exception:
        return None


def is_dicomdir(ds):
    meta = getattr(ds, "file_meta", None)
    return meta is not None and meta.get("MediaStorageSOPClassUID") == DICOMDIR_CLASS


def iter_elements(ds):
    """Every element at any depth (items of sequences included)."""
    for elem in ds:
        yield elem
        if elem.VR == "SQ" and elem.value:
            for item in elem.value:
                yield from iter_elements(item)


def uid_values(ds, keyword=None):
    """Every UI value at any depth, file meta included, as strings; only of
    elements whose keyword matches the regex `keyword`, if given."""
    found = set()
    datasets = [ds] + ([ds.file_meta] if getattr(ds, "file_meta", None) is not None else [])
    for d in datasets:
        for elem in iter_elements(d):
            if elem.VR != "UI" or elem.value in (None, ""):
                continue
            if keyword is not None and not keyword.search(elem.keyword or ""):
                continue
            values = [elem.value] if isinstance(elem.value, str) else list(elem.value)
            found.update(str(v).strip("\0 ") for v in values if str(v).strip("\0 "))
    return found


def dataset_bytes(path):
    """The file's bytes, with a deflated data set inflated (so searches see values)."""
    import pydicom

    raw = Path(path).read_bytes()
    meta = pydicom.dcmread(str(path), stop_before_pixels=True, force=True).file_meta
    if meta.get("TransferSyntaxUID") == DEFLATED:
        start = 132 + 12 + int(meta.FileMetaInformationGroupLength)
        raw = raw[:start] + zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw[start:])
    return raw


def raw_value(ds, tag):
    """The element's value as stored (bytes), trailing padding stripped, or b''."""
    if tag not in ds:
        return b""
    elem = ds.get_item(tag)
    value = elem.value
    if isinstance(value, bytes):
        return value.rstrip(b" \0")
    return str(value).rstrip(" \0").encode("utf-8", "replace")


def outputs(root):
    """{relative path: path} of every file in an output tree."""
    return input_files(root)


# ------------------------------------------------------- runs with options

# PS3.15 Annex E options (CID 7050): command-line name -> code.
OPTION_CODES = {
    "retain-safe-private": "113111",
    "retain-uids": "113110",
    "retain-device-identity": "113109",
    "retain-institution-identity": "113112",
    "retain-patient-characteristics": "113108",
    "retain-long-full-dates": "113106",
    "retain-long-modified-dates": "113107",
    "clean-descriptors": "113105",
    "clean-structured-content": "113104",
    "clean-graphics": "113103",
}
RETAIN_ALL = ("retain-safe-private", "retain-uids", "retain-device-identity",
              "retain-institution-identity", "retain-patient-characteristics")
CLEAN_ALL = ("clean-descriptors", "clean-structured-content", "clean-graphics")


# How many option runs of the real corpus `corpus_run` keeps on disk at once
# (each writes the whole corpus again, about 120 MB; a run takes a second).
CORPUS_RUNS_KEPT = 2


@pytest.fixture(scope="session")
def corpus_run(real_corpus, real_run, session_key, tmp_path_factory):
    """corpus_run(*options) -> (input root, output root, exit code, report):
    the real corpus de-identified with --allow-burned-in and these options
    (the empty set is `real_run`). Tests asking for the same set in a row
    share one run; only the outputs of the CORPUS_RUNS_KEPT sets asked for
    last stay on disk, an older one is deleted and run again when asked for
    (sixteen sets kept to the end of the session filled a CI machine's disk)."""
    kept = {}

    def run(*options):
        combo = tuple(sorted(set(options)))
        if not combo:
            return real_run
        if combo in kept:
            kept[combo] = kept.pop(combo)  # the last asked for goes last
        else:
            name = "opts-" + "-".join(o.replace("retain-", "r").replace("clean-", "c") for o in combo)
            out = tmp_path_factory.mktemp(name[:60]) / "out"
            args = [a for o in combo for a in ("--option", o)]
            code, report = run_deid(real_corpus, out, "--key-file", session_key, "--allow-burned-in",
                                    "--jobs", 2, *args)
            kept[combo] = (real_corpus, out, code, report)
            while len(kept) > CORPUS_RUNS_KEPT:
                oldest = next(iter(kept))
                shutil.rmtree(kept.pop(oldest)[1].parent)
        return kept[combo]

    return run


def ocr_first_frame(tesseract, path, png):
    """(word, confidence) of what the Tesseract CLI reads (sparse text, 2x)
    in the first frame of the DICOM file at path, rendered to png."""
    import pydicom
    from PIL import Image
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[0]
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut
        arr = apply_color_lut(arr, ds)
    elif ds.PhotometricInterpretation.startswith("YBR"):
        from pydicom.pixels import convert_color_space
        arr = convert_color_space(arr, ds.PhotometricInterpretation, "RGB")
    if arr.dtype != "uint8":
        lo, hi = float(arr.min()), float(arr.max())
        arr = ((arr - lo) * (255.0 / max(hi - lo, 1))).astype("uint8")
    img = Image.fromarray(arr)
    img.resize((img.width * 2, img.height * 2)).save(png)
    tsv = subprocess.run([tesseract, str(png), "-", "--psm", "11", "tsv"], capture_output=True,
                         text=True).stdout
    rows = [line.split("\t") for line in tsv.splitlines()[1:]]
    return [(r[11], float(r[10])) for r in rows if len(r) == 12 and r[0] == "5" and r[11].strip()]

"""Bad input: each bad file gets a clear reason, the batch goes on, memory
stays bounded, nothing partial is left. Fatal misuse exits 2. Keys are
private and never overwritten."""
import random
import re
import shutil
import stat
import struct
import sys
from pathlib import Path

import pydicom.data
import pytest

from conftest import make_key, obscura, outputs, run_deid

CT_SMALL = Path(pydicom.data.get_testdata_file("CT_small.dcm"))
CT_IMAGE = b"1.2.840.10008.5.1.4.1.1.2\0"
GNU_TIME = Path("/usr/bin/time")
PEAK_LIMIT_KIB = 300 * 1024
PHI = b"DOE^JOHN"


# ------------------------------------------------------------ hand-made bytes


def element(group, elem, vr, value, length=None):
    """An explicit VR little endian element; `length` overrides the true length."""
    n = len(value) if length is None else length
    if vr in (b"OB", b"OW", b"OF", b"SQ", b"UN", b"UT", b"UC", b"UR"):
        return struct.pack("<HH2sHI", group, elem, vr, 0, n) + value
    return struct.pack("<HH2sH", group, elem, vr, n) + value


def part10(dataset):
    """Preamble, DICM and a minimal valid file meta (explicit VR LE)."""
    meta = (element(2, 0x0001, b"OB", b"\0\1")
            + element(2, 0x0002, b"UI", CT_IMAGE)
            + element(2, 0x0003, b"UI", b"1.2.3.4.5\0")
            + element(2, 0x0010, b"UI", b"1.2.840.10008.1.2.1\0")
            + element(2, 0x0012, b"UI", b"1.2.3.4.6\0"))
    return bytes(128) + b"DICM" + element(2, 0x0000, b"UL", struct.pack("<I", len(meta))) + meta + dataset


# (0008,0016) SOPClassUID, (0008,0018) SOPInstanceUID, (0008,0060) Modality
HEAD = element(8, 0x16, b"UI", CT_IMAGE) + element(8, 0x18, b"UI", b"1.2.3.4.5\0") + element(8, 0x60, b"CS", b"CT")
PATIENT = element(0x10, 0x10, b"PN", PHI)


def nested_sequences(depth):
    """(0008,1115) SQ of undefined length holding one undefined-length item
    holding the next, `depth` deep, each properly delimited."""
    opening = struct.pack("<HH2sHI", 8, 0x1115, b"SQ", 0, 0xFFFFFFFF) + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    closing = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return opening * depth + closing * depth


def bad_files():
    ct = CT_SMALL.read_bytes()
    return {
        "empty.dcm": b"",
        "truncated.dcm": ct[: int(len(ct) * 0.6)],
        "random.dcm": bytes(128) + b"DICM" + random.Random(20240229).randbytes(4096),
        "deep.dcm": part10(HEAD + nested_sequences(10_000) + PATIENT),
        # (0010,4000) PatientComments LT says 4096 bytes; 6 follow
        "overlong.dcm": part10(HEAD + PATIENT + element(0x10, 0x4000, b"LT", b"short ", length=4096)),
        # (7FE0,0010) PixelData OB says 0x7FFFFFF0 bytes (2 GiB) in a ~300-byte file
        "two_gib.dcm": part10(HEAD + element(0x7FE0, 0x10, b"OB", bytes(8), length=0x7FFFFFF0)),
    }


# ------------------------------------------------------------ peak memory


def memory_wrapper(stats):
    """(command prefix, reader of the peak RSS in KiB) for one obscura run:
    GNU time -v if installed, else a fresh Python parent's RUSAGE_CHILDREN
    (this process's children include cargo and earlier runs)."""
    if GNU_TIME.is_file():
        def read():
            text = stats.read_text()
            return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
        return [GNU_TIME, "-v", "-o", stats], read
    probe = ("import resource,subprocess,sys;r=subprocess.run(sys.argv[2:]).returncode;"
             "open(sys.argv[1],'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss));"
             "sys.exit(r)")
    return [sys.executable, "-c", probe, stats], lambda: int(stats.read_text())


# ------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    key = make_key(tmp / "key")
    inp, out = tmp / "in", tmp / "out"
    inp.mkdir()
    files = bad_files()
    for name, data in files.items():
        (inp / name).write_bytes(data)
    assert 250 < len(files["two_gib.dcm"]) < 350
    shutil.copy(CT_SMALL, inp / "good.dcm")
    prefix, peak = memory_wrapper(tmp / "rss")
    run = run_deid(inp, out, "--key-file", key, prefix=prefix)
    return files, out, run, peak()


def test_the_batch_goes_on_past_bad_files(bad_run):
    files, out, run, _ = bad_run
    code, report = run
    assert code == 1, f"exit {code}: {run.stderr}"
    entries = {f["path"]: f for f in report["files"]}
    assert set(entries) == set(files) | {"good.dcm"}
    assert entries["good.dcm"]["outcome"] == "written"
    assert set(outputs(out)) == {"good.dcm"}, "output for a bad file"


@pytest.mark.parametrize("name, detail", [
    ("truncated.dcm", None),
    ("random.dcm", None),
    ("deep.dcm", r"deep|depth|nest"),
    ("overlong.dcm", r"truncat|length|exceed|beyond|end of"),
    ("two_gib.dcm", r"truncat|length|exceed|beyond|end of|large|limit"),
])
def test_each_bad_file_is_quarantined_with_a_clear_reason(bad_run, name, detail):
    _, out, (_, report), _ = bad_run
    entry = next(f for f in report["files"] if f["path"] == name)
    assert entry["outcome"] == "quarantined", entry
    assert entry["reason"] == "unparseable", entry
    assert entry["detail"].strip(), entry
    if detail:
        assert re.search(detail, entry["detail"], re.I), entry
    assert not (out / name).exists()


def test_an_empty_file_is_skipped_as_empty(bad_run):
    _, out, (_, report), _ = bad_run
    entry = next(f for f in report["files"] if f["path"] == "empty.dcm")
    assert entry == {"path": "empty.dcm", "outcome": "skipped", "reason": "empty"}
    assert not (out / "empty.dcm").exists()


def test_no_temporary_file_is_left(bad_run):
    _, out, _, _ = bad_run
    left = [str(p) for p in out.rglob("*") if p.name.startswith(".obscura-") or p.name.endswith(".tmp")]
    assert not left, left


def test_reasons_quote_no_values(bad_run):
    _, _, run, _ = bad_run
    _, report = run
    assert PHI.decode() not in str(report) and PHI.decode() not in run.stderr


def test_peak_memory_is_bounded(bad_run):
    *_, peak_kib = bad_run
    assert 0 < peak_kib < PEAK_LIMIT_KIB, f"peak RSS {peak_kib / 1024:.0f} MiB"


# ------------------------------------------------------------ fatal misuse


@pytest.fixture
def one_file_input(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(CT_SMALL, inp / "a.dcm")
    return inp


def test_output_inside_input_is_refused(key, one_file_input):
    proc = obscura("deid", one_file_input, one_file_input / "out", "--key-file", key)
    assert proc.returncode == 2, proc.stderr
    assert sorted(p.name for p in one_file_input.rglob("*")) == ["a.dcm"]


def test_input_inside_output_is_refused(key, tmp_path):
    out = tmp_path / "out"
    inp = out / "in"
    inp.mkdir(parents=True)
    shutil.copy(CT_SMALL, inp / "a.dcm")
    proc = obscura("deid", inp, out, "--key-file", key)
    assert proc.returncode == 2, proc.stderr
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["in", "in/a.dcm"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
@pytest.mark.parametrize("how", ["--key-file", "OBSCURA_KEY_FILE"])
def test_a_key_others_can_read_is_refused(key, one_file_input, tmp_path, mode, how):
    key.chmod(mode)
    out = tmp_path / "out"
    if how == "--key-file":
        proc = obscura("deid", one_file_input, out, "--key-file", key)
    else:
        proc = obscura("deid", one_file_input, out, env={"OBSCURA_KEY_FILE": str(key)})
    assert proc.returncode == 2, proc.stderr
    assert not out.exists() or not any(out.rglob("*.dcm"))


def test_the_key_file_env_var_is_the_same_as_the_option(key, one_file_input, tmp_path):
    code, _ = run_deid(one_file_input, tmp_path / "opt", "--key-file", key)
    env_code, _ = run_deid(one_file_input, tmp_path / "env", env={"OBSCURA_KEY_FILE": str(key)})
    assert code == env_code == 0
    assert (tmp_path / "opt" / "a.dcm").read_bytes() == (tmp_path / "env" / "a.dcm").read_bytes()


def test_keygen_writes_a_private_key_and_never_overwrites(tmp_path):
    path = make_key(tmp_path / "k")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    proc = obscura("keygen", path)
    assert proc.returncode == 2, proc.stderr
    assert path.read_bytes() == before
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    other = make_key(tmp_path / "k2")
    assert other.read_bytes() != before, "two keygens, one key"


def test_without_a_key_a_default_one_is_created_once(one_file_input, tmp_path):
    """No --key-file and no OBSCURA_KEY_FILE: a key is made under the config
    folder (here a private one) on first use and reused after."""
    home = tmp_path / "config"
    env = {"XDG_CONFIG_HOME": str(home)}
    first = obscura("deid", one_file_input, tmp_path / "o1", env=env)
    created = sorted(p for p in home.rglob("*") if p.is_file())
    second = obscura("deid", one_file_input, tmp_path / "o2", env=env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert len(created) == 1 and stat.S_IMODE(created[0].stat().st_mode) == 0o600, created
    assert sorted(p for p in home.rglob("*") if p.is_file()) == created
    assert (tmp_path / "o1" / "a.dcm").read_bytes() == (tmp_path / "o2" / "a.dcm").read_bytes()

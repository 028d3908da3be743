"""Bad input: a clear per-file reason, the batch goes on, memory bounded, nothing partial."""
import os
import shutil
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pydicom

from conftest import BINARY, make_key, obscura, run_deid


def el(group, element, vr, value):
    """An explicit VR little endian element."""
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        return struct.pack("<HH2sHI", group, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def part10(dataset):
    ts = b"1.2.840.10008.1.2.1\x00"
    group = el(2, 1, b"OB", b"\x00\x01") + el(2, 2, b"UI", b"1.2.840.10008.5.1.4.1.1.7\x00") \
        + el(2, 3, b"UI", b"1.2.3.4\x00") + el(2, 0x10, b"UI", ts)
    return bytes(128) + b"DICM" + el(2, 0, b"UL", struct.pack("<I", len(group))) + group + dataset


TOP = el(8, 0x16, b"UI", b"1.2.840.10008.5.1.4.1.1.7\x00") + el(8, 0x18, b"UI", b"1.2.3.4\x00") \
    + el(0x10, 0x10, b"PN", b"DOE^JOHN")


def nested(depth):
    body = b""
    for _ in range(depth):
        body = struct.pack("<HH2sHI", 8, 0x1115, b"SQ", 0, 0xFFFFFFFF) \
            + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + body \
            + struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return body


def bad_inputs(folder):
    ct = Path(pydicom.data.get_testdata_file("CT_small.dcm")).read_bytes()
    files = {
        "empty.dcm": b"",
        "truncated.dcm": ct[: int(len(ct) * 0.6)],
        "random.dcm": bytes(128) + b"DICM" + os.urandom(4096),
        "deep.dcm": part10(TOP + nested(10_000)),
        "overlong.dcm": part10(TOP + struct.pack("<HH2sHI", 0x10, 0x4000, b"UT", 0, 5000) + b"short"),
        "two_gb.dcm": part10(TOP + struct.pack("<HH2sHI", 0x7FE0, 0x10, b"OW", 0, 0x7FFFFFF0) + bytes(64)),
    }
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    shutil.copy(pydicom.data.get_testdata_file("CT_small.dcm"), folder / "good.dcm")
    return files


def peak_rss_kib(cmd):
    """Peak RSS of `cmd` alone, measured from a fresh Python parent."""
    probe = ("import resource,subprocess,sys;subprocess.run(sys.argv[1:],capture_output=True);"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    proc = subprocess.run([sys.executable, "-c", probe, *map(str, cmd)], capture_output=True, text=True, check=True)
    return int(proc.stdout.strip())


def test_bad_files_are_quarantined_with_reasons_and_the_batch_goes_on(key, tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    files = bad_inputs(inp)
    code, report, stderr = run_deid(inp, out, key)
    peak_kb = peak_rss_kib([BINARY, "deid", inp, tmp_path / "again", "--key-file", key])
    assert code == 1
    by_path = {f["path"]: f for f in report["files"]}
    assert by_path["good.dcm"]["outcome"] == "written"
    assert by_path["empty.dcm"] == {"path": "empty.dcm", "outcome": "skipped", "reason": "empty"}
    for name in files:
        if name == "empty.dcm":
            continue
        entry = by_path[name]
        assert entry["outcome"] == "quarantined", entry
        assert entry["reason"] == "unparseable" and entry["detail"], entry
        assert not (out / name).exists(), name
    assert "too deep" in by_path["deep.dcm"]["detail"] or "nested" in by_path["deep.dcm"]["detail"]
    assert "truncated" in by_path["two_gb.dcm"]["detail"]
    assert "truncated" in by_path["overlong.dcm"]["detail"]
    assert not list(out.rglob(".obscura-*")), "temporary files left behind"
    assert peak_kb < 300 * 1024, f"peak RSS {peak_kb} KiB"
    assert "DOE^JOHN" not in stderr and "DOE^JOHN" not in str(report)


def test_output_and_input_may_not_contain_each_other(key, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(pydicom.data.get_testdata_file("CT_small.dcm"), inp / "a.dcm")
    assert obscura("deid", inp, inp / "out", "--key-file", key).returncode == 2
    assert obscura("deid", inp, tmp_path, "--key-file", key).returncode == 2
    assert not (inp / "out").exists()


def test_keys_are_private_and_never_overwritten(tmp_path):
    key = make_key(tmp_path / "k")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    before = key.read_bytes()
    assert obscura("keygen", key).returncode == 2
    assert key.read_bytes() == before
    key.chmod(0o644)
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(pydicom.data.get_testdata_file("CT_small.dcm"), inp / "a.dcm")
    proc = obscura("deid", inp, tmp_path / "out", "--key-file", key)
    assert proc.returncode == 2 and "readable by others" in proc.stderr
    key.chmod(0o600)
    proc = obscura("deid", inp, tmp_path / "out2", env={"OBSCURA_KEY_FILE": str(key)})
    assert proc.returncode == 0, proc.stderr


def test_default_key_is_created_once_under_the_config_folder(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(pydicom.data.get_testdata_file("CT_small.dcm"), inp / "a.dcm")
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config")}
    first = obscura("deid", inp, tmp_path / "o1", env=env)
    second = obscura("deid", inp, tmp_path / "o2", env=env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr
    assert "created a new key" in first.stderr and "created a new key" not in second.stderr
    key = tmp_path / "home" / ".config" / "obscura" / "key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (tmp_path / "o1" / "a.dcm").read_bytes() == (tmp_path / "o2" / "a.dcm").read_bytes()

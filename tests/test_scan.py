"""`obscura scan`: recall on the devset's planted identity, the release gate
(`--expect-clean`) on de-identified output, the real corpus, report figures,
the patients CSV's mode, and the HTML report as headless Chromium renders it."""
import collections
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import DEVSET, make_key, obscura, run_deid

KEY = DEVSET / "answer_key.json"
DATA = DEVSET / "data"


def norm(s):
    return re.sub(r"[^0-9a-z]", "", str(s).lower())


def scan(*paths, extra=()):
    """`obscura scan PATHS --json J EXTRA`: (exit code, report, stdout)."""
    # the report may hold values (--show-values): removed once read
    with tempfile.TemporaryDirectory(prefix="obscura-scan-") as out:
        report = Path(out) / "scan.json"
        proc = obscura("scan", *paths, "--json", report, "--jobs", 2, *extra)
        assert report.is_file(), f"scan exited {proc.returncode} without a report:\n{proc.stderr[-3000:]}"
        return proc.returncode, json.loads(report.read_text()), proc.stdout


@pytest.fixture(scope="session")
def devset_scan():
    return scan(DATA, extra=["--show-values"])


@pytest.fixture(scope="session")
def devset_deid(tmp_path_factory):
    root = tmp_path_factory.mktemp("scan-deid")
    key = make_key(root / "key")
    code, _ = run_deid(DATA, root / "out", "--key-file", key, "--allow-burned-in", "--jobs", 2)
    assert code == 0
    return root / "out"


def test_recall_on_the_devset_by_category(devset_scan):
    """Every planted needle location must carry a finding at its tag path
    whose text holds the needle (or is part of it)."""
    code, report, _ = devset_scan
    assert code == 0
    key = json.loads(KEY.read_text())
    by_name = {Path(f["path"]).name: f for f in report["files"]}
    total, found, misses = collections.Counter(), collections.Counter(), []
    for name, entry in key["files"].items():
        f = by_name[Path(name).name]
        at = collections.defaultdict(list)
        for x in f["findings"]:
            at[x["path"].upper()].append(norm(x["value"]))
        for needle in entry["needles"]:
            n = norm(needle["n"])
            for loc in needle["locs"]:
                total[loc["cat"]] += 1
                values = at.get(loc["path"].upper(), [])
                if any((n and n in v) or (len(v) >= 3 and v in n) for v in values):
                    found[loc["cat"]] += 1
                else:
                    misses.append((loc["cat"], needle["kind"], loc["elem"]))
    print("\nobscura scan recall on the devset (planted identity found at its location):")
    print(f"  {'category':<12} {'found':>6} {'planted':>8} {'recall':>8}")
    for cat in sorted(total):
        print(f"  {cat:<12} {found[cat]:>6} {total[cat]:>8} {100 * found[cat] / total[cat]:>7.1f}%")
    all_found, all_total = sum(found.values()), sum(total.values())
    print(f"  {'all':<12} {all_found:>6} {all_total:>8} {100 * all_found / all_total:>7.1f}%")
    print("  missed (category, kind, element):", collections.Counter(misses).most_common(10))
    assert all_found / all_total >= 0.99
    assert all(found[c] / total[c] >= 0.95 for c in total)


def test_expect_clean_fails_on_the_raw_devset():
    proc = obscura("scan", DATA, "--expect-clean", "--jobs", 2)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "not clean" in proc.stdout
    # each finding is listed: file, tag path, category, detector; no values
    listed = [line for line in proc.stdout.splitlines() if line.count("\t") == 3]
    assert len(listed) > 1000
    key = json.loads(KEY.read_text())
    names = {norm(n["n"]) for e in key["files"].values() for n in e["needles"] if n["kind"] == "name"}
    out = norm(proc.stdout + proc.stderr)
    assert not [n for n in names if len(n) > 5 and n in out], "a planted name reached the terminal"


def test_expect_clean_passes_on_deidentified_output(devset_deid):
    proc = obscura("scan", devset_deid, "--expect-clean", "--jobs", 2)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert "clean: no identity found" in proc.stdout


def test_json_figures_are_consistent_and_values_masked(tmp_path):
    code, report, _ = scan(DATA)
    s = report["summary"]
    files = report["files"]
    assert s["files"] == len(files) == s["scanned"] + s["skipped"] + s["unreadable"]
    findings = [x for f in files for x in f["findings"]]
    assert s["findings"] == len(findings)
    assert s["by_category"] == {c: sum(1 for x in findings if x["category"] == c) for c in s["by_category"]}
    assert s["identity_findings"] == sum(1 for x in findings if x["category"] != "burned_in")
    assert s["files_with_identity"] == sum(1 for f in files if any(x["category"] != "burned_in" for x in f["findings"]))
    assert s["burned_in_files"] == 15  # the devset's US/SC/OT files
    assert sum(s["by_modality"].values()) == s["identity_findings"]
    assert s["patients"] == len(report["patients"]) == 6
    assert sum(p["files"] for p in report["patients"]) == s["scanned"]
    assert [r["score"] for r in report["riskiest"]] == sorted((r["score"] for r in report["riskiest"]), reverse=True)
    # masked: no planted value of four characters or more appears in the JSON
    key = json.loads(KEY.read_text())
    needles = {n["n"] for e in key["files"].values() for n in e["needles"] if len(n["n"]) >= 4}
    text = json.dumps(report)
    assert not [n for n in needles if n in text]
    assert all(x["value"] == "" or x["value"].endswith("***") for x in findings)


def test_patients_csv_is_private_and_lists_each_patient(tmp_path):
    csv = tmp_path / "patients.csv"
    csv.write_text("stale")
    os.chmod(csv, 0o644)
    proc = obscura("scan", DATA, "--patients", csv, "--jobs", 2)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(csv.stat().st_mode) == 0o600
    rows = csv.read_text().splitlines()
    assert rows[0] == "name,id,birth_date,files,studies"
    key = json.loads(KEY.read_text())
    ids = {n["n"] for e in key["files"].values() for n in e["needles"]
           if any(loc["elem"] == "PatientID" for loc in n["locs"])}
    listed = {r.split(",")[1] for r in rows[1:]}
    assert listed == ids


def test_a_report_into_a_pipe_is_written_and_the_pipe_left_alone(tmp_path):
    # `--json /dev/stdout`, a FIFO: not a file to make private (as root,
    # `--json /dev/null` left the machine's /dev/null 0600)
    import threading
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    os.chmod(fifo, 0o644)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    proc = obscura("scan", DATA, "--json", fifo, "--jobs", 2)
    reader.join(timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(got[0])["files"], "no report through the pipe"
    assert stat.S_IMODE(fifo.stat().st_mode) == 0o644


def test_real_corpus_does_not_crash(real_corpus):
    n_files = sum(1 for p in Path(real_corpus).rglob("*") if p.is_file())
    code, report, _ = scan(real_corpus)
    assert code == 0
    assert report["summary"]["files"] == n_files
    assert report["summary"]["scanned"] > 100
    reasons = [f["reason"] for f in report["files"] if f["status"] == "unreadable"]
    assert all("internal error" not in r for r in reasons), reasons


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_html_report_in_headless_chromium(tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    artifacts = tmp_path
    html = artifacts / "report.html"
    jpath = artifacts / "report.json"
    proc = obscura("scan", DATA, "--html", html, "--json", jpath, "--jobs", 2)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(jpath.read_text())
    page = html.read_text()
    # self-contained: nothing to fetch
    assert not re.search(r"""\s(src|href)\s*=|@import|url\(""", page)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={artifacts / 'profile'}"]
    dom = subprocess.run([browser, *flags, "--dump-dom", html.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    shown = dict(re.findall(r'data-figure="([^"]+)"[^>]*>\s*([0-9]+)\s*<', dom.stdout))
    s = report["summary"]
    expected = {f"summary.{k}": s[k] for k in ("files", "scanned", "skipped", "unreadable", "patients", "studies",
                                               "findings", "identity_findings", "files_with_identity",
                                               "burned_in_files", "claims_clean_files", "document_files")}
    expected.update({f"category.{c}": n for c, n in s["by_category"].items()})
    expected.update({f"modality.{m}": n for m, n in s["by_modality"].items()})
    expected.update({f"creator.{c['group']}:{c['creator']}": c["elements"] for c in report["private_creators"][:15]})
    assert {k: int(v) for k, v in shown.items()} == expected
    shot = artifacts / "report.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,2400", html.as_uri()],
                   capture_output=True, text=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000
    print(f"\nHTML report artifacts (report.html, report.png, report.json): {artifacts}")

"""The whole real corpus: every readable file is written or quarantined with a
reason; what is written is valid, marked, has its pixels unchanged and keeps
no private element, patient name or ID, or original UID. Without
--allow-burned-in, files that may carry burned-in text are quarantined
unless their pixels were read and hold no text."""
import re
import shutil

import pytest

from conftest import (
    STANDARD_UID_ROOT, dataset_bytes, input_files, is_dicomdir, iter_elements, ocr_first_frame,
    outputs, raw_value, read_any, read_strict, run_deid, uid_values,
)

AE_TITLES = {0x00020016: "SourceApplicationEntityTitle", 0x00020017: "SendingApplicationEntityTitle",
             0x00020018: "ReceivingApplicationEntityTitle"}
QUARANTINE_REASONS = {"burned_in", "unparseable", "unwritable"}
SKIP_REASONS = {"not_dicom", "empty", "dicomdir"}


def written(report):
    return [f["path"] for f in report["files"] if f["outcome"] == "written"]


def problems_message(problems, limit=60):
    more = f"\n... and {len(problems) - limit} more" if len(problems) > limit else ""
    return f"{len(problems)} problem(s):\n" + "\n".join(problems[:limit]) + more


@pytest.fixture(scope="session")
def strict_inputs(real_corpus):
    """{rel: dataset pydicom reads without force, or None}, for every input file."""
    return {rel: read_strict(path) for rel, path in input_files(real_corpus).items()}


@pytest.fixture(scope="session")
def written_pairs(real_run, strict_inputs):
    """[(rel, input dataset or None, output dataset or exception, output bytes)] of written files."""
    import pydicom

    corpus, out, _, report = real_run
    pairs = []
    for rel in written(report):
        src = strict_inputs.get(rel) or read_any(corpus / rel)
        try:
            ds = pydicom.dcmread(str(out / rel))
            ds.get("SOPClassUID")
            raw = dataset_bytes(out / rel)
        except Exception as e:  # a test below reports it
            ds, raw = e, b""
        pairs.append((rel, src, ds, raw))
    return pairs


def parsed(pairs):
    return [(rel, src, ds, raw) for rel, src, ds, raw in pairs if not isinstance(ds, Exception)]


# ------------------------------------------------------------------ the batch


def test_batch_completes_and_the_report_accounts_for_every_file(real_run):
    corpus, out, code, report = real_run
    assert code in (0, 1), f"exit code {code}"
    files = input_files(corpus)
    entries = report["files"]
    paths = [f["path"] for f in entries]
    assert len(paths) == len(set(paths)), "a file is reported twice"
    assert set(paths) == set(files), (sorted(set(files) - set(paths))[:10], sorted(set(paths) - set(files))[:10])

    for field in ("tool", "version", "profile", "profile_codes", "table_edition", "counts",
                  "quarantined_by_reason", "skipped_by_reason", "elapsed_seconds", "files"):
        assert field in report, f"report lacks {field}"
    assert report["tool"] == "obscura"
    assert "113100" in report["profile_codes"]

    by_outcome = {k: [f for f in entries if f["outcome"] == k] for k in ("written", "quarantined", "skipped")}
    assert sum(map(len, by_outcome.values())) == len(entries), {f["outcome"] for f in entries}
    counts = report["counts"]
    assert counts["files"] == len(files)
    for outcome, items in by_outcome.items():
        assert counts[outcome] == len(items), outcome
    assert counts["bytes_in"] == sum(f["bytes_in"] for f in by_outcome["written"])
    assert counts["bytes_out"] == sum(f["bytes_out"] for f in by_outcome["written"])
    for f in by_outcome["written"]:
        assert f["bytes_in"] == files[f["path"]].stat().st_size, f["path"]
        assert f["bytes_out"] == (out / f["path"]).stat().st_size, f["path"]
    for outcome, table in (("quarantined", "quarantined_by_reason"), ("skipped", "skipped_by_reason")):
        tally = {}
        for f in by_outcome[outcome]:
            tally[f["reason"]] = tally.get(f["reason"], 0) + 1
        assert report[table] == tally, table
    assert set(report["quarantined_by_reason"]) <= QUARANTINE_REASONS, \
        f"internal errors (obscura failed on a file): {[f['path'] for f in by_outcome['quarantined'] if f['reason'] not in QUARANTINE_REASONS]}"
    assert set(report["skipped_by_reason"]) <= SKIP_REASONS
    assert code == (1 if by_outcome["quarantined"] else 0)

    # the output mirrors the input: exactly the written files, nothing else
    assert set(outputs(out)) == {f["path"] for f in by_outcome["written"]}


def test_every_readable_file_is_written_or_quarantined_with_a_detail(real_run, strict_inputs):
    corpus, out, _, report = real_run
    entries = {f["path"]: f for f in report["files"]}
    problems, checked = [], 0
    for rel, ds in strict_inputs.items():
        entry = entries[rel]
        if ds is None:
            continue
        if is_dicomdir(ds):
            if entry != {"path": rel, "outcome": "skipped", "reason": "dicomdir"}:
                problems.append(f"{rel}: a DICOMDIR, reported {entry}")
            if (out / rel).exists():
                problems.append(f"{rel}: a DICOMDIR was copied")
            continue
        checked += 1
        if entry["outcome"] == "written":
            if not (out / rel).is_file():
                problems.append(f"{rel}: reported written, no output file")
        elif entry["outcome"] == "quarantined":
            if entry.get("reason") not in QUARANTINE_REASONS or not str(entry.get("detail", "")).strip():
                problems.append(f"{rel}: quarantined without a clear reason: {entry}")
            if (out / rel).exists():
                problems.append(f"{rel}: quarantined but written")
        else:
            problems.append(f"{rel}: pydicom reads it, obscura reported {entry}")
    assert checked > 150, f"only {checked} readable files: is the corpus complete?"
    assert not problems, problems_message(problems)


# ------------------------------------------------------------ written output


def test_outputs_parse_and_are_marked_de_identified(real_run, written_pairs):
    problems = []
    for rel, _, ds, raw in written_pairs:
        if isinstance(ds, Exception):
            problems.append(f"{rel}: pydicom cannot read the output: {type(ds).__name__}: {ds}")
            continue
        if raw[:128] != bytes(128) or raw[128:132] != b"DICM":
            problems.append(f"{rel}: preamble is not 128 zero bytes + DICM")
        for kw in ("SOPClassUID", "SOPInstanceUID"):
            if not str(ds.get(kw, "") or "").strip():
                problems.append(f"{rel}: {kw} missing or empty")
        if ds.get("PatientIdentityRemoved") != "YES":
            problems.append(f"{rel}: PatientIdentityRemoved = {ds.get('PatientIdentityRemoved')!r}")
        seq = ds.get("DeidentificationMethodCodeSequence")
        if not seq or seq[0].get("CodeValue") != "113100":
            problems.append(f"{rel}: DeidentificationMethodCodeSequence[0].CodeValue is not 113100")
        meta = ds.file_meta
        for tag, name in AE_TITLES.items():
            if tag in meta:
                problems.append(f"{rel}: file meta keeps {name}")
        if not str(meta.get("ImplementationVersionName", "")).startswith("OBSCURA"):
            problems.append(f"{rel}: ImplementationVersionName = {meta.get('ImplementationVersionName')!r}")
    assert len(written_pairs) > 150
    assert not problems, problems_message(problems)


def test_pixel_data_is_unchanged(written_pairs):
    problems, compared = [], 0
    for rel, src, ds, _ in parsed(written_pairs):
        if src is None or "PixelData" not in src:
            continue
        compared += 1
        if "PixelData" not in ds:
            problems.append(f"{rel}: PixelData dropped")
        elif ds.PixelData != src.PixelData:
            problems.append(f"{rel}: PixelData changed ({len(src.PixelData)} -> {len(ds.PixelData)} bytes)")
    assert compared > 100
    assert not problems, problems_message(problems)


def test_no_private_element_remains_at_any_depth(written_pairs):
    problems = []
    for rel, _, ds, _ in parsed(written_pairs):
        odd = sorted({str(e.tag) for e in iter_elements(ds) if e.tag.group % 2})
        if odd:
            problems.append(f"{rel}: odd-group elements {odd[:5]}{' ...' if len(odd) > 5 else ''}")
    assert not problems, problems_message(problems)


def _without(raw, values):
    for v in sorted(values, key=len, reverse=True):
        if v:
            raw = raw.replace(v, b"\0")
    return raw


def test_patient_name_and_id_are_not_in_the_output(written_pairs):
    """Searched in the output's bytes (data set inflated if deflated), except
    the pixel data, which is kept as is on purpose and may hold any byte run.
    A value counts as found as a whole token (no letter or digit either side):
    a 4-character ID such as "0010" is otherwise found by chance inside a
    dummy date "19000101"."""
    problems, checked = [], 0
    for rel, src, ds, raw in parsed(written_pairs):
        if src is None:
            continue
        haystack = _without(raw, [bytes(ds.PixelData)] if "PixelData" in ds else [])
        for tag, kw in ((0x00100010, "PatientName"), (0x00100020, "PatientID")):
            value = raw_value(src, tag)
            if len(value.strip()) < 4:
                continue
            checked += 1
            needles = {value, str(src.get(kw, "") or "").encode("utf-8", "replace").rstrip(b" \0")}
            for needle in needles:
                if len(needle) >= 4 and re.search(rb"(?<![A-Za-z0-9])" + re.escape(needle)
                                                  + rb"(?![A-Za-z0-9])", haystack):
                    problems.append(f"{rel}: input {kw} ({len(needle)} bytes) found in the output, "
                                    f"output {kw} is {str(ds.get(kw, ''))[:30]!r}")
                    break
    assert checked > 100
    assert not problems, problems_message(problems)


# UIDs that name a kind of thing, not an instance: a (private) SOP class, a
# transfer syntax, a coding scheme. PS3.15 Annex E replaces instance UIDs;
# replacing these would break the object (e.g. a Siemens CSA Non-Image
# ReferencedSOPClassUID 1.3.12.2.1107.5.9.1, DCMTK's CodingSchemeUID).
KIND_UID = re.compile(r"(ClassUID|TransferSyntaxUID|CodingSchemeUID)")


def test_no_original_non_standard_uid_remains(written_pairs):
    """Every UI value of the input not under 1.2.840.10008. (except those
    that name a kind, see KIND_UID) must be gone from the output: searched as
    a whole UID in the output's bytes, any element, file meta included."""
    problems = []
    for rel, src, ds, raw in parsed(written_pairs):
        if src is None:
            continue
        haystack = _without(raw, [bytes(ds.PixelData)] if "PixelData" in ds else [])
        kinds = uid_values(src, keyword=KIND_UID)
        originals = {u for u in uid_values(src) - kinds if not u.startswith(STANDARD_UID_ROOT)}
        kept = sorted(u for u in originals
                      if re.search(rb"(?<![0-9.])" + re.escape(u.encode()) + rb"(?![0-9.])", haystack))
        if kept:
            problems.append(f"{rel}: {len(kept)} original UID(s) kept, e.g. {kept[:3]}")
    assert not problems, problems_message(problems)


# ------------------------------------------------------------ burned-in text


def test_burned_in_risk_is_quarantined_without_allow_burned_in(real_run, session_key, tmp_path):
    """Without --allow-burned-in, a file at risk is quarantined, or written
    only if its pixels were read and hold no text: the Tesseract CLI then
    reads no word of four letters or digits in its output either."""
    tesseract = shutil.which("tesseract")
    corpus, _, _, allowed = real_run
    out = tmp_path / "out"
    code, report = run_deid(corpus, out, "--key-file", session_key, "--jobs", 2)
    assert code == 1, f"exit {code}"
    entries = {f["path"]: f for f in report["files"]}
    problems, risky, quarantined = [], 0, 0
    for rel in written(allowed):
        src = read_any(corpus / rel, stop_before_pixels=True)
        if src is None:
            continue
        flag = str(src.get("BurnedInAnnotation", "") or "").strip().upper()
        modality = str(src.get("Modality", "") or "").strip().upper()
        if not (flag == "YES" or (modality in ("US", "SC", "OT", "XC") and flag != "NO")):
            continue
        risky += 1
        entry = entries[rel]
        if entry["outcome"] == "quarantined" and entry.get("reason") == "burned_in":
            quarantined += 1
            if (out / rel).exists():
                problems.append(f"{rel}: written although quarantined")
            continue
        if entry["outcome"] != "written":
            problems.append(f"{rel}: Modality {modality or '-'}, BurnedInAnnotation {flag or 'absent'}: {entry}")
        elif tesseract:
            words = readable_words(tesseract, out / rel, tmp_path)
            if words:
                problems.append(f"{rel}: written, but {len(words)} words are readable in its pixels")
    assert risky > 10, f"only {risky} files at risk of burned-in text in the corpus"
    assert quarantined > 0, "no file at risk was quarantined"
    assert report["quarantined_by_reason"].get("burned_in", 0) >= quarantined
    assert not problems, problems_message(problems)



def readable_words(tesseract, path, tmp):
    """Words of 4+ letters or digits the Tesseract CLI reads at confidence
    60 or more in the first frame of path."""
    return [w for w, conf in ocr_first_frame(tesseract, path, tmp / "ocr.png")
            if conf >= 60 and sum(c.isalnum() for c in w) >= 4]

"""Burned-in text (issue 14) end to end: `obscura deid --option
clean-pixel-data` on a labelled set drawn by tests/burned_in/make_set.py
(real pixel data from pydicom and deid-data, text of 8-24 px in 14 fonts),
scored by tests/burned_in/score.py; the deid-data single-frame ultrasounds,
their banners reread by the Tesseract CLI after redaction; `scan --pixels`
on them. The full 320-image set is bench/burned_in.sh's (docs/pixels.md)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from conftest import obscura, ocr_first_frame, run_deid

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "burned_in"))
import make_set  # noqa: E402
import score  # noqa: E402

# Issue 14's targets, on a 14-image set (the bench scores 320)
RECALL_IDENTIFYING_FLOOR = 0.99
RECALL_HEADER_FLOOR = 1.0
QUARANTINE_CEILING = 0.03


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, session_key):
    try:
        make_set.fonts()
    except SystemExit:
        pytest.skip(f"fonts not installed ({make_set.FONTS_INSTALL})")
    root = tmp_path_factory.mktemp("burned-in-redact")
    subprocess.run([sys.executable, str(HERE / "burned_in" / "make_set.py"), str(root / "set"),
                    "--count", "14", "--seed", "21"], check=True, capture_output=True)
    code, report = run_deid(root / "set", root / "out", "--key-file", session_key,
                            "--option", "clean-pixel-data", "--jobs", 2)
    assert code in (0, 1), f"exit {code}"
    return root / "set", root / "out", report


def test_labelled_set_recall_precision_and_quarantine(labelled):
    set_dir, out_dir, _ = labelled
    result = score.summary(*score.score(set_dir, out_dir))
    print(json.dumps({k: result[k] for k in ("recall_identifying", "recall_matching_header",
                                             "precision", "quarantined_share")}))
    assert result["recall_identifying"] >= RECALL_IDENTIFYING_FLOOR, result["missed"]
    assert result["recall_matching_header"] >= RECALL_HEADER_FLOOR, result["missed"]
    assert result["quarantined_share"] <= QUARANTINE_CEILING, result["quarantined_images"]


def test_redacted_outputs_are_marked_and_native(labelled):
    set_dir, out_dir, report = labelled
    key = json.loads((set_dir / "answer_key.json").read_text())
    outcomes = {f["path"]: f for f in report["files"]}
    written = [n for n in key["images"] if (out_dir / n).is_file()]
    assert written, "nothing written"
    for name in written:
        src = pydicom.dcmread(set_dir / name)
        ds = pydicom.dcmread(out_dir / name)
        codes = [i.CodeValue for i in ds.DeidentificationMethodCodeSequence]
        assert "113101" in codes, name
        assert ds.BurnedInAnnotation == "NO", name
        assert ds.SOPInstanceUID != src.SOPInstanceUID, name
        if ds.file_meta.TransferSyntaxUID != src.file_meta.TransferSyntaxUID:
            assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1", name
            assert ds.pixel_array.shape == src.pixel_array.shape, name
    for name, entry in outcomes.items():
        if entry["outcome"] == "quarantined":
            assert entry["reason"] == "burned_in" and entry.get("detail"), entry


@pytest.fixture(scope="module")
def ultrasounds(tmp_path_factory):
    """deid-data's single-frame ultrasounds (their cines are the bench's)."""
    import deid_data
    folder = Path(deid_data.__file__).parent / "data" / "ultrasounds"
    files = [folder / n for n in ("GREYSCALE_IMAGE.dcm", "RGB_IMAGE.dcm")]
    assert all(f.is_file() for f in files), "deid-data has no ultrasounds"
    out = tmp_path_factory.mktemp("ultrasounds")
    for f in files:
        shutil.copy(f, out / f.name)
    return out


@pytest.fixture(scope="module")
def ultrasounds_redacted(ultrasounds, session_key):
    out = ultrasounds.parent / "ultrasounds-out"
    code, report = run_deid(ultrasounds, out, "--key-file", session_key,
                            "--option", "clean-pixel-data", "--jobs", 2)
    assert code == 0, report["quarantined_by_reason"]
    return out


def test_deid_data_ultrasound_banners_are_unreadable_after(ultrasounds, ultrasounds_redacted,
                                                           tmp_path):
    tesseract = shutil.which("tesseract")
    if tesseract is None:
        pytest.skip("tesseract not installed (apt-get install tesseract-ocr tesseract-ocr-eng)")
    for src in sorted(ultrasounds.glob("*.dcm")):
        out = ultrasounds_redacted / src.name
        before, after = ocr_words(tesseract, src, tmp_path), ocr_words(tesseract, out, tmp_path)
        header = pydicom.dcmread(src, stop_before_pixels=True)
        ident = {w.upper() for v in (header.get("PatientName"), header.get("PatientID"))
                 if v for w in str(v).replace("^", " ").split() if len(w) >= 3}
        assert not (ident & after), f"{src.name}: identity still readable"
        numbers = {w for w in before if sum(c.isdigit() for c in w) >= 6}
        assert numbers, f"{src.name}: no long number read before: the check proves nothing"
        assert not (numbers & after), f"{src.name}: {len(numbers & after)} long numbers left"
        # what may remain is imaging vocabulary inside the image region
        # (`L12-5`, `16cm`): no word of five letters or more
        words = {w for w in after if sum(c.isalpha() for c in w) >= 5}
        assert not words, f"{src.name}: {len(words)} words of 5+ letters still readable"
        print(f"{src.name}: {len(before)} words read before, {len(after)} after")


def test_redacted_ultrasounds_have_no_new_dciodvfy_error(ultrasounds, ultrasounds_redacted):
    from test_dciodvfy import DCIODVFY, error_lines
    if not DCIODVFY.is_file():
        pytest.skip("dciodvfy not installed (apt-get install dicom3tools)")
    for src in sorted(ultrasounds.glob("*.dcm")):
        before = set(error_lines(src))
        new = [line for line in error_lines(ultrasounds_redacted / src.name) if line not in before]
        assert not new, f"{src.name}: {new}"


def test_scan_pixels_reports_burned_in_text_masked(ultrasounds, tmp_path):
    out = tmp_path / "scan.json"
    proc = obscura("scan", "--pixels", ultrasounds, "--json", out, "--jobs", 2)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    report = json.loads(out.read_text())
    for entry in report["files"]:
        text = [f for f in entry["findings"] if f["detector"] == "burned-in-text"]
        assert text, f"{entry['path']}: no burned-in text found"
        assert all(f["path"] == "7FE0,0010" and "*" in f["value"] for f in text), text[:3]
    plain = tmp_path / "plain.json"
    obscura("scan", ultrasounds, "--json", plain, "--jobs", 2)
    findings = [f for e in json.loads(plain.read_text())["files"] for f in e["findings"]]
    assert not [f for f in findings if f["detector"] == "burned-in-text"], "read without --pixels"


def ocr_words(tesseract, path, tmp):
    """Upper-case words the Tesseract CLI reads in frame 1."""
    png = tmp / f"{path.stem}-{path.parent.name}.png"
    return {w.strip(".,:;").upper() for w, _ in ocr_first_frame(tesseract, path, png)
            if w.strip(".,:;")}


def test_32_bit_pixel_data_is_read_not_quarantined(tmp_path, session_key):
    # RT dose grids (32 bits allocated): the devset's two, which were
    # quarantined as undecodable, and pydicom's multi-frame and RLE ones
    from pydicom.data import get_testdata_file
    src = tmp_path / "in"
    src.mkdir()
    devset = HERE / "devset" / "data" / "data"
    for p in [devset / "IM5230957F.dcm", devset / "IMF5F4505C.dcm",
              Path(get_testdata_file("rtdose.dcm")), Path(get_testdata_file("rtdose_rle.dcm"))]:
        assert pydicom.dcmread(p, stop_before_pixels=True).BitsAllocated == 32
        shutil.copy(p, src / p.name)
    code, report = run_deid(src, tmp_path / "out", "--key-file", session_key,
                            "--option", "clean-pixel-data")
    assert code == 0, report["files"]
    assert all(f["outcome"] == "written" for f in report["files"]), report["files"]
    scan = tmp_path / "scan.json"
    obscura("scan", "--pixels", src, "--json", scan)
    findings = [f for e in json.loads(scan.read_text())["files"] for f in e["findings"]]
    assert not [f for f in findings if f["detector"] == "pixels-unreadable"], findings


# deid-data's 30-frame colour echo (RGB, 600 x 800), three times: with the
# patient's name (the header's) burned into every frame in yellow on the
# black ground beside the sector, and over the beating heart; and a name the
# header does not hold over the heart, its yellow dimmed frame after frame
# (as the labelled set draws its cine texts), so that its strokes keep their
# level between no two frames beside each other, as the heart's do not: a
# name OCR reads surely is text all the same
YELLOWS = [(255, 255, 0), (190, 190, 0), (140, 140, 0)]
ECHO_TEXTS = {
    "ground": ((110, 100), "OKAFOR AMARA", YELLOWS[:1]),
    "heart": ((240, 340), "OKAFOR AMARA", YELLOWS[:1]),
    "dimming": ((240, 340), "PETROV, HANS", YELLOWS),
}
# share of a frame that may change outside the name on the ground: the
# scanner's own labels inside the region box and a few grains of speckle
# that stayed put between two frames (about 5 %, in every frame); the
# speckle that the cheap pass takes for text, redacted as it was found
# frame after frame, took 35-37 %
ECHO_CHANGED_CEILING = 0.08


@pytest.fixture(scope="module")
def echo_cines(tmp_path_factory, session_key):
    """{place: (frames before, frames after, the name's box, its colours)}."""
    from PIL import Image, ImageDraw, ImageFont
    import deid_data
    try:
        font = ImageFont.truetype(make_set.fonts()[0], 20)
    except SystemExit:
        pytest.skip(f"fonts not installed ({make_set.FONTS_INSTALL})")
    src = Path(deid_data.__file__).parent / "data" / "ultrasounds" / "ultrasound-multiframe.dcm"
    root = tmp_path_factory.mktemp("echo")
    (root / "in").mkdir()
    cines = {}
    for place, ((x, y), text, colours) in ECHO_TEXTS.items():
        left, top, right, bottom = font.getbbox(text)
        ds = pydicom.dcmread(src)
        frames = ds.pixel_array.copy()
        ds.PatientName = "OKAFOR^AMARA"
        for i, frame in enumerate(frames):
            image = Image.fromarray(frame)
            ImageDraw.Draw(image).text((x - left, y - top), text, font=font,
                                       fill=colours[i % len(colours)])
            frames[i] = np.asarray(image)
        ds.PixelData = frames.tobytes()
        ds.PlanarConfiguration = 0
        ds.save_as(root / "in" / f"{place}.dcm")
        cines[place] = (frames, (x, y, x + right - left, y + bottom - top), colours)
    code, report = run_deid(root / "in", root / "out", "--key-file", session_key,
                            "--option", "clean-pixel-data", "--jobs", 2)
    assert code == 0, report["files"]
    return {place: (frames, pydicom.dcmread(root / "out" / f"{place}.dcm").pixel_array, box,
                    colours)
            for place, (frames, box, colours) in cines.items()}


def test_echo_cine_name_goes_from_every_frame_on_ground_and_over_the_heart(echo_cines):
    for place, (before, after, (x0, y0, x1, y1), colours) in echo_cines.items():
        assert after.shape == before.shape, place
        for n in range(len(before)):
            was = before[n, y0:y1, x0:x1].astype(int)
            now = after[n, y0:y1, x0:x1].astype(int)
            colour = np.array(colours[n % len(colours)])
            # the name's ink, nowhere in its box after
            ink = (was == colour).all(axis=-1)
            assert ink.sum() > 50, place
            left = ink & (np.abs(now - colour).max(axis=-1) < 40)
            assert not left.any(), f"the name {place} is still there in frame {n}"


def test_echo_cine_keeps_its_moving_anatomy(echo_cines):
    before, after, (x0, y0, x1, y1), _ = echo_cines["ground"]
    outside = np.ones(before.shape[1:3], bool)
    outside[y0 - 3:y1 + 3, x0 - 3:x1 + 3] = False
    changed = [float(((b != a).any(axis=-1) & outside).sum() / outside.sum())
               for b, a in zip(before, after)]
    print(f"changed outside the name: median {np.median(changed):.1%}, max {max(changed):.1%}")
    assert max(changed) <= ECHO_CHANGED_CEILING, changed


# 1 bit allocated (bit-packed samples, frames one after another bit by bit):
# pydicom's two segmentations hold no text and go out as they came in; a
# 1-bit image with the patient's name burned into every frame goes out
# redacted, still 1-bit and packed as the standard says


def test_one_bit_segmentations_are_written_unchanged(tmp_path, session_key):
    from pydicom.data import get_testdata_file
    from test_dciodvfy import DCIODVFY, error_lines
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    # explicit little and big endian, 3 frames and 1
    names = ("liver.dcm", "liver_expb.dcm", "liver_1frame.dcm", "liver_expb_1frame.dcm")
    for name in names:
        shutil.copy(get_testdata_file(name), src / name)
    code, report = run_deid(src, out, "--key-file", session_key, "--option", "clean-pixel-data")
    assert code == 0, report["files"]
    assert [f["outcome"] for f in report["files"]] == ["written"] * 4, report["files"]
    for name in names:
        before, after = pydicom.dcmread(src / name), pydicom.dcmread(out / name)
        assert after.BitsAllocated == 1 and after.BurnedInAnnotation == "NO", name
        assert np.array_equal(after.pixel_array, before.pixel_array), name
        if DCIODVFY.is_file():
            new = [e for e in error_lines(out / name) if e not in set(error_lines(src / name))]
            assert not new, f"{name}: {new}"


def one_bit_with_name(path, rows, cols, frames=3):
    """A 1-bit MONOCHROME2 image of `frames` frames: the patient's name
    (the header's) in its top 25 rows of every frame, and below them a disc
    that moves from frame to frame; returns the frames' bits."""
    from PIL import Image, ImageDraw, ImageFont
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.pixels import pack_bits
    font = ImageFont.truetype(make_set.fonts()[0], 14)
    bits = np.zeros((frames, rows, cols), np.uint8)
    for f in range(frames):
        img = Image.new("1", (cols, rows), 0)
        draw = ImageDraw.Draw(img)
        draw.ellipse((cols // 2 - 20 + 4 * f, rows // 2, cols // 2 + 25 + 4 * f, rows - 8), fill=1)
        draw.text((6, 5), "OKAFOR AMARA", font=font, fill=1)
        bits[f] = np.asarray(img, dtype=np.uint8)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"   # Secondary Capture
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.Modality = "OKAFOR^AMARA", "MRN-20931", "OT"
    ds.StudyInstanceUID = pydicom.uid.generate_uid()
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
    ds.PixelData = pack_bits(bits)
    ds.save_as(path, enforce_file_format=True)
    return bits


def test_one_bit_text_is_redacted_and_written_back_packed(tmp_path, session_key):
    try:
        make_set.fonts()
    except SystemExit:
        pytest.skip(f"fonts not installed ({make_set.FONTS_INSTALL})")
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    # frames of 4,087 and 19,691 samples: frames 1 and 2 start inside a byte
    sizes = {"small.dcm": (61, 67), "wide.dcm": (97, 203)}
    bits = {name: one_bit_with_name(src / name, *size) for name, size in sizes.items()}
    code, report = run_deid(src, out, "--key-file", session_key, "--option", "clean-pixel-data")
    assert code == 0, report["files"]
    assert [f["outcome"] for f in report["files"]] == ["written"] * 2, report["files"]
    for name, (rows, cols) in sizes.items():
        ds = pydicom.dcmread(out / name)
        assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (1, 1, 0), name
        assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.NumberOfFrames == 3, name
        # all frames' bits one after another, padded to an even length
        assert ds["PixelData"].VR == "OB", name
        assert len(ds.PixelData) == -(-3 * rows * cols // 8) + (-(-3 * rows * cols // 8) % 2), name
        got, before = ds.pixel_array, bits[name]
        assert got.shape == (3, rows, cols), name
        assert ds.PixelData == pydicom.pixels.pack_bits(got), f"{name}: padding bits not 0"
        # the name is blacked out in every frame; the moving disc below it
        # is bit for bit what it was
        assert all(before[f, :25].sum() > 50 for f in range(3)), "no text drawn"
        assert not got[:, :25].any(), f"{name}: text left"
        assert np.array_equal(got[:, 25:], before[:, 25:]), f"{name}: changed below the text"

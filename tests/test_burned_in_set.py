"""The labelled burned-in set and its scorer (tests/burned_in/) tell
redacted text from readable text: an untouched copy scores 0 % recall, a
redactor that blacks out exactly the identifying boxes scores 100 % recall
and precision with nothing changed elsewhere, and one that only dims the
text does not pass."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "burned_in"))
import make_set  # noqa: E402
import score  # noqa: E402


@pytest.fixture(scope="module")
def burned_in_set(tmp_path_factory):
    if not _fonts_installed():
        pytest.skip(f"fonts not installed ({make_set.FONTS_INSTALL})")
    out = tmp_path_factory.mktemp("burned-in")
    subprocess.run([sys.executable, str(HERE / "burned_in" / "make_set.py"), str(out),
                    "--count", "36", "--seed", "7"], check=True, capture_output=True)
    return out


def _fonts_installed():
    try:
        make_set.fonts()
        return True
    except SystemExit:
        return False


def rewrite(set_dir, out_dir, change):
    """Writes every image of the set to out_dir with change(frames, text) applied
    to each text, native (uncompressed)."""
    key = json.loads((set_dir / "answer_key.json").read_text())
    out_dir.mkdir()
    for name, image in key["images"].items():
        ds = pydicom.dcmread(set_dir / name)
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            ds.decompress()
        frames = ds.pixel_array.copy()
        if int(ds.get("NumberOfFrames", 1) or 1) == 1:
            frames = frames[np.newaxis]
        for text in image["texts"]:
            change(frames, text)
        ds.PixelData = frames.tobytes()
        ds.save_as(out_dir / name)
    return key


def scored(set_dir, out_dir):
    return score.summary(*score.score(set_dir, out_dir))


def test_the_set_is_varied_and_labelled(burned_in_set):
    key = json.loads((burned_in_set / "answer_key.json").read_text())
    images = key["images"]
    assert len(images) == 36
    texts = [t for image in images.values() for t in image["texts"]]
    assert all(8 <= t["size"] <= 24 for t in texts)
    assert any(t["matches_header"] for t in texts)
    assert any(t["identifying"] and not t["matches_header"] for t in texts)
    assert any(not t["identifying"] for t in texts)
    assert any(not image["texts"] for image in images.values())
    assert len({image["modality"] for image in images.values()}) >= 4
    assert len({t["font"] for t in texts}) >= 4
    # a text that matches the header shows the header's value
    for name, image in images.items():
        ds = pydicom.dcmread(burned_in_set / name, stop_before_pixels=True)
        for t in image["texts"]:
            if t["matches_header"] == "PatientID":
                assert str(ds.PatientID) in t["text"]


def test_an_untouched_copy_leaks_everything(burned_in_set, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(burned_in_set, out)
    result = scored(burned_in_set, out)
    assert result["recall_identifying"] == 0.0
    assert result["quarantined"] == 0


def test_blacking_out_the_identifying_boxes_is_perfect(burned_in_set, tmp_path):
    def black_box(frames, text):
        if text["identifying"]:
            x0, y0, x1, y1 = text["box"]
            frames[:, y0:y1, x0:x1] = 0

    out = tmp_path / "oracle"
    rewrite(burned_in_set, out, black_box)
    result = scored(burned_in_set, out)
    assert result["recall_identifying"] == 1.0
    assert result["recall_matching_header"] == 1.0
    assert result["precision"] == 1.0
    assert result["changed_outside_boxes_max"] == 0.0


def test_dimmed_text_is_still_readable_and_quarantine_is_counted(burned_in_set, tmp_path):
    def dim(frames, text):
        x0, y0, x1, y1 = text["box"]
        frames[:, y0:y1, x0:x1] = frames[:, y0:y1, x0:x1] // 2

    out = tmp_path / "dimmed"
    key = rewrite(burned_in_set, out, dim)
    first = sorted(key["images"])[0]
    (out / first).unlink()
    result = scored(burned_in_set, out)
    assert result["recall_identifying"] < 0.1
    assert result["quarantined_images"] == [first]

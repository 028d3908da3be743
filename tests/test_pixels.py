"""obscura-pixels against pydicom: every transfer syntax and photometric
interpretation it decodes, on pydicom's own test files.

Decoded samples are compared with pydicom's ``pixel_array`` (pylibjpeg,
openjpeg, rle and pyjpegls decode what numpy cannot): exactly for lossless
syntaxes, within a small tolerance for lossy JPEG (decoders round the IDCT
differently). Rendered PNGs are compared with an independent numpy
implementation of PS3.3 C.11 windowing over pydicom's arrays. The crate's
example ``decode`` (crates/obscura-pixels/examples/decode.rs) is the
harness: it writes the frame's values, or its PNG.
"""
import io
import json
import subprocess

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_color_lut, pixel_array

from conftest import REPO, TARGET

DECODE = TARGET / "release" / "examples" / "decode"

# (file, frame): lossless, decoded samples must equal pydicom's
LOSSLESS = [
    # native little endian: 8/16-bit, signed, BitsStored < BitsAllocated
    ("CT_small.dcm", 0),                  # MONOCHROME2 16-bit signed
    ("MR_small_implicit.dcm", 0),         # implicit VR
    ("mlut_18.dcm", 0),                   # 12 of 16 bits, signed
    ("693_UNCR.dcm", 0),                  # 14 of 16 bits, signed
    ("RG1_UNCR.dcm", 0),                  # MONOCHROME1, 15 of 16 bits
    ("vlut_04.dcm", 0),                   # 8-bit grey
    ("emri_small.dcm", 7),                # multi-frame: a frame in the middle
    ("SC_rgb.dcm", 0),                    # RGB 8-bit
    ("SC_rgb_16bit_2frame.dcm", 1),       # RGB 16-bit, second frame
    ("color-pl.dcm", 0),                  # RGB planar configuration 1
    ("SC_ybr_full_uncompressed.dcm", 0),  # YBR_FULL
    ("SC_ybr_full_422_uncompressed.dcm", 0),  # YBR_FULL_422
    ("OBXXXX1A.dcm", 0),                  # PALETTE COLOR
    ("OBXXXX1A_2frame.dcm", 1),
    ("gdcm-US-ALOKA-16.dcm", 0),          # PALETTE COLOR, 16-bit, segmented tables
    ("image_dfl.dcm", 0),                 # deflated
    # explicit VR big endian
    ("MR_small_bigendian.dcm", 0),
    ("emri_small_big_endian.dcm", 3),
    ("SC_rgb_expb_16bit.dcm", 0),
    ("SC_rgb_small_odd_big_endian.dcm", 0),   # 8-bit in swapped OW words, odd size
    ("OBXXXX1A_expb_2frame.dcm", 1),
    ("gdcm-US-ALOKA-16_big.dcm", 0),
    # 1 bit allocated: segmentations, bit-packed (frames of 512 x 512: each
    # starts at a byte; frames that start inside one are generated below)
    ("liver.dcm", 0),
    ("liver.dcm", 2),
    ("liver_1frame.dcm", 0),
    ("liver_expb.dcm", 1),                # explicit big endian, OB
    ("liver_expb_1frame.dcm", 0),
    # 32 bits allocated: RT dose grids, 32-bit RGB
    ("rtdose.dcm", 5),
    ("rtdose_1frame.dcm", 0),
    ("rtdose_expb.dcm", 14),
    ("SC_rgb_32bit_2frame.dcm", 1),
    ("SC_rgb_expb_32bit.dcm", 0),
    # RLE
    ("MR_small_RLE.dcm", 0),
    ("emri_small_RLE.dcm", 9),
    ("SC_rgb_rle_16bit_2frame.dcm", 1),
    ("rtdose_rle.dcm", 7),                # 32-bit
    ("SC_rgb_rle_32bit_2frame.dcm", 1),
    ("OBXXXX1A_rle.dcm", 0),
    # JPEG lossless
    ("JPEG-LL.dcm", 0),
    ("JPGLosslessP14SV1_1s_1f_8b.dcm", 0),
    ("SC_rgb_jpeg_gdcm.dcm", 0),
    # JPEG-LS (lossless and near-lossless: both decoders are exact)
    ("MR_small_jpeg_ls_lossless.dcm", 0),
    ("emri_small_jpeg_ls_lossless.dcm", 4),
    ("JPEGLSNearLossless_16.dcm", 0),
    ("SC_rgb_jls_lossy_line.dcm", 0),
    # JPEG 2000 (reversible and irreversible: both decoders are exact)
    ("MR_small_jp2klossless.dcm", 0),
    ("emri_small_jpeg_2k_lossless.dcm", 2),
    ("RG1_J2KR.dcm", 0),
    ("US1_J2KR.dcm", 0),                  # YBR_RCT -> RGB
    ("US1_J2KI.dcm", 0),                  # YBR_ICT -> RGB
    ("693_J2KI.dcm", 0),
    ("SC_rgb_gdcm_KY.dcm", 0),
    ("RG3_J2KR.dcm", 0),                  # MONOCHROME1, 1760 x 1760
    ("RG1_J2KI.dcm", 0),
    ("RG3_J2KI.dcm", 0),
    ("MR2_J2KI.dcm", 0),
    ("JPEG2000.dcm", 0),                  # 1024 x 256 NM
    ("J2K_pixelrep_mismatch.dcm", 0),     # signedness differs from the stream
    ("GDCMJ2K_TextGBR.dcm", 0),           # YBR_RCT, coloured text
]

# lossy JPEG: within a few levels of pydicom's decoder
LOSSY = [
    ("SC_rgb_jpeg_dcmtk.dcm", 0),         # YBR_FULL
    ("SC_rgb_dcmtk_+eb+cy+np.dcm", 0),    # YBR_FULL_422
    ("SC_jpeg_no_color_transform.dcm", 0),  # RGB without a colour transform
    ("SC_rgb_jpeg_app14_dcmd.dcm", 0),    # RGB with Adobe APP14
    ("examples_ybr_color.dcm", 12),       # multi-frame YBR_FULL_422
]

# native syntaxes whose YBR pydicom must be asked to keep (as_rgb=False)
NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99",
          "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.5"}


@pytest.fixture(scope="module")
def decode_bin():
    proc = subprocess.run(
        ["cargo", "build", "--release", "-p", "obscura-pixels", "--example", "decode"],
        cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return DECODE


def decoded(binary, path, frame):
    proc = subprocess.run([binary, path, str(frame)], capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    nl = proc.stdout.index(b"\n")
    head = json.loads(proc.stdout[:nl])
    values = np.frombuffer(proc.stdout[nl + 1:], dtype="<i8")
    return head, values


def expected(path, frame):
    ds = pydicom.dcmread(path)
    native = str(ds.file_meta.TransferSyntaxUID) in NATIVE
    # pydicom converts YBR to RGB unless asked; Obscura keeps stored samples
    # (JPEG's colour is converted by both)
    if ds.file_meta.TransferSyntaxUID == pydicom.uid.DeflatedExplicitVRLittleEndian:
        # pixel_array(path) cannot read a deflated file; the dataset's can
        return ds, ds.pixel_array
    arr = pixel_array(path, index=frame, as_rgb=not native)
    return ds, arr


def compare(binary, name, frame):
    path = get_testdata_file(name)
    head, got = decoded(binary, path, frame)
    ds, arr = expected(path, frame)
    assert (head["width"], head["height"]) == (ds.Columns, ds.Rows)
    assert head["frames"] == int(ds.get("NumberOfFrames", 1) or 1)
    assert got.size == arr.size, (got.size, arr.shape)
    return np.abs(got.astype(np.int64) - arr.reshape(-1).astype(np.int64))


@pytest.mark.parametrize("name,frame", LOSSLESS)
def test_lossless_equals_pydicom(decode_bin, name, frame):
    diff = compare(decode_bin, name, frame)
    assert diff.max() == 0, f"{diff.max()} max, {np.count_nonzero(diff)} samples differ"


@pytest.mark.parametrize("name,frame", LOSSY)
def test_lossy_jpeg_close_to_pydicom(decode_bin, name, frame):
    diff = compare(decode_bin, name, frame)
    assert diff.max() <= 4 and diff.mean() < 0.2, (diff.max(), diff.mean())


def one_bit_file(path, syntax, vr, rows=61, cols=67, frames=3):
    """A 1-bit MONOCHROME2 object of random bits written by pydicom (its
    pack_bits: frames one after another bit by bit); returns the bits."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.pixels import pack_bits
    bits = (np.random.default_rng(14).random((frames, rows, cols)) < 0.3).astype(np.uint8)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
    ds.PixelData = pack_bits(bits)
    ds["PixelData"].VR = vr
    ds.save_as(path, enforce_file_format=True)
    return bits


@pytest.mark.parametrize("syntax,vr", [
    (pydicom.uid.ExplicitVRLittleEndian, "OB"),
    (pydicom.uid.ImplicitVRLittleEndian, "OW"),
    (pydicom.uid.ExplicitVRBigEndian, "OB"),
    (pydicom.uid.ExplicitVRBigEndian, "OW"),    # bytes as they are, as pydicom reads them
])
def test_one_bit_frames_that_start_inside_a_byte_equal_pydicom(decode_bin, tmp_path, syntax, vr):
    # 61 x 67 = 4,087 samples a frame: frame 1 starts at bit 7 of a byte,
    # frame 2 at bit 6; the value is 1,533 bytes, padded to 1,534
    path = tmp_path / "one_bit.dcm"
    bits = one_bit_file(path, syntax, vr)
    ds = pydicom.dcmread(path)
    assert ds["PixelData"].VR == vr and len(ds.PixelData) == 1534
    want = ds.pixel_array
    assert np.array_equal(want, bits), "pydicom reads back what it packed"
    for frame in range(3):
        head, got = decoded(decode_bin, path, frame)
        assert (head["width"], head["height"], head["frames"]) == (67, 61, 3)
        assert np.array_equal(got, want[frame].reshape(-1)), f"frame {frame}"


def png(binary, name, frame=0, window=None, tmp_path=None):
    out = tmp_path / f"{name}.{frame}.png"
    args = [binary, get_testdata_file(name), str(frame), "--png", str(out)]
    if window:
        args.append(window)
    proc = subprocess.run(args, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return np.asarray(Image.open(io.BytesIO(out.read_bytes())))


def voi(x, c, w, function):
    """PS3.3 C.11.2.1.2, to 0..255 (written from the standard, not the crate)."""
    if function == "SIGMOID":
        y = 255.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
    elif function == "LINEAR_EXACT":
        y = np.where(x <= c - w / 2, 0.0,
                     np.where(x > c + w / 2, 255.0, ((x - c) / w + 0.5) * 255.0))
    else:
        y = np.where(x <= c - 0.5 - (w - 1) / 2, 0.0,
                     np.where(x > c - 0.5 + (w - 1) / 2, 255.0,
                              ((x - (c - 0.5)) / (w - 1) + 0.5) * 255.0))
    return np.clip(np.round(y), 0, 255)


def modality(ds, arr):
    return arr.astype(np.float64) * float(ds.get("RescaleSlope", 1) or 1) + float(
        ds.get("RescaleIntercept", 0) or 0)


def windowed(ds, arr, window=None):
    """The expected 8-bit grey levels of `arr`: the query's window, else the
    header's first, else the frame's range; MONOCHROME1 inverted."""
    x = modality(ds, arr)
    if window:
        p = window.split(",")
        c, w, f = float(p[0]), float(p[1]), (p[2].upper() if len(p) > 2 else "LINEAR")
    elif "WindowCenter" in ds:
        first = lambda v: float(v[0] if isinstance(v, pydicom.multival.MultiValue) else v)
        c, w = first(ds.WindowCenter), first(ds.WindowWidth)
        f = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
    else:
        c, w, f = (x.min() + x.max()) / 2, x.max() - x.min(), "LINEAR_EXACT"
    y = voi(x, c, w, f)
    return 255 - y if ds.PhotometricInterpretation == "MONOCHROME1" else y


@pytest.mark.parametrize("name,window", [
    ("CT_small.dcm", None),             # the header's first window
    ("CT_small.dcm", "40,400"),         # a query window, linear
    ("CT_small.dcm", "40,400,sigmoid"),
    ("MR_small.dcm", "600,1200,linear_exact"),
    ("JPEG-LL.dcm", None),              # no window: the frame's range
    ("RG1_UNCR.dcm", None),             # MONOCHROME1: inverted
])
def test_rendered_grey_follows_ps3_3(decode_bin, tmp_path, name, window):
    got = png(decode_bin, name, window=window, tmp_path=tmp_path).astype(np.int64)
    ds = pydicom.dcmread(get_testdata_file(name))
    want = windowed(ds, ds.pixel_array, window)
    assert got.shape == want.shape
    diff = np.abs(got - want)
    # rounding at exact .5 boundaries may differ by one level
    assert diff.max() <= 1 and np.count_nonzero(diff) < diff.size // 100, diff.max()
    assert got.std() > 10, "the image is not flat"


def test_rendered_palette_and_ybr(decode_bin, tmp_path):
    # palette colour through the LUTs (plain, and segmented: C.7.9.2), as
    # pydicom's apply_color_lut
    for name in ("OBXXXX1A.dcm", "gdcm-US-ALOKA-16.dcm", "gdcm-US-ALOKA-16_big.dcm"):
        ds = pydicom.dcmread(get_testdata_file(name))
        lut = apply_color_lut(ds.pixel_array, ds)
        want = (lut >> 8) if lut.dtype == np.uint16 else lut
        got = png(decode_bin, name, tmp_path=tmp_path)
        assert np.array_equal(got, want.astype(np.uint8)), name
    # native YBR_FULL rendered as RGB, as pydicom converts it
    for name in ("SC_ybr_full_uncompressed.dcm", "SC_ybr_full_422_uncompressed.dcm"):
        rgb = pydicom.dcmread(get_testdata_file(name)).pixel_array.astype(np.int64)
        got = png(decode_bin, name, tmp_path=tmp_path).astype(np.int64)
        assert np.abs(got - rgb).max() <= 1, name


def test_one_bit_renders_1_white_and_0_black(decode_bin, tmp_path):
    for name in ("liver.dcm", "liver_expb.dcm"):
        want = pydicom.dcmread(get_testdata_file(name)).pixel_array[1].astype(np.int64) * 255
        got = png(decode_bin, name, frame=1, tmp_path=tmp_path).astype(np.int64)
        assert np.array_equal(got, want), name


def test_bad_pixel_data_is_an_error_not_a_panic(decode_bin, tmp_path):
    # garbage in a JPEG or RLE frame, a native value cut short, an
    # unsupported codec feature: each a clear error with a reason code, exit
    # 1 (a panic would be 101). (A JPEG stream cut short decodes, padded, as
    # libjpeg does.)
    ds = pydicom.dcmread(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"))
    garbage = tmp_path / "garbage_jpeg.dcm"
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8\xff\xc0" + bytes(range(256)) * 4])
    ds.save_as(garbage)
    rle = pydicom.dcmread(get_testdata_file("SC_rgb_rle.dcm"))
    rle.PixelData = pydicom.encaps.encapsulate([b"\x03\x00"])
    bad_rle = tmp_path / "bad_rle.dcm"
    rle.save_as(bad_rle)
    # 1-bit pixel data a byte short of its frames' bits; and encapsulated
    liver = pydicom.dcmread(get_testdata_file("liver.dcm"))
    liver.PixelData = liver.PixelData[:-2]
    short_bits = tmp_path / "short_bits.dcm"
    liver.save_as(short_bits)
    liver.PixelData = pydicom.encaps.encapsulate([b"\x00\x01"] * 3)
    liver.file_meta.TransferSyntaxUID = pydicom.uid.RLELossless
    encapsulated_bits = tmp_path / "encapsulated_bits.dcm"
    liver.save_as(encapsulated_bits)
    cases = [
        (garbage, "undecodable-pixel-data"),
        (bad_rle, "undecodable-pixel-data"),
        (get_testdata_file("JPGExtended.dcm"), "undecodable-pixel-data"),  # 12-bit
        (get_testdata_file("MR_truncated.dcm"), "unreadable"),
        (short_bits, "malformed-pixel-data"),
        (encapsulated_bits, "unsupported-pixel-data"),
        (get_testdata_file("emri_small.dcm"), "no-such-frame"),
    ]
    for path, code in cases:
        frame = "10" if "emri" in str(path) else "0"
        proc = subprocess.run([decode_bin, str(path), frame], capture_output=True)
        err = proc.stderr.decode(errors="replace")
        assert proc.returncode == 1, (path, proc.returncode, err[-500:])
        assert f"({code})" in err, (path, err[-500:])

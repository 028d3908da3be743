"""Rendered images and thumbnails of `obscura serve`'s archive (WADO-RS
rendered resources, PS3.18 9.5), through PyPI's dicomweb-client where it
has the call (retrieve_instance_rendered, retrieve_instance_frames_rendered)
and plain requests for thumbnails: pydicom's test files stored by STOW,
rendered as PNG and JPEG and compared with pydicom's arrays windowed by an
independent numpy implementation of PS3.3 C.11; tenants kept apart; pixel
data that cannot be decoded answered with a reason, never a crash."""
import io
from io import BytesIO

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_color_lut

from test_pixels import windowed
from test_web import Archive, encoded, stow_raw

# file -> (what it covers)
FILES = [
    "CT_small.dcm",                        # native, signed, header window
    "MR_small_RLE.dcm",                    # RLE
    "emri_small_jpeg_ls_lossless.dcm",     # JPEG-LS, 10 frames
    "US1_J2KR.dcm",                        # JPEG 2000, YBR_RCT
    "OBXXXX1A.dcm",                        # palette colour
    "JPEG-LL.dcm",                         # JPEG lossless, no window
    "SC_rgb_jpeg_dcmtk.dcm",               # JPEG baseline YBR
]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    a = Archive(tmp_path_factory.mktemp("web-rendered"))
    client = a.client("site-a")
    stow_raw(client, [encoded(pydicom.dcmread(get_testdata_file(f))) for f in FILES])
    yield a
    a.gw.stop()


def uids(name):
    ds = pydicom.dcmread(get_testdata_file(name))
    return ds, (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)


def image(data):
    return np.asarray(Image.open(io.BytesIO(data))).astype(np.int64)


def test_instance_rendered_png_and_jpeg(archive):
    client = archive.client("site-a")
    ds, (st, se, so) = uids("CT_small.dcm")
    want = windowed(ds, ds.pixel_array)
    png = client.retrieve_instance_rendered(st, se, so, media_types=("image/png",))
    assert png.startswith(b"\x89PNG")
    got = image(png)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1
    # the default is JPEG, close to the same pixels
    jpeg = client.retrieve_instance_rendered(st, se, so)
    assert jpeg.startswith(b"\xff\xd8")
    assert np.abs(image(jpeg) - want).mean() < 3
    # a query window and a lower quality
    w = "40,400,sigmoid"
    got = image(client.retrieve_instance_rendered(st, se, so, media_types=("image/png",),
                                                  params={"window": w}))
    assert np.abs(got - windowed(ds, ds.pixel_array, w)).max() <= 1
    small = client.retrieve_instance_rendered(st, se, so, params={"quality": "10"})
    assert len(small) < len(jpeg)


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "JPEG-LL.dcm"])
def test_codecs_rendered_as_pydicom_windows_them(archive, name):
    client = archive.client("site-a")
    ds, (st, se, so) = uids(name)
    got = image(client.retrieve_instance_rendered(st, se, so, media_types=("image/png",)))
    assert np.abs(got - windowed(ds, ds.pixel_array)).max() <= 1


def test_frames_rendered_one_frame(archive):
    client = archive.client("site-a")
    ds, (st, se, so) = uids("emri_small_jpeg_ls_lossless.dcm")
    w = "600,1600,linear_exact"
    data = client.retrieve_instance_frames_rendered(st, se, so, [5, 6], media_types=("image/png",),
                                                    params={"window": w})
    # the first frame of the list, as one image
    got = image(data)
    assert np.abs(got - windowed(ds, ds.pixel_array[4], w)).max() <= 1
    assert not np.array_equal(got, image(client.retrieve_instance_frames_rendered(
        st, se, so, [6], media_types=("image/png",), params={"window": w})))


def test_colour_rendered(archive):
    client = archive.client("site-a")
    ds, (st, se, so) = uids("OBXXXX1A.dcm")
    got = image(client.retrieve_instance_rendered(st, se, so, media_types=("image/png",)))
    lut = apply_color_lut(ds.pixel_array, ds)
    assert np.array_equal(got, ((lut >> 8) if lut.dtype == np.uint16 else lut).astype(np.int64))
    for name in ("US1_J2KR.dcm", "SC_rgb_jpeg_dcmtk.dcm"):
        ds, (st, se, so) = uids(name)
        got = image(client.retrieve_instance_rendered(st, se, so, media_types=("image/png",)))
        assert got.shape == ds.pixel_array.shape
        assert np.abs(got - ds.pixel_array.astype(np.int64)).mean() < 1, name


def test_thumbnails(archive):
    s = archive.session(archive.tokens["site-a"])
    ds, (st, se, so) = uids("US1_J2KR.dcm")
    for path in (f"/studies/{st}/thumbnail", f"/studies/{st}/series/{se}/thumbnail",
                 f"/studies/{st}/series/{se}/instances/{so}/thumbnail"):
        r = s.get(archive.url + path)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["Content-Type"] == "image/jpeg"
        img = Image.open(BytesIO(r.content))
        # fits 128 x 128, aspect ratio kept
        assert max(img.size) == 128
        assert abs(img.size[0] / img.size[1] - ds.Columns / ds.Rows) < 0.02
    r = s.get(archive.url + f"/studies/{st}/series/{se}/thumbnail",
              params={"viewport": "64,64"}, headers={"Accept": "image/png"})
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    assert max(Image.open(BytesIO(r.content)).size) == 64
    # as the one part of a multipart answer (dicomweb-client's JavaScript
    # retrieveBulkData, which OHIF's thumbnails go through, asks so)
    for accept, ptype in (('multipart/related; type="image/jpeg"', "image/jpeg"),
                          ('multipart/related; type="application/octet-stream"',
                           "application/octet-stream")):
        r = s.get(archive.url + f"/studies/{st}/series/{se}/thumbnail", headers={"Accept": accept})
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith(f'multipart/related; type="{ptype}"')
        boundary = r.headers["Content-Type"].split('boundary="')[1].rstrip('"')
        part = r.content.split(f"--{boundary}".encode())[1]
        head, body = part.split(b"\r\n\r\n", 1)
        assert b"Content-Type: image/jpeg" in head
        assert max(Image.open(BytesIO(body[:-2])).size) == 128
    # a multi-frame series: its middle (only) instance, frame 1
    _, (st, se, _) = uids("emri_small_jpeg_ls_lossless.dcm")
    r = s.get(archive.url + f"/studies/{st}/series/{se}/thumbnail", headers={"Accept": "*/*"})
    assert r.status_code == 200 and r.content.startswith(b"\xff\xd8")


def test_refusals(archive):
    s = archive.session(archive.tokens["site-a"])
    _, (st, se, so) = uids("CT_small.dcm")
    base = f"{archive.url}/studies/{st}/series/{se}/instances/{so}"
    # other formats: 406
    for accept in ("image/gif", "application/dicom", "text/html"):
        r = s.get(base + "/rendered", headers={"Accept": accept})
        assert r.status_code == 406, (accept, r.status_code)
    # bad parameters: 400
    for params in ({"quality": "0"}, {"viewport": "0,0"}, {"window": "1"},
                   {"viewport": "10,10,0,0,5,5"}):
        assert s.get(base + "/rendered", params=params).status_code == 400, params
    assert s.get(base + "/frames/0/rendered").status_code == 400
    assert s.get(base + "/frames/2/rendered").status_code == 404
    # another tenant sees nothing: 404, as if absent
    other = archive.session(archive.tokens["site-b"])
    for path in ("/rendered", "/thumbnail", "/frames/1/rendered"):
        assert other.get(base + path).status_code == 404, path
    assert other.get(f"{archive.url}/studies/{st}/thumbnail").status_code == 404
    # no token: 401
    assert archive.session().get(base + "/rendered").status_code == 401


def test_undecodable_pixel_data_is_a_reason_not_a_crash(archive):
    client = archive.client("site-a")
    s = archive.session(archive.tokens["site-a"])
    bad = pydicom.dcmread(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"))
    bad.SOPInstanceUID = pydicom.uid.generate_uid()
    bad.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8\xff\xc0" + bytes(range(256)) * 4])
    one_bit = pydicom.dcmread(get_testdata_file("liver.dcm"))   # 1-bit samples, rendered
    # 1-bit samples encapsulated (RLE): valid, not supported
    packed = pydicom.dcmread(get_testdata_file("liver.dcm"))
    packed.SOPInstanceUID = pydicom.uid.generate_uid()
    packed.PixelData = pydicom.encaps.encapsulate([b"\x00\x01"] * 3)
    packed.file_meta.TransferSyntaxUID = pydicom.uid.RLELossless
    dose = pydicom.dcmread(get_testdata_file("rtdose.dcm"))   # 32-bit samples, rendered
    stow_raw(client, [encoded(bad), encoded(one_bit), encoded(packed), encoded(dose)])
    r = s.get(f"{archive.url}/studies/{bad.StudyInstanceUID}/series/{bad.SeriesInstanceUID}"
              f"/instances/{bad.SOPInstanceUID}/rendered")
    assert r.status_code == 422, r.status_code
    assert "(undecodable-pixel-data)" in r.text
    r = s.get(f"{archive.url}/studies/{packed.StudyInstanceUID}/series/{packed.SeriesInstanceUID}"
              f"/instances/{packed.SOPInstanceUID}/rendered")
    assert r.status_code == 501, r.status_code
    assert "(unsupported-pixel-data)" in r.text
    # its frames, compressed bulk data, go out as stored (no decoding)
    r = s.get(f"{archive.url}/studies/{packed.StudyInstanceUID}/series/{packed.SeriesInstanceUID}"
              f"/instances/{packed.SOPInstanceUID}/frames/2")
    assert r.status_code == 200 and 'type="image/dicom-rle"' in r.headers["Content-Type"], r.status_code
    # native 1-bit frames as uncompressed bulk data (501 before): each
    # frame packed on its own (tests/test_web.py has frames starting mid-byte)
    assert client.retrieve_instance_frames(
        one_bit.StudyInstanceUID, one_bit.SeriesInstanceUID, one_bit.SOPInstanceUID, [2]
    ) == [pydicom.pixels.pack_bits(one_bit.pixel_array[1], pad=False)]
    # 1-bit frames render 0 black and 1 white
    png = client.retrieve_instance_frames_rendered(
        one_bit.StudyInstanceUID, one_bit.SeriesInstanceUID, one_bit.SOPInstanceUID, [2],
        media_types=("image/png",))
    assert np.array_equal(image(png), one_bit.pixel_array[1].astype(np.uint8) * 255)
    r = s.get(f"{archive.url}/studies/{dose.StudyInstanceUID}/series/{dose.SeriesInstanceUID}"
              f"/instances/{dose.SOPInstanceUID}/rendered")
    assert r.status_code == 200 and r.content.startswith(b"\xff\xd8"), r.status_code
    # and the server still renders
    _, (st, se, so) = uids("CT_small.dcm")
    assert client.retrieve_instance_rendered(st, se, so).startswith(b"\xff\xd8")


def stored_le(ds, k):
    """Frame `k` of `ds` as Explicit VR Little Endian holds it, on its own,
    from pydicom's array: colour by plane where the object says so, 1-bit
    samples packed from bit 0."""
    frames = ds.pixel_array if int(ds.get("NumberOfFrames", 1) or 1) > 1 else [ds.pixel_array]
    f = frames[k]
    if ds.BitsAllocated == 1:
        return pydicom.pixels.pack_bits(f, pad=False)
    if ds.SamplesPerPixel > 1 and ds.get("PlanarConfiguration", 0) == 1:
        f = f.transpose(2, 0, 1)
    return f.astype(f.dtype.newbyteorder("<")).tobytes()


def test_frames_of_big_endian_and_deflated_pixel_data_are_served_little_endian(archive):
    # native frames in Explicit VR Big Endian and Deflated Explicit VR Little
    # Endian (501 before): decoded, and each served as Explicit VR Little
    # Endian holds it; a deflated RGB image made planar covers colour by plane
    client = archive.client("site-a")
    names = ["MR_small_bigendian.dcm", "SC_rgb_expb_2frame.dcm", "OBXXXX1A_expb.dcm",
             "SC_rgb_expb_16bit_2frame.dcm", "SC_rgb_expb_32bit_2frame.dcm", "liver_expb.dcm",
             "image_dfl.dcm"]
    sets = [pydicom.dcmread(get_testdata_file(n)) for n in names]
    planar = pydicom.dcmread(get_testdata_file("SC_rgb.dcm"))
    planar.PixelData = planar.pixel_array.transpose(2, 0, 1).tobytes()
    planar.PlanarConfiguration = 1
    planar.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    sets.append(planar)
    for ds in sets:
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
    stow_raw(client, [encoded(ds) for ds in sets])
    for ds in sets:
        n = int(ds.get("NumberOfFrames", 1) or 1)
        numbers = [n, 1] if n > 1 else [1]
        got = client.retrieve_instance_frames(
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, numbers)
        assert got == [stored_le(ds, k - 1) for k in numbers], ds.file_meta.TransferSyntaxUID
        assert archive.session(archive.tokens["site-a"]).get(
            f"{archive.url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}/frames/{n + 1}").status_code == 404
    # YBR_FULL_422 decoded repeats its shared chroma: not the stored layout,
    # refused before the answer starts
    ybr = pydicom.dcmread(get_testdata_file("SC_ybr_full_422_uncompressed.dcm"))
    ybr.SOPInstanceUID = pydicom.uid.generate_uid()
    ybr.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    stow_raw(client, [encoded(ybr)])
    r = archive.session(archive.tokens["site-a"]).get(
        f"{archive.url}/studies/{ybr.StudyInstanceUID}/series/{ybr.SeriesInstanceUID}"
        f"/instances/{ybr.SOPInstanceUID}/frames/1")
    assert r.status_code == 501, r.status_code

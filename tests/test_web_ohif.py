"""The prebuilt OHIF viewer (npm `@ohif/app`) opens a study stored in
Obscura, in headless Chromium (tests/ohif_fixtures.py): directly with a
bearer token behind the site's proxy, and through a share link alone. The
viewer waits until the DOM shows the study, screenshots, and checks the
viewport's pixels are not uniform (the image is drawn)."""
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from conftest import obscura
from gateway_fixtures import stow, web_archive
from ohif_fixtures import Viewer, assert_drawn, frames_and_thumbnail, needs_chromium, ohif_dist

pytestmark = needs_chromium


@pytest.fixture
def obscura_plain(tmp_path):
    token, port, gw = web_archive(tmp_path, "viewer", "Site V", web="plain = true\n")
    yield f"http://127.0.0.1:{port}", token, gw
    gw.stop()


def stow_marked(upstream, token, marker):
    """CT_small.dcm as a new study with MARKER as its Study Description,
    stored; the dataset."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.StudyDescription = marker
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    stow(upstream, token, ds)
    return ds


def open_in_ohif(dist, upstream, token, root, study, marker):
    """Serve OHIF with its DICOMweb root at ROOT on the site (proxied to
    UPSTREAM, with TOKEN if any), open STUDY in headless Chromium, and check
    the viewer shows MARKER and draws the image, its frames and the
    thumbnail rendered by the server (obscura-pixels). The site's request log."""
    v = Viewer(dist, upstream, token, root)
    try:
        state, png = v.open(f"/viewer?StudyInstanceUIDs={study}",
                            lambda st, log: st.get("canvases") and marker in st.get("text", "")
                            and frames_and_thumbnail(log), "viewer")
        assert state.get("canvases"), f"no viewport canvas; DOM text: {state.get('text', '')[:1500]}"
        assert marker in state["text"], state["text"][:1500]
        assert any(p[2] == 200 and "/frames/" in p[0] for p in v.site.log), v.site.log
        assert any(p[2] == 200 and "/thumbnail" in p[0] for p in v.site.log), v.site.log
        assert_drawn(state, png, v.artifacts)
        return v.site.log
    finally:
        v.close()


def test_ohif_viewer_opens_a_study_from_obscura(obscura_plain, tmp_path):
    dist = ohif_dist()
    upstream, token, gw = obscura_plain
    ds = stow_marked(upstream, token, "OBSCURA OHIF CHECK")
    open_in_ohif(dist, upstream, token, "/dicom-web", ds.StudyInstanceUID, "OBSCURA OHIF CHECK")


def test_ohif_viewer_opens_a_share_link(obscura_plain, tmp_path):
    """`obscura share` prints a capability URL, the DICOMweb root of one
    study; the viewer is given it as its data source and the site proxies
    it without any credential of its own: the link alone opens the study,
    and every request the viewer made went through the link."""
    dist = ohif_dist()
    upstream, token, gw = obscura_plain
    ds = stow_marked(upstream, token, "OBSCURA SHARE CHECK")
    stow_marked(upstream, token, "ANOTHER STUDY")
    p = obscura("share", ds.StudyInstanceUID, "--tenant", "Site V", "--expires", "1h",
                "--config", gw.config)
    assert p.returncode == 0, p.stderr
    link = p.stdout.strip()
    assert link.startswith(upstream + "/share/g-"), link
    root = link[len(upstream):]
    log = open_in_ohif(dist, upstream, None, root, ds.StudyInstanceUID, "OBSCURA SHARE CHECK")
    assert all(path.startswith(root + "/") for path, _, _ in log), log

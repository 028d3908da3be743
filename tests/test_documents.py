"""Encapsulated documents. An Encapsulated PDF whose BurnedInAnnotation is YES
has no pixels: the flag speaks of the document, which the basic profile
replaces with a blank PDF, so the object is written. A profile that keeps the
document has its text checked: quarantined (identity_remains) when the PDF
names the patient, or when it declares burned-in annotation (identity may then
be in its images, which no text check sees); written otherwise. Never
quarantined as burned-in pixels.

The object is one of pydicom's real files (CT_small.dcm: its patient, study,
series and equipment attributes) made an Encapsulated PDF: pixel attributes
dropped, a real PDF (text in a content stream, fonts, cross-reference table)
in EncapsulatedDocument. Its identity is invented."""
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian

from conftest import read_strict, run_deid

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
PATIENT_NAME = "WHITFIELD^HARRIET^M"
PATIENT_ID = "MRN4471902"
BIRTH_DATE = "19560214"
NAMING_TEXT = "Discharge summary for Harriet M. Whitfield, MRN4471902, born 02/14/1956."
NEUTRAL_TEXT = "Discharge summary. Chest CT without contrast: no acute findings."
KEEP_DOCUMENT = """name = "keep-documents"
base = "basic"

[[override]]
attribute = "EncapsulatedDocument"
action = "keep"
"""


def pdf(text):
    """A one-page PDF 1.4 showing TEXT in Helvetica, with a correct xref table."""
    content = f"BT /F1 11 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def encapsulated_pdf(path, text, burned_in="YES"):
    """CT_small.dcm made an Encapsulated PDF of TEXT, BurnedInAnnotation as given."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for elem in list(ds):
        if elem.tag.group in (0x0028, 0x7FE0) or elem.tag.group == 0x0018:
            del ds[elem.tag]
    for keyword in ("ImageType", "ImagePositionPatient", "ImageOrientationPatient", "SliceLocation",
                    "FrameOfReferenceUID", "PositionReferenceIndicator"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = BIRTH_DATE
    ds.SOPClassUID = ENCAPSULATED_PDF
    ds.Modality = "DOC"
    ds.ConversionType = "WSD"
    ds.InstanceNumber = 1
    ds.ContentDate = ds.get("StudyDate", "")
    ds.ContentTime = ds.get("StudyTime", "")
    ds.AcquisitionDateTime = ""
    ds.BurnedInAnnotation = burned_in
    ds.DocumentTitle = "Discharge summary"
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    document = pdf(text)
    ds.EncapsulatedDocument = document + b"\0" * (len(document) % 2)
    ds.EncapsulatedDocumentLength = len(document)
    ds.file_meta.MediaStorageSOPClassUID = ENCAPSULATED_PDF
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def documents(tmp_path):
    """in/naming.dcm (the PDF names the patient), in/neutral.dcm (it does not,
    BurnedInAnnotation NO), in/neutral-burned.dcm (it does not, but YES)."""
    root = tmp_path / "in"
    encapsulated_pdf(root / "naming.dcm", NAMING_TEXT)
    encapsulated_pdf(root / "neutral.dcm", NEUTRAL_TEXT, burned_in="NO")
    encapsulated_pdf(root / "neutral-burned.dcm", NEUTRAL_TEXT)
    return root


def test_the_object_is_a_real_encapsulated_pdf(documents):
    ds = read_strict(documents / "naming.dcm")
    assert ds is not None and ds.SOPClassUID == ENCAPSULATED_PDF
    assert ds.BurnedInAnnotation == "YES" and "PixelData" not in ds
    assert ds.EncapsulatedDocument.startswith(b"%PDF-1.4") and b"Whitfield" in ds.EncapsulatedDocument


def entries(report):
    return {f["path"]: f for f in report["files"]}


def test_basic_profile_writes_it_with_a_blank_document(documents, tmp_path, key):
    """No --allow-burned-in: the declared burned-in text is in a document the
    profile replaces, so nothing of it can leak."""
    out = tmp_path / "out"
    code, report = run_deid(documents, out, "--key-file", key)
    assert code == 0, entries(report)
    assert {p: f["outcome"] for p, f in entries(report).items()} == {
        "naming.dcm": "written", "neutral.dcm": "written", "neutral-burned.dcm": "written"}
    for name in ("naming.dcm", "neutral.dcm"):
        raw = (out / name).read_bytes()
        for value in (b"Whitfield", b"WHITFIELD", b"Harriet", b"4471902", b"Discharge summary for"):
            assert value not in raw, (name, value)
        ds = read_strict(out / name)
        assert ds.SOPClassUID == ENCAPSULATED_PDF
        assert ds.EncapsulatedDocument.startswith(b"%PDF")


def test_a_profile_keeping_the_document_quarantines_it_only_when_it_names_the_patient(documents, tmp_path, key):
    profile = tmp_path / "keep-documents.toml"
    profile.write_text(KEEP_DOCUMENT)
    out = tmp_path / "out"
    code, report = run_deid(documents, out, "--key-file", key, "--profile", profile)
    assert code == 1
    by_path = entries(report)
    naming, neutral = by_path["naming.dcm"], by_path["neutral.dcm"]
    assert naming["outcome"] == "quarantined" and naming["reason"] == "identity_remains", naming
    assert "document" in naming["detail"], naming
    # the detail names no value
    for value in ("Whitfield", "WHITFIELD", "Harriet", "4471902"):
        assert value not in naming["detail"]
    assert not (out / "naming.dcm").exists()
    # one that declares burned-in annotation may name the patient in images
    burned = by_path["neutral-burned.dcm"]
    assert burned["outcome"] == "quarantined" and burned["reason"] == "identity_remains", burned
    assert "burned-in" in burned["detail"], burned
    # a document that names nobody and declares no burned-in text is kept as it is
    assert neutral["outcome"] == "written", neutral
    ds = read_strict(out / "neutral.dcm")
    assert ds.EncapsulatedDocument.rstrip(b"\0") == pdf(NEUTRAL_TEXT)

#!/usr/bin/env python3
"""Generate the sample DICOM files in ``samples/`` for Obscura.

Every identity in these files is INVENTED: the patients (DOE^JOHN, ROE^JANE),
their IDs, birth dates, addresses and phone numbers (555-01xx numbers are
reserved for fiction), the physicians, operators, institutions, devices,
accession numbers and UIDs.  They describe no real person or site.  The UIDs
sit under the made-up root ``1.2.826.0.1.3680043.10.1234``.

What gets written (paths relative to the output directory, default
``<repo>/samples``):

* ``patient1/study1/ct_001.dcm``  CT slice 1, explicit VR little endian
* ``patient1/study1/ct_002.dcm``  CT slice 2, implicit VR little endian;
  carries a ReferencedImageSequence pointing at slice 1
* ``patient1/study1/ct_003.dcm``  CT slice 3, explicit VR big endian (retired
  transfer syntax 1.2.840.10008.1.2.2, pixel data byte-swapped accordingly)
* ``patient1/legacy/IM0001``      CT image as a bare data set: no preamble, no
  "DICM", no file meta; implicit VR little endian (starts with group 0008)
* ``patient2/study1/mr_001.dcm``  MR image, explicit VR little endian
* ``patient2/study1/mr_002.dcm``  MR image, deflated explicit VR little endian
* ``patient2/study1/rtstruct_001.dcm``  RT Structure Set on mr_001
* ``patient2/study2/us_001.dcm``  US image WITHOUT BurnedInAnnotation (a
  de-identifier should quarantine it by default)
* ``README.txt``                  non-DICOM note (to be skipped)

The three CT slices share Study, Series and Frame of Reference UIDs, and carry
PHI in the usual places plus free text (ImageComments "Follow-up for John
Doe"), a private block (group 0009, creator "ACME 1.1") holding the patient
name and a private sequence, and nested request/procedure sequences.  See
``samples/MANIFEST.md`` for a per-file table.

The output is deterministic: fixed UIDs, dates and values, a 128-byte zero
preamble, no current timestamps.  Running the script twice yields byte-identical
files (the deflated file depends on zlib, which is deterministic for a given
zlib version and compression level).

Usage:  python3 tools/make_samples.py [--out DIR]
Requires pydicom 3.0.x (tested with 3.0.2); no other third-party packages.
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

import pydicom
from pydicom import config
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

# Fail loudly on any value that does not fit its VR.
config.settings.writing_validation_mode = config.RAISE

ROOT = "1.2.826.0.1.3680043.10.1234"


def uid(*parts: int) -> UID:
    return UID(".".join([ROOT, *(str(p) for p in parts)]))


IMPLEMENTATION_CLASS_UID = uid(0, 1)
IMPLEMENTATION_VERSION_NAME = "OBSCURA_SAMPLES"

CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2")
MR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.4")
US_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.6.1")
RT_STRUCTURE_SET_STORAGE = UID("1.2.840.10008.5.1.4.1.1.481.3")
MPPS_SOP_CLASS = UID("1.2.840.10008.3.1.2.3.3")
# Retired Detached Study Management SOP Class, which PS3.3 C.8.8.5 names for
# RT Referenced Study Sequence items.
DETACHED_STUDY_MANAGEMENT = UID("1.2.840.10008.3.1.2.3.1")

# ---------------------------------------------------------------- UIDs ------
# Patient 1, CT study
P1_CT_STUDY = uid(1, 1)
P1_CT_SERIES = uid(1, 2)
P1_CT_FOR = uid(1, 3)
P1_CT_MPPS = uid(1, 4)
P1_CT_SOP = [uid(1, 101), uid(1, 102), uid(1, 103)]
# Patient 1, legacy (raw data set) study
P1_LEG_STUDY = uid(1, 11)
P1_LEG_SERIES = uid(1, 12)
P1_LEG_FOR = uid(1, 13)
P1_LEG_SOP = uid(1, 111)
# Patient 2, MR study (MR images + RT Structure Set)
P2_MR_STUDY = uid(2, 1)
P2_MR_SERIES = uid(2, 2)
P2_MR_FOR = uid(2, 3)
P2_MR_SOP = [uid(2, 101), uid(2, 102)]
P2_RT_SERIES = uid(2, 4)
P2_RT_SOP = uid(2, 201)
# Patient 2, US study
P2_US_STUDY = uid(3, 1)
P2_US_SERIES = uid(3, 2)
P2_US_SOP = uid(3, 101)

PREAMBLE = b"\x00" * 128


# ------------------------------------------------------------- helpers ------
def seq(*items: Dataset) -> Sequence:
    return Sequence(list(items))


def item(**kw: object) -> Dataset:
    ds = Dataset()
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def pixel_bytes(rows: int, cols: int, bits: int, seed: int, little_endian: bool = True) -> bytes:
    """A deterministic synthetic pattern (diagonal ramp plus a bright square)."""
    maxval = (1 << bits) - 1
    vals = []
    for y in range(rows):
        for x in range(cols):
            v = (x * 7 + y * 5 + seed * 11) * (maxval // 64)
            if rows // 4 <= y < 3 * rows // 4 and cols // 4 <= x < 3 * cols // 4:
                v += maxval // 3
            vals.append(v % (maxval + 1))
    if bits <= 8:
        return bytes(vals)
    fmt = ("<" if little_endian else ">") + "H" * len(vals)
    return struct.pack(fmt, *vals)


def new_file_dataset(sop_class: UID, sop_instance: UID, tsuid: UID) -> FileDataset:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = tsuid
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=PREAMBLE)
    ds.SpecificCharacterSet = "ISO_IR 100"
    return ds


def sop_common(ds: Dataset, sop_class: UID, sop_instance: UID, date: str, time: str) -> None:
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    ds.InstanceCreationDate = date
    ds.InstanceCreationTime = time
    ds.InstanceCreatorUID = uid(0, 2)


# ------------------------------------------------------------ patients ------
def patient1(ds: Dataset) -> None:
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = "MRN12345"
    ds.IssuerOfPatientID = "SPRINGFIELD GENERAL"
    ds.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = seq(
        item(PatientID="INS-778899", IssuerOfPatientID="ACME INSURANCE", TypeOfPatientID="TEXT")
    )
    ds.PatientBirthDate = "19610412"
    ds.PatientSex = "M"
    ds.PatientAge = "061Y"
    ds.PatientSize = "1.80"
    ds.PatientWeight = "82"
    ds.PatientAddress = "12 Elm Street, Springfield"
    ds.PatientTelephoneNumbers = ["555-0142"]
    ds.PatientMotherBirthName = "SMITH^MARY"
    ds.EthnicGroup = "EUROPEAN"
    ds.Occupation = "TEACHER"
    ds.AdditionalPatientHistory = "John Doe, ex-smoker, seen by Dr Parker in 2022"
    ds.PatientComments = "Call his brother Jim on 555-0143 before the visit"


def patient2(ds: Dataset) -> None:
    ds.PatientName = "ROE^JANE"
    ds.PatientID = "MRN67890"
    ds.IssuerOfPatientID = "SHELBYVILLE CLINIC"
    ds.OtherPatientIDsSequence = seq(
        item(PatientID="NHS-9990001", IssuerOfPatientID="NATIONAL REGISTRY", TypeOfPatientID="TEXT")
    )
    ds.PatientBirthDate = "19750923"
    ds.PatientSex = "F"
    ds.PatientAge = "046Y"
    ds.PatientAddress = "34 Oak Avenue, Shelbyville"
    ds.PatientTelephoneNumbers = ["555-0199"]
    ds.EthnicGroup = "HISPANIC"
    ds.PatientComments = "Jane Roe prefers afternoon appointments"


# ------------------------------------------------------- patient 1 CT -------
CT_TRANSFER_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian]


def acme_private_block(ds: Dataset) -> None:
    """Private group 0009, creator "ACME 1.1": a LO with the patient name and
    an SQ whose item has its own creator and a private LO with the MRN."""
    block = ds.private_block(0x0009, "ACME 1.1", create=True)
    block.add_new(0x01, "LO", "DOE^JOHN")
    inner = Dataset()
    inner.private_block(0x0009, "ACME 1.1", create=True).add_new(0x01, "LO", "MRN12345")
    # Undefined lengths (with delimiters), as vendors usually write private
    # sequences; in the implicit VR slice this is the only hint that the
    # unknown element is a sequence.
    inner.is_undefined_length_sequence_item = True
    block.add_new(0x02, "SQ", seq(inner))
    block[0x02].is_undefined_length = True


def make_ct_slice(index: int) -> FileDataset:
    n = index + 1
    tsuid = CT_TRANSFER_SYNTAXES[index]
    little = tsuid != ExplicitVRBigEndian
    ds = new_file_dataset(CT_IMAGE_STORAGE, P1_CT_SOP[index], tsuid)
    sop_common(ds, CT_IMAGE_STORAGE, P1_CT_SOP[index], "20230314", "094500")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    # General Study
    ds.StudyInstanceUID = P1_CT_STUDY
    ds.StudyDate = "20230314"
    ds.StudyTime = "093015"
    ds.AccessionNumber = "ACC20230314001"
    ds.ReferringPhysicianName = "PARKER^ALAN^^DR"
    ds.StudyID = "S1001"
    ds.StudyDescription = "CT CHEST W CONTRAST"
    ds.PhysiciansOfRecord = "PARKER^ALAN^^DR"
    ds.NameOfPhysiciansReadingStudy = "OKAFOR^CHIDI^^DR"
    ds.RequestingPhysician = "PARKER^ALAN^^DR"
    # Patient + Patient Study
    patient1(ds)
    # General Series
    ds.Modality = "CT"
    ds.SeriesInstanceUID = P1_CT_SERIES
    ds.SeriesNumber = 2
    ds.SeriesDate = "20230314"
    ds.SeriesTime = "093400"
    ds.SeriesDescription = "AXIAL 5MM POST CONTRAST"
    ds.PerformingPhysicianName = "KHAN^SARA"
    ds.OperatorsName = "TECH^TERRY"
    ds.ProtocolName = "CHEST ROUTINE"
    ds.BodyPartExamined = "CHEST"
    ds.PatientPosition = "HFS"
    ds.ReferencedPerformedProcedureStepSequence = seq(
        item(ReferencedSOPClassUID=MPPS_SOP_CLASS, ReferencedSOPInstanceUID=P1_CT_MPPS)
    )
    ds.RequestAttributesSequence = seq(
        item(
            AccessionNumber="ACC20230314001",
            StudyInstanceUID=P1_CT_STUDY,
            RequestedProcedureID="RP1001",
            RequestedProcedureDescription="CT chest with contrast for John Doe",
            ScheduledProcedureStepID="SPS1001",
            ScheduledProcedureStepDescription="CT CHEST W CONTRAST",
            ScheduledProtocolCodeSequence=seq(
                item(
                    CodeValue="CTCHESTC",
                    CodingSchemeDesignator="99ACME",
                    CodeMeaning="CT chest with contrast",
                )
            ),
        )
    )
    ds.PerformedProcedureStepID = "PPS1001"
    ds.PerformedProcedureStepStartDate = "20230314"
    ds.PerformedProcedureStepStartTime = "093015"
    ds.PerformedProcedureStepDescription = "CT CHEST W CONTRAST"
    # Frame of Reference
    ds.FrameOfReferenceUID = P1_CT_FOR
    ds.PositionReferenceIndicator = ""
    # General Equipment
    ds.Manufacturer = "ACME MEDICAL"
    ds.InstitutionName = "Springfield General Hospital"
    ds.InstitutionAddress = "1 Hospital Road, Springfield"
    ds.InstitutionalDepartmentName = "RADIOLOGY"
    ds.StationName = "CTSCAN01"
    ds.ManufacturerModelName = "ACME CT 64"
    ds.DeviceSerialNumber = "SN-4711-0815"
    ds.SoftwareVersions = "1.0"
    # General Image
    ds.InstanceNumber = n
    ds.ContentDate = "20230314"
    ds.ContentTime = f"0935{10 + n:02d}"
    ds.AcquisitionNumber = 1
    ds.AcquisitionDate = "20230314"
    ds.AcquisitionTime = f"0935{n:02d}"
    ds.AcquisitionDateTime = f"202303140935{n:02d}"
    ds.ImageComments = "Follow-up for John Doe"
    ds.BurnedInAnnotation = "NO"
    if n == 2:
        ds.ReferencedImageSequence = seq(
            item(ReferencedSOPClassUID=CT_IMAGE_STORAGE, ReferencedSOPInstanceUID=P1_CT_SOP[0])
        )
    # Image Plane
    ds.PixelSpacing = ["20", "20"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    z = -100 + 5 * index
    ds.ImagePositionPatient = ["-160", "-160", str(z)]
    ds.SliceThickness = "5"
    ds.SliceLocation = str(z)
    # Contrast/Bolus
    ds.ContrastBolusAgent = "IOHEXOL 350"
    ds.ContrastBolusRoute = "IV"
    # CT Image + Image Pixel
    ds.KVP = "120"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 16
    ds.Columns = 16
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    acme_private_block(ds)
    ds.PixelData = pixel_bytes(16, 16, 12, seed=n, little_endian=little)
    return ds


def make_legacy_ct() -> Dataset:
    """Patient 1, an old CT as a bare implicit VR LE data set (no Part 10)."""
    ds = Dataset()  # deliberately no file_meta, no preamble
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    sop_common(ds, CT_IMAGE_STORAGE, P1_LEG_SOP, "20090602", "141000")
    ds.StudyDate = "20090602"
    ds.StudyTime = "140512"
    ds.AccessionNumber = "ACC20090602007"
    ds.Modality = "CT"
    ds.Manufacturer = "ACME MEDICAL"
    ds.InstitutionName = "Springfield General Hospital"
    ds.ReferringPhysicianName = "PARKER^ALAN^^DR"
    ds.StationName = "CTOLD"
    ds.StudyDescription = "CT HEAD WO CONTRAST"
    ds.OperatorsName = "TECH^TERRY"
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = "MRN12345"
    ds.PatientBirthDate = "19610412"
    ds.PatientSex = "M"
    ds.PatientAge = "048Y"
    ds.PatientAddress = "12 Elm Street, Springfield"
    ds.ContrastBolusAgent = ""
    ds.BodyPartExamined = "HEAD"
    ds.SliceThickness = "5"
    ds.KVP = "120"
    ds.DeviceSerialNumber = "SN-0001-1999"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = P1_LEG_STUDY
    ds.SeriesInstanceUID = P1_LEG_SERIES
    ds.StudyID = "S0907"
    ds.SeriesNumber = 1
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = 1
    ds.ImagePositionPatient = ["-160", "-160", "0"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = P1_LEG_FOR
    ds.PositionReferenceIndicator = ""
    ds.ImageComments = "Old scan of John Doe, imported from CD"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 8
    ds.Columns = 8
    ds.PixelSpacing = ["40", "40"]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "NO"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.PixelData = pixel_bytes(8, 8, 12, seed=9)
    return ds


# ------------------------------------------------------- patient 2 MR -------
MR_TRANSFER_SYNTAXES = [ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian]


def p2_mr_study(ds: Dataset) -> None:
    ds.StudyInstanceUID = P2_MR_STUDY
    ds.StudyDate = "20220801"
    ds.StudyTime = "151020"
    ds.AccessionNumber = "SHC2208010042"
    ds.ReferringPhysicianName = "NGUYEN^LINH^^DR"
    ds.StudyID = "M2042"
    ds.StudyDescription = "MR BRAIN WO CONTRAST"
    patient2(ds)


def p2_equipment(ds: Dataset, station: str, serial: str, model: str) -> None:
    ds.Manufacturer = "ACME MEDICAL"
    ds.InstitutionName = "Shelbyville Clinic"
    ds.InstitutionAddress = "200 Main Street, Shelbyville"
    ds.StationName = station
    ds.ManufacturerModelName = model
    ds.DeviceSerialNumber = serial
    ds.SoftwareVersions = "1.0"


def make_mr(index: int) -> FileDataset:
    n = index + 1
    ds = new_file_dataset(MR_IMAGE_STORAGE, P2_MR_SOP[index], MR_TRANSFER_SYNTAXES[index])
    sop_common(ds, MR_IMAGE_STORAGE, P2_MR_SOP[index], "20220801", "153000")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    p2_mr_study(ds)
    ds.Modality = "MR"
    ds.SeriesInstanceUID = P2_MR_SERIES
    ds.SeriesNumber = 3
    ds.SeriesDate = "20220801"
    ds.SeriesTime = "152000"
    ds.SeriesDescription = "AX T2"
    ds.OperatorsName = "BAKER^PAT"
    ds.PerformingPhysicianName = "NGUYEN^LINH^^DR"
    ds.BodyPartExamined = "BRAIN"
    ds.PatientPosition = "HFS"
    ds.FrameOfReferenceUID = P2_MR_FOR
    ds.PositionReferenceIndicator = ""
    p2_equipment(ds, "MRI3T", "SN-3T-2020-77", "ACME MR 3T")
    ds.InstanceNumber = n
    ds.ContentDate = "20220801"
    ds.ContentTime = f"1521{n:02d}"
    ds.AcquisitionNumber = 1
    ds.AcquisitionDateTime = "20220801152030"
    ds.BurnedInAnnotation = "NO"
    ds.PixelSpacing = ["5", "5"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    z = 10 + 4 * index
    ds.ImagePositionPatient = ["-40", "-40", str(z)]
    ds.SliceThickness = "4"
    ds.SliceLocation = str(z)
    # MR Image
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = "4000"
    ds.EchoTime = "90"
    ds.EchoTrainLength = "12"
    ds.MagneticFieldStrength = "3"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 16
    ds.Columns = 16
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = pixel_bytes(16, 16, 12, seed=20 + n)
    return ds


def make_rtstruct() -> FileDataset:
    ds = new_file_dataset(RT_STRUCTURE_SET_STORAGE, P2_RT_SOP, ExplicitVRLittleEndian)
    sop_common(ds, RT_STRUCTURE_SET_STORAGE, P2_RT_SOP, "20220802", "101500")
    p2_mr_study(ds)
    # RT Series
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = P2_RT_SERIES
    ds.SeriesNumber = 90
    ds.SeriesDescription = "Contours for Jane Roe"
    ds.OperatorsName = "NGUYEN^LINH^^DR"
    ds.FrameOfReferenceUID = P2_MR_FOR
    ds.PositionReferenceIndicator = ""
    p2_equipment(ds, "PLANWS1", "SN-PLAN-0042", "ACME PLAN")
    # Structure Set
    ds.StructureSetLabel = "ROE_BRAIN"
    ds.StructureSetName = "Jane Roe lesion"
    ds.StructureSetDescription = "Drawn for J. Roe (MRN67890)"
    ds.InstanceNumber = 1
    ds.StructureSetDate = "20220802"
    ds.StructureSetTime = "101500"
    ds.ReferencedFrameOfReferenceSequence = seq(
        item(
            FrameOfReferenceUID=P2_MR_FOR,
            RTReferencedStudySequence=seq(
                item(
                    ReferencedSOPClassUID=DETACHED_STUDY_MANAGEMENT,
                    ReferencedSOPInstanceUID=P2_MR_STUDY,
                    RTReferencedSeriesSequence=seq(
                        item(
                            SeriesInstanceUID=P2_MR_SERIES,
                            ContourImageSequence=seq(
                                item(
                                    ReferencedSOPClassUID=MR_IMAGE_STORAGE,
                                    ReferencedSOPInstanceUID=P2_MR_SOP[0],
                                )
                            ),
                        )
                    ),
                )
            ),
        )
    )
    ds.StructureSetROISequence = seq(
        item(
            ROINumber=1,
            ReferencedFrameOfReferenceUID=P2_MR_FOR,
            ROIName="LESION",
            ROIGenerationAlgorithm="MANUAL",
        )
    )
    # ROI Contour: a square in the plane of mr_001 (z = 10)
    ds.ROIContourSequence = seq(
        item(
            ReferencedROINumber=1,
            ROIDisplayColor=[255, 0, 0],
            ContourSequence=seq(
                item(
                    ContourImageSequence=seq(
                        item(
                            ReferencedSOPClassUID=MR_IMAGE_STORAGE,
                            ReferencedSOPInstanceUID=P2_MR_SOP[0],
                        )
                    ),
                    ContourGeometricType="CLOSED_PLANAR",
                    NumberOfContourPoints=4,
                    ContourNumber=1,
                    ContourData=["-20", "-20", "10", "20", "-20", "10",
                                 "20", "20", "10", "-20", "20", "10"],
                )
            ),
        )
    )
    # RT ROI Observations
    ds.RTROIObservationsSequence = seq(
        item(
            ObservationNumber=1,
            ReferencedROINumber=1,
            RTROIInterpretedType="GTV",
            ROIInterpreter="NGUYEN^LINH^^DR",
        )
    )
    # Approval
    ds.ApprovalStatus = "APPROVED"
    ds.ReviewDate = "20220803"
    ds.ReviewTime = "090000"
    ds.ReviewerName = "OKAFOR^CHIDI^^DR"
    return ds


# ------------------------------------------------------- patient 2 US -------
def make_us() -> FileDataset:
    ds = new_file_dataset(US_IMAGE_STORAGE, P2_US_SOP, ExplicitVRLittleEndian)
    sop_common(ds, US_IMAGE_STORAGE, P2_US_SOP, "20230105", "112000")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "ABDOMINAL", "0001"]
    ds.StudyInstanceUID = P2_US_STUDY
    ds.StudyDate = "20230105"
    ds.StudyTime = "110500"
    ds.AccessionNumber = "SHC2301050007"
    ds.ReferringPhysicianName = "NGUYEN^LINH^^DR"
    ds.StudyID = "U0007"
    ds.StudyDescription = "US ABDOMEN"
    patient2(ds)
    ds.Modality = "US"
    ds.SeriesInstanceUID = P2_US_SERIES
    ds.SeriesNumber = 1
    ds.OperatorsName = "LOPEZ^ANA"
    ds.BodyPartExamined = "ABDOMEN"
    p2_equipment(ds, "USROOM2", "SN-US-5150", "ACME SONO")
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.ContentDate = "20230105"
    ds.ContentTime = "111000"
    ds.ImageComments = "Jane Roe, RUQ pain"
    # No BurnedInAnnotation on purpose: ultrasound often has burned-in text.
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 16
    ds.Columns = 16
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "00"
    ds.PixelData = pixel_bytes(16, 16, 8, seed=30)
    return ds


README_TEXT = (
    "All patients, identifiers, dates, addresses, phone numbers, staff, institutions and UIDs in these files are invented;\n"
    "they were generated by tools/make_samples.py and describe no real person. (This file is not DICOM and should be skipped.)\n"
)


# ---------------------------------------------------------------- main ------
def write_part10(ds: FileDataset, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)


def main(argv: list[str] | None = None) -> int:
    default_out = Path(__file__).resolve().parent.parent / "samples"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=default_out, help="output directory (default: %(default)s)")
    args = ap.parse_args(argv)
    out: Path = args.out

    written: list[Path] = []
    for i in range(3):
        p = out / "patient1" / "study1" / f"ct_{i + 1:03d}.dcm"
        write_part10(make_ct_slice(i), p)
        written.append(p)

    legacy = out / "patient1" / "legacy" / "IM0001"
    legacy.parent.mkdir(parents=True, exist_ok=True)
    pydicom.dcmwrite(legacy, make_legacy_ct(), implicit_vr=True, little_endian=True)
    head = legacy.read_bytes()[:4]
    if head != b"\x08\x00\x05\x00":  # (0008,0005) in little endian
        raise SystemExit(f"{legacy}: expected a bare data set starting with (0008,0005), got {head.hex()}")
    written.append(legacy)

    for i in range(2):
        p = out / "patient2" / "study1" / f"mr_{i + 1:03d}.dcm"
        write_part10(make_mr(i), p)
        written.append(p)
    p = out / "patient2" / "study1" / "rtstruct_001.dcm"
    write_part10(make_rtstruct(), p)
    written.append(p)
    p = out / "patient2" / "study2" / "us_001.dcm"
    write_part10(make_us(), p)
    written.append(p)

    readme = out / "README.txt"
    readme.write_bytes(README_TEXT.encode("ascii"))
    written.append(readme)

    # Read everything back as a sanity check.
    for p in written:
        if p.suffix == ".txt":
            continue
        back = pydicom.dcmread(p, force=(p == legacy))
        if back.SOPInstanceUID == P2_RT_SOP:
            continue
        if p == legacy:
            back.file_meta = FileMetaDataset()
            back.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        back.pixel_array  # decodes, so Rows/Columns/Bits agree with the data
    for p in written:
        print(f"{p.stat().st_size:7d}  {p.relative_to(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

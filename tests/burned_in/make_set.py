#!/usr/bin/env python3
"""The labelled burned-in text set: real pixel data with text drawn into it.

Every image starts from pixel data nobody here made (pydicom's test files,
pydicom-data, deid-data: ultrasound, secondary capture, CR, XA, CT, MR, NM,
single- and multi-frame, MONOCHROME, RGB, YBR and palette colour). Text the
source already carries in its pixels is blacked out first (boxes below,
found by eye and by OCR once), then new text is drawn with a seeded random
choice of font (DejaVu, Liberation, FreeFont), size (8-24 px), contrast,
colour and position, always visible at the default display (grey text at
least about 45 levels of 255 off its ground as windowed, colour text 48
levels of luminance, palette text in 1-bit glyphs of the brightest or
darkest entry); some of it matches the header's identity values, some
is identifying but not in the header, some is not identifying at all, and a
quarter of the images carry no text. The header gets invented identity
values and new UIDs.

    python3 tests/burned_in/make_set.py OUT [--count 320] [--seed 14]

writes OUT/NNNN.dcm, OUT/answer_key.json (per image: source, modality,
frames, ultrasound regions, and per text: its string, box [x0, y0, x1, y1)
in pixels, kind, identifying, the header attribute it matches, inside a
region or not, font, size) and OUT/masks.npz (the exact pixels of each text,
cropped to its box, keyed "NNNN.dcm:i"), which tests/burned_in/score.py
uses to tell redacted text from text left readable.

Needs pydicom with its codecs (tests/requirements.txt), Pillow, numpy and
Debian's fonts-dejavu-core, fonts-liberation2 and fonts-freefont-ttf.
"""
import argparse
import json
import os
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image, ImageDraw, ImageFont
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (JPEG2000Lossless, JPEGLSLossless, RLELossless, ExplicitVRLittleEndian,
                         generate_uid)

FONT_DIRS = ["/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation2",
             "/usr/share/fonts/truetype/freefont"]
FONT_FILES = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSerif.ttf",
              "DejaVuSerif-Bold.ttf", "LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf",
              "LiberationMono-Regular.ttf", "LiberationSerif-Regular.ttf",
              "LiberationSerif-Italic.ttf", "FreeSans.ttf", "FreeSansBold.ttf",
              "FreeMono.ttf", "FreeSerif.ttf"]
FONTS_INSTALL = "apt-get install fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf"

SOP_CLASSES = {
    "US": "1.2.840.10008.5.1.4.1.1.6.1", "US-MF": "1.2.840.10008.5.1.4.1.1.3.1",
    "SC": "1.2.840.10008.5.1.4.1.1.7", "CR": "1.2.840.10008.5.1.4.1.1.1",
    "XA": "1.2.840.10008.5.1.4.1.1.12.1", "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4", "NM": "1.2.840.10008.5.1.4.1.1.20",
}

# Pixel-module attributes carried over from the source.
PIXEL_MODULE = ["SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored",
                "HighBit", "PixelRepresentation", "RescaleSlope", "RescaleIntercept",
                "WindowCenter", "WindowWidth", "RedPaletteColorLookupTableDescriptor",
                "GreenPaletteColorLookupTableDescriptor", "BluePaletteColorLookupTableDescriptor",
                "RedPaletteColorLookupTableData", "GreenPaletteColorLookupTableData",
                "BluePaletteColorLookupTableData", "SegmentedRedPaletteColorLookupTableData",
                "SegmentedGreenPaletteColorLookupTableData",
                "SegmentedBluePaletteColorLookupTableData"]

# Luminance of R, G, B (ITU-R BT.601), as viewers turn colour to grey.
LUMA = np.array([0.299, 0.587, 0.114])


@dataclass
class Source:
    """One real image the set is built from."""
    name: str            # "pydicom:<file>" or "deid-data:<path>"
    modality: str        # a key of SOP_CLASSES
    weight: int          # how many images of the set start from it, relatively
    scale: float = 1.0   # resampled (nearest) so text of 8-24 px is plausible on it
    existing_text: list = field(default_factory=list)  # boxes blacked out first
    regions: list = field(default_factory=list)        # Sequence of Ultrasound Regions
    frames: int = 0      # keep at most this many frames (0: all)


SOURCES = [
    Source("pydicom:examples_palette.dcm", "US", 5,
           existing_text=[[0, 0, 800, 54], [0, 60, 86, 262], [118, 83, 310, 108],
                          [438, 278, 512, 312]],
           regions=[[110, 56, 700, 346]]),
    Source("pydicom:gdcm-US-ALOKA-16.dcm", "US", 4,
           existing_text=[[0, 0, 640, 64], [0, 426, 640, 480]],
           regions=[[20, 64, 320, 424], [330, 64, 630, 424]]),
    Source("pydicom:examples_ybr_color.dcm", "US-MF", 4, scale=2.0, frames=6,
           existing_text=[[0, 0, 42, 28], [278, 0, 320, 150], [278, 192, 302, 212],
                          [0, 220, 320, 240]],
           regions=[[30, 16, 276, 218]]),
    Source("pydicom:examples_rgb_color.dcm", "US", 3, scale=2.0,
           existing_text=[[0, 6, 320, 54], [0, 62, 26, 132], [294, 62, 320, 132],
                          [118, 176, 194, 192], [188, 222, 320, 240]],
           regions=[[26, 56, 294, 176]]),
    Source("pydicom:examples_jpeg2k.dcm", "US", 3,
           existing_text=[[0, 18, 640, 106], [0, 118, 50, 262], [588, 118, 640, 262],
                          [236, 352, 386, 382], [376, 444, 640, 480]],
           regions=[[52, 108, 588, 352]]),
    Source("pydicom:SC_rgb_jpeg.dcm", "SC", 2, scale=2.0),
    Source("deid-data:dicom-cookies/image1.dcm", "SC", 2, scale=0.5),
    Source("deid-data:animals/cat.dcm", "CR", 3, scale=0.4),
    Source("pydicom:693_J2KI.dcm", "XA", 3),
    Source("pydicom:eCT_Supplemental.dcm", "XA", 2),
    Source("deid-data:humans/ctbrain1.dcm", "CT", 2),
    Source("pydicom:CT_small.dcm", "CT", 2, scale=3.0),
    Source("pydicom:examples_overlay.dcm", "MR", 2),
    Source("pydicom:emri_small.dcm", "MR", 2, scale=4.0),
    Source("pydicom:JPEG2000.dcm", "NM", 2),
]

FIRST = ["JANE", "JOHN", "MARIA", "AHMED", "WEI", "OLGA", "PIERRE", "AMARA", "KENJI", "LUCIA",
         "DMITRI", "FATIMA", "SEAN", "PRIYA", "HANS", "NGOZI", "CARLOS", "INGRID", "YUSUF", "MEI"]
LAST = ["DOE", "SMITH", "OKAFOR", "NAKAMURA", "KOWALSKI", "HERNANDEZ", "MUELLER", "SINGH",
        "ROSSI", "OBRIEN", "DUBOIS", "PETROV", "ANDERSEN", "MBEKI", "TANAKA", "SILVA", "COHEN",
        "FITZGERALD", "NOVAK", "LINDQVIST"]
INSTITUTIONS = ["CCHS CLEVELAND", "ST MARY MEDICAL CTR", "NORTHSIDE IMAGING", "BAPTIST MED CTR",
                "LAKEVIEW CLINIC", "UNIV HOSP EAST"]
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
NOT_IDENTIFYING = ["L12-5", "36Hz", "2D", "60%", "Dyn R 58", "P Med", "Res", "TIS0.6 MI 1.1",
                   "4.0cm", "75 bpm", "C5-1", "HGen", "Gn 60", "CF 68%", "R", "L", "AP", "LAT",
                   "SUPINE", "x3", "WF 384Hz", "CINE 0118", "Frame 12/30", "kVp 120", "mAs 250",
                   "W 400 L 40", "THI", "PWR", "Depth 15cm", "Gain 58", "Adv Breast", "ABD",
                   "LT KIDNEY", "RT THYROID", "TRV", "SAG", "MI 0.8", "Zoom 1.5", "15cm",
                   "FR 18Hz"]


def die(message):
    print(f"make_set.py: {message}", file=sys.stderr)
    sys.exit(2)


def source_path(name):
    where, _, rel = name.partition(":")
    if where == "pydicom":
        return get_testdata_file(rel)
    import deid_data
    return os.path.join(os.path.dirname(deid_data.__file__), "data", rel)


def fonts():
    found = []
    for file in FONT_FILES:
        for folder in FONT_DIRS:
            if os.path.isfile(os.path.join(folder, file)):
                found.append(os.path.join(folder, file))
                break
    if len(found) < 6:
        die(f"fonts missing ({FONTS_INSTALL})")
    return found


def resample(frames, scale):
    """Nearest-neighbour resampling of every frame (keeps the real values)."""
    if scale == 1.0:
        return frames
    n, h, w = frames.shape[:3]
    ys = (np.arange(int(h * scale)) / scale).astype(int).clip(0, h - 1)
    xs = (np.arange(int(w * scale)) / scale).astype(int).clip(0, w - 1)
    return frames[:, ys][:, :, xs]


def load(source):
    """The source's header and its frames as (n, rows, cols[, 3]), colour as RGB."""
    ds = pydicom.dcmread(source_path(source.name))
    arr = ds.pixel_array  # pydicom converts YBR to RGB
    nframes = int(ds.get("NumberOfFrames", 1) or 1)
    colour = ds.SamplesPerPixel == 3
    if nframes == 1:
        arr = arr[np.newaxis]
    if source.frames:
        arr = arr[:source.frames]
    arr = resample(arr, source.scale).copy()
    # a decoded YBR image is RGB now; an RLE/JPEG one is stored native here
    photometric = "RGB" if colour else ds.PhotometricInterpretation
    scaled = lambda boxes: [[int(v * source.scale) for v in b] for b in boxes]
    return ds, arr, photometric, scaled(source.existing_text), scaled(source.regions)


def display_range(ds, arr):
    """The stored values shown as black and as white."""
    info = np.iinfo(arr.dtype)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        centre = float(np.atleast_1d(ds.WindowCenter)[0])
        width = float(np.atleast_1d(ds.WindowWidth)[0])
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        lo = (centre - width / 2 - intercept) / slope
        hi = (centre + width / 2 - intercept) / slope
    else:
        lo, hi = float(arr.min()), float(arr.max())
    return max(lo, info.min), min(hi, info.max)


def brightest_palette_index(ds):
    """The palette indices shown brightest and darkest."""
    from pydicom.pixels import apply_color_lut
    entries, first = ds.RedPaletteColorLookupTableDescriptor[:2]
    index = np.arange(first, first + (entries or 65536))
    rgb = apply_color_lut(index, ds).astype(float)
    luminance = rgb @ LUMA
    return int(index[np.argmax(luminance)]), int(index[np.argmin(luminance)])


def palette_ink(ds, region):
    """The palette index text is drawn in over region: the brightest, or
    the darkest over a ground shown bright."""
    from pydicom.pixels import apply_color_lut
    bright, dark = brightest_palette_index(ds)
    shown = apply_color_lut(region, ds).astype(float) @ LUMA
    full = float((apply_color_lut(np.array([bright]), ds).astype(float) @ LUMA)[0])
    return dark if float(np.median(shown)) > full / 2 else bright


class Identity:
    """The invented patient an image belongs to, and text that names it."""

    def __init__(self, rng):
        self.rng = rng
        self.first, self.last = rng.choice(FIRST), rng.choice(LAST)
        self.patient_id = "".join(rng.choice("0123456789") for _ in range(rng.choice([7, 8, 10])))
        self.birth = (rng.randint(1930, 2012), rng.randint(1, 12), rng.randint(1, 28))
        self.study = (rng.randint(2012, 2026), rng.randint(1, 12), rng.randint(1, 28))
        self.accession = "A" + "".join(rng.choice("0123456789") for _ in range(7))
        self.institution = rng.choice(INSTITUTIONS)

    def header(self, ds):
        ds.PatientName = f"{self.last}^{self.first}"
        ds.PatientID = self.patient_id
        ds.PatientBirthDate = "%04d%02d%02d" % self.birth
        ds.PatientSex = self.rng.choice(["F", "M", "O"])
        ds.StudyDate = "%04d%02d%02d" % self.study
        ds.StudyTime = "%02d%02d%02d" % (self.rng.randint(7, 19), self.rng.randint(0, 59),
                                          self.rng.randint(0, 59))
        ds.AccessionNumber = self.accession
        ds.InstitutionName = self.institution
        ds.ReferringPhysicianName = f"{self.rng.choice(LAST)}^{self.rng.choice(FIRST)}"

    def date_text(self, ymd, label=""):
        y, m, d = ymd
        form = self.rng.choice([f"{m:02d}/{d:02d}/{y}", f"{y}-{m:02d}-{d:02d}",
                                f"{d:02d}.{m:02d}.{y}", f"{d:02d}-{MONTHS[m - 1]}-{y}",
                                f"{y}{m:02d}{d:02d}", f"{MONTHS[m - 1].title()} {d}, {y}"])
        return label + form

    def matching(self):
        """(text, kind, the header attribute it shows)."""
        r = self.rng
        choice = r.choice(["name", "name", "id", "id", "birth", "birth", "accession", "study",
                           "institution"])
        if choice == "name":
            text = r.choice([f"{self.last}, {self.first}", f"{self.first} {self.last}",
                             f"{self.last}^{self.first}", f"Name: {self.last} {self.first}",
                             f"{self.last.title()}, {self.first.title()}"])
            return text, "name", "PatientName"
        if choice == "id":
            return (r.choice(["ID: ", "MRN ", "", "PID:", "Pat ID "]) + self.patient_id,
                    "id", "PatientID")
        if choice == "birth":
            return self.date_text(self.birth, r.choice(["DOB: ", "", "Born "])), "date", \
                "PatientBirthDate"
        if choice == "accession":
            return r.choice(["ACC# ", "Acc: ", ""]) + self.accession, "id", "AccessionNumber"
        if choice == "study":
            return self.date_text(self.study), "date", "StudyDate"
        return self.institution, "institution", "InstitutionName"

    def other(self):
        """Identifying text the header does not hold."""
        r = self.rng
        kind = r.choice(["name", "id", "date", "ssn", "phone"])
        if kind == "name":
            return f"{r.choice(LAST)}, {r.choice(FIRST)}", "name"
        if kind == "id":
            return "ID " + "".join(r.choice("0123456789") for _ in range(8)), "id"
        if kind == "date":
            return self.date_text((r.randint(1930, 2020), r.randint(1, 12), r.randint(1, 28)),
                                  "DOB "), "date"
        if kind == "ssn":
            return "%03d-%02d-%04d" % (r.randint(100, 899), r.randint(10, 99),
                                       r.randint(1000, 9999)), "ssn"
        return "(%03d) 555-%04d" % (r.randint(201, 989), r.randint(0, 9999)), "phone"


def overlaps(box, boxes, margin=4):
    return any(box[0] < b[2] + margin and b[0] < box[2] + margin and
               box[1] < b[3] + margin and b[1] < box[3] + margin for b in boxes)


def inside(box, regions):
    return any(box[0] >= r[0] and box[1] >= r[1] and box[2] <= r[2] and box[3] <= r[3]
               for r in regions)


def place(rng, size, text_size, regions, taken, want_inside):
    """A free position for a text of text_size: in a region or out of all of them."""
    h, w = size
    tw, th = text_size
    if tw >= w - 2 or th >= h - 2:
        return None
    for _ in range(200):
        x, y = rng.randint(1, w - tw - 1), rng.randint(1, h - th - 1)
        box = [x, y, x + tw, y + th]
        if overlaps(box, taken):
            continue
        if regions and inside(box, regions) != want_inside:
            continue
        if regions and not want_inside and overlaps(box, regions, margin=0):
            continue
        return box
    return None


# The least a text differs from its ground as a viewer shows it by default
# (fraction of the display's range: 0.35 of 0.5, about 45 grey levels of
# 255): text fainter than that a reader cannot be counted on to see, so it
# is not in the set's recall.
MIN_REACH = 0.5
# Colour text: the least difference in luminance (grey levels of 255).
MIN_LUMINANCE_CONTRAST = 48


def glyphs(text, font, box, antialiased=True):
    """The text's coverage (0-1) over its box, anti-aliased or as a viewer's
    1-bit rendering (palette images hold indices: they cannot blend)."""
    x0, y0, x1, y1 = box
    canvas = Image.new("L", (x1 - x0 + 4, y1 - y0 + 4), 0)
    left, top, _, _ = font.getbbox(text)
    draw = ImageDraw.Draw(canvas)
    if not antialiased:
        draw.fontmode = "1"
    draw.text((-left, -top), text, font=font, fill=255)
    return np.asarray(canvas, dtype=float)[: y1 - y0, : x1 - x0] / 255.0


def visible_colour(colour, region):
    """colour, or a dark or white one where it would be within
    MIN_LUMINANCE_CONTRAST of the region's median luminance."""
    ground = float(np.median(region @ LUMA))
    if abs(float(colour @ LUMA) - ground) >= MIN_LUMINANCE_CONTRAST:
        return colour
    return colour * 0.2 if ground >= 128 else np.array([255.0, 255.0, 255.0])


def grey_text(rng, region, lo, hi, photometric):
    """Grey text drawn over region as a viewer shows it: text toward the
    display end (black or white) at least MIN_REACH from the ground as
    shown, 35-100 % of the way there, blended with the ground as shown
    (a window that clips the ground still shows the text and its edges).
    Returns blend(alpha): the stored values of the region with text of
    coverage alpha."""
    def shown(v):  # stored values -> 0 (black) .. 1 (white) as displayed
        d = np.clip((v - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
        return 1.0 - d if photometric == "MONOCHROME1" else d

    def stored(d):
        return lo + (1.0 - d if photometric == "MONOCHROME1" else d) * (hi - lo)

    ground = float(shown(float(np.median(region))))
    dark_text = ground > 0.6 and rng.random() < 0.7
    if abs((0.0 if dark_text else 1.0) - ground) < MIN_REACH:
        dark_text = not dark_text
    target = 0.0 if dark_text else 1.0
    text = ground + rng.uniform(0.35, 1.0) * (target - ground)
    return lambda alpha: np.where(alpha > 0, stored(shown(region) * (1 - alpha) + text * alpha),
                                  region)


def draw_text(rng, frames, photometric, ds, text, font, box, frames_with_text):
    """Draws text into every frame of frames_with_text, visible at the
    default display; returns its exact pixel mask."""
    x0, y0, x1, y1 = box
    palette = photometric == "PALETTE COLOR"
    alpha = glyphs(text, font, box, antialiased=not palette)
    mask = alpha > 0.25
    for i in frames_with_text:
        region = frames[i, y0:y1, x0:x1]
        if photometric == "RGB":
            colour = np.array(rng.choice([(255, 255, 255), (255, 255, 0), (0, 255, 0),
                                          (0, 255, 255), (255, 160, 0), (170, 170, 170)]), float)
            colour = visible_colour(colour * rng.uniform(0.6, 1.0), region.astype(float))
            blended = region * (1 - alpha[..., None]) + colour * alpha[..., None]
        elif palette:
            blended = np.where(mask, palette_ink(ds, region), region)
        else:
            lo, hi = display_range(ds, frames)
            blended = grey_text(rng, region, lo, hi, photometric)(alpha)
        info = np.iinfo(frames.dtype)
        frames[i, y0:y1, x0:x1] = np.clip(np.rint(blended), info.min, info.max)
    return mask


def blank_existing(frames, photometric, ds, boxes):
    if not boxes:
        return
    fill = brightest_palette_index(ds)[1] if photometric == "PALETTE COLOR" else \
        display_range(ds, frames)[0 if photometric != "MONOCHROME1" else 1]
    for x0, y0, x1, y1 in boxes:
        frames[:, y0:y1, x0:x1] = fill


def new_dataset(src, frames, photometric, modality, regions):
    ds = Dataset()
    for keyword in PIXEL_MODULE:
        if keyword in src:
            setattr(ds, keyword, src[keyword].value)
    ds.PhotometricInterpretation = photometric
    if photometric == "RGB":
        ds.PlanarConfiguration = 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        for keyword in ("WindowCenter", "WindowWidth", "RescaleSlope", "RescaleIntercept"):
            if keyword in ds:
                delattr(ds, keyword)
    n = frames.shape[0]
    ds.Rows, ds.Columns = frames.shape[1], frames.shape[2]
    if n > 1 or modality in ("US-MF", "XA", "NM"):
        ds.NumberOfFrames = n
        ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTime") if modality != "NM" \
            else pydicom.tag.Tag("FrameTime")
        ds.FrameTime = "33.3"
    ds.Modality = modality.split("-")[0]
    ds.SOPClassUID = SOP_CLASSES[modality]
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.Manufacturer = "Obscura burned-in set"
    if regions:
        seq = []
        for x0, y0, x1, y1 in regions:
            item = Dataset()
            item.RegionSpatialFormat, item.RegionDataType, item.RegionFlags = 1, 1, 0
            item.RegionLocationMinX0, item.RegionLocationMinY0 = x0, y0
            item.RegionLocationMaxX1, item.RegionLocationMaxY1 = x1 - 1, y1 - 1
            item.PhysicalUnitsXDirection, item.PhysicalUnitsYDirection = 3, 3
            item.PhysicalDeltaX, item.PhysicalDeltaY = 0.01, 0.01
            seq.append(item)
        ds.SequenceOfUltrasoundRegions = seq
    ds.PixelData = frames.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def encode(rng, ds):
    """Most images native; some RLE, JPEG-LS or JPEG 2000, all lossless."""
    syntax = rng.choices([None, RLELossless, JPEGLSLossless, JPEG2000Lossless],
                         weights=[7, 1, 1, 1])[0]
    if syntax is None:
        return "native"
    try:
        ds.compress(syntax)
        return syntax.name
    except Exception:  # no encoder for this pixel format: stay native
        return "native"


def make_image(rng, source, font_files):
    src, frames, photometric, existing, regions = load(source)
    blank_existing(frames, photometric, src, existing)
    identity = Identity(rng)
    ds = new_dataset(src, frames, photometric, source.modality, regions)
    identity.header(ds)
    ds.BurnedInAnnotation = rng.choice(["YES", "NO", None])
    if ds.BurnedInAnnotation is None:
        del ds.BurnedInAnnotation
    texts, masks, taken = [], [], []
    count = 0 if rng.random() < 0.25 else rng.randint(1, 6)
    for _ in range(count):
        roll = rng.random()
        if roll < 0.4:
            text, kind, matches = identity.matching()
        elif roll < 0.65:
            (text, kind), matches = identity.other(), None
        else:
            text, kind, matches = rng.choice(NOT_IDENTIFYING), "other", None
        size = rng.randint(8, 24)
        font_file = rng.choice(font_files)
        font = ImageFont.truetype(font_file, size)
        l, t, r, b = font.getbbox(text)
        want_inside = bool(regions) and rng.random() < 0.35
        box = place(rng, frames.shape[1:3], (r - l, b - t), regions, taken, want_inside)
        if box is None:
            continue
        taken.append(box)
        n = frames.shape[0]
        on = list(range(n)) if n == 1 or rng.random() < 0.8 else \
            sorted(rng.sample(range(n), rng.randint(1, n)))
        mask = draw_text(rng, frames, photometric, src, text, font, box, on)
        masks.append(mask)
        texts.append({"text": text, "box": box, "kind": kind, "identifying": kind != "other",
                      "matches_header": matches, "inside_region": inside(box, regions),
                      "frames": on, "font": os.path.basename(font_file), "size": size})
    ds.PixelData = frames.tobytes()
    syntax = encode(rng, ds)
    return ds, {"source": source.name, "modality": ds.Modality, "sop_class": ds.SOPClassUID,
                "frames": int(frames.shape[0]), "photometric": photometric,
                "transfer_syntax": syntax, "regions": regions, "existing_text_blanked":
                existing, "burned_in_annotation": ds.get("BurnedInAnnotation"),
                "texts": texts}, masks


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=320)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    font_files = fonts()
    args.out.mkdir(parents=True, exist_ok=True)
    weights = [s.weight for s in SOURCES]
    images, all_masks = {}, {}
    for number in range(1, args.count + 1):
        name = f"{number:04d}.dcm"
        source = rng.choices(SOURCES, weights=weights)[0]
        ds, entry, masks = make_image(rng, source, font_files)
        ds.save_as(args.out / name, enforce_file_format=True)
        images[name] = entry
        for i, mask in enumerate(masks):
            all_masks[f"{name}:{i}"] = mask
    key = {"generator": "tests/burned_in/make_set.py", "seed": args.seed, "count": args.count,
           "images": images}
    (args.out / "answer_key.json").write_text(json.dumps(key, indent=1))
    np.savez_compressed(args.out / "masks.npz", **all_masks)
    texts = [t for e in images.values() for t in e["texts"]]
    print(f"{args.count} images, {len(texts)} texts "
          f"({sum(t['identifying'] for t in texts)} identifying, "
          f"{sum(bool(t['matches_header']) for t in texts)} matching the header), "
          f"{sum(not e['texts'] for e in images.values())} without text -> {args.out}")


if __name__ == "__main__":
    main()

"""The catalogue of odd images: one case per pixel mode the image door accepts (and per way a mode reaches it),
the files' bytes at any size, and the expected colours computed from the stored values with the textbook formulas
(palette lookup, v / 65535, alpha "over" white, CMYK and JFIF YCbCr to RGB), never by asking Pillow or the door.

Used by the door's own tests (tests/data/test_images_odd_modes.py), and by the Subject, page and CLI tests.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from resnet_lab.data.images import WHITE, resize_square

RGB = tuple[int, int, int]
MODEL_INPUT = 32  # the model input side the door is asked to shrink towards (shrink_to)


# ---------------------------------------------------------------------------------------------------
# expected colours, from the stored values (independent of Pillow's conversions)


def over_white(rgb: tuple[float, ...], alpha: float) -> RGB:
    """Straight (non-premultiplied) colour composited "over" an opaque white background, 8-bit."""
    a = alpha / 255.0
    return tuple(int(round(c * a + w * (1.0 - a))) for c, w in zip(rgb, WHITE))  # type: ignore[return-value]


def grey(v: float) -> RGB:
    g = int(round(v))
    return (g, g, g)


def cmyk_to_rgb(c: int, m: int, y: int, k: int) -> RGB:
    """The naive subtractive model: R = 255 (1 - C)(1 - K), likewise G (M) and B (Y)."""
    return tuple(int(round((255 - v) * (255 - k) / 255)) for v in (c, m, y))  # type: ignore[return-value]


def ycbcr_to_rgb(y: int, cb: int, cr: int) -> RGB:
    """JFIF (ITU-R BT.601 full range) YCbCr to RGB, clipped to 0..255."""
    r = y + 1.402 * (cr - 128)
    g = y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128)
    b = y + 1.772 * (cb - 128)
    return tuple(int(min(255, max(0, round(v)))) for v in (r, g, b))  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------------
# the catalogue: one case per mode (and per way a mode reaches the door)

PALETTE = [(230, 20, 20), (20, 160, 40), (30, 60, 220), (250, 200, 0)]
PAL_FLAT = [c for rgb in PALETTE for c in rgb] + [0] * (768 - 3 * len(PALETTE))


@dataclass(frozen=True)
class Case:
    """An odd image: ``values`` are the stored pixel values of the quadrants (top-left, top-right,
    bottom-left, bottom-right, in the stored orientation), ``colours`` what each must become (RGB 0..255)."""

    name: str
    fmt: str  # the file format it is saved in
    mode: str  # the mode Pillow opens the file in (asserted: the file really holds the odd mode)
    values: tuple
    colours: tuple[RGB, RGB, RGB, RGB]
    tol: int = 2  # per-channel tolerance, in 1/255 (rounding; lossy JPEG needs more)
    make_mode: str | None = None  # the mode the quadrants are drawn in, when it differs from ``mode``
    save: dict = field(default_factory=dict)
    prepare: Callable[[Image.Image], Image.Image] | None = None  # e.g. attach a palette
    orientation: int = 1  # EXIF orientation written into the file (1: upright)
    minmax: bool = False  # grey levels are min-max scaled over the values present in the image

    def colours_for(self, w: int, h: int) -> tuple[RGB, ...]:
        """The quadrant colours of a stored ``w`` x ``h`` image: for a min-max scaled mode they depend on
        which quadrants exist (a 1-pixel-wide strip has no right half)."""
        if not self.minmax:
            return self.colours
        present = {quadrant_of(x, y, w, h) for x in (0, w - 1) for y in (0, h - 1)}
        lo, hi = min(self.values[q] for q in present), max(self.values[q] for q in present)
        return tuple(grey((v - lo) / (hi - lo) * 255) if hi > lo else grey(0) for v in self.values)


def _palette(im: Image.Image) -> Image.Image:
    im.putpalette(PAL_FLAT)
    return im


_I16 = (0, 1000, 40000, 65535)
_LA = ((0, 255), (200, 0), (100, 128), (255, 255))
_RGBA = ((230, 20, 20, 255), (20, 160, 40, 0), (30, 60, 220, 128), (0, 0, 0, 64))
_CMYK = ((0, 255, 255, 0), (200, 0, 100, 30), (50, 100, 150, 60), (0, 0, 0, 0))
_YCC = ((100, 50, 200), (180, 128, 128), (60, 200, 90), (235, 110, 140))
_ALPHA = bytes([0, 128, 255, 255])  # per palette entry (a PNG tRNS chunk)

CASES: dict[str, Case] = {c.name: c for c in [
    Case("1", "PNG", "1", (0, 255, 255, 0), (grey(0), grey(255), grey(255), grey(0))),
    Case("1-tiff", "TIFF", "1", (255, 0, 0, 255), (grey(255), grey(0), grey(0), grey(255))),
    Case("L", "PNG", "L", (0, 60, 180, 255), (grey(0), grey(60), grey(180), grey(255))),
    Case("L+key", "PNG", "L", (0, 60, 180, 255), (grey(0), WHITE, grey(180), grey(255)), save={"transparency": 60}),
    Case("LA", "PNG", "LA", _LA, tuple(over_white((g, g, g), a) for g, a in _LA)),
    Case("P", "PNG", "P", (0, 1, 2, 3), tuple(PALETTE), prepare=_palette),
    Case("P+key", "PNG", "P", (0, 1, 2, 3), (WHITE, *PALETTE[1:]), prepare=_palette, save={"transparency": 0}),
    Case("P+alpha", "PNG", "P", (0, 1, 2, 3), tuple(over_white(c, a) for c, a in zip(PALETTE, _ALPHA)),
         prepare=_palette, save={"transparency": _ALPHA}),
    Case("P-gif+key", "GIF", "P", (0, 1, 2, 3), (*PALETTE[:2], WHITE, PALETTE[3]), prepare=_palette,
         save={"transparency": 2}),
    Case("P-bmp", "BMP", "P", (0, 1, 2, 3), tuple(PALETTE), prepare=_palette),
    Case("P-tiff", "TIFF", "P", (0, 1, 2, 3), tuple(PALETTE), prepare=_palette),
    Case("PA", "TIFF", "PA", ((0, 255), (1, 0), (2, 128), (3, 255)),
         (PALETTE[0], WHITE, over_white(PALETTE[2], 128), PALETTE[3]), prepare=_palette),
    Case("RGB", "PNG", "RGB", tuple(PALETTE), tuple(PALETTE)),
    Case("RGB+key", "PNG", "RGB", tuple(PALETTE), (PALETTE[0], WHITE, *PALETTE[2:]), save={"transparency": PALETTE[1]}),
    Case("RGBA", "PNG", "RGBA", _RGBA, tuple(over_white(v[:3], v[3]) for v in _RGBA)),
    Case("RGBA-tiff", "TIFF", "RGBA", _RGBA, tuple(over_white(v[:3], v[3]) for v in _RGBA)),
    Case("CMYK-tiff", "TIFF", "CMYK", _CMYK, tuple(cmyk_to_rgb(*v) for v in _CMYK)),
    Case("CMYK-jpeg", "JPEG", "CMYK", _CMYK, tuple(cmyk_to_rgb(*v) for v in _CMYK), tol=14, save={"quality": 95}),
    Case("YCbCr-tiff", "TIFF", "YCbCr", _YCC, tuple(ycbcr_to_rgb(*v) for v in _YCC)),
    Case("I;16", "PNG", "I;16", _I16, tuple(grey(v / 257) for v in _I16)),
    Case("I;16+key", "PNG", "I;16", _I16, (grey(0), WHITE, grey(40000 / 257), grey(255)), save={"transparency": 1000}),
    Case("I;16-tiff", "TIFF", "I;16", _I16, tuple(grey(v / 257) for v in _I16)),
    Case("I;16B-tiff", "TIFF", "I;16B", _I16, tuple(grey(v / 257) for v in _I16), make_mode="I;16B"),
    Case("I", "TIFF", "I", (0, 1000, 30000, 65535), tuple(grey(v / 257) for v in (0, 1000, 30000, 65535))),
    Case("I-wide", "TIFF", "I", (-50_000, 0, 100_000, 150_000),  # outside 16 bits: min-max over the image
         tuple(grey((v + 50_000) / 200_000 * 255) for v in (-50_000, 0, 100_000, 150_000)), minmax=True),
    Case("F", "TIFF", "F", (0.0, 0.25, 0.6, 1.0), tuple(grey(v * 255) for v in (0.0, 0.25, 0.6, 1.0))),
    Case("F-wide", "TIFF", "F", (-1.0, 0.0, 1.0, 3.0),  # outside [0, 1]: min-max over the image
         tuple(grey((v + 1) / 4 * 255) for v in (-1.0, 0.0, 1.0, 3.0)), minmax=True),
    Case("RGB-jpeg", "JPEG", "RGB", tuple(PALETTE), tuple(PALETTE), tol=14, save={"quality": 95, "subsampling": 0}),
    Case("L-jpeg", "JPEG", "L", (0, 60, 180, 255), (grey(0), grey(60), grey(180), grey(255)), tol=10,
         save={"quality": 95}),
    # EXIF orientation 6: "rotate 90 degrees clockwise to display"; 8: counter-clockwise; 3: half a turn
    Case("RGB-jpeg-exif6", "JPEG", "RGB", tuple(PALETTE), tuple(PALETTE), tol=14,
         save={"quality": 95, "subsampling": 0}, orientation=6),
    Case("CMYK-jpeg-exif8", "JPEG", "CMYK", _CMYK, tuple(cmyk_to_rgb(*v) for v in _CMYK), tol=14,
         save={"quality": 95}, orientation=8),
    Case("P-png-exif3", "PNG", "P", (0, 1, 2, 3), tuple(PALETTE), prepare=_palette, orientation=3),
    Case("I;16-tiff-exif6", "TIFF", "I;16", _I16, tuple(grey(v / 257) for v in _I16), orientation=6),
]}


# ---------------------------------------------------------------------------------------------------
# building the files and the reference


def _left(x: int, w: int) -> bool:
    """Column ``x`` of a ``w``-wide stored image is in the left half (the middle column of an odd width too)."""
    return x < (w + 1) // 2


def quadrant_of(x: int, y: int, w: int, h: int) -> int:
    """0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right, for a stored pixel."""
    return (0 if _left(y, h) else 2) + (0 if _left(x, w) else 1)


def stored(case: Case, w: int, h: int) -> Image.Image:
    """The image as stored in the file (before EXIF orientation), ``w`` x ``h``."""
    mode = case.make_mode or case.mode
    if mode.startswith("I;16"):  # Pillow's paste() garbles a colour on 16-bit images: build from an array
        ys, xs = np.mgrid[0:h, 0:w]
        q = np.where(ys < (h + 1) // 2, 0, 2) + np.where(xs < (w + 1) // 2, 0, 1)
        a = np.asarray(case.values, dtype=">u2" if mode == "I;16B" else "<u2")[q]
        return Image.frombytes(mode, (w, h), a.tobytes())
    im = Image.new(mode, (w, h), case.values[0])
    xs, ys = (w + 1) // 2, (h + 1) // 2
    for q, box in ((1, (xs, 0, w, ys)), (2, (0, ys, xs, h)), (3, (xs, ys, w, h))):
        if box[0] < box[2] and box[1] < box[3]:
            im.paste(case.values[q], box)
    return case.prepare(im) if case.prepare else im


def encoded(case: Case, w: int, h: int) -> bytes:
    """The file's bytes for a ``w`` x ``h`` (stored size) image of ``case``."""
    im = stored(case, w, h)
    kw = dict(case.save)
    if case.orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = case.orientation
        kw["exif"] = exif.tobytes() if case.fmt != "TIFF" else exif
    buf = io.BytesIO()
    im.save(buf, case.fmt, **kw)
    return buf.getvalue()


def upright_size(case: Case, w: int, h: int) -> tuple[int, int]:
    """Display (width, height) of a stored ``w`` x ``h`` image."""
    return (h, w) if case.orientation in (5, 6, 7, 8) else (w, h)


def stored_pixel(case: Case, x, y, w: int, h: int) -> tuple:
    """The stored pixel shown at display pixel (x, y) (EXIF orientations 1, 3, 6, 8); x and y may be
    integers or index arrays."""
    if case.orientation == 6:  # stored rotated 90 degrees clockwise for display: display (x, y) <- stored (y, h-1-x)
        return y, h - 1 - x
    if case.orientation == 8:
        return w - 1 - y, x
    if case.orientation == 3:
        return w - 1 - x, h - 1 - y
    return x, y


def reference(case: Case, w: int, h: int) -> torch.Tensor:
    """The expected decoded image (display orientation) as a 3 x H x W float tensor in [0, 1]."""
    dw, dh = upright_size(case, w, h)
    ys, xs = np.mgrid[0:dh, 0:dw]
    sx, sy = stored_pixel(case, xs, ys, w, h)  # works elementwise on index grids too
    q = np.where(sy < (h + 1) // 2, 0, 2) + np.where(sx < (w + 1) // 2, 0, 1)
    out = (np.asarray(case.colours_for(w, h), dtype=np.float32) / 255.0)[q]
    return torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1).contiguous()


def samples(n: int) -> list[int]:
    """Pixel positions along an axis of ``n`` pixels that lie well inside a quadrant."""
    return [n // 4, (3 * n) // 4] if n >= 4 else [0]


def expected_colour(case: Case, w: int, h: int, out_w: int, out_h: int, ox: int, oy: int) -> RGB:
    """What output pixel (ox, oy) of a (possibly shrunk) ``out_w`` x ``out_h`` decode must show."""
    dw, dh = upright_size(case, w, h)
    x = min(dw - 1, int((ox + 0.5) * dw / out_w))
    y = min(dh - 1, int((oy + 0.5) * dh / out_h))
    sx, sy = stored_pixel(case, x, y, w, h)
    return case.colours_for(w, h)[quadrant_of(sx, sy, w, h)]


def check_colours(case: Case, t: torch.Tensor, w: int, h: int) -> None:
    """The decoded tensor shows each quadrant's expected colour at points well inside it."""
    assert t.dtype == torch.float32 and t.dim() == 3 and t.shape[0] == 3
    assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0
    out_h, out_w = int(t.shape[1]), int(t.shape[2])
    for oy in samples(out_h):
        for ox in samples(out_w):
            want = torch.tensor(expected_colour(case, w, h, out_w, out_h, ox, oy), dtype=torch.float32) / 255
            got = t[:, oy, ox]
            assert torch.allclose(got, want, atol=(case.tol + 0.5) / 255), (
                case.name, (w, h), (out_w, out_h), (ox, oy), (got * 255).round().tolist(), (want * 255).tolist())


# stored sizes: smaller than the model input, equal, slightly larger, several times larger (the shrink path),
# very large, and strips of odd aspect ratio
SIZES = {
    "smaller": (20, 15),
    "equal": (MODEL_INPUT, MODEL_INPUT),
    "slightly-larger": (40, 36),
    "4x": (200, 150),
    "9x": (300, 300),
    "very-large": (1600, 1200),
    "1xN": (1, 300),
    "Nx1": (300, 1),
    "7x500": (7, 500),
}


# ---------------------------------------------------------------------------------------------------
# an archive of odd images (the Fine-tune page's and the CLI's import): every usable one trains as its colours

EXT = {"PNG": "png", "GIF": "gif", "BMP": "bmp", "TIFF": "tif", "JPEG": "jpg"}
# (class folder, case, stored size): usable images, several of them many times the training size
ZIP_USABLE = (
    ("palette", "P", (200, 150)), ("palette", "P+key", (40, 36)), ("palette", "P+alpha", (300, 300)),
    ("palette", "P-gif+key", (200, 150)), ("palette", "P-bmp", (64, 48)), ("palette", "PA", (200, 150)),
    ("deep", "I;16", (300, 300)), ("deep", "I;16+key", (40, 36)), ("deep", "I;16B-tiff", (200, 150)),
    ("deep", "F", (64, 64)), ("deep", "1", (200, 150)), ("deep", "CMYK-jpeg-exif8", (200, 150)),
    ("deep", "LA", (40, 36)),
)
# strips thinner than the import's 16 px minimum side, and a cut-off file: listed as skipped, with the reason
ZIP_SKIPPED = (("palette", "P", (1, 300), "too_small"), ("deep", "I;16", (300, 1), "too_small"),
               ("deep", "F", (7, 500), "too_small"), ("deep", "I;16", (300, 300), "truncated"))


def odd_zip() -> bytes:
    """A zip of two class folders holding the :data:`ZIP_USABLE` and :data:`ZIP_SKIPPED` images."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, (cls, name, (w, h)) in enumerate(ZIP_USABLE):
            zf.writestr(f"odd/{cls}/{i}.{EXT[CASES[name].fmt]}", encoded(CASES[name], w, h))
        for i, (cls, name, (w, h), kind) in enumerate(ZIP_SKIPPED):
            data = encoded(CASES[name], w, h)
            zf.writestr(f"odd/{cls}/{kind}{i}.{EXT[CASES[name].fmt]}", data[: len(data) // 2] if kind == "truncated"
                        else data)
    return buf.getvalue()


def check_imported(ds, image_size: int) -> None:
    """Every usable image of :func:`odd_zip` is in the dataset (train + val), under its class, as its expected
    colours resized like the training images; nothing else is."""
    x = torch.cat([ds.x_train, ds.x_val])
    y = torch.cat([ds.y_train, ds.y_val])
    assert ds.class_names == ("deep", "palette")
    assert sorted(y.tolist()) == sorted(ds.class_names.index(cls) for cls, _, _ in ZIP_USABLE)
    pts = [image_size // 4, 3 * image_size // 4]
    unmatched = list(range(len(x)))
    for cls, name, (w, h) in ZIP_USABLE:
        want = resize_square(reference(CASES[name], w, h), image_size)
        tol = (CASES[name].tol + 3) / 255  # + the uint8 rounding of the cache
        hits = [i for i in unmatched if int(y[i]) == ds.class_names.index(cls)
                and float((x[i] - want).abs()[:, pts][:, :, pts].max()) <= tol]
        assert hits, (name, (w, h))
        unmatched.remove(hits[0])
    assert not unmatched

"""The one safe door for user images: bytes or a path in, an RGB float tensor (or a clear refusal) out.

Every image a person brings (an upload, a file inside an imported archive) goes through
:func:`decode_image`, which returns a float32 ``3 x H x W`` tensor in [0, 1] or raises
:class:`ImageRejected` (a ``ValueError``) whose message says, in plain words, why it was refused.
What it guards against:

* **Format allowlist**: only JPEG (a multi-picture MPO JPEG: its first image), PNG, GIF (first frame),
  BMP, WEBP and TIFF (first page) are parsed;
  Pillow is asked to try only those plugins. Anything else (ICO, PDF, SVG, HEIC, a text file with an
  image extension, ...) is refused, and common impostors are named in the message.
* **Size limits**: the file size is checked before it is read (``max_bytes``) and the pixel count
  from the header before any pixel is decoded (``max_pixels``). Pillow's own
  ``DecompressionBombWarning``/``DecompressionBombError`` become refusals too, and the size is
  checked again after decoding (a GIF frame may grow the canvas while it loads).
* **Truncated or corrupt files** are refused, never padded with grey: decoding relies on Pillow's
  ``ImageFile.LOAD_TRUNCATED_IMAGES`` being False (its default), and, even if some other code
  switched that global on, a JPEG must have an EOI marker after its last scan and a PNG an IEND
  chunk after its last IDAT.
* **Odd modes** become RGB: palette (with or without transparency), RGBA/LA/PA (composited on
  white), CMYK, YCbCr, 1-bit, 16-bit (``I;16*``, with or without a transparency key), 32-bit integer
  (``I``) and float (``F``) grey.
* **EXIF orientation** is applied (``ImageOps.exif_transpose``), so a phone photo stands upright.
* **Convert, then shrink.** When the caller asks for a smaller image (``shrink_to``), the box
  reduction runs on the converted RGB image, never on the decoded mode: Pillow's ``reduce`` refuses
  palette, 1-bit and 16-bit images ("image has wrong mode"), averaging palette indices would be
  meaningless anyway, and min-max scaled ``I``/``F`` images must be scaled over all their pixels, not
  over block averages. (Only JPEG's DCT scaling, which yields the same mode, comes before.)

:func:`resize_square` turns a decoded image into a square training image (shorter side resized with
antialiasing, then a centre crop).
"""

from __future__ import annotations

import io
import os
import struct
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from ..fmt import format_bytes

ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")  # Pillow format names we parse
_JPEG_FAMILY = ("JPEG", "MPO")  # Pillow opens a multi-picture JPEG (many phone/3D cameras) as MPO
# file name endings of the allowed formats (e.g. for an upload widget's type filter)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".dib", ".webp", ".tif", ".tiff")
DEFAULT_MAX_PIXELS = 50_000_000  # width x height; a 48-50 MP phone photo fits, a pixel-flood bomb does not
DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # largest encoded file read, bytes
WHITE = (255, 255, 255)  # transparent pixels are composited onto this background

# rejection kinds (ImageRejected.kind), so callers can group reasons without parsing messages
EMPTY = "empty"
TOO_LARGE = "too_large"
TOO_SMALL = "too_small"
UNSUPPORTED = "unsupported"
NOT_IMAGE = "not_image"
CORRUPT = "corrupt"
TRUNCATED = "truncated"

_OPEN_LOCK = threading.Lock()  # serializes the (brief) warnings-filter swap around Image.open

ImageSource = bytes | bytearray | memoryview | str | os.PathLike[str]


class ImageRejected(ValueError):
    """An image the safe door refused. ``kind`` is one of empty, too_large, too_small, unsupported,
    not_image, corrupt, truncated; the message is a sentence meant for the person who gave the file."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:  # survive pickling (e.g. from a worker process)
        return (type(self), (str(self), self.kind))


def decode_image(
    data: ImageSource,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    min_side: int = 1,
    max_bytes: int = DEFAULT_MAX_BYTES,
    shrink_to: int | None = None,
) -> torch.Tensor:
    """Decode one untrusted image into a float32 ``3 x H x W`` RGB tensor with values in [0, 1].

    ``data`` is the encoded file (bytes) or a path to it. The image is refused with
    :class:`ImageRejected` when the file is empty or larger than ``max_bytes``, its format is not one
    of :data:`ALLOWED_FORMATS`, its header claims more than ``max_pixels`` pixels (checked before
    decoding), its shorter side is below ``min_side`` px, or its data is truncated or corrupt.

    H x W is the upright size (after EXIF orientation). Transparent pixels are composited on white
    (:data:`WHITE`); grey images are repeated into 3 channels. 16-bit grey is scaled by 1/65535; 32-bit
    integer grey by 1/255 or 1/65535 when its values fit those ranges, else min-max scaled; float grey
    is kept when it lies in [0, 1], else min-max scaled (over the whole image, before any shrinking).

    ``shrink_to`` (px) lets a caller who will downscale anyway trade resolution for speed: the image
    may come back smaller (JPEG DCT scaling while decoding, then an integer box reduction of the RGB
    image), but its shorter side stays at least ``shrink_to`` px (or the original size, if that is
    smaller). None: full size. Every mode gives the same colours with or without it (up to the
    averaging of neighbouring pixels).
    """
    im = _open_checked(data, max_pixels=max_pixels, min_side=min_side, max_bytes=max_bytes, shrink_to=shrink_to)
    try:
        rgb = _shrink(_to_rgb(im), shrink_to)  # convert first: reduce() refuses P, 1 and I;16 images
    except ImageRejected:
        raise
    except MemoryError as e:
        raise ImageRejected("the image is too large to convert to RGB", TOO_LARGE) from e
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageRejected(f"the image could not be converted to RGB ({_short(e)})", CORRUPT) from e
    arr = np.asarray(rgb, dtype=np.uint8)  # H x W x 3
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).to(torch.float32).div_(255.0).contiguous()


def resize_square(img: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``img`` (C x H x W or N x C x H x W, float) so its shorter side is ``size`` px, then crop
    the centre ``size x size``. Bilinear with antialiasing (so downscaling averages instead of aliasing),
    clamped back to [0, 1]. Returns a new float32 tensor of shape (N x) C x size x size.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if img.dim() not in (3, 4):
        raise ValueError(f"img must be C x H x W or N x C x H x W, got shape {tuple(img.shape)}")
    x = img[None] if img.dim() == 3 else img
    x = x.to(torch.float32)
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if h < 1 or w < 1:
        raise ValueError(f"cannot resize an empty image of size {w}x{h}")
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[..., top : top + size, left : left + size].clamp(0.0, 1.0).contiguous()
    return x[0] if img.dim() == 3 else x


# ---------------------------------------------------------------------------------------------------
# opening: size, format and bomb checks before any pixel is decoded


def _read(data: ImageSource, max_bytes: int) -> bytes:
    """The encoded bytes, refusing empty and oversized input before reading a large file."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    elif isinstance(data, (str, os.PathLike)):
        path = Path(data)
        try:
            size = path.stat().st_size
            if not path.is_file():
                raise ImageRejected(f"{path.name} is not a regular file", NOT_IMAGE)
            if size > max_bytes:
                raise ImageRejected(
                    f"the file is {format_bytes(size)}, larger than the {format_bytes(max_bytes)} limit for one image",
                    TOO_LARGE,
                )
            with path.open("rb") as f:
                raw = f.read(max_bytes + 1)
        except OSError as e:
            raise ImageRejected(f"the file could not be read ({_short(e)})", CORRUPT) from e
    else:
        raise TypeError(f"decode_image needs bytes or a path, got {type(data).__name__}")
    if not raw:
        raise ImageRejected("the file is empty (0 bytes)", EMPTY)
    if len(raw) > max_bytes:
        raise ImageRejected(
            f"the file is {format_bytes(len(raw))}, larger than the {format_bytes(max_bytes)} limit for one image",
            TOO_LARGE,
        )
    return raw


def _open_checked(
    data: ImageSource, *, max_pixels: int, min_side: int, max_bytes: int, shrink_to: int | None
) -> Image.Image:
    """Open with the allowlisted plugins, check the header size, then decode the pixels (first frame) in
    their own mode, upright. A JPEG may be decoded at a reduced DCT scale when ``shrink_to`` is given."""
    raw = _read(data, max_bytes)
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            # Pillow warns (rather than raises) between MAX_IMAGE_PIXELS and twice that: make it an error
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(raw), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise ImageRejected(
            f"the image header claims a size above the {max_pixels:,}-pixel limit (possible decompression bomb)",
            TOO_LARGE,
        ) from e
    except Image.UnidentifiedImageError as e:
        raise _unidentified(raw) from e
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, KeyError) as e:
        raise ImageRejected(f"the image header is corrupt ({_short(e)})", CORRUPT) from e

    fmt = im.format or "?"
    if fmt not in ALLOWED_FORMATS and fmt not in _JPEG_FAMILY:  # defensive: formats= restricts the plugins
        raise ImageRejected(f"{fmt} images are not supported; allowed: {_allowed()}", UNSUPPORTED)
    _check_size(im.size, fmt, max_pixels, min_side)
    if fmt in _JPEG_FAMILY and not _jpeg_complete(raw):
        raise ImageRejected("the JPEG file is truncated (no end-of-image marker after its last scan)", TRUNCATED)
    if fmt == "PNG" and not _png_complete(raw):
        raise ImageRejected("the PNG file is truncated (no IEND chunk after its image data)", TRUNCATED)

    try:
        if fmt in _JPEG_FAMILY and shrink_to is not None:
            im.draft(None, (shrink_to, shrink_to))  # DCT scaling: keeps both sides >= shrink_to
        im.load()  # first frame / first page only
    except Image.DecompressionBombError as e:
        raise ImageRejected(f"the image grows beyond the {max_pixels:,}-pixel limit while decoding", TOO_LARGE) from e
    except MemoryError as e:
        raise ImageRejected("the image is too large to decode", TOO_LARGE) from e
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, KeyError, struct.error) as e:
        msg = str(e)
        if "truncated" in msg.lower() or isinstance(e, EOFError):
            raise ImageRejected(f"the {fmt} file is truncated ({_short(e)})", TRUNCATED) from e
        raise ImageRejected(f"the {fmt} data is corrupt ({_short(e)})", CORRUPT) from e
    _check_size(im.size, fmt, max_pixels, 1)  # a GIF frame may have grown the canvas

    try:
        upright = ImageOps.exif_transpose(im)
        if upright is not None:
            im = upright
    except Exception:  # a broken EXIF block only loses the orientation, never the image  # noqa: BLE001
        pass

    return im


def _shrink(rgb: Image.Image, shrink_to: int | None) -> Image.Image:
    """Box-average an RGB image by the largest integer factor that keeps its shorter side >= ``shrink_to``
    (antialiased and cheap); unchanged when ``shrink_to`` is None or the image is already small."""
    if shrink_to is None:
        return rgb
    factor = min(rgb.size) // max(1, shrink_to)
    return rgb.reduce(factor) if factor >= 2 else rgb


def _check_size(size: tuple[int, int], fmt: str, max_pixels: int, min_side: int) -> None:
    w, h = size
    if w < 1 or h < 1:
        raise ImageRejected(f"the {fmt} header gives an empty size {w}x{h}", CORRUPT)
    if w * h > max_pixels:
        raise ImageRejected(
            f"the image is {w}x{h} = {w * h:,} pixels, above the {max_pixels:,}-pixel limit "
            "(possible decompression bomb; downscale it first)",
            TOO_LARGE,
        )
    if min(w, h) < min_side:
        raise ImageRejected(f"the image is only {w}x{h} px; at least {min_side} px on each side is needed", TOO_SMALL)


def _jpeg_complete(raw: bytes) -> bool:
    """True when an EOI marker (FFD9) follows the last start-of-scan (FFDA).

    Entropy-coded data cannot contain FF DA or FF D9 (a data FF is stuffed as FF 00), so the last SOS
    in the file starts the last scan (an EXIF thumbnail's markers come earlier; data appended after the
    image, as some cameras do, carries its own EOI).
    """
    sos = raw.rfind(b"\xff\xda")
    return sos >= 0 and raw.rfind(b"\xff\xd9") > sos


def _png_complete(raw: bytes) -> bool:
    """True when the IEND chunk type follows the last IDAT chunk type (a cut-off PNG has no IEND)."""
    return raw.rfind(b"IEND") > raw.rfind(b"IDAT") >= 0


_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"%PDF", "a PDF document"),
    (0, b"\x00\x00\x01\x00", "an ICO icon"),
    (0, b"\x00\x00\x02\x00", "a CUR cursor"),
    (0, b"8BPS", "a Photoshop (PSD) file"),
    (0, b"PK\x03\x04", "a zip archive"),
    (0, b"\x1f\x8b", "a gzip archive"),
    (0, b"Rar!", "a RAR archive"),
    (0, b"7z\xbc\xaf", "a 7z archive"),
    (0, b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (0, b"\xff\x4f\xff\x51", "a JPEG 2000 codestream"),
    (0, b"qoif", "a QOI image"),
    (0, b"\xff\x0a", "a JPEG XL image"),
    (0, b"\x00\x00\x00\x0cJXL ", "a JPEG XL image"),
    (0, b"P1", "a PBM/PGM/PPM (Netpbm) image"),
    (0, b"P2", "a PBM/PGM/PPM (Netpbm) image"),
    (0, b"P3", "a PBM/PGM/PPM (Netpbm) image"),
    (0, b"P4", "a PBM/PGM/PPM (Netpbm) image"),
    (0, b"P5", "a PBM/PGM/PPM (Netpbm) image"),
    (0, b"P6", "a PBM/PGM/PPM (Netpbm) image"),
)


_ALLOWED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def _unidentified(raw: bytes) -> ImageRejected:
    """Name what the bytes look like when no allowed plugin accepted them."""
    head = raw[:64]
    for magic, fmt in _ALLOWED_MAGIC + ((b"RIFF", "WEBP"),):
        if fmt == "BMP" and _looks_like_text(raw[:4096]):
            continue  # "BM" is a short signature: "BMW service notes.txt" is text, not a broken bitmap
        if head.startswith(magic) and (fmt != "WEBP" or head[8:12] == b"WEBP"):
            return ImageRejected(f"the file starts like a {fmt} image but its header is corrupt", CORRUPT)
    what = None
    for offset, magic, name in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            what = name
            break
    if what is None and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            what = "a HEIC/HEIF photo (export it as JPEG or PNG)"
        elif brand in (b"avif", b"avis"):
            what = "an AVIF image"
        else:
            what = "a video or ISO media file"
    if what is None and head.lstrip()[:5].lower() in (b"<svg ", b"<?xml"):
        what = "an SVG/XML file"
    if what is not None:
        kind = NOT_IMAGE if "archive" in what or "document" in what else UNSUPPORTED
        return ImageRejected(f"this is {what}, not a supported image; allowed: {_allowed()}", kind)
    if _looks_like_text(raw[:4096]):
        return ImageRejected(f"this is a text file, not an image; allowed: {_allowed()}", NOT_IMAGE)
    return ImageRejected(f"this is not a recognised image; allowed: {_allowed()}", NOT_IMAGE)


def _looks_like_text(chunk: bytes) -> bool:
    if b"\x00" in chunk:
        return False
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(chunk) - 3  # only a multi-byte character cut at the end
    return True


# ---------------------------------------------------------------------------------------------------
# modes -> RGB


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert a decoded image of any Pillow mode to 8-bit RGB (transparency composited on white).

    High-depth grey (``I;16*``, ``I``, ``F``) is scaled by :func:`_grey_high_depth` before anything
    else: Pillow's own ``convert`` clips those values at 255 instead of scaling them.
    """
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _grey_high_depth(im)
    if mode == "RGB" and not im.has_transparency_data:
        return im
    if im.has_transparency_data:  # an alpha band, a palette with alpha, or a transparency key
        rgba = im.convert("RGBA")  # applies a palette/grey/RGB transparency key; un-premultiplies La/RGBa
        out = Image.new("RGB", rgba.size, WHITE)
        out.paste(rgba, mask=rgba)  # out = a * colour + (1 - a) * white: "over" on an opaque background
        return out
    try:
        return im.convert("RGB")  # 1, L, P, CMYK, YCbCr, RGBX, HSV ...
    except (ValueError, OSError) as e:
        raise ImageRejected(f"pixel mode {mode} cannot be converted to RGB", UNSUPPORTED) from e


def _grey_high_depth(im: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float grey to 8-bit RGB (see decode_image for the scaling); pixels
    equal to a transparency key (a 16-bit PNG's tRNS chunk) become :data:`WHITE`."""
    a = np.asarray(im)
    if a.ndim != 2:
        raise ImageRejected(f"pixel mode {im.mode} with shape {a.shape} is not supported", UNSUPPORTED)
    g = _sixteen_bit_levels(a) if im.mode.startswith("I;16") else _wide_levels(a, im.mode)
    key = im.info.get("transparency")
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        g[a == key] = WHITE[0]  # a key is all or nothing: keyed pixels show the background
    return Image.fromarray(np.repeat(g[:, :, None], 3, axis=2), "RGB")


def _sixteen_bit_levels(a: np.ndarray) -> np.ndarray:
    """uint16 grey -> uint8, round(v * 255 / 65535) in exact integer arithmetic (v / 257 never ties)."""
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _wide_levels(a: np.ndarray, mode: str) -> np.ndarray:
    """32-bit integer (``I``) or float (``F``) grey -> uint8: a fixed scale when the values fit 8 or 16
    bits (``I``) or [0, 1] (``F``), else min-max over the whole image; non-finite values count as 0."""
    a = a.astype(np.float64)
    finite = np.isfinite(a)
    if not finite.all():
        a = np.where(finite, a, 0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if mode == "I" and lo >= 0 and hi <= 255:
        a = a / 255.0
    elif mode == "I" and lo >= 0 and hi <= 65535:
        a = a / 65535.0
    elif mode == "F" and lo >= 0 and hi <= 1:
        pass
    else:
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    return np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)


def _allowed() -> str:
    return ", ".join(ALLOWED_FORMATS)


def _short(e: BaseException) -> str:
    s = str(e) or type(e).__name__
    return s if len(s) <= 160 else s[:157] + "..."

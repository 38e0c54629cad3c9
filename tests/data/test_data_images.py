"""The safe image door: every odd input becomes an RGB [0, 1] tensor or a clear ImageRejected."""

import io
import pickle
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from resnet_lab.data.images import (
    ALLOWED_FORMATS,
    ImageRejected,
    decode_image,
    resize_square,
)


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def noise(w: int = 30, h: int = 20, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def check_rgb(t: torch.Tensor, h: int, w: int) -> None:
    assert t.dtype == torch.float32
    assert tuple(t.shape) == (3, h, w)
    assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0


# ---------------------------------------------------------------------------------------------------
# formats and modes


@pytest.mark.parametrize("fmt", ALLOWED_FORMATS)
def test_every_allowed_format_decodes(fmt):
    im = noise()
    if fmt == "GIF":
        im = im.convert("P")
    t = decode_image(encode(im, fmt))
    check_rgb(t, 20, 30)


def _i16() -> Image.Image:
    return Image.fromarray((np.arange(600).reshape(20, 30) * 100).astype(np.uint16))


MODES = {
    "P": lambda: (noise().convert("P"), "PNG", {}),
    "P+transparency": lambda: (noise().convert("P"), "PNG", {"transparency": 0}),
    "RGBA": lambda: (noise().convert("RGBA"), "PNG", {}),
    "LA": lambda: (noise().convert("LA"), "PNG", {}),
    "CMYK-jpeg": lambda: (noise().convert("CMYK"), "JPEG", {}),
    "CMYK-tiff": lambda: (noise().convert("CMYK"), "TIFF", {}),
    "I;16": lambda: (_i16(), "PNG", {}),
    "I": lambda: (Image.fromarray((np.arange(600).reshape(20, 30) * 1000).astype(np.int32)), "TIFF", {}),
    "F": lambda: (Image.fromarray((np.arange(600).reshape(20, 30) * 0.5).astype(np.float32)), "TIFF", {}),
    "1": lambda: (noise().convert("1"), "PNG", {}),
    "L": lambda: (noise().convert("L"), "PNG", {}),
}


@pytest.mark.parametrize("case", list(MODES))
def test_odd_modes_become_rgb(case):
    im, fmt, kw = MODES[case]()
    data = encode(im, fmt, **kw)
    assert Image.open(io.BytesIO(data)).mode == im.mode  # the file really holds the odd mode
    check_rgb(decode_image(data), 20, 30)


def test_palette_transparency_composites_on_white():
    im = Image.new("P", (4, 4), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)  # index 0 black (transparent), 1 red
    im.putpixel((1, 1), 1)
    t = decode_image(encode(im, "PNG", transparency=0))
    assert torch.equal(t[:, 0, 0], torch.ones(3))  # transparent -> white, not black
    assert torch.equal(t[:, 1, 1], torch.tensor([1.0, 0.0, 0.0]))


def test_rgba_and_la_composite_on_white():
    a = np.zeros((2, 2, 4), dtype=np.uint8)
    a[0, 0] = (0, 0, 255, 0)  # fully transparent blue -> white
    a[0, 1] = (0, 0, 255, 255)  # opaque blue
    a[1, 0] = (0, 0, 0, 128)  # half-transparent black -> mid grey
    t = decode_image(encode(Image.fromarray(a, "RGBA"), "PNG"))
    assert torch.equal(t[:, 0, 0], torch.ones(3))
    assert torch.equal(t[:, 0, 1], torch.tensor([0.0, 0.0, 1.0]))
    assert torch.allclose(t[:, 1, 0], torch.full((3,), 127 / 255), atol=2 / 255)
    la = Image.fromarray(np.array([[[0, 0], [0, 255]]], dtype=np.uint8), "LA")
    t = decode_image(encode(la, "PNG"))
    assert torch.equal(t[:, 0, 0], torch.ones(3)) and torch.equal(t[:, 0, 1], torch.zeros(3))


def test_sixteen_bit_scales_full_range():
    a = np.array([[0, 65535, 32768]], dtype=np.uint16)
    t = decode_image(encode(Image.fromarray(a), "PNG"))
    assert t[0, 0].tolist() == pytest.approx([0.0, 1.0, 128 / 255])
    assert torch.equal(t[0], t[1]) and torch.equal(t[1], t[2])


def test_cmyk_white_is_white():
    t = decode_image(encode(Image.new("CMYK", (4, 4), (0, 0, 0, 0)), "TIFF"))
    assert torch.equal(t, torch.ones(3, 4, 4))


def test_gif_first_frame_only():
    red, blue = Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))
    data = encode(red, "GIF", save_all=True, append_images=[blue])
    assert Image.open(io.BytesIO(data)).n_frames == 2
    t = decode_image(data)
    assert torch.allclose(t[:, 4, 4], torch.tensor([1.0, 0.0, 0.0]), atol=0.02)


def test_multi_picture_jpeg_first_image():
    red, blue = Image.new("RGB", (32, 24), (255, 0, 0)), Image.new("RGB", (32, 24), (0, 0, 255))
    data = encode(red, "MPO", save_all=True, append_images=[blue])
    assert Image.open(io.BytesIO(data)).format == "MPO"  # how Pillow opens many phone photos
    t = decode_image(data)
    check_rgb(t, 24, 32)
    assert torch.allclose(t[:, 12, 16], torch.tensor([1.0, 0.0, 0.0]), atol=0.02)


def test_exif_orientation_rotates():
    im = Image.new("RGB", (40, 20), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the left edge becomes the top
    t = decode_image(encode(im, "JPEG", exif=exif.tobytes(), quality=95))
    check_rgb(t, 40, 20)
    assert float(t[0, 5, 10]) > 0.9 and float(t[2, 5, 10]) < 0.1  # top is red
    assert float(t[2, 35, 10]) > 0.9 and float(t[0, 35, 10]) < 0.1  # bottom is blue


def test_path_input_and_min_side(tmp_path):
    p = tmp_path / "small.png"
    p.write_bytes(encode(noise(30, 10), "PNG"))
    check_rgb(decode_image(p), 10, 30)
    check_rgb(decode_image(str(p)), 10, 30)
    with pytest.raises(ImageRejected, match="10 px|30x10") as e:
        decode_image(p, min_side=16)
    assert e.value.kind == "too_small"


def test_shrink_to_keeps_shorter_side_at_least_the_target():
    data = encode(noise(800, 600), "JPEG")
    t = decode_image(data, shrink_to=64)
    assert 64 <= min(t.shape[1:]) < 600
    assert t.shape[2] / t.shape[1] == pytest.approx(800 / 600, rel=0.02)
    t = decode_image(encode(noise(800, 600), "PNG"), shrink_to=64)
    assert 64 <= min(t.shape[1:]) < 600


# ---------------------------------------------------------------------------------------------------
# refusals


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("load_truncated", [False, True])
def test_truncated_files_are_rejected(fmt, load_truncated, monkeypatch):
    # even if some other code switched on Pillow's global "load truncated images", we refuse
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", load_truncated)
    data = encode(noise(64, 64), fmt)
    for cut in (len(data) // 2, len(data) - 30):
        with pytest.raises(ImageRejected, match="truncated") as e:
            decode_image(data[:cut])
        assert e.value.kind == "truncated"


def _png_with_header_size(w: int, h: int) -> bytes:
    """A tiny valid 1-bit PNG whose IHDR is rewritten to claim w x h (CRC fixed up)."""
    data = bytearray(encode(Image.new("1", (8, 8)), "PNG"))
    ihdr = data.index(b"IHDR")
    struct.pack_into(">II", data, ihdr + 4, w, h)
    struct.pack_into(">I", data, ihdr + 17, zlib.crc32(bytes(data[ihdr : ihdr + 17])))
    return bytes(data)


@pytest.mark.parametrize(
    "w,h",
    [
        (8000, 8000),  # above our 50 MP limit, below Pillow's warning threshold
        (10_000, 10_000),  # Pillow's DecompressionBombWarning range
        (100_000, 100_000),  # Pillow's DecompressionBombError range
    ],
)
def test_bomb_rejected_from_header_before_decoding(w, h, monkeypatch):
    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageRejected, match="limit") as e:
        decode_image(_png_with_header_size(w, h))
    assert e.value.kind == "too_large"


def test_max_pixels_is_a_parameter():
    data = encode(noise(100, 100), "PNG")
    check_rgb(decode_image(data, max_pixels=10_000), 100, 100)
    with pytest.raises(ImageRejected, match="10,000 pixels"):
        decode_image(data, max_pixels=9_999)


def test_text_renamed_jpg_rejected(tmp_path):
    p = tmp_path / "photo.jpg"
    p.write_text("this is not a photo\n" * 10)
    with pytest.raises(ImageRejected, match="text file") as e:
        decode_image(p)
    assert e.value.kind == "not_image"


def test_unsupported_formats_rejected():
    with pytest.raises(ImageRejected, match="ICO") as e:
        decode_image(encode(noise(32, 32), "ICO"))
    assert e.value.kind == "unsupported"
    with pytest.raises(ImageRejected, match="PDF"):
        decode_image(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n")
    with pytest.raises(ImageRejected, match="not a recognised image"):
        decode_image(bytes(range(256)) * 4)
    with pytest.raises(ImageRejected, match="allowed: JPEG, PNG"):
        decode_image(encode(noise(8, 8), "PPM"))


def test_empty_and_oversized_files_rejected(tmp_path):
    with pytest.raises(ImageRejected, match="empty") as e:
        decode_image(b"")
    assert e.value.kind == "empty"
    p = tmp_path / "big.png"
    p.write_bytes(encode(noise(64, 64), "PNG"))
    with pytest.raises(ImageRejected, match="larger than") as e:
        decode_image(p, max_bytes=100)
    assert e.value.kind == "too_large"


def test_corrupt_data_rejected():
    data = bytearray(encode(noise(64, 64), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 10 : idat + 200] = bytes(190)  # zeroed zlib stream
    with pytest.raises(ImageRejected):
        decode_image(bytes(data))


def test_rejection_pickles():
    e = pickle.loads(pickle.dumps(ImageRejected("bad", "corrupt")))
    assert isinstance(e, ValueError) and str(e) == "bad" and e.kind == "corrupt"


# ---------------------------------------------------------------------------------------------------
# resize_square


def test_resize_square_centre_crop():
    x = torch.zeros(3, 20, 40)
    x[:, :, 10:30] = 1.0  # white middle, black sides
    out = resize_square(x, 20)  # no resampling needed: just the centre crop
    assert torch.equal(out, torch.ones(3, 20, 20))
    small = resize_square(x, 10)
    assert tuple(small.shape) == (3, 10, 10) and small.dtype == torch.float32
    assert float(small[:, :, 2:8].min()) > 0.99  # antialiased edges stay at the border
    tall = resize_square(torch.rand(3, 50, 16), 8)
    assert tuple(tall.shape) == (3, 8, 8)
    assert float(tall.min()) >= 0 and float(tall.max()) <= 1


def test_resize_square_batch_and_upscale():
    x = torch.rand(2, 3, 6, 9)
    out = resize_square(x, 12)
    assert tuple(out.shape) == (2, 3, 12, 12)
    assert torch.allclose(out[1], resize_square(x[1], 12))
    with pytest.raises(ValueError):
        resize_square(x, 0)

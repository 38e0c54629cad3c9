"""The acceptance suite for images given to Inspect: every file becomes the right tensor, preprocessed
exactly as the run's checkpoint says, or a clear refusal; never a traceback."""

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_lab.analysis import from_checkpoint
from resnet_lab.analysis.subject import LUMA, Subject
from resnet_lab.data.images import ImageRejected, decode_image, resize_square
from resnet_lab.models import build_model
from resnet_lab.spec import ModelSpec
from resnet_lab.models.checkpoint import save_checkpoint
from resnet_lab.viz.inspect import overlay, to_pil
from tests.helpers.odd_images import CASES, SIZES, encoded, reference

SIZE = 24
MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
RED = (255, 0, 0)


def enc(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def solid(mode: str, size=(40, 30), color=RED) -> Image.Image:
    return Image.new(mode, size, color)


def rgba_half() -> bytes:
    im = Image.new("RGBA", (40, 30), (255, 0, 0, 0))  # fully transparent red: white after compositing
    return enc(im, "PNG")


def palette_transparent() -> bytes:
    im = Image.new("P", (40, 30), 0)
    im.putpalette([0, 0, 255] + [0] * 765)
    return enc(im, "PNG", transparency=0)  # the only colour is transparent: white


def la() -> bytes:
    return enc(Image.new("LA", (40, 30), (0, 255)), "PNG")  # opaque black


def cmyk_jpeg() -> bytes:
    return enc(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG", quality=95)  # red in CMYK


def png16() -> bytes:
    arr = np.full((30, 40), 65535, dtype=np.uint16)
    im = Image.fromarray(arr)
    assert im.mode.startswith("I;16")
    return enc(im, "PNG")  # 16-bit white


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (40, 30), c) for c in (RED, (0, 0, 255), (0, 255, 0))]
    return enc(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


def exif_rotated() -> bytes:
    im = Image.new("RGB", (60, 20), (0, 0, 255))
    im.paste(RED, (0, 0, 30, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    return enc(im, "JPEG", exif=exif.tobytes(), quality=95)


def truncated_jpeg() -> bytes:
    data = enc(Image.effect_noise((64, 64), 50).convert("RGB"), "JPEG", quality=90)
    return data[: len(data) // 2]


def bomb_png() -> bytes:
    """A valid tiny PNG whose header claims 100000 x 100000 pixels (CRC fixed up)."""
    data = bytearray(enc(Image.new("L", (1, 1)), "PNG"))
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr:ihdr + 8] = struct.pack(">II", 100_000, 100_000)
    crc = zlib.crc32(bytes(data[12:ihdr + 13])) & 0xFFFFFFFF
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


# name -> (bytes, expected mean RGB after preprocessing, or the refusal's kind)
GOOD = {
    "png": (lambda: enc(solid("RGB"), "PNG"), (1, 0, 0)),
    "jpeg": (lambda: enc(solid("RGB"), "JPEG", quality=95), (1, 0, 0)),
    "webp": (lambda: enc(solid("RGB"), "WEBP", lossless=True), (1, 0, 0)),
    "bmp": (lambda: enc(solid("RGB"), "BMP"), (1, 0, 0)),
    "rgba transparent": (rgba_half, (1, 1, 1)),
    "palette with transparency": (palette_transparent, (1, 1, 1)),
    "LA": (la, (0, 0, 0)),
    "CMYK jpeg": (cmyk_jpeg, (1, 0, 0)),
    "16-bit png": (png16, (1, 1, 1)),
    "animated gif (first frame)": (animated_gif, (1, 0, 0)),
    "1x1": (lambda: enc(solid("RGB", (1, 1)), "PNG"), (1, 0, 0)),
    "10000x10": (lambda: enc(solid("RGB", (10000, 10)), "PNG"), (1, 0, 0)),
}
BAD = {
    "truncated jpeg": (truncated_jpeg, "truncated"),
    "random bytes named .png": (lambda: np.random.default_rng(0).bytes(4096), "not_image"),
    "html named .jpg": (lambda: b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
                        "not_image"),
    "decompression bomb": (bomb_png, "too_large"),
}


@pytest.fixture(scope="module")
def subject(tmp_path_factory) -> Subject:
    """A subject loaded from a real checkpoint whose manifest says: 24 px, this mean and std."""
    spec = ModelSpec(stem="cifar", depths=(1,), widths=(4,), num_classes=2)
    d = tmp_path_factory.mktemp("ckpt")
    meta = {"spec": spec.to_dict(), "class_names": ["a", "b"], "mean": list(MEAN), "std": list(STD),
            "data": {"name": "shapes", "image_size": SIZE}, "run_id": 7, "name": "toy"}
    path = save_checkpoint(d, "best", build_model(spec), meta)
    return from_checkpoint(path)


@pytest.mark.parametrize("case", list(GOOD))
def test_good_images_become_the_right_tensor(case, subject):
    make, rgb = GOOD[case]
    x = subject.load_image(make())
    assert x.shape == (3, SIZE, SIZE) and x.dtype == torch.float32
    got = x.mean((1, 2))
    assert torch.allclose(got, torch.tensor(rgb, dtype=torch.float32), atol=0.03), (case, got.tolist())
    # then exactly the checkpoint's normalization
    z = subject.normalize(x[None])
    expect = (x - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
    assert torch.allclose(z[0], expect)


def test_exif_orientation_is_applied_before_the_crop(subject):
    # stored 60x20 with the left half red; rotated 90 degrees clockwise it stands 20 wide, 60 tall
    # with red on top. The centre crop keeps the middle: red above, blue below the centre line.
    x = subject.load_image(exif_rotated())
    top, bottom = x[:, : SIZE // 2 - 2].mean((1, 2)), x[:, SIZE // 2 + 2 :].mean((1, 2))
    assert top[0] > 0.8 and top[2] < 0.2 and bottom[2] > 0.8 and bottom[0] < 0.2


@pytest.mark.parametrize("case", list(BAD))
def test_bad_files_are_refused_with_a_clear_message(case, subject):
    make, kind = BAD[case]
    with pytest.raises(ImageRejected) as info:
        subject.load_image(make())
    assert info.value.kind == kind
    msg = str(info.value)
    assert 15 < len(msg) < 300 and "Traceback" not in msg


def test_grey_models_get_luma_and_digits_get_bright_ink(subject):
    spec = ModelSpec(stem="cifar", depths=(1,), widths=(4,), num_classes=10, in_channels=1)
    grey = Subject("g", build_model(spec).eval(), spec, tuple("0123456789"), (0.3,), (0.4,), 16, None)
    x = grey.load_image(enc(solid("RGB", color=(0, 255, 0)), "PNG"))
    assert x.shape == (1, 16, 16) and float(x.mean()) == pytest.approx(0.587, abs=0.01)
    digits = Subject("d", grey.model, spec, grey.class_names, (0.3,), (0.4,), 16, None, ink_on_dark=True)
    paper = Image.new("L", (40, 40), 255)
    paper.paste(0, (15, 5, 25, 35))  # a dark "1" on white paper
    x = digits.load_image(enc(paper, "PNG"))
    assert float(x[0, 8, 8]) > 0.9 and float(x[0, 1, 1]) < 0.1  # inverted: bright stroke on black


# --- odd modes through the Subject (decode, shrink, resize, crop) -------------------------------------


def _centre_points() -> list[int]:
    return [SIZE // 4, 3 * SIZE // 4]  # well inside the crop's quadrants (or the same blend in both, for strips)


# The door's own tests (tests/data/test_images_odd_modes.py) take every mode to every size; what the Subject adds
# (resize and centre crop, after the door's shrink) is the same for every mode, so here one case of each family
# at two sizes: several times the input (the shrink path, then a crop of the wider side) and a 7 x 500 strip
# (narrower than the input: stretched, then cropped). Each family's case is its oddest: a transparency key or
# alpha, EXIF orientation, min-max scaling.
FAMILIES = {
    "bilevel": "1-tiff",
    "grey": "L+key",
    "grey+alpha": "LA",
    "palette": "P+alpha",
    "palette+alpha": "PA",
    "RGB": "RGB-jpeg-exif6",
    "RGBA": "RGBA-tiff",
    "CMYK": "CMYK-jpeg-exif8",
    "YCbCr": "YCbCr-tiff",
    "16-bit": "I;16-tiff-exif6",
    "32-bit integer": "I-wide",
    "float": "F-wide",
}
GRID = [(case, size) for case in FAMILIES.values() for size in ("4x", "7x500")]


def test_the_families_cover_every_mode_of_the_catalogue():
    # I;16B is the 16-bit family in the other byte order: the door reads it (its own tests), the Subject never sees it
    assert {CASES[c].mode for c in FAMILIES.values()} == {c.mode for c in CASES.values()} - {"I;16B"}


@pytest.mark.parametrize("case, size", GRID)
def test_one_mode_of_each_family_reaches_the_model_with_its_colours(case, size, subject):
    """What the model is fed equals the expected image (colours from the stored values, EXIF applied)
    resized and centre-cropped like the training images; the shrink path only moves quadrant edges."""
    c, (w, h) = CASES[case], SIZES[size]
    x = subject.load_image(encoded(c, w, h))
    assert x.shape == (3, SIZE, SIZE) and x.dtype == torch.float32
    want = resize_square(reference(c, w, h), SIZE)
    diff = (x - want).abs()
    pts = _centre_points()
    assert float(diff[:, pts][:, :, pts].max()) <= (c.tol + 2) / 255, (case, size)
    assert float(diff.mean()) <= 8 / 255, (case, size)  # edges blend a little differently after a box reduction


@pytest.mark.parametrize("case", ["P+alpha", "I;16", "CMYK-jpeg", "PA", "F"])
def test_grey_models_get_the_luma_of_odd_modes_at_the_shrink_size(case):
    spec = ModelSpec(stem="cifar", depths=(1,), widths=(4,), num_classes=2, in_channels=1)
    grey = Subject("g", build_model(spec).eval(), spec, ("a", "b"), (0.3,), (0.4,), 16, None)
    c = CASES[case]
    x = grey.load_image(encoded(c, 200, 150))  # several times the input: the shrink path
    want = (resize_square(reference(c, 200, 150), 16) * torch.tensor(LUMA).view(3, 1, 1)).sum(0, keepdim=True)
    assert x.shape == (1, 16, 16)
    pts = [4, 12]
    assert float((x - want).abs()[:, pts][:, :, pts].max()) <= (c.tol + 2) / 255, case


@pytest.mark.parametrize("size", ["smaller", "9x", "1xN", "Nx1"])
@pytest.mark.parametrize("case", ["P+key", "I;16+key", "PA", "1", "CMYK-jpeg-exif8"])
def test_odd_images_draw_and_take_an_overlay(case, size, subject):
    """The pages and the CLI draw what the door gives (full size) and what the model is fed (S x S):
    to_pil keeps the colours and the aspect ratio (a 1-pixel strip stays at least 1 px wide), and
    overlay() blends a heat map of another size over either."""
    c, (w, h) = CASES[case], SIZES[size]
    data = encoded(c, w, h)
    full = decode_image(data)
    assert np.array_equal(np.asarray(to_pil(full)), np.rint(full.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    drawn = to_pil(full, size=256)
    assert drawn.mode == "RGB" and max(drawn.size) == 256 and min(drawn.size) >= 1
    fw, fh = full.shape[2], full.shape[1]
    want = (max(1, round(fw * 256 / max(fw, fh))), max(1, round(fh * 256 / max(fw, fh))))
    assert all(abs(a - b) <= 1 for a, b in zip(drawn.size, want)), (drawn.size, want)  # aspect kept
    heat = torch.linspace(0, 1, 35).view(5, 7)
    for img in (full, subject.load_image(data)):
        assert np.array_equal(np.asarray(overlay(img, heat, alpha=0.0)), np.asarray(to_pil(img)))
        blended = overlay(img, heat, alpha=0.5, size=128)
        assert blended.mode == "RGB" and max(blended.size) == 128

"""The image door on every path: each pixel mode it accepts, at every size (smaller than the model's input,
equal, slightly larger, several times larger so the shrink path runs, very large up to the pixel limit, and
1 x N / N x 1 strips), decodes to the right RGB colours, with and without ``shrink_to``.

Each test image is four flat quadrants whose expected colours are computed from the stored values (see the
catalogue, tests/helpers/odd_images.py). This is the full grid; the Subject, page and CLI tests take a few cases.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_lab.data.folders import load_folder_dataset
from resnet_lab.data.zip_import import import_zip
from resnet_lab.data.images import ImageRejected, decode_image
from tests.helpers.odd_images import (
    CASES,
    MODEL_INPUT,
    SIZES,
    ZIP_SKIPPED,
    check_colours,
    check_imported,
    encoded,
    odd_zip,
    stored,
    upright_size,
)


@pytest.mark.parametrize("case", list(CASES))
def test_the_file_really_holds_the_odd_mode(case):
    c = CASES[case]
    with Image.open(io.BytesIO(encoded(c, 40, 30))) as im:
        assert im.mode == c.mode and im.format == c.fmt
        if c.orientation != 1:
            assert im.getexif().get(0x0112) == c.orientation


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("case", list(CASES))
def test_every_mode_at_every_size_decodes_to_its_colours(case, size):
    c, (w, h) = CASES[case], SIZES[size]
    data = encoded(c, w, h)
    dw, dh = upright_size(c, w, h)
    if w * h <= 300 * 300:  # full size: exactly the upright size (the very large one is checked shrunk)
        full = decode_image(data)
        assert tuple(full.shape) == (3, dh, dw)
        check_colours(c, full, w, h)
    small = decode_image(data, shrink_to=MODEL_INPUT, max_pixels=w * h)  # at the pixel limit: still accepted
    check_colours(c, small, w, h)
    # the shrink keeps the aspect ratio and the shorter side at least the model input (or all there is)
    assert min(small.shape[1:]) >= min(MODEL_INPUT, dw, dh)
    if min(dw, dh) >= 2 * MODEL_INPUT:
        assert min(small.shape[1:]) < min(dw, dh)  # it really took the shrink path
        assert small.shape[2] / small.shape[1] == pytest.approx(dw / dh, rel=0.05)


@pytest.mark.parametrize("case", ["P", "I;16", "RGBA", "CMYK-jpeg", "PA"])
def test_one_pixel_over_the_limit_is_still_refused_before_decoding(case):
    w, h = SIZES["very-large"]
    with pytest.raises(ImageRejected) as e:
        decode_image(encoded(CASES[case], w, h), shrink_to=MODEL_INPUT, max_pixels=w * h - 1)
    assert e.value.kind == "too_large" and "pixel limit" in str(e.value)


@pytest.mark.parametrize("case", ["P", "P+key", "I;16", "1", "PA"])
def test_the_shrunk_image_is_the_box_average_of_the_full_one(case):
    """Shrinking averages the converted colours: a fine checkerboard of two palette colours (or grey
    levels) shrinks to their mean, which averaging palette indices or raw 16-bit values would not give."""
    c = CASES[case]
    w, h = 256, 192
    v = np.asarray(stored(c, 2, 2))  # a 2 x 2 image holds the four stored quadrant values
    yy, xx = np.mgrid[0:h, 0:w]
    odd = (yy + xx) % 2 == 1
    a = np.where(odd[..., None] if v.ndim == 3 else odd, v[1, 1], v[0, 0])  # top-left / bottom-right checkerboard
    board = Image.fromarray(a)  # bool -> 1, uint8 -> L (P with a palette), uint16 -> I;16, 2 bands -> LA (PA)
    if c.prepare:
        board = c.prepare(board)
    assert board.mode == c.mode
    buf = io.BytesIO()
    board.save(buf, c.fmt, **c.save)
    t = decode_image(buf.getvalue(), shrink_to=MODEL_INPUT)
    assert min(t.shape[1:]) < h  # shrunk
    mean = (np.asarray(c.colours[0], dtype=np.float64) + np.asarray(c.colours[3], dtype=np.float64)) / 2 / 255
    centre = t[:, t.shape[1] // 4 : 3 * t.shape[1] // 4, t.shape[2] // 4 : 3 * t.shape[2] // 4]
    assert torch.allclose(centre.mean((1, 2)).double(), torch.from_numpy(mean), atol=2 / 255), case


@pytest.mark.parametrize("case", ["F-wide", "I-wide"])
def test_min_max_scaling_uses_the_whole_image_before_shrinking(case):
    """A sparse bright dot grid on a dark background: scaled over the full image the background stays
    black and a sixteenth of the pixels white; scaled after the box average (as before the fix) every block
    holds the same mix of dots, so min = max and the whole image came out black."""
    c = CASES[case]
    dtype = np.float32 if c.mode == "F" else np.int32
    a = np.full((256, 256), c.values[0], dtype=dtype)
    a[::4, ::4] = c.values[3]  # one pixel in 16 at the maximum
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "TIFF")
    t = decode_image(buf.getvalue(), shrink_to=MODEL_INPUT)
    assert min(t.shape[1:]) < 256
    assert float(t.mean()) == pytest.approx(1 / 16, abs=1.5 / 255)  # a sixteenth of the pixels are white


def test_sixteen_bit_transparency_key_composites_and_keeps_the_other_levels():
    a = np.array([[0, 1000, 40000, 65535, 1000]], dtype=np.uint16)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG", transparency=1000)
    t = decode_image(buf.getvalue())
    assert t[0, 0].tolist() == pytest.approx([0.0, 1.0, round(40000 / 257) / 255, 1.0, 1.0])
    assert torch.equal(t[0], t[1]) and torch.equal(t[1], t[2])


def test_a_very_large_palette_image_near_the_default_limit_is_accepted_and_shrunk():
    """48 MP (under the door's default 50 MP limit): decoded, converted and shrunk without error."""
    c = CASES["P+key"]
    w, h = 8000, 6000
    t = decode_image(encoded(c, w, h), shrink_to=MODEL_INPUT)
    assert MODEL_INPUT <= min(t.shape[1:]) < 2 * MODEL_INPUT
    check_colours(c, t, w, h)



def test_an_archive_of_odd_images_imports_and_loads_as_their_colours(tmp_path):
    z = tmp_path / "odd.zip"
    z.write_bytes(odd_zip())
    report = import_zip(z, "odd", tmp_path / "datasets")
    assert report.ok, report.error
    assert report.counts == {"deep": 7, "palette": 6}
    assert sorted(s.kind for s in report.skipped) == sorted(k for *_, k in ZIP_SKIPPED)
    check_imported(load_folder_dataset("odd", 32, datasets_dir=tmp_path / "datasets"), 32)


# ---------------------------------------------------------------------------------------------------
# bad files of odd modes: still a clear refusal, never a traceback


def _corrupt_idat(data: bytes) -> bytes:
    """A PNG whose first IDAT payload is overwritten with junk (CRC fixed up, so the zlib data is what fails)."""
    i = data.index(b"IDAT")
    n = struct.unpack(">I", data[i - 4 : i])[0]
    body = bytes((b * 7 + 13) % 256 for b in range(n))
    crc = struct.pack(">I", zlib.crc32(b"IDAT" + body) & 0xFFFFFFFF)
    return data[: i + 4] + body + crc + data[i + 8 + n :]


BROKEN = {
    "I;16 png cut in half": (lambda: (lambda d: d[: len(d) // 2])(encoded(CASES["I;16"], 300, 300)), "truncated"),
    "P png cut in half": (lambda: (lambda d: d[: len(d) // 2])(encoded(CASES["P"], 300, 300)), "truncated"),
    "F tiff cut in half": (lambda: (lambda d: d[: len(d) // 2])(encoded(CASES["F"], 300, 300)), "truncated"),
    "PA tiff cut in half": (lambda: (lambda d: d[: len(d) // 2])(encoded(CASES["PA"], 300, 300)), "truncated"),
    "CMYK jpeg cut in half": (lambda: (lambda d: d[: len(d) // 2])(encoded(CASES["CMYK-jpeg"], 300, 300)), "truncated"),
    "P png with junk pixel data": (lambda: _corrupt_idat(encoded(CASES["P"], 300, 300)), "corrupt"),
    "I;16 png with junk pixel data": (lambda: _corrupt_idat(encoded(CASES["I;16"], 300, 300)), "corrupt"),
}


@pytest.mark.parametrize("shrink", [None, MODEL_INPUT])
@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_odd_mode_files_are_refused_with_a_clear_message(case, shrink):
    make, kind = BROKEN[case]
    with pytest.raises(ImageRejected) as e:
        decode_image(make(), shrink_to=shrink)
    assert e.value.kind == kind, str(e.value)
    msg = str(e.value)
    assert 15 < len(msg) < 300 and "Traceback" not in msg

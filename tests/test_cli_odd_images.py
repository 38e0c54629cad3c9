"""Odd images through every CLI command that takes one, in-process (``resnet_lab.cli.main``):
``gradcam --image`` and ``import-dataset`` (a zip of class folders). Palette, 16-bit, palette+alpha and
EXIF-rotated CMYK files several times the model's input (the shrink path), strips and a very large image all
reach the model as their expected colours; a broken file gives a one-line error, never a traceback."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_lab.cli import main
from resnet_lab.data.images import resize_square
from resnet_lab.data.registry import DataConfig, load_dataset
from tests.helpers.odd_images import (
    CASES,
    ZIP_SKIPPED,
    ZIP_USABLE,
    check_imported,
    encoded,
    odd_zip,
    reference,
)

S = 32  # the trained tiny runs' input size
OUT = 256  # gradcam draws its overlay with the longer side 256 px
EXT = {"PNG": "png", "TIFF": "tif", "JPEG": "jpg", "GIF": "gif", "BMP": "bmp"}
GRADCAM = {  # id -> (case, stored size)
    "P-200x150": ("P", (200, 150)),
    "I16-300x300": ("I;16", (300, 300)),
    "PA-tiff-200x150": ("PA", (200, 150)),
    "I16-key-strip-1x300": ("I;16+key", (1, 300)),
    "CMYK-jpeg-exif8-200x150": ("CMYK-jpeg-exif8", (200, 150)),
    "F-wide-7x500": ("F-wide", (7, 500)),
    "P-alpha-1600x1200": ("P+alpha", (1600, 1200)),
}


def write(tmp_path, name: str, size: tuple[int, int]):
    c = CASES[name]
    path = tmp_path / f"{name.replace(';', '_').replace('+', '_')}.{EXT[c.fmt]}"
    path.write_bytes(encoded(c, *size))
    return path


@pytest.mark.parametrize("case", list(GRADCAM))
def test_gradcam_takes_odd_images(case, finished_run, tmp_path, capsys):
    name, size = GRADCAM[case]
    out = tmp_path / "cam.png"
    # opacity 0: the PNG is exactly the image the model was fed, drawn at 256 px (8x nearest neighbour)
    rc = main(["gradcam", "--run", str(finished_run[0]), "--image", str(write(tmp_path, name, size)),
               "--alpha", "0", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert json.loads(captured.out)["size"] == [OUT, OUT]
    with Image.open(out) as png:
        pixels = np.asarray(png.convert("RGB"))
    k = OUT // S
    fed = torch.from_numpy(pixels[k // 2 :: k, k // 2 :: k].copy()).permute(2, 0, 1).float() / 255
    c = CASES[name]
    want = resize_square(reference(c, *size), S)
    diff = (fed - want).abs()
    pts = [S // 4, 3 * S // 4]
    assert float(diff[:, pts][:, :, pts].max()) <= (c.tol + 3) / 255, case
    assert float(diff.mean()) <= 8 / 255, case


def test_gradcam_refuses_a_broken_odd_image_in_one_line(finished_run, tmp_path, capsys):
    data = encoded(CASES["I;16"], 300, 300)
    bad = tmp_path / "cut.png"
    bad.write_bytes(data[: len(data) // 2])
    rc = main(["gradcam", "--run", str(finished_run[0]), "--image", str(bad), "--out", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert rc == 2 and "refused" in err and "truncated" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_import_dataset_takes_an_archive_of_odd_images(tmp_path, capsys):
    z = tmp_path / "odd.zip"
    z.write_bytes(odd_zip())
    rc = main(["import-dataset", str(z), "--name", "odd", "--no-flips", "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    report = json.loads(captured.out)
    assert report["name"] == "folder:odd"
    counts = report["counts"]
    assert counts == {cls: sum(1 for c, _, _ in ZIP_USABLE if c == cls) for cls in ("deep", "palette")}
    assert len(report["skipped"]) == len(ZIP_SKIPPED)
    check_imported(load_dataset(DataConfig(name="folder:odd", image_size=S)), S)

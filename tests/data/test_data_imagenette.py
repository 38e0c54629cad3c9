"""Imagenette (160 px) from tiny JPEGs in its published layout, decoded through the lab's safe image door."""

import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets

from resnet_lab.data import DataConfig, DatasetMissing, load_dataset
from resnet_lab.data import imagenette
from resnet_lab.data.torchvision_sets import check_files

WNIDS = imagenette.WNIDS


def make_nette(root: Path, train: int = 2, val: int = 1, size=(24, 20)) -> dict[str, list[int]]:
    """root/imagenette2-160/{train,val}/<wnid>/*.JPEG: small JPEGs, each class its own colour (class i: red 20*i).
    One training image of class 0 is grey ("L" mode), as some real Imagenette photos are."""
    folder = root / "imagenette2-160"
    labels: dict[str, list[int]] = {"train": [], "val": []}
    for split, n in (("train", train), ("val", val)):
        for label, wnid in enumerate(WNIDS):
            d = folder / split / wnid
            d.mkdir(parents=True)
            for j in range(n):
                colour = (20 * label, 100 + 10 * j, 50)
                img = Image.new("RGB", size, colour)
                if split == "train" and label == 0 and j == 0:
                    img = img.convert("L")
                img.save(d / f"{wnid}_{j}.JPEG", quality=95)
                labels[split].append(label)
    return labels


def test_class_order_and_names_are_torchvisions():
    table = datasets.Imagenette._WNID_TO_CLASS
    assert list(WNIDS) == sorted(table)  # torchvision numbers the sorted folders (find_classes)
    assert imagenette.CLASS_NAMES == tuple(table[w][0] for w in WNIDS)
    assert imagenette.CLASS_NAMES[:3] == ("tench", "English springer", "cassette player")


def test_imagenette_loads_as_uint8_skips_a_hostile_file_and_caches(lab_home, monkeypatch, caplog):
    root = lab_home / "data"
    labels = make_nette(root)
    bad = root / "imagenette2-160" / "train" / WNIDS[3] / "evil.JPEG"
    bad.write_text("#!/bin/sh\necho this is not a photo\n")  # a non-image with an image's name
    (root / "imagenette2-160" / "train" / WNIDS[3] / ".DS_Store").write_bytes(b"\0junk")  # hidden: never read
    (root / "imagenette2-160" / "val" / WNIDS[1] / "notes.txt").write_text("not listed")  # not a .JPEG

    with caplog.at_level(logging.WARNING, logger="resnet_lab.data.imagenette"):
        ds = load_dataset(DataConfig("imagenette", image_size=16))
    assert ds.pixels_train.dtype == torch.uint8 and ds.pixels_train.shape == (20, 3, 16, 16)
    assert ds.pixels_val.shape == (10, 3, 16, 16)
    assert ds.y_train.tolist() == labels["train"] and ds.y_val.tolist() == labels["val"]
    assert ds.class_names == imagenette.CLASS_NAMES and ds.in_channels == 3 and ds.hflip
    red = ds.pixels_val[:, 0].float().mean(dim=(1, 2))  # each class its own colour, in label order
    assert torch.allclose(red, 20 * torch.arange(10).float(), atol=3)
    grey = ds.pixels_train[0]
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])  # an L-mode JPEG became grey RGB
    assert "evil.JPEG" in caplog.text and "1 file(s)" in caplog.text  # refused by the door, and said

    cache = root / "imagenette2-160" / ".lab_cache_16.pt"
    assert cache.is_file()
    monkeypatch.setattr(imagenette, "_decode", lambda *a: pytest.fail("decoded again despite the cache"))
    again = load_dataset(DataConfig("imagenette", image_size=16, train_subset=10))
    assert again.pixels_train.shape == (10, 3, 16, 16) and sorted(again.y_train.tolist()) == list(range(10))
    assert torch.equal(again.pixels_val, ds.pixels_val)


def test_a_changed_file_or_another_size_decodes_again(lab_home):
    root = lab_home / "data"
    make_nette(root, train=1, val=1)
    first = load_dataset(DataConfig("imagenette", image_size=16))
    big = load_dataset(DataConfig("imagenette", image_size=20))  # keyed by size: its own cache
    assert big.pixels_train.shape == (10, 3, 20, 20)
    assert (root / "imagenette2-160" / ".lab_cache_20.pt").is_file()
    extra = root / "imagenette2-160" / "train" / WNIDS[9] / "more.JPEG"
    Image.new("RGB", (20, 20), (0, 0, 255)).save(extra)
    after = load_dataset(DataConfig("imagenette", image_size=16))
    assert len(after.y_train) == len(first.y_train) + 1 and after.y_train.tolist()[-1] == 9


def test_imagenette_missing_says_what_to_download_and_where(lab_home):
    root = lab_home / "data"
    folder = root / "imagenette2-160"
    with pytest.raises(DatasetMissing) as e:
        load_dataset(DataConfig("imagenette", image_size=32))
    err = e.value
    url, md5 = datasets.Imagenette._ARCHIVES["160px"]
    msg = str(err)
    assert err.directory == folder and err.missing == ("train/", "val/")
    assert url in msg and md5 in msg and str(folder) in msg and "never downloads" in msg
    assert str(pickle.loads(pickle.dumps(err))) == msg
    with pytest.raises(DatasetMissing):
        check_files("imagenette", root)
    make_nette(root, train=1, val=1)
    check_files("imagenette", root)
    (folder / "val" / WNIDS[4] / f"{WNIDS[4]}_0.JPEG").unlink()
    (folder / "val" / WNIDS[4]).rmdir()
    with pytest.raises(DatasetMissing) as e:
        check_files("imagenette", root)
    assert e.value.missing == (f"val/{WNIDS[4]}",)


def test_a_split_without_usable_images_is_refused(lab_home):
    root = lab_home / "data"
    make_nette(root, train=1, val=1)
    for p in (root / "imagenette2-160" / "val").rglob("*.JPEG"):
        p.write_bytes(np.zeros(10, dtype=np.uint8).tobytes())  # every val file a non-image
    with pytest.raises(DatasetMissing, match="val folder .* no usable images"):
        load_dataset(DataConfig("imagenette", image_size=16))

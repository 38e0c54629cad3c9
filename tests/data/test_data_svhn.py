"""SVHN read through torchvision's own SVHN class from genuine-format .mat files made here.

torchvision checks each file's md5 against ``SVHN.split_list`` before reading it, so hand-made files are
refused (tested as such); to run the whole path anyway, one test points that table at the tiny files it
writes. The format is the published one: ``X`` H x W x C x N uint8 and ``y`` N x 1, the digit 0 labelled 10.
"""

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from torchvision import datasets

from resnet_lab.data import DataConfig, DatasetMissing, load_dataset
from resnet_lab.data.torchvision_sets import check_files

FILES = ("train_32x32.mat", "test_32x32.mat")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def make_svhn(folder: Path, n_train=20, n_test=10, seed=0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Tiny .mat files as the publisher's: X 32 x 32 x 3 x N uint8, y N x 1 (float, as published) in 1..10."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, n in zip(FILES, (n_train, n_test)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).astype(np.float64).reshape(n, 1)  # 1..10; 10 is the digit 0
        scipy.io.savemat(folder / name, {"X": x, "y": y})
        out[name] = (x, y)
    return out


def trust_svhn_files(monkeypatch, folder: Path) -> None:
    """Point torchvision's md5 table at the files in ``folder`` (what a genuine download would match)."""
    table = {k: list(v) for k, v in datasets.SVHN.split_list.items()}
    for split, name in zip(("train", "test"), FILES):
        table[split][2] = md5(folder / name)
    monkeypatch.setattr(datasets.SVHN, "split_list", table)


def test_svhn_loads_through_torchvision_as_uint8_with_zero_for_ten(lab_home, monkeypatch):
    folder = lab_home / "data" / "svhn"
    arrays = make_svhn(folder)
    trust_svhn_files(monkeypatch, folder)
    ds = load_dataset(DataConfig("svhn", image_size=32))
    assert ds.pixels_train.dtype == torch.uint8 and ds.pixels_train.shape == (20, 3, 32, 32)
    assert ds.pixels_val.shape == (10, 3, 32, 32)  # the official test split is val
    x, y = arrays["train_32x32.mat"]
    assert torch.equal(ds.pixels_train, torch.from_numpy(x).permute(3, 2, 0, 1))  # N x C x H x W
    assert ds.y_train.tolist() == [int(v) % 10 for v in y[:, 0]]  # 10 means the digit 0
    assert 0 in ds.y_train.tolist() and max(ds.y_train.tolist()) == 9
    assert ds.class_names == tuple("0123456789") and ds.in_channels == 3 and not ds.hflip  # digits never flip
    small = load_dataset(DataConfig("svhn", image_size=16, train_subset=10))
    assert small.pixels_train.shape == (10, 3, 16, 16) and small.pixels_train.dtype == torch.uint8
    assert sorted(small.y_train.tolist()) == list(range(10))  # stratified


def test_svhn_missing_files_say_what_to_download_and_where(lab_home):
    folder = lab_home / "data" / "svhn"
    with pytest.raises(DatasetMissing) as e:
        load_dataset(DataConfig("svhn"))
    err = e.value
    assert err.directory == folder and err.missing == FILES
    msg = str(err)
    assert str(folder) in msg and "never downloads" in msg and "download it on request" in msg
    for url, name, digest in datasets.SVHN.split_list.values():
        if name in FILES:
            assert url in msg and digest in msg
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == msg and again.missing == FILES
    with pytest.raises(DatasetMissing):  # the cheap check a page asks before queueing a run
        check_files("svhn", lab_home / "data")
    make_svhn(folder)
    check_files("svhn", lab_home / "data")  # present (the md5 is checked when it loads)
    (folder / "test_32x32.mat").unlink()
    with pytest.raises(DatasetMissing) as e:
        check_files("svhn", lab_home / "data")
    assert e.value.missing == ("test_32x32.mat",)


def test_svhn_handmade_files_fail_torchvisions_md5_check(lab_home):
    make_svhn(lab_home / "data" / "svhn")
    with pytest.raises(DatasetMissing) as e:
        load_dataset(DataConfig("svhn"))
    assert e.value.corrupted == FILES and "md5 does not match" in str(e.value)


def test_svhn_unreadable_file_is_reported(lab_home, monkeypatch):
    folder = lab_home / "data" / "svhn"
    make_svhn(folder)
    (folder / "train_32x32.mat").write_bytes(b"MATLAB 5.0 MAT-file, but nothing after the header")
    trust_svhn_files(monkeypatch, folder)
    with pytest.raises(DatasetMissing, match="could not be read") as e:
        load_dataset(DataConfig("svhn"))
    assert str(folder) in str(e.value)

"""SVHN (Street View House Numbers, the cropped 32x32 digits) through torchvision's own ``SVHN`` class.

Files, in the layout torchvision reads (``SVHN(root=<data_root>/svhn, split=...)``)::

    <data_root>/svhn/train_32x32.mat   73,257 images (the training split)
    <data_root>/svhn/test_32x32.mat    26,032 images (the official test split: the lab's val split)

torchvision compares each file's md5 with its own table (``SVHN.split_list``) before reading it with
``scipy.io.loadmat`` (a MATLAB v5 file: ``X`` H x W x C x N uint8, ``y`` N x 1 with label 10 for the digit 0,
which torchvision turns into 0). Only the genuine files load. The ``extra`` split (531k easier images) is not
used. Loading never downloads: the files are downloaded on request (the lab's download job) or placed by hand.

A flipped digit is not the same digit, so augmentation never flips (``DatasetInfo.hflip`` is False). The
images are kept as uint8, like the other file-based sets.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .torchvision_sets import DatasetMissing, resize_uint8
from .types import DataConfig, Dataset, builtin_info, take_subset

FOLDER = "svhn"  # under the data root, as the lab's catalogue places it
SPLITS = ("train", "test")
CLASS_NAMES = tuple(str(d) for d in range(10))  # label i is the digit i (torchvision maps SVHN's 10 to 0)


def _table() -> dict[str, tuple[str, str, str]]:
    """split -> (url, file name, md5), read from torchvision's class so it never drifts."""
    from torchvision.datasets import SVHN

    return {s: tuple(SVHN.split_list[s]) for s in SPLITS}  # type: ignore[misc]


def _missing_message(folder: Path, missing: tuple[str, ...]) -> str:
    table = _table()
    wanted = ", ".join(f"{url} (md5 {md5})" for url, _, md5 in table.values())
    return "\n".join([
        f"SVHN is not in {folder} (loading never downloads: download it on request from the lab, "
        "or put the files there by hand as follows).",
        f"Missing there: {', '.join(missing)}.",
        f"Download {wanted} and put them in {folder}{os.sep} as they are.",
    ])


def check_svhn_files(root: Path) -> None:
    """Cheap presence check (no md5, nothing read): DatasetMissing when a split's .mat file is absent."""
    folder = Path(root) / FOLDER
    missing = tuple(name for _, name, _ in _table().values() if not (folder / name).is_file())
    if missing:
        raise DatasetMissing(_missing_message(folder, missing), folder, missing=missing)


def _open(root: Path) -> tuple[Any, Any]:
    """torchvision's train and test SVHN, or DatasetMissing saying what to fix."""
    from torchvision.datasets import SVHN

    folder = Path(root) / FOLDER
    check_svhn_files(root)
    try:
        return SVHN(str(folder), split="train"), SVHN(str(folder), split="test")
    except RuntimeError as err:  # torchvision: "not found or corrupted" (its md5 check failed)
        from torchvision.datasets.utils import check_integrity

        bad = tuple(name for _, name, md5 in _table().values() if not check_integrity(str(folder / name), md5))
        cause: Exception = err
        if bad:
            msg = (f"SVHN files in {folder} are corrupted or not the official ones (md5 does not match "
                   f"torchvision's): {', '.join(bad)}. Delete them and download them again "
                   f"({', '.join(url for url, name, _ in _table().values() if name in bad)}).")
            raise DatasetMissing(msg, folder, corrupted=bad) from err
    except Exception as err:  # noqa: BLE001  an unreadable .mat: scipy's reader raises many kinds
        cause = err
    names = tuple(name for _, name, _ in _table().values())
    msg = (f"SVHN files in {folder} could not be read ({type(cause).__name__}: {cause}). "
           "Delete them and download them again.")
    raise DatasetMissing(msg, folder, corrupted=names) from cause


def _tensors(ds: Any, subset: int | None, seed: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's N x C x H x W uint8 array and labels -> (uint8 N x C x S x S, int64 N)."""
    x = torch.as_tensor(ds.data)
    y = torch.as_tensor(ds.labels, dtype=torch.int64).reshape(-1)
    if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3 or y.shape != (x.shape[0],):
        raise DatasetMissing(f"SVHN's file holds {x.dtype} {tuple(x.shape)} images and {tuple(y.shape)} labels, not "
                             "N 32x32 RGB uint8 images with one label each: download it again.",
                             Path(ds.root), corrupted=(ds.filename,))
    if y.numel() and (int(y.min()) < 0 or int(y.max()) > 9):
        raise DatasetMissing(f"SVHN's {ds.filename} has labels outside 0..9 (or 10 for the digit 0): download "
                             "it again.", Path(ds.root), corrupted=(ds.filename,))
    x, y = take_subset(x, y, subset, seed)
    return resize_uint8(x, size), y


def load_svhn(cfg: DataConfig, root: Path) -> Dataset:
    """SVHN from ``root``: the training split (optionally a stratified ``train_subset``) and the official test
    split as val, resized to ``cfg.image_size``, kept as uint8; never flipped."""
    info = builtin_info("svhn")
    train, test = _open(Path(root))
    x_train, y_train = _tensors(train, cfg.train_subset, cfg.seed, cfg.image_size)
    x_val, y_val = _tensors(test, None, cfg.seed, cfg.image_size)
    return Dataset.from_tensors(x_train, y_train, x_val, y_val, CLASS_NAMES, hflip=info.hflip)


def official_test(root: Path, size: int) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """SVHN's official test split in file order (uint8 N x 3 x S x S, int64 N, class names): the pool a challenge's
    hidden test split is cut from (:mod:`resnet_lab.data.holdout_files`); DatasetMissing as loading."""
    _, test = _open(Path(root))
    x, y = _tensors(test, None, 0, size)
    return x, y, CLASS_NAMES

"""Dataset registry: one config, one loader, one in-memory format for every dataset.

``load_dataset(DataConfig(name=...))`` returns a :class:`Dataset`: the whole train and val splits as
N x C x H x W tensors (not yet normalized; uint8 for the big file-based sets, float32 in [0, 1] for the
small generated ones, with float32 views ``x_train``/``x_val`` for code that computes on them), int64
labels, class names, and the per-channel mean/std of the training split. Datasets are meant to live on
the training device as tensors (see ``augment.py``, ``train/batches.py``), so there are no DataLoaders here.

The types and split helpers live in ``types.py`` (which the loaders build on) and are re-exported
here, so ``from resnet_lab.data.registry import DataConfig`` keeps working. Loaders are imported
lazily: asking for ``shapes`` never imports scikit-learn or torchvision.datasets.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ..paths import data_root, lab_home
from .types import (
    DATASET_INFO,
    DATASETS,
    FOLDER_NATIVE_SIZE,
    FOLDER_PREFIX,
    FOLDER_SIZE_RANGE,
    MAX_SEED,
    MAX_TRAIN_SUBSET,
    VAL_FRACTION_RANGE,
    DataConfig,
    Dataset,
    DatasetInfo,
    builtin_info,
    channel_stats,
    hold_out_val,
    size_range,
    stratified_order,
    take_subset,
)


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry for ``name``; unknown names raise ``ValueError`` listing the known ones.

    For a user dataset (``folder:NAME``) this is where its folder is looked at: a missing one raises
    ``ValueError`` naming the datasets that are imported. Nothing is decoded.
    """
    if isinstance(name, str) and name.startswith(FOLDER_PREFIX):
        return _folder_info(name[len(FOLDER_PREFIX):])
    return builtin_info(name)


def _folder_info(slug: str) -> DatasetInfo:
    """A user dataset's entry, from a listing of its class folders (nothing is decoded here)."""
    from .folders import dataset_meta, folder_listing

    classes, n_files = folder_listing(slug)
    meta = dataset_meta(slug)
    lo, hi = FOLDER_SIZE_RANGE
    description = f"your images: {slug} ({n_files} files in {len(classes)} class folders)"
    return DatasetInfo(f"{FOLDER_PREFIX}{slug}", description, 3, len(classes), meta["native_size"], lo, hi,
                       official_val=False, hflip=meta["hflip"], needs_files=False)


def load_dataset(cfg: DataConfig, root: str | os.PathLike[str] | None = None) -> Dataset:
    """Load (or generate) the dataset ``cfg`` describes, as tensors on the CPU.

    ``root`` is where file-based datasets live (default ``$RESNET_LAB_HOME/data``); loading never
    downloads (that is the download job's work, on request). Missing files raise ``DatasetMissing`` (a
    ``ValueError``) saying what to get and where to put it; a user dataset (``folder:NAME``) that is not
    imported raises ``ValueError`` naming the imported ones. A challenge's hidden test split
    (:mod:`~resnet_lab.data.holdout`) is taken out of the pool before any split or subset: out of the official test
    split (file datasets) or of the files (user datasets); a damaged record, or files that changed since the split
    was cut, raise ``ValueError`` rather than leak it. ``cfg.holdout_val`` on a dataset with an official
    test split carves ``val_fraction`` of the training images out as val and keeps the official split as the
    test split (:func:`~resnet_lab.data.types.hold_out_val`).
    """
    if not isinstance(cfg, DataConfig):
        raise TypeError(f"load_dataset needs a DataConfig, got {type(cfg).__name__}")
    info = dataset_info(cfg.name)
    base = Path(root).expanduser() if root is not None else data_root()
    if info.name == "shapes":
        from .shapes import load_shapes

        return load_shapes(cfg)
    if info.name == "digits":
        from .digits import load_digits_dataset
        from .holdout import find_holdout, load_digits_visible

        hidden = find_holdout("digits")  # a challenge's hidden split leaves the pool before any split or subset
        if hidden is not None:
            return load_digits_visible(cfg, hidden)

        return load_digits_dataset(cfg)
    from .holdout import find_holdout

    hold = find_holdout(info.name)  # a challenge's hidden split: never in train, val or test (holdout_files.py)
    if info.name.startswith(FOLDER_PREFIX):
        from .folders import load_folder_dataset
        from .holdout_files import folder_exclusions

        hide = folder_exclusions(hold) if hold is not None else frozenset()  # out of the pool before the split
        ds = load_folder_dataset(info.name[len(FOLDER_PREFIX):], cfg.image_size, cfg.val_fraction, cfg.seed,
                                 exclude=hide)
        if cfg.train_subset is not None and cfg.train_subset < len(ds.y_train):
            x, y = take_subset(ds.pixels_train, ds.y_train, cfg.train_subset, cfg.seed)
            ds = dataclasses.replace(ds, pixels_train=x, y_train=y)
        return ds
    if info.name == "svhn":
        from .svhn import load_svhn

        ds = load_svhn(cfg, base)
    elif info.name == "imagenette":
        from .imagenette import load_imagenette

        ds = load_imagenette(cfg, base, hide=frozenset(hold.files) if hold is not None else frozenset())
    else:
        from .torchvision_sets import load_torchvision_dataset

        ds = load_torchvision_dataset(cfg, base)
    if hold is not None and info.name != "imagenette":
        from .holdout_files import hide_from_val

        ds = hide_from_val(ds, hold)  # the official test split less the hidden images, before it is val or test
    if cfg.holdout_val and info.official_val:
        ds = hold_out_val(ds, cfg.val_fraction, cfg.seed)
    return ds


__all__ = [
    "DATASETS",
    "DATASET_INFO",
    "FOLDER_NATIVE_SIZE",
    "FOLDER_PREFIX",
    "FOLDER_SIZE_RANGE",
    "MAX_SEED",
    "MAX_TRAIN_SUBSET",
    "VAL_FRACTION_RANGE",
    "DataConfig",
    "Dataset",
    "DatasetInfo",
    "builtin_info",
    "channel_stats",
    "data_root",
    "dataset_info",
    "hold_out_val",
    "lab_home",
    "load_dataset",
    "size_range",
    "stratified_order",
    "take_subset",
]

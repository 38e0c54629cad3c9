"""A challenge's hidden test split: images no training, validation, page or export ever sees.

One holdout per dataset, cut once and recorded in the lab home (``holdouts/<dataset>.json``, written once: a second
writer finds the first one's record and uses it). The record holds the seed, how the dataset's *pool* is defined, the
hidden indices of that pool, which of them form the PUBLIC half (the rest is the PRIVATE half) and when it was cut.

How each dataset's pool is defined, and why the hidden images are disjoint from train and val by construction:

* ``digits``: the pool is scikit-learn's 1,797 images in their order. A seeded stratified 20 % of them is hidden;
  :func:`resnet_lab.data.registry.load_dataset` asks :func:`find_holdout` and, when there is a holdout, splits
  train/val (and takes ``train_subset``) from the *other* indices only (:func:`visible_indices`), for every seed,
  val fraction and subset.
* the file datasets (cifar10, cifar100, mnist, fashion_mnist, svhn, imagenette) and imported ``folder:NAME``
  datasets: cut from the official test split (or, for a folder, from its sorted files) as
  :mod:`resnet_lab.data.holdout_files` says; the record then also keeps the pool's size, how to recognise it again
  (``check``) and, for datasets of files, the hidden files' paths and sha256 digests.
* ``shapes`` (generated): training draws image ``i`` of the streams ``"train"`` and ``"val"`` of its seed; the
  hidden images are the stream ``"holdout"`` (``resnet_lab.data.shapes.generate_shapes``'s ``split``) of the record's
  seed, which no loader ever asks for. The pool is that stream's first ``n`` scenes, rendered at the image size of
  the run being scored.

Only :func:`load_hidden_split` loads the hidden images, and only the challenge scoring job calls it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..checks import MAX_SEED, check_int
from ..paths import data_root, lab_home, write_atomic
from .types import FOLDER_PREFIX, DataConfig, Dataset, stratified_order, take_subset, validate_name

HOLDOUT_DIR = "holdouts"
RECORD_VERSION = 1
HIDDEN_SHARE = 0.2  # of a finite pool (digits; the official test split of a file dataset; a folder's files)
SHAPES_HIDDEN = 1200  # scenes of the hidden shapes stream
SHAPES_STREAM = "holdout"  # the stream of generate_shapes no loader asks for
SUPPORTED = ("digits", "shapes", "cifar10", "cifar100", "mnist", "fashion_mnist", "svhn", "imagenette")  # built-in
#   datasets a challenge can hide a split of; an imported user dataset ("folder:NAME") can too (see supported())
FOLDERS_DIR = "folders"  # holdouts/folders/<NAME>.json: a user dataset's record
POOLS = {
    "digits": "scikit-learn's 1,797 digits in their order",
    "shapes": f"the generated stream '{SHAPES_STREAM}' of the record's seed (never a training stream)",
    "imagenette": "the official val split's files, sorted per class folder",
    **{name: "the official test split in file order" for name in ("cifar10", "cifar100", "mnist", "fashion_mnist",
                                                                   "svhn")},
}


@dataclass(frozen=True)
class Holdout:
    """A dataset's hidden split as recorded: which images of its pool are hidden, and which of them are public."""

    dataset: str
    seed: int
    indices: tuple[int, ...]  # hidden indices of the pool, ascending
    public: tuple[int, ...]  # the public half: a subset of ``indices``, ascending (the rest is private)
    created_at: float  # unix time, s: a run created before this may have seen the hidden images
    pool: str  # how the pool is defined, in words
    pool_size: int = 0  # images (or files) in the pool when it was cut; 0 where not recorded (digits, shapes)
    check: str = ""  # how to recognise the pool again (holdout_files.Cut.check); "" where nothing is checked
    files: tuple[str, ...] = ()  # the hidden files' paths, aligned with ``indices`` (imagenette, folder:NAME)
    digests: tuple[str, ...] = ()  # their sha256, aligned with ``files``

    def to_dict(self) -> dict[str, Any]:
        return {"version": RECORD_VERSION, "dataset": self.dataset, "seed": self.seed, "pool": self.pool,
                "indices": list(self.indices), "public": list(self.public), "created_at": self.created_at,
                "pool_size": self.pool_size, "check": self.check, "files": list(self.files),
                "digests": list(self.digests)}

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> "Holdout":
        if not isinstance(raw, dict) or raw.get("version") != RECORD_VERSION:
            raise ValueError(f"{where} is not a holdout record of version {RECORD_VERSION}")
        try:
            idx = tuple(int(i) for i in raw["indices"])
            pub = tuple(int(i) for i in raw["public"])
            files = tuple(str(f) for f in raw.get("files", ()))
            digests = tuple(str(d) for d in raw.get("digests", ()))
            out = cls(str(raw["dataset"]), int(raw["seed"]), idx, pub, float(raw["created_at"]), str(raw["pool"]),
                      int(raw.get("pool_size", 0)), str(raw.get("check", "")), files, digests)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where} is damaged ({type(e).__name__}: {e}); training on its dataset is refused "
                             "until it is restored, so the hidden images cannot leak") from None
        if not set(pub) <= set(idx) or len(set(idx)) != len(idx):
            raise ValueError(f"{where} is damaged: its public half is not part of its hidden indices")
        if len(files) != len(digests) or (files and len(files) != len(idx)):
            raise ValueError(f"{where} is damaged: its hidden files do not match its hidden indices")
        return out


def supported(dataset: Any) -> bool:
    """Whether a challenge can hide a split of ``dataset``: a built-in one of SUPPORTED or ``folder:NAME`` with a
    well-formed name (whether it is imported is asked when the split is cut)."""
    if not isinstance(dataset, str):
        return False
    if dataset.startswith(FOLDER_PREFIX):
        try:
            validate_name(dataset[len(FOLDER_PREFIX):])
        except ValueError:
            return False
        return True
    return dataset in SUPPORTED


def supported_words() -> str:
    """The datasets a hidden split can be cut of, in words (for refusals)."""
    return f"{', '.join(SUPPORTED)} or an imported {FOLDER_PREFIX}NAME"


def holdout_path(dataset: str) -> Path:
    """Where ``dataset``'s holdout record lives: ``$RESNET_LAB_HOME/holdouts/<dataset>.json``
    (``holdouts/folders/<NAME>.json`` for ``folder:NAME``)."""
    if not supported(dataset):
        raise ValueError(f"a hidden test split can be cut of {supported_words()}, not {str(dataset)[:60]!r}")
    if dataset.startswith(FOLDER_PREFIX):
        return lab_home() / HOLDOUT_DIR / FOLDERS_DIR / f"{dataset[len(FOLDER_PREFIX):]}.json"
    return lab_home() / HOLDOUT_DIR / f"{dataset}.json"


def find_holdout(dataset: str) -> Holdout | None:
    """``dataset``'s holdout, or None when none was cut. A damaged record raises ValueError (never ignored: the
    hidden images would be trained on)."""
    if not supported(dataset):
        return None
    path = holdout_path(dataset)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        raw = json.loads(text)
    except ValueError:
        raw = None
    return Holdout.from_dict(raw, str(path))


def cannot_cut(dataset: str) -> str | None:
    """None when ``dataset`` has a hidden split or one can be cut now; else why not: its record is damaged, or its
    files are missing (the message that says what to get; a cheap look, nothing is read or decoded)."""
    try:
        if find_holdout(dataset) is not None or dataset in ("digits", "shapes"):
            return None
        if dataset.startswith(FOLDER_PREFIX):
            from .folders import dataset_path

            dataset_path(dataset[len(FOLDER_PREFIX):])
        else:
            from .torchvision_sets import check_files

            check_files(dataset, data_root())
    except ValueError as e:
        return str(e)
    return None


def _digits_labels() -> torch.Tensor:
    from .digits import digits_tensors

    return digits_tensors(8)[1]


def _cut(dataset: str, seed: int) -> tuple[list[int], list[int]]:
    """(hidden indices, public half) for ``dataset`` and ``seed``."""
    if dataset == "digits":
        y = _digits_labels()
        n = round(HIDDEN_SHARE * y.shape[0])
        hidden = stratified_order(y, seed)[:n]
        labels = y[hidden]
    else:  # shapes
        from .shapes import generate_shapes

        hidden = torch.arange(SHAPES_HIDDEN)
        labels = generate_shapes(SHAPES_HIDDEN, 16, seed, SHAPES_STREAM)[1]
    order = stratified_order(labels, seed + 1)  # a class-balanced half is public
    public = hidden[order[: len(order) // 2]]
    return sorted(int(i) for i in hidden), sorted(int(i) for i in public)


def create_holdout(dataset: str, seed: int = 0) -> Holdout:
    """Cut ``dataset``'s hidden split with ``seed`` and record it, once: when a record exists (this process's or
    another's, even one written a moment ago) that one is returned and ``seed`` is not used."""
    check_int("seed", seed, 0, MAX_SEED)
    path = holdout_path(dataset)
    found = find_holdout(dataset)
    if found is not None:
        return found
    if dataset in ("digits", "shapes"):
        hidden, public = _cut(dataset, seed)
        made = Holdout(dataset, seed, tuple(hidden), tuple(public), time.time(), POOLS[dataset])
    else:
        from .holdout_files import cut

        c = cut(dataset, seed, HIDDEN_SHARE)  # DatasetMissing (its files are not there) is raised as it is
        pool = POOLS.get(dataset, f"the sorted files of {dataset}")
        made = Holdout(dataset, seed, tuple(c.hidden), tuple(c.public), time.time(), pool, c.pool_size, c.check,
                       c.files, c.digests)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = write_atomic(path.with_name(f".{path.name}.{os.getpid()}.new"), json.dumps(made.to_dict()))
    try:
        os.link(tmp, path)  # fails when a record exists: the first one written stays
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    found = find_holdout(dataset)
    assert found is not None
    return found


# --- what training sees ------------------------------------------------------------------------------


def visible_indices(n_pool: int, hold: Holdout) -> torch.Tensor:
    """The pool's indices that are not hidden, ascending: what a loader may split into train and val."""
    keep = torch.ones(n_pool, dtype=torch.bool)
    keep[torch.tensor(hold.indices, dtype=torch.int64)] = False
    return keep.nonzero().flatten()


def digits_split(y_visible: torch.Tensor, cfg: DataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) positions in the visible pool, as ``digits.load_digits_dataset`` splits the whole pool: a seeded
    stratified ``val_fraction`` to val, then ``train_subset`` of train (positions, not yet a subset)."""
    order = stratified_order(y_visible, cfg.seed)
    n_val = round(y_visible.shape[0] * cfg.val_fraction)
    return order[n_val:].sort().values, order[:n_val].sort().values


def load_digits_visible(cfg: DataConfig, hold: Holdout) -> Dataset:
    """The digits dataset for ``cfg`` with the hidden indices taken out of the pool before any split or subset."""
    from .digits import DIGIT_NAMES, digits_tensors

    x, y = digits_tensors(cfg.image_size)
    vis = visible_indices(y.shape[0], hold)
    xv, yv = x[vis], y[vis]
    train_idx, val_idx = digits_split(yv, cfg)
    x_train, y_train = take_subset(xv[train_idx], yv[train_idx], cfg.train_subset, cfg.seed + 1)
    return Dataset.from_tensors(x_train, y_train, xv[val_idx], yv[val_idx], DIGIT_NAMES, hflip=False)


# --- what only the scoring job sees -------------------------------------------------------------------


@dataclass(frozen=True)
class HiddenSplit:
    x: torch.Tensor  # float32 N x C x S x S in [0, 1]
    y: torch.Tensor  # int64 N
    public: torch.Tensor  # bool N: True for the public half
    class_names: tuple[str, ...]


def load_hidden_split(hold: Holdout, image_size: int) -> HiddenSplit:
    """THE HIDDEN IMAGES of ``hold`` at ``image_size`` px, with their labels and which are public. For the challenge
    scoring job only: nothing a student trains on, sees or exports may come from here."""
    if hold.dataset not in ("digits", "shapes"):
        from .holdout_files import load_hidden

        return HiddenSplit(*load_hidden(hold, image_size))
    if hold.dataset == "digits":
        from .digits import DIGIT_NAMES, digits_tensors

        x, y = digits_tensors(image_size)
        idx = torch.tensor(hold.indices, dtype=torch.int64)
        names: tuple[str, ...] = DIGIT_NAMES
        x, y = x[idx], y[idx]
    else:
        from .shapes import SHAPE_CLASSES, generate_shapes

        x, y, _ = generate_shapes(max(hold.indices) + 1, image_size, hold.seed, SHAPES_STREAM)
        idx = torch.tensor(hold.indices, dtype=torch.int64)
        x, y, names = x[idx], y[idx], SHAPE_CLASSES
    public = torch.isin(idx, torch.tensor(hold.public, dtype=torch.int64))
    return HiddenSplit(x, y, public, names)


__all__ = ["HIDDEN_SHARE", "HiddenSplit", "Holdout", "SUPPORTED", "cannot_cut", "create_holdout", "digits_split",
           "find_holdout", "holdout_path", "load_digits_visible", "load_hidden_split", "supported", "supported_words",
           "visible_indices"]

"""The hidden test split of the file datasets: how it is cut, hidden from the loaders and loaded for scoring
(:mod:`resnet_lab.data.holdout` records it and dispatches here).

* cifar10, cifar100, mnist, fashion_mnist, svhn: the pool is the OFFICIAL TEST split in file order. A seeded,
  class-balanced :data:`~resnet_lab.data.holdout.HIDDEN_SHARE` of it is hidden. No loader trains on the test
  split, so the hidden images are disjoint from train (and from ``holdout_val``'s val, carved out of train) by
  construction; :func:`hide_from_val` takes them out of what the lab shows as val (or as test, with
  ``holdout_val``). The record keeps the pool's size and a digest of its labels: other files under the same name
  (a different MNIST, say: torchvision checks no md5 for it) are refused rather than split at the wrong indices.
* imagenette: the pool is the official val split's files, sorted per class folder; the hidden files are recorded
  by path (and sha256) and the loader leaves them out by path.
* ``folder:NAME``: the pool is the dataset's sorted candidate files; a seeded share of each class folder (at least
  one file, never all of a class's files) is hidden. The record keeps the hidden files' paths and sha256 digests
  and the dataset's contents (:func:`resnet_lab.data.folders.dataset_contents`: the imported zip's digest, or its
  files' paths, sizes and times). The hidden files leave the pool before anything is decoded, split or cached.
  When the contents change (a re-import, a file added, renamed or replaced by hand) a hidden image could come back
  under another path, so loading the dataset is REFUSED until its files are back as they were, or a teacher
  deletes the record (``holdouts/folders/NAME.json``; the challenge's scores so far then no longer compare).

Scoring (:func:`load_hidden`) reads the hidden images again and checks them against the record (the labels'
digest, or each file's sha256): a changed pool is refused, never scored.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..paths import data_root
from .types import FOLDER_PREFIX, Dataset, builtin_info, stratified_order, unit_float

if TYPE_CHECKING:
    from .holdout import Holdout

TENSOR_SETS = ("cifar10", "cifar100", "mnist", "fashion_mnist", "svhn")  # pool: the official test split's indices
FILE_SETS = ("imagenette",)  # pool: the official val split's files


@dataclass(frozen=True)
class Cut:
    """What a cut records besides its seed: pool indices, the public half, and how to recognise the pool again."""

    hidden: list[int]  # ascending positions in the pool
    public: list[int]  # a class-balanced half of ``hidden``
    pool_size: int
    check: str  # tensor sets: "labels:<sha256>"; folders: their contents (zip or files digest); imagenette: ""
    files: tuple[str, ...] = ()  # the hidden files' paths, aligned with ``hidden`` (imagenette, folders)
    digests: tuple[str, ...] = ()  # their sha256


def _labels_check(y: torch.Tensor) -> str:
    return "labels:" + hashlib.sha256(y.to(torch.int64).contiguous().numpy().tobytes()).hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _official_test(dataset: str, size: int) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    if dataset == "svhn":
        from .svhn import official_test

        return official_test(data_root(), size)
    from .torchvision_sets import official_test as tv_official_test

    return tv_official_test(dataset, data_root(), size)


def _halves(hidden: torch.Tensor, labels: torch.Tensor, seed: int) -> tuple[list[int], list[int]]:
    order = stratified_order(labels, seed + 1)  # a class-balanced half is public
    public = hidden[order[: len(order) // 2]]
    return sorted(int(i) for i in hidden), sorted(int(i) for i in public)


def cut(dataset: str, seed: int, share: float) -> Cut:
    """Cut ``dataset``'s hidden split with ``seed``: DatasetMissing when its files are not there (the message says
    what to get), ValueError for a user dataset that is not imported."""
    if dataset in TENSOR_SETS:
        _, y, _ = _official_test(dataset, builtin_info(dataset).native_size)
        hidden = stratified_order(y, seed)[: round(share * len(y))]
        return Cut(*_halves(hidden, y[hidden], seed), len(y), _labels_check(y))
    if dataset in FILE_SETS:
        from .imagenette import FOLDER, val_files

        pool = val_files(data_root())
        y = torch.tensor([label for label, _ in pool], dtype=torch.int64)
        hidden = stratified_order(y, seed)[: round(share * len(y))]
        folder = data_root() / FOLDER
        check = ""
    else:
        from .folders import candidate_files, dataset_contents, stratified_split

        slug = dataset[len(FOLDER_PREFIX):]
        folder, classes, pool = candidate_files(slug)
        y = torch.tensor([ci for ci, _ in pool], dtype=torch.int64)
        hidden = stratified_split(y, len(classes), share, seed)[1]
        check = dataset_contents(slug)
    idx, public = _halves(hidden, y[hidden], seed)
    files = tuple(pool[i][1] for i in idx)
    return Cut(idx, public, len(pool), check, files, tuple(_sha256(folder / f) for f in files))


# --- what training sees ------------------------------------------------------------------------------


def _pool_changed(hold: Holdout, what: str) -> ValueError:
    return ValueError(f"{what} is not the pool {hold.dataset}'s hidden test split was cut from "
                      f"({hold.pool}); using it is refused so the hidden images cannot leak. Put the files back as "
                      f"they were, or delete the record of the hidden split (which ends the fairness of the "
                      f"challenge's scores so far).")


def hide_from_val(ds: Dataset, hold: Holdout) -> Dataset:
    """``ds`` (a tensor set as loaded: its val split is the official test split) with the hidden images taken out
    of its val split; ValueError when that split is not the recorded pool."""
    from .holdout import visible_indices

    if len(ds.y_val) != hold.pool_size or _labels_check(ds.y_val) != hold.check:
        raise _pool_changed(hold, f"the official test split of {hold.dataset} ({len(ds.y_val)} images)")
    keep = visible_indices(len(ds.y_val), hold)
    return dataclasses.replace(ds, pixels_val=ds.pixels_val[keep], y_val=ds.y_val[keep])


def folder_exclusions(hold: Holdout) -> frozenset[str]:
    """The hidden files of a user dataset, to leave out of its pool; ValueError when its files changed since the
    cut (see the module's docstring)."""
    from .folders import dataset_contents

    slug = hold.dataset[len(FOLDER_PREFIX):]
    if dataset_contents(slug) != hold.check:
        raise _pool_changed(hold, f"user dataset {slug!r} as its files are now (changed or imported again)")
    return frozenset(hold.files)


# --- what only the scoring job sees -------------------------------------------------------------------


def _checked_files(hold: Holdout, folder: Path, labels: dict[str, int]) -> list[tuple[int, str]]:
    """(label, path) of each hidden file, after checking that it is still there with the digest recorded."""
    out = []
    for rel, digest in zip(hold.files, hold.digests, strict=True):
        path = folder / rel
        if rel not in labels or not path.is_file() or path.is_symlink() or _sha256(path) != digest:
            raise _pool_changed(hold, f"{rel} of {hold.dataset} (missing or changed)")
        out.append((labels[rel], rel))
    return out


def load_hidden(hold: Holdout, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """The hidden images of a file dataset at ``size`` px: (float32 x in [0, 1], int64 y, bool public, names)."""
    idx = torch.tensor(hold.indices, dtype=torch.int64)
    if hold.dataset in TENSOR_SETS:
        x, y, names = _official_test(hold.dataset, size)
        if len(y) != hold.pool_size or _labels_check(y) != hold.check:
            raise _pool_changed(hold, f"the official test split of {hold.dataset} ({len(y)} images)")
        kept, x, y = idx, x[idx], y[idx]
    else:
        x, y, ok, names = _hidden_files(hold, size)
        kept = idx[torch.tensor(ok, dtype=torch.bool)] if ok else idx[:0]
    public = torch.isin(kept, torch.tensor(hold.public, dtype=torch.int64))
    return unit_float(x), y, public, names


def _hidden_files(hold: Holdout, size: int) -> tuple[torch.Tensor, torch.Tensor, list[bool], tuple[str, ...]]:
    if hold.dataset in FILE_SETS:
        from .imagenette import CLASS_NAMES, FOLDER, decode_files, val_files

        labels = {rel: label for label, rel in val_files(data_root())}
        files = _checked_files(hold, data_root() / FOLDER, labels)
        x, y, ok = decode_files(data_root(), files, size)
        return x, y, ok, CLASS_NAMES
    from .folders import DEFAULT_MIN_SIDE, candidate_files
    from .images import ImageRejected, decode_image, resize_square
    from .registry import DataConfig, load_dataset
    from .types import to_uint8

    folder_exclusions(hold)  # the contents are the recorded ones
    folder, classes, pool = candidate_files(hold.dataset[len(FOLDER_PREFIX):])
    files = _checked_files(hold, folder, {rel: ci for ci, rel in pool})
    names = load_dataset(DataConfig(name=hold.dataset, image_size=size)).class_names  # the labels training uses
    images, labels, ok = [], [], []
    for ci, rel in files:
        try:
            if classes[ci] not in names:  # its class has no training image: no output of the model means it
                raise ImageRejected(f"class {classes[ci]!r} is not trained on", "empty")
            img = decode_image(folder / rel, min_side=DEFAULT_MIN_SIDE, shrink_to=size)
        except ImageRejected:
            ok.append(False)  # the door refuses it for training too
            continue
        images.append(to_uint8(resize_square(img, size)))
        labels.append(names.index(classes[ci]))
        ok.append(True)
    x = torch.stack(images) if images else torch.zeros((0, 3, size, size), dtype=torch.uint8)
    return x, torch.tensor(labels, dtype=torch.int64), ok, names


__all__ = ["FILE_SETS", "TENSOR_SETS", "Cut", "cut", "folder_exclusions", "hide_from_val", "load_hidden"]

"""Dataset registry: one config, one loader, one in-memory format for every dataset.

``load_dataset(DataConfig(name=...))`` returns a :class:`Dataset`: the whole train and val splits as
float32 tensors in [0, 1] (N x C x H x W, not yet normalized), int64 labels, class names, and the
per-channel mean/std of the training split. Small datasets are meant to live on the training device
as tensors (see ``augment.py``), so there are no DataLoaders here.

Loaders are imported lazily: asking for ``shapes`` never imports scikit-learn or torchvision.datasets.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..paths import data_root, lab_home  # noqa: F401  (lab_home is re-exported by resnet_lab.data)

MAX_TRAIN_SUBSET = 10_000_000
VAL_FRACTION_RANGE = (0.01, 0.5)
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class DatasetInfo:
    name: str  # registry key, e.g. "cifar10"
    description: str  # one line for people choosing a dataset
    in_channels: int  # 3 for RGB, 1 for grayscale
    num_classes: int  # number of labels
    native_size: int  # side of the images as stored, px (shapes: rendered at any size)
    min_size: int  # smallest allowed image_size, px
    max_size: int  # largest allowed image_size, px
    official_val: bool  # True: the official test split is the val split; False: val_fraction carves one out
    hflip: bool  # horizontal flips keep the label (False for digits: a flipped 2 is not a 2)
    needs_files: bool  # True: files must be placed under root by hand (nothing is ever downloaded)


_INFOS = (
    DatasetInfo("shapes", "Synthetic shapes on cluttered backgrounds (6 classes, RGB, generated from the seed)",
                3, 6, 32, 16, 128, False, True, False),
    DatasetInfo("digits", "scikit-learn handwritten digits (1,797 8x8 images, 10 classes, bundled)",
                1, 10, 8, 8, 128, False, False, False),
    DatasetInfo("cifar10", "CIFAR-10 (60,000 32x32 RGB photos, 10 classes; files placed by hand)",
                3, 10, 32, 8, 256, True, True, True),
    DatasetInfo("mnist", "MNIST handwritten digits (70,000 28x28 grayscale, 10 classes; files placed by hand)",
                1, 10, 28, 8, 256, True, False, True),
    DatasetInfo("fashion_mnist", "Fashion-MNIST clothing (70,000 28x28 grayscale, 10 classes; files placed by hand)",
                1, 10, 28, 8, 256, True, True, True),
)

DATASET_INFO: dict[str, DatasetInfo] = {i.name: i for i in _INFOS}
DATASETS: dict[str, str] = {i.name: i.description for i in _INFOS}  # name -> short description


FOLDER_PREFIX = "folder:"  # "folder:NAME" is a user dataset imported under $RESNET_LAB_HOME/datasets/NAME


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry for ``name``; unknown names raise ``ValueError`` listing the known ones."""
    if isinstance(name, str) and name.startswith(FOLDER_PREFIX):
        return _folder_info(name[len(FOLDER_PREFIX):])
    if name not in DATASET_INFO:
        raise ValueError(f"name={name!r} is not a known dataset; choose one of {', '.join(DATASET_INFO)}")
    return DATASET_INFO[name]


def _folder_info(slug: str) -> DatasetInfo:
    """A user dataset's entry, from a listing of its class folders (nothing is decoded here)."""
    from .folders import folder_listing

    classes, n_files = folder_listing(slug)
    return DatasetInfo(f"{FOLDER_PREFIX}{slug}", f"your images: {slug} ({n_files} files in "
                       f"{len(classes)} class folders)", 3, len(classes), 64, 8, 256, False, True, False)


@dataclass(frozen=True)
class DataConfig:
    name: str = "shapes"  # registry key, one of DATASETS
    image_size: int = 32  # side of the square images handed to the model, px (range depends on the dataset)
    train_subset: int | None = None  # max training images (None: all; shapes: how many to generate)
    val_fraction: float = 0.2  # share of images held out for val when a dataset has no official val split
    augment: bool = True  # random pad-crop (+ flip where it keeps the label) on training batches
    seed: int = 0  # drives generation, splits and subsets: same seed, same tensors

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a string, one of {', '.join(DATASET_INFO)}; got {self.name!r}")
        info = dataset_info(self.name)
        _check_int("image_size", self.image_size, info.min_size, info.max_size, f" for {self.name}")
        if self.train_subset is not None:
            _check_int("train_subset", self.train_subset, 1, MAX_TRAIN_SUBSET, " (or None for all)")
        lo, hi = VAL_FRACTION_RANGE
        vf = self.val_fraction
        if isinstance(vf, bool) or not isinstance(vf, (int, float)) or not lo <= vf <= hi:
            raise ValueError(f"val_fraction={vf!r} is out of range; allowed {lo}..{hi}")
        object.__setattr__(self, "val_fraction", float(vf))
        if not isinstance(self.augment, bool):
            raise ValueError(f"augment must be true or false, got {self.augment!r}")
        _check_int("seed", self.seed, 0, MAX_SEED, "")

    def replace(self, **changes: Any) -> DataConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> DataConfig:
        """Validate an untrusted mapping (unknown keys are refused)."""
        if not isinstance(data, dict):
            raise ValueError("a data config must be a JSON object")
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown data setting(s): {', '.join(sorted(map(str, unknown)))}")
        return cls(**data)


def _check_int(name: str, value: Any, lo: int, hi: int, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer in {lo}..{hi}{where}, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name}={value} is out of range; allowed {lo}..{hi}{where}")


@dataclass(frozen=True, eq=False)
class Dataset:
    x_train: torch.Tensor  # float32 N x C x H x W in [0, 1], not normalized
    y_train: torch.Tensor  # int64 N, class indices
    x_val: torch.Tensor  # float32 M x C x H x W in [0, 1]
    y_val: torch.Tensor  # int64 M
    class_names: tuple[str, ...]  # label i is class_names[i]
    mean: tuple[float, ...]  # per-channel mean of x_train
    std: tuple[float, ...]  # per-channel std of x_train (population, floored at 1e-3)
    in_channels: int  # C
    mask_val: torch.Tensor | None = None  # bool M x H x W: pixels of the labelled object (shapes only)
    hflip: bool = True  # horizontal flips keep the label; augmentation flips only when True

    def __post_init__(self) -> None:
        for split, x, y in (("train", self.x_train, self.y_train), ("val", self.x_val, self.y_val)):
            if x.dtype != torch.float32 or x.dim() != 4:
                raise ValueError(f"x_{split} must be float32 N x C x H x W, got {x.dtype} {tuple(x.shape)}")
            if y.dtype != torch.int64 or y.shape != (x.shape[0],):
                raise ValueError(f"y_{split} must be int64 of length {x.shape[0]}, got {y.dtype} {tuple(y.shape)}")
            if x.shape[1] != self.in_channels:
                raise ValueError(f"x_{split} has {x.shape[1]} channels, in_channels={self.in_channels}")
        if self.x_train.shape[1:] != self.x_val.shape[1:]:
            a, b = tuple(self.x_train.shape[1:]), tuple(self.x_val.shape[1:])
            raise ValueError(f"train and val images differ in shape: {a} vs {b}")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ValueError(f"mean and std need {self.in_channels} entries each")
        if self.mask_val is not None and (
            self.mask_val.dtype != torch.bool
            or self.mask_val.shape != (self.x_val.shape[0], *self.x_val.shape[2:])
        ):
            got = f"{self.mask_val.dtype} {tuple(self.mask_val.shape)}"
            raise ValueError(f"mask_val must be bool M x H x W matching x_val, got {got}")

    @classmethod
    def from_tensors(
        cls,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        x_val: torch.Tensor,
        y_val: torch.Tensor,
        class_names: tuple[str, ...] | list[str],
        mask_val: torch.Tensor | None = None,
        hflip: bool = True,
    ) -> Dataset:
        """Build a Dataset, computing ``mean``/``std`` from ``x_train`` and ``in_channels`` from its shape."""
        mean, std = channel_stats(x_train)
        return cls(
            x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val, class_names=tuple(class_names),
            mean=mean, std=std, in_channels=int(x_train.shape[1]), mask_val=mask_val, hflip=hflip,
        )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> int:
        """Side of the (square) images in px."""
        return int(self.x_train.shape[-1])

    def to(self, device: torch.device | str) -> Dataset:
        """The same dataset with every tensor moved to ``device`` (e.g. the training GPU)."""
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return dataclasses.replace(self, **moved)


def channel_stats(x: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population std of ``x`` (N x C x H x W) over all images and pixels.

    Accumulated in float64 chunk by chunk, so a large float32 split costs no extra full-size copy.
    The std is floored at 1e-3 so normalizing a constant channel never divides by zero.
    """
    c = x.shape[1]
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    for i in range(0, x.shape[0], chunk):
        part = x[i : i + chunk].to(torch.float64)
        s += part.sum(dim=(0, 2, 3)).cpu()
        s2 += part.square().sum(dim=(0, 2, 3)).cpu()
    n = max(1, x.shape[0] * x.shape[2] * x.shape[3])
    mean = s / n
    var = (s2 / n - mean.square()).clamp_min(0.0)
    std = var.sqrt().clamp_min(1e-3)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def stratified_order(y: torch.Tensor, seed: int) -> torch.Tensor:
    """A seeded permutation of ``range(len(y))`` that deals the classes out round-robin.

    Every prefix of the result is as class-balanced as the class counts allow, so "the first n" of it
    is a stratified random subset (used for val splits and ``train_subset``). Within a class the order
    is random. Same ``y`` and ``seed`` give the same permutation.
    """
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(y.shape[0], generator=g)
    yp = y[perm]
    onehot = torch.nn.functional.one_hot(yp, int(y.max()) + 1 if y.numel() else 1)
    rank = (onehot.cumsum(0) * onehot).sum(1) - 1  # how many of the same class came before, in perm order
    return perm[torch.argsort(rank, stable=True)]


def take_subset(x: torch.Tensor, y: torch.Tensor, n: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """At most ``n`` images of (x, y), a stratified random subset; all of them (unchanged) when n is None."""
    if n is None or n >= y.shape[0]:
        return x, y
    keep = stratified_order(y, seed)[:n].sort().values  # keep the original order among the kept
    return x[keep], y[keep]


def load_dataset(cfg: DataConfig, root: str | os.PathLike[str] | None = None) -> Dataset:
    """Load (or generate) the dataset ``cfg`` describes, as tensors on the CPU.

    ``root`` is where file-based datasets live (default ``$RESNET_LAB_HOME/data``); nothing is ever
    downloaded. Missing files raise ``DatasetMissing`` (a ``ValueError``) saying what to put where.
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

        return load_digits_dataset(cfg)
    if info.name.startswith(FOLDER_PREFIX):
        from .folders import load_folder_dataset

        ds = load_folder_dataset(info.name[len(FOLDER_PREFIX):], cfg.image_size, cfg.val_fraction, cfg.seed)
        if cfg.train_subset is not None and cfg.train_subset < len(ds.y_train):
            x, y = take_subset(ds.x_train, ds.y_train, cfg.train_subset, cfg.seed)
            ds = dataclasses.replace(ds, x_train=x, y_train=y)
        return ds
    from .torchvision_sets import load_torchvision_dataset

    return load_torchvision_dataset(cfg, base)

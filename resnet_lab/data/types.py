"""The data layer's vocabulary: configs, the in-memory Dataset, registry entries and split helpers.

Every loader (``shapes.py``, ``digits.py``, ``folders.py``, ``torchvision_sets.py``) builds on this
module, and this module imports none of them: ``registry.py`` sits on top, dispatching a
:class:`DataConfig` to its loader and re-exporting everything defined here. Nothing here reads the
filesystem: a ``DataConfig`` naming a user dataset (``folder:NAME``) is checked for its form only;
whether the folder exists is asked where the data is listed or loaded (``registry.dataset_info``,
``registry.load_dataset``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..checks import MAX_SEED, check_float, check_int

if TYPE_CHECKING:
    from ..spec import ModelSpec

MAX_TRAIN_SUBSET = 10_000_000
VAL_FRACTION_RANGE = (0.01, 0.5)
FOLDER_PREFIX = "folder:"  # "folder:NAME" is a user dataset imported under $RESNET_LAB_HOME/datasets/NAME
NAME_PATTERN = re.compile(r"[a-z0-9_-]{1,40}")  # a user dataset's name: lower-case slug, 1..40 characters
FOLDER_NATIVE_SIZE = 64  # default image side for a user dataset, px (its images come in any size)
FOLDER_SIZE_RANGE = (8, 256)  # allowed image_size for a user dataset, px


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
    train_images: int | None = None  # the published training split (official_val), or all images before the
    # validation share is carved out (digits); None where it depends (shapes: generated per size; folders: files)

    def fit(self, spec: ModelSpec) -> ModelSpec:
        """``spec`` with this dataset's input channels and number of classes, as training builds it."""
        return spec.replace(num_classes=self.num_classes, in_channels=self.in_channels)


_INFOS = (
    DatasetInfo("shapes", "Synthetic shapes on cluttered backgrounds (6 classes, RGB, generated from the seed)",
                3, 6, 32, 16, 128, False, True, False),
    DatasetInfo("digits", "scikit-learn handwritten digits (1,797 8x8 images, 10 classes, bundled)",
                1, 10, 8, 8, 128, False, False, False, 1797),
    DatasetInfo("cifar10", "CIFAR-10 (60,000 32x32 RGB photos, 10 classes; files placed by hand)",
                3, 10, 32, 8, 256, True, True, True, 50_000),
    DatasetInfo("mnist", "MNIST handwritten digits (70,000 28x28 grayscale, 10 classes; files placed by hand)",
                1, 10, 28, 8, 256, True, False, True, 60_000),
    DatasetInfo("fashion_mnist", "Fashion-MNIST clothing (70,000 28x28 grayscale, 10 classes; files placed by hand)",
                1, 10, 28, 8, 256, True, True, True, 60_000),
)

DATASET_INFO: dict[str, DatasetInfo] = {i.name: i for i in _INFOS}
DATASETS: dict[str, str] = {i.name: i.description for i in _INFOS}  # name -> short description


def builtin_info(name: str) -> DatasetInfo:
    """The registry entry of a built-in dataset; other names raise ``ValueError`` listing the known ones."""
    if name not in DATASET_INFO:
        raise ValueError(f"name={name!r} is not a known dataset; choose one of {', '.join(DATASET_INFO)}")
    return DATASET_INFO[name]


def validate_name(name: Any) -> str:
    """Return ``name`` if it is a safe user-dataset name (``[a-z0-9_-]``, 1..40 characters), else ValueError."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"dataset name {name!r} is not allowed: use 1 to 40 lower-case letters, digits, '_' or '-'"
        )
    return name


def size_range(name: str) -> tuple[int, int]:
    """Allowed ``image_size`` (px, inclusive) for the dataset ``name``, from the name alone.

    Unknown built-in names and malformed ``folder:NAME`` names raise ``ValueError``; whether a user
    dataset's folder exists is not asked here (see ``registry.dataset_info``).
    """
    if name.startswith(FOLDER_PREFIX):
        validate_name(name[len(FOLDER_PREFIX):])
        return FOLDER_SIZE_RANGE
    info = builtin_info(name)
    return info.min_size, info.max_size


@dataclass(frozen=True)
class DataConfig:
    name: str = "shapes"  # registry key, one of DATASETS, or "folder:NAME" for an imported user dataset
    image_size: int = 32  # side of the square images handed to the model, px (range depends on the dataset)
    train_subset: int | None = None  # max training images (None: all; shapes: how many to generate)
    val_fraction: float = 0.2  # share of images held out for val when a dataset has no official val split
    augment: bool = True  # random pad-crop (+ flip where it keeps the label) on training batches
    seed: int = 0  # drives generation, splits and subsets: same seed, same tensors

    def __post_init__(self) -> None:
        # validated from the values alone: constructing a config never reads the filesystem
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a string, one of {', '.join(DATASET_INFO)}; got {self.name!r}")
        lo, hi = size_range(self.name)
        check_int("image_size", self.image_size, lo, hi, f" for {self.name}")
        if self.train_subset is not None:
            check_int("train_subset", self.train_subset, 1, MAX_TRAIN_SUBSET, " (or None for all)")
        object.__setattr__(self, "val_fraction", check_float("val_fraction", self.val_fraction, *VAL_FRACTION_RANGE))
        if not isinstance(self.augment, bool):
            raise ValueError(f"augment must be true or false, got {self.augment!r}")
        check_int("seed", self.seed, 0, MAX_SEED)

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


__all__ = [
    "DATASETS",
    "DATASET_INFO",
    "FOLDER_NATIVE_SIZE",
    "FOLDER_PREFIX",
    "FOLDER_SIZE_RANGE",
    "MAX_SEED",
    "MAX_TRAIN_SUBSET",
    "NAME_PATTERN",
    "VAL_FRACTION_RANGE",
    "DataConfig",
    "Dataset",
    "DatasetInfo",
    "builtin_info",
    "channel_stats",
    "size_range",
    "stratified_order",
    "take_subset",
    "validate_name",
]

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
    needs_files: bool  # True: its files must be under the data root (downloaded on request, or placed by hand);
    #   loading never downloads
    train_images: int | None = None  # the published training split (official_val), or all images before the
    # validation share is carved out (digits); None where it depends (shapes: generated per size; folders: files)
    default_size: int | None = None  # image_size a short run on a CPU starts from, px, where it is not native_size
    #   (Imagenette: its 160-px photos at 64 px); None: native_size
    val_images: int | None = None  # the official test split's images (official_val); None where there is none

    def fit(self, spec: ModelSpec) -> ModelSpec:
        """``spec`` with this dataset's input channels and number of classes, as training builds it."""
        return spec.replace(num_classes=self.num_classes, in_channels=self.in_channels)


_INFOS = (
    DatasetInfo("shapes", "Synthetic shapes on cluttered backgrounds (6 classes, RGB, generated from the seed)",
                3, 6, 32, 16, 128, False, True, False),
    DatasetInfo("digits", "scikit-learn handwritten digits (1,797 8x8 images, 10 classes, bundled)",
                1, 10, 8, 8, 128, False, False, False, 1797),
    DatasetInfo("cifar10", "CIFAR-10 (60,000 32x32 RGB photos, 10 classes; downloaded on request)",
                3, 10, 32, 8, 256, True, True, True, 50_000, val_images=10_000),
    DatasetInfo("cifar100", "CIFAR-100 (60,000 32x32 RGB photos, 100 classes; downloaded on request)",
                3, 100, 32, 8, 256, True, True, True, 50_000, val_images=10_000),
    DatasetInfo("mnist", "MNIST handwritten digits (70,000 28x28 grayscale, 10 classes; downloaded on request)",
                1, 10, 28, 8, 256, True, False, True, 60_000, val_images=10_000),
    DatasetInfo("fashion_mnist", "Fashion-MNIST clothing (70,000 28x28 grayscale, 10 classes; downloaded on request)",
                1, 10, 28, 8, 256, True, True, True, 60_000, val_images=10_000),
    DatasetInfo("svhn", "SVHN house-number digits (99,289 32x32 RGB street photos, 10 classes; downloaded on "
                "request)", 3, 10, 32, 8, 256, True, False, True, 73_257, val_images=26_032),
    DatasetInfo("imagenette", "Imagenette: real photos of 10 ImageNet classes (13,394 at 160 px; downloaded on "
                "request)", 3, 10, 160, 16, 160, True, True, True, 9_469, default_size=64, val_images=3_925),
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
    holdout_val: bool = False  # a dataset with an official test split (cifar10, ...): True carves val_fraction of
    #   the training images out as val and keeps the official test split as the test split, reported once at the
    #   end (He et al. 2015's CIFAR-10 45k/5k); False: the official test split is the val split

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
        if not isinstance(self.holdout_val, bool):
            raise ValueError(f"holdout_val must be true or false, got {self.holdout_val!r}")

    def replace(self, **changes: Any) -> DataConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON; ``holdout_val`` only when set, so configs (and job fingerprints) that do not
        use it are what they were before it existed."""
        out = dataclasses.asdict(self)
        if not self.holdout_val:
            del out["holdout_val"]
        return out

    @classmethod
    def from_dict(cls, data: Any) -> DataConfig:
        """Validate an untrusted mapping (unknown keys are refused)."""
        if not isinstance(data, dict):
            raise ValueError("a data config must be a JSON object")
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown data setting(s): {', '.join(sorted(map(str, unknown)))}")
        return cls(**data)


PIXEL_DTYPES = (torch.float32, torch.uint8)  # how a Dataset may keep its images: float32 in [0, 1], uint8 0..255
_GIVEN_NOTHING: Any = object()  # Dataset(...)'s "x_* not given" (None is a value: no test split)


@dataclass(frozen=True, eq=False, init=False)
class Dataset:
    """The train and val splits (and optionally a test split apart from val) in memory, with labels, class
    names and the training split's per-channel mean/std.

    Images are kept as they were loaded, in ``pixels_*`` (N x C x H x W, not normalized): uint8 0..255 for the
    big file-based sets (one byte a value: CIFAR-10's training split is 150 MB instead of 614 MB as float32),
    float32 in [0, 1] for the small generated ones. ``x_train``, ``x_val`` and ``x_test`` are the same images
    as float32 in [0, 1] for code that computes on them: for uint8 pixels they are converted on first use and
    kept (:meth:`images` converts only the images asked for). Training never asks for them: its batches are
    gathered from the pixels on the device and converted there (``train/batches.py``).

    Built under either name: ``Dataset(x_train=...)`` and ``dataclasses.replace(ds, x_train=...)`` keep what they
    are given (float32 or uint8) as the pixels; an ``x_*`` given wins over the ``pixels_*`` of the same split.
    """

    pixels_train: torch.Tensor  # N x C x H x W, uint8 0..255 or float32 in [0, 1], not normalized
    y_train: torch.Tensor  # int64 N, class indices
    pixels_val: torch.Tensor  # M x C x H x W, like pixels_train
    y_val: torch.Tensor  # int64 M
    class_names: tuple[str, ...]  # label i is class_names[i]
    mean: tuple[float, ...]  # per-channel mean of the training images in [0, 1]
    std: tuple[float, ...]  # per-channel std of the training images (population, floored at 1e-3)
    in_channels: int  # C
    mask_val: torch.Tensor | None = None  # bool M x H x W: pixels of the labelled object (shapes only)
    hflip: bool = True  # horizontal flips keep the label; augmentation flips only when True
    pixels_test: torch.Tensor | None = None  # T x C x H x W: a test split apart from val (DataConfig.holdout_val)
    y_test: torch.Tensor | None = None  # int64 T

    def __init__(
        self,
        x_train: torch.Tensor | None = _GIVEN_NOTHING,
        y_train: torch.Tensor | None = None,
        x_val: torch.Tensor | None = _GIVEN_NOTHING,
        y_val: torch.Tensor | None = None,
        class_names: tuple[str, ...] | list[str] = (),
        mean: tuple[float, ...] = (),
        std: tuple[float, ...] = (),
        in_channels: int = 0,
        mask_val: torch.Tensor | None = None,
        hflip: bool = True,
        x_test: torch.Tensor | None = _GIVEN_NOTHING,
        y_test: torch.Tensor | None = None,
        *,
        pixels_train: torch.Tensor | None = None,
        pixels_val: torch.Tensor | None = None,
        pixels_test: torch.Tensor | None = None,
    ) -> None:
        given = {"pixels_train": (x_train, pixels_train), "pixels_val": (x_val, pixels_val),
                 "pixels_test": (x_test, pixels_test)}
        for name, (x, px) in given.items():
            object.__setattr__(self, name, px if x is _GIVEN_NOTHING else x)
        for name, value in (("y_train", y_train), ("y_val", y_val), ("class_names", tuple(class_names)),
                            ("mean", tuple(mean)), ("std", tuple(std)), ("in_channels", in_channels),
                            ("mask_val", mask_val), ("hflip", hflip), ("y_test", y_test)):
            object.__setattr__(self, name, value)
        self._check()

    def _check(self) -> None:
        splits = [("train", self.pixels_train, self.y_train), ("val", self.pixels_val, self.y_val)]
        if (self.pixels_test is None) != (self.y_test is None):
            raise ValueError("x_test and y_test come together (or neither)")
        if self.pixels_test is not None:
            splits.append(("test", self.pixels_test, self.y_test))
        for split, x, y in splits:
            if not isinstance(x, torch.Tensor) or x.dtype not in PIXEL_DTYPES or x.dim() != 4:
                got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
                raise ValueError(f"x_{split} must be float32 (in [0, 1]) or uint8 N x C x H x W, got {got}")
            if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.shape != (x.shape[0],):
                got = f"{y.dtype} {tuple(y.shape)}" if isinstance(y, torch.Tensor) else type(y).__name__
                raise ValueError(f"y_{split} must be int64 of length {x.shape[0]}, got {got}")
            if x.shape[1] != self.in_channels:
                raise ValueError(f"x_{split} has {x.shape[1]} channels, in_channels={self.in_channels}")
            if split != "train" and x.shape[1:] != self.pixels_train.shape[1:]:
                a, b = tuple(self.pixels_train.shape[1:]), tuple(x.shape[1:])
                raise ValueError(f"train and {split} images differ in shape: {a} vs {b}")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ValueError(f"mean and std need {self.in_channels} entries each")
        if self.mask_val is not None and (
            self.mask_val.dtype != torch.bool
            or self.mask_val.shape != (self.pixels_val.shape[0], *self.pixels_val.shape[2:])
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
        """Build a Dataset (images float32 in [0, 1] or uint8), computing ``mean``/``std`` from ``x_train`` and
        ``in_channels`` from its shape."""
        mean, std = channel_stats(x_train)
        return cls(
            x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val, class_names=tuple(class_names),
            mean=mean, std=std, in_channels=int(x_train.shape[1]), mask_val=mask_val, hflip=hflip,
        )

    @property
    def x_train(self) -> torch.Tensor:
        """The training images as float32 N x C x H x W in [0, 1] (uint8 pixels: converted once, then kept)."""
        return self._unit("train")

    @property
    def x_val(self) -> torch.Tensor:
        """The val images as float32 in [0, 1] (uint8 pixels: converted once, then kept)."""
        return self._unit("val")

    @property
    def x_test(self) -> torch.Tensor | None:
        """The test images as float32 in [0, 1], or None when there is no test split apart from val."""
        return self._unit("test")

    def _unit(self, split: str) -> torch.Tensor | None:
        px = getattr(self, f"pixels_{split}")
        if px is None or px.dtype == torch.float32:
            return px
        key = f"_unit_{split}"
        kept = self.__dict__.get(key)
        if kept is None:  # setdefault: two threads converting at once both get the one kept
            kept = self.__dict__.setdefault(key, unit_float(px))
        return kept

    def images(self, split: str, idx: torch.Tensor | slice | int | None = None) -> torch.Tensor:
        """The images of ``split`` ("train", "val" or "test") at ``idx`` (all when None) as float32 in [0, 1],
        converting only those (nothing is kept): for code that wants a few images of a big uint8 dataset."""
        if split not in ("train", "val", "test") or getattr(self, f"pixels_{split}") is None:
            raise ValueError(f"split must be train, val or test (when there is one), got {split!r}")
        px = getattr(self, f"pixels_{split}")
        return unit_float(px if idx is None else px[idx])

    @property
    def nbytes(self) -> int:
        """Bytes the images of every split take as kept (the pixels; float views made on demand not counted)."""
        return sum(px.nbytes for px in (self.pixels_train, self.pixels_val, self.pixels_test) if px is not None)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> int:
        """Side of the (square) images in px."""
        return int(self.pixels_train.shape[-1])

    def to(self, device: torch.device | str) -> Dataset:
        """The same dataset with every tensor moved to ``device`` (e.g. the training GPU), pixels as they are."""
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return dataclasses.replace(self, **moved)


def unit_float(x: torch.Tensor) -> torch.Tensor:
    """Images as float32 in [0, 1] on their own device: uint8 divided by 255, float32 as it is (the same tensor)."""
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    if x.dtype != torch.float32:
        raise ValueError(f"images must be uint8 or float32, got {x.dtype}")
    return x


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float images in [0, 1] -> uint8 0..255, rounded to the nearest level (e.g. after an antialiased resize)."""
    return x.mul(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)


def hold_out_val(ds: Dataset, fraction: float, seed: int) -> Dataset:
    """``ds`` (whose val split is an official test split) with a stratified ``fraction`` of its training images
    held out as val and its val split kept as the test split: He et al. 2015's CIFAR-10 split (45k train, 5k val,
    the official 10k reported as test error) for ``fraction`` 0.1. Mean and std are the remaining training
    images'. Which images are held out follows ``seed`` (the same seed, the same split)."""
    n_val = max(1, round(fraction * len(ds.y_train)))
    if n_val >= len(ds.y_train):
        raise ValueError(f"cannot hold out {n_val} of {len(ds.y_train)} training images as val")
    order = stratified_order(ds.y_train, seed)
    val, train = order[:n_val].sort().values, order[n_val:].sort().values
    out = Dataset.from_tensors(ds.pixels_train[train], ds.y_train[train], ds.pixels_train[val], ds.y_train[val],
                               ds.class_names, hflip=ds.hflip)  # the pixels as kept: uint8 stays uint8
    return dataclasses.replace(out, pixels_test=ds.pixels_val, y_test=ds.y_val)


def channel_stats(x: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population std of ``x`` (N x C x H x W) over all images and pixels, in [0, 1]
    units: float32 images as they are, uint8 images divided by 255.

    Accumulated in float64 chunk by chunk, so a large split costs no extra full-size copy.
    The std is floored at 1e-3 so normalizing a constant channel never divides by zero.
    """
    c = x.shape[1]
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    for i in range(0, x.shape[0], chunk):
        part = x[i : i + chunk].to(torch.float64)
        if x.dtype == torch.uint8:
            part.div_(255.0)
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
    "PIXEL_DTYPES",
    "builtin_info",
    "channel_stats",
    "hold_out_val",
    "size_range",
    "stratified_order",
    "take_subset",
    "to_uint8",
    "unit_float",
    "validate_name",
]

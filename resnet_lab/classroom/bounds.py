"""Bounds: what a class (or a lesson) lets a student ask the lab to train, checked on the server.

A teacher's settings file (:mod:`resnet_lab.classroom.settings`) and each lesson
(:mod:`resnet_lab.classroom.lessons`) may set a :class:`Bounds`. Every field is optional: ``None`` means
no bound. A request outside them is refused with :class:`OutOfBounds` (a ``ValueError``) whose message
names the setting as the student sees it, the value asked for and what is allowed, e.g. "Epochs 200 is
above this class's bound: allowed 1–20." The widgets show the same ranges through :meth:`Bounds.limit`.

Decisions, so that pages and the scheduler agree:

* **Training images**: ``DataConfig.train_subset`` ``None`` means the whole dataset. Its training-set size
  is resolved where the lab knows it without loading anything (shapes: what it generates at that image
  size; digits, MNIST, Fashion-MNIST, CIFAR-10: the published split sizes; a user dataset: its files less
  the validation share). When the size cannot be known, ``None`` is refused under a ``max_train_images``
  bound with a message asking for a number of training images: an unknown size is never waved through.
* **Depth** is the number of weighted layers as the paper counts them (:attr:`ModelSpec.depth`:
  resnet20 is 20, resnet50 is 50).
* **Parameters** are those of the model as it will train: the spec fitted to the dataset's classes and
  channels (as ``train.launcher.fit_spec_to_data`` does), counted by :func:`models.summary.summarize`
  and cached per spec.
* **Presets**: ``presets`` lists preset names a student may train. A preset allows its plain twin too
  (the lab trains them side by side), and a spec matches a preset whatever its number of classes and
  input channels (those follow the dataset). When ``presets`` is set, a custom spec is refused; a custom
  model is allowed only when ``presets`` is ``None``.
* **Datasets**: ``datasets`` lists registry names (``shapes``, ``digits``, ...), ``folder:NAME`` for one
  imported dataset, or ``folder:*`` for any dataset a person imported.
* **Kept weights**: ``max_keep_weights_mb`` caps the disk budget a run may ask for its kept weights
  (``TrainConfig.keep_weights_budget_mb``, MB as the trainer counts them), and only when it keeps weights
  (``keep_weights_every`` > 0): the budget of a run that keeps none is never read, so it is never refused. A
  class's settings file that leaves it out gets :data:`DEFAULT_KEEP_WEIGHTS_MB`
  (:mod:`resnet_lab.classroom.settings`); a lesson's bounds have no default.
* **Image size** below what the model takes (:func:`resnet_lab.models.summary.min_input_size`, the one smallest
  size, which the Train page's widget starts from) is refused for everyone, teachers too: it is no class rule, but
  every training request passes here, so it is checked with the bounds and said in the same message.
* **Uploads**: ``max_upload_mb`` caps what one person's imported datasets may total (the zip files as
  uploaded, MB = 2**20 bytes as Streamlit's ``server.maxUploadSize`` counts); see :meth:`Bounds.check_upload`.

Bounds are the class's rules for students. Who they apply to (a teacher is not bounded by the class's
bounds, a lesson's bounds apply to everyone who opens it) is :func:`resnet_lab.classroom.lessons.effective_bounds`.
"""

from __future__ import annotations

import dataclasses
import math
import functools
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..checks import check_int
from ..data.types import DATASET_INFO, FOLDER_PREFIX, MAX_TRAIN_SUBSET, DataConfig, validate_name
from ..fmt import format_bytes
from ..models.presets import PRESETS, get_preset, matching_presets, plain_name
from ..spec import ModelSpec
from ..train_config import MAX_KEEP_BUDGET_MB, TrainConfig

ANY_USER_DATASET = "folder:*"  # in ``datasets``: every dataset a person imported
MIB = 2**20  # one "MB" of max_upload_mb
DEFAULT_KEEP_WEIGHTS_MB = 1000  # a class's max_keep_weights_mb when its settings leave it out: 5x a run's default
#   budget of 200 MB (resnet18's float32 weights are 45 MB a snapshot: ~11 each for it and its twin); 30 students
#   with 3 jobs each then keep at most 90 GB

# field -> (what the student sees, smallest and largest value a teacher may set, unit shown after values)
NUMERIC: dict[str, tuple[str, int, int, str]] = {
    "max_epochs": ("Epochs", 1, 1000, ""),
    "max_image_size": ("Image size", 8, 2048, " px"),
    "max_train_images": ("Training images", 1, MAX_TRAIN_SUBSET, ""),
    "max_depth": ("Depth", 2, 10_000, " layers"),
    "max_params": ("Parameters", 1, 100_000_000_000, ""),
    "max_batch_size": ("Batch size", 2, 8192, ""),
    "max_upload_mb": ("Uploads", 1, 1_000_000, " MB"),
    "max_keep_weights_mb": ("Kept weights", 1, int(MAX_KEEP_BUDGET_MB), " MB"),
}
FRACTIONAL = ("max_upload_mb", "max_keep_weights_mb")  # bounds that may be a fraction (MB)
ALLOWLISTS = ("datasets", "presets")
KEYS = (*NUMERIC, *ALLOWLISTS)  # every key a [bounds] table may hold


class OutOfBounds(ValueError):
    """A request outside the bounds (nothing was queued or imported). ``fields`` names the bounds it broke
    (e.g. ``("max_epochs",)``); the message says each one's value and what is allowed."""

    def __init__(self, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.fields = fields

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (type(self), (str(self), self.fields))


@dataclass(frozen=True)
class Bounds:
    """Server-side limits on what a student may train or upload. ``None`` everywhere: no bound."""

    max_epochs: int | None = None  # passes over the training split
    max_image_size: int | None = None  # side of the square images handed to the model, px
    max_train_images: int | None = None  # training images per run (the whole dataset counts when no subset)
    max_depth: int | None = None  # weighted layers as the paper counts (resnet20: 20, resnet50: 50)
    max_params: int | None = None  # parameters of one model, fitted to the dataset's classes
    max_batch_size: int | None = None  # images per optimizer step
    max_upload_mb: int | float | None = None  # MB (2**20 bytes) of uploaded datasets one person may keep
    max_keep_weights_mb: int | float | None = None  # MB of kept weights one run may budget (keep_weights_budget_mb)
    datasets: tuple[str, ...] | None = None  # allowed datasets: registry names, "folder:NAME", "folder:*"
    presets: tuple[str, ...] | None = None  # allowed presets (plain twins included); None: any model, custom too

    def __post_init__(self) -> None:
        for name, (_label, lo, hi, _unit) in NUMERIC.items():
            value = getattr(self, name)
            if value is None:
                continue
            if name in FRACTIONAL:
                uploads = name == "max_upload_mb"  # any share of a MB; a kept-weights budget is at least 1 MB
                if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                        not ((0 < value) if uploads else (lo <= value)) or not value <= hi:
                    raise ValueError(f"{name} must be a number of MB {'above 0' if uploads else f'from {lo}'} "
                                     f"and at most {hi:,}, got {value!r}")
            else:
                check_int(name, value, lo, hi, " (or leave it out for no bound)")
        for name in ALLOWLISTS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
                raise ValueError(f"{name} must be a list of names, got {value!r}")
            items = tuple(value)
            if not items:
                raise ValueError(f"{name} is an empty list: nothing could be trained; leave it out for no bound")
            for item in items:
                (_check_dataset_name if name == "datasets" else _check_preset_name)(item)
            if len(set(items)) != len(items):
                raise ValueError(f"{name} lists a name twice: {list(items)}")
            object.__setattr__(self, name, items)

    # --- building ------------------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, raw: Any, where: str = "[bounds]") -> "Bounds":
        """Bounds from an untrusted TOML table: unknown keys and bad values raise ValueError naming ``where``."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where} must be a table of bounds, got {type(raw).__name__}")
        unknown = sorted(set(map(str, raw)) - set(KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(KEYS)}")
        try:
            return cls(**{k: (tuple(v) if k in ALLOWLISTS and isinstance(v, list) else v) for k, v in raw.items()})
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        """The bounds that are set (TOML/JSON-ready), unset ones left out."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()
                if v is not None}

    @property
    def unbounded(self) -> bool:
        """No bound at all."""
        return all(getattr(self, f.name) is None for f in dataclasses.fields(self))

    def stricter(self, other: "Bounds") -> "Bounds":
        """Both bounds at once: the smaller of each number, the names both allowlists allow.

        A lesson's bounds combined with the class's, for example. Two allowlists with nothing in common give a
        ValueError (nothing could be trained under both)."""
        if not isinstance(other, Bounds):
            raise TypeError(f"stricter needs Bounds, got {type(other).__name__}")
        changes: dict[str, Any] = {}
        for name in NUMERIC:
            mine, theirs = getattr(self, name), getattr(other, name)
            changes[name] = theirs if mine is None else mine if theirs is None else min(mine, theirs)
        for name, allowed in (("datasets", _dataset_allowed), ("presets", _preset_allowed)):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is None or theirs is None:
                changes[name] = theirs if mine is None else mine
                continue
            both = [n for n in mine if allowed(n, theirs)]
            both += [n for n in theirs if n not in both and allowed(n, mine)]
            if not both:
                raise ValueError(f"the two {name} lists have nothing in common ({', '.join(mine)} and "
                                 f"{', '.join(theirs)}): nothing could be trained under both")
            changes[name] = tuple(both)
        return Bounds(**changes)

    # --- widgets -------------------------------------------------------------------------------

    def limit(self, field: str, lo: int | float, hi: int | float) -> tuple[int | float, int | float]:
        """A widget's range ``lo..hi`` clipped by the bound on ``field`` ("epochs" or "max_epochs", ...).

        Without a bound the range is returned as it is. A bound below ``lo`` (a teacher's bound smaller than
        the smallest value the widget can take) gives ``(lo, lo)``: the widget stays usable and the request is
        then refused by :meth:`check_training` with the bound in the message."""
        name = field if field.startswith("max_") else f"max_{field}"
        if name not in NUMERIC:
            raise ValueError(f"no bound named {field!r}; bounds: {', '.join(k.removeprefix('max_') for k in NUMERIC)}")
        bound = getattr(self, name)
        if bound is None:
            return lo, hi
        top = min(hi, bound)
        top = int(top) if isinstance(lo, int) and not isinstance(lo, bool) else float(top)  # the widget's own type
        return lo, max(lo, top)

    def allows_dataset(self, name: str) -> bool:
        """May a student train on the dataset ``name`` ("shapes", "folder:cats")?"""
        return self.datasets is None or _dataset_allowed(name, self.datasets)

    def allows_preset(self, name: str) -> bool:
        """May a student train the preset ``name`` (its plain twin counts as allowed with it)?"""
        return self.presets is None or _preset_allowed(name, self.presets)

    @property
    def allows_custom(self) -> bool:
        """May a student train a model that is not a preset (only when no preset allowlist is set)?"""
        return self.presets is None

    def describe(self) -> list[str]:
        """One line per bound that is set, for the teacher page and a lesson's header."""
        lines = []
        for name, (label, _lo, _hi, unit) in NUMERIC.items():
            value = getattr(self, name)
            if value is not None:
                shown = _count(value) if name == "max_params" else f"{value:,}" if isinstance(value, int) else \
                    f"{value:g}"
                lines.append(f"{label}: up to {shown}{unit}")
        if self.datasets is not None:
            lines.append(f"Datasets: {', '.join(map(_dataset_label, self.datasets))}")
        if self.presets is not None:
            lines.append(f"Models: {', '.join(self.presets)} (and their plain twins)")
        return lines

    # --- checks --------------------------------------------------------------------------------

    def check_training(self, spec: ModelSpec, data: DataConfig, train: TrainConfig) -> None:
        """Raise :class:`OutOfBounds` when training ``spec`` on ``data`` with ``train`` breaks any bound.

        Every broken bound is named in the one message (a student fixes them all at once)."""
        if not isinstance(spec, ModelSpec):
            raise TypeError(f"check_training needs a ModelSpec, got {type(spec).__name__}")
        if not isinstance(data, DataConfig):
            raise TypeError(f"check_training needs a DataConfig, got {type(data).__name__}")
        if not isinstance(train, TrainConfig):
            raise TypeError(f"check_training needs a TrainConfig, got {type(train).__name__}")
        problems: list[tuple[str, str]] = []
        if not self.allows_dataset(data.name):
            problems.append(("datasets", f"Dataset {data.name!r} is not allowed in this class: allowed "
                                         f"{', '.join(map(_dataset_label, self.datasets or ()))}."))
        problems += self._spec_problems(spec, data)
        lo = smallest_image_size(spec, data.name)
        if data.image_size < lo:  # no class rule: what the model takes (see the module docstring)
            problems.append(("image_size", f"Image size {data.image_size} px is too small for this model: it takes "
                                           f"{lo} px and up (below that a downsampling layer is handed a 1-pixel "
                                           "map)."))
        if self.max_image_size is not None and data.image_size > self.max_image_size:
            problems.append(("max_image_size", _above("Image size", f"{data.image_size} px",
                                                      f"{lo}–{max(lo, self.max_image_size)} px")))
        if self.max_train_images is not None:
            problems += self._images_problems(data)
        if self.max_epochs is not None and train.epochs > self.max_epochs and train.max_steps is None:
            problems.append(("max_epochs", _above("Epochs", str(train.epochs), f"1–{self.max_epochs}")))
        if self.max_epochs is not None and train.max_steps is not None:
            problems += self._steps_problems(data, train)
        if self.max_batch_size is not None and train.batch_size > self.max_batch_size:
            problems.append(("max_batch_size", _above("Batch size", str(train.batch_size),
                                                      f"2–{self.max_batch_size}")))
        if self.max_keep_weights_mb is not None and train.keep_weights_every and \
                train.keep_weights_budget_mb > self.max_keep_weights_mb:
            problems.append(("max_keep_weights_mb", _above("Kept weights budget", f"{train.keep_weights_budget_mb:g} MB",
                                                           f"1–{self.max_keep_weights_mb:g} MB")))
        if problems:
            raise OutOfBounds(" ".join(m for _, m in problems), tuple(f for f, _ in problems))

    def _steps_problems(self, data: DataConfig, train: TrainConfig) -> list[tuple[str, str]]:
        """A run that stops after ``max_steps`` optimizer steps (not after its epochs) is held to ``max_epochs`` by
        the passes over the training images those steps make; an unknown training-set size is refused."""
        assert self.max_epochs is not None and train.max_steps is not None
        images = data.train_subset or full_train_images(data)
        if images is None:
            return [("max_epochs", f"Steps {train.max_steps:,} cannot be checked against this class's bound of "
                                   f"{self.max_epochs} epochs: the number of training images is not known here; "
                                   "choose a number of training images.")]
        per_epoch = max(1, images // train.batch_size)
        epochs = min(train.epochs, math.ceil(train.max_steps / per_epoch))
        if epochs <= self.max_epochs:
            return []
        return [("max_epochs", _above("Epochs", f"{epochs} ({train.max_steps:,} steps of {per_epoch:,} an epoch)",
                                      f"1–{self.max_epochs}"))]

    def check_spec(self, spec: ModelSpec, data: DataConfig | None = None) -> None:
        """Raise :class:`OutOfBounds` when the model alone breaks a bound (presets, depth, parameters); with
        ``data``, parameters are counted for the model fitted to that dataset."""
        problems = self._spec_problems(spec, data)
        if problems:
            raise OutOfBounds(" ".join(m for _, m in problems), tuple(f for f, _ in problems))

    def check_upload(self, owner_bytes_so_far: int, new_bytes: int) -> None:
        """Raise :class:`OutOfBounds` when an upload of ``new_bytes`` would bring one person's uploaded datasets
        (``owner_bytes_so_far`` already) above ``max_upload_mb``."""
        for name, v in (("owner_bytes_so_far", owner_bytes_so_far), ("new_bytes", new_bytes)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a number of bytes >= 0, got {v!r}")
        if self.max_upload_mb is None:
            return
        cap = int(self.max_upload_mb * MIB)
        total = owner_bytes_so_far + new_bytes
        if total > cap:
            already = f" (you already keep {format_bytes(owner_bytes_so_far)})" if owner_bytes_so_far else ""
            raise OutOfBounds(
                f"Uploads: this one ({format_bytes(new_bytes)}) would bring your datasets to {format_bytes(total)}"
                f"{already}, above this class's bound: allowed up to {self.max_upload_mb:g} MB per person. "
                "Delete one of your datasets, or upload fewer or smaller images.", ("max_upload_mb",))

    # --- helpers -------------------------------------------------------------------------------

    def _spec_problems(self, spec: ModelSpec, data: DataConfig | None) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if self.presets is not None:
            names = matching_presets(spec)
            if not any(_preset_allowed(n, self.presets) for n in names):
                what = f"Model {names[0]} ({spec.describe()})" if names else \
                    f"Model {spec.describe()} (a custom model)"
                problems.append(("presets", f"{what} is not allowed in this class: allowed "
                                            f"{', '.join(self.presets)} (each with its plain twin)."))
        if self.max_depth is not None and spec.depth > self.max_depth:
            problems.append(("max_depth", _above("Depth", f"{spec.depth} layers",
                                                 f"up to {self.max_depth} layers")))
        elif self.max_params is not None:  # depth first: a net refused for its depth is never counted
            n = param_count(_fitted(spec, data))
            if n > self.max_params:
                problems.append(("max_params", _above("Parameters", _count(n), f"up to {_count(self.max_params)}")))
        return problems

    def _images_problems(self, data: DataConfig) -> list[tuple[str, str]]:
        bound = self.max_train_images
        assert bound is not None
        if data.train_subset is not None:
            if data.train_subset > bound:
                return [("max_train_images", _above("Training images", f"{data.train_subset:,}", f"1–{bound:,}"))]
            return []
        full = full_train_images(data)
        if full is None:
            return [("max_train_images", f"Training images: the size of all of {data.name} is not known here, and "
                                         f"this class's bound allows 1–{bound:,}: choose a number of training "
                                         "images.")]
        if full > bound:
            return [("max_train_images", _above("Training images:", f"all of {data.name} ({full:,})",
                                                f"1–{bound:,}") + " Choose a number of training images.")]
        return []


def _above(label: str, value: str, allowed: str) -> str:
    return f"{label} {value} is above this class's bound: allowed {allowed}."


def _count(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


def _check_dataset_name(name: Any) -> None:
    if not isinstance(name, str):
        raise ValueError(f"datasets must list names, got {name!r}")
    if name == ANY_USER_DATASET:
        return
    if name.startswith(FOLDER_PREFIX):
        validate_name(name[len(FOLDER_PREFIX):])
        return
    if name not in DATASET_INFO:
        raise ValueError(f"datasets: {name!r} is not a dataset; choose from {', '.join(DATASET_INFO)}, "
                         f"folder:NAME or {ANY_USER_DATASET} (any imported dataset)")


def _check_preset_name(name: Any) -> None:
    if not isinstance(name, str):
        raise ValueError(f"presets must list preset names, got {name!r}")
    try:
        get_preset(name)
    except ValueError as e:
        raise ValueError(f"presets: {e}") from None


def _dataset_allowed(name: str, allowed: Iterable[str]) -> bool:
    allowed = tuple(allowed)
    return name in allowed or (name.startswith(FOLDER_PREFIX) and ANY_USER_DATASET in allowed)


def _preset_allowed(name: str, allowed: Iterable[str]) -> bool:
    allowed = tuple(allowed)
    return name in allowed or any(plain_name(a) == name for a in allowed)


def _dataset_label(name: str) -> str:
    return "your own images (folder:*)" if name == ANY_USER_DATASET else name


def smallest_image_size(spec: ModelSpec, dataset: str) -> int:
    """The smallest ``image_size`` ``spec`` trains at on the dataset named ``dataset``:
    :func:`resnet_lab.models.summary.min_input_size` with the dataset's floor, read from its name alone (a user
    dataset's folder is not opened; an unknown name counts the model's alone, and is refused for itself)."""
    from ..data.types import size_range
    from ..models.summary import min_input_size

    try:
        floor = size_range(dataset)[0]
    except ValueError:
        floor = 0
    return max(min_input_size(spec), floor)


def _fitted(spec: ModelSpec, data: DataConfig | None) -> ModelSpec:
    """The spec with the dataset's classes and channels, as training will build it (unchanged when unknown)."""
    if data is None:
        return spec
    from ..data.registry import dataset_info

    try:
        info = dataset_info(data.name)
    except ValueError:  # a user dataset not (or no longer) imported: training refuses it with its own message
        return spec
    return info.fit(spec)


@functools.lru_cache(maxsize=256)
def param_count(spec: ModelSpec) -> int:
    """Parameters of the model ``spec`` builds (cached: summarising a 1,202-layer net takes seconds)."""
    from ..models.summary import min_input_size, summarize

    # parameters do not depend on the input size: the smallest allowed one keeps the FLOP count cheap
    return summarize(spec, min_input_size(spec)).params


def full_train_images(data: DataConfig) -> int | None:
    """Training images ``data`` uses when ``train_subset`` is None, or None when that is not known here."""
    name = data.name
    if name == "shapes":
        from ..data.shapes import default_train_size

        return default_train_size(data.image_size)
    info = DATASET_INFO.get(name)
    if info is not None and info.train_images is not None:  # the dataset's info says its size
        n = info.train_images
        return n if info.official_val else n - round(n * data.val_fraction)  # carved out as data/digits.py does
    if name.startswith(FOLDER_PREFIX):
        from ..data.folders import folder_listing

        try:
            _classes, files = folder_listing(name[len(FOLDER_PREFIX):])
        except ValueError:
            return None
        return files - round(files * data.val_fraction)  # files the door may still refuse count too: an upper end
    return None


__all__ = ["ANY_USER_DATASET", "Bounds", "DEFAULT_KEEP_WEIGHTS_MB", "KEYS", "OutOfBounds", "full_train_images",
           "matching_presets", "param_count", "smallest_image_size"]

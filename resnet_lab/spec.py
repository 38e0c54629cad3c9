"""ModelSpec: the one description of a ResNet variant.

Everything the builder needs is here, nothing else: a spec is a frozen dataclass that validates
itself on construction and round-trips through JSON. The plain twin of any spec is
``spec.replace(skip=False)``.

``ModelSpec.from_dict`` / ``from_json`` are the one safe door for spec JSON coming from users,
files or URLs: unknown keys, wrong types and out-of-range values raise ``ValueError`` naming the
field and the allowed values, and oversized input is refused before it is parsed.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Mapping

from .checks import check_int

STEMS = ("imagenet", "cifar")  # imagenet: 7x7/2 conv + 3x3/2 max-pool; cifar: 3x3/1 conv
BLOCKS = ("basic", "bottleneck")
SHORTCUTS = ("A", "B", "C")  # He et al. 2015, sec. 3.3 and 4.1
NORMS = ("batch", "none")

MAX_STAGES = 6
MAX_STAGE_DEPTH = 200  # resnet1202 has 200 blocks per stage
MAX_WIDTH = 4096
MAX_IN_CHANNELS = 64
MAX_CLASSES = 100_000
MAX_JSON_BYTES = 16_384  # a spec is a few hundred bytes; anything far larger is not a spec

SPEC_VERSION = 1


def kind_of(skip: bool) -> str:
    """"ResNet" for a network with skip connections, "plain" for its twin without."""
    return "ResNet" if skip else "plain"


@dataclass(frozen=True)
class ModelSpec:
    stem: str = "imagenet"  # "imagenet" (7x7 stride-2 conv + max-pool) or "cifar" (3x3 stride-1 conv)
    block: str = "basic"  # "basic" (two 3x3 convs) or "bottleneck" (1x1, 3x3, 1x1; expansion 4)
    depths: tuple[int, ...] = (2, 2, 2, 2)  # residual blocks per stage
    widths: tuple[int, ...] = (64, 128, 256, 512)  # base channels per stage (bottleneck outputs 4x)
    skip: bool = True  # identity/projection shortcuts; False gives the plain twin (no addition at all)
    shortcut: str = "B"  # A: zero-pad identity, B: projection when shape changes, C: projection always
    preact: bool = False  # pre-activation blocks (BN-ReLU-conv, He et al. 2016 "Identity Mappings")
    norm: str = "batch"  # "batch" (BatchNorm2d) or "none" (convs get a bias instead)
    zero_init_residual: bool = False  # zero the last layer of each residual branch (arXiv:1706.02677)
    in_channels: int = 3  # channels of the input image
    num_classes: int = 1000  # outputs of the final linear layer

    def __post_init__(self) -> None:
        # Accept lists (from JSON) but store tuples so the spec stays hashable.
        object.__setattr__(self, "depths", _int_tuple("depths", self.depths))
        object.__setattr__(self, "widths", _int_tuple("widths", self.widths))
        _check_choice("stem", self.stem, STEMS)
        _check_choice("block", self.block, BLOCKS)
        _check_choice("shortcut", self.shortcut, SHORTCUTS)
        _check_choice("norm", self.norm, NORMS)
        for name in ("skip", "preact", "zero_init_residual"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not 1 <= len(self.depths) <= MAX_STAGES:
            raise ValueError(f"depths must list 1..{MAX_STAGES} stages, got {len(self.depths)}")
        if len(self.widths) != len(self.depths):
            raise ValueError(
                f"widths must have one entry per stage ({len(self.depths)} stages), got {len(self.widths)}"
            )
        for i, d in enumerate(self.depths):
            check_int(f"depths[{i}]", d, 1, MAX_STAGE_DEPTH)
        for i, w in enumerate(self.widths):
            check_int(f"widths[{i}]", w, 1, MAX_WIDTH)
        if self.shortcut == "A" and any(b < a for a, b in zip(self.widths, self.widths[1:])):
            raise ValueError(
                f"widths={list(self.widths)}: shortcut A pads channels with zeros, so widths must not "
                "decrease from stage to stage; use shortcut B or C"
            )
        check_int("in_channels", self.in_channels, 1, MAX_IN_CHANNELS)
        check_int("num_classes", self.num_classes, 1, MAX_CLASSES)

    # --- derived facts -------------------------------------------------------------------

    @property
    def expansion(self) -> int:
        """Output channels of a block relative to its base width (1 basic, 4 bottleneck)."""
        return 4 if self.block == "bottleneck" else 1

    @property
    def depth(self) -> int:
        """Weighted layers on the main path, counted as the paper does (stem conv + block convs + fc)."""
        convs_per_block = 3 if self.block == "bottleneck" else 2
        return 1 + convs_per_block * sum(self.depths) + 1

    @property
    def default_input_size(self) -> int:
        """Image side the stem was designed for: 224 for ImageNet, 32 for CIFAR."""
        return 224 if self.stem == "imagenet" else 32

    @property
    def min_input_size(self) -> int:
        """Smallest image side for which every stage still has at least one pixel."""
        downsamples = len(self.depths) - 1 + (2 if self.stem == "imagenet" else 0)
        return 2**downsamples

    def replace(self, **changes: Any) -> "ModelSpec":
        """A copy with some fields changed (validated again)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown ModelSpec field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def twin(self) -> "ModelSpec":
        """The same network with the skip connections flipped (plain twin of a ResNet and back)."""
        return self.replace(skip=not self.skip)

    @property
    def kind(self) -> str:
        """What the network is, as the lab says it everywhere: "ResNet" (skip connections) or "plain"."""
        return kind_of(self.skip)

    def describe(self) -> str:
        """A short human name, e.g. 'ResNet-56 (cifar stem, basic, option A)'."""
        kind = ("PreAct-" if self.preact else "") + ("ResNet" if self.skip else "Plain")
        extra = f", option {self.shortcut}" if self.skip else ""
        return f"{kind}-{self.depth} ({self.stem} stem, {self.block}{extra})"

    # --- JSON ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["depths"] = list(self.depths)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelSpec":
        """Validate an untrusted mapping into a spec. Missing fields take their defaults."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a model spec must be a JSON object, got {type(data).__name__}")
        data = dict(data)
        data.pop("version", None)
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(data) - set(names)
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                f"allowed: {', '.join(names)}"
            )
        for key in ("depths", "widths"):
            if key in data and not isinstance(data[key], (list, tuple)):
                raise ValueError(f"{key} must be a list of integers, got {data[key]!r}")
        for key in ("stem", "block", "shortcut", "norm"):
            if key in data and not isinstance(data[key], str):
                raise ValueError(f"{key} must be a string, got {data[key]!r}")
        return cls(**data)

    def to_json(self, indent: int | None = 2) -> str:
        payload = {"version": SPEC_VERSION, **self.to_dict()}
        if indent is None:
            return json.dumps(payload, separators=(",", ":"))
        return json.dumps(payload, indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> "ModelSpec":
        """Parse untrusted JSON text into a spec, or raise ValueError with a readable message."""
        if isinstance(text, bytes):
            if len(text) > MAX_JSON_BYTES:
                raise ValueError(f"spec JSON is {len(text):,} bytes; the limit is {MAX_JSON_BYTES:,}")
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"spec JSON is not UTF-8 text ({e.reason} at byte {e.start})") from None
        if len(text.encode("utf-8")) > MAX_JSON_BYTES:
            raise ValueError(f"spec JSON is longer than the {MAX_JSON_BYTES:,}-byte limit")
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as e:
            raise ValueError(f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
        if isinstance(data, dict) and "version" in data and data["version"] != SPEC_VERSION:
            raise ValueError(f"spec version {data['version']!r} is not supported (expected {SPEC_VERSION})")
        return cls.from_dict(data)


def describe_spec(spec: dict[str, Any]) -> str:
    """A stored spec (a dict, as records keep it) as :meth:`ModelSpec.describe` says it, or "?" when this lab
    cannot read it."""
    try:
        return ModelSpec.from_dict(spec).describe()
    except ValueError:
        return "?"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not valid JSON: {name} is not allowed")


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {', '.join(allowed)}")


def _int_tuple(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name} must be a list of integers, got {value!r}")
    items = tuple(value)
    if len(items) > MAX_STAGES:
        raise ValueError(f"{name} must list 1..{MAX_STAGES} stages, got {len(items)}")
    for i, v in enumerate(items):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{name}[{i}] must be an integer, got {v!r}")
    return items


__all__ = ["ModelSpec", "describe_spec", "STEMS", "BLOCKS", "SHORTCUTS", "NORMS"]

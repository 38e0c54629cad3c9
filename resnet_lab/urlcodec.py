"""The one safe door for URL query parameters: a spec (and input size) <-> a short, shareable query.

A preset is shared by name (``?model=resnet56``); anything else as compact JSON holding only the
fields that differ from ``ModelSpec()`` (``?spec={"stem":"cifar",...}``). Decoding treats the
query as hostile: unknown parameters are ignored, oversized values are refused, and every value
goes through ``ModelSpec.from_dict`` validation.

:func:`spec_from_query` refuses a link with any bad value (the Build page's import door);
:func:`open_link` opens a link whose model is good even when its size is not: the size moves to the
nearest one the model works at, and a note says so (a shared link is never refused for its size alone).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping

from .models.presets import get_preset, preset_name
from .models.summary import MAX_INPUT_SIZE, check_input_size, min_input_size, shape_break
from .spec import ModelSpec

MAX_PARAM_CHARS = 2048
_DEFAULT = ModelSpec().to_dict()


def spec_to_query(spec: ModelSpec, input_size: int | None = None) -> dict[str, str]:
    """Query parameters that reopen ``spec`` (and ``input_size`` when it is not the stem's default)."""
    name = preset_name(spec)
    if name is not None:
        query = {"model": name}
    else:
        diff = {k: v for k, v in spec.to_dict().items() if v != _DEFAULT[k]}
        query = {"spec": json.dumps(diff, separators=(",", ":"))}
    if input_size is not None and input_size != spec.default_input_size:
        query["size"] = str(input_size)
    return query


def _single(params: Mapping[str, object], key: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"the link has {len(value)} values for {key!r}; expected one")
        value = value[0]
    value = str(value)
    if len(value) > MAX_PARAM_CHARS:
        raise ValueError(f"the link's {key!r} value is {len(value):,} characters; the limit is {MAX_PARAM_CHARS:,}")
    return value


def input_size_range(spec: ModelSpec) -> tuple[int, int]:
    """The input sizes a link may give ``spec`` (the range :func:`models.summary.check_input_size` allows): from
    :func:`models.summary.min_input_size`, the lab's one smallest size."""
    return min_input_size(spec), MAX_INPUT_SIZE


def _model(params: Mapping[str, object]) -> ModelSpec | None:
    """The model the query names (None: it names none); ValueError for a bad one."""
    model, spec_json = _single(params, "model"), _single(params, "spec")
    if model is not None and spec_json is not None:
        raise ValueError("the link gives both 'model' and 'spec'; use one")
    if model is not None:
        return get_preset(model.strip())
    if spec_json is not None:
        return ModelSpec.from_json(spec_json)
    return None


def _size(spec: ModelSpec, size: str) -> tuple[int | None, str | None]:
    """(the usable input size nearest to the link's ``size``, or None when it is not a number; what was wrong
    with it, or None when it is usable as it is)."""
    lo, hi = input_size_range(spec)
    text = size.strip()
    if not text.isdigit():
        return None, f"the link's size {size[:20]!r} is not a whole number of pixels (allowed {lo}..{hi})"
    if len(text) > len(str(MAX_INPUT_SIZE)) or int(text) > hi:
        shown = text if len(text) <= 20 else text[:20] + "…"
        return hi, f"the link's size {shown} px is too large for this model: allowed {lo}..{hi} px"
    value = int(text)
    if value < lo:
        brk = shape_break(spec, value) if value >= 1 else None
        why = f" — {brk.message()}" if brk is not None else ""
        return lo, f"the link's size {value} px is too small for this model: allowed {lo}..{hi} px{why}"
    check_input_size(spec, value)  # the one rule for input sizes: lo..hi is what it allows
    return value, None


def spec_from_query(params: Mapping[str, object]) -> tuple[ModelSpec, int | None] | None:
    """(spec, input size or None) from query parameters; None when the query names no model.

    Raises ValueError with a readable message when the query names a model badly, or gives a size the
    model cannot take (the message says the allowed range).
    """
    spec = _model(params)
    if spec is None:
        return None
    size = _single(params, "size")
    if size is None:
        return spec, None
    input_size, problem = _size(spec, size)
    if problem is not None:
        raise ValueError(problem)
    return spec, input_size


@dataclass(frozen=True)
class OpenedLink:
    """A link's model, opened even when its size could not be used as it was."""

    spec: ModelSpec  # the model the link names
    input_size: int | None  # the input size to use (None: the link gives none, or one that is no number)
    note: str | None  # what was changed to open it (None: nothing), e.g. a size moved into the allowed range


def open_link(params: Mapping[str, object]) -> OpenedLink | None:
    """The link's model and a usable input size; None when the query names no model.

    A bad model (unknown preset, invalid spec JSON, oversized values) raises ValueError as in
    :func:`spec_from_query`. A size the model cannot take does not: a too-small one becomes the smallest
    size that works, a too-large one the largest, one that is not a number is dropped, and ``note`` says so.
    """
    spec = _model(params)
    if spec is None:
        return None
    size = _single(params, "size")
    if size is None:
        return OpenedLink(spec, None, None)
    input_size, problem = _size(spec, size)
    used = f"{input_size} px is used instead" if input_size is not None else "the model's own size is used"
    note = None if problem is None else f"{problem.rstrip('.')}. {used[0].upper()}{used[1:]}."
    return OpenedLink(spec, input_size, note)


__all__ = ["OpenedLink", "input_size_range", "open_link", "spec_from_query", "spec_to_query"]

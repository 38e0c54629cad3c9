"""The one safe door for URL query parameters: a spec (and input size) <-> a short, shareable query.

A preset is shared by name (``?model=resnet56``); anything else as compact JSON holding only the
fields that differ from ``ModelSpec()`` (``?spec={"stem":"cifar",...}``). Decoding treats the
query as hostile: unknown parameters are ignored, oversized values are refused, and every value
goes through ``ModelSpec.from_dict`` validation.
"""

from __future__ import annotations

import json
from typing import Mapping

from .models.presets import get_preset, preset_name
from .models.summary import MAX_INPUT_SIZE, check_input_size
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


def spec_from_query(params: Mapping[str, object]) -> tuple[ModelSpec, int | None] | None:
    """(spec, input size or None) from query parameters; None when the query names no model.

    Raises ValueError with a readable message when the query names a model badly.
    """
    model, spec_json, size = _single(params, "model"), _single(params, "spec"), _single(params, "size")
    if model is not None and spec_json is not None:
        raise ValueError("the link gives both 'model' and 'spec'; use one")
    if model is not None:
        spec = get_preset(model.strip())
    elif spec_json is not None:
        spec = ModelSpec.from_json(spec_json)
    else:
        return None
    input_size = None
    if size is not None:
        if not size.strip().isdigit() or len(size.strip()) > len(str(MAX_INPUT_SIZE)):
            raise ValueError(f"the link's size {size[:20]!r} is not a whole number of pixels")
        input_size = int(size)
        check_input_size(spec, input_size)
    return spec, input_size


__all__ = ["spec_to_query", "spec_from_query"]

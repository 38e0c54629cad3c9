"""Formatting helpers shared by commands, figures and pages: numbers for JSON and plots, sizes for people."""

from __future__ import annotations

import math
from typing import Any


def finite_or_none(v: Any) -> float | None:
    """``float(v)``, or None when ``v`` is None, NaN or infinite.

    JSON has no NaN or infinity, and plotly draws None as a gap, so this is the one door for a
    number that may not be finite on its way into either. Accepts ints, floats, numpy scalars and
    one-element tensors; a string is refused (``TypeError``) rather than parsed.
    """
    if v is None:
        return None
    if isinstance(v, (str, bytes)):
        raise TypeError(f"need a number or None, got {type(v).__name__} {v!r}")
    f = float(v)
    return f if math.isfinite(f) else None


def format_bytes(n: float) -> str:
    """A size in binary units for people: 100 -> '100 B', 1536 -> '1.5 KiB', 3 * 2**30 -> '3.0 GiB'."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


__all__ = ["finite_or_none", "format_bytes"]

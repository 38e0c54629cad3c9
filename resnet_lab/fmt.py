"""Formatting helpers shared by commands, figures and pages: numbers for JSON and plots; sizes, durations and
percentages for people; CSV cells that a spreadsheet opens as text."""

from __future__ import annotations

import csv
import io
import math
from typing import Any, Iterable, Sequence


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


def format_count(n: float, trim: bool = False) -> str:
    """A count for people, in SI units (G, never plotly's "B"): 1_689_512 -> '1.69M', 4_089_184_256 -> '4.09G'.
    ``trim`` drops trailing zeros, for axis ticks: 1_500_000_000 -> '1.5G', 500_000_000 -> '500M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            number = f"{n / scale:.2f}"
            return (number.rstrip("0").rstrip(".") if trim else number) + unit
    return f"{n:.0f}"


def format_load(load: float, cores: int) -> str:
    """A CPU's load for people, as cores busy out of those it has: (3.2, 4) -> '3.2 of 4 cores busy (80%)'.
    A load above the cores (processes waiting for one) is capped at all of them and the rest said apart:
    (3.2, 2) -> '2.0 of 2 cores busy (100%), 1.2 more waiting' — never '160%'."""
    cores = max(1, int(cores))
    busy = min(max(0.0, float(load)), cores)
    text = f"{busy:.1f} of {cores} core{'s' if cores != 1 else ''} busy ({busy / cores:.0%})"
    return text + (f", {load - cores:.1f} more waiting" if load - cores >= 0.05 else "")


def format_duration(s: float | None) -> str:
    """Seconds as a person says them: 0.2 -> '1 s', 42 -> '42 s', 90 -> '2 min', 9000 -> '2.5 h' ('?' for None)."""
    if s is None:
        return "?"
    if s < 60:
        return f"{max(1, round(s))} s"
    if s < 5400:
        return f"{round(s / 60)} min"
    return f"{s / 3600:.1f} h"


def format_pct(x: float | None, digits: int = 1) -> str:
    """A fraction as a percentage for people: 0.1234 -> '12.3%' (``digits`` decimals); '—' for None."""
    return "—" if x is None else f"{100 * x:.{digits}f}%"


# what a spreadsheet reads as the start of a formula (and a tab or carriage return in front of one)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(v: Any) -> Any:
    """A value for a CSV cell a spreadsheet will open: text that begins like a formula (``=`` ``+`` ``-`` ``@``,
    a tab or a carriage return) gets a leading apostrophe, so ``=HYPERLINK(...)`` in a run's name is shown as
    text, never run; numbers (negative ones included) stay numbers; None, NaN and infinities become empty."""
    if isinstance(v, str):
        return "'" + v if v.startswith(_FORMULA_START) else v
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """``rows`` under a header of ``columns`` as CSV text, every cell (the header's too) through
    :func:`spreadsheet_safe`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([spreadsheet_safe(c) for c in columns])
    writer.writerows([spreadsheet_safe(v) for v in row] for row in rows)
    return out.getvalue()


__all__ = ["csv_text", "finite_or_none", "format_bytes", "format_count", "format_duration", "format_load",
           "format_pct", "spreadsheet_safe"]

"""Range checks for untrusted settings: one wording for every config in the lab.

Every frozen config (``ModelSpec``, ``TrainConfig``, ``DataConfig``, landscape and degradation
settings) refuses a bad value with a ``ValueError`` that names the field, the value and what is
allowed, in one of two forms:

* wrong type: ``"seed must be an integer in 0..2147483647, got 1.5"``
* out of range: ``"seed=-1 is out of range; allowed 0..2147483647"``

``where`` is appended to the allowed range, e.g. ``" for shapes"`` or ``" (or None for all)"``.
A ``bool`` is never a number here, although Python lets ``True`` pass as ``1``.
"""

from __future__ import annotations

from typing import Any

MAX_SEED = 2**31 - 1  # largest seed any config accepts (what a 32-bit signed integer holds)


def check_int(name: str, value: Any, lo: int, hi: int, where: str = "") -> int:
    """``value`` if it is an ``int`` (not a bool) in ``lo..hi`` inclusive; ``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer in {lo}..{hi}{where}, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name}={value} is out of range; allowed {lo}..{hi}{where}")
    return value


def check_float(name: str, value: Any, lo: float, hi: float, where: str = "") -> float:
    """``float(value)`` if it is an int or float (not a bool) in ``lo..hi`` inclusive; ``ValueError``
    otherwise. NaN and infinities are out of every (finite) range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number in {lo:g}..{hi:g}{where}, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name}={value!r} is out of range; allowed {lo:g}..{hi:g}{where}")
    return float(value)


__all__ = ["MAX_SEED", "check_float", "check_int"]


def read_small_text(path: Any, limit: int, what: str, error: type[ValueError] = ValueError,
                    hint: str = "") -> str:
    """The UTF-8 text of the small file ``path`` (a settings file, a lesson, a challenge: untrusted), read at most
    ``limit`` bytes far. ``error`` (a ValueError subclass) says what went wrong, naming the file: it cannot be read
    ("the ``what`` file ... cannot be read"), it is larger than ``limit`` bytes (``hint`` appended), or it is not
    UTF-8 text."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise error(f"the {what} file {path} cannot be read: {e.strerror or e}") from None
    if len(data) > limit:
        raise error(f"{path} is larger than {limit:,} bytes{hint}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None


def check_text(name: str, value: Any, limit: int, required: bool = False) -> str:
    """An untrusted piece of text from a file a teacher wrote (a title, an intro): a string, stripped, at most
    ``limit`` characters, no control characters but newlines and tabs, and not empty when ``required``."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise ValueError(f"{name} is empty")
    if len(value) > limit:
        raise ValueError(f"{name} is {len(value):,} characters long; at most {limit:,}")
    if any(ord(ch) < 32 and ch not in "\n\t" or ch == "\x7f" for ch in value):
        raise ValueError(f"{name} has control characters in it")
    return value

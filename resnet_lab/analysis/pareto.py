"""Accuracy against cost: the Pareto front of a set of models, and the sentence a student reads off it.

A point is a model with an accuracy (higher is better) and a cost (lower is better: parameters, multiply-adds,
seconds of training; a speed such as images/s is handed in as its inverse, seconds per image). Point ``q``
*dominates* ``p`` when it is at least as accurate and at most as costly, and strictly better in one of the two.
The front is every point no other point dominates, cheapest first.

Ties: two points with the same accuracy *and* the same cost dominate neither each other, so both are on the front
(two runs of one preset that ended level are both shown as best buys). Two points of equal accuracy at different
costs: the costlier is dominated. Points without a number (None or NaN) are left out by :func:`front`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

WITHIN_POINTS = 1.0  # "within N points of the best": accuracy percentage points a cheaper model may lose


@dataclass(frozen=True)
class Point:
    label: str  # what the sentence names it by ("resnet20", "resnet20 #12")
    accuracy: float  # a fraction, 0..1
    cost: float  # lower is better, in the axis' unit


@dataclass(frozen=True)
class CostAxis:
    """How a sentence speaks of a cost: ``noun`` ("the parameters"), and how a ratio reads on it."""

    noun: str  # "parameters", "multiply-adds", "training time", "time per image"
    fewer: str = "fewer"  # "fewer" for counts, "less" for amounts
    speed: str | None = None  # for a cost that is an inverse speed: the speed's noun ("images/s"), said instead


COST = CostAxis("cost", "less")


def _finite(p: Point) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in (p.accuracy, p.cost))


def dominates(q: Point, p: Point) -> bool:
    """Whether ``q`` is at least as accurate and at most as costly as ``p``, and strictly better in one."""
    return q.accuracy >= p.accuracy and q.cost <= p.cost and (q.accuracy > p.accuracy or q.cost < p.cost)


def front(points: Sequence[Point]) -> list[Point]:
    """The points no other point dominates, cheapest first (then most accurate, then by label). Equal points are
    all kept; points without a finite accuracy and cost are left out. O(n log n)."""
    ok = sorted((p for p in points if _finite(p)), key=lambda p: (p.cost, -p.accuracy, p.label))
    out: list[Point] = []
    best: Point | None = None  # the most accurate point seen so far (the cheapest such)
    for p in ok:
        if best is None or p.accuracy > best.accuracy or (p.accuracy == best.accuracy and p.cost == best.cost):
            out.append(p)
            if best is None or p.accuracy > best.accuracy:
                best = p
    return out


def ratio_words(ratio: float) -> str:
    """A cost ratio (cheaper / dearer, 0 < ratio <= 1) in words: "half", "a third", "a quarter" when it is close
    to one of those (within 10%), else "N×" of the inverse (1/7 -> "7×"), or "nearly the same" above 2/3."""
    if not 0 < ratio <= 1:
        raise ValueError(f"a cost ratio is in (0, 1], got {ratio!r}")
    inverse = 1 / ratio
    for n, words in ((2, "half"), (3, "a third"), (4, "a quarter")):
        if abs(inverse - n) <= 0.1 * n:
            return words
    if inverse < 1.5:
        return "nearly the same"
    return f"{inverse:.0f}×" if inverse >= 9.5 else f"{inverse:.1f}×".replace(".0×", "×")


def _at(ratio: float, axis: CostAxis) -> str:
    """"at a third of the parameters", "with 7× fewer parameters", "at 3× the images/s"."""
    words = ratio_words(ratio)
    if axis.speed is not None:  # a speed: the cheaper model is faster
        inverse = 1 / ratio
        times = {"half": "twice", "a third": "3×", "a quarter": "4×"}.get(words, words)
        return f"at {times if words != 'nearly the same' else f'{inverse:.1f}×'} the {axis.speed}"
    if words == "nearly the same":
        return f"at {ratio:.0%} of the {axis.noun}"
    if words.endswith("×"):
        return f"with {words} {axis.fewer} {axis.noun}"
    return f"at {words} the {axis.noun}" if words == "half" else f"at {words} of the {axis.noun}"


def _pct(acc: float) -> str:
    return f"{100 * acc:.1f}%"


def sentence(points: Sequence[Point], axis: CostAxis = COST, within: float = WITHIN_POINTS) -> str:
    """What the points say, computed from them: the most accurate model, and the cheapest model within ``within``
    accuracy points of it with how much cheaper it is ("resnet20 is within 0.6 points of the best (resnet56,
    92.1%) at a third of the parameters"); or that nothing cheaper comes that close. "" without a finite point."""
    ok = front(points)
    if not ok:
        return ""
    best = max(ok, key=lambda p: (p.accuracy, -p.cost))
    ties = [p for p in ok if p.cost == best.cost and p.accuracy == best.accuracy]
    if len(ties) == len(ok):  # one point (or equal ones) is both the most accurate and the cheapest
        others = len([p for p in points if _finite(p)]) - len(ties)
        tail = f"; the {others} other{'s' if others != 1 else ''} cost more for less" if others else ""
        if len(ties) == 1:
            return f"{best.label} is the best buy: the most accurate ({_pct(best.accuracy)}) and the cheapest{tail}."
        names = ", ".join(p.label for p in ties[:-1]) + f" and {ties[-1].label}"
        return f"{names} tie as the best buy: equally accurate ({_pct(best.accuracy)}) at the same cost{tail}."
    close = [p for p in ok if p.cost < best.cost and 100 * (best.accuracy - p.accuracy) <= within + 1e-9]
    if close:
        cheap = close[0]  # the front is cheapest first
        gap = 100 * (best.accuracy - cheap.accuracy)
        how = "as accurate as" if gap < 0.05 else f"within {gap:.1f} points of"
        return (f"{cheap.label} is {how} the best ({best.label}, {_pct(best.accuracy)}) "
                f"{_at(cheap.cost / best.cost, axis)}.")
    cheapest = ok[0]
    return (f"{best.label} is the most accurate ({_pct(best.accuracy)}) and nothing cheaper comes within "
            f"{within:g} point{'s' if within != 1 else ''} of it; the cheapest on the front, {cheapest.label}, "
            f"reaches {_pct(cheapest.accuracy)} {_at(cheapest.cost / best.cost, axis)}.")


__all__ = ["COST", "CostAxis", "Point", "WITHIN_POINTS", "dominates", "front", "ratio_words", "sentence"]

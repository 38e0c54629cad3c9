"""The loss landscape in words: what a page or the CLI says about finished slices and interpolations.

The sentences are built from the numbers of :mod:`resnet_lab.analysis.landscape` (:func:`rise_at_half_span`,
:func:`interpolation_summary`); they state a paper's finding (Li et al. 2018, Goodfellow et al. 2015) only when
the numbers show it.
"""

from __future__ import annotations

import math
from typing import Sequence

from ...analysis.landscape import Interpolation, Surface, interpolation_summary, rise_at_half_span

SAME_RISE = 1.1
"""Two rises at half span within 10% of each other count as "about the same" basin: the loss at each grid
point is a mean over a couple of batches, and another direction seed moves the rise by a few percent."""


def basin_sentence(surfaces: Sequence[Surface]) -> str:
    """What the slices show about the basins, from their numbers: each model's rise at ½ span, and — for a
    ResNet beside its plain twin — which basin is flatter and by what factor, stated as Li et al.'s finding
    only when the ResNet's is the flatter one. "" when no rise could be computed (a stopped job).
    PCA slices (:func:`path_sentence`) are not compared: their directions are in each path's own parameter
    units, not filter-normalized, so their rises do not compare across models."""
    if any(s.path is not None for s in surfaces):
        return path_sentence(surfaces)
    rises = [(s, rise_at_half_span(s)) for s in surfaces]
    rises = [(s, r) for s, r in rises if math.isfinite(r)]
    if not rises:
        return ""
    half = surfaces[0].params.span / 2
    res = [(s, r) for s, r in rises if s.skip]
    plain = [(s, r) for s, r in rises if not s.skip]
    if len(res) != 1 or len(plain) != 1:
        said = " and ".join(f"{s.label} {r:.3g}" for s, r in rises)
        return f"At ±{half:g} along the directions the loss rises by {said}."
    r_res, r_plain = res[0][1], plain[0][1]
    out = (f"At ±{half:g} along the directions the plain net's loss rises by {r_plain:.3g} and the ResNet's by "
           f"{r_res:.3g}")
    if min(r_res, r_plain) <= 0:
        who = "the ResNet" if r_res <= 0 else "the plain net"
        return (out + f": the loss of {who} does not rise, so its trained weights are not at the bottom of this "
                "slice and there is no basin to compare.")
    lo, hi = sorted((r_res, r_plain))
    if hi / lo < SAME_RISE:
        return out + f": about the same (within {100 * (SAME_RISE - 1):.0f}%), so neither basin is the flatter here."
    if r_res < r_plain:
        return (out + f": the ResNet sits in the wider, flatter basin ({hi / lo:.3g}× smaller rise), as Li et al. "
                "found for nets with skip connections.")
    return (out + f": the plain net sits in the wider, flatter basin ({hi / lo:.3g}× smaller rise), the opposite of "
            "Li et al.'s finding.")


def path_sentence(surfaces: Sequence[Surface]) -> str:
    """What PCA slices show about the training paths: how much of each path's movement the two directions
    explain (Li et al. found descent paths lie in a very low-dimensional space). "" with no path."""
    said = [f"{s.label} {100 * sum(s.path.explained):.1f}% ({100 * s.path.explained[0]:.1f}% + "
            f"{100 * s.path.explained[1]:.1f}%, {len(s.path.steps)} kept weights)"
            for s in surfaces if s.path is not None]
    if not said:
        return ""
    return ("The first two PCA directions explain " + " and ".join(said) + " of the path's variance: the rest of "
            "the movement is off this plane, so the path drawn is its shadow on it.")


def interpolation_sentence(curves: Sequence[Interpolation]) -> str:
    """What the curves show, from their numbers: for each model whether the loss falls all the way from its start
    to its trained weights — said to agree with Goodfellow et al. only for a start at the initial weights — or how
    far it climbs on the way, and how far above the straight line between the ends it gets. "" when a curve is
    incomplete."""
    parts = []
    for c in curves:
        row = interpolation_summary(c)
        if row["monotonic"] is None:
            return ""
        if row["monotonic"]:
            seen = " (as Goodfellow et al. saw for the nets they studied)" if "initial weights" in c.start else ""
            parts.append(f"{c.label}: the loss falls all the way from {c.start} to the trained weights{seen}")
        else:
            above = (f", at most {row['barrier']:.3g} above the straight line between the two ends"
                     if row["barrier"] > 0 else ", never above the straight line between the two ends")
            parts.append(f"{c.label}: the loss does not fall all the way from {c.start}: it climbs by up to "
                         f"{row['climb']:.3g} on the way{above}")
    return "; ".join(parts) + "."

"""The degradation experiment (He et al. 2015, Fig. 1 and Fig. 4): deeper plain nets train worse.

Four CIFAR-style networks of depth 6n+2 — plain-shallow, plain-deep, resnet-shallow, resnet-deep —
are trained on the same data, with the same seed, batch order and budget, as two twin jobs (a ResNet
and its plain twin share one worker, one initialization seed and the very same batches). The paper's
claim is about *training* error, not test error: the deeper plain net is worse at fitting its own
training set (an optimization problem, not overfitting), while the deeper ResNet is at least as good
as the shallower one.

Where this differs from the paper: it trains for a few epochs on a small dataset (``shapes`` by
default) rather than 64k iterations on CIFAR-10, so the gap is a short-budget gap; and the training
error is the error on the (augmented) training batches as they were trained on, averaged over the
last epoch, as the paper's thin curves are.

This module is the arithmetic: the last epoch's mean of a logged series and the verdict from four
numbers. Queueing the four runs and reading them back is :mod:`resnet_lab.experiments.degradation`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from ..fmt import format_pct

TOLERANCE = 0.005
"""How much higher (as a fraction: 0.5 percentage points) the deeper ResNet's final training error may be
than the shallower one's and still count as "at least as good". Two nets of different depth never land
on exactly the same number: the last-epoch training error of one short run moves by a few tenths of a
point with the seed alone, so demanding "<=" strictly would turn noise into a "no"."""


def run_label(skip: bool, depth: int) -> str:
    """'resnet-56' or 'plain-20', as in the paper's legends."""
    return f"{'resnet' if skip else 'plain'}-{depth}"


Series = list[tuple[int, float, float]]  # (step, epoch, value)


def _epoch_index(epoch: float) -> int:
    """The 0-based epoch a logged point belongs to: the engine logs epoch + (batch + 1) / steps_per_epoch,
    so points of epoch k lie in (k, k + 1]."""
    return max(0, math.ceil(epoch - 1e-9) - 1)


def last_epoch_mean(points: Sequence[tuple[int, float, float]]) -> float | None:
    """The mean of a training metric over the last epoch that has logged points, weighted by steps.

    Each logged train/loss or train/acc value is a running mean over the steps since the previous log
    (``log_every`` steps, fewer at an epoch's end), so one point alone is noisy; weighting each point by
    the steps it covers gives exactly the mean over all the last epoch's batches. None for no points.
    """
    if not points:
        return None
    last = _epoch_index(points[-1][1])
    total = weight_sum = 0.0
    prev_step = 0
    for step, epoch, value in points:
        w = max(1, step - prev_step)
        prev_step = step
        if _epoch_index(epoch) == last:
            total += w * value
            weight_sum += w
    return total / weight_sum


@dataclass(frozen=True)
class DegradationVerdict:
    deeper_plain_worse: bool  # the deeper plain net's final training error is higher than the shallower one's
    deeper_resnet_as_good: bool  # the deeper ResNet's final training error <= the shallower one's + tolerance
    plain_shallow: float  # final training errors, fractions
    plain_deep: float
    resnet_shallow: float
    resnet_deep: float
    shallow: int  # depths
    deep: int
    tolerance: float  # TOLERANCE, fraction

    def _parts(self, bold: bool) -> tuple[str, str]:
        b = (lambda s: f"**{s}**") if bold else (lambda s: s)
        first = (f"The deeper plain net trains worse: {b('yes' if self.deeper_plain_worse else 'no')} "
                 f"(final training error {run_label(False, self.deep)} {format_pct(self.plain_deep)} vs "
                 f"{run_label(False, self.shallow)} {format_pct(self.plain_shallow)}).")
        second = (f"The deeper ResNet trains at least as well: {b('yes' if self.deeper_resnet_as_good else 'no')} "
                  f"({run_label(True, self.deep)} {format_pct(self.resnet_deep)} vs {run_label(True, self.shallow)} "
                  f"{format_pct(self.resnet_shallow)}, tolerance {100 * self.tolerance:.1f} points).")
        return first, second

    @property
    def sentence(self) -> str:
        """Both answers with their numbers, plain text."""
        return " ".join(self._parts(bold=False))

    def markdown(self) -> list[str]:
        """The two answers as markdown lines, yes/no in bold."""
        return list(self._parts(bold=True))

    def to_dict(self) -> dict[str, Any]:
        return {"deeper_plain_worse": self.deeper_plain_worse, "deeper_resnet_as_good": self.deeper_resnet_as_good,
                "final_train_error": {run_label(False, self.shallow): self.plain_shallow,
                                      run_label(False, self.deep): self.plain_deep,
                                      run_label(True, self.shallow): self.resnet_shallow,
                                      run_label(True, self.deep): self.resnet_deep},
                "tolerance": self.tolerance, "sentence": self.sentence}


def verdict_of(plain_shallow: float, plain_deep: float, resnet_shallow: float, resnet_deep: float,
               shallow: int, deep: int, tolerance: float = TOLERANCE) -> DegradationVerdict:
    """The two yes/no answers from the four final training errors (fractions)."""
    return DegradationVerdict(deeper_plain_worse=plain_deep > plain_shallow,
                   deeper_resnet_as_good=resnet_deep <= resnet_shallow + tolerance,
                   plain_shallow=plain_shallow, plain_deep=plain_deep, resnet_shallow=resnet_shallow,
                   resnet_deep=resnet_deep, shallow=shallow, deep=deep, tolerance=tolerance)



"""Did a model learn? The check every page and command runs before it states a conclusion.

A comparison between a ResNet and its plain twin — degradation, lesions, layer responses, loss landscapes,
gradients at a checkpoint — says something about skip connections only when the models learned their task:
two networks stuck at chance differ by noise, and any "yes" drawn from them is an accident. So each
conclusion is preceded by :func:`check_learned`, which decides from what a run logged:

* its accuracy is above chance (1 / classes) by ``ACC_MARGIN`` of the room between chance and 100%, and
* its final training loss is at most ``LOSS_FACTOR`` × its starting loss.

When either fails the conclusion is replaced by "inconclusive: these models did not learn (...); try ...",
with a setting that does learn, chosen from what the run used (:func:`suggestion`).

Numbers in, a :class:`LearnedCheck` out: reading a run's records from the store is
:mod:`resnet_lab.experiments.learned`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from ..fmt import format_pct

ACC_MARGIN = 0.25
"""A model has learned when its accuracy is at least ``chance + ACC_MARGIN × (1 − chance)``: a quarter of the
way from chance to perfect. 6 classes (shapes): 37.5%; 10 classes (digits, CIFAR-10): 32.5%; 2 classes: 62.5%.
Why a share of the room above chance and not a fixed +15 points: the same fixed step is a different demand at
different class counts (+15 points is 30% of the room for 2 classes, 15% for 100). Why a quarter: it sits far
above the noise of a model at chance (its accuracy on the ~220 validation images of 2,000 shapes images wobbles
by about 2.5 points, so the bar is 8 of those wobbles away), and far below what a run that learned reaches
(shapes and digits go above 90% with the recipe in :data:`GOAL`); the runs reported at chance (17% on shapes)
miss it by 20 points."""

LOSS_FACTOR = 0.9
"""A model has learned only if its final training loss is at most 0.9 × its starting loss. The starting loss is
the first logged value — a running mean over the first logged steps — or, when that is lower, ln(classes), the
loss of a net that predicts every class equally (a fresh net's loss; a fast learner's first logged mean is
already below it). A net at chance stays there: the runs reported at chance went 1.79 → 1.78 (−0.6%); a 10%
drop is beyond that wobble and well short of what a run that learned shows (a loss several times lower)."""


@dataclass(frozen=True)
class Goal:
    """A short training setting that learns, to suggest when a run did not. The default suits the built-in
    data (shapes, digits) with the CIFAR ResNets and their plain twins of 20 layers: 2,000 shapes images,
    8 epochs at batch 32 (about 450 optimizer steps); callers who know the dataset's default recipe
    (resnet_lab.train.recipes) pass that instead."""

    images: int = 2000  # training images (digits has only about 1,400: all of them)
    epochs: int = 8  # passes over the training images
    batch_size: int = 32  # images per step: more steps per epoch than 128
    lr: float = 0.05  # peak learning rate (one-cycle SGD)
    lr_range: tuple[float, float] = (0.01, 0.1)  # learning rates left alone when the rest is changed


GOAL = Goal()


@dataclass(frozen=True)
class Setting:
    """What a run trained with (any field may be unknown: None)."""

    dataset: str | None = None  # e.g. "shapes", "digits", "folder:cats"
    images: int | None = None  # training images (None: the dataset's default or all)
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None

    @property
    def steps(self) -> int | None:
        """Optimizer steps in all (when the images, epochs and batch size are known); the trainer drops the
        ragged last batch of an epoch."""
        if self.images is None or self.epochs is None or not self.batch_size:
            return None
        return self.epochs * max(1, self.images // self.batch_size)

    def describe(self) -> str:
        """E.g. "500 images, 2 epochs at batch 128 = about 8 optimizer steps, lr 0.1"; "" when nothing is known."""
        parts = []
        if self.images is not None:
            parts.append(f"{self.images:,} images")
        if self.epochs is not None:
            run = f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}"
            if self.batch_size is not None:
                run += f" at batch {self.batch_size}"
                if self.steps is not None:
                    run += f" = about {self.steps:,} optimizer steps"
            parts.append(run)
        elif self.batch_size is not None:
            parts.append(f"batch {self.batch_size}")
        if self.lr is not None:
            parts.append(f"lr {self.lr:g}")
        return ", ".join(parts)


def suggestion(setting: Setting | None, recipe: Goal = GOAL) -> str:
    """A concrete setting to try, from what the run used: only what falls short of ``recipe`` is named.

    E.g. "try more training images (2,000+), 8 epochs and batch 32 (this run: 500 images, 2 epochs at batch
    128 = about 8 optimizer steps, lr 0.1)". When the run already had all of that, the learning rate is the knob
    left (half of it), or a shallower net.
    """
    s = setting or Setting()
    parts = []
    if s.images is not None and s.images < recipe.images:
        parts.append("all of digits' training images (about 1,400)" if s.dataset == "digits"
                     else f"more training images ({recipe.images:,}+)")
    if s.epochs is not None and s.epochs < recipe.epochs:
        parts.append(f"{recipe.epochs} epochs")
    if s.batch_size is not None and s.batch_size > recipe.batch_size:
        parts.append(f"batch {recipe.batch_size}")
    lo, hi = recipe.lr_range
    if s.lr is not None and not lo <= s.lr <= hi:
        parts.append(f"lr {recipe.lr:g}")
    if not parts and all(v is None for v in (s.images, s.epochs, s.batch_size, s.lr)):
        text = (f"try {recipe.images:,}+ training images and {recipe.epochs} epochs at batch {recipe.batch_size}, "
                f"lr {recipe.lr:g}")
    elif not parts:
        lr = f"lr {s.lr / 2:g}" if s.lr is not None else "a lower learning rate"
        text = f"try a lower learning rate ({lr}) or a shallower net"
    else:
        text = "try " + _and(parts)
    said = s.describe()
    return text + (f" (this run: {said})" if said else "")


def _and(items: Sequence[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def accuracy_bar(num_classes: int, margin: float = ACC_MARGIN) -> float:
    """The accuracy a model must reach to count as having learned: chance + margin × (1 − chance)."""
    chance = 1.0 / num_classes
    return chance + margin * (1.0 - chance)


@dataclass(frozen=True)
class LearnedCheck:
    """Whether one model learned, the numbers behind the decision, and what to try when it did not."""

    learned: bool  # accuracy and loss both passed (False also when the accuracy is unknown)
    label: str  # which model, as a person reads it ("" for the only one)
    accuracy: float | None  # the accuracy judged, 0..1 (None: none was logged)
    accuracy_kind: str  # what that accuracy is: "val accuracy", "training accuracy"
    num_classes: int
    chance: float  # 1 / num_classes
    accuracy_bar: float  # the accuracy needed (see ACC_MARGIN)
    first_loss: float | None  # the first logged training loss (None: no loss logged)
    last_loss: float | None  # the final training loss
    loss_bar: float | None  # the final loss needed: LOSS_FACTOR × max(first, ln classes)
    accuracy_ok: bool | None  # None: no accuracy
    loss_ok: bool | None  # None: no loss series (then the accuracy alone decides)
    suggestion: str  # "try ..." (from the run's setting); "" when it learned

    @property
    def known(self) -> bool:
        """An accuracy was logged, so the decision rests on numbers."""
        return self.accuracy is not None

    def numbers(self) -> str:
        """E.g. "val accuracy 17.0% vs 16.7% chance, needs 37.5%; loss 1.79 → 1.78, needs ≤ 1.61"."""
        if self.accuracy is None:
            acc = f"no {self.accuracy_kind} logged yet"
        else:
            acc = f"{self.accuracy_kind} {format_pct(self.accuracy)} vs {format_pct(self.chance)} chance"
            if not self.accuracy_ok:
                acc += f", needs {format_pct(self.accuracy_bar)}"
        if self.first_loss is None or self.last_loss is None:
            return f"{acc}; no training loss logged"
        loss = f"loss {self.first_loss:.3g} → {self.last_loss:.3g}"
        if not self.loss_ok and self.loss_bar is not None:
            loss += f", needs ≤ {self.loss_bar:.3g}"
        return f"{acc}; {loss}"

    @property
    def sentence(self) -> str:
        """One human sentence: "learned (...)" or "inconclusive: this model did not learn (...); try ..."."""
        if self.learned:
            return f"{self.label + ' ' if self.label else ''}learned ({self.numbers()})."
        return inconclusive([self])

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "learned": self.learned, "accuracy": self.accuracy,
                "accuracy_kind": self.accuracy_kind, "chance": self.chance, "accuracy_bar": self.accuracy_bar,
                "first_loss": self.first_loss, "last_loss": self.last_loss, "loss_bar": self.loss_bar,
                "accuracy_ok": self.accuracy_ok, "loss_ok": self.loss_ok, "suggestion": self.suggestion}


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def check_learned(accuracy: float | None, num_classes: int, first_loss: float | None = None,
                  last_loss: float | None = None, *, accuracy_kind: str = "val accuracy", label: str = "",
                  setting: Setting | None = None, goal: Goal = GOAL, margin: float = ACC_MARGIN,
                  loss_factor: float = LOSS_FACTOR) -> LearnedCheck:
    """Decide whether a model learned from its logged numbers.

    ``accuracy`` (0..1) must reach ``accuracy_bar(num_classes, margin)`` (``>=``); the final training loss
    ``last_loss`` must be at most ``loss_factor × max(first_loss, ln num_classes)`` (``<=``). Without a loss
    series (either value None) the accuracy alone decides; without an accuracy the model does not count as
    having learned (there is nothing to show it did). A non-finite loss (a run that diverged) fails.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    chance = 1.0 / num_classes
    bar = accuracy_bar(num_classes, margin)
    acc = None if accuracy is None else float(accuracy)
    acc_ok = None if acc is None else (math.isfinite(acc) and acc >= bar)
    loss_ok = loss_bar = None
    if first_loss is not None and last_loss is not None:
        first, last = _finite(first_loss), _finite(last_loss)
        if first is None or last is None:
            loss_ok = False
        else:
            loss_bar = loss_factor * max(first, math.log(num_classes))
            loss_ok = last <= loss_bar
        first_loss, last_loss = float(first_loss), float(last_loss)
    learned = bool(acc_ok) and loss_ok is not False
    return LearnedCheck(learned=learned, label=label, accuracy=acc, accuracy_kind=accuracy_kind,
                        num_classes=num_classes, chance=chance, accuracy_bar=bar, first_loss=first_loss,
                        last_loss=last_loss, loss_bar=loss_bar, accuracy_ok=acc_ok, loss_ok=loss_ok,
                        suggestion="" if learned else suggestion(setting, goal))


def inconclusive(checks: Sequence[LearnedCheck]) -> str | None:
    """None when every model learned; else the sentence that replaces a conclusion, e.g.
    "inconclusive: these models did not learn (ResNet #3: val accuracy 17.0% vs 16.7% chance, needs 37.5%;
    loss 1.79 → 1.78, needs ≤ 1.61 · plain #4: ...); try more training images (2,000+) ... (this run: ...)."
    Models whose accuracy was never logged are said to be unknown rather than failed."""
    failed = [c for c in checks if not c.learned]
    if not failed:
        return None
    unknown = all(not c.known for c in failed)
    if len(failed) == 1 and len(checks) == 1:
        who = failed[0].label or "this model"
    elif len(failed) == len(checks):
        who = "these models"
    else:
        who = _and([c.label or "a model" for c in failed])
    if len(failed) == 1:
        detail = failed[0].numbers()
    else:
        detail = " · ".join(f"{c.label}: {c.numbers()}" if c.label else c.numbers() for c in failed)
    verb = f"cannot tell whether {who} learned" if unknown else f"{who} did not learn"
    hint = failed[0].suggestion
    return f"inconclusive: {verb} ({detail})" + (f"; {hint}." if hint else ".")

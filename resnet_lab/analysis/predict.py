"""Predictions: top-k for a batch, a whole validation split evaluated once for the Predictions page, the images
behind one confusion-matrix cell, and where two models disagree (with McNemar's exact test)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


def _batches(n: int, batch_size: int) -> range:
    return range(0, n, max(1, batch_size))


def predict(model: nn.Module, images: torch.Tensor, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` softmax probabilities and class indices, each N x k, highest first.

    ``images`` is N x C x H x W, normalized as the model expects; ``k`` is capped at the number of
    classes. Runs under ``torch.no_grad()``; the model is not changed.
    """
    with torch.no_grad():
        probs = torch.softmax(model(images).float(), dim=1)
    k = max(1, min(int(k), probs.shape[1]))
    top = torch.topk(probs, k, dim=1)
    return top.values, top.indices


@dataclass(frozen=True)
class Evaluation:
    probs: torch.Tensor  # float32 N x K softmax probabilities, on the CPU
    labels: torch.Tensor  # int64 N true classes

    @property
    def num_classes(self) -> int:
        return int(self.probs.shape[1])

    @property
    def preds(self) -> torch.Tensor:
        return self.probs.argmax(1)

    @property
    def confidence(self) -> torch.Tensor:
        """Probability of the predicted class, N."""
        return self.probs.max(1).values

    @property
    def accuracy(self) -> float:
        return float((self.preds == self.labels).float().mean()) if len(self.labels) else float("nan")

    def confusion(self) -> torch.Tensor:
        """K x K counts; row = true class, column = predicted class."""
        return confusion_matrix(self.labels, self.preds, self.num_classes)

    def per_class_accuracy(self) -> torch.Tensor:
        """K accuracies (NaN for a class with no validation images)."""
        cm = self.confusion().double()
        total = cm.sum(1)
        return torch.where(total > 0, cm.diagonal() / total.clamp_min(1), torch.full_like(total, float("nan"))).float()

    def confident_mistakes(self, n: int = 12) -> list[int]:
        """Indices of the wrong predictions made with the highest confidence, most confident first."""
        wrong = (self.preds != self.labels).nonzero().flatten()
        order = self.confidence[wrong].argsort(descending=True, stable=True)
        return [int(i) for i in wrong[order][: max(0, n)]]

    def select(self, which: str = "all", cls: int | None = None) -> list[int]:
        """Indices for a gallery filter: "all", "wrong", "right", or "class" (true class ``cls``)."""
        if which == "all":
            mask = torch.ones_like(self.labels, dtype=torch.bool)
        elif which == "wrong":
            mask = self.preds != self.labels
        elif which == "right":
            mask = self.preds == self.labels
        elif which == "class":
            if cls is None or not 0 <= cls < self.num_classes:
                raise ValueError(f"class filter needs a class index in 0..{self.num_classes - 1}, got {cls!r}")
            mask = self.labels == cls
        else:
            raise ValueError(f"unknown filter {which!r}: all, wrong, right or class")
        return [int(i) for i in mask.nonzero().flatten()]


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor, num_classes: int) -> torch.Tensor:
    """K x K int64 counts; row = true class, column = predicted class."""
    idx = labels.long() * num_classes + preds.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> Evaluation:
    """Softmax probabilities for every image (normalized N x C x H x W), in batches, without grads."""
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in _batches(len(images), batch_size):
            out.append(torch.softmax(model(images[i : i + batch_size].to(device)).float(), dim=1).cpu())
    probs = torch.cat(out) if out else torch.zeros(0, 0)
    return Evaluation(probs=probs, labels=labels.long().cpu())


# --- opening the confusion matrix: which images sit in a cell, and where two models disagree ------------------


def _check_cell(evaluation: Evaluation, true: int, pred: int) -> None:
    k = evaluation.num_classes
    for name, c in (("true", true), ("pred", pred)):
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < k:
            raise ValueError(f"{name} class must be an index in 0..{k - 1}, got {c!r}")


def cell_indices(evaluation: Evaluation, true: int, pred: int) -> list[int]:
    """Positions (into the evaluation's images) of the confusion-matrix cell (``true``, ``pred``): the images of
    true class ``true`` that the model predicted as ``pred``. Their number is ``evaluation.confusion()[true, pred]``.

    Ordered by the model's confidence in its prediction, most confident first (ties by position), so a
    capped gallery of a mistake cell starts with the model's surest mistakes.
    """
    _check_cell(evaluation, true, pred)
    cell = ((evaluation.labels == true) & (evaluation.preds == pred)).nonzero().flatten()
    order = evaluation.confidence[cell].argsort(descending=True, stable=True)
    return [int(i) for i in cell[order]]


@dataclass(frozen=True)
class Cell:
    true: int  # row of the confusion matrix
    pred: int  # column
    count: int  # images in it (> 0)

    @property
    def mistake(self) -> bool:
        return self.true != self.pred


def nonempty_cells(evaluation: Evaluation) -> list[Cell]:
    """Every confusion-matrix cell holding at least one image: the mistakes first (most images first, then row and
    column), then the diagonal (right answers) by class."""
    cm = evaluation.confusion()
    cells = [Cell(t, p, int(cm[t, p])) for t in range(cm.shape[0]) for p in range(cm.shape[1]) if cm[t, p] > 0]
    return sorted(cells, key=lambda c: (not c.mistake, -c.count if c.mistake else 0, c.true, c.pred))


@dataclass(frozen=True)
class Disagreements:
    """How two models' answers on the same images differ (McNemar's 2 x 2 table of right/wrong pairs).

    ``a_only`` and ``b_only`` are the discordant images; each list is ordered by the wrong model's confidence,
    most confident first (its surest mistakes first; ties by position)."""

    a_only: tuple[int, ...]  # positions model A gets right and model B gets wrong
    b_only: tuple[int, ...]  # positions B gets right and A wrong
    both_right: int
    both_wrong: int

    @property
    def total(self) -> int:
        return len(self.a_only) + len(self.b_only) + self.both_right + self.both_wrong

    @property
    def p_value(self) -> float:
        """Exact two-sided McNemar test of "A and B are equally often right" (:func:`mcnemar_exact`)."""
        return mcnemar_exact(len(self.a_only), len(self.b_only))


def disagreements(a: Evaluation, b: Evaluation) -> Disagreements:
    """The images one model gets right and the other wrong, both ways. Both evaluations must be of the same images
    in the same order (same labels): ValueError otherwise."""
    if a.labels.shape != b.labels.shape or not torch.equal(a.labels, b.labels):
        raise ValueError("the two evaluations are not of the same images (their labels differ)")
    ra, rb = a.preds == a.labels, b.preds == b.labels

    def ordered(mask: torch.Tensor, wrong: Evaluation) -> tuple[int, ...]:
        pos = mask.nonzero().flatten()
        order = wrong.confidence[pos].argsort(descending=True, stable=True)
        return tuple(int(i) for i in pos[order])

    return Disagreements(a_only=ordered(ra & ~rb, b), b_only=ordered(rb & ~ra, a),
                         both_right=int((ra & rb).sum()), both_wrong=int((~ra & ~rb).sum()))


def mcnemar_exact(n_ab: int, n_ba: int) -> float:
    """Two-sided p-value of McNemar's exact test (McNemar 1947; recommended for comparing two classifiers on one
    test set by Dietterich 1998, "Approximate statistical tests for comparing supervised classification learning
    algorithms"): under "both models are equally often right", each of the ``n = n_ab + n_ba`` discordant images
    is a fair coin, so p = min(1, 2 * P[Binomial(n, 1/2) <= min(n_ab, n_ba)]). No discordant image gives 1.0.

    Computed with exact integers (``math.comb``), so it stays right for thousands of images where ``0.5 ** n``
    would underflow; this is statsmodels' ``mcnemar(table, exact=True)``.
    """
    if n_ab < 0 or n_ba < 0:
        raise ValueError(f"counts must be >= 0, got {n_ab}, {n_ba}")
    n = n_ab + n_ba
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(n_ab, n_ba) + 1))
    return min(1.0, 2 * tail / 2**n)

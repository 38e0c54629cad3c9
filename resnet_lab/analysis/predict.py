"""Predictions: top-k for a batch, and a whole validation split evaluated once for the Predictions page."""

from __future__ import annotations

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

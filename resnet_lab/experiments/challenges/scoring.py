"""Scoring a model on a challenge's hidden split: predictions in batches, then the metric on each half."""

from __future__ import annotations

import torch

from ...data.holdout import HiddenSplit

BATCH = 256


def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Share of ``pred`` equal to ``y`` (0.0 for no images)."""
    return float((pred == y).float().mean()) if y.numel() else 0.0


def macro_f1(pred: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """The mean over classes of F1 = 2 TP / (2 TP + FP + FN); a class absent from both ``y`` and ``pred`` is left
    out of the mean (it has nothing to score), one absent from one of them scores 0."""
    scores = []
    for c in range(num_classes):
        tp = int(((pred == c) & (y == c)).sum())
        fp = int(((pred == c) & (y != c)).sum())
        fn = int(((pred != c) & (y == c)).sum())
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores) if scores else 0.0


def metric(name: str, pred: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    if name == "accuracy":
        return accuracy(pred, y)
    if name == "macro_f1":
        return macro_f1(pred, y, num_classes)
    raise ValueError(f"unknown metric {name!r}")


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...],
            device: torch.device | str = "cpu") -> torch.Tensor:
    """Class predictions of ``model`` (in eval mode) for images ``x`` in [0, 1], normalized as it was trained."""
    model.eval()
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    out = []
    for i in range(0, x.shape[0], BATCH):
        batch = ((x[i:i + BATCH].float() - m) / s).to(device)
        out.append(model(batch).argmax(1).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)


def score_halves(pred: torch.Tensor, hidden: HiddenSplit, metric_name: str) -> tuple[float, float]:
    """(public score, private score) of predictions ``pred`` for the hidden split's images."""
    n = len(hidden.class_names)
    pub = hidden.public
    return (metric(metric_name, pred[pub], hidden.y[pub], n), metric(metric_name, pred[~pub], hidden.y[~pub], n))


__all__ = ["accuracy", "macro_f1", "metric", "predict", "score_halves"]

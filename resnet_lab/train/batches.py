"""What a training step sees: a *batch source* and a *logits* function, both chosen once when a
:class:`~resnet_lab.train.engine.Trainer` is set up.

A batch source hands out (inputs, labels) for training and validation, all on the training device
(:class:`ImageBatches`: images on the device, augmented there; or, for a linear probe,
:class:`FeatureBatches`: the frozen backbone's pooled features, computed once), and a logits function
maps a batch to class scores (:func:`full_logits`: the whole model, or :func:`head_logits`: only its
classifier). The loop, evaluation and checkpointing never ask which. Also here: ``EVAL_BATCH`` (the
validation chunk) and :func:`autocast` (bf16 on CUDA), which the loop shares.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Callable, Iterator, Protocol

import torch
from torch import nn

from ..data.augment import augment_batch, normalize
from ..data.registry import Dataset
from ..data.types import unit_float

EVAL_BATCH = 512


def autocast(cuda: bool) -> AbstractContextManager:
    """bf16 autocast on CUDA; nothing on the CPU."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()


Logits = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def full_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class scores of a batch of (normalized) images: the whole model."""
    return model(x)


def head_logits(model: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """Class scores of a batch of pooled features (``forward_head(..., pre_logits=True)``): the classifier only."""
    return model.get_classifier()(features)


class Batches(Protocol):
    """Where a step's (inputs, labels) come from, all on the training device."""

    def prepare(self) -> None:
        """One-off work before the first batch (a no-op, or a linear probe's feature pass)."""

    def train(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The training examples at ``idx`` (augmented when the source augments)."""

    def val(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The whole validation split, in order, ``EVAL_BATCH`` examples at a time."""


class ImageBatches:
    """Images living on the training device, gathered by index: no DataLoader.

    The images go to the device once, as the dataset keeps them (``Dataset.pixels_*``: uint8 for the big
    file-based sets, a quarter of float32's memory there and on the way); each batch is gathered, augmented
    on the device (pad-crop, plus a flip where it keeps the label; index moves only, so done on the uint8
    before converting) when ``augment`` is set, drawing from ``generator``, then converted to float in
    [0, 1], normalized with the data's mean/std, and made channels-last on CUDA. ``x_train``/``x_val`` here
    are those kept images (uint8 or float32), not the dataset's float views.

    One rank of several (``share``, ``part``): the whole global batch is gathered and augmented, exactly
    as one process would (the same random numbers in the same order), and the rank keeps its ``share``
    of it; of the validation chunks it takes every ``part[1]``-th, starting at ``part[0]``.
    """

    def __init__(self, data: Dataset, device: torch.device, augment: bool, generator: torch.Generator,
                 share: slice | None = None, part: tuple[int, int] = (0, 1)) -> None:
        self.share = share
        self.part = part
        self.x_train = data.pixels_train.to(device)
        self.y_train = data.y_train.to(device)
        self.x_val = data.pixels_val.to(device)
        self.y_val = data.y_val.to(device)
        self.mean = torch.tensor(data.mean, device=device)
        self.std = torch.tensor(data.std, device=device)
        self.augment = augment
        self.flip_p = 0.5 if data.hflip else 0.0
        self.generator = generator
        self.channels_last = device.type == "cuda"

    def prepare(self) -> None:
        pass

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Images as kept (uint8 0..255 or float32 in [0, 1]) -> what the model takes: float32, normalized
        (and channels-last on CUDA)."""
        x = normalize(unit_float(x), self.mean, self.std)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def train(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.share is not None and not self.augment:
            idx = idx[self.share]  # nothing random: gather only this rank's share
        y = self.y_train[idx]
        x = self.x_train[idx]
        if self.augment:
            x = augment_batch(x, generator=self.generator, flip_p=self.flip_p)
            if self.share is not None:
                x, y = x[self.share], y[self.share]
        return self.inputs(x), y

    def val(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        rank, world = self.part
        for start in range(rank * EVAL_BATCH, len(self.y_val), world * EVAL_BATCH):
            yield self.inputs(self.x_val[start:start + EVAL_BATCH]), self.y_val[start:start + EVAL_BATCH]


class FeatureBatches:
    """A linear probe's batches: the frozen backbone's pooled features of every image, computed once.

    ``prepare`` (or the first batch asked for) runs ``model`` in eval mode over the un-augmented
    images of both splits and keeps ``forward_head(forward_features(x), pre_logits=True)`` as float32;
    after that a batch costs one index, and an epoch milliseconds. Never augmented: the features are fixed.
    """

    def __init__(self, images: ImageBatches, model: nn.Module, cuda: bool) -> None:
        self.images = images
        self.model = model
        self.cuda = cuda
        self.feat_train: torch.Tensor | None = None
        self.feat_val: torch.Tensor | None = None

    def prepare(self) -> None:
        if self.feat_train is None:
            self.feat_train = self._features(self.images.x_train)
            self.feat_val = self._features(self.images.x_val)

    @torch.no_grad()
    def _features(self, x_all: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        out = []
        for start in range(0, len(x_all), EVAL_BATCH):
            x = self.images.inputs(x_all[start:start + EVAL_BATCH])
            with autocast(self.cuda):
                f = self.model.forward_features(x)
            out.append(self.model.forward_head(f, pre_logits=True).float())
        return torch.cat(out)

    def train(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.prepare()
        return self.feat_train[idx], self.images.y_train[idx]

    def val(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.prepare()
        y_val = self.images.y_val
        for start in range(0, len(y_val), EVAL_BATCH):
            yield self.feat_val[start:start + EVAL_BATCH], y_val[start:start + EVAL_BATCH]

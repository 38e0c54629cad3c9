"""scikit-learn's bundled handwritten digits: 1,797 grayscale 8x8 images of 0..9, no download.

Pixel values 0..16 are scaled to [0, 1] and the images upsampled to ``image_size`` with bilinear
interpolation (``align_corners=False``). There is no official test split: a seeded stratified
permutation puts ``round(1797 * val_fraction)`` images in val (classes dealt out round-robin, so every
digit gets its share) and the rest in train; ``train_subset`` then keeps a stratified subset of train.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .types import DataConfig, Dataset, stratified_order, take_subset

DIGIT_NAMES = tuple(str(d) for d in range(10))


def digits_tensors(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits as (x float32 N x 1 x S x S in [0, 1], y int64 N), in scikit-learn's order."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: reads a local file

    bunch = load_digits()
    x = torch.as_tensor(bunch.data, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    y = torch.as_tensor(bunch.target, dtype=torch.int64)
    if image_size != 8:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return x.clamp_(0.0, 1.0).contiguous(), y


def load_digits_dataset(cfg: DataConfig) -> Dataset:
    """The digits dataset for ``cfg``: a seeded stratified train/val split by ``val_fraction``."""
    x, y = digits_tensors(cfg.image_size)
    order = stratified_order(y, cfg.seed)
    n_val = round(y.shape[0] * cfg.val_fraction)
    val_idx = order[:n_val].sort().values
    train_idx = order[n_val:].sort().values
    x_train, y_train = take_subset(x[train_idx], y[train_idx], cfg.train_subset, cfg.seed + 1)
    return Dataset.from_tensors(x_train, y_train, x[val_idx], y[val_idx], DIGIT_NAMES, hflip=False)

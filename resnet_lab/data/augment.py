"""Batched augmentation on the tensors' own device, and normalization.

The standard CIFAR recipe (He et al. 2015, sec. 4.2: pad 4, random 32x32 crop, random horizontal
flip), done for a whole batch at once with two ``gather`` calls: every image gets its own crop
offset and flip, there is no Python loop over images, and it runs wherever the batch lives (CPU or
CUDA), so datasets kept on the GPU never leave it. It only moves pixels, so it works on any dtype and
commutes with the uint8 -> float conversion: the big datasets, kept as uint8, are augmented as bytes and
converted afterwards (``train/batches.py``).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

PAD_MODES = ("reflect", "zeros")

PerChannel = Sequence[float] | torch.Tensor  # one value per channel: a tuple such as Dataset.mean, or a tensor


def pad_crop_flip(
    x: torch.Tensor,
    pad: int,
    top: torch.Tensor,
    left: torch.Tensor,
    flip: torch.Tensor,
    mode: str = "reflect",
) -> torch.Tensor:
    """Pad each image of ``x`` (N x C x H x W) by ``pad`` px on every side, crop H x W back out with its
    top-left corner at (``top[i]``, ``left[i]``) in the padded image (each in 0..2*pad), and mirror it
    left-right where ``flip[i]`` is True. Deterministic: the random part lives in :func:`augment_batch`.

    ``top`` and ``left`` are int64 N, ``flip`` bool N, on ``x``'s device. Offsets of ``pad`` with no
    flip give back ``x`` exactly. Any dtype (uint8 images included). Returns a new tensor of ``x``'s shape,
    dtype and device.
    """
    if mode not in PAD_MODES:
        raise ValueError(f"mode={mode!r} is not allowed; choose one of {', '.join(PAD_MODES)}")
    n, c, h, w = x.shape
    if pad < 0 or (mode == "reflect" and pad >= min(h, w)):
        raise ValueError(f"pad={pad} is out of range; allowed 0..{min(h, w) - 1} for reflect padding of {h}x{w}")
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect" if mode == "reflect" else "constant") if pad else x
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = top.view(n, 1) + ar_h  # N x H: which padded row lands in each output row
    cols = left.view(n, 1) + torch.where(flip.view(n, 1), (w - 1) - ar_w, ar_w)  # the flip is a reversed column index
    wp = w + 2 * pad
    out = padded.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, wp))
    return out.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


def augment_batch(
    x: torch.Tensor,
    pad: int = 4,
    generator: torch.Generator | None = None,
    *,
    flip_p: float = 0.5,
    mode: str = "reflect",
) -> torch.Tensor:
    """Random pad-crop and horizontal flip of a batch ``x`` (N x C x H x W), per image, on its device.

    Each image gets a crop offset drawn uniformly from the (2*pad+1)^2 positions and is flipped with
    probability ``flip_p`` (pass 0 for datasets where a mirror image changes the label). ``mode`` is
    "reflect" (mirror the border) or "zeros". The random numbers come from ``generator`` when given (on
    its own device, CPU or CUDA; a few numbers per image are then moved to ``x``'s device), in the order
    top, left, flip; so the same generator state gives the same output. Returns a new tensor.
    """
    if not 0.0 <= flip_p <= 1.0:
        raise ValueError(f"flip_p={flip_p} is out of range; allowed 0..1")
    n = x.shape[0]
    dev = generator.device if generator is not None else x.device
    top = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=dev)
    left = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=dev)
    flip = torch.rand(n, generator=generator, device=dev) < flip_p
    return pad_crop_flip(x, pad, top.to(x.device), left.to(x.device), flip.to(x.device), mode)


def _per_channel(values: PerChannel, x: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(values, dtype=x.dtype, device=x.device)
    if t.dim() != 1 or t.shape[0] != x.shape[1]:
        raise ValueError(f"need one value per channel ({x.shape[1]}), got {tuple(t.shape)}")
    return t.view(1, -1, 1, 1)


def normalize(x: torch.Tensor, mean: PerChannel, std: PerChannel) -> torch.Tensor:
    """``(x - mean) / std`` per channel for a batch N x C x H x W (a new tensor on ``x``'s device)."""
    return (x - _per_channel(mean, x)) / _per_channel(std, x)


def denormalize(x: torch.Tensor, mean: PerChannel, std: PerChannel) -> torch.Tensor:
    """The inverse of :func:`normalize`: ``x * std + mean`` per channel (e.g. to show a model's input)."""
    return x * _per_channel(std, x) + _per_channel(mean, x)

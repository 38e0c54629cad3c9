"""Synthetic shapes: a seeded, cluttered image-classification task with ground-truth object masks.

Each RGB image holds one labelled shape (circle, square, triangle, cross, ring or star) with random
colour, size, aspect, position and rotation, painted over a distracting background:

* a linear gradient between two random colours,
* up to 3 thin line segments and up to 3 soft blobs in random colours (never one of the classes),
* per-pixel Gaussian noise of a random strength.

The shape's colour is drawn independently of its class (only its brightness is the opposite of the
background's, so that it is visible), so the class cannot be read off colour statistics: the model
has to look at the outline. The returned mask marks the pixels whose centre lies inside the shape.

Everything is vectorised over the images of a chunk (no Python loop over images) and rendered on the
CPU in float32. Images are generated in chunks, each with its own generator seeded from
``(seed, split, chunk index)``: the same arguments give bit-identical tensors (with the same torch
build on the same kind of CPU: vectorised sin/atan2 may differ in the last bit across instruction
sets), and the first k images do not depend on how many are generated in total.
"""

from __future__ import annotations

import hashlib
import math

import torch

from .types import DataConfig, Dataset

SHAPE_CLASSES = ("circle", "square", "triangle", "cross", "ring", "star")

DEFAULT_TRAIN = 10_000  # training images generated when train_subset is None (at <= 64 px)
PIXEL_BUDGET = DEFAULT_TRAIN * 64 * 64  # ... above 64 px the default shrinks to keep memory bounded
CHUNK_PIXELS = 2**17  # pixels per image x images per chunk: bounds the temporaries of one chunk

N_LINES = 3  # distractor line segments per image (each present with probability LINE_P)
N_BLOBS = 3  # distractor blobs per image (each present with probability BLOB_P)
LINE_P = 0.7
BLOB_P = 0.7
RADIUS = (0.35, 0.62)  # shape radius, in units of half the image side
ASPECT = (0.8, 1.25)  # stretch of the shape along its own axis
NOISE = (0.02, 0.09)  # std of the per-pixel Gaussian noise


def default_train_size(image_size: int) -> int:
    """Training images generated when ``train_subset`` is None: 10,000 up to 64 px, fewer above."""
    return min(DEFAULT_TRAIN, PIXEL_BUDGET // (image_size * image_size))


def _chunk_seed(seed: int, split: str, chunk: int) -> int:
    digest = hashlib.sha256(f"resnet_lab.shapes/{seed}/{split}/{chunk}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def generate_shapes(
    n: int, image_size: int, seed: int, split: str = "train"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Render ``n`` labelled shape images.

    Returns ``(x, y, mask)``: x float32 n x 3 x S x S in [0, 1], y int64 n (index into
    ``SHAPE_CLASSES``; each run of 6 consecutive images holds every class once, in random order, so
    class counts differ by at most 1), mask bool n x S x S (pixels of the labelled shape).
    ``split`` names an independent stream: "train" and "val" with the same seed share no images.
    Image i depends only on (seed, split, image_size, i): ``n`` only decides how many are returned.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    s = image_size
    k = len(SHAPE_CLASSES)
    per_chunk = max(1, CHUNK_PIXELS // (s * s) // k) * k  # whole runs of k, so chunks stay balanced
    x = torch.empty(n, 3, s, s)
    y = torch.empty(n, dtype=torch.int64)
    mask = torch.empty(n, s, s, dtype=torch.bool)
    for c, start in enumerate(range(0, n, per_chunk)):
        m = min(per_chunk, n - start)
        if m < per_chunk:  # a short last chunk: render the full chunk and keep its head (prefix-stable)
            cx, cy, cmask = _render_chunk(per_chunk, s, _chunk_seed(seed, split, c))
            x[start:], y[start:], mask[start:] = cx[:m], cy[:m], cmask[:m]
        else:  # write straight into the output
            x[start : start + m], y[start : start + m], mask[start : start + m] = _render_chunk(
                m, s, _chunk_seed(seed, split, c)
            )
    return x, y, mask


def _render_chunk(m: int, s: int, chunk_seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(chunk_seed)
    k = len(SHAPE_CLASSES)
    # every run of k images holds each class once, in random order: any prefix is balanced to +-1
    labels = torch.rand(-(-m // k), k, generator=g).argsort(dim=1).flatten()[:m]
    x, mask = _render(labels, s, g)
    return x, labels, mask


def load_shapes(cfg: DataConfig) -> Dataset:
    """The shapes dataset for ``cfg``: train_subset (or the default) training images, and
    ``round(n_train * val_fraction / (1 - val_fraction))`` val images (so val is that share of the total)."""
    n_train = cfg.train_subset if cfg.train_subset is not None else default_train_size(cfg.image_size)
    n_val = max(1, round(n_train * cfg.val_fraction / (1.0 - cfg.val_fraction)))
    x_train, y_train, _ = generate_shapes(n_train, cfg.image_size, cfg.seed, "train")
    x_val, y_val, mask_val = generate_shapes(n_val, cfg.image_size, cfg.seed, "val")
    return Dataset.from_tensors(x_train, y_train, x_val, y_val, SHAPE_CLASSES, mask_val=mask_val, hflip=True)


def _u(g: torch.Generator, *shape: int, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(*shape, generator=g)


def _over(img: torch.Tensor, colour: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Paint ``colour`` (m x 3) over ``img`` (m x 3 x S x S, in place) with coverage ``alpha`` (m x S x S)."""
    return img.lerp_(colour[:, :, None, None].expand_as(img), alpha.unsqueeze(1))


def _render(labels: torch.Tensor, s: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and masks for one chunk; every random draw comes from ``g`` in a fixed order."""
    m = labels.shape[0]
    px = s / 2.0  # pixels per unit: the image spans [-1, 1] on both axes
    centres = (torch.arange(s, dtype=torch.float32) + 0.5) / px - 1.0
    gy = centres.view(1, s, 1)
    gx = centres.view(1, 1, s)

    # --- all random draws, in a fixed order -------------------------------------------------
    light_shape = torch.rand(m, generator=g) < 0.5  # light shape on dark background, or the reverse
    bg_pair = _u(g, m, 2, 3, hi=0.45)  # two gradient colours, dark range
    fg = _u(g, m, 3, hi=0.45)  # shape colour, dark range
    grad_angle = _u(g, m, hi=2 * math.pi)
    line_ends = _u(g, m, N_LINES, 4, lo=-1.0, hi=1.0)
    line_width = _u(g, m, N_LINES, lo=0.6, hi=1.4)  # px
    line_colour = torch.rand(m, N_LINES, 3, generator=g)
    line_alpha = _u(g, m, N_LINES, lo=0.5, hi=1.0) * (torch.rand(m, N_LINES, generator=g) < LINE_P)
    blob_xy = _u(g, m, N_BLOBS, 2, lo=-1.0, hi=1.0)
    blob_sigma = _u(g, m, N_BLOBS, lo=0.04, hi=0.1)  # units (the bump reaches 3 sigma)
    blob_colour = torch.rand(m, N_BLOBS, 3, generator=g)
    blob_alpha = _u(g, m, N_BLOBS, lo=0.5, hi=1.0) * (torch.rand(m, N_BLOBS, generator=g) < BLOB_P)
    radius = _u(g, m, lo=RADIUS[0], hi=RADIUS[1])
    aspect = _u(g, m, lo=math.log(ASPECT[0]), hi=math.log(ASPECT[1])).exp()
    theta = _u(g, m, hi=2 * math.pi)
    slack = (1.0 - 1.1 * radius).clamp_min(0.0)  # keep the shape (nearly) inside the frame
    cx = _u(g, m, lo=-1.0, hi=1.0) * slack
    cy = _u(g, m, lo=-1.0, hi=1.0) * slack
    noise_std = _u(g, m, lo=NOISE[0], hi=NOISE[1])
    noise = torch.randn(m, 3, s, s, generator=g)

    # shape and background sit on opposite halves of the brightness range (per channel)
    bg_pair = torch.where(light_shape[:, None, None], bg_pair, bg_pair + 0.55)
    fg = torch.where(light_shape[:, None], fg + 0.55, fg)

    # --- background gradient ------------------------------------------------------------------
    ca, sa = grad_angle.cos().view(m, 1, 1), grad_angle.sin().view(m, 1, 1)
    t = ((gx * ca + gy * sa) / (2 * math.sqrt(2.0)) + 0.5).unsqueeze(1)  # 0..1 along the gradient
    img = bg_pair[:, 0, :, None, None] + (bg_pair[:, 1] - bg_pair[:, 0])[:, :, None, None] * t

    # --- distractors: line segments, then soft blobs -----------------------------------------------
    for k in range(N_LINES):
        ax, ay, bx, by = (line_ends[:, k, i].view(m, 1, 1) for i in range(4))
        dx, dy = bx - ax, by - ay
        tt = (((gx - ax) * dx + (gy - ay) * dy) / (dx * dx + dy * dy + 1e-6)).clamp(0.0, 1.0)
        dist_px = torch.hypot(gx - ax - tt * dx, gy - ay - tt * dy) * px
        cover = (line_width[:, k].view(m, 1, 1) / 2 + 0.5 - dist_px).clamp(0.0, 1.0)
        img = _over(img, line_colour[:, k], cover * line_alpha[:, k].view(m, 1, 1))
    for k in range(N_BLOBS):
        bx, by = blob_xy[:, k, 0].view(m, 1, 1), blob_xy[:, k, 1].view(m, 1, 1)
        d2 = (gx - bx).square() + (gy - by).square()
        # a smooth bump, 1 at the centre and 0 beyond 3 sigma (a cheap stand-in for a Gaussian)
        cover = (1.0 - d2 / (3 * blob_sigma[:, k].view(m, 1, 1)).square()).clamp_min(0.0).square()
        img = _over(img, blob_colour[:, k], cover * blob_alpha[:, k].view(m, 1, 1))

    # --- the labelled shape, in its own rotated, stretched frame ------------------------------------
    ct, st = theta.cos().view(m, 1, 1), theta.sin().view(m, 1, 1)
    r = radius.view(m, 1, 1)
    sq = aspect.sqrt().view(m, 1, 1)
    du, dv = gx - cx.view(m, 1, 1), gy - cy.view(m, 1, 1)
    u = (du * ct + dv * st) / (r * sq)
    v = (-du * st + dv * ct) * sq / r
    sdf = torch.empty(m, s, s)
    for k, name in enumerate(SHAPE_CLASSES):  # a loop over classes, not images
        idx = (labels == k).nonzero().squeeze(1)
        if idx.numel():
            sdf[idx] = _SDF[name](u[idx], v[idx])
    cover = (0.5 - sdf * r * px).clamp(0.0, 1.0)  # signed distance in px -> anti-aliased coverage
    img = _over(img, fg, cover)
    mask = sdf < 0

    img.add_(noise.mul_(noise_std.view(m, 1, 1, 1)))
    return img.clamp_(0.0, 1.0), mask


# Signed distances in the shape's unit frame (negative inside; the shape fits in a radius of ~1).
# Exact for circle and ring, a good approximation elsewhere: only the edge's anti-aliasing uses them.


def _circle(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.hypot(u, v) - 1.0


def _square(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.maximum(u.abs(), v.abs()) - 0.78


def _triangle(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # equilateral, inradius 0.6 (circumradius 1.2): the max of three half-plane distances
    d = None
    for i in range(3):
        a = -math.pi / 2 + 2 * math.pi * i / 3
        h = u * math.cos(a) + v * math.sin(a)
        d = h if d is None else torch.maximum(d, h)
    return d - 0.6


def _cross(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    au, av = u.abs(), v.abs()
    arm_h = torch.maximum(au - 1.0, av - 0.3)
    arm_v = torch.maximum(au - 0.3, av - 1.0)
    return torch.minimum(arm_h, arm_v)


def _ring(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (torch.hypot(u, v) - 0.72).abs() - 0.28


def _star(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # five points: the boundary radius goes from 1.1 (tips) to 0.42 (notches) with the angle
    rho = torch.hypot(u, v)
    phase = torch.atan2(v, u) * (5 / (2 * math.pi)) % 1.0
    edge = 0.42 + 0.68 * (2 * phase - 1).square()  # squared: pointed tips, concave sides
    return rho - edge


_SDF = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "cross": _cross,
    "ring": _ring,
    "star": _star,
}

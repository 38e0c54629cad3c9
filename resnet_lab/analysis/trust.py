"""Can a map be trusted? Deletion and insertion curves (Petsiuk et al. 2018) and captum's infidelity
(Yeh et al. 2019), for any method of :data:`~resnet_lab.analysis.attributions.METHODS`.

**Deletion** (RISE paper, Sec. 4.1): remove the image's pixels in the order of the map, most important
first, and follow the probability of the explained class as more of the image disappears. A map that
points at what the network uses makes the probability fall fast: *lower area is better*. **Insertion**:
start from an image with the content taken out and put the pixels back in the same order: the
probability should rise fast, *higher area is better*. The areas are under the curve of the mean
probability against the fraction of pixels changed (0 to 1), by the trapezoid rule (as RISE's code,
``auc(arr) = (arr.sum() - arr[0]/2 - arr[-1]/2) / (len(arr) - 1)``, which is the same on its uniform
steps). The mean of per-image areas equals the area of the mean curve, so only the mean curve is kept.

What is exactly done here, and where it differs from RISE's code (``eclique/RISE``, ``evaluation.py``):

* **Removed pixels** take the **dataset mean** (zero in the normalized input the model is fed), all
  channels of a pixel together. RISE's code does the same (``substrate_fn=torch.zeros_like`` on
  normalized images); it is also what occlusion and Integrated Gradients use as "nothing" in this lab.
  A blurred image would be a poor "removed" at 32 px: a blur keeps a small shape's coarse silhouette,
  and the class with it.
* **Insertion starts from the blurred image**, as in RISE, so that colours and background stay while
  the content goes (inserting sharp pixels into a flat mean image would make islands no training image
  has). RISE blurs with an 11 px kernel, σ = 5 px, zero padding, at 224 px; a 10 px shape at 32 px
  needs a relatively stronger one: σ = 1/8 of the image side (4 px at 32 px), kernel 6σ+1 capped below
  the side, reflect padding (``torchvision``'s ``gaussian_blur``, which does not darken the border).
* **Steps**: ``steps`` equal groups of ⌈H·W / steps⌉ pixels (the last may be smaller), so each curve has
  ``steps + 1`` points, placed at the fraction of pixels actually changed (RISE places them at i/steps
  even when its last group is short). RISE changes 224 pixels per step at 224 px; at 32 px, 32 steps
  change 32 pixels (3 %) each.
* **Ties** (Grad-CAM's zeros, a clipped saliency map's plateau at 1) are broken by a seeded random
  permutation of the pixels, the same for every image and method, so no method gains from a fixed
  scan order (RISE's flipped ``np.argsort`` leaves them in whatever order its unstable sort gives). A
  constant map is a random order.
* **Class**: the given target, its softmax probability. RISE follows the model's own top class; the
  pages and ``explain-quality`` give the true class, the same for both models of a pair and the one the
  object masks are about (``target=None`` here follows the prediction, as RISE).

References kept beside the methods: ``mask`` orders the pixels by the ground-truth object mask (object
first, ties random) — what a map that marks exactly the object reaches, *not* a bound: deleting an
object to the mean colour leaves its silhouette (the mean-coloured hole still has the shape), so a map
that takes the outline and the contrast around it first can delete the class faster; ``random`` is a
random order, what a map that knows nothing reaches.

**Infidelity** (captum's :func:`captum.metrics.infidelity`): the expected squared difference between
the map times a perturbation and the change of the target's logit under it,
``E_I[(Σ_p φ_p·I_p − (f(x) − f(x − I)))²]``. Perturbation: Gaussian noise ``I ~ N(0, σ²)``, σ = 0.1 of
a dataset standard deviation, drawn independently for each input value (the paper's "noisy baseline"
for local maps, ``multiply_by_inputs=False``), ``samples`` draws per image from a seeded generator. The
maps are one value per pixel, so φ is the map repeated on every channel. Maps are normalized to
[0, 1] (their scale is arbitrary), so captum's ``normalize=True`` fits the best scale β per image
before taking the error (the paper's optimally scaled infidelity). Units: squared logits; *lower is
better*; compare methods of one model rather than models, whose logit scales differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from .attributions import METHODS, Target, _check_targets, _target_tensor, attribute

REFERENCES = {"mask": "object mask", "random": "random order"}
STEPS = 32  # pixel groups per curve
NOISE = 0.1  # infidelity: std of the Gaussian perturbation, in dataset standard deviations
SAMPLES = 16  # infidelity: perturbations per image
Tick = Callable[[int, int], None]


@dataclass(frozen=True)
class Curve:
    """Mean probability of the explained class as pixels are deleted (or inserted) in the map's order."""

    kind: str  # "deletion" or "insertion"
    fractions: tuple[float, ...]  # share of the pixels changed, 0 .. 1
    probs: tuple[float, ...]  # mean softmax probability of the target at each fraction
    auc: float  # area under probs vs fractions (trapezoid rule), in [0, 1]


@dataclass(frozen=True)
class Trust:
    """How far one method's maps (or a reference order) can be trusted on a batch of images."""

    method: str  # a key of METHODS, or "mask" / "random" (REFERENCES)
    deletion: Curve  # lower area: better
    insertion: Curve  # higher area: better
    infidelity: float | None  # captum infidelity, mean over images (None for the references); lower: better
    n: int  # images

    @property
    def label(self) -> str:
        return METHODS.get(self.method) or REFERENCES.get(self.method, self.method)

    def as_dict(self, curves: bool = False) -> dict:
        """The areas and infidelity; with ``curves`` also each curve as ``{"fractions", "probs", "auc"}``."""
        d = {"method": self.method, "label": self.label, "deletion_auc": self.deletion.auc,
             "insertion_auc": self.insertion.auc, "infidelity": self.infidelity, "n": self.n}
        if curves:
            for c in (self.deletion, self.insertion):
                d[c.kind] = {"fractions": list(c.fractions), "probs": list(c.probs), "auc": c.auc}
        return d


def trapezoid(fractions: Sequence[float], values: Sequence[float]) -> float:
    """Area under ``values`` against ``fractions`` by the trapezoid rule."""
    return float(torch.trapezoid(torch.as_tensor(values, dtype=torch.float64),
                                 torch.as_tensor(fractions, dtype=torch.float64)))


def pixel_order(heat: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """N x H x W maps -> N x (H·W) pixel indices, most important first; ties in a seeded random order
    (the same permutation for every image)."""
    flat = heat.detach().flatten(1).float().cpu()
    perm = torch.randperm(flat.shape[1], generator=torch.Generator().manual_seed(seed))
    order = torch.argsort(flat[:, perm], dim=1, descending=True, stable=True)
    return perm[order]


def blurred(images: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
    """The insertion start: each image blurred with a Gaussian of ``sigma`` px (default 1/8 of the shorter
    side), kernel 6σ+1 rounded to odd and capped below the side, reflect padding (torchvision)."""
    from torchvision.transforms.functional import gaussian_blur

    side = min(images.shape[-2:])
    sigma = side / 8 if sigma is None else float(sigma)
    k = min(2 * math.ceil(3 * sigma) + 1, side - 1 if side % 2 == 0 else side)
    k = max(k - (1 - k % 2), 1)
    return gaussian_blur(images, [k, k], [sigma, sigma])


def _probs(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, batch_size: int) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            logits = model(x[i : i + batch_size]).float()
            out.append(logits.softmax(1).gather(1, targets[i : i + batch_size].view(-1, 1))[:, 0])
    return torch.cat(out).cpu()


def perturbation_curve(model: nn.Module, images: torch.Tensor, heat: torch.Tensor, target: Target, kind: str,
                       substrate: torch.Tensor | None = None, steps: int = STEPS, seed: int = 0,
                       batch_size: int = 256) -> Curve:
    """The deletion or insertion curve of maps ``heat`` (N x H x W) on normalized ``images`` (N x C x H x W).

    Deletion replaces pixels, in the map's order, by ``substrate`` (default: zeros, the dataset mean);
    insertion starts from ``substrate`` (default: :func:`blurred` images) and puts the image's pixels back.
    Step k changes the first min(k·⌈HW/steps⌉, HW) pixels of :func:`pixel_order`, k = 0 … steps.
    """
    if kind not in ("deletion", "insertion"):
        raise ValueError(f"kind must be deletion or insertion, got {kind!r}")
    n, _, h, w = images.shape
    if heat.shape != (n, h, w):
        raise ValueError(f"maps {tuple(heat.shape)} do not match images {tuple(images.shape)}")
    if steps < 1:
        raise ValueError("steps must be at least 1")
    targets = _target_tensor(target, n).to(images.device) if target is not None else None
    if targets is None:
        with torch.no_grad():
            targets = model(images).argmax(1)
    if substrate is None:
        substrate = torch.zeros_like(images) if kind == "deletion" else blurred(images)
    substrate = substrate.expand_as(images).to(images)
    hw = h * w
    per = math.ceil(hw / steps)
    counts = [min(k * per, hw) for k in range(math.ceil(hw / per) + 1)]
    rank = torch.empty(n, hw, dtype=torch.long)
    rank.scatter_(1, pixel_order(heat, seed), torch.arange(hw).expand(n, hw).contiguous())
    rank = rank.view(n, 1, h, w).to(images.device)
    start, end = (images, substrate) if kind == "deletion" else (substrate, images)
    chunk = max(1, batch_size // len(counts))  # images per forward batch: all their steps at once
    probs = torch.cat([
        _probs(model, torch.cat([torch.where(rank[i : i + chunk] < c, end[i : i + chunk], start[i : i + chunk])
                                 for c in counts]),  # step-major: (S+1)·chunk images
               targets[i : i + chunk].repeat(len(counts)), batch_size).view(len(counts), -1)
        for i in range(0, n, chunk)], dim=1).double()
    fractions = [c / hw for c in counts]
    mean = probs.mean(1).tolist()
    return Curve(kind, tuple(fractions), tuple(mean), trapezoid(fractions, mean))


def noise_perturbation(sigma: float = NOISE, seed: int = 0
                       ) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """captum's ``perturb_func``: (I, x − I) with I ~ N(0, sigma²) per value, drawn from a generator seeded
    once (the draws follow each other across captum's batches, so a call is reproducible)."""
    gen = torch.Generator().manual_seed(seed)

    def perturb(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = (torch.randn(inputs.shape, generator=gen) * sigma).to(inputs)
        return noise, inputs - noise

    return perturb


def infidelity(model: nn.Module, images: torch.Tensor, heat: torch.Tensor, target: Target, sigma: float = NOISE,
               samples: int = SAMPLES, seed: int = 0) -> torch.Tensor:
    """captum's ``infidelity`` per image (N) of maps ``heat`` (N x H x W, repeated on every channel) under
    :func:`noise_perturbation`, with ``normalize=True`` (the best scale of each map is fitted first)."""
    from captum.metrics import infidelity as captum_infidelity

    n, c = images.shape[:2]
    t = _target_tensor(target, n).tolist() if target is not None else None
    attributions = heat.to(images).unsqueeze(1).expand(-1, c, -1, -1).contiguous()
    with torch.no_grad():
        return captum_infidelity(model, noise_perturbation(sigma, seed), images.detach(), attributions, target=t,
                                 n_perturb_samples=samples, normalize=True).detach().cpu()


def trust(model: nn.Module, images: torch.Tensor, target: Target, methods: Sequence[str] = tuple(METHODS),
          layer: str = "layer4", masks: torch.Tensor | None = None, steps: int = STEPS, seed: int = 0,
          samples: int = SAMPLES, tick: Tick | None = None) -> tuple[Trust, ...]:
    """Deletion and insertion curves and infidelity of each method's maps on the same (normalized) images
    and targets, then the ``random`` order and, with ``masks`` (N x H x W bool), the ``mask`` order.

    ``layer`` is where Grad-CAM and Guided Grad-CAM read. ``target`` None: the model's predictions, fixed
    once for every method. ``tick(done, total)`` after each method (progress bars).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; one of {', '.join(METHODS)}")
    n = images.shape[0]
    if n < 1:
        raise ValueError("no images to score")
    with torch.no_grad():
        logits = model(images)
    targets = _target_tensor(target, n, logits).to(images.device)
    _check_targets(targets, logits.shape[1])
    if masks is not None and masks.shape != (n, *images.shape[-2:]):
        raise ValueError(f"masks {tuple(masks.shape)} do not match images {tuple(images.shape)}")
    refs = ["random"] + (["mask"] if masks is not None else [])
    total = len(methods) + len(refs)
    out = []
    for i, method in enumerate([*methods, *refs]):
        if method == "random":
            heat = torch.zeros(n, *images.shape[-2:])
        elif method == "mask":
            heat = masks.float()
        else:
            heat = attribute(model, images, targets, method, layer).cpu()
        curves = [perturbation_curve(model, images, heat, targets, kind, steps=steps, seed=seed)
                  for kind in ("deletion", "insertion")]
        inf = None if method in REFERENCES else float(infidelity(model, images, heat, targets, samples=samples,
                                                                 seed=seed).mean())
        out.append(Trust(method, curves[0], curves[1], inf, n))
        if tick is not None:
            tick(i + 1, total)
    return tuple(out)

"""Grad-CAM and other attributions, their localization score, and a randomization sanity check.

Every function returns heat maps N x H x W with values in [0, 1] at the input's resolution, and leaves
the model as it found it: hooks are scoped to the call, gradients are taken with
``torch.autograd.grad`` (so no parameter's ``.grad`` is touched), and methods that must change the
model's behaviour (Guided Grad-CAM replaces ReLU gradients) work on a private copy.

Targets: ``None`` means each image's predicted class; an int is one class for the whole batch; a
sequence or tensor gives one class per image.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..models.hooks import forward_hooks
from .points import resolve

Target = int | Sequence[int] | torch.Tensor | None
METHODS = {  # key -> what a person reads
    "gradcam": "Grad-CAM",
    "guided_gradcam": "Guided Grad-CAM",
    "integrated_gradients": "Integrated Gradients",
    "saliency": "Saliency",
    "occlusion": "Occlusion",
}
LAYER_METHODS = ("gradcam", "guided_gradcam")  # methods that read a layer


def _target_tensor(target: Target, n: int, logits: torch.Tensor | None = None) -> torch.Tensor:
    if target is None:
        if logits is None:
            raise ValueError("target None needs the logits")
        return logits.argmax(1)
    if isinstance(target, bool):
        raise ValueError("target must be a class index, not a bool")
    if isinstance(target, int):
        t = torch.full((n,), target, dtype=torch.long)
    else:
        t = torch.as_tensor(target, dtype=torch.long).flatten()
        if t.numel() != n:
            raise ValueError(f"{t.numel()} targets for {n} images")
    return t


def _check_targets(t: torch.Tensor, num_classes: int) -> None:
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        raise ValueError(f"target class out of range 0..{num_classes - 1}: {t.tolist()}")


def normalize_max(heat: torch.Tensor) -> torch.Tensor:
    """Scale each N x H x W map by its own maximum into [0, 1]; an all-zero (or negative) map stays 0."""
    peak = heat.flatten(1).max(1).values.clamp_min(0).view(-1, 1, 1)
    return torch.where(peak > 0, heat.clamp_min(0) / peak.clamp_min(1e-30), torch.zeros_like(heat))


def normalize_percentile(heat: torch.Tensor, q: float = 0.99) -> torch.Tensor:
    """Scale each non-negative map by its ``q`` quantile and clip to [0, 1] (for noisy gradient maps)."""
    flat = heat.flatten(1).clamp_min(0)
    top = torch.quantile(flat.float(), q, dim=1).view(-1, 1, 1)
    top = torch.where(top > 0, top, flat.max(1).values.view(-1, 1, 1))
    return torch.where(top > 0, heat.clamp_min(0) / top.clamp_min(1e-30), torch.zeros_like(heat)).clamp(0, 1)


def grad_cam_raw(model: nn.Module, images: torch.Tensor, target: Target, layer: str
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grad-CAM at the layer's own resolution, before upsampling: (cam N x h x w, targets N, logits N x K).

    ``cam = ReLU(sum_k a_k A_k)`` with ``a_k`` the spatial mean of d score / d A_k (Selvaraju et al.
    2017, eq. 1-2), ``score`` the target's logit (pre-softmax) and ``A`` the activation at ``layer``.
    This equals captum's ``LayerGradCam(...).attribute(..., relu_attributions=True)``. One forward and
    one backward pass (down to the layer only), even when the target is the prediction.
    """
    point = resolve(model, layer)
    seen: list[torch.Tensor] = []

    def grab(_: str, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if not seen:
            seen.append(point.extract(inputs, output))

    def keep(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor | None:
        # hand later layers a copy, so an in-place op after this layer cannot rewrite what we differentiate
        return output.clone() if point.extract(inputs, output) is output else None

    with torch.enable_grad():
        handle = point.module.register_forward_hook(keep)
        try:
            with forward_hooks([(layer, point.module)], grab):
                logits = model(images)
        finally:
            handle.remove()
        if not seen:
            raise ValueError(f"the forward pass never reached {layer}")
        act = seen[0]
        if act.dim() != 4:
            raise ValueError(f"Grad-CAM needs a spatial layer (N x C x h x w); {layer} gives {tuple(act.shape)}")
        targets = _target_tensor(target, images.shape[0], logits).to(logits.device)
        _check_targets(targets, logits.shape[1])
        score = logits.gather(1, targets.view(-1, 1)).sum()
        (grads,) = torch.autograd.grad(score, act)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * act.detach()).sum(1))
    return cam, targets, logits.detach()


def grad_cam(model: nn.Module, images: torch.Tensor, target: Target = None, layer: str = "layer4") -> torch.Tensor:
    """Grad-CAM maps N x H x W in [0, 1] at the input resolution.

    ``layer`` is a module name such as ``"layer4"`` or ``"layer3.1"`` (or any point of
    :mod:`resnet_lab.analysis.points`). The raw map of :func:`grad_cam_raw` is upsampled bilinearly
    (``align_corners=False``), kept non-negative, and divided by each image's maximum (the paper's
    ReLU'd map shown on a 0..1 scale; pytorch-grad-cam's min-max scaling is the same whenever the
    minimum is 0). A map with no positive evidence is all zeros.
    """
    cam, _, _ = grad_cam_raw(model, images, target, layer)
    return upsample(cam, images.shape[-2:])


def upsample(cam: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """N x h x w -> N x H x W, bilinear, ReLU'd and max-normalized."""
    up = F.interpolate(cam[:, None].float(), size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    return normalize_max(up)


def relu_copy(model: nn.Module) -> nn.Module:
    """A private deep copy with every ReLU made out-of-place (captum's module backward hooks need it)."""
    twin = copy.deepcopy(model)
    for m in twin.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return twin.eval()


def attribute(model: nn.Module, images: torch.Tensor, target: Target = None, method: str = "gradcam",
              layer: str = "layer4", *, baseline: torch.Tensor | None = None, steps: int = 32,
              window: int | None = None) -> torch.Tensor:
    """Any method of :data:`METHODS` as maps N x H x W in [0, 1] at the input resolution.

    * ``gradcam``: :func:`grad_cam`.
    * ``guided_gradcam``: captum's ``GuidedGradCam`` (guided backprop times the upsampled CAM), absolute
      value, max over channels, scaled by the 99th percentile.
    * ``integrated_gradients``: captum's ``IntegratedGradients`` from ``baseline`` (default: zeros, the
      normalized mean image) in ``steps`` steps; absolute value summed over channels, 99th percentile.
    * ``saliency``: captum's ``Saliency`` (absolute input gradient), max over channels (Simonyan et al.
      2014), 99th percentile.
    * ``occlusion``: captum's ``Occlusion`` with a square window (default: 1/8 of the shorter side,
      at least 2 px) sliding at half its size, baseline zeros; drops of the target's score, positive
      part only, max-normalized.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; one of {', '.join(METHODS)}")
    if method == "gradcam":
        return grad_cam(model, images, target, layer)
    logits = None
    if target is None:
        with torch.no_grad():
            logits = model(images)
    targets = _target_tensor(target, images.shape[0], logits).to(images.device)
    fc = getattr(model, "fc", None)
    classes = logits.shape[1] if logits is not None else getattr(fc, "out_features", None)
    if classes is not None:
        _check_targets(targets, classes)
    t = targets.tolist()
    images = images.detach().clone().requires_grad_(True)  # captum would flip the caller's tensor otherwise
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        return _captum(model, images, t, method, layer, baseline, steps, window).detach()


def _captum(model: nn.Module, images: torch.Tensor, t: list[int], method: str, layer: str,
            baseline: torch.Tensor | None, steps: int, window: int | None) -> torch.Tensor:
    from captum.attr import GuidedGradCam, IntegratedGradients, Occlusion, Saliency

    if method == "guided_gradcam":
        work = relu_copy(model)
        point = resolve(work, layer)
        if ":" in layer and not layer.endswith(":out"):
            raise ValueError("Guided Grad-CAM reads a module's output: pick a stage or a block")
        attr = GuidedGradCam(work, point.module).attribute(images, target=t, interpolate_mode="bilinear")
        return normalize_percentile(attr.abs().amax(1))
    if method == "integrated_gradients":
        base = torch.zeros_like(images) if baseline is None else baseline.expand_as(images).to(images)
        attr = IntegratedGradients(model).attribute(images, baselines=base, target=t, n_steps=steps,
                                                    internal_batch_size=max(8, min(64, steps * len(images))))
        return normalize_percentile(attr.abs().sum(1))
    if method == "saliency":
        attr = Saliency(model).attribute(images, target=t, abs=True)
        return normalize_percentile(attr.amax(1))
    c, h, w = images.shape[1:]
    win = window or max(2, min(h, w) // 8)
    stride = max(1, win // 2)
    attr = Occlusion(model).attribute(images.detach(), target=t, sliding_window_shapes=(c, win, win),
                                      strides=(c, stride, stride), baselines=0.0, perturbations_per_eval=64)
    return normalize_max(attr.amax(1))


# ---------------------------------------------------------------------------------------------------
# localization against ground-truth masks


@dataclass(frozen=True)
class Localization:
    energy: float  # mean fraction of the map's total inside the object mask (1.0 = all inside)
    pointing: float  # share of images whose map peaks inside the mask (pointing game hit rate)
    baseline: float  # mean mask area fraction: the energy score of a uniform map
    n: int  # images scored

    def as_dict(self) -> dict[str, float]:
        return {"energy": self.energy, "pointing": self.pointing, "baseline": self.baseline, "n": self.n}


def localization_scores(heat: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: (energy inside the mask / total energy, 1.0 if the map's peak is inside the mask else 0).

    ``heat`` N x H x W non-negative, ``masks`` N x H x W bool. An all-zero map scores 0 on both (it
    points nowhere). The peak is the first maximum in row-major order (no tolerance margin: at 32 px a
    15 px margin, as in Zhang et al. 2016, would cover half the image).
    """
    if heat.shape != masks.shape:
        raise ValueError(f"heat {tuple(heat.shape)} and masks {tuple(masks.shape)} differ")
    heat = heat.float().clamp_min(0)
    m = masks.bool()
    total = heat.flatten(1).sum(1)
    inside = (heat * m).flatten(1).sum(1)
    energy = torch.where(total > 0, inside / total.clamp_min(1e-30), torch.zeros_like(total))
    peak = heat.flatten(1).argmax(1)
    hit = m.flatten(1).gather(1, peak.view(-1, 1)).flatten().float() * (total > 0).float()
    return energy, hit


def localization(model: nn.Module, images: torch.Tensor, masks: torch.Tensor, target: Target = None,
                 layer: str = "layer4", method: str = "gradcam", batch_size: int = 64) -> Localization:
    """Mean localization of ``method`` maps against object masks over a batch of (normalized) images."""
    n = images.shape[0]
    targets = None if target is None else _target_tensor(target, n)
    energies, hits = [], []
    for i in range(0, n, batch_size):
        t = None if targets is None else targets[i : i + batch_size]
        heat = attribute(model, images[i : i + batch_size], t, method, layer)
        e, h = localization_scores(heat.cpu(), masks[i : i + batch_size].cpu())
        energies.append(e)
        hits.append(h)
    e, h = torch.cat(energies), torch.cat(hits)
    return Localization(float(e.mean()), float(h.mean()), float(masks.float().mean()), n)


# ---------------------------------------------------------------------------------------------------
# cascading randomization (Adebayo et al. 2018, "Sanity checks for saliency maps")


@dataclass(frozen=True)
class RandomizationStep:
    randomized: str  # the layer group re-initialized at this step ("none" for the trained model)
    heat: torch.Tensor  # N x H x W maps after this step
    rank_corr: float  # mean Spearman rank correlation with the trained model's maps (1.0 = unchanged)


def _groups(model: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """Layer groups from the top (fc) down to the stem, each with the modules re-initialized."""
    groups: list[tuple[str, list[nn.Module]]] = [("fc", [model.fc])] if hasattr(model, "fc") else []
    for stage in reversed(list(getattr(model, "stages", []))):
        for i in reversed(range(len(getattr(model, stage)))):
            groups.append((f"{stage}.{i}", [getattr(model, stage)[i]]))
    groups.append(("stem", [model.conv1, model.bn1]))
    return groups


def _reinit(modules: list[nn.Module], gen: torch.Generator) -> None:
    for root in modules:
        for m in root.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                with torch.no_grad():
                    m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                    if m.bias is not None:
                        m.bias.zero_()


def _ranks(v: torch.Tensor) -> torch.Tensor:
    """Ranks of a 1-D tensor, ties given their average rank (as scipy.stats.rankdata)."""
    values, order = v.sort(stable=True)
    _, counts = torch.unique_consecutive(values, return_counts=True)
    ends = counts.cumsum(0).double()
    avg = ends - (counts.double() - 1) / 2  # 1-based average rank of each run of equal values
    ranks = torch.empty_like(v, dtype=torch.float64)
    ranks[order] = avg.repeat_interleave(counts)
    return ranks


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation per row of two N x D tensors (ties get average ranks; a constant row
    correlates 0 with anything)."""
    ra = torch.stack([_ranks(r) for r in a.double()])
    rb = torch.stack([_ranks(r) for r in b.double()])
    ra = ra - ra.mean(1, keepdim=True)
    rb = rb - rb.mean(1, keepdim=True)
    den = (ra.norm(dim=1) * rb.norm(dim=1)).clamp_min(1e-12)
    return ((ra * rb).sum(1) / den).float()


def cascading_randomization(model: nn.Module, images: torch.Tensor, target: Target = None, layer: str = "layer4",
                            method: str = "gradcam", seed: int = 0, groups: int | None = None
                            ) -> list[RandomizationStep]:
    """Re-initialize the model's layers cumulatively from the top (fc, last block, ...) down to the stem,
    recomputing the maps after each step, on a private copy.

    A faithful explanation changes as the weights it explains are destroyed; maps that stay the same
    (rank correlation near 1 with the trained model's) describe the input or the architecture, not what
    the network learned. The target classes are fixed from the trained model (``None``: its prediction).
    ``groups`` limits the number of steps (None: all blocks, then the stem).
    """
    work = copy.deepcopy(model).eval()
    with torch.no_grad():
        logits = work(images)
    fixed = _target_tensor(target, images.shape[0], logits)
    base = attribute(work, images, fixed, method, layer)
    steps = [RandomizationStep("none", base, 1.0)]
    gen = torch.Generator().manual_seed(seed)
    for name, modules in _groups(work)[: groups]:
        _reinit(modules, gen)
        heat = attribute(work, images, fixed, method, layer)
        rho = spearman(base.flatten(1).cpu(), heat.flatten(1).cpu())
        steps.append(RandomizationStep(name, heat, float(rho.mean())))
    return steps

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


# ---------------------------------------------------------------------------------------------------
# Grad-CAM across depth: every stage and block from one forward and one backward pass


def depth_layers(model: nn.Module) -> list[str]:
    """The Grad-CAM layers of :func:`~resnet_lab.analysis.points.cam_layers` from shallow to deep
    (``layer1.0, layer1.1, …, layer1, layer2.0, …``): each stage comes right after its last block."""
    from .points import cam_layers

    return list(reversed(cam_layers(model)))


@dataclass(frozen=True)
class CamDepth:
    """Grad-CAM of a batch at several layers, for one target per image."""

    layers: tuple[str, ...]  # in the order asked (shallow to deep for depth_layers)
    sizes: tuple[tuple[int, int], ...]  # each layer's own h x w: the map's resolution before upsampling
    maps: torch.Tensor  # L x N x H x W in [0, 1] at the input's resolution (as grad_cam)
    targets: torch.Tensor  # N classes explained
    logits: torch.Tensor  # N x K

    def columns(self) -> list[tuple[str, int]]:
        """(title, index) of the maps worth drawing: a stage's output *is* its last block's output (a stage is
        the sequence of its blocks), so a stage whose map equals the block just before it is drawn once,
        titled ``"layer1.2 = layer1"``; every other layer keeps its own column."""
        cols: list[tuple[str, int]] = []
        for i, name in enumerate(self.layers):
            prev = cols[-1] if cols else None
            if (prev is not None and "." not in name and prev[0].startswith(f"{name}.") and "=" not in prev[0]
                    and torch.equal(self.maps[prev[1]], self.maps[i])):
                cols[-1] = (f"{prev[0]} = {name}", prev[1])
            else:
                cols.append((name, i))
        return cols


def grad_cam_depth(model: nn.Module, images: torch.Tensor, target: Target = None,
                   layers: Sequence[str] | None = None) -> CamDepth:
    """Grad-CAM (as :func:`grad_cam`) at every layer of ``layers`` (default: :func:`depth_layers`, every
    block and stage from shallow to deep), from one forward and one backward pass: the gradient of the
    target's logit reaches every hooked activation at once, so each map is exactly the one
    :func:`grad_cam` computes for that layer alone, at the cost of one map. ``target`` None: each image's
    predicted class, the same class at every layer."""
    names = list(depth_layers(model) if layers is None else layers)
    if not names:
        raise ValueError("no layers to read Grad-CAM from")
    points = [resolve(model, name) for name in names]
    seen: dict[str, torch.Tensor] = {}

    def grab(name: str, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if name not in seen:
            seen[name] = next(p for p in points if p.name == name).extract(inputs, output)

    def keeper(point):
        def keep(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor | None:
            return output.clone() if point.extract(inputs, output) is output else None  # as in grad_cam_raw
        return keep

    with torch.enable_grad():
        handles = [p.module.register_forward_hook(keeper(p)) for p in points]
        try:
            with forward_hooks([(p.name, p.module) for p in points], grab):
                logits = model(images)
        finally:
            for h in handles:
                h.remove()
        missing = [n for n in names if n not in seen]
        if missing:
            raise ValueError(f"the forward pass never reached {', '.join(missing)}")
        acts = [seen[n] for n in names]
        for n, a in zip(names, acts):
            if a.dim() != 4:
                raise ValueError(f"Grad-CAM needs a spatial layer (N x C x h x w); {n} gives {tuple(a.shape)}")
        targets = _target_tensor(target, images.shape[0], logits).to(logits.device)
        _check_targets(targets, logits.shape[1])
        score = logits.gather(1, targets.view(-1, 1)).sum()
        grads = torch.autograd.grad(score, acts)
    maps, sizes = [], []
    for a, g in zip(acts, grads):
        cam = F.relu((g.mean(dim=(2, 3), keepdim=True) * a.detach()).sum(1))
        sizes.append((int(cam.shape[-2]), int(cam.shape[-1])))
        maps.append(upsample(cam, images.shape[-2:]))
    return CamDepth(tuple(names), tuple(sizes), torch.stack(maps).detach(), targets.detach(), logits.detach())


@dataclass(frozen=True)
class DepthLocalization:
    """:func:`localization` of one method at several layers of one model, on the same images."""

    method: str
    layers: tuple[str, ...]  # in the order scored (shallow to deep for depth_layers)
    scores: tuple[Localization, ...]  # one per layer

    def best(self, metric: str = "energy") -> tuple[str, Localization]:
        """The layer with the highest ``energy`` (or ``pointing``) and its scores; on a tie the shallower one
        (a stage ties with its last block: the block's name is given)."""
        if metric not in ("energy", "pointing"):
            raise ValueError(f"metric must be energy or pointing, got {metric!r}")
        i = max(range(len(self.layers)), key=lambda k: (getattr(self.scores[k], metric), -k))
        return self.layers[i], self.scores[i]

    def as_dict(self) -> dict:
        layer, best = self.best()
        return {"method": self.method, "best_layer": layer, "best_energy": best.energy,
                "best_pointing": best.pointing, "baseline": self.scores[0].baseline, "n": self.scores[0].n,
                "layers": [{"layer": name, **s.as_dict()} for name, s in zip(self.layers, self.scores)]}


def localization_by_depth(model: nn.Module, images: torch.Tensor, masks: torch.Tensor, target: Target = None,
                          layers: Sequence[str] | None = None, method: str = "gradcam", batch_size: int = 64,
                          tick=None) -> DepthLocalization:
    """The :func:`localization` scores (energy inside the mask, pointing game) of ``method`` at each layer of
    ``layers`` (default :func:`depth_layers`: every block and stage, shallow to deep) on the same images and
    targets, so the depth whose maps find the object best can be read off.

    Grad-CAM computes all layers of a batch in one forward/backward pass (:func:`grad_cam_depth`); Guided
    Grad-CAM one layer at a time. ``tick(done, total)`` is called after each batch (progress bars).
    """
    if method not in LAYER_METHODS:
        raise ValueError(f"{METHODS.get(method, method)} reads no layer; depth needs one of {', '.join(LAYER_METHODS)}")
    names = list(depth_layers(model) if layers is None else layers)
    n = images.shape[0]
    if n < 1:
        raise ValueError("no images to score")
    if masks.shape[0] != n:
        raise ValueError(f"{masks.shape[0]} masks for {n} images")
    targets = None if target is None else _target_tensor(target, n)
    energies: list[list[torch.Tensor]] = [[] for _ in names]
    hits: list[list[torch.Tensor]] = [[] for _ in names]
    batches = list(range(0, n, batch_size))
    for b, i in enumerate(batches):
        x, m = images[i : i + batch_size], masks[i : i + batch_size].cpu()
        t = None if targets is None else targets[i : i + batch_size]
        if method == "gradcam":
            heats = list(grad_cam_depth(model, x, t, names).maps)
        else:
            if t is None:
                with torch.no_grad():
                    t = model(x).argmax(1)
            heats = [attribute(model, x, t, method, name) for name in names]
        for k, heat in enumerate(heats):
            e, h = localization_scores(heat.cpu(), m)
            energies[k].append(e)
            hits[k].append(h)
        if tick is not None:
            tick(b + 1, len(batches))
    base = float(masks.float().mean())
    scores = tuple(Localization(float(torch.cat(e).mean()), float(torch.cat(h).mean()), base, n)
                   for e, h in zip(energies, hits))
    return DepthLocalization(method, tuple(names), scores)

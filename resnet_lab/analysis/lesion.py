"""Lesion study: delete one block at test time and measure the accuracy lost (Veit, Wilber, Belongie 2016,
"Residual Networks Behave Like Ensembles of Relatively Shallow Networks", sec. 4).

Two lesions per block:

* ``"branch"`` deletes the block's residual function F. In a ResNet the block then outputs only its
  shortcut (``relu(shortcut(x))`` for the original blocks, ``shortcut`` for pre-activation ones) —
  Veit et al.'s deletion. In a plain net there is no shortcut to fall back on; the nearest analogue is
  to replace the block by the identity, which is only possible when the block keeps its input's shape.
  A plain block that downsamples cannot be removed: nothing would be left to carry the signal.
* ``"skip"`` removes the shortcut and keeps F (the block becomes a plain block with trained weights).
  A plain block has no skip to remove.

Where this differs from the paper: Veit et al. delete only blocks with identity shortcuts and report
the downsampling blocks separately; here every block is tried and downsampling blocks are flagged
(``Lesion.downsampling``) so a summary can leave them out. The model is never changed: all lesions are
made on a deep copy in eval mode, with its runtime switches reset to "skip on, branch on" first.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

from ..data.registry import stratified_order
from ..models.hooks import forward_hooks
from ..models.resnet import set_branch, set_skip

KINDS = ("branch", "skip")  # what a lesion removes: the residual branch F, or the shortcut
KIND_LABELS = {"branch": "delete the residual branch F(x)", "skip": "remove the skip connection"}
NOTE_SHAPE = "changes the shape: nothing left to carry the signal"
NOTE_NO_SKIP = "has no skip"


@dataclass(frozen=True)
class Lesion:
    block: str  # e.g. "layer2.0"
    kind: str  # "branch" or "skip"
    downsampling: bool  # the block changes its input's shape (stride 2 and/or more channels)
    acc: float | None  # accuracy with this one lesion, 0..1 (None: the lesion is not possible)
    drop: float | None  # base accuracy - acc, fraction (positive: the lesion hurts)
    note: str  # what was done, or why it is not possible

    def to_dict(self) -> dict[str, Any]:
        return {"block": self.block, "kind": self.kind, "downsampling": self.downsampling, "acc": self.acc,
                "drop": self.drop, "note": self.note}


@dataclass(frozen=True)
class LesionStudy:
    label: str  # which model, e.g. "run 12 · resnet20 (ResNet)"
    skip: bool  # the model was built with skip connections (a ResNet), False for a plain net
    base_acc: float  # accuracy of the intact model on the images, 0..1
    n_images: int  # images evaluated
    rows: tuple[Lesion, ...]  # one per (block, kind), blocks in depth order

    @property
    def blocks(self) -> list[str]:
        """Block names in depth order."""
        return list(dict.fromkeys(r.block for r in self.rows))

    def row(self, block: str, kind: str) -> Lesion:
        for r in self.rows:
            if r.block == block and r.kind == kind:
                return r
        raise KeyError(f"no {kind} lesion of block {block}")

    def kind_rows(self, kind: str) -> list[Lesion]:
        return [r for r in self.rows if r.kind == kind]

    def mean_drop(self, kind: str, exclude_downsampling: bool = True) -> float | None:
        """Mean accuracy drop (fraction) over the blocks where the lesion is possible; None if there are none.
        By default downsampling blocks are left out, as in Veit et al. (their deletion changes the shape of
        the signal, not just its content)."""
        drops = [r.drop for r in self.rows if r.kind == kind and r.drop is not None
                 and not (exclude_downsampling and r.downsampling)]
        return sum(drops) / len(drops) if drops else None

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "skip": self.skip, "base_acc": self.base_acc, "n_images": self.n_images,
                "mean_drop": {k: self.mean_drop(k) for k in dict.fromkeys(r.kind for r in self.rows)},
                "rows": [r.to_dict() for r in self.rows]}


def lesion_indices(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``n`` images to study (all when n >= len): a class-stratified seeded subset, sorted."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of images must be a positive integer, got {n!r}")
    if n >= len(labels):
        return torch.arange(len(labels))
    return stratified_order(labels, seed)[:n].sort().values


def _check_inputs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
    if not hasattr(model, "named_blocks"):
        raise ValueError(f"a lesion study needs a ResNet built by resnet_lab, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"images must be an N x C x H x W tensor, got {getattr(x, 'shape', type(x).__name__)}")
    if not isinstance(y, torch.Tensor) or y.dim() != 1 or len(y) != len(x):
        raise ValueError(f"labels must be a vector of {len(x)} class indices, got {getattr(y, 'shape', y)!r}")
    if len(x) == 0:
        raise ValueError("a lesion study needs at least one image")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def _check_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValueError(f"lesion kinds must be some of {', '.join(KINDS)}, got {', '.join(map(str, kinds)) or 'none'}")
    return tuple(dict.fromkeys(kinds))


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    device = next(model.parameters()).device
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            pred = model(x[i:i + batch_size].to(device)).argmax(1).cpu()
            correct += int((pred == y[i:i + batch_size].cpu()).sum())
    return correct / len(x)


def _intact_copy(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode with every block's switches back to its built state (skip on, branch on)."""
    work = copy.deepcopy(model).eval()
    for block in work.blocks():
        block.skip_enabled = block.has_skip
        block.branch_enabled = True
    return work


def _reshaping(model: nn.Module, x: torch.Tensor) -> dict[str, bool]:
    """{block name: whether its output shape differs from its input shape}, from one image."""
    seen: dict[str, bool] = {}

    def record(name: str, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        seen[name] = tuple(inputs[0].shape) != tuple(output.shape)

    device = next(model.parameters()).device
    with forward_hooks(model.named_blocks(), record), torch.no_grad():
        model(x[:1].to(device))
    return seen


def _as_identity(name: str, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    """Forward hook that discards a block's output and passes its input on (a deleted plain block)."""
    return inputs[0]


@contextmanager
def _lesioned(work: nn.Module, names: Sequence[str], kind: str) -> Iterator[None]:
    """Inside the block, ``work`` has the lesion ``kind`` applied to the blocks ``names``: "branch" switches a
    ResNet block's branch off and turns a plain block into the identity (a scoped forward hook); "skip"
    switches a ResNet block's shortcut off. Everything is switched back on exit."""
    blocks = dict(work.named_blocks())
    resnet = [n for n in names if blocks[n].has_skip]
    plain = [(n, blocks[n]) for n in names if not blocks[n].has_skip]
    switch = set_branch if kind == "branch" else set_skip
    if resnet:
        switch(work, False, resnet)
    try:
        with forward_hooks(plain if kind == "branch" else [], _as_identity):
            yield
    finally:
        if resnet:
            switch(work, True, resnet)


def _with_blocks_deleted(work: nn.Module, names: Sequence[str], x: torch.Tensor, y: torch.Tensor,
                         batch_size: int) -> float:
    """Accuracy of ``work`` with the residual branches of ``names`` deleted (plain blocks: identity)."""
    with _lesioned(work, names, "branch"):
        return _accuracy(work, x, y, batch_size)


def _tail(work: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """The model's forward after its last block: final BN-ReLU of a pre-activation net, pool, fc."""
    if work.spec.preact:
        h = work.relu_final(work.bn_final(h))
    return work.forward_head(h)


def _block_inputs(work: nn.Module, blocks: list[nn.Module], x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(the input of every block, the logits) of the intact model on one batch, block by block."""
    h = work.stem(x)
    inputs = []
    for block in blocks:
        inputs.append(h)
        h = block(h)
    return inputs, _tail(work, h)


def _resume(work: nn.Module, blocks: list[nn.Module], k: int, h: torch.Tensor) -> torch.Tensor:
    """Logits from block ``k`` on, given that block's input: a lesion at block k leaves blocks 0..k-1 as
    they were, so their outputs are reused instead of recomputed (about half the work of a full pass)."""
    for block in blocks[k:]:
        h = block(h)
    return _tail(work, h)


def _plan(work: nn.Module, kinds: Sequence[str], reshapes: dict[str, bool]) -> list[tuple[str, str, bool, str]]:
    """(block, kind, possible, note) for every block in depth order and every kind."""
    plan = []
    for name, block in work.named_blocks():
        for kind in kinds:
            if kind == "branch" and block.has_skip:
                plan.append((name, kind, True, "residual branch deleted: the block passes on its shortcut only"))
            elif kind == "branch" and reshapes[name]:
                plan.append((name, kind, False, NOTE_SHAPE))
            elif kind == "branch":
                plan.append((name, kind, True, "block replaced by the identity"))
            elif block.has_skip:
                plan.append((name, kind, True, "skip removed: the block computes its residual branch only"))
            else:
                plan.append((name, kind, False, NOTE_NO_SKIP))
    return plan


def _tick(progress: Callable[[int, int], None] | None, done: int, total: int) -> int:
    """One more unit of work done: report it (when asked to) and return the new count."""
    done += 1
    if progress is not None:
        progress(done, total)
    return done


def lesion_study(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256,
                 kinds: Sequence[str] = KINDS, label: str = "",
                 progress: Callable[[int, int], None] | None = None) -> LesionStudy:
    """Accuracy of ``model`` on (``x``, ``y``) with each block lesioned in turn, one at a time.

    ``x`` is N x C x H x W, normalized as the model expects; ``y`` holds N class indices. Rows come in
    depth order (``model.named_blocks()``), one per block and kind. The model itself is untouched: the
    work happens on a deep copy in eval mode (so BatchNorm uses its running statistics).

    For each batch the intact model runs once, block by block, keeping every block's input; a lesion at
    block k then reruns only blocks k.. and the head. On the first batch the block-by-block logits are
    checked against the model's own forward; should they ever differ (a model whose forward is more
    than stem, blocks, head), every lesion is evaluated with full forward passes instead.

    ``progress(done, total)`` is called after the intact pass and after each lesion of every batch.
    """
    _check_inputs(model, x, y, batch_size)
    kinds = _check_kinds(kinds)
    work = _intact_copy(model)
    reshapes = _reshaping(work, x)
    plan = _plan(work, kinds, reshapes)
    names = [n for n, _ in work.named_blocks()]
    blocks = [b for _, b in work.named_blocks()]
    device = next(work.parameters()).device
    base_correct = 0
    correct = {(name, kind): 0 for name, kind, possible, _ in plan if possible}
    blockwise = True
    total, done = -(-len(x) // batch_size) * (1 + len(correct)), 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].cpu()
            if blockwise:
                inputs, logits = _block_inputs(work, blocks, xb)
                if i == 0:  # the first batch decides: the model's own forward is the reference
                    full = work(xb)
                    blockwise = torch.allclose(full, logits, rtol=1e-4, atol=1e-5)
                    logits = full
            else:
                logits = work(xb)
            base_correct += int((logits.argmax(1).cpu() == yb).sum())
            done = _tick(progress, done, total)
            for name, kind in correct:
                k = names.index(name)
                with _lesioned(work, [name], kind):
                    # clone: a lesioned block may apply an in-place ReLU straight to its input
                    out = _resume(work, blocks, k, inputs[k].clone()) if blockwise else work(xb)
                correct[(name, kind)] += int((out.argmax(1).cpu() == yb).sum())
                done = _tick(progress, done, total)
    base = base_correct / len(x)
    rows = []
    for name, kind, possible, note in plan:
        acc = correct[(name, kind)] / len(x) if possible else None
        rows.append(Lesion(name, kind, reshapes[name], acc, None if acc is None else base - acc, note))
    skip = any(b.has_skip for b in work.blocks())
    return LesionStudy(label=label, skip=skip, base_acc=base, n_images=len(x), rows=tuple(rows))


@dataclass(frozen=True)
class DeletionCurve:
    label: str  # which model
    skip: bool  # a ResNet (True) or a plain net
    candidates: tuple[str, ...]  # the blocks that may be deleted (those that keep their input's shape)
    ks: tuple[int, ...]  # numbers of blocks deleted at once
    mean_acc: tuple[float, ...]  # mean accuracy over the trials, per k, 0..1
    min_acc: tuple[float, ...]  # worst trial, per k
    max_acc: tuple[float, ...]  # best trial, per k
    trials: int  # random subsets per k

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "skip": self.skip, "candidates": list(self.candidates), "ks": list(self.ks),
                "mean_acc": list(self.mean_acc), "min_acc": list(self.min_acc), "max_acc": list(self.max_acc),
                "trials": self.trials}


def random_deletions(model: nn.Module, x: torch.Tensor, y: torch.Tensor, ks: Sequence[int] | None = None,
                     trials: int = 5, seed: int = 0, batch_size: int = 256, label: str = "",
                     progress: Callable[[int, int], None] | None = None) -> DeletionCurve:
    """Mean accuracy when ``k`` random blocks are deleted at once (Veit et al. 2016, Fig. 5a).

    Only blocks that keep their input's shape are candidates, in ResNets and plain nets alike (a ResNet
    block loses its branch, a plain block becomes the identity). For each k, ``trials`` random subsets
    are drawn from a generator seeded with ``seed`` — the same subsets for two models with the same
    block names — and k = 0 is the intact model. ``ks`` defaults to 0..(number of candidates).
    ``progress(done, total)`` is called after each subset is evaluated.
    """
    _check_inputs(model, x, y, batch_size)
    if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= 1000:
        raise ValueError(f"trials must be an integer in 1..1000, got {trials!r}")
    work = _intact_copy(model)
    reshapes = _reshaping(work, x)
    candidates = [n for n, _ in work.named_blocks() if not reshapes[n]]
    ks = tuple(range(len(candidates) + 1)) if ks is None else tuple(ks)
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= len(candidates):
            raise ValueError(f"k={k!r}: at most {len(candidates)} blocks of this model can be deleted "
                             "(those that keep their input's shape)")
    gen = torch.Generator().manual_seed(seed)
    subsets = [trials if 0 < k < len(candidates) else 1 for k in ks]  # k = 0 or all: only one subset exists
    means, lows, highs, done = [], [], [], 0
    for k, n_subsets in zip(ks, subsets):
        accs = []
        for _ in range(n_subsets):
            pick = torch.randperm(len(candidates), generator=gen)[:k].sort().values.tolist()
            accs.append(_with_blocks_deleted(work, [candidates[i] for i in pick], x, y, batch_size))
            done = _tick(progress, done, sum(subsets))
        means.append(sum(accs) / len(accs))
        lows.append(min(accs))
        highs.append(max(accs))
    skip = any(b.has_skip for b in work.blocks())
    return DeletionCurve(label, skip, tuple(candidates), ks, tuple(means), tuple(lows), tuple(highs), trials)


def summary_sentence(studies: Sequence[LesionStudy], kind: str = "branch") -> str:
    """One sentence comparing the mean accuracy drop per lesioned block (downsampling blocks left out),
    e.g. "Deleting one block's residual branch costs the ResNet 2.1 points on average and the plain net
    61.0 points (...)". When some model gains accuracy the sentence says "changes the accuracy of ... by"
    with signed numbers. Models where the lesion is never possible are named in a second sentence."""
    kind = _check_kinds([kind])[0]
    costs, impossible, drops = [], [], []
    same_kind = [sum(1 for t in studies if t.skip == s.skip) for s in studies]
    for s, n_like in zip(studies, same_kind):
        d = s.mean_drop(kind)
        generic = "the ResNet" if s.skip else "the plain net"
        who = generic if n_like == 1 or not s.label else s.label
        if d is None:
            impossible.append(who)
        else:
            costs.append((who, d))
            drops.append(d)
    what = "Deleting one block's residual branch" if kind == "branch" else "Removing one block's skip connection"
    out = []
    if costs:
        if min(drops) >= 0:  # the usual case: every lesion hurts
            said = [f"{who} {100 * d:.1f} points" for who, d in costs]
            verb = "costs"
        else:  # an untrained or odd model can gain accuracy: say "changes", with signs
            said = [f"{who} by {100 * -d:+.1f} points" for who, d in costs]
            verb = "changes the accuracy of"
        tail = "".join(f" and {p}" for p in said[1:])
        out.append(f"{what} {verb} {said[0]} on average{tail} (blocks that keep their input's shape).")
    if impossible:
        why = "has no skip connection to remove" if kind == "skip" else "has no block that can be deleted"
        names = " and ".join(impossible)
        out.append(f"{names[0].upper()}{names[1:]} {why}.")
    return " ".join(out)


SAME_WITHIN = 0.01
"""Two mean drops closer than this (1 percentage point) count as "about the same": the drops are measured on the
same images, but one image flips the accuracy of a 100-image study by a point."""


def _pair(items: Sequence[Any]) -> tuple[Any, Any] | None:
    """(the ResNet's item, the plain net's) when there is exactly one of each, else None."""
    res = [i for i in items if i.skip]
    plain = [i for i in items if not i.skip]
    return (res[0], plain[0]) if len(res) == 1 and len(plain) == 1 else None


def comparison_sentence(studies: Sequence[LesionStudy], kind: str = "branch") -> str:
    """Which model loses more accuracy per lesioned block, by how much, and whether that is Veit et al.'s
    finding (a ResNet survives a deleted block far better than a plain net) — computed from the studies'
    mean drops (downsampling blocks left out). "" when there is no ResNet/plain pair to compare or one of
    them cannot take this lesion (a plain net has no skip to remove)."""
    kind = _check_kinds([kind])[0]
    pair = _pair(studies)
    if pair is None:
        return ""
    d_res, d_plain = pair[0].mean_drop(kind), pair[1].mean_drop(kind)
    if d_res is None or d_plain is None:
        return ""
    diff = d_plain - d_res
    if abs(diff) < SAME_WITHIN:
        return (f"The two lose about the same (within {100 * SAME_WITHIN:g} point): Veit et al.'s finding, that a "
                "ResNet survives a deleted block far better than a plain net, does not show here.")
    ratio = ""
    lo, hi = sorted((d_res, d_plain))
    if lo > 0:
        ratio = f", {hi / lo:.3g}× as much"
    if diff > 0:
        return (f"The plain net loses {100 * diff:.1f} points more per deleted block than the ResNet{ratio}, "
                "as Veit et al. found.")
    return (f"The ResNet loses {100 * -diff:.1f} points more per deleted block than the plain net{ratio}: "
            "the opposite of Veit et al.'s finding.")


def deletion_sentence(curves: Sequence[DeletionCurve]) -> str:
    """What deleting several blocks at once cost each model, from its curve: the mean drop with one block
    deleted and with all candidates deleted, and — for a ResNet/plain pair — which loses more at every k
    (Veit et al., Fig. 5a: a ResNet degrades smoothly, a plain net breaks at once). "" without a k = 0 point."""
    costs = []
    for c in curves:
        if 0 not in c.ks or len(c.ks) < 2:
            return ""
        base = c.mean_acc[c.ks.index(0)]
        drops = {k: base - a for k, a in zip(c.ks, c.mean_acc) if k > 0}
        costs.append((c, drops))
    if not costs:
        return ""
    names = [("the ResNet" if c.skip else "the plain net") if _pair(curves) else (c.label or "the model")
             for c, _ in costs]
    first = min(min(d) for _, d in costs)
    last = max(max(d) for _, d in costs)
    hurts = all(v >= 0 for _, d in costs for v in d.values())  # else an untrained or odd model gained accuracy

    def pts(v: float) -> str:
        return f"{100 * v:.1f}" if hurts else f"{-100 * v:+.1f}"

    one = " and ".join(f"{n}{'' if hurts else ' by'} {pts(d[first])} points" for n, (_, d) in zip(names, costs)
                       if first in d)
    out = (f"Deleting {first} block{'s' if first != 1 else ''} {'costs' if hurts else 'changes the accuracy of'} "
           f"{one} on average")
    if last != first and all(last in d for _, d in costs):
        out += f"; deleting {last}, " + " and ".join(pts(d[last]) for _, d in costs) + " points"
    out += "."
    pair = _pair(curves)
    if pair is not None:
        ks = sorted(set(k for k in pair[0].ks if k > 0) & set(k for k in pair[1].ks if k > 0))
        d_res = dict(next(d for c, d in costs if c is pair[0]))
        d_plain = dict(next(d for c, d in costs if c is pair[1]))
        if ks and all(d_plain[k] - d_res[k] >= SAME_WITHIN for k in ks):
            out += " The plain net loses more at every k: the ResNet degrades more gently, as Veit et al. found."
        elif ks and all(d_res[k] - d_plain[k] >= SAME_WITHIN for k in ks):
            out += " The ResNet loses more at every k: the opposite of Veit et al.'s finding."
        elif ks:
            out += " Neither loses clearly more at every k: Veit et al.'s finding does not show here."
    return out

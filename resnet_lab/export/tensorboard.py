"""A run's curves for TensorBoard: :func:`write_tensorboard` writes its logged metrics (at their steps), its
gradient norms and its settings as event files. ``tensorboard`` is an optional extra (``make tensorboard``):
without it, :class:`TensorBoardMissing` says how to get it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..spec import ModelSpec
from .manifest import as_number

TENSORBOARD_HINT = ("TensorBoard export needs the optional `tensorboard` package: pip install tensorboard "
                    "(or `make tensorboard`)")


class TensorBoardMissing(ImportError):
    """The optional ``tensorboard`` package is not installed."""


@dataclass(frozen=True)
class TensorBoardExport:
    directory: Path
    event_files: tuple[Path, ...]
    scalars: dict[str, int]  # tag -> points written
    texts: tuple[str, ...]  # text tags written


def _summary_writer():
    try:
        import tensorboard  # noqa: F401  (torch's writer needs it; import it first so a hidden one is seen)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise TensorBoardMissing(TENSORBOARD_HINT) from e
    return SummaryWriter


def write_tensorboard(run: Any, metrics: Mapping[str, Sequence[tuple[int, float, float]]], directory: str | Path,
                      grad_norms: tuple[Sequence[str], Sequence[int], Sequence[Sequence[float]]] | None = None,
                      ) -> TensorBoardExport:
    """Write a run's curves as TensorBoard event files in ``directory`` (``tensorboard --logdir`` it).

    ``metrics`` is :meth:`resnet_lab.store.RunStore.metrics`'s {key: [(step, epoch, value)]}: each key becomes
    a scalar tag with every point at its optimizer step. ``grad_norms`` (names, steps, norms per step) become
    ``grad_norm/<layer>`` scalars. The settings (spec, data, training, fine-tuning) are text, and the
    HParams tab gets the flattened settings with the best validation accuracy. The store keeps steps, not
    clock times, so every point carries the run's start time. A folder that already holds event files is
    refused: TensorBoard would merge the two runs' curves into one."""
    writer_cls = _summary_writer()
    directory = Path(directory)
    if directory.is_dir() and any(directory.glob("events.out.tfevents.*")):
        raise FileExistsError(f"{directory} already holds TensorBoard event files; give each run its own folder "
                              "(tensorboard --logdir on their parent compares them)")
    directory.mkdir(parents=True, exist_ok=True)
    wall = float(run.started_at or run.created_at or time.time())
    counts: dict[str, int] = {}
    writer = writer_cls(log_dir=str(directory))
    try:
        for key, points in sorted(metrics.items()):
            for step, _epoch, value in points:
                writer.add_scalar(key, float(value), global_step=int(step), walltime=wall)
            counts[key] = len(points)
        if grad_norms is not None:
            names, steps, norms = grad_norms
            for step, row in zip(steps, norms):
                for name, value in zip(names, row):
                    writer.add_scalar(f"grad_norm/{name}", float(value), global_step=int(step), walltime=wall)
            for name in names:
                counts[f"grad_norm/{name}"] = len(steps)
        texts = _settings_texts(run)
        for tag, text in texts.items():
            writer.add_text(tag, text, global_step=0, walltime=wall)
        hparams = _flat({"spec": run.spec, "data": run.data, "train": run.train})
        best = as_number(run.best.get("val/acc"))
        writer.add_hparams(hparams, {"hparam/best_val_acc": best if best is not None else float("nan")},
                           run_name=".", global_step=0)
    finally:
        writer.close()
    return TensorBoardExport(directory=directory, event_files=tuple(sorted(directory.glob("events.out.tfevents.*"))),
                             scalars=counts, texts=tuple(texts))


def _settings_texts(run: Any) -> dict[str, str]:
    """Markdown per settings group: JSON in a code block (names people typed stay literal text)."""
    def block(value: Any) -> str:
        return "```json\n" + json.dumps(value, indent=2) + "\n```"

    spec = ModelSpec.from_dict(run.spec)
    texts = {"run": block({"id": run.id, "name": run.name, "status": run.status, "model": spec.describe(),
                           "partner_id": run.partner_id, "best": run.best, "last": run.last}),
             "settings/spec": block(run.spec), "settings/data": block(run.data), "settings/train": block(run.train)}
    if run.finetune:
        texts["settings/finetune"] = block(run.finetune)
    return texts


def _flat(groups: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """{"spec.depths": "[1, 1, 1]", "train.lr": 0.05, ...}: TensorBoard's HParams take numbers, bools and text."""
    out: dict[str, Any] = {}
    for group, values in groups.items():
        for key, value in (values or {}).items():
            out[f"{group}.{key}"] = value if isinstance(value, (int, float, str, bool)) else json.dumps(value)
    return out

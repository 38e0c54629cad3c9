"""Take a trained model home: one zip that works without the lab's server, and the run's curves for TensorBoard.

:func:`export_run` (or :func:`export_checkpoint`) packs

- ``model.safetensors``: the checkpoint's weights, byte for byte, with torchvision's parameter names;
- ``manifest.json``: the spec, class names, the input size and normalization the model was trained with, the
  data and training settings, the run (id, name, accuracy) and the versions of resnet_lab, torch and
  torchvision that wrote it, and whether torchvision can hold the same weights (and if not, why not);
- ``resnet_model.py``: the model's definition — the lab's own block and ``ResNet`` classes, copied unchanged,
  with a small ``ModelSpec`` (:mod:`resnet_lab.models.standalone`) — importing only torch;
- ``load_model.py``: rebuilds the model from ``resnet_model.py``, loads the weights with ``strict=True`` and
  classifies image files (``python load_model.py photo.jpg``). Neither file imports ResNet Lab: the zip runs
  wherever torch, safetensors, numpy and Pillow are installed (the README says the one ``pip install``);
- ``load_torchvision.py``, only for specs that torchvision's ``ResNet`` class expresses (the ImageNet stem,
  stage widths 64-128-256-512, projection shortcuts "B", post-activation, BatchNorm, 3 input channels):
  the same file into ``torchvision.models.resnet18(num_classes=...)`` (or ``resnet.ResNet(block, layers)``
  for other depths), strict, needing neither ResNet Lab nor this manifest's spec;
- ``README.txt``: what the files are.

Both snippets prepare an image exactly as the lab does for a trained model (RGB in [0, 1], shorter side
resized to the training size with antialiased bilinear interpolation, centre crop, then ``(x - mean) / std``),
so they give the lab's logits. They read names and numbers from ``manifest.json``; no text a person typed
(run or class names) is ever written into code.

:func:`write_tensorboard` writes a run's logged metrics (with their steps), its gradient norms and its
settings as TensorBoard event files; ``tensorboard`` is an optional extra (``make tensorboard``).
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .models.standalone import module_source, spec_literal
from .paths import write_atomic as write_atomic_file
from .spec import ModelSpec

EXPORT_FORMAT = "resnet-lab-export"
EXPORT_VERSION = 1
WEIGHTS = "model.safetensors"
MANIFEST = "manifest.json"
LAB_SNIPPET = "load_model.py"
MODEL_MODULE = "resnet_model.py"
LAB_NEEDS = ("torch", "safetensors", "numpy", "pillow")  # what load_model.py and resnet_model.py import
TORCHVISION_SNIPPET = "load_torchvision.py"
README = "README.txt"

# torchvision.models.resnetNN: (block, layers) — torchvision/models/resnet.py
TORCHVISION_NAMED = {("basic", (2, 2, 2, 2)): "resnet18", ("basic", (3, 4, 6, 3)): "resnet34",
                     ("bottleneck", (3, 4, 6, 3)): "resnet50", ("bottleneck", (3, 4, 23, 3)): "resnet101",
                     ("bottleneck", (3, 8, 36, 3)): "resnet152"}
TORCHVISION_WIDTHS = (64, 128, 256, 512)  # torchvision's stage widths are fixed (width_per_group=64)
EXPORTABLE_STATUSES = ("done", "stopped", "failed", "diverged", "interrupted")  # not while a worker still writes


class ExportError(ValueError):
    """A run that cannot be exported (still training, no checkpoint): the message says why and what to do."""


# --- torchvision -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TorchvisionMatch:
    """Whether torchvision's ``ResNet`` class can hold a spec's weights (``strict=True``), and how to build it."""

    ok: bool
    call: str  # e.g. "torchvision.models.resnet18(num_classes=3)"; "" when not ok
    reasons: tuple[str, ...]  # why not, one sentence each; () when ok

    def to_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"loadable": True, "call": self.call, "snippet": TORCHVISION_SNIPPET}
        return {"loadable": False, "why": list(self.reasons)}


def torchvision_match(spec: ModelSpec) -> TorchvisionMatch:
    """Can ``torchvision.models.resnet.ResNet`` express ``spec``? Its stem is always the 7×7/2 conv and 3×3/2
    max-pool for 3 channels, it has exactly four stages of 64, 128, 256 and 512 base channels, a projection
    shortcut (with BatchNorm) only where the shape changes — option B — and post-activation blocks. The
    model's module names are torchvision's, so a spec that fits loads with ``strict=True`` (tested against
    torchvision in tests/models/test_resnet.py and tests/test_export.py). ``zero_init_residual`` only
    changes the initial weights, so it does not matter here."""
    reasons = []
    if spec.stem != "imagenet":
        reasons.append("torchvision's ResNet always starts with the ImageNet stem (7×7/2 conv and 3×3/2 max-pool); "
                       "this model has the CIFAR stem (one 3×3 conv)")
    if spec.in_channels != 3:
        reasons.append(f"torchvision's ResNet takes 3 input channels; this model takes {spec.in_channels}")
    if spec.widths != TORCHVISION_WIDTHS:
        reasons.append(f"torchvision's ResNet has four stages of {'-'.join(map(str, TORCHVISION_WIDTHS))} base "
                       f"channels; this model has {'-'.join(map(str, spec.widths))}")
    if not spec.skip:
        reasons.append("torchvision has no plain (no-skip) ResNet")
    elif spec.shortcut != "B":
        reasons.append(f"torchvision's shortcuts are option B (a projection only where the shape changes); this "
                       f"model uses option {spec.shortcut}")
    if spec.preact:
        reasons.append("torchvision's ResNet has post-activation blocks; this model is pre-activation")
    if spec.norm != "batch":
        reasons.append("torchvision's ResNet uses BatchNorm; this model has no normalization (its convs have biases)")
    if reasons:
        return TorchvisionMatch(False, "", tuple(reasons))
    name = TORCHVISION_NAMED.get((spec.block, spec.depths))
    if name is not None:
        return TorchvisionMatch(True, f"torchvision.models.{name}(num_classes={spec.num_classes})", ())
    block = "Bottleneck" if spec.block == "bottleneck" else "BasicBlock"
    return TorchvisionMatch(True, f"torchvision.models.resnet.ResNet(torchvision.models.resnet.{block}, "
                                  f"{list(spec.depths)}, num_classes={spec.num_classes})", ())


# --- the zip -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Export:
    """A finished export: the zip's bytes, the name to save it under, and its manifest."""

    filename: str  # e.g. "run12-tiny.zip"
    data: bytes  # the zip
    manifest: dict[str, Any]

    @property
    def files(self) -> list[str]:
        return list(self.manifest["files"])


def zip_name(run_id: int | None, name: str | None) -> str:
    """"run12-my-model.zip": the run id and a filesystem-safe slug of its name (at most 40 characters)."""
    slug = re.sub(r"[^a-z0-9]+", "-", (name or "").lower()).strip("-")[:40].strip("-")
    stem = f"run{run_id}" if run_id is not None else "model"
    return f"{stem}-{slug}.zip" if slug else f"{stem}.zip"


def _versions() -> dict[str, str]:
    import safetensors
    import torch
    import torchvision

    from . import __version__

    return {"resnet_lab": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "safetensors": safetensors.__version__, "python": platform.python_version()}


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def build_manifest(meta: Mapping[str, Any], spec: ModelSpec, params: int, weights: bytes, tag: str,
                   run: Any = None) -> dict[str, Any]:
    """The export's manifest from a checkpoint's manifest (``meta``) and, when known, its run record."""
    data = meta.get("data") if isinstance(meta.get("data"), dict) else {}
    size = data.get("image_size") if isinstance(data.get("image_size"), int) else spec.default_input_size
    checkpoint_metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
    best = dict(run.best) if run is not None else {}
    last = dict(run.last) if run is not None else {}
    grey = spec.in_channels == 1
    run_id = run.id if run is not None else meta.get("run_id")
    return {
        "format": EXPORT_FORMAT, "version": EXPORT_VERSION,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "run": {"id": run_id if isinstance(run_id, int) else None,
                "name": run.name if run is not None else meta.get("name"),
                "status": run.status if run is not None else None,
                "kind": spec.kind, "partner_id": run.partner_id if run is not None else None,
                "created_at": run.created_at if run is not None else None,
                "finished_at": run.finished_at if run is not None else None},
        "checkpoint": {"tag": tag, "step": meta.get("step"), "epoch": meta.get("epoch")},
        "model": {"spec": spec.to_dict(), "describe": spec.describe(), "params": params},
        "class_names": list(meta.get("class_names") or [f"class {i}" for i in range(spec.num_classes)]),
        "input": {
            "size": size, "channels": spec.in_channels,
            "normalization": {"mean": list(meta["mean"]), "std": list(meta["std"])},
            "preprocess": (f"RGB in [0, 1]; shorter side resized to {size} px (bilinear, antialiased), centre crop "
                           f"{size}×{size}" + ("; grey = 0.299 R + 0.587 G + 0.114 B" if grey else "")
                           + "; then (x - mean) / std per channel"),
            "ink_on_dark": grey and data.get("name") == "digits",
        },
        "accuracy": {"best_val_acc": _number(best.get("val/acc", meta.get("best_val_acc"))),
                     "last_val_acc": _number(last.get("val/acc")),
                     "checkpoint_val_acc": _number(checkpoint_metrics.get("val/acc"))},
        "metrics": {"best": best, "last": last, "checkpoint": checkpoint_metrics},
        "data": data, "train": meta.get("train") or {}, "finetune": meta.get("finetune") or {},
        "weights": {"file": WEIGHTS, "bytes": len(weights), "sha256": hashlib.sha256(weights).hexdigest()},
        "versions": _versions(),
        "torchvision": torchvision_match(spec).to_dict(),
    }


def export_checkpoint(manifest_path: str | Path, run: Any = None) -> Export:
    """Zip the checkpoint ``manifest_path`` (``best.json`` / ``last.json`` of a run folder) for taking home.

    The weights are loaded once into the rebuilt model with ``strict=True`` first, so a checkpoint that would
    not load at home is refused here."""
    from .models.checkpoint import load_checkpoint

    path = Path(manifest_path)
    ckpt = load_checkpoint(path)  # rebuilds the spec, checks the weights' file name, loads strictly
    weights = (path.parent / ckpt.meta["weights"]).read_bytes()
    params = sum(p.numel() for p in ckpt.model.parameters())
    manifest = build_manifest(ckpt.meta, ckpt.spec, params, weights, path.stem, run)
    tv = torchvision_match(ckpt.spec)
    files = {WEIGHTS: weights, MODEL_MODULE: model_module(manifest).encode(),
             LAB_SNIPPET: lab_snippet(ckpt.spec, manifest).encode()}
    if tv.ok:
        files[TORCHVISION_SNIPPET] = torchvision_snippet(tv, manifest).encode()
    files[README] = readme(manifest, tv).encode()
    manifest["files"] = [MANIFEST, *files]
    files = {MANIFEST: (json.dumps(manifest, indent=2) + "\n").encode(), **files}
    return Export(filename=zip_name(manifest["run"]["id"], manifest["run"]["name"]), data=_zip(files),
                  manifest=manifest)


def _zip(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    stamp = time.gmtime()[:6]
    with zipfile.ZipFile(buffer, "w") as z:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.external_attr = 0o644 << 16
            # weights barely compress; text does
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".safetensors") else zipfile.ZIP_DEFLATED
            z.writestr(info, content)
    return buffer.getvalue()


def exportable_checkpoint(run: Any) -> str:
    """The checkpoint to export for a run (best, else last), or :class:`ExportError` saying why there is none."""
    from .analysis.subject import checkpoint_of

    if run.status not in EXPORTABLE_STATUSES:
        raise ExportError(f"run {run.id} is {run.status}: export it when it has finished")
    path = checkpoint_of(run)
    if path is None:
        raise ExportError(f"run {run.id} ({run.status}) kept no checkpoint, so there are no weights to export")
    return path


def export_run(run_id: int, store: Any = None) -> Export:
    """Zip run ``run_id`` of the lab's store (its best checkpoint) for taking home."""
    from .store import Store

    s = store if store is not None else Store()
    try:
        run = s.runs.get(run_id)
    finally:
        if store is None:
            s.close()
    return export_checkpoint(exportable_checkpoint(run), run)


def write_atomic(data: bytes, out: str | Path, overwrite: bool = False) -> Path:
    """Write ``data`` to ``out`` atomically (:func:`resnet_lab.paths.write_atomic`); refuse to replace an existing
    file unless ``overwrite``, and a folder that does not exist."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists (pass --force to replace it)")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"folder {out.parent} does not exist")
    return write_atomic_file(out, data)


# --- the snippets ------------------------------------------------------------------------------------------

_HEAD = '''import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from safetensors.torch import load_file
'''

_PREPROCESS = '''
HERE = Path(__file__).resolve().parent
MANIFEST = json.loads((HERE / "manifest.json").read_text(encoding="utf-8"))
SIZE = MANIFEST["input"]["size"]
MEAN = torch.tensor(MANIFEST["input"]["normalization"]["mean"]).view(-1, 1, 1)
STD = torch.tensor(MANIFEST["input"]["normalization"]["std"]).view(-1, 1, 1)


def load_image(path) -> torch.Tensor:
    """An image file -> the tensor the model takes, prepared as ResNet Lab prepares a photo: upright RGB in
    [0, 1] (transparency over white; a large JPEG decoded at a reduced scale, a large image first box-averaged
    by a whole factor), shorter side resized to SIZE (bilinear, antialiased), centre crop, (x - mean) / std."""
    with Image.open(path) as im:
        if im.format in ("JPEG", "MPO"):
            im.draft(None, (SIZE, SIZE))
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.has_transparency_data:
            rgba = im.convert("RGBA")
            im = Image.new("RGB", rgba.size, (255, 255, 255))
            im.paste(rgba, mask=rgba)
        im = im.convert("RGB")
        if min(im.size) // SIZE >= 2:
            im = im.reduce(min(im.size) // SIZE)
        x = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1) / 255.0
    h, w = x.shape[1:]
    nh, nw = max(SIZE, round(h * SIZE / min(h, w))), max(SIZE, round(w * SIZE / min(h, w)))
    if (nh, nw) != (h, w):
        x = F.interpolate(x[None], size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)[0]
    top, left = (nh - SIZE) // 2, (nw - SIZE) // 2
    x = x[:, top:top + SIZE, left:left + SIZE].clamp(0.0, 1.0)
'''

_GREY = '''    x = (x * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0, keepdim=True)  # grey, as Pillow's "L"
'''
_INK = '''    if x.mean() > 0.5:  # trained on bright strokes on black: dark ink on white paper is inverted
        x = 1.0 - x
'''

_NORMALIZE = '''    return (x - MEAN) / STD
'''

_MAIN = '''

def main(args: list[str]) -> None:
    """Print the top classes of each image file (one JSON line each with --json, logits included)."""
    as_json = "--json" in args
    paths = [a for a in args if a != "--json"]
    model = load_model()
    names = MANIFEST["class_names"]
    if not paths:
        n = sum(p.numel() for p in model.parameters())
        print(f"{MANIFEST['model']['describe']}: {n:,} parameters loaded (strict). "
              f"Classify images with: python {Path(__file__).name} photo.jpg [--json]")
        return
    with torch.no_grad():
        logits = model(torch.stack([load_image(p) for p in paths]))
    for path, row in zip(paths, logits):
        probs = row.softmax(0)
        top = probs.topk(min(3, len(names)))
        best = [(names[i], float(p)) for p, i in zip(top.values, top.indices)]
        if as_json:
            print(json.dumps({"image": path, "logits": row.tolist(), "top": best}))
        else:
            print(f"{path}: " + ", ".join(f"{name} {p:.1%}" for name, p in best))


if __name__ == "__main__":
    main(sys.argv[1:])
'''


def _preprocess(spec: ModelSpec, manifest: Mapping[str, Any]) -> str:
    code = _PREPROCESS
    if spec.in_channels == 1:
        code += _GREY
        if manifest["input"]["ink_on_dark"]:
            code += _INK
    return code + _NORMALIZE


def _docstring(title: str, script: str, needs: str) -> str:
    return (f'"""{title}\n\n'
            f"    python {script}                    # load the weights (strict) and say so\n"
            f"    python {script} photo.jpg [--json]  # the top classes of each image\n\n"
            f"Needs {needs}.\nThe input size, normalization and class names come from manifest.json.\n"
            '"""\n\n')


def _subject(manifest: Mapping[str, Any]) -> str:
    run = manifest["run"]["id"]
    return f"run {run} of ResNet Lab" if run is not None else "a ResNet Lab model"


def model_module(manifest: Mapping[str, Any]) -> str:
    """``resnet_model.py``: the model's definition, self-contained (torch only, no ResNet Lab)."""
    return module_source(f"The network of {_subject(manifest)}, as ResNet Lab builds it (no ResNet Lab needed).")


def lab_snippet(spec: ModelSpec, manifest: Mapping[str, Any]) -> str:
    """``load_model.py``: rebuilds the model from ``resnet_model.py`` (next to it) and loads the weights strictly."""
    load = '''

def load_model() -> torch.nn.Module:
    """The trained model: rebuilt from SPEC, every weight loaded (strict=True: none missing, none left over)."""
    model = ResNet(SPEC)
    model.load_state_dict(load_file(HERE / "model.safetensors"), strict=True)
    return model.eval()
'''
    return (_docstring(f"Rebuild {_subject(manifest)} ({spec.describe()}) and classify images.", LAB_SNIPPET,
                       f"{_needs(LAB_NEEDS)}; not ResNet Lab ({MODEL_MODULE} defines the network)")
            + _HEAD + f"\nfrom resnet_model import ModelSpec, ResNet\n\nSPEC = {spec_literal(spec)}\n"
            + _preprocess(spec, manifest) + load + _MAIN)


def _needs(packages: Sequence[str]) -> str:
    return ", ".join(packages[:-1]) + " and " + packages[-1]


def torchvision_snippet(tv: TorchvisionMatch, manifest: Mapping[str, Any]) -> str:
    """``load_torchvision.py``: the same weights into torchvision's own ResNet, no ResNet Lab needed."""
    spec = ModelSpec.from_dict(manifest["model"]["spec"])
    load = f'''

def load_model() -> torch.nn.Module:
    """torchvision's own ResNet with the trained weights (strict=True: the parameter names are torchvision's)."""
    model = {tv.call}
    model.load_state_dict(load_file(HERE / "model.safetensors"), strict=True)
    return model.eval()
'''
    return (_docstring(f"Load {_subject(manifest)} into torchvision's own ResNet — no ResNet Lab needed.",
                       TORCHVISION_SNIPPET, "torch, torchvision, safetensors, numpy and Pillow")
            + _HEAD + "import torchvision\n" + _preprocess(spec, manifest) + load + _MAIN)


def readme(manifest: Mapping[str, Any], tv: TorchvisionMatch) -> str:
    run = manifest["run"]
    acc = manifest["accuracy"]["best_val_acc"]
    lines = [f"ResNet Lab export: run {run['id']} \"{run['name']}\" — {manifest['model']['describe']}",
             f"{manifest['model']['params']:,} parameters, {len(manifest['class_names'])} classes, "
             f"{manifest['input']['size']}×{manifest['input']['size']} px input"
             + (f", best validation accuracy {acc:.1%}" if acc is not None else ""),
             "",
             f"{WEIGHTS}  the weights (safetensors; parameter names as torchvision's)",
             f"{MANIFEST}      spec, class names, input size and normalization, data and training settings, versions",
             f"{MODEL_MODULE}    the network's definition (torch only): from resnet_model import ModelSpec, ResNet",
             f"{LAB_SNIPPET}      python {LAB_SNIPPET} photo.jpg   (the top classes; --json for the logits)"]
    if tv.ok:
        lines.append(f"{TORCHVISION_SNIPPET} python {TORCHVISION_SNIPPET} photo.jpg   ({tv.call}; no ResNet Lab)")
    lines += ["", "To run it, ResNet Lab is not needed: in this folder,",
              f"    pip install {' '.join(LAB_NEEDS + (('torchvision',) if tv.ok else ()))}",
              f"    python {LAB_SNIPPET} photo.jpg"]
    if not tv.ok:
        lines += ["", "No torchvision version: " + "; ".join(tv.reasons) + "."]
    return "\n".join(lines) + "\n"


# --- TensorBoard -------------------------------------------------------------------------------------------

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
        best = _number(run.best.get("val/acc"))
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

"""Command line: ``python -m resnet_lab ...``. Same engine as the app, JSON output for scripts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from .models import PRESET_GROUPS, PRESETS, plain_name, resolve_spec
from .models.summary import format_bytes, format_count, summarize
from .spec import ModelSpec


def _cmd_presets(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps({name: spec.to_dict() for name, spec in PRESETS.items()}, indent=2))
        return 0
    for group, names in PRESET_GROUPS.items():
        print(f"{group}:")
        for name in names:
            spec = PRESETS[name]
            twin = plain_name(name) if plain_name(name) in PRESETS else f"{name} with skip=False"
            print(f"  {name:<18} {spec.describe()}   plain twin: {twin}")
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    if args.spec:
        spec = ModelSpec.from_json(Path(args.spec).read_bytes())
    elif args.name:
        spec = resolve_spec(args.name)
    else:
        raise ValueError("give a preset NAME or --spec FILE")
    if args.plain:
        spec = spec.replace(skip=False)
    s = summarize(spec, input_size=args.input_size, batch_size=args.batch_size)
    if args.json:
        d = s.to_dict()
        if not args.layers:
            d.pop("layers")
        print(json.dumps(d, indent=2))
        return 0
    print(f"{spec.describe()}  input {spec.in_channels}×{s.input_size}×{s.input_size}")
    print(f"  parameters      {s.params:,} ({format_count(s.params)})")
    print(f"  multiply-adds   {s.macs:,} ({format_count(s.macs)}), FLOPs {format_count(s.flops)}")
    print(f"  depth           {s.depth} weighted layers")
    print(f"  activations     {format_bytes(s.activation_bytes)} for a batch of {s.batch_size} (float32)")
    print(f"  {'stage':<8}{'blocks':>7}  {'output':<14}{'params':>12}{'MACs':>10}")
    for r in s.stages:
        shape = "×".join(map(str, r.output_shape))
        print(f"  {r.name:<8}{r.blocks:>7}  {shape:<14}{r.params:>12,}{format_count(r.macs):>10}")
    if args.layers:
        for r in s.layers:
            print(f"    {r.name:<28}{r.type:<18}{'×'.join(map(str, r.output_shape)):<16}{r.params:>10,}")
    return 0


def _train_parts(args: argparse.Namespace):
    from .data.registry import DataConfig
    from .train.config import TrainConfig

    spec = ModelSpec.from_json(Path(args.spec).read_bytes()) if args.spec else resolve_spec(args.model)
    data = DataConfig(name=args.data, image_size=args.image_size or (32 if args.data == "shapes"
                                                                     else _native_size(args.data)),
                      train_subset=args.subset, augment=not args.no_augment, seed=args.seed)
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
                        schedule=args.schedule, weight_decay=args.weight_decay, seed=args.seed, device=args.device,
                        label_smoothing=args.label_smoothing, warmup_epochs=args.warmup_epochs)
    return spec, data, train


def _native_size(name: str) -> int:
    from .data.registry import dataset_info

    return dataset_info(name).native_size


def _run_row(r) -> dict:
    return {"id": r.id, "name": r.name, "status": r.status, "twin_of": r.twin_of, "device": r.device,
            "step": r.step, "total_steps": r.total_steps, "best_val_acc": r.best.get("val/acc"),
            "last": r.last, "error": r.error, "checkpoint": r.ckpt_best, "duration_s": r.duration_s}


def _cmd_train(args: argparse.Namespace) -> int:
    from .store import Store
    from .train import launcher

    spec, data, train = _train_parts(args)
    store = Store()
    ids = launcher.submit(spec, data, train, twin=args.plain_twin, name=args.name, store=store)
    return _wait(ids, store, args)


def _cmd_finetune(args: argparse.Namespace) -> int:
    from .data.registry import DataConfig
    from .store import Store
    from .train import launcher
    from .train.config import TrainConfig
    from .train.finetune import FinetuneConfig

    data = DataConfig(name=args.data, image_size=args.image_size, train_subset=args.subset,
                      augment=not args.no_augment, seed=args.seed)
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
                        schedule=args.schedule, weight_decay=args.weight_decay, seed=args.seed, device=args.device)
    store = Store()
    ids = []
    for strategy in args.strategy.split(","):
        ft = FinetuneConfig(source=args.source, strategy=strategy.strip(), backbone_lr_mult=args.backbone_lr_mult)
        ids += launcher.submit_finetune(ft, data, train, store=store, allow_download=args.download)
    return _wait(ids, store, args)


def _wait(ids: list[int], store, args: argparse.Namespace) -> int:
    """Follow runs to their end (Ctrl-C stops them gracefully) and report; or return at once with --detach."""
    import time

    from .train import launcher

    if args.detach:
        print(json.dumps({"runs": ids}) if args.json else f"queued run(s) {', '.join(map(str, ids))}")
        return 0
    last_print = 0.0
    try:
        while any(store.get(i).active for i in ids):
            launcher.pump(store)
            if not args.json and time.monotonic() - last_print > 5:
                last_print = time.monotonic()
                for i in ids:
                    r = store.get(i)
                    loss = store.metrics(i, ["train/loss"]).get("train/loss", [])
                    print(f"run {i} {r.status:<8} step {r.step}/{r.total_steps or '?'}"
                          + (f"  loss {loss[-1][2]:.4f}" if loss else ""), flush=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        for i in ids:
            launcher.stop(i, store)
        print("stopping (finishing the step and writing a checkpoint)…", file=sys.stderr)
        while any(store.get(i).active for i in ids):
            time.sleep(0.5)
    runs = [store.get(i) for i in ids]
    if args.json:
        print(json.dumps({"runs": [_run_row(r) for r in runs]}, indent=2))
    else:
        for r in runs:
            acc = r.best.get("val/acc")
            print(f"run {r.id} {r.name}: {r.status}" + (f", best val acc {acc:.3f}" if acc is not None else "")
                  + (f" — {r.error}" if r.error else ""))
    return 0 if all(r.status == "done" for r in runs) else 1


def _cmd_runs(args: argparse.Namespace) -> int:
    from .store import Store
    from .train import launcher

    store = Store()
    launcher.pump(store)
    runs = store.runs()
    if args.json:
        print(json.dumps([_run_row(r) for r in runs], indent=2))
        return 0
    for r in runs:
        acc = r.best.get("val/acc")
        twin = f" (twin of {r.twin_of})" if r.twin_of else ""
        print(f"{r.id:>5}  {r.status:<11} {r.name}{twin}  step {r.step}/{r.total_steps or '?'}"
              + (f"  best val acc {acc:.3f}" if acc is not None else ""))
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    from .store import Store
    from .train import launcher

    result = launcher.stop(args.run_id, Store())
    print(json.dumps({"run": args.run_id, "status": result}) if args.json else f"run {args.run_id}: {result}")
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    from .store import Store
    from .train import launcher

    launcher.resume(args.run_id, Store())
    print(f"run {args.run_id}: queued to resume")
    return 0


def _partner(store, run):
    """The run's plain twin (a run with twin_of == run.id), or the run it is the twin of."""
    if run.twin_of is not None:
        return store.get(run.twin_of)
    twins = [r for r in store.job_runs(run.id) if r.twin_of == run.id]
    if not twins:
        raise ValueError(f"run {run.id} has no twin: it was trained alone (train with --plain-twin to get one)")
    return twins[0]


def _run_subjects(run_id: int, twin: bool):
    """The run (and its partner, with ``twin``) from the store, and their inspectable subjects."""
    from .analysis import from_run
    from .store import Store

    store = Store()
    runs = [store.get(run_id)]
    if twin:
        runs.append(_partner(store, runs[0]))
    store.close()
    return runs, [from_run(r) for r in runs]


def _class_index(text: str, class_names: Sequence[str]) -> int:
    """--target: a class index (an integer) or a class name (exact, else case-insensitive)."""
    names = list(class_names)
    listing = ", ".join(f"{i} {n}" for i, n in enumerate(names))
    try:
        i = int(text)
    except ValueError:
        if text in names:
            return names.index(text)
        folded = [n.casefold() for n in names]
        if text.casefold() in folded:
            return folded.index(text.casefold())
        raise ValueError(f"unknown target class {text!r}; one of: {listing}") from None
    if not 0 <= i < len(names):
        raise ValueError(f"target class {i} is out of range: the model has {len(names)} classes ({listing})")
    return i


def _write_png_atomic(image, out: Path) -> None:
    """Save a PIL image as PNG via a temp file in the same folder and os.replace (no half-written file)."""
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            image.save(f, format="PNG")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cmd_gradcam(args: argparse.Namespace) -> int:
    from PIL import Image

    from .analysis import METHODS, attribute, cam_layers, predict
    from .analysis.attributions import LAYER_METHODS
    from .data.images import ImageRejected
    from .viz.inspect import overlay

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out must name a .png file, got {args.out!r}")
    if not out.parent.is_dir():
        raise ValueError(f"the folder {str(out.parent)!r} does not exist; create it first")
    if out.is_dir():
        raise ValueError(f"--out {args.out!r} is a folder; give a file name ending in .png")
    if not 0.0 <= args.alpha <= 1.0:
        raise ValueError(f"--alpha must be in [0, 1], got {args.alpha}")
    runs, subjects = _run_subjects(args.run, args.twin)
    main = subjects[0]
    layers = cam_layers(main.model)
    layer = args.layer or layers[0]
    for s in subjects:
        valid = cam_layers(s.model)
        if layer not in valid:
            raise ValueError(f"unknown layer {layer!r} for run {s.run_id}; valid layers: {', '.join(valid)}")
    if args.twin and subjects[1].class_names != main.class_names:
        raise ValueError(f"runs {runs[0].id} and {runs[1].id} have different classes; cannot compare them")
    images = []
    for s in subjects:
        try:
            images.append(s.load_image(Path(args.image)))
        except ImageRejected as e:
            raise ValueError(f"image {args.image!r} refused: {e}") from None
    target = None if args.target is None else _class_index(args.target, main.class_names)
    rows, tiles = [], []
    for s, image in zip(subjects, images):
        x = s.normalize(image[None])
        probs, classes = predict(s.model, x, k=1)
        pred, prob = int(classes[0, 0]), float(probs[0, 0])
        if target is None:
            target = pred  # the main model's prediction; the twin is asked about the same class
        heat = attribute(s.model, x, target, args.method, layer)[0].cpu()
        tiles.append(overlay(image, heat, args.alpha, size=256))
        rows.append({"run": s.run_id, "label": s.label, "layer": layer if args.method in LAYER_METHODS else None,
                     "method": args.method, "method_label": METHODS[args.method],
                     "target": {"index": target, "name": s.class_name(target)},
                     "prediction": {"index": pred, "name": s.class_name(pred), "probability": prob}})
    canvas = Image.new("RGB", (sum(t.width for t in tiles), max(t.height for t in tiles)))
    left = 0
    for t in tiles:
        canvas.paste(t, (left, 0))
        left += t.width
    _write_png_atomic(canvas, out)
    result = {**rows[0], "out": str(out), "size": list(canvas.size)}
    if args.twin:
        result["twin"] = rows[1]
    print(json.dumps(result, indent=2))
    return 0


def _cmd_localize(args: argparse.Namespace) -> int:
    from .analysis import METHODS, cam_layers, localization
    from .analysis.attributions import LAYER_METHODS
    from .data.registry import load_dataset

    runs, subjects = _run_subjects(args.run, args.twin)
    main = subjects[0]
    if main.data is None:
        raise ValueError(f"run {main.run_id}'s checkpoint does not say which data it was trained on")
    data = load_dataset(main.data)
    if data.mask_val is None:
        raise ValueError(f"{main.data.name} has no object masks; localization needs a dataset with masks (shapes)")
    n = min(args.n, len(data.y_val))
    if n < 1:
        raise ValueError("--n must be at least 1")
    layer = args.layer or cam_layers(main.model)[0]
    rows = []
    for s in subjects:
        if layer not in cam_layers(s.model):
            raise ValueError(f"unknown layer {layer!r} for run {s.run_id}; valid layers: {', '.join(cam_layers(s.model))}")
        loc = localization(s.model, s.normalize(data.x_val[:n]), data.mask_val[:n], target=data.y_val[:n],
                           layer=layer, method=args.method)
        rows.append({"run": s.run_id, "label": s.label, **loc.as_dict()})
    result = {"layer": layer, "method": args.method, "target": "true class", "n": n, "models": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    where = f" at {layer}" if args.method in LAYER_METHODS else ""
    print(f"{METHODS[args.method]}{where}, true class, {n} validation images of {main.data.name}")
    print(f"{'model':40s} {'energy in mask':>15s} {'pointing hits':>14s}")
    for r in rows:
        print(f"{r['label'][:40]:40s} {r['energy']:15.1%} {r['pointing']:14.1%}")
    print(f"{'a uniform map':40s} {rows[0]['baseline']:15.1%}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .analysis import METHODS

    p = argparse.ArgumentParser(prog="python -m resnet_lab", description="ResNet Lab from the command line.")
    sub = p.add_subparsers(dest="command", required=True)

    pr = sub.add_parser("presets", help="list the model presets")
    pr.add_argument("--json", action="store_true", help="print name -> spec as JSON")
    pr.set_defaults(func=_cmd_presets)

    sm = sub.add_parser("summary", help="parameters, FLOPs and per-stage table of a model")
    sm.add_argument("name", nargs="?", help="preset name, e.g. resnet56")
    sm.add_argument("--spec", metavar="FILE", help="a spec JSON file instead of a preset")
    sm.add_argument("--plain", action="store_true", help="summarise the plain twin (skip=False)")
    sm.add_argument("--input-size", type=int, default=None, help="image side in pixels (default: 224 or 32)")
    sm.add_argument("--batch-size", type=int, default=1, help="batch size for the activation-memory estimate")
    sm.add_argument("--layers", action="store_true", help="include the per-layer table")
    sm.add_argument("--json", action="store_true", help="JSON output")
    sm.set_defaults(func=_cmd_summary)

    tr = sub.add_parser("train", help="train a model (and optionally its plain twin) in a worker process")
    tr.add_argument("--model", default="resnet20", help="preset name (default resnet20)")
    tr.add_argument("--spec", metavar="FILE", help="a spec JSON file instead of a preset")
    tr.add_argument("--plain-twin", action="store_true", help="train the plain twin on the very same batches")
    tr.add_argument("--name", help="a name for the run")
    tr.add_argument("--data", default="shapes", help="dataset: shapes, digits, cifar10, mnist, fashion_mnist")
    tr.add_argument("--image-size", type=int, help="image side in pixels (default: the model's or the data's)")
    tr.add_argument("--subset", type=int, help="at most this many training images")
    tr.add_argument("--no-augment", action="store_true", help="no pad-crop/flip augmentation")
    tr.add_argument("--epochs", type=int, default=5)
    tr.add_argument("--batch-size", type=int, default=128)
    tr.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"])
    tr.add_argument("--lr", type=float, default=0.1)
    tr.add_argument("--schedule", default="onecycle", choices=["onecycle", "cosine", "step", "constant"])
    tr.add_argument("--warmup-epochs", type=float, default=0.0)
    tr.add_argument("--weight-decay", type=float, default=5e-4)
    tr.add_argument("--label-smoothing", type=float, default=0.0)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    tr.add_argument("--detach", action="store_true", help="queue and return at once")
    tr.add_argument("--json", action="store_true", help="JSON output")
    tr.set_defaults(func=_cmd_train)

    ft = sub.add_parser("finetune", help="fine-tune from ImageNet weights, a lab run, or scratch")
    ft.add_argument("--from", dest="source", required=True,
                    help="imagenet:resnet18|resnet34|resnet50, run:ID, or scratch:PRESET")
    ft.add_argument("--strategy", default="full",
                    help="linear, last:N or full; several separated by commas to compare (e.g. linear,full)")
    ft.add_argument("--backbone-lr-mult", type=float, default=0.1, help="backbone lr = this × lr (last:N, full)")
    ft.add_argument("--data", default="digits", help="dataset name")
    ft.add_argument("--image-size", type=int, default=32)
    ft.add_argument("--subset", type=int)
    ft.add_argument("--no-augment", action="store_true")
    ft.add_argument("--epochs", type=int, default=3)
    ft.add_argument("--batch-size", type=int, default=64)
    ft.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"])
    ft.add_argument("--lr", type=float, default=0.05)
    ft.add_argument("--schedule", default="cosine", choices=["onecycle", "cosine", "step", "constant"])
    ft.add_argument("--weight-decay", type=float, default=5e-4)
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ft.add_argument("--download", action="store_true", help="let torchvision download missing ImageNet weights")
    ft.add_argument("--detach", action="store_true")
    ft.add_argument("--json", action="store_true")
    ft.set_defaults(func=_cmd_finetune)

    rs = sub.add_parser("runs", help="list runs")
    rs.add_argument("--json", action="store_true")
    rs.set_defaults(func=_cmd_runs)

    sp = sub.add_parser("stop", help="stop a run (graceful: finishes the step and checkpoints)")
    sp.add_argument("run_id", type=int)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=_cmd_stop)

    rm = sub.add_parser("resume", help="resume a stopped or interrupted run from its last checkpoint")
    rm.add_argument("run_id", type=int)
    rm.set_defaults(func=_cmd_resume)

    gc = sub.add_parser("gradcam", help="Grad-CAM (or another attribution) of a run on one image, as a PNG overlay")
    gc.add_argument("--run", type=int, required=True, metavar="ID", help="a finished run's id")
    gc.add_argument("--image", required=True, metavar="FILE", help="JPEG, PNG, GIF, BMP, WEBP or TIFF")
    gc.add_argument("--layer", help="stage or block, e.g. layer3 or layer3.1 (default: the deepest stage)")
    gc.add_argument("--target", metavar="C",
                    help="class index (an integer) or class name (default: the predicted class)")
    gc.add_argument("--method", default="gradcam", choices=list(METHODS),
                    help="attribution method (default gradcam)")
    gc.add_argument("--alpha", type=float, default=0.5, help="heat map opacity in [0, 1] (default 0.5)")
    gc.add_argument("--twin", action="store_true",
                    help="put the run's twin (plain <-> ResNet) beside it, explaining the same class")
    gc.add_argument("--out", required=True, metavar="FILE.png", help="where to write the PNG (folder must exist)")
    gc.set_defaults(func=_cmd_gradcam)

    lo = sub.add_parser("localize", help="how well Grad-CAM (or another method) finds the object, on shapes' masks")
    lo.add_argument("--run", type=int, required=True, metavar="ID", help="a finished run trained on shapes")
    lo.add_argument("--twin", action="store_true", help="score the run's twin too")
    lo.add_argument("--n", type=int, default=512, help="validation images scored (default 512)")
    lo.add_argument("--layer", help="stage or block (default: the deepest stage)")
    lo.add_argument("--method", default="gradcam", choices=list(METHODS), help="attribution method")
    lo.add_argument("--json", action="store_true", help="JSON output")
    lo.set_defaults(func=_cmd_localize)

    import importlib

    from .commands import EXPERIMENT_COMMANDS

    for name in EXPERIMENT_COMMANDS:  # gradflow, degradation, lesion, landscape: one module each
        importlib.import_module(f".commands.{name}", __package__).register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError, KeyError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2

"""``python -m resnet_lab gradflow``: per-layer gradient norms (and activation stds by depth) of a model at
initialization, or of a run at its checkpoint, on one fixed class-balanced training batch.

    python -m resnet_lab gradflow --model plain56 --json
    python -m resnet_lab gradflow --depth 110 --twin
    python -m resnet_lab gradflow --run 12 --twin --json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from .common import add_run, add_twin


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``gradflow`` subcommand."""
    p = sub.add_parser("gradflow", help="per-layer gradient norms at initialization or at a run's checkpoint",
                       description="Per-layer gradient norms ||dL/dW|| of every conv/linear weight (depth order) and "
                                   "the activation std of the stem and every block, for one fixed class-balanced "
                                   "batch of training images, in train mode (as a first training step).")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", metavar="NAME", help="a preset at initialization, e.g. resnet56 or plain56")
    what.add_argument("--spec", metavar="FILE", help="a spec JSON file, at initialization")
    what.add_argument("--depth", type=int, metavar="N", help="He et al.'s CIFAR ResNet of depth N = 6n+2 "
                                                           "(8, 14, 20, 32, 44, 56, 110, ...), at initialization")
    add_run(p, help="a run's checkpoint, on its own training images", required=False, container=what)
    add_twin(p, help="add the twin: the plain net of a ResNet (or the ResNet of a plain net); with --run, the run "
                     "trained beside it")
    p.add_argument("--data", default=None, help="images for a model at initialization: shapes (default) or digits; "
                                                "a run always uses its own training data")
    p.add_argument("--batch", type=int, default=64, help="images in the batch (default 64)")
    p.add_argument("--seed", type=int, default=0, help="initialization seed, as the trainer's (default 0)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to compute")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_gradflow)


def _init_specs(args: argparse.Namespace):
    from ..analysis.gradflow import cifar_spec
    from ..data.registry import dataset_info
    from ..models import resolve_spec
    from ..spec import ModelSpec

    info = dataset_info(args.data or "shapes")
    if args.model is not None:
        spec = resolve_spec(args.model)
    elif args.spec is not None:
        spec = ModelSpec.from_json(Path(args.spec).read_bytes())
    else:
        spec = cifar_spec(args.depth)
    spec = info.fit(spec)
    return [spec, spec.twin()] if args.twin else [spec]


def cmd_gradflow(args: argparse.Namespace) -> int:
    from ..analysis.gradflow import flow_batch, flow_data, gradient_flow, init_flow
    from ..models.summary import min_input_size
    from ..data.registry import load_dataset
    from ..device import resolve_device

    if isinstance(args.seed, int) and args.seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.batch < 2:
        raise ValueError(f"--batch must be at least 2 (BatchNorm in train mode cannot normalize one image), "
                         f"got {args.batch}")
    device = resolve_device(args.device)
    models: list[dict[str, Any]] = []
    if args.run is not None:
        from .common import run_subjects

        if args.data is not None:
            raise ValueError("--data does not apply to --run: a run is measured on its own training images")
        runs, subjects = run_subjects(args.run, args.twin)
        main = subjects[0]
        if main.data is None:
            raise ValueError(f"run {args.run}'s checkpoint does not say which data it was trained on")
        ds = load_dataset(main.data)
        x, y = flow_batch(ds, min(args.batch, len(ds.y_train)), seed=0, mean=main.mean, std=main.std)
        from ..analysis.learned import inconclusive
        from ..experiments.learned import check_runs
        from ..store import Store

        store = Store()
        try:
            checks = check_runs(store, runs)  # conclusions about a trained net only once it has learned
        finally:
            store.close()
        for r, s, c in zip(runs, subjects, checks):
            flow = gradient_flow(s.model.to(device), x.to(device), y.to(device))
            models.append({"label": s.label, "run": r.id, "spec": s.spec.to_dict(), **flow.to_dict(),
                           "learned": c.to_dict()})
        why = inconclusive(checks)
        result = {"models": models, "data": main.data.to_dict(), "batch": int(x.shape[0]), "seed": None,
                  "checkpoint": True, "inconclusive": why is not None, "inconclusive_why": why}
    else:
        specs = _init_specs(args)
        data = flow_data(args.data or "shapes", max(specs, key=min_input_size))
        ds = load_dataset(data)
        x, y = flow_batch(ds, args.batch, seed=0)
        x, y = x.to(device), y.to(device)
        for spec in specs:
            flow = init_flow(spec, x, y, args.seed)
            models.append({"label": spec.describe(), "spec": spec.to_dict(), **flow.to_dict()})
        result = {"models": models, "data": data.to_dict(), "batch": int(x.shape[0]), "seed": args.seed,
                  "checkpoint": False}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_table(result)
    return 0


def _num(v: float | None, fmt: str = ".3e") -> str:
    return "n/a" if v is None or not math.isfinite(v) else format(v, fmt)


def _print_table(result: dict[str, Any]) -> None:
    where = "at the checkpoint" if result["checkpoint"] else f"at initialization (seed {result['seed']})"
    print(f"Gradient flow {where}, one batch of {result['batch']} {result['data']['name']} training images, "
          "train mode")
    if result.get("inconclusive_why"):
        print(f"  {result['inconclusive_why']} (the gradients below are those of nets that have not learned)")
    models = result["models"]
    for m in models:
        print(f"  {m['label']}: loss {_num(m['loss'], '.4f')}, first/last conv gradient "
              f"{_num(m['first_last_ratio'], '.3g')}x, conv spread {_num(m['conv_spread'], '.3g')}x "
              f"-> {m['verdict']['word']}")
        print(f"    {m['verdict']['sentence']}")
    names = [[layer["name"] for layer in m["layers"]] for m in models]
    if all(n == names[0] for n in names):  # same layers (option A twins): one table, a column per model
        print(f"\n  {'layer':<28}{'kind':<8}" + "".join(f"{m['label'].split(' (')[0][:15]:>16}" for m in models))
        for j, name in enumerate(names[0]):
            print(f"  {name:<28}{models[0]['layers'][j]['kind']:<8}"
                  + "".join(f"{_num(m['layers'][j]['grad_norm']):>16}" for m in models))
    else:
        for i, m in enumerate(models):
            print(f"\n  {m['label']}\n  {'layer':<28}{'kind':<8}{'grad norm':>16}")
            for layer in m["layers"]:
                print(f"  {layer['name']:<28}{layer['kind']:<8}{_num(layer['grad_norm']):>16}")
    for m in models:
        print(f"\n  activation std by depth, {m['label']}")
        print("  " + "  ".join(f"{a['name']} {_num(a['std'], '.3g')}" for a in m["activation_std"]))

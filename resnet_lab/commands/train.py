"""`train` and `finetune`: queue a training or fine-tuning job, follow it to its end, report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..models import resolve_spec
from ..spec import ModelSpec
from .common import add_twin


def register(sub: argparse._SubParsersAction) -> None:
    tr = sub.add_parser("train", help="train a model (and optionally its plain twin) in a worker process")
    tr.add_argument("--model", default="resnet20", help="preset name (default resnet20)")
    tr.add_argument("--spec", metavar="FILE", help="a spec JSON file instead of a preset")
    add_twin(tr, help="train the plain twin on the very same batches", old=["--plain-twin"])
    tr.add_argument("--name", help="a name for the run")
    tr.add_argument("--data", default="shapes", help="dataset: shapes, digits, cifar10, mnist, fashion_mnist")
    tr.add_argument("--image-size", type=int, help="image side in pixels (default: the recipe's)")
    tr.add_argument("--subset", type=int, help="at most this many training images, 0 for all (default: the recipe's)")
    tr.add_argument("--no-augment", action="store_true", help="no pad-crop/flip augmentation")
    tr.add_argument("--epochs", type=int, help="default: the recipe's")
    tr.add_argument("--batch-size", type=int, help="default: the recipe's")
    tr.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"])
    tr.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
    tr.add_argument("--schedule", choices=["onecycle", "cosine", "step", "constant"], help="default: the recipe's")
    tr.add_argument("--warmup-epochs", type=float, default=0.0)
    tr.add_argument("--weight-decay", type=float, help="default: the recipe's")
    tr.add_argument("--label-smoothing", type=float, help="default: the recipe's")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--deterministic", action="store_true",
                    help="deterministic algorithms (on a GPU: the same numbers every time, a little slower; on the "
                         "CPU the numbers are the same without it)")
    tr.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    tr.add_argument("--keep-weights-every", type=int, default=0, metavar="K",
                    help="keep the weights at step 0, every K steps and at the end, for the landscape's training path "
                         "and interpolation (default 0: off)")
    tr.add_argument("--keep-weights-budget-mb", type=float, default=200.0, metavar="MB",
                    help="disk the kept weights of this job may take; thinned to every 2K, 4K, … steps to fit "
                         "(default 200)")
    tr.add_argument("--gpus", type=int, default=1, metavar="N",
                    help="devices for this one run (DistributedDataParallel through torchrun; default 1)")
    tr.add_argument("--detach", action="store_true", help="queue and return at once")
    tr.add_argument("--json", action="store_true", help="JSON output")
    tr.set_defaults(func=cmd_train)

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
    ft.add_argument("--download", action="store_true", help="fetch missing ImageNet weights first (a verified "
                                                             "download job, as `weights get`), then fine-tune")
    ft.add_argument("--detach", action="store_true")
    ft.add_argument("--json", action="store_true")
    ft.set_defaults(func=cmd_finetune)


def _train_parts(args: argparse.Namespace):
    """The spec, data and training settings: the recipe for this dataset and model family, with every
    setting given on the command line in its place."""
    from ..data.registry import DataConfig
    from ..train.config import TrainConfig
    from ..train.recipes import recipe_for

    spec = ModelSpec.from_json(Path(args.spec).read_bytes()) if args.spec else resolve_spec(args.model)
    recipe = recipe_for(args.data, spec)

    def given(value, default):
        return default if value is None else value

    subset = recipe.train_subset if args.subset is None else (args.subset or None)
    data = DataConfig(name=args.data, image_size=given(args.image_size, recipe.image_size), train_subset=subset,
                      augment=recipe.augment and not args.no_augment, seed=args.seed)
    train = TrainConfig(epochs=given(args.epochs, recipe.epochs), batch_size=given(args.batch_size, recipe.batch_size),
                        optimizer=args.optimizer, lr=given(args.lr, recipe.lr),
                        schedule=given(args.schedule, recipe.schedule),
                        weight_decay=given(args.weight_decay, recipe.weight_decay), seed=args.seed, device=args.device,
                        deterministic=args.deterministic,
                        label_smoothing=given(args.label_smoothing, recipe.label_smoothing),
                        warmup_epochs=args.warmup_epochs, keep_weights_every=args.keep_weights_every,
                        keep_weights_budget_mb=args.keep_weights_budget_mb)
    return spec, data, train, recipe


def cmd_train(args: argparse.Namespace) -> int:
    from ..store import Store
    from ..train import launcher

    spec, data, train, recipe = _train_parts(args)
    print(f"recipe: {recipe.why}. Settings: {recipe.describe()}"
          + ("" if _is_recipe(data, train, recipe) else " — changed on the command line to "
             f"{data.image_size} px, {data.train_subset or 'all'} images, {train.epochs} epochs at batch "
             f"{train.batch_size}, lr {train.lr:g} {train.schedule}") + ".",
          file=sys.stderr if args.json else sys.stdout, flush=True)
    store = Store()
    ids = launcher.submit(spec, data, train, twin=args.twin, name=args.name, store=store, world_size=args.gpus)
    return follow_runs(ids, store, args)


def _is_recipe(data, train, recipe) -> bool:
    return (data.image_size, data.train_subset, train.epochs, train.batch_size, train.lr, train.schedule,
            train.weight_decay, train.label_smoothing) == (recipe.image_size, recipe.train_subset, recipe.epochs,
                                                           recipe.batch_size, recipe.lr, recipe.schedule,
                                                           recipe.weight_decay, recipe.label_smoothing)


def cmd_finetune(args: argparse.Namespace) -> int:
    from ..data.registry import DataConfig
    from ..store import Store
    from ..train import launcher
    from ..train.config import TrainConfig
    from ..train.finetune import FinetuneConfig

    data = DataConfig(name=args.data, image_size=args.image_size, train_subset=args.subset,
                      augment=not args.no_augment, seed=args.seed)
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
                        schedule=args.schedule, weight_decay=args.weight_decay, seed=args.seed, device=args.device)
    store = Store()
    if args.download and args.source.startswith("imagenet:"):
        _fetch_weights(store, args.source.split(":", 1)[1])
    ids = []
    for strategy in args.strategy.split(","):
        ft = FinetuneConfig(source=args.source, strategy=strategy.strip(), backbone_lr_mult=args.backbone_lr_mult)
        ids += launcher.submit_finetune(ft, data, train, store=store)
    return follow_runs(ids, store, args)


def _fetch_weights(store, name: str) -> None:
    """Download ``name``'s ImageNet weights through the lab's one download door (a job), waiting for it; a failed
    download raises ValueError with its reason."""
    from ..downloads import DownloadRefused, submit_download
    from ..identity import MACHINE
    from ..jobs.follow import follow

    try:
        job_id = submit_download(store, name, MACHINE)
    except DownloadRefused as e:
        raise ValueError(str(e)) from None
    if job_id is not None:
        (job,) = follow(store, [job_id])
        if job.status != "done":
            raise ValueError(f"the ImageNet weights of {name} were not downloaded ({job.status}): {job.error or ''}")


def follow_runs(ids: list[int], store, args: argparse.Namespace) -> int:
    """Follow the runs' jobs to their end (Ctrl-C stops them gracefully) and report; or return at once with
    --detach (saying where the job stands in the queue)."""
    from ..jobs.eta import forecast
    from ..jobs.follow import follow
    from .common import run_row

    jobs = list(dict.fromkeys(store.runs.get(i).job_id for i in ids))
    if args.detach:
        where = forecast(store)
        if args.json:
            print(json.dumps({"runs": ids, "jobs": jobs,
                              "queue": [where[j].to_dict() for j in jobs if j in where]}))
        else:
            print(f"queued run(s) {', '.join(map(str, ids))}: "
                  + "; ".join(where[j].describe() for j in jobs if j in where))
        return 0

    def report(_jobs) -> None:
        if args.json:
            return
        for i in ids:
            r = store.runs.get(i)
            loss = store.runs.metrics(i, ["train/loss"]).get("train/loss", [])
            print(f"run {i} {r.status:<8} step {r.step}/{r.total_steps or '?'}"
                  + (f"  loss {loss[-1][2]:.4f}" if loss else ""), flush=True)

    follow(store, jobs, report, stopping_text="stopping (finishing the step and writing a checkpoint)…")
    runs = [store.runs.get(i) for i in ids]
    if args.json:
        print(json.dumps({"runs": [run_row(r) for r in runs]}, indent=2))
    else:
        for r in runs:
            acc = r.best.get("val/acc")
            print(f"run {r.id} {r.name}: {r.status}" + (f", best val acc {acc:.3f}" if acc is not None else "")
                  + (f" — {r.error}" if r.error else ""))
    return 0 if all(r.status == "done" for r in runs) else 1

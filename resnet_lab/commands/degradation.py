"""`python -m resnet_lab degradation`: run the degradation experiment (He et al. 2015, Fig. 1) and report it.

Without ``--experiment`` it queues the four runs (two twin jobs), follows them to the end — Ctrl-C stops
them gracefully — and prints the report: every run's final training loss/error and validation error,
and the verdict. ``--detach`` queues and returns at once. ``--experiment ID`` only reports.
"""

from __future__ import annotations

import argparse
import json

FOLLOW_PRINT_S = 5.0  # seconds between progress lines while following (human output)
POLL_S = 0.5  # seconds between store polls while following


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``degradation`` subcommand."""
    p = sub.add_parser("degradation", help="deeper plain nets train worse, deeper ResNets do not: run it and see",
                       description="Train plain-SHALLOW, plain-DEEP, resnet-SHALLOW and resnet-DEEP (CIFAR nets of "
                                   "depth 6n+2) on the same data, seed and budget, then compare their final "
                                   "training errors. With --experiment ID, report an existing experiment.")
    p.add_argument("--experiment", type=int, metavar="ID", help="report this experiment; train nothing")
    p.add_argument("--shallow", type=int, default=20, help="depth of the shallower pair, 6n+2 (default 20)")
    p.add_argument("--deep", type=int, default=56, help="depth of the deeper pair, 6n+2 (default 56)")
    p.add_argument("--width", type=int, default=16, help="channels of the first stage, 4..64 (default 16)")
    p.add_argument("--data", default="shapes", help="dataset: shapes, digits, cifar10, mnist, fashion_mnist")
    p.add_argument("--subset", type=int, default=3000, help="at most this many training images (0: all; default 3000)")
    p.add_argument("--image-size", type=int, help="image side in px (default: 32 for shapes, else the data's own)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1, help="peak learning rate (one-cycle SGD)")
    p.add_argument("--seed", type=int, default=0, help="data, initialization and batch order of all four runs")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--detach", action="store_true", help="queue the runs and return at once")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_degradation)


def config_from_args(args: argparse.Namespace):
    """The DegradationConfig the arguments describe (ValueError with a clear message when they are bad)."""
    from ..experiments.degradation import DegradationConfig
    from ..data.registry import DataConfig, dataset_info
    from ..train.config import TrainConfig

    if args.subset is not None and args.subset < 0:
        raise ValueError(f"--subset must be 0 (all images) or a positive number, got {args.subset}")
    info = dataset_info(args.data)
    size = args.image_size or (32 if args.data == "shapes" else min(max(info.native_size, info.min_size),
                                                                     info.max_size))
    data = DataConfig(name=args.data, image_size=size, train_subset=args.subset or None, seed=args.seed)
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device,
                        eval_points=0)
    return DegradationConfig(shallow=args.shallow, deep=args.deep, width=args.width, data=data, train=train)


def _print_report(report, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    title = f"experiment {report.experiment_id}: " if report.experiment_id is not None else ""
    print(f"{title}{report.name} (jobs {', '.join(map(str, report.job_ids))})")
    print(f"  {'model':<12}{'run':>6}  {'status':<12}{'train loss':>11}{'train error':>13}{'val error':>11}")

    from ..fmt import format_pct

    def num(v, pct=False):
        return format_pct(v, 2) if pct else ("—" if v is None else f"{v:.4f}")

    for r in report.runs:
        print(f"  {r.label:<12}{r.run_id:>6}  {r.status:<12}{num(r.final_loss):>11}{num(r.final_error, True):>13}"
              f"{num(r.final_val_error, True):>11}")
    print("  (final = mean over the last epoch's training batches; val error after the last epoch)")
    for r in report.runs:
        if report.verdict is not None and not r.learned.learned:  # a deeper net at chance: part of the finding
            print(f"  {r.label} did not learn: {r.learned.numbers()}")
    for p in report.problems:
        print(f"  ! {p}")
    if report.verdict is not None:
        print(report.verdict.sentence)
    elif report.inconclusive is not None:
        print(report.inconclusive)
    elif not report.finished:
        print("The runs are still training: no verdict yet.")
    else:
        print("No verdict: not all four runs finished cleanly.")


def _follow(exp_id: int, store, args: argparse.Namespace):
    """Follow the experiment's jobs to their end (Ctrl-C asks them to stop and waits); returns its report."""
    from ..experiments.degradation import summarize
    from ..jobs.follow import follow

    def report(_jobs) -> None:
        if not args.json:
            print("  ".join(f"{r.label} {r.status} {r.step}/{r.total_steps or '?'}"
                            for r in summarize(store, exp_id).runs), flush=True)

    follow(store, summarize(store, exp_id).job_ids, report, poll_s=POLL_S, report_every_s=FOLLOW_PRINT_S,
           stopping_text="stopping (finishing the step and writing a checkpoint)…")
    return summarize(store, exp_id)


def cmd_degradation(args: argparse.Namespace) -> int:
    from ..experiments.degradation import submit_degradation, summarize
    from ..store import Store

    store = Store()
    try:
        if args.experiment is not None:
            _print_report(summarize(store, args.experiment), args.json)
            return 0
        cfg = config_from_args(args)
        exp_id = submit_degradation(cfg, store=store)
        if args.detach:
            report = summarize(store, exp_id)
            if args.json:
                print(json.dumps({"experiment": exp_id, "jobs": list(report.job_ids),
                                  "runs": [r.run_id for r in report.runs]}))
            else:
                print(f"queued experiment {exp_id}: runs " + ", ".join(f"{r.label} #{r.run_id}" for r in report.runs)
                      + f"; report it with: python -m resnet_lab degradation --experiment {exp_id}")
            return 0
        report = _follow(exp_id, store, args)
        _print_report(report, args.json)
        return 0 if report.complete else 1
    finally:
        store.close()

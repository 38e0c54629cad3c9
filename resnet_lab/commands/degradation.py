"""`python -m resnet_lab degradation`: run the degradation experiment (He et al. 2015, Fig. 1) and report it.

Without ``--experiment`` it queues the four runs (two twin jobs), follows them to the end — Ctrl-C stops
them gracefully — and prints the report: every run's final training loss/error and validation error,
and the verdict. ``--detach`` queues and returns at once. ``--experiment ID`` only reports.

``--paper`` reproduces He et al. 2015's CIFAR-10 Table 6 / Fig. 6 instead
(:mod:`resnet_lab.experiments.paper_cifar`): a ResNet and its plain twin at each of ``--depths`` (20,32,44,56),
``--seeds`` times, with ``--recipe paper`` (the paper's 64k steps) or ``short`` (a lesson's one-cycle run), on all of
CIFAR-10 or ``--subset`` images; the report is the test-error table beside the paper's numbers.
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
    p.add_argument("--data", help="dataset: shapes (the default), digits, cifar10, mnist, fashion_mnist; with "
                                  "--paper cifar10 (the default) or cifar100")
    p.add_argument("--subset", type=int, default=None,
                   help="at most this many training images (0: all; default 3000, with --paper all)")
    p.add_argument("--image-size", type=int, help="image side in px (default: 32 for shapes, else the data's own)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1, help="peak learning rate (one-cycle SGD)")
    p.add_argument("--seed", type=int, default=0, help="data, initialization and batch order of all four runs")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--detach", action="store_true", help="queue the runs and return at once")
    g = p.add_argument_group("the paper's CIFAR-10 experiment (Table 6, Fig. 6)")
    g.add_argument("--paper", action="store_true", help="reproduce He et al. 2015's Table 6 on CIFAR-10: plain and "
                   "ResNet at each of --depths, trained with --recipe (its files must be in the lab's data folder)")
    g.add_argument("--depths", default="20,32,44,56", help="with --paper: 6n+2 depths, comma-separated (110 too)")
    g.add_argument("--seeds", type=int, default=1, help="with --paper: runs per depth (seeds 0..N-1), for the spread")
    g.add_argument("--recipe", default="paper", choices=["paper", "short"],
                   help="with --paper: paper (64k steps, the paper's schedule) or short (a lesson's one-cycle run)")
    g.add_argument("--max-steps", type=int, help="with --paper: a shorter try, this many steps (the lr drops scaled)")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_degradation)


def config_from_args(args: argparse.Namespace):
    """The DegradationConfig the arguments describe (ValueError with a clear message when they are bad)."""
    from ..experiments.degradation import DegradationConfig
    from ..data.registry import DataConfig, dataset_info
    from ..train.config import TrainConfig

    if args.subset is not None and args.subset < 0:
        raise ValueError(f"--subset must be 0 (all images) or a positive number, got {args.subset}")
    name = args.data or "shapes"
    info = dataset_info(name)
    size = args.image_size or (32 if name == "shapes" else min(max(info.native_size, info.min_size), info.max_size))
    subset = 3000 if args.subset is None else args.subset or None
    data = DataConfig(name=name, image_size=size, train_subset=subset, seed=args.seed)
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device,
                        eval_points=0)
    return DegradationConfig(shallow=args.shallow, deep=args.deep, width=args.width, data=data, train=train)


def paper_config_from_args(args: argparse.Namespace):
    """The PaperConfig ``--paper`` and its options describe (ValueError with a clear message when they are bad)."""
    from ..experiments.paper_cifar import PaperConfig

    if args.subset is not None and args.subset < 0:
        raise ValueError(f"--subset must be 0 (all images) or a positive number, got {args.subset}")
    try:
        depths = tuple(int(d) for d in str(args.depths).split(",") if d.strip())
    except ValueError:
        raise ValueError(f"--depths must be 6n+2 depths separated by commas (20,32,44,56), got {args.depths!r}") \
            from None
    return PaperConfig(depths=depths, seeds=args.seeds, recipe=args.recipe, subset=args.subset or None,
                       width=args.width, max_steps=args.max_steps, device=args.device, dataset=args.data or "cifar10")


def _print_paper(report, as_json: bool) -> None:
    from ..experiments.paper_cifar import PAPER_SOURCE
    from ..viz.paper_curves import table_records

    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    title = f"experiment {report.experiment_id}: " if report.experiment_id is not None else ""
    print(f"{title}{report.name}")
    records = table_records(report.rows)
    heads = list(records[0]) if records else ["depth"]
    widths = [max(len(h), *(len(str(r[h])) for r in records)) for h in heads]
    print("  " + "  ".join(h.ljust(w) for h, w in zip(heads, widths)))
    for r in records:
        print("  " + "  ".join(str(r[h]).ljust(w) for h, w in zip(heads, widths)))
    paper = f"the paper's column: {PAPER_SOURCE}" if report.config.dataset == "cifar10" else \
        "the paper has no numbers for it"
    print(f"  ({report.config.dataset} test error as training ended; mean ± sample std over seeds; {paper})")
    for p in report.problems:
        print(f"  ! {p}")
    if report.finding:
        print(report.finding)
    elif not report.finished:
        done = sum(r.status == "done" for r in report.runs)
        print(f"{done} of {len(report.runs)} runs done: the table fills in as they finish.")


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


def _paper(args: argparse.Namespace, store) -> int:
    """``--paper``: queue the Table 6 experiment, follow it (unless ``--detach``) and print its table."""
    from ..experiments.paper_cifar import submit_paper, summarize_paper
    from ..jobs.follow import follow

    exp_id = submit_paper(paper_config_from_args(args), store=store)
    report = summarize_paper(store, exp_id)
    if args.detach:
        if args.json:
            print(json.dumps({"experiment": exp_id, "jobs": report.job_ids, "runs": [r.run_id for r in report.runs]}))
        else:
            print(f"queued experiment {exp_id}: {len(report.runs)} runs in {len(report.job_ids)} jobs; report it "
                  f"with: python -m resnet_lab degradation --experiment {exp_id}")
        return 0

    def progress(_jobs) -> None:
        if not args.json:
            now = summarize_paper(store, exp_id)
            print("  ".join(f"{r.label}/{r.seed} {r.status} {r.step}/{r.total_steps or '?'}" for r in now.runs),
                  flush=True)

    follow(store, report.job_ids, progress, poll_s=POLL_S, report_every_s=FOLLOW_PRINT_S,
           stopping_text="stopping (finishing the step and writing a checkpoint)…")
    report = summarize_paper(store, exp_id)
    _print_paper(report, args.json)
    return 0 if report.complete else 1


def cmd_degradation(args: argparse.Namespace) -> int:
    from ..experiments.degradation import submit_degradation, summarize
    from ..experiments.paper_cifar import KIND as PAPER_KIND, summarize_paper
    from ..store import Store

    store = Store()
    try:
        if args.experiment is not None:
            if store.experiments.get(args.experiment).kind == PAPER_KIND:
                _print_paper(summarize_paper(store, args.experiment), args.json)
            else:
                _print_report(summarize(store, args.experiment), args.json)
            return 0
        if args.paper:
            return _paper(args, store)
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

"""`models compare`: which ResNet for a budget — torchvision's published ImageNet accuracy against cost, the
paper's CIFAR-10 Table 6, and (``--dataset NAME``) this lab's finished runs of that dataset with the Pareto
front on each cost axis and the sentence read off it. Registered by :mod:`.models` (the ``models`` command)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any


def register_models(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """The ``models`` command (alone: ``models compare``) and its ``compare``; returns its subcommands, where
    ``models speed`` joins them (:mod:`.speed`)."""
    md = sub.add_parser("models", help="compare the ResNets: published accuracy against cost, and your runs' "
                                       "Pareto front (`models compare`)")
    md_sub = md.add_subparsers(dest="action")
    cmp = md_sub.add_parser("compare", help="torchvision's ImageNet numbers, the paper's Table 6, and with "
                                            "--dataset your runs' front")
    for p in (md, cmp):
        p.add_argument("--dataset", metavar="NAME", help="also this dataset's finished runs (e.g. cifar10): every "
                                                         "run as a point, the front on each cost axis, its sentence")
        p.add_argument("--json", action="store_true", help="JSON output")
        p.set_defaults(func=cmd_compare)
    return md_sub


def compare_report(dataset: str | None) -> dict[str, Any]:
    """What ``models compare --json`` prints: the published rows and Table 6, each with its source, and the runs'
    side for ``dataset`` (:func:`resnet_lab.experiments.choose.runs_report`)."""
    from ..models.published import TABLE6, TABLE6_SOURCE, TORCHVISION_SOURCE, imagenet_rows

    out: dict[str, Any] = {
        "published": {"source": TORCHVISION_SOURCE, "rows": [asdict(r) for r in imagenet_rows()]},
        "table6": {"source": TABLE6_SOURCE, "rows": [{**asdict(r), "accuracy": r.accuracy} for r in TABLE6]},
    }
    if dataset is not None:
        from ..experiments.choose import run_points, runs_report
        from ..store import Store

        store = Store()
        try:
            out["runs"] = runs_report(run_points(store, dataset), dataset)
        finally:
            store.close()
    return out


def _print_table(report: dict[str, Any]) -> None:
    print(f"Published: {report['published']['source']}")
    print(f"  {'model':<11}{'weights':<9}{'top-1 %':>8}{'top-5 %':>8}{'GFLOPs':>8}{'params':>13}{'file MB':>9}")
    for r in report["published"]["rows"]:
        print(f"  {r['model']:<11}{r['version']:<9}{r['top1']:>8.2f}{r['top5']:>8.2f}{r['gflops']:>8.3f}"
              f"{r['params']:>13,}{r['file_mb']:>9.1f}")
    print(f"\n{report['table6']['source']}")
    print(f"  {'model':<11}{'depth':>6}{'error %':>9}{'params (M)':>12}")
    for r in report["table6"]["rows"]:
        print(f"  {r['model']:<11}{r['depth']:>6}{100 * r['error']:>9.2f}{r['params_m']:>12}")
    runs = report.get("runs")
    if runs is None:
        return
    print(f"\nYour runs on {runs['dataset']}: {len(runs['points'])} finished")
    if not runs["points"]:
        print("  none yet: train one, then compare again")
        return
    front = set(runs["fronts"]["params"]["run_ids"])
    print(f"  {'run':>5}  {'model':<16}{'kind':<8}{'best val %':>11}{'params':>13}{'train s':>9}{'images/s':>10}"
          f"  front")
    for p in runs["points"]:
        train_s = f"{p['train_s']:.0f}" if p["train_s"] is not None else "—"
        ips = f"{p['images_per_s']:.0f}" if p["images_per_s"] is not None else "—"
        print(f"  {p['run_id']:>5}  {p['model'][:15]:<16}{p['kind']:<8}{100 * p['accuracy']:>11.1f}"
              f"{p['params']:>13,}{train_s:>9}{ips:>10}  {'*' if p['run_id'] in front else ''}")
    for axis, f in runs["fronts"].items():
        if f["sentence"]:
            print(f"  {axis}: {f['sentence']}")


def cmd_compare(args: argparse.Namespace) -> int:
    report = compare_report(args.dataset)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)
    return 0

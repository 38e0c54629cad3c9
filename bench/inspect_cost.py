"""What the Inspect views cost, measured against the passes they are made of: CPU, random weights, eval mode.

For each model and batch, five things are timed side by side in one run:

* forward            one forward pass under ``torch.no_grad()`` (what ``feature_maps`` must pay anyway);
* forward+backward   one forward and a full ``backward()`` of the summed target logits on a copy of the
                     model whose parameters require grad (every weight gradient: what a training step pays,
                     minus the optimizer), also in eval mode so only the gradient work differs;
* grad_cam           ``resnet_lab.analysis.grad_cam`` at the deepest stage (one forward with hooks, a
                     backward down to that stage only, the weighted sum and the upsampling);
* feature_maps(all)  ``feature_maps`` of every block output (hooks and a copy of each activation);
* feature_maps(one)  ``feature_maps`` of the last block only.

Fairness on a shared machine: everything runs in the same process on the same inputs; after the warm-up
rounds each round calls every function once, in an order that rotates from round to round, so drift and
cache effects hit all of them alike. Medians of the rounds are compared.

    .venv/bin/python bench/inspect_cost.py [--size18 112] [--rounds 20] [--threads N] [--json] [--strict]

Targets: grad_cam ÷ forward+backward <= 1.5 and feature_maps(all blocks) ÷ forward <= 1.3, checked on the
ratio of the medians. Two more estimates are printed beside it for a noisy machine: "paired", the median
of the per-round ratios (the two calls of a round run moments apart), and "best", the ratio of the fastest
calls (the least disturbed by other load). When the three disagree, the machine was busy.
Exit code 0 unless --strict is given and a target is missed (then 1).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resnet_lab import build_model  # noqa: E402
from resnet_lab.analysis import feature_maps, grad_cam  # noqa: E402

TARGETS = {  # ratio -> the most it may be
    "grad_cam/forward_backward": 1.5,
    "feature_maps_all/forward": 1.3,
}
INFO_RATIOS = (  # printed for context, no target
    ("grad_cam/forward", "grad_cam", "forward"),
    ("feature_maps_one/forward", "feature_maps_one", "forward"),
    ("forward_backward/forward", "forward_backward", "forward"),
)
FUNCTIONS = ("forward", "forward_backward", "grad_cam", "feature_maps_all", "feature_maps_one")


def cases(args: argparse.Namespace) -> list[dict]:
    """(model, input size px, batch) pairs: a CIFAR net and an ImageNet-style net."""
    if args.quick:
        return [dict(model="resnet20", size=16, batch=4), dict(model="resnet18", size=32, batch=2)]
    return [dict(model="resnet20", size=32, batch=32), dict(model="resnet18", size=args.size18, batch=8)]


def make_functions(name: str, size: int, batch: int) -> tuple[dict[str, Callable[[], object]], dict]:
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.randn(batch, model.spec.in_channels, size, size)
    target = torch.randint(0, model.spec.num_classes, (batch,))
    layer = model.stages[-1]
    blocks = [b for b, _ in model.named_blocks()]
    trainee = copy.deepcopy(model).eval()
    for p in trainee.parameters():
        p.requires_grad_(True)

    def forward() -> object:
        with torch.no_grad():
            return model(x)

    def forward_backward() -> object:
        trainee.zero_grad(set_to_none=True)
        logits = trainee(x)
        logits.gather(1, target.view(-1, 1)).sum().backward()
        return logits

    fns = {
        "forward": forward,
        "forward_backward": forward_backward,
        "grad_cam": lambda: grad_cam(model, x, target, layer),
        "feature_maps_all": lambda: feature_maps(model, x, blocks),
        "feature_maps_one": lambda: feature_maps(model, x, blocks[-1]),
    }
    info = dict(model=name, size=size, batch=batch, layer=layer, blocks=len(blocks), one_block=blocks[-1],
                params=sum(p.numel() for p in model.parameters()))
    return fns, info


def measure(fns: dict[str, Callable[[], object]], warmup: int, rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each function: ``warmup`` untimed rounds, then ``rounds`` timed ones, each round
    calling every function once in an order rotated by one place per round."""
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + rounds):
        shift = r % len(names)
        for n in names[shift:] + names[:shift]:
            t0 = time.perf_counter()
            fns[n]()
            dt = time.perf_counter() - t0
            if r >= warmup:
                times[n].append(dt)
    return times


def run_case(case: dict, warmup: int, rounds: int) -> dict:
    fns, info = make_functions(case["model"], case["size"], case["batch"])
    times = measure(fns, warmup, rounds)
    med = {n: statistics.median(times[n]) for n in FUNCTIONS}
    ratios = {}
    rows = [(key, *key.split("/"), limit) for key, limit in TARGETS.items()]
    rows += [(key, num, den, None) for key, num, den in INFO_RATIOS]
    for key, num, den, limit in rows:
        value = med[num] / med[den]
        ratios[key] = dict(
            value=value,  # ratio of the medians: what the target is checked on
            paired=statistics.median(a / b for a, b in zip(times[num], times[den])),  # median of per-round ratios
            best=min(times[num]) / min(times[den]),  # ratio of the fastest calls (least disturbed by other load)
            target=limit, passed=None if limit is None else bool(value <= limit))
    return {**info, "median_ms": {n: 1000.0 * med[n] for n in FUNCTIONS},
            "min_ms": {n: 1000.0 * min(times[n]) for n in FUNCTIONS}, "ratios": ratios}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size18", type=int, default=112, choices=[64, 112], help="resnet18 input side, px (default 112)")
    p.add_argument("--warmup", type=int, default=5, help="untimed rounds first (default 5)")
    p.add_argument("--rounds", type=int, default=20, help="timed rounds (default 20)")
    p.add_argument("--threads", type=int, default=max(1, min(4, os.cpu_count() or 1)),
                   help="torch intra-op threads (default: cores, at most 4)")
    p.add_argument("--quick", action="store_true", help="tiny inputs, 1 warm-up and 3 rounds (for tests)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args()
    if args.warmup < 0 or args.rounds < 1:
        p.error("--warmup must be >= 0 and --rounds >= 1")
    if args.quick:
        args.warmup, args.rounds = 1, 3
    torch.set_num_threads(args.threads)
    results = [run_case(c, args.warmup, args.rounds) for c in cases(args)]
    passed = all(r["ratios"][k]["passed"] for r in results for k in TARGETS)
    report = {"device": f"CPU, {torch.get_num_threads()} threads", "torch": torch.__version__, "quick": args.quick,
              "warmup": args.warmup, "rounds": args.rounds, "targets": TARGETS, "results": results, "passed": passed}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['device']}, torch {torch.__version__}; random weights, eval mode; "
              f"{args.warmup} warm-up + {args.rounds} interleaved rounds, medians")
        for r in results:
            print(f"\n{r['model']} at {r['size']} px, batch {r['batch']} ({r['blocks']} blocks, "
                  f"Grad-CAM at {r['layer']}, one block = {r['one_block']})")
            for n in FUNCTIONS:
                print(f"  {n:<18}{r['median_ms'][n]:9.2f} ms   (min {r['min_ms'][n]:.2f})")
            print(f"  {'ratio':<28}{'medians':>8}{'paired':>8}{'best':>8}")
            for key, v in r["ratios"].items():
                flag = "" if v["target"] is None else f"  target <= {v['target']}  {'PASS' if v['passed'] else 'FAIL'}"
                print(f"  {key:<28}{v['value']:8.3f}{v['paired']:8.3f}{v['best']:8.3f}{flag}")
        print(f"\n{'all targets met' if passed else 'some target missed'}")
    for r in results:
        for v in r["ratios"].values():
            if not math.isfinite(v["value"]):
                print(f"warning: a non-finite ratio in {r['model']}", file=sys.stderr)
    return 1 if args.strict and not passed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Each preset's speed on the device present: training images/s at its recipe's batch, batch-1 latency (median ms)
and batch-64 inference images/s — the measurement of the lab's ``speed`` job
(:mod:`resnet_lab.experiments.speed.measure`: what is timed, and how), as a script that needs torch and this
repository only, so it runs on a bare GPU machine. Nothing is kept in a store: it prints a table, or JSON.

    python bench/speed.py [--device auto|cpu|cuda] [--presets resnet20 plain20 ...] [--quick] [--json]

Default presets: all of them on a GPU, all but resnet1202 on a CPU. ``--quick``: one timed run of each figure (and
by default resnet20 and plain20 only), to check the script runs; its numbers are rough. Exit code 0 whatever the
figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resnet_lab.experiments.speed.measure import (DEFAULT_PLAN, QUICK_PLAN, check_presets, device_kind,  # noqa: E402
                                                  device_name, measure_preset)

QUICK_PRESETS = ("resnet20", "plain20")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--presets", nargs="+", default=None, metavar="NAME")
    p.add_argument("--quick", action="store_true", help="one timed run per figure: a check that it runs")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    kind = device_kind(args.device)
    names = check_presets(args.presets or (list(QUICK_PRESETS) if args.quick else None), kind)
    plan = QUICK_PLAN if args.quick else DEFAULT_PLAN
    t0 = time.perf_counter()
    rows = []
    if not args.json:
        print(f"{device_name(kind)}, torch {torch.__version__}, {torch.get_num_threads()} threads\n"
              f"{'preset':<16}{'train img/s':>12}{'latency ms':>12}{'img/s @64':>11}{'batch':>7}{'px':>5}"
              f"{'took s':>8}", flush=True)
    for name in names:
        t = measure_preset(name, kind, plan)
        rows.append({"preset": name, **t.to_dict()})
        if not args.json:
            print(f"{name:<16}{t.train_images_per_s:>12,.1f}{t.latency_ms:>12,.2f}{t.images_per_s:>11,.1f}"
                  f"{t.batch:>7}{t.image_size:>5}{t.seconds:>8.1f}", flush=True)
    total = time.perf_counter() - t0
    if args.json:
        print(json.dumps({"device": kind, "device_name": device_name(kind), "torch": torch.__version__,
                          "threads": torch.get_num_threads(), "quick": args.quick, "plan": plan.to_dict(),
                          "seconds": total, "results": rows}, indent=2))
    else:
        print(f"all {len(rows)} presets in {total:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""ETA accuracy: what the queue predicts, when a job is submitted, against when it really starts and ends.

A mixed queue of tiny training jobs (resnet20 for one epoch and for several, resnet20 with its plain twin,
resnet32) is submitted at once into a temporary lab home and run by the lab's own workers on the CPU slot
(``--lanes`` jobs at once). Right after the last submit, :func:`resnet_lab.jobs.eta.forecast` is read for every
job, then each job's real start and end (the store's ``started_at`` / ``finished_at``) are compared with it.

Three rounds, the same lab home:

- **warm-up**: the smallest job alone, so the lab has timed one ``train`` job on this device;
- **untimed**: the mix; jobs of the warm-up's key are timed from one sample, the others get a range (the
  fastest and slowest per unit of the train jobs timed so far, each stretched ``UNTIMED_SPREAD``×);
- **timed**: the same mix again; every key is timed now (two sizes of one key: start-up and per-unit apart).

Printed per job: predicted/actual for its start (where it waited at least a second) and end, ranges as
``early–late`` with whether the truth fell inside; per round the median and the largest error as a factor
(max(p/a, a/p)). Timings are printed, never asserted.

    python bench/eta.py [--lanes 1] [--images 512] [--json]
    python bench/eta.py --quick --json     # two tiny jobs a round: checks that it runs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lanes", type=int, default=1, help="jobs at once on the CPU slot (RESNET_LAB_JOBS_PER_CPU)")
    p.add_argument("--images", type=int, default=512, help="training images per epoch (digits)")
    p.add_argument("--quick", action="store_true", help="two tiny jobs a round, 128 images: checks that it runs")
    p.add_argument("--json", action="store_true", help="print one JSON report instead of the table")
    p.add_argument("--timeout-s", type=float, default=600.0, help="give up on a round after this long")
    return p.parse_args()


def mix(quick: bool) -> list[tuple[str, str, int, bool]]:
    """(label, model, epochs, with its plain twin) of the jobs of one round."""
    if quick:
        return [("resnet20 ×1", "resnet20", 1, False), ("resnet20 ×2", "resnet20", 2, False)]
    return [("resnet20 ×1", "resnet20", 1, False), ("resnet20 ×4", "resnet20", 4, False),
            ("resnet20+twin ×2", "resnet20", 2, True), ("resnet32 ×2", "resnet32", 2, False)]


def one_round(name: str, jobs_: list[tuple[str, str, int, bool]], images: int, timeout_s: float) -> dict:
    """Submit ``jobs_`` at once, read the forecast, wait for them all, and compare."""
    from resnet_lab import jobs
    from resnet_lab.data.registry import DataConfig
    from resnet_lab.jobs.eta import forecast
    from resnet_lab.models.presets import PRESETS
    from resnet_lab.store import FINISHED, Store
    from resnet_lab.train import launcher
    from resnet_lab.train.config import TrainConfig

    store = Store()
    data = DataConfig(name="digits", image_size=16, train_subset=images)
    submitted = []
    for label, model, epochs, twin in jobs_:
        train = TrainConfig(epochs=epochs, batch_size=64, device="cpu", eval_points=1)
        run_ids = launcher.submit(PRESETS[model], data, train, twin=twin, name=label, store=store)
        submitted.append((label, store.runs.get(run_ids[0]).job_id))
    t0 = time.time()
    predicted = forecast(store, now=t0)
    deadline = time.monotonic() + timeout_s
    while not all(store.jobs.get(j).status in FINISHED for _, j in submitted):
        if time.monotonic() > deadline:
            raise SystemExit(f"{name}: the jobs did not finish within {timeout_s:.0f} s")
        jobs.pump(store)
        time.sleep(0.25)
    rows = []
    for label, job_id in submitted:
        job, f = store.jobs.get(job_id), predicted.get(job_id)
        actual_start = max(0.0, job.started_at - t0)
        actual_end = job.finished_at - t0
        rows.append({"job": label, "status": job.status, "place": f.describe() if f else "",
                     "start": _compare(f and (0.0 if f.status == "running" else f.start_in_s),
                                       f and f.start_range, actual_start),
                     "end": _compare(f and f.end_in_s, f and f.end_range, actual_end)})
    store.close()
    return {"round": name, "jobs": rows, **_summary(rows)}


def _compare(point: float | None, span: tuple[float, float] | None, actual: float) -> dict:
    """A prediction against the truth: its ratio (central value / actual), and for a range whether it held."""
    out = {"predicted_s": point, "range_s": list(span) if span else None, "actual_s": round(actual, 2),
           "ratio": None, "inside": None}
    if point is not None and actual >= 1.0:
        out["ratio"] = round(point / actual, 3)
    if span is not None:
        out["inside"] = span[0] <= actual <= span[1]
    return out


def _summary(rows: list[dict]) -> dict:
    """Median and largest error as a factor (max(p/a, a/p)), for the starts and the ends that had a prediction."""
    out = {}
    for which in ("start", "end"):
        factors = [max(r[which]["ratio"], 1 / r[which]["ratio"]) for r in rows if r[which]["ratio"]]
        ranges = [r[which]["inside"] for r in rows if r[which]["inside"] is not None]
        out[which] = {"predicted": len(factors), "median_error_x": round(statistics.median(factors), 2) if factors
                      else None, "max_error_x": round(max(factors), 2) if factors else None,
                      "ranges": len(ranges), "ranges_held": sum(ranges)}
    return out


def _fmt(c: dict) -> str:
    if c["predicted_s"] is None:
        return f"{'unknown':>17} {c['actual_s']:7.1f}        —"
    guess = (f"{c['range_s'][0]:.0f}–{c['range_s'][1]:.0f}" + ("✓" if c["inside"] else "✗")) if c["range_s"] \
        else f"{c['predicted_s']:.1f}"
    ratio = f"{c['ratio']:.2f}" if c["ratio"] is not None else "—"
    return f"{guess:>17} {c['actual_s']:7.1f} {ratio:>8}"


def main() -> int:
    args = parse()
    home = tempfile.mkdtemp(prefix="eta_bench_")
    os.environ["RESNET_LAB_HOME"] = home
    os.environ["RESNET_LAB_JOBS_PER_CPU"] = str(args.lanes)
    images = 128 if args.quick else args.images
    rounds = []
    # quick: the untimed round is one job (what the lab has timed once is enough to predict), the timed round two
    plan = (("warm-up", mix(args.quick)[:1]), ("untimed", mix(args.quick)[:1] if args.quick else mix(False)),
            ("timed", mix(args.quick)))
    try:
        for name, jobs_ in plan:
            rounds.append(one_round(name, jobs_, images, args.timeout_s))
            print(f"{name}: done", file=sys.stderr)
    finally:
        shutil.rmtree(home, ignore_errors=True)  # the lab home of its jobs: runs, checkpoints (tens of MB)
    report = {"quick": args.quick, "lanes": args.lanes, "images": images, "cores": os.cpu_count(),
              "rounds": rounds}
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"ETA bench: {args.lanes} lane(s) on the CPU slot, {os.cpu_count()} cores, digits {images} images at 16 px")
    print("predicted (s, a range early–late ✓ held) vs actual (s), ratio = predicted/actual, from the forecast "
          "read right after submitting")
    for r in rounds:
        print(f"\n{r['round']}")
        print(f"  {'job':<18} {'start: predicted':>17} {'actual':>7} {'ratio':>8}   {'end: predicted':>17} "
              f"{'actual':>7} {'ratio':>8}")
        for j in r["jobs"]:
            print(f"  {j['job']:<18} {_fmt(j['start'])}   {_fmt(j['end'])}")
        for which in ("start", "end"):
            s = r[which]
            print(f"  {which}s: {s['predicted']} predicted, median error ×{s['median_error_x']}, largest "
                  f"×{s['max_error_x']}; ranges held {s['ranges_held']} of {s['ranges']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

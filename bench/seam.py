"""The single-machine job path before and after the launcher seam (issue 25), side by side in one run.

Issue 25 put a seam in ``jobs/`` (``jobs/launch.py``: local processes by default, Ray actors when ``RESNET_LAB_RAY``
is set), a host column in the jobs table (schema 6) and host-aware reaping. One person's lab and a class on one
server must not pay for it. This script checks out an older commit (default: the one before the seam) into a temporary
worktree, copies this checkout's ``bench/cluster.py`` into it, and runs that bench's local path (``--local-only``:
the same short jobs of several owners through the queue, two lanes, local worker processes) on both trees in turn,
``--rounds`` times each, alternating (before, now, before, now, ...) so that a busy moment of the machine falls on
both. Printed: per tree the median over rounds of the dispatch rate of the first pump, the median delay from a free
slot to a started job and the makespan; then now/before for each.

    .venv/bin/python bench/seam.py [--before REV] [--rounds 3] [--jobs 40] [--owners 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEAM = "bc18763"  # "Jobs on a Ray cluster: a launcher seam in jobs/ ...": its parent is the path before it
FIGURES = ("dispatch_per_s", "delay_s_median", "makespan_s")


def one(tree: Path, jobs: int, owners: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RESNET_LAB_HOME")}
    done = subprocess.run([sys.executable, str(tree / "bench" / "cluster.py"), "--local-only", "--jobs", str(jobs),
                           "--owners", str(owners)], capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"the bench failed on {tree}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)["local"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", default=f"{SEAM}^", help=f"the older commit (default {SEAM}^, before the seam)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--jobs", type=int, default=40)
    p.add_argument("--owners", type=int, default=8)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.before], capture_output=True,
                         text=True, check=True).stdout.strip()
    before = Path(tempfile.mkdtemp(prefix="seam_before_")) / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before), rev], check=True,
                   capture_output=True)
    try:
        shutil.copy(ROOT / "bench" / "cluster.py", before / "bench" / "cluster.py")
        runs: dict[str, list[dict]] = {"before": [], "now": []}
        for k in range(args.rounds):
            for name, tree in (("before", before), ("now", ROOT)):
                runs[name].append(one(tree, args.jobs, args.owners))
                print(f"round {k + 1}: {name} done", file=sys.stderr)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False,
                       capture_output=True)
        shutil.rmtree(before.parent, ignore_errors=True)
    med = {name: {f: statistics.median(r[f] for r in rs) for f in FIGURES} for name, rs in runs.items()}
    report = {"before": rev, "rounds": args.rounds, "jobs": args.jobs, "owners": args.owners, "median": med,
              "now_over_before": {f: round(med["now"][f] / med["before"][f], 3) for f in FIGURES},
              "lost_or_doubled": sum(r["lost"] + r["doubled"] for rs in runs.values() for r in rs),
              "fair_turns": all(r["fair_turns"] for rs in runs.values() for r in rs)}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"local job path, {args.jobs} jobs of {args.owners} owners, 2 lanes, median of {args.rounds} rounds each, "
          f"alternating")
    for f in FIGURES:
        print(f"  {f:>16}: before ({rev}) {med['before'][f]:.3f} · now {med['now'][f]:.3f} · now/before "
              f"{report['now_over_before'][f]:.3f}")
    print(f"  lost or doubled: {report['lost_or_doubled']} · fair turns in every round: {report['fair_turns']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

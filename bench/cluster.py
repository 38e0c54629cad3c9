"""What handing the lab's jobs to a Ray cluster costs, side by side with local processes, in one run on this machine.

The same short jobs go through the lab's one queue twice: once started as local processes (the default), once as
Ray actors on a two-node cluster started here (``ray.cluster_utils.Cluster``: a head and a second node, one CPU
each, as the cluster tests use). Each job is a ``dash`` (this module's own kind of job, ``RESNET_LAB_KINDS`` names
it): its handler notes the moment it starts and how many times it ran, then naps ``--nap-s``. Both paths get the same
two lanes (local: ``RESNET_LAB_JOBS_PER_CPU=2``; Ray: one CPU lane per node), the same owners and the same order
of submits.

Measured for each path:

- **dispatch**: one pump that finds every lane free and a full queue — jobs claimed and handed to their launcher
  per second (a local ``Popen``; a Ray actor created), the worker's start not included;
- **free slot to started job**: every time a job ends, its worker pumps the queue, and the next job's handler
  starts in a new worker (under Ray: in a new actor, on whichever node Ray picks). With L lanes, the k-th job to
  start after the first L took the lane the k-th job to end freed: its delay is its handler's start less that end
  (median and 90th percentile) — the Python and torch start-up of a worker included, as a student waits for it;
- **N jobs of M owners**: the order they were claimed in (fair turns: every owner's k-th job before anyone's
  k+1-th), none lost (each done), none doubled (each handler ran once).

The issue's goal: the cluster path adds at most 1 s to a job's start (the delay's median, Ray less local) and loses
nothing. Figures are printed, never asserted (``--strict``: exit 1 when the goal is missed).

    .venv/bin/python bench/cluster.py [--jobs 100] [--owners 10] [--json]
    .venv/bin/python bench/cluster.py --quick --json     # 6 jobs of 3 owners: checks that it runs
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

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from resnet_lab.jobs import JobKind  # noqa: E402  (the lab's, from this checkout)
from resnet_lab.jobs.handlers import JobContext, Outcome  # noqa: E402
from resnet_lab.paths import job_dir  # noqa: E402

KINDS_MODULE = "bench.cluster"  # what the workers import for RESNET_LAB_KINDS (this file, from the repo's root)
LANES = 2
GOAL_ADDED_S = 1.0


def dash(ctx: JobContext) -> Outcome:
    """Note when this handler started (``started.txt``, appended: a job run twice shows two lines), nap, done."""
    with (job_dir(ctx.job.id) / "started.txt").open("a") as f:
        f.write(f"{time.time():.6f}\n")
    time.sleep(float(ctx.job.params.get("nap_s", 0.05)))
    return Outcome("done")


KINDS = (JobKind("dash", dash, unit="naps"),)


def say(what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def one_path(path: str, home: Path, jobs: int, owners: int, nap_s: float, timeout_s: float) -> dict:
    """Run ``jobs`` dashes of ``owners`` owners through the queue of a fresh lab home on the launcher configured
    now (``RESNET_LAB_RAY`` set or not); returns the path's figures."""
    from resnet_lab.identity import Identity
    from resnet_lab.jobs import JobRequest, pump, submit
    from resnet_lab.jobs.handlers import kind_named
    from resnet_lab.store import Store

    home.mkdir(parents=True)
    os.environ["RESNET_LAB_HOME"] = str(home)
    store = Store()
    people = [Identity(f"class:{i + 1}", f"Student {i + 1:02d}", source="class") for i in range(owners)]
    ids = []
    for k in range(jobs):  # owner by owner: each submits all of theirs before the next (the unfair order)
        who = people[k * owners // jobs]
        ids += submit(store, JobRequest(kind=kind_named("dash"), name=f"dash {k}", device="cpu", owner=who,
                                        params={"nap_s": nap_s}, start=False))[:1]
    say(f"{path}: {jobs} jobs of {owners} owners queued; the first pump")
    t0 = time.perf_counter()
    started = pump(store)
    dispatch_s = time.perf_counter() - t0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = store.jobs.list(limit=1_000_000)
        if all(j.status not in ("queued", "running") for j in rows):
            break
        time.sleep(0.2)
        if not any(j.status == "running" for j in rows):
            pump(store)  # nothing running and work waiting: what a page's pump would do
    every = {j.id: j for j in store.jobs.list(limit=1_000_000)}
    starts: dict[int, list[float]] = {}
    for i in ids:
        f = job_dir(i) / "started.txt"
        starts[i] = [float(x) for x in f.read_text().split()] if f.exists() else []
    ran = [i for i in ids if starts[i]]
    order = sorted(ran, key=lambda i: starts[i][0])
    ends = sorted(every[i].finished_at for i in ids if every[i].finished_at)
    first_starts = [starts[i][0] for i in order]
    delays = [s - e for s, e in zip(first_starts[LANES:], ends)]
    owner_of = {i: every[i].owner for i in ids}
    round_of: dict[int, int] = {}  # each job's round: the owner's how-many-th job it is, in the order submitted
    for i in ids:
        round_of[i] = sum(owner_of[j] == owner_of[i] for j in ids if j <= i)
    # the claims in order; the jobs one pump claims share a start time, so among them the round decides
    claimed = sorted((i for i in ids if every[i].started_at), key=lambda i: (every[i].started_at, round_of[i]))
    rounds = [round_of[i] for i in claimed]
    store.close()
    return {"path": path, "jobs": jobs, "owners": owners, "dispatched_in_first_pump": len(started),
            "dispatch_per_s": round(len(started) / dispatch_s, 1) if started and dispatch_s > 0 else None,
            "first_pump_s": round(dispatch_s, 3),
            "delay_s_median": round(statistics.median(delays), 3) if delays else None,
            "delay_s_p90": round(sorted(delays)[int(0.9 * (len(delays) - 1))], 3) if delays else None,
            "makespan_s": round(max(first_starts) - min(first_starts), 1) if first_starts else None,
            "done": sum(every[i].status == "done" for i in ids),
            "lost": sum(not starts[i] or every[i].status != "done" for i in ids),
            "doubled": sum(len(starts[i]) > 1 for i in ids),
            "fair_turns": rounds == sorted(rounds),
            "start_order_owners": [owner_of[i].split(":")[-1] for i in claimed]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=100, help="jobs per path (default 100)")
    p.add_argument("--owners", type=int, default=10, help="owners they belong to (default 10)")
    p.add_argument("--nap-s", type=float, default=0.05, help="each job's nap, s (default 0.05)")
    p.add_argument("--timeout-s", type=float, default=900.0, help="at most this long a path, s")
    p.add_argument("--quick", action="store_true", help="6 jobs of 3 owners (for tests)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    p.add_argument("--strict", action="store_true", help="exit 1 when the goal is missed")
    p.add_argument("--local-only", action="store_true",
                   help="only the local path, as JSON (bench/seam.py runs it on an older checkout too)")
    args = p.parse_args()
    if args.quick:
        args.jobs, args.owners = 6, 3
    base = Path(tempfile.mkdtemp(prefix="cluster_bench_"))
    os.environ.update(RESNET_LAB_KINDS=KINDS_MODULE, RESNET_LAB_HEARTBEAT_S="0.5", RAY_ENABLE_UV_RUN_RUNTIME_ENV="0",
                      PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    for var in ("RESNET_LAB_DB", "RESNET_LAB_RAY", "RESNET_LAB_CLASS_CODE"):
        os.environ.pop(var, None)
    report: dict = {"jobs": args.jobs, "owners": args.owners, "lanes": LANES, "nap_s": args.nap_s,
                    "cores": len(os.sched_getaffinity(0))}
    os.environ["RESNET_LAB_JOBS_PER_CPU"] = str(LANES)
    try:
        report["local"] = one_path("local", base / "local", args.jobs, args.owners, args.nap_s, args.timeout_s)
    finally:
        if args.local_only:
            shutil.rmtree(base, ignore_errors=True)
    if args.local_only:
        print(json.dumps(report, indent=2))
        return 0
    import ray
    from ray.cluster_utils import Cluster

    from resnet_lab.jobs import launch

    say("starting a two-node Ray cluster")
    node = dict(num_cpus=1, num_gpus=0, object_store_memory=80 * 2 ** 20)
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        cluster.add_node(**node)
        cluster.wait_for_nodes()
        os.environ.update(RESNET_LAB_RAY=cluster.address, RESNET_LAB_JOBS_PER_CPU="1")  # one lane a node: 2
        assert launch.launcher().capacity()["cpu"] == LANES
        report["ray"] = one_path("ray", base / "ray", args.jobs, args.owners, args.nap_s, args.timeout_s)
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(base, ignore_errors=True)  # both paths' lab homes
    local, on_ray = report["local"], report["ray"]
    added = (on_ray["delay_s_median"] - local["delay_s_median"]
             if on_ray["delay_s_median"] is not None and local["delay_s_median"] is not None else None)
    report["ray_added_start_s"] = round(added, 3) if added is not None else None
    report["passed"] = {"added_start": added is not None and added <= GOAL_ADDED_S,
                        "nothing_lost": local["lost"] == on_ray["lost"] == local["doubled"] == on_ray["doubled"] == 0,
                        "fair_turns": local["fair_turns"] and on_ray["fair_turns"]}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"cluster bench: {args.jobs} jobs of {args.owners} owners a path, {LANES} lanes, naps of "
              f"{args.nap_s} s, {report['cores']} cores")
        for r in (local, on_ray):
            print(f"  {r['path']:>5}: first pump dispatched {r['dispatched_in_first_pump']} in {r['first_pump_s']} s "
                  f"({r['dispatch_per_s']}/s) · free slot to started job: median {r['delay_s_median']} s, p90 "
                  f"{r['delay_s_p90']} s · {r['done']} done, {r['lost']} lost, {r['doubled']} doubled · fair turns "
                  f"{r['fair_turns']} · all in {r['makespan_s']} s")
        print(f"  Ray adds {report['ray_added_start_s']} s to a job's start (goal <= {GOAL_ADDED_S} s)")
        print("targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in report["passed"].items()))
    return 1 if args.strict and not all(report["passed"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())

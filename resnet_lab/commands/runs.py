"""`runs`, `jobs`, `stop`, `resume` and `delete`: what is on this lab's queue and in its records, and acting on it.

The command line acts as the machine (:data:`resnet_lab.identity.MACHINE`, a teacher): it may act on
everyone's jobs."""

from __future__ import annotations

import argparse
import json

from ..identity import LOCAL, MACHINE
from .common import add_run, run_row


def register(sub: argparse._SubParsersAction) -> None:
    rs = sub.add_parser("runs", help="list runs (with where a queued or running one stands in the queue)")
    rs.add_argument("--json", action="store_true")
    rs.set_defaults(func=cmd_runs)

    jb = sub.add_parser("jobs", help="list the background jobs of every kind: training, fine-tuning, landscapes")
    jb.add_argument("--json", action="store_true")
    jb.set_defaults(func=cmd_jobs)

    sp = sub.add_parser("stop", help="stop a run's job (graceful: finishes the step and checkpoints)")
    add_run(sp, help="a run (its job, with its twin, stops)", old_positional=True,
            job="a job instead of a run (e.g. a landscape job)")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_stop)

    rm = sub.add_parser("resume", help="resume a stopped, interrupted or failed run (its job) from its last intact checkpoint")
    add_run(rm, help="a stopped, interrupted or failed run (its job resumes)", old_positional=True,
            job="a job instead of a run")
    rm.set_defaults(func=cmd_resume)

    dl = sub.add_parser("delete", help="delete a finished run with its twin, metrics, analyses and files")
    add_run(dl, help="a finished run (with its twin)", old_positional=True,
            job="a job instead of a run (e.g. a landscape job)")
    dl.set_defaults(func=cmd_delete)


def _job_id(store, args: argparse.Namespace) -> int:
    """The job that ``--job ID`` names, or the job of ``--run ID``'s run."""
    if args.job is not None:
        return store.jobs.get(args.job).id
    from ..train.launcher import job_of

    return job_of(args.run, store)


def _target(args: argparse.Namespace) -> tuple[str, int]:
    """What the command acts on, as it is said: ("job", ID) or ("run", ID)."""
    return ("job", args.job) if args.job is not None else ("run", args.run)


def cmd_runs(args: argparse.Namespace) -> int:
    from ..jobs import pump
    from ..jobs.eta import forecast
    from ..store import Store

    store = Store()
    pump(store)
    runs = store.runs.list()
    where = forecast(store)
    if args.json:
        print(json.dumps([run_row(r, where.get(r.job_id) if r.active else None) for r in runs], indent=2))
        return 0
    for r in runs:
        acc = r.best.get("val/acc")
        twin = f" (twin: {r.partner_id})" if r.partner_id else ""
        queue = f"  [{where[r.job_id].describe()}]" if r.active and r.job_id in where else ""
        print(f"{r.id:>5}  {r.status:<11} {r.name}{twin}  step {r.step}/{r.total_steps or '?'}"
              + (f"  best val acc {acc:.3f}" if acc is not None else "") + queue)
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from ..jobs import pump
    from ..jobs.eta import forecast, pace
    from ..jobs.launch import host_label
    from ..store import Store

    store = Store()
    pump(store)
    jobs = store.jobs.list()
    where = forecast(store)
    paces = {j.id: pace(j) for j in jobs}
    rows = [{"id": j.id, "kind": j.kind, "name": j.name, "owner": j.owner, "owner_name": j.owner_name,
             "status": j.status, "device": j.device, "slot": j.slot, "host": j.host,
             "world_size": j.world_size, "progress": j.progress, "total": j.total, "unit": j.unit, "error": j.error,
             "per_s": paces[j.id][0] if paces[j.id] else None, "left_s": paces[j.id][1] if paces[j.id] else None,
             "runs": [r.id for r in store.runs.of_job(j.id)], "queue": where[j.id].to_dict() if j.id in where else None}
            for j in jobs]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        queue = f"  [{row['queue']['text']}]" if row["queue"] else ""
        whose = f"  ({row['owner_name'] or row['owner']})" if row["owner"] != LOCAL else ""
        host = host_label(row["host"]) if row["status"] == "running" else None  # a worker on a cluster's node
        print(f"{row['id']:>5}  {row['kind']:<10} {row['status']:<11} {row['name']}{whose}  {row['progress']}/"
              f"{row['total'] or '?'} {row['unit']}" + queue + (f"  on {host}" if host else ""))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from ..jobs import stop
    from ..store import Store

    store = Store()
    result = stop(_job_id(store, args), store, by=MACHINE)
    what, ident = _target(args)
    print(json.dumps({what: ident, "status": result}) if args.json else f"{what} {ident}: {result}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from ..jobs import resume
    from ..store import Store

    store = Store()
    resume(_job_id(store, args), store, by=MACHINE)
    what, ident = _target(args)
    print(f"{what} {ident}: queued to resume")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from ..jobs import delete
    from ..store import Store
    from ..train.launcher import delete_run

    store = Store()
    runs = [r.id for r in store.runs.of_job(store.jobs.get(args.job).id)] if args.job is not None else [args.run]
    if not runs:  # an analysis job: it goes alone
        delete(args.job, store, by=MACHINE)
        print(f"job {args.job}: deleted")
        return 0
    gone = delete_run(runs[0], store, by=MACHINE)
    print(f"deleted run{'s' if len(gone) != 1 else ''} {', '.join(map(str, gone))}")
    return 0

"""``models speed``: each preset's training images/s, batch-1 latency and batch-64 images/s on this lab's device.

Asks the queue for a ``speed`` job (:func:`resnet_lab.experiments.speed.submit_speed`) and follows it to its end
(Ctrl-C stops it; what was measured is kept), then prints the figures; presets measured on the device before are not
measured again (``--remeasure`` does). ``--here`` measures in this process instead of a worker (no queue: say, on a
machine where the lab is not running), and keeps the figures the same way.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(models_sub: argparse._SubParsersAction) -> None:
    """``models speed``, added to the ``models`` command's subcommands."""
    p = models_sub.add_parser("speed", help="measure each preset's training and inference speed on this device")
    p.add_argument("--presets", nargs="+", metavar="NAME", default=None,
                   help="presets to measure (default: all; on the CPU all but resnet1202)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where to measure (default auto)")
    p.add_argument("--remeasure", action="store_true", help="measure again presets measured on this device before")
    p.add_argument("--here", action="store_true", help="measure in this process, not as a job on the queue")
    p.add_argument("--quick", action="store_true", help="one timed run per figure: a check that it runs (rough)")
    p.add_argument("--detach", action="store_true", help="queue the job and return at once")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_speed)


def _table(speeds: dict, names: list[str]) -> str:
    """The figures of ``names`` as a text table (a preset not measured says so)."""
    lines = [f"{'preset':<16}{'train img/s':>12}{'latency ms':>12}{'img/s @64':>11}{'batch':>7}{'px':>5}"]
    for n in names:
        s = speeds.get(n)
        if s is None:
            lines.append(f"{n:<16}{'not measured':>12}")
            continue
        lines.append(f"{n:<16}{s.train_images_per_s:>12,.1f}{s.latency_ms:>12,.2f}{s.images_per_s:>11,.1f}"
                     f"{s.batch:>7}{s.image_size:>5}")
    return "\n".join(lines)


def cmd_speed(args: argparse.Namespace) -> int:
    from ..experiments.speed import lab_device_name, measure_into, measured, submit_speed
    from ..experiments.speed.measure import DEFAULT_PLAN, QUICK_PLAN, check_presets, device_kind
    from ..jobs import slots
    from ..jobs.follow import follow
    from ..store import Store

    store = Store()
    try:
        kind = device_kind(args.device) if args.here else slots.resolve_device(args.device)
        names = check_presets(args.presets, kind)
        name = lab_device_name(kind)
        job_id, status = None, "done"
        plan = QUICK_PLAN if args.quick else DEFAULT_PLAN
        if args.here:
            have = measured(store, name)
            for i, preset in enumerate(names):
                if args.remeasure or preset not in have:
                    if not args.json:
                        print(f"measuring {preset} ({i + 1}/{len(names)}) on {name}…", file=sys.stderr, flush=True)
                    measure_into(store, preset, kind, plan)
        else:
            job_id = submit_speed(store, names, kind, remeasure=args.remeasure, plan=plan)
            if job_id is not None and args.detach:
                job = store.jobs.get(job_id)
                print(json.dumps({"job": job_id, "status": job.status, "device_name": name}) if args.json
                      else f"queued speed job {job_id} on {name}")
                return 0
            if job_id is not None:
                def report(jobs) -> None:
                    if not args.json:
                        j = jobs[0]
                        print(f"job {job_id} {j.status:<8} {j.progress}/{j.total or '?'} presets", file=sys.stderr,
                              flush=True)

                job = follow(store, [job_id], report, stopping_text="stopping (keeping what was measured)…")[0]
                status = job.status
                if status != "done":
                    print(f"error: speed job {job_id} {status}" + (f": {job.error}" if job.error else ""),
                          file=sys.stderr)
        speeds = measured(store, name)
        if args.json:
            print(json.dumps({"device_name": name, "device": kind, "job": job_id, "status": status,
                              "speeds": [speeds[n].to_dict() for n in names if n in speeds],
                              "missing": [n for n in names if n not in speeds]}, indent=2))
        else:
            print(f"{name}" + ("" if job_id is not None or args.here else " (measured before; --remeasure to redo)"))
            print(_table(speeds, names))
        return 0 if status == "done" else 1
    finally:
        store.close()

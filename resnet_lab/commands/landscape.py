"""`python -m resnet_lab landscape`: filter-normalized loss-landscape slices of a run and its twin, the
training path on the plane of its PCA directions (``--directions pca``: Li et al. 2018, sec. 7; needs a run
trained with ``--keep-weights-every``), or a linear interpolation from the initial (or another run's) weights
to the trained ones (``--interpolate``: Goodfellow et al. 2015).

Prints the cost estimate, queues a background job (the same one the Loss landscape page starts),
follows it to its end (Ctrl-C stops it; what was computed is kept) and reports each model's centre,
lowest and highest loss (an interpolation: the loss at both ends, the barrier, whether it falls all the way)
— as JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..fmt import finite_or_none
from .common import add_run, add_twin

DEFAULTS = dict(dims=2, steps=11, span=1.0, batches=2, batch_size=128, seed=0, resolution=10, extend=0.5)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``landscape`` to the parser."""
    p = sub.add_parser("landscape", help="loss landscape: 1D/2D filter-normalized slices around a run and its twin",
                       description="Loss on a 1D or 2D slice through a trained run's weights along random "
                                   "filter-normalized directions (Li et al. 2018), beside its plain twin; computed "
                                   "by a background worker and saved with the run.")
    add_run(p, help="a finished run's id")
    add_twin(p, default=True, help="slice the run's twin too (default); --no-twin: this run only")
    p.add_argument("--dims", type=int, default=DEFAULTS["dims"], help="1 (a curve) or 2 (a surface; default)")
    p.add_argument("--steps", type=int, default=DEFAULTS["steps"], help="grid points per axis, odd, 3..51 (default 11)")
    p.add_argument("--span", type=float, default=DEFAULTS["span"],
                   help="coordinates in [-span, span], 0 < span <= 5 (default 1.0)")
    p.add_argument("--batches", type=int, default=DEFAULTS["batches"],
                   help="training batches averaged at each point, 1..50 (default 2)")
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"], help="images per batch, 8..1024")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="seed of the random directions (default 0)")
    p.add_argument("--directions", choices=["random", "pca"], default="random",
                   help="random (filter-normalized; default) or pca: the first two PCA directions of the run's kept "
                        "weights, with its training path (2D; span then in units of the path's extent)")
    p.add_argument("--interpolate", action="store_true",
                   help="instead of a slice: the loss along the line from the initial weights (or --from-run's) to "
                        "the trained ones, for the run and its twin side by side")
    p.add_argument("--from-run", type=int, metavar="ID",
                   help="with --interpolate: start from this run (same architecture; for the twin, its partner) "
                        "instead of the initial weights")
    p.add_argument("--resolution", type=int, default=DEFAULTS["resolution"],
                   help="with --interpolate: points per unit of α, 2..50 (default 10)")
    p.add_argument("--extend", type=float, default=DEFAULTS["extend"],
                   help="with --interpolate: α runs from -extend to 1 + extend, 0..1 (default 0.5)")
    p.add_argument("--bn", choices=["recompute", "interpolate"], default="recompute",
                   help="with --interpolate: recompute the BN statistics at each α (default) or interpolate them")
    p.add_argument("--detach", action="store_true", help="queue and return at once")
    p.add_argument("--json", action="store_true", help="JSON output (the estimate goes to stderr)")
    p.set_defaults(func=cmd_landscape)


def cmd_landscape(args: argparse.Namespace) -> int:
    if args.interpolate:
        return _interpolate(args)
    if args.from_run is not None:
        raise ValueError("--from-run goes with --interpolate")
    from ..analysis.landscape import LandscapeParams, estimate_cost, summary
    from ..analysis.learned import inconclusive
    from ..analysis.subject import from_run
    from ..experiments.landscape import basin_sentence, landscape_runs, load_result, submit_landscape
    from ..experiments.learned import check_runs
    from ..jobs.slots import default_device
    from ..store import Store

    params = LandscapeParams(dims=args.dims, steps=args.steps, span=args.span, batches=args.batches,
                             batch_size=args.batch_size, seed=args.seed, directions=args.directions)
    store = Store()
    runs = landscape_runs(store, args.run, args.twin)
    subjects = [from_run(r) for r in runs]
    main = subjects[0]
    cost = estimate_cost([s.model for s in subjects], (main.in_channels, main.image_size, main.image_size), params,
                         device=default_device())
    print(f"estimate: {cost.describe()}", file=sys.stderr if args.json else sys.stdout, flush=True)
    job_id = submit_landscape(args.run, params, twin=args.twin, store=store, estimate_s=cost.seconds)
    job, estimate = _queued_or_followed(store, job_id, args, cost, "landscape")
    if job is None:
        return 0
    models = []
    checks = check_runs(store, runs)  # a basin says something only about a net that learned
    why = inconclusive(checks)
    basin = None
    if job.result_path:
        result = load_result(job.result_path)
        basin = None if why is not None else (basin_sentence(result.surfaces) or None)
        for s in result.surfaces:
            row = summary(s)
            models.append({k: finite_or_none(row[k]) if isinstance(row[k], float) else row[k]
                           for k in ("label", "run", "skip", "center_loss", "center_acc", "min_loss", "max_loss",
                                     "rise_at_half_span", "complete")})
            if s.path is not None:
                models[-1]["path"] = {"steps": list(s.path.steps), "explained": list(s.path.explained)}
    out = {"job": job_id, "status": job.status, "error": job.error, "result_path": job.result_path,
           "params": params.to_dict(), "runs": [r.id for r in runs], "progress": job.progress, "total": job.total,
           "estimate": estimate, "models": models, "learned": [c.to_dict() for c in checks],
           "inconclusive": why is not None, "inconclusive_why": why, "basin": basin}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"job {job_id}: {job.status}" + (f" — {job.error}" if job.error else ""))
        for m in models:
            def f(v):
                return "—" if v is None else f"{v:.4f}"
            print(f"  {m['label']}: centre loss {f(m['center_loss'])}, min {f(m['min_loss'])}, "
                  f"max {f(m['max_loss'])}, rise at half span {f(m['rise_at_half_span'])}")
            if "path" in m:
                ex = m["path"]["explained"]
                print(f"    training path: {len(m['path']['steps'])} kept weights, PCA directions explain "
                      f"{100 * ex[0]:.1f}% + {100 * ex[1]:.1f}% of its variance")
        if why is not None:
            print(f"  {why}")
        elif basin:
            print(f"  {basin}")
        if job.result_path:
            print(f"  saved to {job.result_path}")
    return 0 if job.status == "done" else 1


def _queued_or_followed(store, job_id: int, args: argparse.Namespace, cost, what: str) -> tuple[Any, dict]:
    """(the job once it ended, the cost estimate as JSON) — or, with ``--detach``, (None, …) after saying the
    ``what`` job is queued. Progress is printed while it runs (not with ``--json``)."""
    from ..jobs.follow import follow

    estimate = {"forwards": cost.forwards, "seconds": cost.seconds, "device": cost.device}
    if args.detach:
        job = store.jobs.get(job_id)
        print(json.dumps({"job": job_id, "status": job.status, "estimate": estimate}) if args.json
              else f"queued {what} job {job_id}")
        return None, estimate

    def report(jobs) -> None:
        if not args.json:
            j = jobs[0]
            print(f"job {job_id} {j.status:<8} {j.progress}/{j.total or '?'} evaluations", flush=True)

    return follow(store, [job_id], report, poll_s=0.3,
                  stopping_text="stopping (saving what has been computed)…")[0], estimate


def _interpolate(args: argparse.Namespace) -> int:
    """``landscape --interpolate``: queue, follow and report an interpolation job."""
    from ..analysis.landscape import InterpolationParams, estimate_cost, interpolation_summary
    from ..analysis.subject import from_run
    from ..experiments.landscape import interpolation_sentence, landscape_runs, load_interpolation, submit_interpolation
    from ..jobs.slots import default_device
    from ..store import Store

    params = InterpolationParams(resolution=args.resolution, extend=args.extend, batches=args.batches,
                                 batch_size=args.batch_size, seed=args.seed, bn=args.bn)
    store = Store()
    runs = landscape_runs(store, args.run, args.twin)
    subjects = [from_run(r) for r in runs]
    main = subjects[0]
    cost = estimate_cost([s.model for s in subjects], (main.in_channels, main.image_size, main.image_size), params,
                         device=default_device())
    print(f"estimate: {cost.describe()}", file=sys.stderr if args.json else sys.stdout, flush=True)
    start = "init" if args.from_run is None else "run"
    job_id = submit_interpolation(args.run, params, twin=args.twin, start=start, from_run=args.from_run,
                                  store=store, estimate_s=cost.seconds)
    job, estimate = _queued_or_followed(store, job_id, args, cost, "interpolation")
    if job is None:
        return 0
    models, sentence = [], None
    if job.result_path:
        result = load_interpolation(job.result_path)
        sentence = interpolation_sentence(result.curves) or None
        for c in result.curves:
            row = interpolation_summary(c)
            models.append({k: finite_or_none(v) if isinstance(v, float) else v for k, v in row.items()}
                          | {"alphas": list(c.alphas), "loss": [finite_or_none(v) for v in c.loss],
                             "acc": [finite_or_none(v) for v in c.acc]})
    out = {"job": job_id, "status": job.status, "error": job.error, "result_path": job.result_path,
           "params": params.to_dict(), "start": start, "from_run": args.from_run, "runs": [r.id for r in runs],
           "progress": job.progress, "total": job.total, "estimate": estimate, "models": models,
           "sentence": sentence}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"job {job_id}: {job.status}" + (f" — {job.error}" if job.error else ""))
        for m in models:
            def f(v):
                return "—" if v is None else f"{v:.4f}"
            print(f"  {m['label']} from {m['start']}: loss {f(m['loss_start'])} → {f(m['loss_end'])}, "
                  f"climbs {f(m['climb'])} on the way, at most {f(m['barrier'])} above the straight line")
        if sentence:
            print(f"  {sentence}")
        if job.result_path:
            print(f"  saved to {job.result_path}")
    return 0 if job.status == "done" else 1

"""The kinds of job the Ray cluster tests run (``$RESNET_LAB_KINDS`` names this module): one cheap kind, ``nap``,
that takes ``params["naps"]`` naps of ``params["nap_s"]`` seconds, one unit of progress each, stopping between two
when asked, and continuing where it was when resumed (its count lives in its job's folder, on the shared lab home:
a resumed job continues on whichever node Ray picks)."""

from __future__ import annotations

import time

from resnet_lab.jobs import JobKind
from resnet_lab.jobs.handlers import JobContext, Outcome
from resnet_lab.paths import job_dir

NAME = "nap"


def nap(ctx: JobContext) -> Outcome:
    """Nap until ``naps`` naps are taken; writes the count after each one (``naps.txt``) and, at the end, how many
    this worker took after resuming (``result.txt``: "<taken> <first nap of this worker>")."""
    total, nap_s = int(ctx.job.params["naps"]), float(ctx.job.params["nap_s"])
    count_file = job_dir(ctx.job.id) / "naps.txt"
    first = int(count_file.read_text()) if count_file.exists() else 0
    ctx.progress(first, total)
    for taken in range(first + 1, total + 1):
        if ctx.should_stop():
            return Outcome("stopped", f"Stopped after {taken - 1} naps.")
        time.sleep(nap_s)
        count_file.write_text(str(taken))
        ctx.progress(taken, total)
    result = job_dir(ctx.job.id) / "result.txt"
    result.write_text(f"{total} {first}\n")
    return Outcome("done", result_path=result)


def group_nap(ctx: JobContext) -> Outcome:
    """A nap taken by a group of processes (torchrun): each rank writes the GPUs it was shown
    (``rank<r>.txt``: CUDA_VISIBLE_DEVICES), then the group naps as :func:`nap` does."""
    import os

    (job_dir(ctx.job.id) / f"rank{ctx.rank}.txt").write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "?"))
    return nap(ctx) if ctx.leader else Outcome("done")


NAP = JobKind(NAME, nap, resumable=True, unit="naps")
GROUP_NAP = JobKind("group_nap", group_nap, group=True, unit="naps")
KINDS = (NAP, GROUP_NAP)

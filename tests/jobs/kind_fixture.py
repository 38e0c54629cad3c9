"""A kind of job that exists only in the tests, wired the way the lab wires its own: a handler, one ``JobKind``
declared next to it, and a wiring module (this one, named by ``$RESNET_LAB_KINDS``) that lists the lab's kinds
and it. The worker process finds it by that name (it starts in the repository root, so ``tests.jobs`` imports).
"""

from __future__ import annotations

from resnet_lab.jobs import JobKind
from resnet_lab.jobs.handlers import JobContext, Outcome
from resnet_lab.kinds import KINDS as LAB_KINDS
from resnet_lab.paths import job_dir

NAME = "count_sheep"  # the new kind's name: nothing in resnet_lab/jobs/ may mention it


def count_sheep(ctx: JobContext) -> Outcome:
    """Count ``params["sheep"]`` sheep, one unit of progress each, stopping between two when asked; writes the
    count to ``sheep.txt`` in the job's folder."""
    total = int(ctx.job.params["sheep"])
    ctx.progress(0, total)
    counted = 0
    for counted in range(1, total + 1):
        if ctx.should_stop():
            return Outcome("stopped", f"Stopped after {counted - 1} sheep.")
        ctx.progress(counted, total)
    path = job_dir(ctx.job.id) / "sheep.txt"
    path.write_text(f"{counted} sheep on {ctx.device}\n")
    return Outcome("done", result_path=path)


SHEEP = JobKind(NAME, count_sheep, unit="sheep")
KINDS = (*LAB_KINDS, SHEEP)

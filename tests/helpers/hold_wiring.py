"""The lab's kinds of job plus ``hold``: a job that only holds its slot (napping until stopped, or ``hold_s``), so a
test can keep a queue waiting without training anything. A test names this module in ``$RESNET_LAB_KINDS`` for the
processes that start workers; the worker imports it from the repository root (``PYTHONPATH``)."""

from __future__ import annotations

import time

from resnet_lab.jobs import JobKind
from resnet_lab.jobs.handlers import JobContext, Outcome
from resnet_lab.kinds import KINDS as LAB_KINDS


def hold(ctx: JobContext) -> Outcome:
    deadline = time.monotonic() + float(ctx.job.params.get("hold_s", 300))
    while not ctx.should_stop() and time.monotonic() < deadline:
        time.sleep(0.1)
    return Outcome("stopped" if ctx.should_stop() else "done")


HOLD = JobKind("hold", hold, unit="naps")
KINDS = (*LAB_KINDS, HOLD)

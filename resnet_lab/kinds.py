"""The wiring: every kind of background work this lab runs, and the worker's entry point.

Each kind is declared next to its handler (a :class:`resnet_lab.jobs.JobKind`); this module only lists them, so
the job system (:mod:`resnet_lab.jobs`) can run a job of any of them without naming one: its worker finds a job's
kind here (:func:`resnet_lab.jobs.handlers.registered`). ``python -m resnet_lab.kinds JOB_ID`` runs one claimed
job, as ``python -m resnet_lab.jobs.worker JOB_ID`` (what the scheduler starts) does.
"""

from __future__ import annotations

import sys
from typing import Sequence

from .downloads import DOWNLOAD
from .experiments.challenges.jobs import CHALLENGE_JOB
from .experiments.landscape.jobs import INTERPOLATION_JOB, LANDSCAPE_JOB
from .experiments.speed.jobs import SPEED_JOB
from .jobs import JobKind
from .train.handler import FINETUNE, TRAIN

KINDS: tuple[JobKind, ...] = (TRAIN, FINETUNE, LANDSCAPE_JOB, INTERPOLATION_JOB, DOWNLOAD, CHALLENGE_JOB,
                              SPEED_JOB)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one claimed job (``JOB_ID``) to its end with the one worker harness; returns the exit status."""
    from .jobs import worker

    return worker.main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())

"""What each kind of job runs: kind -> handler, imported only by the worker that needs it.

A handler is ``handler(ctx: JobContext) -> Outcome``: it does the work, reports progress through
``ctx.progress(done, total)``, looks at ``ctx.should_stop()`` between units of work and returns how
it ended. The harness (:mod:`resnet_lab.jobs.worker`) does everything else: pid, heartbeat, SIGTERM,
final status, errors, the next job. A new kind of background work is one handler and one line here.

A handler that knows what went wrong in words a person can act on raises :class:`JobFailed` with them; any
other exception is shown as "TypeName: message".
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HANDLERS: dict[str, str] = {
    "train": "resnet_lab.train.handler:run_training",
    "finetune": "resnet_lab.train.handler:run_training",
    "landscape": "resnet_lab.experiments.landscape:run_landscape",
}
"""kind -> "module:function" of its handler."""

GROUP_KINDS: tuple[str, ...] = ("train",)
"""Kinds whose handler can run as a group of processes (``world_size`` > 1, one device each, via torchrun)."""


@dataclass
class JobContext:
    """What a handler gets: its job, the store, where to compute, and the two channels back."""

    job: Any  # the store's Job, as claimed
    store: Any  # the worker's Store
    device: str  # "cuda" (the slot's GPU, the only one the worker sees) or "cpu"
    progress: Callable[[int, int | None], None]  # (units done, units in all): throttled store writes
    stop_event: threading.Event = field(default_factory=threading.Event)
    rank: int = 0  # this process's place in the job's group (0: the leader, the one that writes to the store)
    world_size: int = 1  # processes running the job together (job.world_size)

    @property
    def leader(self) -> bool:
        """True for the process that records the job (the only one, unless the job runs as a group)."""
        return self.rank == 0

    def should_stop(self) -> bool:
        """True once a stop was asked for (the store's flag, or SIGTERM): finish the unit of work and return."""
        return self.stop_event.is_set()


class JobFailed(Exception):
    """The job cannot go on, for a reason already put in words for the person who started it (what happened,
    to what, and what to do about it): the worker records the message as it is, without an exception's name."""


@dataclass(frozen=True)
class Outcome:
    """How a handler ended (an exception means "failed")."""

    status: str = "done"  # "done" or "stopped"
    message: str | None = None  # for a stopped job: what was kept
    result_path: Path | None = None  # the file written, if any


def handler_for(kind: str) -> Callable[[JobContext], Outcome]:
    target = HANDLERS.get(kind)
    if target is None:
        raise ValueError(f"unknown job kind {kind!r}; known: {', '.join(sorted(HANDLERS))}")
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)

"""What a kind of job is (:class:`JobKind`), what its handler gets (:class:`JobContext`) and returns
(:class:`Outcome`), and how the worker finds the kind of a job (:func:`kind_named`).

A handler is ``handler(ctx: JobContext) -> Outcome``: it does the work, reports progress through
``ctx.progress(done, total)``, looks at ``ctx.should_stop()`` between units of work and returns how
it ended. The harness (:mod:`resnet_lab.jobs.worker`) does everything else: pid, heartbeat, SIGTERM,
final status, errors, the next job.

The job system knows no kind of work by name. Each kind declares a :class:`JobKind` next to its handler, and
one wiring module outside this package lists them (its ``KINDS``): the host package's ``kinds`` module, or the
module named by ``$RESNET_LAB_KINDS`` (say, a test's, which adds a kind of its own). A new kind of background
work is one handler, one ``JobKind`` and one line in the wiring; nothing here changes.

A handler that knows what went wrong in words a person can act on raises :class:`JobFailed` with them; any
other exception is shown as "TypeName: message".
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .scheduler import JobRequest

WIRING_ENV = "RESNET_LAB_KINDS"  # names the module whose KINDS lists the kinds of job (default: the host's "kinds")


@dataclass(frozen=True)
class Created:
    """A job just inserted, as its kind's ``on_submit`` sees it: inside the transaction that inserts it."""

    job_id: int
    device: str  # the kind of device it is queued on: "cpu" or "cuda"
    created_at: float  # unix time, s
    request: "JobRequest"


@dataclass(frozen=True)
class JobKind:
    """One kind of background work, declared next to its handler: what the queue needs to know of it.

    ``on_submit(con, created)`` writes the kind's own records with the job (training: its runs and their twin
    pairing) on the store's connection ``con``, inside the transaction that inserts the job, so either both
    are written or neither; it returns their ids (what :func:`resnet_lab.jobs.scheduler.submit` hands back).

    ``after_failure(store, job)`` lets a failed job resume as a stopped one does, where the kind can tell that what
    it saved before failing is intact (training: its last checkpoint reads back and its weights fit the model):
    it returns why not, in words, or None (:func:`resnet_lab.jobs.scheduler.resume_refusal`)."""

    name: str  # what a job row records as its kind
    handler: Callable[["JobContext"], "Outcome"]  # runs one job of this kind in the worker
    resumable: bool = False  # a stopped or interrupted job continues where it was; else it computes again
    group: bool = False  # may run as a group of processes (world_size > 1, one device each, via torchrun)
    unit: str = "steps"  # what its progress counts ("steps", "evaluations", ...)
    on_submit: Callable[[Any, Created], list[int]] | None = None  # the kind's own records, written with the job
    device: str | None = None  # the one kind of slot it runs on, whatever a request asks ("net": a download,
    # which waits on the network, never behind a training run); None: the request's device
    after_failure: Callable[[Any, Any], str | None] | None = None  # a resumable kind whose failed job may resume
    # too: (store, job) -> why this failed job cannot (say, no intact checkpoint), or None when it can; None: a
    # failed job of this kind is started again, never resumed


def wiring() -> str:
    """The dotted name of the module that lists the kinds of job (its ``KINDS``)."""
    return os.environ.get(WIRING_ENV) or f"{__name__.split('.')[0]}.kinds"


def registered() -> dict[str, JobKind]:
    """{name: kind} of every kind of job the wiring lists."""
    return {k.name: k for k in importlib.import_module(wiring()).KINDS}


def kind_named(name: str) -> JobKind:
    """The kind of job called ``name`` (ValueError naming the known ones for any other)."""
    kinds = registered()
    if name not in kinds:
        raise ValueError(f"unknown job kind {name!r}; known: {', '.join(sorted(kinds))}")
    return kinds[name]


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
    """The handler of the kind of job called ``kind``."""
    return kind_named(kind).handler

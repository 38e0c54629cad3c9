"""The ``download`` job: one entry of the catalogue (a dataset's files, or a weights file) fetched, verified and
unpacked by a worker on the ``net`` slot, with its progress in bytes.

One download per file for the whole lab: every request for an entry while its job is queued or running is that
job (the queue's ``request_key``, decided inside the transaction that would insert it), so thirty students who
pick CIFAR-10 at once wait on one download. Who may *start* one is decided here, not by hiding a button: the
machine's own user and teachers always; a student only when the class allows it (``[downloads]
students_may_start``). Joining a download that is already running is open to everyone.

Offline (``RESNET_LAB_OFFLINE=1``) no job is queued and no connection is attempted: the refusal says what to
put where, as the loaders do.

The catalogue is imported where it is used, never when this module is: it reads torchvision's tables, and every
worker of every kind imports this module through the wiring (a second of start-up a job would pay for nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..classroom.lessons import list_lessons
from ..classroom.settings import ClassSettings, load_settings
from ..fmt import format_bytes
from ..identity import MACHINE, Identity, NotAllowed
from ..jobs import JobRequest, scheduler
from ..jobs.handlers import JobContext, JobFailed, JobKind, Outcome
from ..models.presets import PRESETS
from ..store import Job, Store

KIND = "download"


class DownloadRefused(ValueError):
    """No download was queued: offline mode, an unknown name, or a student in a class that does not let students
    start downloads. The message says what to do instead."""


def _run(ctx: JobContext) -> Outcome:
    """Fetch the job's entry (``params["name"]``), reporting bytes done of bytes in all; a stop keeps the partial
    file, which a Resume (or any later request) continues with an HTTP Range request."""
    from ..data import catalogue, fetch

    name = str(ctx.job.params["name"])
    entry = catalogue.entry(name)
    ctx.progress(0, entry.total_bytes())
    try:
        folder = fetch.fetch(name, progress=ctx.progress, should_stop=ctx.should_stop,
                             mirror=ctx.job.params.get("mirror") or None)
    except fetch.DownloadStopped:
        return Outcome("stopped", f"Stopped; the part of {entry.title} already fetched is kept, and Resume "
                                  "continues from there.")
    except fetch.DownloadError as e:
        raise JobFailed(str(e)) from None
    ctx.progress(entry.total_bytes(), entry.total_bytes())
    return Outcome("done", f"{entry.title} is in {folder}.", result_path=Path(folder))


DOWNLOAD = JobKind(name=KIND, handler=_run, resumable=True, unit="bytes", device="net")


def may_start(who: Identity, settings: ClassSettings | None = None) -> bool:
    """May ``who`` start a download? The machine's user and teachers may; a student when the class allows it."""
    return who.teacher or (settings or load_settings()).students_may_download


def _jobs_of(store: Store, name: str) -> list[Job]:
    """The download jobs of entry ``name``, newest first."""
    return [j for j in store.jobs.list(kinds=[KIND], limit=10_000) if j.params.get("name") == name]


def download_job(store: Store, name: str) -> Job | None:
    """The latest download job of entry ``name`` (active or not), or None."""
    found = _jobs_of(store, name)
    return found[0] if found else None


def _request_key(store: Store, name: str) -> str:
    """The key that makes every request for ``name`` one job while it is active. It names the latest finished
    download of ``name`` too, so a request after a failed or stopped one queues a new job (the queue would
    otherwise answer a repeated request within its dedupe window with the old job)."""
    finished = [j.id for j in _jobs_of(store, name) if not j.active]
    return f"{KIND}:{name}:after:{max(finished, default=0)}"


def submit_download(store: Store, name: str, who: Identity = MACHINE, *, mirror: str | None = None,
                    settings: ClassSettings | None = None, start: bool = True) -> int | None:
    """Queue the download of catalogue entry ``name`` (or join the one queued or running) and return its job id;
    None when the files are already there. ``start``: start it at once if the ``net`` slot has room. Refused with :class:`DownloadRefused` offline, for an unknown name, and
    for a student when the class does not let students start downloads (joining a running one is allowed)."""
    from ..data import catalogue, fetch

    try:
        entry = catalogue.entry(name)
    except ValueError as e:
        raise DownloadRefused(str(e)) from None
    if catalogue.present(name):
        return None
    if fetch.offline():
        raise DownloadRefused(f"This lab is offline ({fetch.OFFLINE_ENV}=1): it never connects to the internet. "
                              + catalogue.describe_missing(name))
    active = [j for j in _jobs_of(store, name) if j.active]
    if active:
        return active[0].id
    if not may_start(who, settings):
        raise DownloadRefused(f"In this class only a teacher starts downloads, and {entry.title} is not being "
                              "downloaded now: ask your teacher (Teacher page › Prepare for class).")
    job_id, _ = scheduler.submit(store, JobRequest(
        kind=DOWNLOAD, name=f"download {entry.title}", params={"name": name, "mirror": mirror or ""}, owner=who,
        request_key=_request_key(store, name), work={"key": KIND, "units": entry.total_bytes()},
        max_queued_per_owner=None, start=start))
    return job_id


# --- what a class needs before its lesson ----------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """One catalogue entry as the Teacher page and ``datasets list`` show it."""

    name: str
    title: str
    kind: str  # "dataset" or "weights"
    bytes: int
    present: bool
    source: str  # the host its first URL is on
    job: Job | None  # its latest download job, if any
    reason: str = ""  # why the class needs it ("the class's datasets", "lesson cifar-depth"), for Prepare for class

    def to_dict(self) -> dict[str, Any]:
        job = self.job
        return {"name": self.name, "title": self.title, "kind": self.kind, "bytes": self.bytes,
                "size": format_bytes(self.bytes), "present": self.present, "source": self.source,
                "reason": self.reason,
                "job": None if job is None else {"id": job.id, "status": job.status, "progress": job.progress,
                                                 "total": job.total, "error": job.error}}


def _row(store: Store, name: str, reason: str = "") -> Wanted:
    from ..data import catalogue

    e = catalogue.entry(name)
    host = e.files[0].urls[0].split("/")[2] if e.files and e.files[0].urls else ""
    return Wanted(name, e.title, e.kind, e.total_bytes(), catalogue.present(name), host, download_job(store, name),
                  reason)


def status_rows(store: Store, names: Iterable[str] | None = None) -> list[Wanted]:
    """Every catalogue entry (or those named), with whether it is here and its latest download job."""
    from ..data import catalogue

    return [_row(store, n) for n in (catalogue.CATALOGUE if names is None else names)]


def _weights_of(presets: Iterable[str] | None) -> list[str]:
    """The weights entries the allowed presets can be fine-tuned from (all of them when any preset is allowed)."""
    from ..data import catalogue

    names = [n for n, e in catalogue.CATALOGUE.items() if e.kind == "weights"]
    if presets is None:
        return names
    allowed = set(presets)
    return [n for n in names if n.split("_")[0] in allowed and n.split("_")[0] in PRESETS]


def _datasets_of(datasets: Iterable[str] | None) -> list[str]:
    from ..data import catalogue

    names = [n for n, e in catalogue.CATALOGUE.items() if e.kind == "dataset"]
    return names if datasets is None else [n for n in names if n in set(datasets)]


def class_needs(store: Store, settings: ClassSettings | None = None) -> list[Wanted]:
    """Every dataset and weights file the class's bounds and its lessons allow, each once with why: what
    Prepare for class fetches before the lesson. A class without a dataset or preset allowlist allows them all; a
    lesson adds what it names (its datasets, and the ImageNet weights of its presets) within the class's bounds."""
    settings = settings or load_settings()
    allowed = _datasets_of(settings.bounds.datasets) + _weights_of(settings.bounds.presets)
    wanted: dict[str, str] = {}
    for lesson in list_lessons(settings):
        datasets = lesson.datasets if lesson.datasets is not None else lesson.bounds.datasets
        presets = lesson.presets if lesson.presets is not None else lesson.bounds.presets
        named = (_datasets_of(datasets) if datasets is not None else []) + \
            (_weights_of(presets) if presets is not None else [])
        for n in named:
            if n in allowed:  # a lesson is bounded by the class
                wanted.setdefault(n, f"lesson {lesson.id}")
    for n in allowed:
        wanted.setdefault(n, "the class's bounds")
    return [_row(store, n, why) for n, why in wanted.items()]


def prepare(store: Store, who: Identity, names: Iterable[str] | None = None,
            settings: ClassSettings | None = None) -> dict[str, int | None]:
    """Queue a download of every entry in ``names`` (default: :func:`class_needs`) that is missing: {name: job id,
    None when already here}. Only a teacher (or the machine) may (``NotAllowed``)."""
    if not who.teacher:
        raise NotAllowed("Only a teacher prepares the class's downloads.")
    settings = settings or load_settings()
    chosen = [w.name for w in class_needs(store, settings)] if names is None else list(names)
    return {n: submit_download(store, n, who, settings=settings) for n in chosen}

"""Whose turn it is and where a job fits: the queue's policy, as pure functions (no store, no processes).

:func:`turn_order` orders the queued jobs (fair turns between owners, per kind of device), :func:`place` finds
the slots one job would take, and :func:`pick` walks the order choosing which jobs start now. The store's claim
applies them inside its transaction (:func:`choose`, handed to :meth:`resnet_lab.store.jobs.JobStore.claim`),
and the forecast (:func:`resnet_lab.jobs.eta.plan`) replays claims with the same functions, so the place and
the start time a page shows are what the scheduler does. :func:`queue_order` lists a store's queued jobs in
turn order.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, TypeVar

from ..identity import LOCAL
from ..store import Job, Store, slot_class


def place(kind: str, n: int, capacity: Mapping[str, int], free: Mapping[str, int]) -> list[str] | None:
    """Where a job of ``n`` processes on ``kind`` of device would run now: one slot per process, or None.

    One process goes to the slot of its kind with the most room (the lowest-numbered on a tie). Several
    processes of one GPU job take that many *different* GPUs (one device per rank, as NCCL requires),
    the roomiest first; on the CPU they take that many lanes of the cpu slot.
    """
    order = list(capacity)
    room = sorted((s for s in capacity if slot_class(s) == kind and free[s] > 0),
                  key=lambda s: (-free[s], order.index(s)))
    if kind == "cuda" or n == 1:
        return room[:n] if len(room) >= n else None
    return [room[0]] * n if room and free[room[0]] >= n else None


@dataclass(frozen=True)
class Waiting:
    """What the turn order knows of a queued job: a real one, or the one a page would queue (id None)."""

    id: int | None
    owner: str
    device: str  # the kind of device it waits for: "cpu" or "cuda"
    world_size: int = 1  # lanes it needs at once
    queued_at: float = 0.0  # when it joined the queue last (math.inf: a job not queued yet, behind everything)
    at_back: bool = False  # moved to the back: it waits for every job queued before its queued_at
    estimate_s: float | None = None  # seconds of work, for forecasts (None: unknown)

    @classmethod
    def of(cls, job: Job) -> "Waiting":
        return cls(job.id, job.owner, job.device, job.world_size,
                   job.queued_at if job.queued_at is not None else job.created_at, job.at_back, job.estimate_s)

    @property
    def key(self) -> tuple[float, float]:
        """Its place among jobs that joined the queue: when, then its id (a job not queued yet last)."""
        return self.queued_at, math.inf if self.id is None else self.id


W = TypeVar("W", bound=Waiting)
Uncapped = Callable[[str], bool]  # owner key -> whether the class's cap on running jobs does not hold them


def machine_only(owner: str) -> bool:
    """The default :data:`Uncapped`: only the machine's own jobs (owner ``local``) pass the cap."""
    return owner == LOCAL


def _kind_order(queued: list[W], turns: Mapping[tuple[str, str], int]) -> list[W]:
    """:func:`turn_order` for the jobs of one kind of device."""
    queued = sorted(queued, key=lambda w: w.key)
    behind: list[W] = []  # moved to the back, and some job that was waiting at the move (queued earlier) still is
    mine: dict[str, list[W]] = {}  # owner -> their other jobs, in queue order
    for i, w in enumerate(queued):
        if w.at_back and i > 0:
            behind.append(w)
        else:
            mine.setdefault(w.owner, []).append(w)
    owners = sorted(mine, key=lambda o: (turns.get((mine[o][0].device, o), 0), mine[o][0].key))
    order: list[W] = []
    for k in range(max((len(v) for v in mine.values()), default=0)):
        order += [mine[o][k] for o in owners if k < len(mine[o])]
    for w in behind:  # the oldest move first, so a later move lands behind an earlier one
        last = max((i for i, o in enumerate(order) if o.key < w.key), default=-1)
        order.insert(last + 1, w)
    return order


def turn_order(queued: Iterable[W], turns: Mapping[tuple[str, str], int] | None = None) -> list[W]:
    """The order in which queued jobs get their turn: fair turns between owners, per kind of device.

    For each kind of device ("cpu", "cuda") on its own:

    1. each owner's jobs keep the order they joined the queue in (``queued_at``, then id);
    2. owners take turns: the one whose job started least recently on that kind of device goes first
       (``turns`` maps (device, owner) to a number that grows with every start; an owner never served
       there counts 0 and comes before everyone who was), ties broken by their first job's place in
       the queue;
    3. round k takes the k-th job of every owner who has one, in that order. A queues five jobs, then B
       one and C one, nobody served yet: A1 B1 C1 A2 A3 A4 A5. A job that starts makes its owner the
       most recently served, so the order of the jobs left is this list without it (the rounds rotate);
    4. a job moved to the back (``at_back``, ``queued_at`` = the time of the move) is put right behind
       the last job that was already waiting when it was moved: it starts after every one of them,
       whoever owns them. Jobs queued after the move keep their turns around it; once every job that
       was waiting at the move has started, it takes ordinary turns again (as a job queued at the move).

    The kinds' lists are merged by their next jobs' places in the queue (the order a claim reports).
    :meth:`JobStore.claim` starts jobs in this order (:func:`pick`), and the forecast
    (:func:`resnet_lab.jobs.eta.plan`) replays claims with the same two functions, so the place and the
    start time a page shows are what the scheduler does.
    """
    turns = turns or {}
    per_kind: dict[str, list[W]] = {}
    for w in queued:
        per_kind.setdefault(w.device, []).append(w)
    lines = [_kind_order(v, turns) for v in per_kind.values()]
    merged: list[W] = []
    heads = [0] * len(lines)
    while True:
        live = [i for i, line in enumerate(lines) if heads[i] < len(line)]
        if not live:
            return merged
        i = min(live, key=lambda j: lines[j][heads[j]].key)
        merged.append(lines[i][heads[i]])
        heads[i] += 1


def pick(order: Iterable[W], capacity: Mapping[str, int], free: Mapping[str, int], running: Mapping[str, int],
         max_running_per_owner: int | None = None, uncapped: Uncapped = machine_only) -> list[tuple[W, list[str]]]:
    """Which queued jobs start now, and on which slots: each job in ``order`` (see :func:`turn_order`) in
    turn is placed by :func:`place` on the ``free`` lanes. A job that does not fit waits, and so does every
    job behind it for the same kind of device (a small job never overtakes a big one waiting for its GPUs);
    a job for another kind of device may start. An owner with ``max_running_per_owner`` jobs running
    (``running``: owner -> jobs running now) is passed over, not waited for: their jobs keep their turns
    for later and everyone else's start. The cap is a student's: an owner ``uncapped`` says yes to (the class's
    teachers, :func:`resnet_lab.jobs.scheduler.uncapped_owners`; by default only the machine, ``local``) starts as
    soon as a slot is free, and still takes turns like everyone."""
    free = dict(free)
    running = dict(running)
    waiting: set[str] = set()  # kinds of device with a job waiting: those behind it wait too
    out: list[tuple[W, list[str]]] = []
    for w in order:
        if w.device in waiting:
            continue
        if max_running_per_owner is not None and running.get(w.owner, 0) >= max_running_per_owner and \
                not uncapped(w.owner):
            continue
        chosen = place(w.device, w.world_size, capacity, free)
        if chosen is None:
            waiting.add(w.device)
            continue
        for slot in chosen:
            free[slot] -= 1
        running[w.owner] = running.get(w.owner, 0) + 1
        out.append((w, chosen))
    return out


def choose(queued: Iterable[Job], turns: Mapping[tuple[str, str], int], capacity: Mapping[str, int],
           free: Mapping[str, int], running: Mapping[str, int],
           max_running_per_owner: int | None = None, uncapped: Uncapped = machine_only) -> list[tuple[Job, list[str]]]:
    """The claim's policy: which of the ``queued`` jobs start now, and on which slots (:func:`turn_order`, then
    :func:`pick`). The store calls it inside its claim transaction with what it read there."""
    jobs = {j.id: j for j in queued}
    order = turn_order([Waiting.of(j) for j in jobs.values()], turns)
    return [(jobs[w.id], chosen)
            for w, chosen in pick(order, capacity, free, running, max_running_per_owner, uncapped)]


def queue_order(store: Store, device: str | None = None) -> list[Job]:
    """The queued jobs (of one kind of device, or all) in the order their turns come (:func:`turn_order`);
    which of them start also depends on free slots and per-owner caps (see :func:`pick`)."""
    queued = {j.id: j for j in store.jobs.list(statuses=["queued"], device=device, limit=1_000_000)}
    return [queued[w.id] for w in turn_order([Waiting.of(j) for j in queued.values()], store.jobs.turns())]


def claim(store: Store, capacity: Mapping[str, int], max_running_per_owner: int | None = None,
          uncapped: Uncapped = machine_only) -> list[tuple[int, str]]:
    """Start queued jobs on free slots of ``capacity`` by this policy (:func:`choose`), none past
    ``max_running_per_owner`` running jobs per owner but those ``uncapped`` says yes to (teachers); returns
    [(job id, slot)] (see :meth:`resnet_lab.store.jobs.JobStore.claim`). Spawns nothing:
    :func:`resnet_lab.jobs.scheduler.pump` does."""
    return store.jobs.claim(capacity, functools.partial(choose, max_running_per_owner=max_running_per_owner,
                                                        uncapped=uncapped))

"""One queue for all background work, of any kind: it knows no kind of work by name.

- :mod:`.scheduler`: submit, pump (reap + claim + spawn), stop, resume, move to the back, delete (each naming who
  asks: only the owner or a teacher may); which jobs may resume (a failed one where its kind says what it saved
  is intact: :func:`resume_refusal`); the class's caps; the rule for "the worker is gone";
- :mod:`.slots`: the device slots (``cpu``, ``cuda:0`` …) and how many jobs each runs at once;
- :mod:`.worker`: the one worker harness, ``python -m resnet_lab.jobs.worker JOB_ID``;
- :mod:`.turns`: the fair-turns policy a claim applies (whose turn, where a job fits);
- :mod:`.handlers`: what a kind of job is (:class:`JobKind`, declared next to its handler outside this package,
  listed by the wiring module) and what a handler gets and returns; :mod:`.eta`: queue position and time estimates;
- :mod:`.follow`: the command line's "follow these jobs until they end".
The SQL lives in :mod:`resnet_lab.store.jobs`.
"""

from .handlers import JobKind
from .scheduler import (HEARTBEAT_S, STALE_AFTER_S, START_GRACE_S, JobRequest, QueueFull, check_room, delete, gone,
                        move_to_back, pid_alive, pump, queue_caps, reap, resume, resume_refusal, resumes_after_failure,
                        spawn, stop, submit)

__all__ = ["HEARTBEAT_S", "STALE_AFTER_S", "START_GRACE_S", "JobKind", "JobRequest", "QueueFull", "check_room",
           "delete", "gone", "move_to_back", "pid_alive", "pump", "queue_caps", "reap", "resume", "resume_refusal",
           "resumes_after_failure", "spawn", "stop", "submit"]

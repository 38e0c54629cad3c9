"""A challenge entry as background work: :func:`submit_entry` checks the run and queues ONE scoring job on the one
queue (the entry is written in the transaction that queues it, where the per-day limit is enforced); the job
(:data:`CHALLENGE_JOB`) loads the run's best checkpoint, predicts the hidden split once and records the public
and the private score. Never on a page's thread."""

from __future__ import annotations

import time
from typing import Any

import torch

from ...classroom.challenges import Challenge, EntryFacts, EntryRefused, check_entry, ensure_holdout, utc_day
from ...classroom.challenges_board import grades_csv, runs_csv
from ...identity import Identity
from ...jobs import JobRequest, scheduler
from ...jobs.handlers import Created, JobContext, JobFailed, JobKind, Outcome
from ...store import Store
from ...store.challenges import ChallengeStore
from .scoring import predict, score_halves


def submit_entry(store: Store, challenge: Challenge, run_id: int, who: Identity, now: float | None = None,
                 start: bool = True) -> int:
    """Enter ``who``'s run ``run_id`` into ``challenge`` and queue its scoring job; returns the entry's id.
    Refused (:class:`EntryRefused`, :class:`~resnet_lab.store.challenges.SubmissionRefused`, nothing queued) for a
    run outside the rules or over the per-day limit."""
    if isinstance(run_id, bool) or not isinstance(run_id, int):
        raise EntryRefused(f"a run id is a whole number, got {str(run_id)[:40]!r}")
    try:
        run = store.runs.get(run_id)
    except KeyError:
        raise EntryRefused(f"there is no run {run_id}") from None
    now = time.time() if now is None else now
    hold = ensure_holdout(challenge)
    facts = check_entry(challenge, run, who, hold, now, store.runs.last_values([run.id], "train_s").get(run.id))
    _, ids = scheduler.submit(store, JobRequest(
        CHALLENGE_JOB, f"challenge {challenge.id}: score run {run.id}", "auto",
        params={"challenge": challenge.id, "dataset": challenge.dataset, "metric": challenge.metric, "run": run.id},
        payload={"challenge": challenge, "run": run.id, "facts": facts, "now": now}, owner=who, start=start))
    return ids[0]


def _add_entry(con: Any, created: Created) -> list[int]:
    """The scoring job's ``on_submit``: its entry, written (or refused by the per-day limit) with the job."""
    p = created.request.payload
    challenge: Challenge = p["challenge"]
    facts: EntryFacts = p["facts"]
    who = created.request.owner
    entry = ChallengeStore.add_entry(con, challenge_id=challenge.id, run_id=p["run"], job_id=created.job_id,
                                     owner=who.owner, owner_name=who.name, day=utc_day(p["now"]), now=p["now"],
                                     per_day=challenge.per_day, params=facts.params, epochs=facts.epochs,
                                     skip=facts.skip)
    return [entry]


def score_run(run: Any, dataset: str, metric_name: str, device: str = "cpu") -> tuple[float, float]:
    """(public, private) score of ``run``'s best checkpoint on ``dataset``'s hidden split. Refuses a run created
    before the hidden split was cut (it may have trained on those images)."""
    from ...analysis.subject import from_run
    from ...data.holdout import find_holdout, load_hidden_split

    hold = find_holdout(dataset)
    if hold is None:
        raise JobFailed(f"{dataset} has no hidden test split: the challenge was not opened through the lab")
    if run.created_at < hold.created_at:
        raise JobFailed(f"run {run.id} was started before the hidden test split of {dataset} was cut, so it may have "
                        "trained on those images: it is not scored")
    subject = from_run(run)
    hidden = load_hidden_split(hold, subject.image_size)
    dev = torch.device(device if device != "cuda" or torch.cuda.is_available() else "cpu")
    model = subject.model.to(dev)
    pred = predict(model, hidden.x, subject.mean, subject.std, dev)
    return score_halves(pred, hidden, metric_name)


def run_scoring(ctx: JobContext) -> Outcome:
    """The handler: score the entry's run once on the hidden split and record both halves' scores."""
    store = ctx.store
    entry = store.challenges.entry_of_job(ctx.job.id)
    if entry.status == "scored":
        return Outcome("done", message="scored already")
    params = ctx.job.params
    ctx.progress(0, 1)
    try:
        public, private = score_run(store.runs.get(entry.run_id), str(params["dataset"]), str(params["metric"]),
                                    ctx.device)
    except Exception as e:
        store.challenges.set_failed(entry.id, str(e) if isinstance(e, JobFailed) else f"{type(e).__name__}: {e}")
        raise
    store.challenges.set_scores(entry.id, public, private, time.time())
    ctx.progress(1, 1)
    return Outcome("done")


CHALLENGE_JOB = JobKind("challenge", run_scoring, unit="entries", on_submit=_add_entry)
"""Scoring one challenge entry on the hidden test split (public and private halves), once."""


# --- grades ---------------------------------------------------------------------------------------------


def display_names(store: Store) -> dict[str, str]:
    """owner -> display name, from the class's people and the names jobs were queued under."""
    names = {j.owner: j.owner_name for j in store.jobs.list(limit=100_000) if j.owner_name}
    names.update({f"class:{p.id}": p.name for p in store.people.list()})
    return names


def grades(store: Store, challenge: Challenge) -> str:
    """The challenge's grades as CSV (one row per student, best private score)."""
    return grades_csv(store.challenges.entries(challenge.id))


def runs_table(store: Store, dataset: str | None = None) -> str:
    """Every student's runs (on ``dataset`` when given) as CSV."""
    runs = [r for r in store.runs.list(limit=100_000) if dataset is None or r.data.get("name") == dataset]
    return runs_csv(runs, display_names(store))


__all__ = ["CHALLENGE_JOB", "display_names", "grades", "run_scoring", "runs_table", "score_run", "submit_entry"]

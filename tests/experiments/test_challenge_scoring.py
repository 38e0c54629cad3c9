"""A challenge end to end on digits: a model trained on the visible part only (after the hidden split was cut) is
scored once on both halves of the hidden split; the per-day limit holds in the transaction that queues the job;
someone else's run, a run outside the constraints and a run older than the hidden split are refused before anything
is queued; the CLI's board and export. One test lets a real worker score an entry through the queue."""

import csv
import io
import os
import shutil
import signal
import time

import pytest

from resnet_lab import jobs
from resnet_lab.classroom.challenges import EntryRefused, open_challenge, parse_challenge_text
from resnet_lab.classroom.settings import ClassSettings
from resnet_lab.data.registry import DataConfig
from resnet_lab.experiments.challenges import submit_entry
from resnet_lab.identity import MACHINE, Identity
from resnet_lab.jobs import JobRequest, scheduler, worker
from resnet_lab.spec import ModelSpec
from resnet_lab.store import Store
from resnet_lab.store.challenges import SubmissionRefused
from resnet_lab.train.config import TrainConfig
from resnet_lab.train.handler import TRAIN, TrainingRuns
from resnet_lab.train.launcher import training_rows
from tests.helpers.cli import run_cli
from tests.helpers.homes import kill_workers
from tests.helpers.waiting import wait_for

ANN = Identity("class:1", "=Ann", source="class")
BOB = Identity("class:2", "Bob", source="class")
TINY = ModelSpec(stem="cifar", depths=(1, 1, 1), widths=(8, 16, 32), shortcut="A")
DEFINITION = '''id = "dig"
title = "Digits"
dataset = "digits"
deadline = 2099-01-01T00:00:00Z
per_day = 2
[constraints]
max_params = 50000
max_epochs = 3
'''
NO_SETTINGS = ClassSettings()


def train_now(store: Store, owner: Identity, epochs: int = 2, twin: bool = True, images: int = 600) -> list[int]:
    """One training job of a tiny ResNet (and its plain twin) on 8-px digits, run to its end in this process."""
    data = DataConfig(name="digits", image_size=8, augment=False, train_subset=images)
    train = TrainConfig(epochs=epochs, batch_size=32, lr=0.1, device="cpu")
    rows = training_rows(TINY, data, train, twin, None)
    job, ids = scheduler.submit(store, JobRequest(TRAIN, "t", "cpu", payload=TrainingRuns(tuple(rows), twins=twin),
                                                  owner=owner, start=False, max_queued_per_owner=None))
    assert jobs.turns.claim(store, {"cpu": 1}) == [(job, "cpu")]
    assert worker.run_job(job, store) == "done", store.jobs.get(job).error
    return ids


@pytest.fixture(scope="module")
def base_home(tmp_path_factory):
    """A lab home: Bob's run trained BEFORE the challenge opened, then the challenge (its hidden split cut), then
    Ann's ResNet and plain twin and Bob's 4-epoch run, all trained on what is left visible."""
    home = tmp_path_factory.mktemp("challenge_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RESNET_LAB_HOME", str(home))
        store = Store()
        early = train_now(store, BOB, epochs=1, twin=False, images=64)[0]
        time.sleep(0.01)
        open_challenge(store, parse_challenge_text(DEFINITION), MACHINE, NO_SETTINGS)
        ann = train_now(store, ANN)
        long = train_now(store, BOB, epochs=4, twin=False, images=64)[0]
        store.close()
    return home, {"early": early, "ann": ann[0], "ann_plain": ann[1], "long": long}


@pytest.fixture
def home(base_home, tmp_path, monkeypatch):
    src, ids = base_home
    dst = tmp_path / "home"
    shutil.copytree(src, dst)
    monkeypatch.setenv("RESNET_LAB_HOME", str(dst))
    store = Store()
    yield store, ids
    store.close()


def challenge(store):
    from resnet_lab.classroom.challenges import get_challenge

    return get_challenge(store, NO_SETTINGS, "dig")


def score_queued(store) -> None:
    """Run every queued scoring job to its end in this process."""
    for job, _slot in jobs.turns.claim(store, {"cpu": 4}):
        worker.run_job(job, store)


def test_a_run_trained_on_the_visible_part_is_scored_once_on_both_halves(home):
    store, ids = home
    c = challenge(store)
    entry = store.challenges.entry(submit_entry(store, c, ids["ann"], ANN, start=False))
    assert entry.status == "queued" and entry.owner_name == "=Ann" and entry.epochs == 2 and entry.skip
    score_queued(store)
    scored = store.challenges.entry(entry.id)
    assert scored.status == "scored" and scored.error is None
    assert 0.5 < scored.public_score <= 1.0 and 0.5 < scored.private_score <= 1.0  # ten classes: chance is 0.1
    assert store.jobs.get(scored.job_id).kind == "challenge"
    again = run_cli("challenge", "board", "dig")
    assert again.returncode == 0 and f"{scored.public_score:.4f}" in again.stdout and "ResNet" in again.stdout
    with pytest.raises(SubmissionRefused, match="submitted to this challenge already; it is scored once"):
        submit_entry(store, c, ids["ann"], ANN, start=False)


def test_the_per_day_limit_is_kept_in_the_transaction_that_queues_the_job(home):
    store, ids = home
    c = challenge(store)
    now = time.time()
    ann3 = train_now(store, ANN, epochs=1, twin=False, images=64)[0]
    submit_entry(store, c, ids["ann"], ANN, now=now, start=False)
    submit_entry(store, c, ids["ann_plain"], ANN, now=now, start=False)
    jobs_before = len(store.jobs.list())
    with pytest.raises(SubmissionRefused, match="you have made 2 submissions to this challenge today .* the limit "
                                                "is 2 a day"):
        submit_entry(store, c, ann3, ANN, now=now, start=False)
    assert len(store.jobs.list()) == jobs_before  # the refused entry's job was rolled back with it
    assert submit_entry(store, c, ann3, ANN, now=now + 86_400, start=False)  # tomorrow (UTC) it counts again


def test_someone_elses_run_a_run_outside_the_rules_and_an_old_run_are_refused(home):
    store, ids = home
    c = challenge(store)
    for run_id, who, said in ((ids["ann"], BOB, "is someone else's"),
                              (ids["long"], BOB, "Epochs 4 is above this challenge's bound: allowed 1–3."),
                              (ids["early"], BOB, "started before this challenge's hidden test split was cut"),
                              (999, BOB, "there is no run 999")):
        with pytest.raises(EntryRefused, match=said):
            submit_entry(store, c, run_id, who, start=False)
    assert store.challenges.entries("dig") == [] and store.jobs.list(kinds=["challenge"]) == []


def test_the_cli_exports_grades_and_runs_and_refuses_a_teacher_submitting_a_students_run(home, tmp_path):
    store, ids = home
    submit_entry(store, challenge(store), ids["ann"], ANN, start=False)
    score_queued(store)
    done = run_cli("challenge", "export", "dig", tmp_path / "grades.csv", "--runs", tmp_path / "runs.csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO((tmp_path / "grades.csv").read_text())))
    assert rows[0] == ["display_name", "best_private_score", "run_id", "parameters", "epochs", "submitted_at"]
    assert rows[1][0] == "'=Ann" and rows[1][2] == str(ids["ann"]) and len(rows) == 2
    runs = list(csv.reader(io.StringIO((tmp_path / "runs.csv").read_text())))
    assert {r[2] for r in runs[1:]} == {str(i) for i in ids.values()} and "'=Ann" in {r[0] for r in runs}
    refused = run_cli("challenge", "submit", "dig", "--run", ids["ann"])  # the CLI is the machine: not Ann
    assert refused.returncode == 2 and "someone else's" in refused.stderr
    listed = run_cli("challenge", "list")
    assert "dig" in listed.stdout and "open" in listed.stdout


@pytest.mark.process
def test_a_real_worker_scores_a_submission_through_the_queue_even_after_a_sigkill(home, monkeypatch):
    store, ids = home
    monkeypatch.setenv("RESNET_LAB_HEARTBEAT_S", "0.5")
    entry_id = submit_entry(store, challenge(store), ids["ann_plain"], ANN)  # start=True: pumped onto a worker
    # a worker SIGKILLed as it starts: the job is found interrupted, the entry waits, and Resume scores it
    job_id = store.challenges.entry(entry_id).job_id
    wait_for(lambda: store.jobs.get(job_id).pid, 30, what="the scoring worker to start")
    os.kill(store.jobs.get(job_id).pid, signal.SIGKILL)
    wait_for(lambda: store.jobs.get(job_id).status == "interrupted", 30, store=store,
             what="the killed scoring job to be found interrupted")
    assert store.challenges.entry(entry_id).status == "queued" and store.challenges.entry(entry_id).public_score is None
    jobs.resume(job_id, store, by=ANN)
    deadline = time.time() + 60
    while store.challenges.entry(entry_id).status == "queued" and time.time() < deadline:
        time.sleep(0.2)
        jobs.pump(store)
    entry = store.challenges.entry(entry_id)
    assert entry.status == "scored", (entry, store.jobs.get(entry.job_id).error)
    assert store.jobs.get(entry.job_id).status == "done" and entry.skip is False
    board = run_cli("challenge", "board", "dig", "--private", "--json")
    assert '"kind": "plain"' in board.stdout and f"{entry.private_score}" in board.stdout
    kill_workers(store)

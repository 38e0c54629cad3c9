"""A failed training job resumes from its runs' last checkpoints when they are intact — by the same Resume as a
stopped job (library, CLI, the job card) — and is refused, with which run and why, when they are not. No worker is
started here (the queue's pump is replaced): that a resumed failed job finishes with the numbers of an
uninterrupted run is tests/jobs/test_resume_failed_processes.py's."""

import pytest

from resnet_lab import ModelSpec, jobs
from resnet_lab.data.registry import DataConfig
from resnet_lab.identity import MACHINE, Identity, NotAllowed
from resnet_lab.jobs import scheduler
from resnet_lab.jobs.turns import claim
from resnet_lab.models import build_model
from resnet_lab.models.checkpoint import save_checkpoint
from resnet_lab.paths import run_dir
from resnet_lab.store import Store
from resnet_lab.train import launcher
from resnet_lab.train.config import TrainConfig
from resnet_lab.ui.job_card import resume_offer
from tests.helpers.homes import seed

TINY = ModelSpec(stem="cifar", depths=(1, 1), widths=(4, 8), shortcut="A", num_classes=3, in_channels=3)
DIGITS = DataConfig(name="digits", image_size=8, train_subset=256, augment=False)
QUICK = TrainConfig(epochs=2, batch_size=64, lr=0.05, device="cpu")
ADA = Identity("class:1", "Ada", source="class")
BOB = Identity("class:2", "Bob", source="class")


@pytest.fixture
def store(lab_home, monkeypatch):
    monkeypatch.setattr(scheduler, "pump", lambda store=None, *a, **k: [])  # queue it, start nothing
    s = Store()
    yield s
    s.close()


def failed_job(store, checkpoints=(4,), owner=MACHINE, kind="train"):
    """A training job (one run, or a run and its twin: one entry of ``checkpoints`` each) that failed after saving
    a "last" checkpoint at the step given (None: no checkpoint). Returns (job id, run ids)."""
    rows = launcher.training_rows(TINY, DIGITS, QUICK, twin=len(checkpoints) > 1)
    job, ids = store.jobs.create(kind, "t", "cpu", then=seed(runs=rows, partners=len(checkpoints) > 1), owner=owner)
    assert claim(store, {"cpu": 1}) == [(job, "cpu")]
    for rid, step in zip(ids, checkpoints):
        if step is not None:
            run = store.runs.get(rid)
            spec = ModelSpec.from_dict(run.spec)
            path = save_checkpoint(run_dir(rid), "last", build_model(spec),
                                   {"run_id": rid, "spec": run.spec, "step": step}, {"step": step})
            store.runs.update(rid, ckpt_last=str(path))
    assert store.jobs.finish(job, "failed", error="No space left on device while saving ...")
    return job, ids


def test_a_failed_job_with_intact_checkpoints_resumes_as_a_stopped_one_does(store):
    job, ids = failed_job(store, checkpoints=(4, 4))
    assert [r.status for r in store.runs.of_job(job)] == ["failed", "failed"]
    assert jobs.resume_refusal(store.jobs.get(job), store) is None
    assert resume_offer(store, store.jobs.get(job)) == (True, None)  # the job card offers Resume
    jobs.resume(job, store, by=MACHINE)
    again = store.jobs.get(job)
    assert (again.status, again.resumes, again.error) == ("queued", 1, None)
    assert [r.status for r in store.runs.of_job(job)] == ["queued", "queued"]
    assert claim(store, {"cpu": 1}) == [(job, "cpu")]  # and the worker resumes it: job.resumes and ckpt_last


@pytest.mark.parametrize("damage, why", [
    ("none saved", "saved no checkpoint before it failed: start it again"),
    ("torn weights", "does not read back (SafetensorError"),
    ("another model's weights", "does not read back (RuntimeError: Error(s) in loading state_dict"),
    ("manifest gone", "cannot be read (No such file or directory): start it again"),
])
def test_a_failed_job_without_an_intact_checkpoint_is_refused_with_which_run_and_why(store, damage, why):
    job, (rid,) = failed_job(store, checkpoints=(None,) if damage == "none saved" else (4,))
    folder = run_dir(rid)
    if damage == "torn weights":
        data = (folder / "last.safetensors").read_bytes()
        (folder / "last.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "another model's weights":
        save_checkpoint(folder, "last", build_model(TINY.replace(widths=(8, 16), num_classes=10, in_channels=1)),
                        {"run_id": rid, "step": 4}, {"step": 4})
    elif damage == "manifest gone":
        (folder / "last.json").unlink()
    before = store.jobs.get(job)
    with pytest.raises(ValueError, match="cannot resume") as refused:
        jobs.resume(job, store, by=MACHINE)
    assert str(refused.value).startswith(f"job {job} failed and cannot resume: ")
    assert why in str(refused.value) and (f"run #{rid}" in str(refused.value))
    assert store.jobs.get(job) == before and store.runs.get(rid).status == "failed"  # nothing changed
    can, said = resume_offer(store, before)
    assert can is False and why in said  # the card shows the reason instead of the button


def test_a_checkpoint_mended_after_a_refusal_is_read_again(store):
    job, (rid,) = failed_job(store)
    weights = run_dir(rid) / "last.safetensors"
    whole = weights.read_bytes()
    weights.write_bytes(whole[:100])
    assert "does not read back" in jobs.resume_refusal(store.jobs.get(job), store)
    weights.write_bytes(whole)  # the answer is kept per file as it is on disk: a new file, a new answer
    assert jobs.resume_refusal(store.jobs.get(job), store) is None


def test_twins_whose_checkpoints_are_at_different_steps_are_refused(store):
    job, _ = failed_job(store, checkpoints=(4, 8))
    assert "saved at different steps (4, 8): start it again" in jobs.resume_refusal(store.jobs.get(job), store)


def test_other_jobs_keep_their_rules_and_someone_elses_failed_job_is_not_theirs_to_resume(store):
    done, _ = store.jobs.create("train", "d", "cpu", then=seed(runs=launcher.training_rows(TINY, DIGITS, QUICK)))
    assert claim(store, {"cpu": 1}) == [(done, "cpu")] and store.jobs.finish(done, "done")  # nothing to resume
    assert jobs.resume_refusal(store.jobs.get(done), store) == (
        f"job {done} is done; only stopped, interrupted or failed jobs resume")
    landscape, _ = failed_job(store, kind="landscape")  # a kind that computes again rather than resumes
    assert "a failed landscape job does not resume: start it again" in jobs.resume_refusal(
        store.jobs.get(landscape), store)
    assert resume_offer(store, store.jobs.get(landscape)) == (False, None)  # no button, no reason shown
    adas, _ = failed_job(store, owner=ADA)
    with pytest.raises(NotAllowed):
        jobs.resume(adas, store, by=BOB)
    jobs.resume(adas, store, by=ADA)
    assert store.jobs.get(adas).status == "queued"

"""Same job, shared result: a job's fingerprint (everything that decides what it computes, not who asks or what
they call it) is stored when it is queued, and the newest finished job with the same one — whoever trained it —
is found, as long as its checkpoints are there."""

import pytest

from resnet_lab import ModelSpec
from resnet_lab.data.registry import DataConfig
from resnet_lab.identity import MACHINE, Identity
from resnet_lab.jobs import scheduler
from resnet_lab.store import Store
from resnet_lab.train import launcher
from resnet_lab.train.config import TrainConfig
from resnet_lab.train.finetune import FinetuneConfig

ADA = Identity("class:1", "Ada", source="class")
BOB = Identity("class:2", "Bob", source="class")
SPEC = ModelSpec(stem="cifar", depths=(1, 1, 1), widths=(4, 8, 8), shortcut="A")
DATA = DataConfig(name="digits", image_size=8, train_subset=64)
TRAIN = TrainConfig(epochs=1, batch_size=32, device="cpu", seed=3)


@pytest.fixture
def s(lab_home, monkeypatch):
    monkeypatch.setattr(scheduler, "pump", lambda store=None, capacity=None, max_running_per_owner=None: [])
    monkeypatch.setattr(scheduler, "queue_caps", lambda: (None, None))
    return Store()


def finish_with_checkpoints(s: Store, run_ids, files: bool = True) -> int:
    """Mark the job of these runs done, with a checkpoint file for each run (or only its path, ``files=False``)."""
    job = s.runs.get(run_ids[0]).job_id
    s.db.con.execute("UPDATE jobs SET status='running' WHERE id=?", (job,))
    assert s.jobs.finish(job, "done")
    for rid in run_ids:
        path = s.home / "runs" / str(rid) / "best.json"
        if files:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")
        s.runs.update(rid, ckpt_best=str(path))
    return job


def test_the_fingerprint_counts_what_decides_the_result_and_nothing_else():
    fp = launcher.fingerprint(SPEC, DATA, TRAIN)
    assert fp == launcher.fingerprint(ModelSpec.from_dict(SPEC.to_dict()), DataConfig.from_dict(DATA.to_dict()),
                                      TrainConfig.from_dict(TRAIN.to_dict()))
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert launcher.fingerprint(SPEC, DATA, TRAIN.replace(device="auto")) == fp  # auto is the cpu here
    others = [launcher.fingerprint(SPEC, DATA, TRAIN.replace(seed=4)),
              launcher.fingerprint(SPEC, DATA, TRAIN.replace(epochs=2)),
              launcher.fingerprint(SPEC, DATA, TRAIN.replace(lr=0.05)),
              launcher.fingerprint(SPEC, DataConfig(name="digits", image_size=16, train_subset=64), TRAIN),
              launcher.fingerprint(SPEC.replace(widths=(4, 8, 16)), DATA, TRAIN),
              launcher.fingerprint(SPEC, DATA, TRAIN, twin=True),
              launcher.fingerprint(SPEC, DATA, TRAIN, world_size=2),
              launcher.fingerprint(SPEC, DATA, TRAIN, kind="other"),
              launcher.fingerprint(None, DATA, TRAIN, finetune=FinetuneConfig(source="scratch:resnet20")),
              launcher.fingerprint(None, DATA, TRAIN, finetune=FinetuneConfig(source="scratch:resnet20",
                                                                              strategy="linear"))]
    assert len({fp, *others}) == len(others) + 1
    # fitted to the data first: the classes a spec was written with do not matter, the dataset's do
    assert launcher.fingerprint(SPEC.replace(num_classes=3), DATA, TRAIN) == fp
    with pytest.raises(ValueError, match="needs its spec"):
        launcher.fingerprint(None, DATA, TRAIN)


def test_a_queued_job_carries_its_fingerprint_and_owner(s):
    ids = launcher.submit(SPEC, DATA, TRAIN, twin=True, name="Ada's run", store=s, owner=ADA)
    job = s.jobs.get(s.runs.get(ids[0]).job_id)
    assert job.fingerprint == launcher.fingerprint(SPEC, DATA, TRAIN, twin=True)
    assert (job.owner, job.owner_name, [s.runs.get(i).owner for i in ids]) == (ADA.owner, "Ada", [ADA.owner] * 2)
    (ft,) = launcher.submit_finetune(FinetuneConfig(source="scratch:resnet20", strategy="full"), DATA, TRAIN,
                                     store=s, owner=BOB)
    ft_job = s.jobs.get(s.runs.get(ft).job_id)
    assert ft_job.owner == BOB.owner and ft_job.fingerprint == launcher.fingerprint(
        None, DATA, TRAIN, finetune=FinetuneConfig(source="scratch:resnet20", strategy="full"))
    assert launcher.submit(SPEC, DATA, TRAIN, store=s) and s.jobs.list()[0].owner == MACHINE.owner


def test_the_same_finished_job_is_found_whoever_trained_it_and_a_different_seed_is_not(s):
    assert launcher.shared_result(s, SPEC, DATA, TRAIN, twin=True) is None
    ids = launcher.submit(SPEC, DATA, TRAIN, twin=True, name="Ada's", store=s, owner=ADA)
    assert launcher.shared_result(s, SPEC, DATA, TRAIN, twin=True) is None  # queued: nothing to share yet
    job = finish_with_checkpoints(s, ids)
    found = launcher.shared_result(s, SPEC, DATA, TRAIN.replace(device="auto"), twin=True)
    assert found is not None and found.id == job and found.owner == ADA.owner
    assert launcher.shared_result(s, SPEC, DATA, TRAIN.replace(seed=4), twin=True) is None
    assert launcher.shared_result(s, SPEC, DATA, TRAIN) is None  # without the twin: another job
    # the newest of two such jobs; one whose checkpoint files are gone is passed over
    newer = finish_with_checkpoints(s, launcher.submit(SPEC, DATA, TRAIN, twin=True, store=s, owner=BOB))
    assert launcher.shared_result(s, SPEC, DATA, TRAIN, twin=True).id == newer
    (s.home / "runs" / str(s.runs.of_job(newer)[1].id) / "best.json").unlink()
    assert launcher.shared_result(s, SPEC, DATA, TRAIN, twin=True).id == job
    never_saved = finish_with_checkpoints(s, launcher.submit(SPEC, DATA, TRAIN, twin=True, store=s), files=False)
    assert launcher.shared_result(s, SPEC, DATA, TRAIN, twin=True).id == job != never_saved


def test_a_stopped_or_failed_job_is_not_a_result(s):
    ids = launcher.submit(SPEC, DATA, TRAIN, store=s, owner=ADA)
    job = s.runs.get(ids[0]).job_id
    s.jobs.stop(job, by=ADA)
    path = s.home / "runs" / str(ids[0]) / "last.json"
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    s.runs.update(ids[0], ckpt_last=str(path))
    assert launcher.shared_result(s, SPEC, DATA, TRAIN) is None
    assert s.jobs.done_by_fingerprint(launcher.fingerprint(SPEC, DATA, TRAIN)) == []


def test_a_user_dataset_counts_by_its_images_not_only_by_its_name(s, tmp_path):
    """Bob deletes his 'pets' and uploads other photos under the same name: Ada's run on the old ones is not
    his result. The same zip uploaded again is the same images (and the same result); a folder placed by hand
    counts by its files."""
    import io
    import os
    import zipfile

    from PIL import Image

    from resnet_lab.classroom.bounds import Bounds
    from resnet_lab.classroom.uploads import import_dataset, remove_dataset
    from resnet_lab.data.folders import dataset_contents, dataset_path

    def import_zip(path, name, owner):
        import_dataset(path, name, owner=owner, bounds=Bounds(), hflip=False, store=s)

    def remove_user_dataset(name, by):
        remove_dataset(name, by, store=s)

    def zip_of(path, color):
        with zipfile.ZipFile(path, "w") as zf:
            for cls in ("cats", "dogs"):
                for i in range(4):
                    buf = io.BytesIO()
                    Image.new("RGB", (40, 40), color if cls == "cats" else (0, 0, 9 * i)).save(buf, "PNG")
                    zf.writestr(f"{cls}/{i}.png", buf.getvalue())
        return path

    old, new = zip_of(tmp_path / "old.zip", (250, 0, 0)), zip_of(tmp_path / "new.zip", (0, 250, 0))
    data = DataConfig(name="folder:pets", image_size=8)
    import_zip(old, "pets", owner=ADA)
    ids = launcher.submit(SPEC, data, TRAIN, store=s, owner=ADA)
    finish_with_checkpoints(s, ids)
    assert launcher.shared_result(s, SPEC, data, TRAIN).id == s.runs.get(ids[0]).job_id
    first = launcher.fingerprint(SPEC, data, TRAIN)
    remove_user_dataset("pets", ADA)
    import_zip(new, "pets", owner=BOB)
    assert launcher.fingerprint(SPEC, data, TRAIN) != first
    assert launcher.shared_result(s, SPEC, data, TRAIN) is None  # other images: train them
    remove_user_dataset("pets", BOB)
    import_zip(old, "pets", owner=BOB)
    assert launcher.fingerprint(SPEC, data, TRAIN) == first  # the same zip: the same images
    assert launcher.shared_result(s, SPEC, data, TRAIN).id == s.runs.get(ids[0]).job_id
    # placed by hand (no zip kept): its files count; touching one is another dataset
    folder = dataset_path("pets")
    (folder / ".lab.json").unlink()
    by_hand = dataset_contents("pets")
    assert by_hand.startswith("files:") and launcher.fingerprint(SPEC, data, TRAIN) not in (first,)
    picture = folder / "cats" / "0.png"
    os.utime(picture, ns=(picture.stat().st_atime_ns, picture.stat().st_mtime_ns + 10**9))
    assert dataset_contents("pets") != by_hand

"""Imported datasets have owners: kept in the store (``store.datasets``), enforced on delete, counted for a
per-person upload cap. The dataset's files know nothing of them."""

import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from resnet_lab.classroom.bounds import Bounds, OutOfBounds
from resnet_lab.classroom.uploads import import_dataset, owner_upload_bytes, remove_dataset
from resnet_lab.data.folders import META_FILE, dataset_meta, dataset_path, datasets_root, list_user_datasets
from resnet_lab.identity import MACHINE, Identity, NotAllowed
from resnet_lab.store import Store

ANN = Identity("class:1", "Ann <b>", source="class")
BOB = Identity("class:2", "Bob", source="class")
TEACHER = Identity("teacher", "Teacher", teacher=True, source="teacher")
NO_CAP = Bounds()


@pytest.fixture
def store():
    s = Store()
    yield s
    s.close()


def zip_of(path: Path, n: int = 3, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for cls in ("cats", "dogs"):
            for i in range(n):
                buf = io.BytesIO()
                Image.new("RGB", (20, 20), (200, 10 * i, 0) if cls == "cats" else (0, 10 * i, 200)).save(buf, "PNG")
                zf.writestr(f"{cls}/{i}.png", buf.getvalue())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def upload(store, z: Path, name: str, owner: Identity = MACHINE, bounds: Bounds = NO_CAP, hflip: bool = False):
    return import_dataset(z, name, owner=owner, bounds=bounds, hflip=hflip, store=store)


def test_the_owner_is_kept_in_the_store_not_with_the_files(store, tmp_path):
    z = zip_of(tmp_path / "a.zip")
    upload(store, z, "anns", owner=ANN)
    assert store.datasets.owner_of("anns") == ("class:1", "Ann <b>")
    rec = store.datasets.get("anns")
    assert rec.upload_bytes == z.stat().st_size and rec.owner_name == "Ann <b>" and rec.created_at > 0
    raw = json.loads((dataset_path("anns") / META_FILE).read_text())
    assert not {"owner", "owner_name", "upload_bytes"} & set(raw)  # one home for owners: the store
    assert dataset_meta("anns") == {"hflip": False, "native_size": 20}  # what training reads is unchanged


def test_the_cli_and_single_user_mode_import_as_the_machine(store, tmp_path):
    upload(store, zip_of(tmp_path / "m.zip"), "mine")
    assert store.datasets.owner_of("mine") == ("local", MACHINE.name)


def test_datasets_without_a_record_belong_to_the_machine(store, tmp_path):
    upload(store, zip_of(tmp_path / "a.zip"), "old", owner=ANN)
    store.datasets.delete("old")  # placed by hand: files and no record
    assert store.datasets.owner_of("old") == ("local", "")
    with pytest.raises(NotAllowed):
        remove_dataset("old", ANN, store=store)  # the student who once uploaded it cannot prove it any more
    remove_dataset("old", TEACHER, store=store)
    assert list_user_datasets() == []
    with pytest.raises(ValueError, match="no user dataset named 'nope'"):
        remove_dataset("nope", TEACHER, store=store)


def test_an_upload_cannot_forge_its_owner(store, tmp_path):
    forged = json.dumps({"owner": "class:2", "owner_name": "Bob", "upload_bytes": 0}).encode()
    z = zip_of(tmp_path / "f.zip", extra={META_FILE: forged, f"cats/{META_FILE}": forged})
    upload(store, z, "forged", owner=ANN)
    assert store.datasets.owner_of("forged") == ("class:1", "Ann <b>")
    assert owner_upload_bytes(store, "class:2") == 0


def test_only_the_owner_or_a_teacher_may_delete_and_a_deleted_dataset_leaves_no_record(store, tmp_path):
    upload(store, zip_of(tmp_path / "a.zip"), "anns", owner=ANN)
    with pytest.raises(NotAllowed, match=r"You may not delete the dataset 'anns': it is Ann <b>'s"):
        remove_dataset("anns", BOB, store=store)
    assert list_user_datasets() == ["anns"] and dataset_path("anns").is_dir() and store.datasets.get("anns")
    with pytest.raises(TypeError):
        remove_dataset("anns", "class:2", store=store)  # a string is not an identity
    assert list_user_datasets() == ["anns"]
    remove_dataset("anns", ANN, store=store)
    assert list_user_datasets() == [] and store.datasets.get("anns") is None
    assert store.db.con.execute("SELECT COUNT(*) FROM datasets WHERE name='anns'").fetchone()[0] == 0
    upload(store, zip_of(tmp_path / "b.zip"), "bobs", owner=BOB)
    remove_dataset("bobs", TEACHER, store=store)
    upload(store, zip_of(tmp_path / "c.zip"), "cli", owner=MACHINE)
    remove_dataset("cli", MACHINE, store=store)
    assert list_user_datasets() == [] and store.datasets.list() == []


def test_delete_refuses_paths(store):
    with pytest.raises(ValueError):
        remove_dataset("../x", TEACHER, store=store)


def test_owner_upload_bytes_counts_each_owners_uploads(store, tmp_path):
    a1, a2, b1 = zip_of(tmp_path / "a1.zip"), zip_of(tmp_path / "a2.zip", n=5), zip_of(tmp_path / "b1.zip")
    upload(store, a1, "a1", owner=ANN)
    upload(store, a2, "a2", owner=ANN)
    upload(store, b1, "b1", owner=BOB)
    assert owner_upload_bytes(store, "class:1") == a1.stat().st_size + a2.stat().st_size
    assert owner_upload_bytes(store, BOB) == b1.stat().st_size
    assert owner_upload_bytes(store, "class:9") == 0
    remove_dataset("a2", ANN, store=store)
    assert owner_upload_bytes(store, ANN) == a1.stat().st_size


def test_a_record_whose_files_are_gone_does_not_count(store, tmp_path):
    z = zip_of(tmp_path / "a.zip")
    upload(store, z, "a1", owner=ANN)
    (datasets_root() / "a1").rename(tmp_path / "moved-away")  # deleted by hand
    assert owner_upload_bytes(store, ANN) == 0
    upload(store, z, "a1", owner=BOB)  # the name is free again: the old record is replaced
    assert store.datasets.owner_of("a1") == ("class:2", "Bob") and owner_upload_bytes(store, ANN) == 0


def test_a_failed_record_leaves_no_files(store, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store.datasets, "record", broken)
    with pytest.raises(OSError, match="disk full"):
        upload(store, zip_of(tmp_path / "a.zip"), "anns", owner=ANN)
    assert list_user_datasets() == []


def test_the_upload_cap_is_per_owner_and_checked_before_extracting(store, tmp_path):
    z = zip_of(tmp_path / "a.zip")
    size = z.stat().st_size
    bounds = Bounds(max_upload_mb=(2 * size + size // 2) / 2**20)  # room for two of these zips, not three
    upload(store, z, "a1", owner=ANN, bounds=bounds)
    upload(store, z, "a2", owner=ANN, bounds=bounds, hflip=True)
    with pytest.raises(OutOfBounds, match="above this class's bound"):
        upload(store, z, "a3", owner=ANN, bounds=bounds)
    assert list_user_datasets() == ["a1", "a2"]  # nothing extracted
    upload(store, z, "b1", owner=BOB, bounds=bounds)  # Bob has his own allowance
    upload(store, z, "t1", owner=TEACHER, bounds=bounds)  # a teacher is not capped
    upload(store, z, "t2", owner=TEACHER, bounds=bounds)
    upload(store, z, "t3", owner=TEACHER, bounds=bounds)
    assert store.datasets.owner_of("a2")[0] == "class:1" and dataset_meta("a2")["hflip"] is True
    remove_dataset("a1", ANN, store=store)
    upload(store, z, "a3", owner=ANN, bounds=bounds)  # room again after a delete
    with pytest.raises(TypeError):
        import_dataset(z, "x", owner="class:1", bounds=bounds, hflip=False, store=store)

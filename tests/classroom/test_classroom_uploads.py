"""Imported datasets have owners: kept with the dataset, enforced on delete, counted for a per-person upload cap."""

import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from resnet_lab.classroom.bounds import Bounds, OutOfBounds
from resnet_lab.classroom.uploads import import_dataset
from resnet_lab.data.folders import (
    META_FILE,
    dataset_meta,
    dataset_owner,
    dataset_ownership,
    dataset_path,
    datasets_root,
    import_zip,
    list_user_datasets,
    owner_upload_bytes,
    remove_user_dataset,
    write_dataset_meta,
)
from resnet_lab.identity import MACHINE, Identity, NotAllowed

ANN = Identity("class:1", "Ann <b>", source="class")
BOB = Identity("class:2", "Bob", source="class")
TEACHER = Identity("teacher", "Teacher", teacher=True, source="teacher")


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


def test_the_owner_is_kept_with_the_dataset(tmp_path):
    z = zip_of(tmp_path / "a.zip")
    import_zip(z, "anns", owner=ANN)
    assert dataset_owner("anns") == "class:1"
    assert dataset_ownership("anns") == ("class:1", "Ann <b>")
    raw = json.loads((dataset_path("anns") / META_FILE).read_text())
    assert raw["upload_bytes"] == z.stat().st_size and raw["owner_name"] == "Ann <b>"
    assert dataset_meta("anns") == {"hflip": False, "native_size": 20}  # what training reads is unchanged


def test_the_cli_and_single_user_mode_import_as_the_machine(tmp_path):
    import_zip(zip_of(tmp_path / "m.zip"), "mine")
    assert dataset_ownership("mine") == ("local", MACHINE.name)


def test_rewriting_the_record_keeps_the_owner(tmp_path):
    import_zip(zip_of(tmp_path / "a.zip"), "anns", owner=ANN)
    write_dataset_meta("anns", {"hflip": True})
    assert dataset_owner("anns") == "class:1" and dataset_meta("anns")["hflip"] is True


def test_datasets_without_a_recorded_owner_belong_to_the_machine(tmp_path):
    import_zip(zip_of(tmp_path / "a.zip"), "old", owner=ANN)
    (dataset_path("old") / META_FILE).unlink()  # imported before owners were kept, or placed by hand
    assert dataset_ownership("old") == ("local", "")
    (dataset_path("old") / META_FILE).write_text("{not json")
    assert dataset_owner("old") == "local"
    with pytest.raises(NotAllowed):
        remove_user_dataset("old", ANN)  # the student who once uploaded it cannot prove it any more
    remove_user_dataset("old", TEACHER)
    with pytest.raises(ValueError, match="no user dataset named 'nope'"):
        dataset_owner("nope")


def test_an_upload_cannot_forge_its_owner(tmp_path):
    forged = json.dumps({"owner": "class:2", "owner_name": "Bob", "upload_bytes": 0}).encode()
    import_zip(zip_of(tmp_path / "f.zip", extra={META_FILE: forged, f"cats/{META_FILE}": forged}), "forged", owner=ANN)
    assert dataset_ownership("forged") == ("class:1", "Ann <b>")
    assert owner_upload_bytes("class:2") == 0


def test_only_the_owner_or_a_teacher_may_delete(tmp_path):
    import_zip(zip_of(tmp_path / "a.zip"), "anns", owner=ANN)
    with pytest.raises(NotAllowed, match=r"You may not delete the dataset 'anns': it is Ann <b>'s"):
        remove_user_dataset("anns", BOB)
    assert list_user_datasets() == ["anns"] and dataset_path("anns").is_dir()
    with pytest.raises(TypeError):
        remove_user_dataset("anns", "class:2")  # a string is not an identity (and not the old datasets_dir)
    assert list_user_datasets() == ["anns"]
    remove_user_dataset("anns", ANN)
    assert list_user_datasets() == []
    import_zip(zip_of(tmp_path / "b.zip"), "bobs", owner=BOB)
    remove_user_dataset("bobs", TEACHER)
    import_zip(zip_of(tmp_path / "c.zip"), "cli", owner=MACHINE)
    remove_user_dataset("cli", MACHINE)
    assert list_user_datasets() == []


def test_delete_refuses_paths(tmp_path):
    with pytest.raises(ValueError):
        remove_user_dataset("../x", TEACHER)


def test_owner_upload_bytes_counts_each_owners_uploads(tmp_path):
    a1, a2, b1 = zip_of(tmp_path / "a1.zip"), zip_of(tmp_path / "a2.zip", n=5), zip_of(tmp_path / "b1.zip")
    import_zip(a1, "a1", owner=ANN)
    import_zip(a2, "a2", owner=ANN)
    import_zip(b1, "b1", owner=BOB)
    assert owner_upload_bytes("class:1") == a1.stat().st_size + a2.stat().st_size
    assert owner_upload_bytes(BOB) == b1.stat().st_size
    assert owner_upload_bytes("class:9") == 0
    remove_user_dataset("a2", ANN)
    assert owner_upload_bytes(ANN) == a1.stat().st_size


def test_a_dataset_without_a_recorded_size_counts_its_files(tmp_path):
    folder = datasets_root() / "byhand"
    (folder / "cats").mkdir(parents=True)
    (folder / "cats" / "a.png").write_bytes(b"x" * 1000)
    write_dataset_meta("byhand", {"owner": "class:1"})
    (folder / ".cache_32.pt").write_bytes(b"y" * 5000)  # the lab's own cache is not an upload
    assert owner_upload_bytes("class:1") == 1000


def test_the_upload_cap_is_per_owner_and_checked_before_extracting(tmp_path):
    z = zip_of(tmp_path / "a.zip")
    size = z.stat().st_size
    bounds = Bounds(max_upload_mb=(2 * size + size // 2) / 2**20)  # room for two of these zips, not three
    import_dataset(z, "a1", owner=ANN, bounds=bounds, hflip=False)
    import_dataset(z, "a2", owner=ANN, bounds=bounds, hflip=True)
    with pytest.raises(OutOfBounds, match="above this class's bound"):
        import_dataset(z, "a3", owner=ANN, bounds=bounds, hflip=False)
    assert list_user_datasets() == ["a1", "a2"]  # nothing extracted
    import_dataset(z, "b1", owner=BOB, bounds=bounds, hflip=False)  # Bob has his own allowance
    import_dataset(z, "t1", owner=TEACHER, bounds=bounds, hflip=False)  # a teacher is not capped
    import_dataset(z, "t2", owner=TEACHER, bounds=bounds, hflip=False)
    import_dataset(z, "t3", owner=TEACHER, bounds=bounds, hflip=False)
    assert dataset_owner("a2") == "class:1" and dataset_meta("a2")["hflip"] is True
    remove_user_dataset("a1", ANN)
    import_dataset(z, "a3", owner=ANN, bounds=bounds, hflip=False)  # room again after a delete
    with pytest.raises(TypeError):
        import_dataset(z, "x", owner="class:1", bounds=bounds, hflip=False)

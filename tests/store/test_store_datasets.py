"""Datasets' owners live in the store (schema 4, ``store.datasets``). A lab home from before, which kept each
dataset's owner in the dataset's own ``.lab.json``, keeps its owners when it is opened and upgraded."""

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from resnet_lab.classroom.uploads import owner_upload_bytes, remove_dataset
from resnet_lab.identity import Identity, NotAllowed
from resnet_lab.store import SCHEMA_VERSION, Store
from resnet_lab.store.db import SCHEMA, _statements

V2_FIXTURE = Path(__file__).parent / "fixtures" / "home_v2"  # see fixtures/README.md
ANN = Identity("class:1", "Ann <b>", source="class")
BOB = Identity("class:2", "Bob", source="class")
SHA = "ab" * 32


def schema_3_database(path: Path) -> None:
    """An empty database as the schema-3 lab made it: every table of today but ``datasets``."""
    con = sqlite3.connect(path)
    for stmt in _statements(SCHEMA):
        if "datasets" not in stmt:
            con.execute(stmt)
    con.execute("PRAGMA user_version=3")
    con.commit()
    con.close()


def old_dataset(home: Path, name: str, record: dict | str | None, image_bytes: int = 1000) -> Path:
    """A dataset folder as the schema-3 lab left it: its images, a cache, and its ``.lab.json`` (owner inside)."""
    folder = home / "datasets" / name
    (folder / "cats").mkdir(parents=True)
    (folder / "cats" / "a.png").write_bytes(b"x" * image_bytes)
    (folder / ".cache_32.pt").write_bytes(b"y" * 5000)
    if record is not None:
        (folder / ".lab.json").write_text(record if isinstance(record, str) else json.dumps(record))
    return folder


@pytest.fixture(params=["schema 3", "schema 2 fixture"])
def old_home(request, tmp_path, monkeypatch):
    home = tmp_path / "old" / "home"
    if request.param == "schema 2 fixture":
        shutil.copytree(V2_FIXTURE, home)
    else:
        home.mkdir(parents=True)
        schema_3_database(home / "runs.db")
    monkeypatch.setenv("RESNET_LAB_HOME", str(home))
    meta = {"version": 1, "hflip": False, "native_size": 20, "zip_sha256": SHA}
    old_dataset(home, "anns", {**meta, "owner": "class:1", "owner_name": "Ann <b>", "upload_bytes": 1234})
    old_dataset(home, "cli", {**meta, "owner": "local", "owner_name": "this machine", "upload_bytes": 99})
    old_dataset(home, "nosize", {**meta, "owner": "class:2", "owner_name": "Bob"}, image_bytes=700)
    old_dataset(home, "byhand", None)
    old_dataset(home, "damaged", "{not json")
    old_dataset(home, "Not A Name", {**meta, "owner": "class:1", "upload_bytes": 5})
    return home


def test_an_old_home_keeps_its_datasets_owners_after_the_upgrade(old_home):
    records = {p: p.read_bytes() for p in (old_home / "datasets").rglob(".lab.json")}
    s = Store(old_home / "runs.db")
    assert s.db.con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7
    assert [r.name for r in s.datasets.list()] == ["anns", "cli", "nosize"]
    assert s.datasets.owner_of("anns") == ("class:1", "Ann <b>") and s.datasets.get("anns").upload_bytes == 1234
    assert s.datasets.owner_of("cli") == ("local", "this machine")
    assert s.datasets.get("nosize").upload_bytes == 700  # no recorded size: its files (not the lab's cache)
    assert s.datasets.owner_of("byhand") == s.datasets.owner_of("damaged") == ("local", "")  # the machine's
    assert owner_upload_bytes(s, ANN) == 1234 and owner_upload_bytes(s, BOB) == 700
    assert {p: p.read_bytes() for p in (old_home / "datasets").rglob(".lab.json")} == records  # files untouched
    with pytest.raises(NotAllowed, match="it is Ann <b>'s"):
        remove_dataset("anns", BOB, store=s)  # who may delete it is what it was
    remove_dataset("anns", ANN, store=s)
    assert s.datasets.get("anns") is None and owner_upload_bytes(s, ANN) == 0
    s.close()
    s = Store(old_home / "runs.db")  # opened again: upgraded once, nothing read again
    assert [r.name for r in s.datasets.list()] == ["cli", "nosize"]
    s.close()


def test_a_new_home_has_an_empty_datasets_table(store_location):
    s = Store(store_location)
    assert s.datasets.list() == [] and s.datasets.owner_of("x") == ("local", "") and s.datasets.bytes_per_owner() == {}
    s.close()


def test_records_replace_count_and_delete(store_location):
    s = Store(store_location)
    s.datasets.record("a", ANN, 10)
    s.datasets.record("b", ANN, 5)
    s.datasets.record("c", BOB, 7)
    assert s.datasets.bytes_per_owner() == {"class:1": 15, "class:2": 7}
    assert s.datasets.bytes_per_owner(["a", "c", "gone"]) == {"class:1": 10, "class:2": 7}
    s.datasets.record("a", BOB, 3)  # uploaded again under its name
    assert s.datasets.owner_of("a") == ("class:2", "Bob") and s.datasets.bytes_per_owner() == {"class:1": 5,
                                                                                             "class:2": 10}
    assert s.datasets.delete("a") is True and s.datasets.delete("a") is False
    assert s.db.con.execute("SELECT COUNT(*) FROM datasets WHERE name='a'").fetchone()[0] == 0
    with pytest.raises(ValueError):
        s.datasets.record("d", ANN, -1)
    with pytest.raises(TypeError):
        s.datasets.record("d", "class:1", 1)
    s.close()

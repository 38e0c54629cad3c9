"""Challenges in the pages: a student sees only their own runs that fit offered, the ones that do not with why,
submits one (the per-day limit refused on the page), sees its scoring state and the public board while the
challenge is open, the private one after; the Teacher page's Challenges tab opens a challenge from its form and
shows the private board and the two CSV downloads. Names are text."""

from pathlib import Path

import pytest

from resnet_lab.classroom.challenges import open_challenge, parse_challenge_text
from resnet_lab.classroom.settings import load_settings
from resnet_lab.data.registry import DataConfig
from resnet_lab.identity import MACHINE, Identity
from resnet_lab.models.presets import PRESETS
from resnet_lab.store import Store
from resnet_lab.train import launcher
from resnet_lab.train.config import TrainConfig
from tests.app.test_classroom_pages import TEACHER_TOKEN, classroom, fresh, student  # noqa: F401 - a fixture
from tests.helpers.homes import seed

PAGE = "app_pages/challenge.py"


def table(at, column: str):
    """The one table on the page with ``column`` (AppTest finds dataframes by position, not by key)."""
    (found,) = [d.value for d in at.dataframe if column in d.value.columns]
    return found
OPEN = '''id = "dig"
title = "Digits <b>small</b>"
dataset = "digits"
deadline = 2099-01-01T00:00:00Z
per_day = 1
[constraints]
max_epochs = 2
'''
CLOSED = OPEN.replace('id = "dig"', 'id = "old"').replace("Digits <b>small</b>", "Old one").replace("2099", "2001")

pytestmark = pytest.mark.usefixtures("no_workers_left")


@pytest.fixture
def no_start(monkeypatch):
    """Entries stay queued: the queue is not pumped onto a worker (the page's own code runs in this process)."""
    monkeypatch.setattr("resnet_lab.jobs.scheduler.pump", lambda *a, **k: [])


def finished_pair(owner: Identity, home: Path, epochs: int) -> list[int]:
    """A finished ResNet and plain twin of ``owner`` on digits, with a checkpoint file (never read here)."""
    s = Store()
    rows = launcher.training_rows(PRESETS["resnet20"], DataConfig(name="digits", image_size=8, train_subset=64),
                                  TrainConfig(epochs=epochs, batch_size=32), twin=True)
    job, ids = s.jobs.create("train", "r", "cpu", then=seed(runs=rows, partners=True), owner=owner)
    assert s.jobs.finish(job, "done", only_if=("queued",))
    for rid in ids:
        ckpt = home / "runs" / str(rid) / "best.safetensors"
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        ckpt.write_bytes(b"not read")
        s.runs.update(rid, ckpt_best=str(ckpt), best={"val/acc": 0.5})
    return ids


def test_a_student_submits_a_run_that_fits_and_sees_the_public_then_the_private_board(classroom, no_start,
                                                                                       lab_home):
    store = Store()
    open_challenge(store, parse_challenge_text(OPEN), MACHINE, load_settings())
    ann, token = student("=Ann **bold**")
    bob, _ = student("Bob")
    fits = finished_pair(ann, lab_home, epochs=1)
    too_long = finished_pair(ann, lab_home, epochs=5)
    finished_pair(bob, lab_home, epochs=1)

    at = fresh({"me": token}, page=PAGE)
    assert at.title[0].value == "Challenges" and "Digits <b>small</b>" in [t.value for t in at.text]
    offered = at.selectbox(key="challenge_run")
    ids = [int(o.split()[0][1:]) for o in offered.options]
    assert sorted(ids) == fits  # only Ann's own runs that fit (newest first)
    refused = [t.value for t in at.text if t.value.startswith(f"#{too_long[0]} ")]
    assert refused and "Epochs 5 is above this challenge's bound: allowed 1–2." in refused[0]

    at.button(key="challenge_submit").click().run()
    assert not at.exception and any(f"Run #{ids[0]} submitted" in s.value for s in at.success), (
        [e.value for e in at.error], [s.value for s in at.success], at.main)
    (entry,) = store.challenges.entries("dig")
    assert (entry.run_id, entry.owner, entry.owner_name, entry.status) == (ids[0], ann.owner, ann.name, "queued")
    mine = table(at, "state")
    assert list(mine["state"]) == ["scoring: queued"]

    (left,) = at.selectbox(key="challenge_run").options  # the submitted run is offered no more
    at.selectbox(key="challenge_run").select(int(left.split()[0][1:])).run()
    at.button(key="challenge_submit").click().run()  # the twin: over today's limit of one
    assert any("the limit is 1 a day" in e.value for e in at.error) and len(store.challenges.entries("dig")) == 1

    store.challenges.set_scores(entry.id, 0.8125, 0.5625, 1.0)
    at = fresh({"me": token}, page=PAGE)
    board = table(at, "rank")
    assert list(board["accuracy"]) == [0.8125] and list(board["student"]) == ["=Ann **bold**"]  # as text
    assert list(board["kind"]) == ["plain" if ids[0] == fits[1] else "ResNet"]


def test_after_the_deadline_the_board_shows_private_scores_and_nothing_is_offered(classroom, no_start, lab_home):
    from resnet_lab.store.challenges import ChallengeStore

    store = Store()
    open_challenge(store, parse_challenge_text(CLOSED), MACHINE, load_settings())
    ann, token = student("Ann")
    (rid, _) = finished_pair(ann, lab_home, epochs=1)
    with store.db.tx() as con:
        eid = ChallengeStore.add_entry(con, challenge_id="old", run_id=rid, job_id=None, owner=ann.owner,
                                       owner_name="Ann", day="2000-12-31", now=1.0, per_day=1, params=1, epochs=1,
                                       skip=True)
    store.challenges.set_scores(eid, 0.9, 0.4, 2.0)
    at = fresh({"me": token}, page=PAGE)
    assert at.selectbox(key="challenge_pick").value == "old"
    assert list(table(at, "rank")["accuracy"]) == [0.4]
    assert not [b for b in at.button if b.key == "challenge_submit"]
    assert any("closed at 2001-01-01 00:00 UTC" in c.value for c in at.caption)


def test_the_teacher_opens_a_challenge_from_the_tab_and_gets_the_private_board_and_csvs(classroom, lab_home):
    folder = lab_home / "lessons" / "challenges"
    folder.mkdir(parents=True)
    (folder / "dig.toml").write_text(OPEN)
    (folder / "bad.toml").write_text(OPEN.replace('id = "dig"', 'id = "bad"').replace("per_day = 1", "per_day = 0"))
    at = fresh({"teacher": TEACHER_TOKEN}, page="app_pages/teacher.py")
    assert "Challenges" in [t.label for t in at.tabs]
    assert "Digits <b>small</b>" in [t.value for t in at.text]  # the file's challenge, its title as text
    said = [e.value.replace("\\", "") for e in at.error]  # escaped for Markdown: shown literally
    assert any("challenges/bad.toml: per_day must be a whole number from 1 to 100" in e for e in said), said
    assert any("hidden split: 359 images (179 public)" in c.value for c in at.caption)  # cut when first seen
    at.text_input(key="ch_form_id").input("shapes-1")
    at.text_input(key="ch_form_title").input("Shapes =1+1")
    at.selectbox(key="ch_form_dataset").select("shapes")
    at.number_input(key="ch_form_max_epochs").set_value(3)
    at.button(key="ch_form_open").click().run()
    assert not at.exception and any("Opened shapes-1" in s.value for s in at.success), [e.value for e in at.error]
    row = Store().challenges.get("shapes-1")
    assert row.definition["constraints"] == {"max_epochs": 3} and row.definition["dataset"] == "shapes"
    assert "Shapes =1+1" in [t.value for t in at.text]
    downloads = [el for el in at.get("download_button")]
    assert len(downloads) == 4  # two per challenge: grades and runs
    at.text_input(key="ch_form_id").input("shapes-1")  # the same id again: refused, said on the page
    at.button(key="ch_form_open").click().run()
    assert any("exists already" in e.value for e in at.error)


def test_the_teacher_form_offers_the_folders_imported_into_the_lab(classroom, lab_home):
    from resnet_lab.data.folders import datasets_root
    from tests.data.test_data_folders import make_dataset

    make_dataset(datasets_root() / "pets", {"cats": 10, "dogs": 6, "mice": 4})
    at = fresh({"teacher": TEACHER_TOKEN}, page="app_pages/teacher.py")
    assert "folder:pets" in at.selectbox(key="ch_form_dataset").options
    at.text_input(key="ch_form_id").input("pets-1")
    at.text_input(key="ch_form_title").input("Pets")
    at.selectbox(key="ch_form_dataset").select("folder:pets")
    at.button(key="ch_form_open").click().run()
    assert not at.exception and any("Opened pets-1: its hidden test split holds 4 images of folder:pets" in s.value
                                    for s in at.success), [e.value for e in at.error]
    assert Store().challenges.get("pets-1").definition["dataset"] == "folder:pets"

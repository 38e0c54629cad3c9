"""Challenges' rules without training: hostile TOML refused with the file and the key, which runs may enter (the
constraint named with the run's value, someone else's run, a run older than the hidden split), the leaderboard
(public while open, private after the deadline, ties by submission time) and the grades CSV (columns, formulas
neutralised)."""

import csv
import io
import time

import pytest

from resnet_lab.classroom.challenges import (
    ChallengeError,
    EntryRefused,
    check_entry,
    eligible_runs,
    get_challenge,
    list_challenges,
    parse_challenge_text,
    read_challenge_file,
)
from resnet_lab.classroom.challenges_board import GRADE_COLUMNS, grades_csv, leaderboard
from resnet_lab.classroom.settings import ClassSettings
from resnet_lab.data.holdout import Holdout
from resnet_lab.data.registry import DataConfig
from resnet_lab.identity import Identity
from resnet_lab.spec import ModelSpec
from resnet_lab.store import Run, Store
from resnet_lab.store.challenges import Entry
from resnet_lab.train.config import TrainConfig
from resnet_lab.train.launcher import fit_spec_to_data

ANN = Identity("class:1", "Ann")
BOB = Identity("class:2", "Bob")
GOOD = '''id = "dig"
title = "Digits, small"
dataset = "digits"
metric = "macro_f1"
deadline = 2099-01-01T00:00:00Z
per_day = 2
time_budget_s = 60
[constraints]
max_params = 30000
max_epochs = 5
max_image_size = 16
'''
HOLD = Holdout("digits", 0, (1, 2, 3, 4), (1, 3), created_at=1000.0, pool="p")
TINY = ModelSpec(stem="cifar", depths=(1, 1, 1), widths=(8, 16, 32), shortcut="A")


def run(owner=ANN, epochs=2, size=8, spec=TINY, created=2000.0, took=30.0, status="done", dataset="digits",
        finetune=None, rid=7) -> Run:
    data = DataConfig(name=dataset, image_size=size, augment=False)
    return Run(id=rid, job_id=1, partner_id=None, name="r", status=status,
               spec=fit_spec_to_data(spec, data).to_dict(), data=data.to_dict(),
               train=TrainConfig(epochs=epochs, batch_size=64, device="cpu").to_dict(), finetune=finetune or {},
               device="cpu", created_at=created, started_at=created, finished_at=created + took, error=None, step=1,
               total_steps=1, best={}, last={}, ckpt_best="x/best.json", ckpt_last=None, owner=owner.owner)


def test_a_good_file_reads_with_its_rules():
    c = parse_challenge_text(GOOD)
    assert (c.id, c.dataset, c.metric, c.per_day, c.time_budget_s) == ("dig", "digits", "macro_f1", 2, 60)
    assert c.constraints.max_params == 30000 and c.is_open() and c.shown_score() == "public"
    assert "Parameters: up to 30.00K" in c.describe()
    assert parse_challenge_text(GOOD.replace("per_day = 2\n", "")).per_day == 3  # the default


@pytest.mark.parametrize("change, said", [
    (('dataset = "digits"', 'dataset = "imagenet"'), "dataset='imagenet'"),
    (('dataset = "digits"', 'dataset = "folder:../x"'), "dataset='folder:../x'"),
    (('metric = "macro_f1"', 'metric = "auc"'), "metric='auc' is not a metric"),
    (("per_day = 2", "per_day = 0"), "per_day must be a whole number from 1"),
    (("per_day = 2", "per_day = true"), "per_day must be a whole number"),
    (("max_params = 30000", "max_params = -1"), "[constraints]: max_params"),
    (("max_epochs = 5", "max_batch_size = 5"), "[constraints]: unknown key(s) max_batch_size"),
    (('id = "dig"', 'id = "../etc"'), "is not a challenge id"),
    (("deadline = 2099-01-01T00:00:00Z", 'deadline = "soon"'), "deadline='soon' is not a date-time"),
    (('title = "Digits, small"', 'title = "a\\u0007b"'), "title has control characters"),
    (("per_day = 2", "colour = 2"), "unknown key(s) colour"),
])
def test_a_hostile_file_is_refused_naming_the_file_and_the_key(tmp_path, change, said):
    path = tmp_path / "challenges" / "dig.toml"
    path.parent.mkdir()
    path.write_text(GOOD.replace(*change))
    with pytest.raises(ChallengeError) as e:
        read_challenge_file(path, "dig")
    assert str(path) in str(e.value) and said in str(e.value)


def test_broken_toml_an_oversized_file_and_a_wrong_name_are_refused(tmp_path):
    for name, text, said in (("a.toml", "id = ", "is not valid TOML"), ("b.toml", "#" * 40_000, "is larger than"),
                             ("c.toml", GOOD, r"must equal the file.s name \(c\.toml\)")):
        (tmp_path / name).write_text(text)
        with pytest.raises(ChallengeError, match=said):
            read_challenge_file(tmp_path / name, name[:-5])
    (tmp_path / "d.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(ChallengeError, match="is not UTF-8"):
        read_challenge_file(tmp_path / "d.toml")


def test_files_beside_the_lessons_are_listed_and_bad_ones_named(tmp_path):
    folder = tmp_path / "lessons" / "challenges"
    folder.mkdir(parents=True)
    (folder / "dig.toml").write_text(GOOD)
    (folder / "bad.toml").write_text(GOOD.replace('id = "dig"', 'id = "bad"').replace("digits", "imagenet", 1))
    settings = ClassSettings(lessons_dirs=(tmp_path / "lessons",))
    store = Store()
    found, problems = list_challenges(store, settings)
    assert [c.id for c in found] == ["dig"] and list(problems) == [str(folder / "bad.toml")]
    assert get_challenge(store, settings, "dig").source == str(folder / "dig.toml")
    with pytest.raises(ChallengeError, match="there is no challenge 'nope' \\(challenges: dig\\)"):
        get_challenge(store, settings, "nope")
    with pytest.raises(ChallengeError, match="is not a challenge id"):
        get_challenge(store, settings, "../../etc/passwd")


def test_a_run_within_the_rules_enters_with_what_the_entry_records():
    facts = check_entry(parse_challenge_text(GOOD), run(), ANN, HOLD, now=3000.0)
    assert facts.epochs == 2 and facts.skip is True and 0 < facts.params <= 30000


@pytest.mark.parametrize("kw, said", [
    (dict(epochs=9), "Epochs 9 is above this challenge's bound: allowed 1–5."),
    (dict(size=32), "Image size 32 px is above this challenge's bound: allowed 8–16 px."),
    (dict(spec=TINY.replace(widths=(64, 128, 256))), "Parameters"),
    (dict(took=75.0), "Training time 75 s is above this challenge's bound: allowed up to 60 s."),
    (dict(owner=BOB), "run 7 is someone else's"),
    (dict(status="failed"), "run 7 is failed: only a finished run"),
    (dict(dataset="shapes", size=16), "run 7 was trained on shapes; this challenge is on digits"),
    (dict(created=999.0), "started before this challenge's hidden test split was cut"),
    (dict(finetune={"base": "x"}), "fine-tuned from other weights"),
])
def test_a_run_outside_the_rules_is_refused_saying_which_and_its_value(kw, said):
    with pytest.raises(EntryRefused) as e:
        check_entry(parse_challenge_text(GOOD), run(**kw), ANN, HOLD, now=3000.0)
    assert said in str(e.value)


def test_the_time_budget_reads_the_training_time_the_run_logged_not_its_first_start_to_its_end():
    """A run stopped for a night and resumed spans hours from its first start; it trained for its logged train_s."""
    c = parse_challenge_text(GOOD)
    resumed = run(took=8 * 3600.0)
    assert check_entry(c, resumed, ANN, HOLD, now=3000.0, train_s=42.0).epochs == 2
    with pytest.raises(EntryRefused, match="Training time 61 s is above this challenge's bound: allowed up to 60 s"):
        check_entry(c, run(took=10.0), ANN, HOLD, now=3000.0, train_s=61.0)
    offered = eligible_runs(c, [run(rid=1, took=8 * 3600.0), run(rid=2, took=8 * 3600.0)], ANN, HOLD, entered=set(),
                            now=3000.0, train_s={1: 42.0})
    assert [(r.id, why is None) for r, why in offered] == [(1, True), (2, False)]  # 2 logged none: first start to end


def test_nothing_enters_after_the_deadline_and_the_offer_says_why():
    c = parse_challenge_text(GOOD.replace("2099-01-01T00:00:00Z", "2001-01-01T00:00:00Z"))
    assert not c.is_open() and c.shown_score() == "private"
    with pytest.raises(EntryRefused, match="closed at 2001-01-01 00:00 UTC"):
        check_entry(c, run(), ANN, HOLD)
    offered = eligible_runs(parse_challenge_text(GOOD), [run(rid=1), run(rid=2, epochs=9), run(rid=3, owner=BOB),
                                                         run(rid=4)], ANN, HOLD, entered={4}, now=3000.0)
    assert [(r.id, why is None) for r, why in offered] == [(1, True), (2, False), (4, False)]


def entry(i, owner, name, public, private, at, status="scored", skip=True) -> Entry:
    return Entry(id=i, challenge_id="dig", run_id=100 + i, job_id=i, owner=owner, owner_name=name, day="2026-12-07",
                 submitted_at=at, status=status, public_score=public, private_score=private, scored_at=at + 1,
                 error=None, params=1000 * i, epochs=3, skip=skip)


ENTRIES = [entry(1, "class:1", "Ann", 0.80, 0.70, 10.0), entry(2, "class:1", "Ann", 0.90, 0.60, 20.0),
           entry(3, "class:2", "Bob", 0.90, 0.75, 15.0, skip=False), entry(4, "class:3", "Cy", 0.95, 0.9, 5.0,
                                                                           status="queued"),
           entry(5, "class:4", "=cmd|' /C calc'!A0", 0.5, 0.75, 30.0)]


def test_the_public_board_takes_each_students_best_public_entry_ties_by_time():
    rows = leaderboard(ENTRIES, "public")
    assert [(r.name, r.score, r.run_id, r.kind) for r in rows] == [
        ("Bob", 0.90, 103, "plain"), ("Ann", 0.90, 102, "ResNet"), ("=cmd|' /C calc'!A0", 0.5, 105, "ResNet")]
    assert rows[1].entries == 2  # Ann's two scored entries; Cy's queued one is on no board


def test_the_private_board_ranks_by_the_private_scores_ties_by_time():
    rows = leaderboard(ENTRIES, "private")
    assert [(r.rank, r.name, r.score, r.run_id) for r in rows] == [
        (1, "Bob", 0.75, 103), (2, "=cmd|' /C calc'!A0", 0.75, 105), (3, "Ann", 0.70, 101)]


def test_the_grades_csv_has_a_course_systems_columns_and_no_formula():
    text = grades_csv(ENTRIES)
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == GRADE_COLUMNS == ("display_name", "best_private_score", "run_id", "parameters", "epochs",
                                               "submitted_at")
    assert rows[1] == ["Bob", "0.75", "103", "3000", "3", "1970-01-01T00:00:15+00:00"]
    assert rows[2][0] == "'=cmd|' /C calc'!A0"  # neutralised: a spreadsheet shows it as text
    assert [r[0] for r in rows[1:]] == ["Bob", "'=cmd|' /C calc'!A0", "Ann"]
    for bad in ("+1", "-2", "@SUM(A1)"):
        one = grades_csv([entry(1, "class:9", bad, 0.1, 0.1, time.time())])
        assert list(csv.reader(io.StringIO(one)))[1][0] == "'" + bad

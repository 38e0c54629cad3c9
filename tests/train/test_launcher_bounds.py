"""The class's bounds are enforced where jobs are queued (launcher), not only by the pages' widgets."""

import pytest

from resnet_lab.classroom.bounds import Bounds, OutOfBounds
from resnet_lab.classroom.lessons import Lesson
from resnet_lab.data.registry import DataConfig
from resnet_lab.experiments.degradation import DegradationConfig, submit_degradation
from resnet_lab.identity import MACHINE, Identity
from resnet_lab.models.presets import PRESETS
from resnet_lab.store import Store
from resnet_lab.train import launcher
from resnet_lab.train.config import TrainConfig

STUDENT = Identity("class:1", "Ana")
TEACHER = Identity("teacher", "Teacher", teacher=True, source="teacher")
BOUNDS = "[bounds]\nmax_epochs = 3\nmax_image_size = 32\nmax_depth = 20\ndatasets = [\"shapes\"]\n"


@pytest.fixture
def store(lab_home):
    (lab_home / "classroom.toml").write_text(BOUNDS)
    s = Store()
    yield s
    s.close()


def rows(s):
    return (len(s.jobs.list()), len(s.runs.list()))


def test_a_student_outside_the_class_bounds_is_refused_with_the_range_and_nothing_is_queued(store):
    data = DataConfig(name="shapes", image_size=32, train_subset=64)
    with pytest.raises(OutOfBounds, match=r"Epochs 50 is above this class's bound: allowed 1–3"):
        launcher.submit(PRESETS["resnet20"], data, TrainConfig(epochs=50, device="cpu"), owner=STUDENT, store=store)
    with pytest.raises(OutOfBounds, match="Depth"):
        launcher.submit(PRESETS["resnet56"], data, TrainConfig(epochs=1, device="cpu"), owner=STUDENT, store=store)
    with pytest.raises(OutOfBounds, match="digits"):
        launcher.submit(PRESETS["resnet20"], DataConfig(name="digits", image_size=32), TrainConfig(epochs=1),
                        owner=STUDENT, store=store)
    assert rows(store) == (0, 0)


def test_teacher_and_machine_are_not_bounded_but_an_open_lesson_binds_everyone(store):
    data = DataConfig(name="shapes", image_size=32, train_subset=64)
    cfg = TrainConfig(epochs=5, device="cpu")
    launcher.submit(PRESETS["resnet20"], data, cfg, owner=TEACHER, store=store)
    launcher.submit(PRESETS["resnet20"], data, cfg, owner=MACHINE, store=store)
    assert rows(store) == (2, 2)
    lesson = Lesson(id="x", title="x", intro="", pages=(), bounds=Bounds(max_epochs=2), hide=frozenset(),
                    presets=None, datasets=None, path=None)
    with pytest.raises(OutOfBounds, match="allowed 1–2"):
        launcher.submit(PRESETS["resnet20"], data, cfg, owner=TEACHER, store=store, lesson=lesson)
    assert rows(store) == (2, 2)


def test_degradation_outside_the_bounds_queues_neither_pair(store):
    cfg = DegradationConfig(shallow=8, deep=56, data=DataConfig(name="shapes", image_size=32, train_subset=64),
                            train=TrainConfig(epochs=1, device="cpu"))
    with pytest.raises(OutOfBounds, match="Depth"):
        submit_degradation(cfg, store=store, owner=STUDENT)
    assert rows(store) == (0, 0)

"""Lessons: strict files, hostile ids refused, the lesson folders' order, and the two shipped lessons."""

import os

import pytest

from resnet_lab.classroom.bounds import Bounds
from resnet_lab.classroom.lessons import (
    CONTROLS,
    PAGE_IDS,
    Lesson,
    LessonError,
    effective_bounds,
    lesson_problems,
    list_lessons,
    load_lesson,
    parse_lesson,
)
from resnet_lab.classroom.settings import REPO_LESSONS, ClassSettings, load_settings
from resnet_lab.data.registry import DataConfig
from resnet_lab.experiments.degradation import DegradationConfig
from resnet_lab.identity import MACHINE, Identity
from resnet_lab.models.presets import PRESETS
from resnet_lab.train.config import TrainConfig

ROOT = REPO_LESSONS.parent
STUDENT = Identity("class:1", "Ann")
MINIMAL = 'id = "{id}"\ntitle = "T"\n[[pages]]\npage = "train"\ntext = "go"\n'


def settings_with(*dirs) -> ClassSettings:
    return ClassSettings(lessons_dirs=tuple(dirs))


def test_the_shipped_lessons_open():
    s = load_settings()
    lessons = {lesson.id: lesson for lesson in list_lessons(s)}
    assert {"why-skip-connections", "finetune-your-photos"} <= set(lessons)
    assert lesson_problems(s) == {}
    why = lessons["why-skip-connections"]
    assert why.title == "Why skip connections"
    assert why.page_ids == ("gradient_flow", "degradation", "lesion")
    assert all(len(p.text) > 200 for p in why.pages) and why.intro
    assert "He et al." in why.text_for("degradation") and "Veit" in why.text_for("lesion")
    assert why.next_page("gradient_flow") == "degradation" and why.next_page("lesion") is None
    ft = lessons["finetune-your-photos"]
    assert ft.page_ids == ("finetune", "predictions", "gradcam")
    assert ft.hides("optimizer") and not ft.hides("seed")
    assert ft.datasets == ("folder:*", "digits") and ft.bounds.max_upload_mb == 50
    assert ft.bounds.allows_preset("resnet18")
    assert load_lesson("why-skip-connections", s).path == REPO_LESSONS / "why-skip-connections.toml"


def test_the_degradation_pages_defaults_fit_inside_the_skip_connections_lesson():
    """A class pressing the defaults must not be refused (and then shares one result)."""
    bounds = load_lesson("why-skip-connections", load_settings()).bounds
    cfg = DegradationConfig()
    for depth in (cfg.shallow, cfg.deep):
        for skip in (True, False):
            spec = cfg.spec(depth).replace(skip=skip, num_classes=6)
            bounds.check_training(spec, cfg.data, cfg.train)
    with pytest.raises(ValueError, match="Depth 110"):
        bounds.check_training(PRESETS["resnet110"], cfg.data, cfg.train)


def test_the_finetune_lesson_allows_imagenet_resnet18_on_your_own_photos():
    bounds = load_lesson("finetune-your-photos", load_settings()).bounds
    data = DataConfig(name="folder:my-flowers", image_size=128, train_subset=500)
    bounds.check_training(PRESETS["resnet18"].replace(num_classes=5), data, TrainConfig(epochs=10, batch_size=32))
    with pytest.raises(ValueError, match="Dataset 'shapes'"):
        bounds.check_training(PRESETS["resnet18"], DataConfig(name="shapes", train_subset=100), TrainConfig())


@pytest.mark.parametrize("bad", ["../x", "..", "a/b", "/etc/passwd", "x" * 41, "", "Why", "a.toml", "a b", None, 3,
                                 "why-skip-connections\n", "%2e%2e", "a\\b"])
def test_hostile_ids_are_refused(tmp_path, bad):
    (tmp_path / "x.toml").write_text(MINIMAL.format(id="x"))
    inner = tmp_path / "inner"
    inner.mkdir()
    with pytest.raises(LessonError, match="not a lesson id"):
        load_lesson(bad, settings_with(inner))


def test_unknown_lesson_lists_the_known_ones(tmp_path):
    with pytest.raises(LessonError, match=r"no lesson 'nope' \(lessons: .*why-skip-connections"):
        load_lesson("nope", load_settings())
    with pytest.raises(LessonError, match=r"lessons: none"):
        load_lesson("nope", settings_with(tmp_path / "missing"))


def test_the_teachers_folder_comes_first(lab_home):
    (lab_home / "lessons").mkdir()
    (lab_home / "lessons" / "why-skip-connections.toml").write_text(
        MINIMAL.format(id="why-skip-connections").replace('title = "T"', 'title = "My own"'))
    s = load_settings()
    assert load_lesson("why-skip-connections", s).title == "My own"
    assert [lesson.id for lesson in list_lessons(s)].count("why-skip-connections") == 1


def test_a_lesson_file_is_cached_until_it_changes(tmp_path):
    p = tmp_path / "a.toml"
    p.write_text(MINIMAL.format(id="a"))
    s = settings_with(tmp_path)
    first = load_lesson("a", s)
    assert load_lesson("a", s) is first
    p.write_text(MINIMAL.format(id="a").replace('"T"', '"Changed"'))
    os.utime(p, ns=(0, 10**18))
    assert load_lesson("a", s).title == "Changed"


def parse(text: str) -> Lesson:
    return parse_lesson(text, "x.toml", expected_id="x")


@pytest.mark.parametrize("text, match", [
    (MINIMAL.format(id="x") + "colour = 'red'\n", None),  # after a table: belongs to [[pages]] -> unknown key there
    ('colour = "red"\n' + MINIMAL.format(id="x"), r"unknown key\(s\) colour"),
    (MINIMAL.format(id="y"), r"must equal the file's name \(x.toml\)"),
    (MINIMAL.format(id="x").replace('"train"', '"trian"'), r"page='trian' is not a page; choose one of home"),
    (MINIMAL.format(id="x") + '[[pages]]\npage = "train"\n', r"page 'train' is listed twice"),
    ('hide = ["optimiser"]\n' + MINIMAL.format(id="x"), r"unknown control\(s\) 'optimiser'"),
    ('hide = "seed"\n' + MINIMAL.format(id="x"), r"hide must be a list"),
    ('id = "x"\ntitle = "T"\n', r"pages is missing"),
    ('id = "x"\ntitle = "T"\npages = []\n', r"pages must be a list .* at least one"),
    ('title = "T"\n[[pages]]\npage = "train"\n', r"id is missing"),
    ('id = "x"\ntitle = ""\n[[pages]]\npage = "train"\n', r"title is empty"),
    ('id = "x"\ntitle = "T"\nintro = "' + "a" * 9000 + '"\n[[pages]]\npage = "train"\n', r"intro is 9,000 characters"),
    ('presets = ["resnet20"]\n' + MINIMAL.format(id="x") + '[bounds]\npresets = ["resnet56"]\n', r"set twice"),
    (MINIMAL.format(id="x") + '[bounds]\nmax_epochs = 0\n', r"\[bounds\]: max_epochs=0 is out of range"),
    (MINIMAL.format(id="x") + '[bounds]\nmax_epoch = 3\n', r"\[bounds\]: unknown key\(s\) max_epoch"),
    ('datasets = ["imagenet"]\n' + MINIMAL.format(id="x"), r"'imagenet' is not a dataset"),
    ('id = "x"\ntitle = "T"\n[[pages]]\npage = "train"\ntext = "a\\u0000b"\n', r"control characters"),
    ('id = "x"\ntitle = "T\n', r"not valid TOML"),
])
def test_invalid_lessons_are_refused_with_a_clear_message(text, match):
    with pytest.raises(LessonError, match=match or r"pages\[0\]: unknown key\(s\) colour") as e:
        parse(text)
    assert "x.toml" in str(e.value)


def test_a_lesson_parses_into_its_parts():
    lesson = parse('id = "x"\ntitle = "T <i>"\nintro = "hi"\nhide = ["seed", "device"]\npresets = ["resnet20"]\n'
                   'datasets = ["shapes"]\n[bounds]\nmax_epochs = 4\n[[pages]]\npage = "build"\ntext = "a"\n'
                   '[[pages]]\npage = "train"\ntext = "b"\n')
    assert lesson.title == "T <i>" and lesson.page_ids == ("build", "train") and lesson.text_for("home") is None
    assert lesson.hide == frozenset({"seed", "device"}) and lesson.presets == ("resnet20",)
    assert lesson.bounds == Bounds(max_epochs=4, presets=("resnet20",), datasets=("shapes",))
    with pytest.raises(ValueError, match="no control named"):
        lesson.hides("nope")


def test_oversized_and_broken_files(tmp_path):
    (tmp_path / "big.toml").write_text(MINIMAL.format(id="big") + "#" + "x" * 70_000 + "\n")
    (tmp_path / "bad.toml").write_text("id = ")
    (tmp_path / "ok.toml").write_text(MINIMAL.format(id="ok"))
    (tmp_path / "Not An Id.toml").write_text(MINIMAL.format(id="x"))
    s = settings_with(tmp_path)
    with pytest.raises(LessonError, match="larger than 65,536 bytes"):
        load_lesson("big", s)
    assert [lesson.id for lesson in list_lessons(s)] == ["ok"]
    assert set(lesson_problems(s)) == {"bad", "big"}


def test_effective_bounds():
    cls = ClassSettings(bounds=Bounds(max_epochs=20, max_depth=110))
    lesson = parse(MINIMAL.format(id="x") + "[bounds]\nmax_epochs = 8\n")
    assert effective_bounds(STUDENT, cls) == cls.bounds
    assert effective_bounds(STUDENT, cls, lesson) == Bounds(max_epochs=8, max_depth=110)
    assert effective_bounds(MACHINE, cls) == Bounds()  # a teacher is not bounded by the class
    assert effective_bounds(MACHINE, cls, lesson) == Bounds(max_epochs=8)  # but sees the lesson as the class does


def test_the_vocabulary():
    assert {"optimizer", "schedule", "device", "seed", "custom_model"} <= set(CONTROLS)
    assert all(isinstance(v, str) and v for v in CONTROLS.values())
    pages = {p.stem for p in (ROOT / "app_pages").glob("*.py")}
    assert set(PAGE_IDS) <= pages, "every lesson page id is an app page"

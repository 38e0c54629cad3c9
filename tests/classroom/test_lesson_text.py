"""Every shipped lesson asks only for what its own limits allow: a depth, a number of epochs or images, a batch
size or a model named in its text is inside the bounds the lesson sets (shown right above the text)."""

import re

import pytest

from resnet_lab.classroom.lessons import Lesson, load_lesson
from resnet_lab.classroom.settings import REPO_LESSONS, load_settings
from resnet_lab.models.presets import PRESETS

SHIPPED = sorted(p.stem for p in REPO_LESSONS.glob("*.toml"))

NUMBER = r"(\d[\d,]*)"
LIST = rf"{NUMBER}(?:(?:,| and| or| vs\.?)+ {NUMBER})*"  # "20", "20 and 56", "32, 44 and 56", "20 vs 56"
DEPTH_PATTERNS = (
    rf"\bdepths? (?:of )?{LIST}",  # "depth 20", "depths of 20 and 56"
    rf"\bslider (?:to|at) {LIST}",  # "move the slider to 56 and 110"
    rf"\b{LIST}[- ]layers?\b",  # "20 and 56 layers", "a 56-layer net"
    rf"\b{LIST} vs\.? {NUMBER}\b",  # "20 vs 56"
    r"\b(?:resnet|plain)-(\d+)\b",  # "ResNet-56", "plain-20": runs named by depth
)


def numbers(text: str, pattern: str) -> list[int]:
    """Every number in every match of ``pattern`` (case-insensitive), thousands separators dropped."""
    found = []
    for m in re.finditer(pattern, text, flags=re.IGNORECASE):
        found += [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", m.group(0))]
    return found


def texts(lesson: Lesson) -> str:
    return "\n".join([lesson.intro, *(p.text for p in lesson.pages)])


def depths_asked(text: str) -> list[int]:
    asked = [n for pattern in DEPTH_PATTERNS for n in numbers(text, pattern)]
    asked += [PRESETS[name].depth for name in re.findall(r"\b(?:resnet|plain)\d+\b", text.lower()) if name in PRESETS]
    return asked


@pytest.fixture(params=SHIPPED)
def lesson(request) -> Lesson:
    return load_lesson(request.param, load_settings())


def test_the_patterns_find_what_a_lesson_text_asks_for():
    text = ("Start at depth 20, then move the slider to 56 and 110. Keep **20 vs 56** and the default budget "
            "(shapes, 3,000 images, 8 epochs); plain nets of 20 and 56 layers; pick the resnet-56 run; resnet18.")
    assert sorted(set(depths_asked(text))) == [18, 20, 56, 110]
    assert numbers(text, rf"{NUMBER} (?:training )?images\b") == [3000]
    assert numbers(text, rf"{NUMBER} epochs?\b") == [8]


def test_every_depth_a_lesson_asks_for_is_inside_its_depth_bound(lesson):
    bound = lesson.bounds.max_depth
    asked = depths_asked(texts(lesson))
    if bound is not None:
        assert [d for d in asked if d > bound] == [], f"{lesson.id} asks for depths above its bound of {bound}"


def test_every_count_a_lesson_asks_for_is_inside_its_bounds(lesson):
    text = texts(lesson)
    for field, pattern in (("max_epochs", rf"{NUMBER} epochs?\b"),
                           ("max_train_images", rf"{NUMBER} (?:training )?images\b"),
                           ("max_batch_size", rf"\bbatch(?: size)? (?:of )?{NUMBER}"),
                           ("max_image_size", rf"{NUMBER} ?px\b")):
        bound = getattr(lesson.bounds, field)
        if bound is not None:
            assert [n for n in numbers(text, pattern) if n > bound] == [], f"{lesson.id}: {field} is {bound}"


def test_every_model_a_lesson_names_or_offers_is_allowed_by_its_bounds(lesson):
    named = {name for name in re.findall(r"\b(?:resnet|plain)\d+\b", texts(lesson).lower()) if name in PRESETS}
    for name in named | set(lesson.presets or ()):
        assert lesson.bounds.allows_preset(name), f"{lesson.id} names {name}, which it does not allow"
        lesson.bounds.check_spec(PRESETS[name])  # depth and parameters inside the bounds too

"""The lesion chart: a lesion that is not possible cannot be read as a value — it has no bar and no height, only
the word "n/a" at the baseline in its model's slot, with the reason on hover — while the measured drops are
the bars, exactly."""

import pytest

from resnet_lab.analysis.lesion import NOTE_NO_SKIP, NOTE_SHAPE, Lesion, LesionStudy
from resnet_lab.viz.experiments import NA_TEXT, lesion_figure

BLOCKS = ("layer1.0", "layer2.0", "layer3.0")
DOWN = {"layer2.0", "layer3.0"}


def study(label: str, skip: bool, drops: dict[str, float | None], kind: str = "branch") -> LesionStudy:
    """A study with the given drops per block (None: not possible, with the analysis' own reason)."""
    base = 0.9
    note = NOTE_SHAPE if kind == "branch" else NOTE_NO_SKIP
    rows = tuple(Lesion(b, kind, b in DOWN, None if d is None else base - d, d, "lesioned" if d is not None else note)
                 for b, d in drops.items())
    return LesionStudy(label=label, skip=skip, base_acc=base, n_images=100, rows=rows)


@pytest.fixture
def pair():
    return [study("res", True, {"layer1.0": 0.02, "layer2.0": 0.30, "layer3.0": -0.01}),
            study("pl", False, {"layer1.0": 0.60, "layer2.0": None, "layer3.0": None})]


def na_traces(fig):
    return [t for t in fig.data if t.name.endswith(": n/a")]


def test_not_possible_lesions_have_no_height_and_say_why(pair):
    fig = lesion_figure(pair, "branch")
    (na,) = na_traces(fig)  # only the plain net has lesions that are not possible
    assert na.type != "bar"  # a bar of any height looks like data
    assert list(na.x) == ["layer2.0", "layer3.0"]
    assert all(v == 0 for v in na.y)  # at the baseline: nothing to read off the axis
    assert list(na.text) == [NA_TEXT] * 2 and "text" in na.mode and "markers" not in na.mode
    assert list(na.customdata) == [NOTE_SHAPE] * 2 and "%{customdata}" in na.hovertemplate
    assert na.offsetgroup == next(t.offsetgroup for t in fig.data if t.name == "pl")  # in the plain net's slot
    assert fig.layout.scattermode == "group"  # ...which a scatter trace only takes in group mode


def test_the_bars_are_the_measured_drops_and_gaps_where_not_possible(pair):
    fig = lesion_figure(pair, "branch")
    bars = {t.name: t for t in fig.data if t.type == "bar"}
    assert set(bars) == {"res", "pl"}
    assert list(bars["res"].y) == pytest.approx([2.0, 30.0, -1.0])
    assert list(bars["pl"].y)[0] == pytest.approx(60.0) and list(bars["pl"].y)[1:] == [None, None]
    assert len(fig.layout.shapes) == len(DOWN)  # the downsampling blocks are shaded


def test_a_model_with_no_possible_lesion_shows_only_na():
    plain_skip = study("pl", False, dict.fromkeys(BLOCKS), kind="skip")
    fig = lesion_figure([study("res", True, {b: 0.01 for b in BLOCKS}, kind="skip"), plain_skip], "skip")
    (na,) = na_traces(fig)
    assert list(na.x) == list(BLOCKS) and all(v == 0 for v in na.y)
    assert list(na.customdata) == [NOTE_NO_SKIP] * 3
    assert all(v is None for v in next(t for t in fig.data if t.name == "pl").y)


def test_every_lesion_possible_means_no_na_trace(pair):
    assert na_traces(lesion_figure(pair[:1], "branch")) == []

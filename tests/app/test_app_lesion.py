"""The Lesion study page: its bars, table and sentence are lesion_study's numbers, computed outside the app,
for the run and its plain twin; the kind and image count widgets really change them."""

import json

import pytest

from resnet_lab.analysis import from_run
from resnet_lab.analysis.lesion import (NOTE_SHAPE, comparison_sentence, lesion_indices, lesion_study,
                                        random_deletions, summary_sentence)
from resnet_lab.data.registry import load_dataset
from resnet_lab.store import Store

PAGE = "app_pages/lesion.py"


def charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


@pytest.fixture
def outside(finished_run):
    """A function n -> [ResNet study, plain study] computed without the app, plus the subjects and data."""
    store = Store()
    subjects = [from_run(store.runs.get(i)) for i in finished_run]
    store.close()
    data = load_dataset(subjects[0].data)

    def studies(n):
        idx = lesion_indices(data.y_val, n)
        return [lesion_study(s.model, s.normalize(data.x_val[idx]), data.y_val[idx], label=s.label)
                for s in subjects]

    studies.subjects, studies.data = subjects, data
    return studies


def bars(fig: dict) -> dict[str, list]:
    return {t["name"]: t["y"] for t in fig["data"] if t["type"] == "bar" and not t["name"].endswith(": n/a")}


def assert_bars_are(fig: dict, studies, kind: str) -> None:
    shown = list(bars(fig).values())
    assert len(shown) == 2
    for ys, s in zip(shown, studies):
        want = [None if r.drop is None else 100 * r.drop for r in s.kind_rows(kind)]
        assert [None if v is None else pytest.approx(v, abs=1e-9) for v in ys] == want


def test_page_shows_the_lesion_study_of_the_run_and_its_twin(open_app_page, finished_run, outside):
    at = open_app_page(PAGE)
    assert not at.error and at.title[0].value == "Lesion study"
    assert at.selectbox(key="lz_run").value == finished_run[0]
    assert at.radio(key="lz_kind").value == "branch"
    n = min(1000, len(outside.data.y_val))
    studies = outside(n)
    (fig,) = charts(at)
    assert_bars_are(fig, studies, "branch")
    na = [t for t in fig["data"] if t["name"].endswith(": n/a")]
    assert len(na) == 1 and na[0]["x"] == ["layer2.0", "layer3.0"]  # the plain net's downsampling blocks
    assert na[0]["type"] != "bar" and na[0]["y"] == [0, 0] and na[0]["text"] == ["n/a", "n/a"]  # no height
    assert summary_sentence(studies, "branch") in [m.value for m in at.markdown]
    table = at.dataframe[0].value
    assert list(table["block"]) == studies[0].blocks
    assert list(table["ResNet accuracy (%)"]) == pytest.approx(
        [round(100 * r.acc, 2) for r in studies[0].kind_rows("branch")])
    # not possible: the cell is missing, drawn as "n/a" (not "None"), and the row says why
    assert at.dataframe[0].proto.placeholder == "n/a"
    missing = table["plain accuracy (%)"].isna() & table["plain drop (points)"].isna()
    assert list(table["block"][missing]) == ["layer2.0", "layer3.0"]
    assert f"“n/a”: plain: {NOTE_SHAPE} (layer2.0, layer3.0)." in [c.value for c in at.caption]  # said once, under it


def test_kind_and_image_count_recompute(open_app_page, finished_run, outside):
    at = open_app_page(PAGE)
    at.radio(key="lz_kind").set_value("skip").run()
    at.number_input(key="lz_n").set_value(60).run()
    assert not at.exception and not at.error
    studies = outside(60)
    (fig,) = charts(at)
    assert_bars_are(fig, studies, "skip")
    assert all(v is None for v in list(bars(fig).values())[1])  # a plain net has no skip to remove
    assert summary_sentence(studies, "skip") in [m.value for m in at.markdown]
    assert any("on 60 images" in c.value for c in at.caption)


def test_picking_the_plain_twin_still_compares_the_pair(open_app_page, finished_run, outside):
    at = open_app_page(PAGE)
    at.selectbox(key="lz_run").set_value(finished_run[1]).run()
    assert not at.exception
    names = list(bars(charts(at)[0]))
    assert len(names) == 2  # the ResNet first, its plain twin second
    assert names[0].startswith(f"#{finished_run[0]} ") and names[0].endswith("(ResNet)")
    assert names[1].startswith(f"#{finished_run[1]} ") and names[1].endswith("(plain)")


def test_several_blocks_at_once(open_app_page, finished_run, outside):
    at = open_app_page(PAGE)
    at.number_input(key="lz_n").set_value(80).run()
    at.toggle(key="lz_multi").set_value(True).run()
    assert not at.exception
    fig = charts(at)[1]
    lines = [t["y"] for t in fig["data"] if t.get("mode") == "lines+markers"]
    data, idx = outside.data, lesion_indices(outside.data.y_val, 80)
    assert len(lines) == 2
    for shown, s in zip(lines, outside.subjects):
        curve = random_deletions(s.model, s.normalize(data.x_val[idx]), data.y_val[idx], trials=5)
        assert shown == pytest.approx([100 * a for a in curve.mean_acc])


def test_a_second_session_reuses_the_finished_study(open_app_page, finished_run, outside, monkeypatch):
    first = open_app_page(PAGE)
    first.number_input(key="lz_n").set_value(70).run()  # an image count no other test asks for
    shown = charts(first)[0]
    import resnet_lab.analysis.lesion as lesion

    calls = []
    monkeypatch.setattr(lesion, "lesion_study", lambda *a, **k: calls.append(a) or lesion_study(*a, **k))
    second = open_app_page(PAGE)  # another browser tab: a new session on the same server
    second.number_input(key="lz_n").set_value(70).run()
    assert not second.exception and calls == []
    assert charts(second)[0] == shown
    second.radio(key="lz_kind").set_value("skip").run()  # not computed before: this session computes it
    assert not second.exception and len(calls) == 2
    assert_bars_are(charts(second)[0], outside(70), "skip")


def test_no_runs_yet_says_what_to_do(open_app_page):
    at = open_app_page(PAGE)
    assert any("No run has a checkpoint yet" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def _private_studies(ids, n):
    store = Store()
    subjects = [from_run(store.runs.get(i)) for i in ids]
    store.close()
    data = load_dataset(subjects[0].data)
    idx = lesion_indices(data.y_val, n)
    return [lesion_study(s.model, s.normalize(data.x_val[idx]), data.y_val[idx], label=s.label) for s in subjects]


def test_runs_at_chance_are_inconclusive_and_nothing_falls_apart(open_app_page, private_trained_home, run_numbers):
    store, ids = private_trained_home
    for rid in ids:
        run_numbers(store, rid, 0.17)  # 6 classes: chance is 16.7%; the loss ends where it began
    at = open_app_page(PAGE)
    at.number_input(key="lz_n").set_value(50).run()
    at.toggle(key="lz_multi").set_value(True).run()
    assert not at.exception and not at.error
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith("Inconclusive: these models did not learn (ResNet #")
    assert "val accuracy 17.0% vs 16.7% chance" in warning and "try " in warning
    text = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "falls apart" not in text and "Veit et al. found" not in text and "loses" not in text
    assert any("No conclusion: the models did not learn" in c.value for c in at.caption)
    assert summary_sentence(_private_studies(ids, 50), "branch") in [m.value for m in at.markdown]  # the numbers


def test_runs_that_learned_get_a_comparison_computed_from_the_study(open_app_page, private_trained_home,
                                                                    run_numbers):
    store, ids = private_trained_home
    for rid in ids:
        run_numbers(store, rid, 0.95, last_loss=0.05)
    at = open_app_page(PAGE)
    at.number_input(key="lz_n").set_value(50).run()
    at.toggle(key="lz_multi").set_value(True).run()
    assert not at.exception and not at.warning
    studies = _private_studies(ids, 50)
    assert comparison_sentence(studies, "branch") in [m.value for m in at.markdown]
    caption = next(c.value for c in at.caption if c.value.startswith("Mean accuracy over"))
    assert "Deleting 1 block" in caption and "falls apart" not in caption


def test_no_sentence_says_the_resnet_barely_moves_when_it_drops(open_app_page, finished_run, monkeypatch):
    """Every sentence that states a result is computed from it: with a ResNet that loses 35 points per deleted
    block on average (as a newcomer's run did), nothing on the page says its accuracy barely moves."""
    import dataclasses

    from resnet_lab.analysis import lesion

    real = lesion.lesion_study

    def damaged(*args, **kwargs):
        # the ResNet loses 35 points a block, the plain net 1 (its real drop, on the tiny pair, can be a gain: the
        # sentence would then say "changes ... by" with signs, which is not what this test reads)
        study = real(*args, **kwargs)
        drop = 0.35 if study.skip else 0.01
        rows = tuple(dataclasses.replace(r, drop=drop, acc=study.base_acc - drop) if r.drop is not None else r
                     for r in study.rows)
        return dataclasses.replace(study, rows=rows)

    monkeypatch.setattr(lesion, "lesion_study", damaged)
    at = open_app_page(PAGE)
    at.number_input(key="lz_n").set_value(33).run()  # an image count no other test asks for (results are shared)
    assert not at.exception
    text = " ".join(e.value for kind in ("markdown", "caption", "info") for e in getattr(at, kind))
    assert "costs the ResNet 35.0 points on average" in text  # the computed sentence
    assert not any(word in text for word in ("barely", "shrug")), text

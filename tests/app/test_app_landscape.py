"""The Loss landscape page: the cost estimate follows the settings, Start queues one background task (a
double-click too) and shows its progress, finished landscapes are drawn from their stored surfaces, and a
failed task says why."""

import json
import math
import time

import pytest

from resnet_lab import jobs
from resnet_lab.analysis.landscape import LandscapeParams, Surface
from resnet_lab.experiments.landscape import KIND, result_path, save_result

PAGE = "app_pages/landscape.py"


@pytest.fixture
def home(private_trained_home):
    """(store, [resnet id, plain id]) in a private copy of the trained home (see tests/conftest.py)."""
    return private_trained_home


def text(at) -> str:
    return " ".join(m.value for m in at.markdown) + " " + " ".join(c.value for c in at.caption)


def charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def surface(params: LandscapeParams, fn, label: str, skip: bool, run_id: int) -> Surface:
    c = params.coords()
    grid = [fn(a, 0.0) for a in c] if params.dims == 1 else [[fn(a, b) for a in c] for b in c]
    acc = [0.25] * len(c) if params.dims == 1 else [[0.25] * len(c) for _ in c]
    return Surface.from_dict({"label": label, "run_id": run_id, "skip": skip, "params": params.to_dict(),
                              "alphas": c, "betas": None if params.dims == 1 else c, "loss": grid, "acc": acc,
                              "center_loss": fn(0.0, 0.0), "center_acc": 0.25, "images": 64})


def finished_task(store, ids, params, surfaces, status="done") -> int:
    tid = store.jobs.create(KIND, "landscape", "cpu", run_id=ids[0], params={"runs": ids, **params.to_dict()})[0]
    path = save_result(result_path(ids[0], tid), surfaces, params, tid)
    store.jobs.finish(tid, status, only_if=["queued"], result_path=str(path))
    store.jobs.set_progress(tid, params.points * 2, params.points * 2)
    return tid


def test_the_estimate_follows_the_settings_and_start_queues_one_task(home, open_app_page):
    store, ids = home
    at = open_app_page(PAGE)
    assert "2 models × 121 points × 2 batches = 484 forward passes of 128 images ≈" in text(at)
    assert "None yet" in text(at)
    at.slider(key="ls_steps").set_value(3).run()
    at.slider(key="ls_batches").set_value(1).run()
    at.select_slider(key="ls_bs").set_value(32).run()
    assert "2 models × 9 points × 1 batch = 18 forward passes of 32 images" in text(at)
    at.radio(key="ls_dims").set_value("1D").run()
    at.toggle(key="ls_twin").set_value(False).run()
    assert "1 model × 3 points × 1 batch = 3 forward passes of 32 images" in text(at)
    at.slider(key="ls_batches").set_value(50).run()  # 50 × 32 > the 600 training images: fewer batches
    assert "1 model × 3 points × 19 batches = 57 forward passes" in text(at) and "only 600 images" in text(at)
    at.slider(key="ls_batches").set_value(1).run()
    at.radio(key="ls_dims").set_value("2D").run()
    at.toggle(key="ls_twin").set_value(True).run()
    assert not at.exception and not at.error

    at.button(key="ls_start").click().run()
    at.button(key="ls_start").click().run()  # a double-click is one task
    assert not at.exception and not at.error, [e.value for e in at.error]
    tasks = store.jobs.list(kinds=[KIND])
    assert len(tasks) == 1
    task = tasks[0]
    assert task.run_id == ids[0] and task.status in ("queued", "running", "done")
    assert task.params == {"runs": ids, "dims": 2, "steps": 3, "span": 1.0, "batches": 1, "batch_size": 32, "seed": 0}
    assert f"Landscape job #{task.id}" in text(at) and at.get("progress")
    at.button(key="ls_stop").click().run()  # the live panel's Stop
    assert not at.exception
    assert store.jobs.get(task.id).stop_requested or store.jobs.get(task.id).status in ("stopped", "done")
    deadline = time.time() + 120
    while store.jobs.get(task.id).active and time.time() < deadline:
        jobs.pump(store)
        time.sleep(0.2)
    assert store.jobs.get(task.id).status in ("stopped", "done")


def test_finished_landscapes_are_drawn_from_their_stored_surfaces(home, open_app_page):
    store, ids = home
    p2 = LandscapeParams(dims=2, steps=3, span=1.0, batches=1, batch_size=32)
    res2 = [surface(p2, lambda a, b: 0.2 + a * a + b * b, "#1 tiny (ResNet)", True, ids[0]),
            surface(p2, lambda a, b: 0.5 + 4 * abs(a) + b * b, "#2 tiny plain (plain)", False, ids[1])]
    t2 = finished_task(store, ids, p2, res2)
    p1 = LandscapeParams(dims=1, steps=5, span=2.0, batches=1, batch_size=32)
    res1 = [surface(p1, lambda a, b: 0.3 + a * a, "#1 tiny (ResNet)", True, ids[0]),
            surface(p1, lambda a, b: 0.6 + 2 * a * a, "#2 tiny plain (plain)", False, ids[1])]
    t1 = finished_task(store, ids, p1, res1)
    at = open_app_page(PAGE)
    assert at.selectbox(key="ls_result").value == t1  # newest first
    (fig,) = charts(at)
    lines = [t for t in fig["data"] if t.get("yaxis", "y") == "y"]
    assert [t["y"] for t in lines] == [list(s.loss) for s in res1]
    df = at.dataframe[0].value
    assert list(df["centre loss"]) == pytest.approx([0.3, 0.6])
    assert list(df["rise at ½ span"]) == pytest.approx([1.0, 2.0])  # ±1 along α: a² and 2a²

    at.selectbox(key="ls_result").set_value(t2).run()
    (fig,) = charts(at)
    contours = [t for t in fig["data"] if t["type"] == "contour"]
    assert len(contours) == 2
    for trace, s in zip(contours, res2):
        loss = [[10 ** v for v in row] for row in trace["z"]]
        assert all(a == pytest.approx(b, rel=1e-9) for a, b in zip(sum(loss, []), sum(map(list, s.loss), [])))
        assert trace["customdata"] == [list(r) for r in s.loss]
    assert [a["text"] for a in fig["layout"]["annotations"]] == [s.label for s in res2]
    at.radio(key="ls_kind").set_value("Surface").run()
    (fig,) = charts(at)
    assert [t["z"] for t in fig["data"] if t["type"] == "surface"] == [[list(r) for r in s.loss] for s in res2]

    # the plain twin's page lists the same landscapes (they slice both models)
    at.selectbox(key="ls_run").set_value(ids[1]).run()
    assert not at.exception
    options = at.selectbox(key="ls_result").options
    assert len(options) == 2 and options[0].startswith(f"#{t1} · 1D") and options[1].startswith(f"#{t2} · 2D")


def test_a_failed_task_says_why_and_a_partial_result_is_marked(home, open_app_page):
    store, ids = home
    tid = store.jobs.create(KIND, "landscape", "cpu", run_id=ids[0],
                            params={"runs": ids, **LandscapeParams(steps=3).to_dict()})[0]
    store.jobs.finish(tid, "failed", error="RuntimeError: out of memory", only_if=["queued"])
    p = LandscapeParams(dims=2, steps=3)
    nan = math.nan
    partial = [surface(p, lambda a, b: nan if b > 0 else 1.0 + a * a, "#1 tiny (ResNet)", True, ids[0])]
    partial = [Surface(**{**partial[0].__dict__, "complete": False})]
    finished_task(store, ids, p, partial, status="stopped")
    at = open_app_page(PAGE)
    at.session_state["ls_task"] = tid
    at.run()
    assert any("out of memory" in e.value for e in at.error)
    assert at.selectbox(key="ls_result").options[0].endswith("partial (stopped)")
    assert "points it did not reach are left blank" in text(at)
    (fig,) = charts(at)
    z = [t for t in fig["data"] if t["type"] == "contour"][0]["z"]
    assert z[2] == [None, None, None] and all(v is not None for v in z[0])


def _pair_1d(store, ids, res_fn, plain_fn) -> int:
    p1 = LandscapeParams(dims=1, steps=5, span=2.0, batches=1, batch_size=32)
    return finished_task(store, ids, p1, [surface(p1, res_fn, "#1 tiny (ResNet)", True, ids[0]),
                                          surface(p1, plain_fn, "#2 tiny plain (plain)", False, ids[1])])


def test_basins_of_runs_at_chance_are_inconclusive(home, open_app_page, run_numbers):
    store, ids = home
    for rid in ids:
        run_numbers(store, rid, 0.17)
    _pair_1d(store, ids, lambda a, b: 0.3 + a * a, lambda a, b: 0.6 + 2 * a * a)
    at = open_app_page(PAGE)
    assert not at.exception
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith("Inconclusive: these models did not learn (ResNet #")
    assert "flatter" not in text(at) and "Li et al. found" in text(at)  # only the intro, which cites the paper


def test_the_basin_caption_is_computed_from_the_surfaces(home, open_app_page, run_numbers):
    store, ids = home
    for rid in ids:
        run_numbers(store, rid, 0.95, last_loss=0.05)
    _pair_1d(store, ids, lambda a, b: 0.3 + a * a, lambda a, b: 0.6 + 2 * a * a)  # rises 1 and 2 at ±1
    at = open_app_page(PAGE)
    assert not at.exception and not at.warning
    assert ("At ±1 along the directions the plain net's loss rises by 2 and the ResNet's by 1: the ResNet sits in "
            "the wider, flatter basin (2× smaller rise), as Li et al. found for nets with skip connections."
            ) in [m.value for m in at.markdown]
    _pair_1d(store, ids, lambda a, b: 0.3 + 3 * a * a, lambda a, b: 0.6 + a * a)  # newest first: the reverse
    at = open_app_page(PAGE)
    assert any("the plain net sits in the wider, flatter basin (3× smaller rise), the opposite of Li et al.'s"
               in m.value for m in at.markdown)

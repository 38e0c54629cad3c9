"""The Loss landscape page: the cost estimate follows the settings, Start queues one background task (a
double-click too) and shows its progress, finished landscapes are drawn from their stored surfaces, and a
failed task says why."""

import json
import math

import pytest

from resnet_lab.analysis.landscape import LandscapeParams, Surface
from resnet_lab.experiments.landscape import INTERPOLATION, KIND, result_path, save_result
from resnet_lab.ui.common import plain
from tests.helpers.homes import seed
from tests.helpers.waiting import wait_done, wait_job

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
    tid = store.jobs.create(KIND, "landscape", "cpu", then=seed(run_id=ids[0]),
                            params={"runs": ids, **params.to_dict()})[0]
    path = save_result(result_path(ids[0], tid), surfaces, params, tid)
    store.jobs.finish(tid, status, only_if=["queued"], result_path=str(path))
    store.jobs.set_progress(tid, params.points * 2, params.points * 2)
    return tid


def test_the_estimate_follows_the_settings_and_start_queues_one_task(home, open_app_page):
    store, ids = home
    at = open_app_page(PAGE)
    assert "2 models × 121 points × 2 batches = 484 forward passes of 128 images ≈" in text(at)
    assert "Nothing yet" in text(at)
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
    assert task.params == {"runs": ids, "mode": "slice", "dims": 2, "steps": 3, "span": 1.0, "batches": 1,
                           "batch_size": 32, "seed": 0, "directions": "random"}
    assert f"Landscape job #{task.id}" in text(at) and at.get("progress")
    at.button(key=f"ls_stop_{task.id}").click().run()  # the live panel's Stop
    assert not at.exception
    assert store.jobs.get(task.id).stop_requested or store.jobs.get(task.id).status in ("stopped", "done")
    assert wait_job(store, task.id).status in ("stopped", "done")


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
    assert list(df["centre loss"]) == ["0.3000", "0.6000"]
    assert list(df["rise at ½ span"]) == ["1.0000", "2.0000"]  # ±1 along α: a² and 2a²

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
    tid = store.jobs.create(KIND, "landscape", "cpu", then=seed(run_id=ids[0]),
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
    assert plain("At ±1 along the directions the plain net's loss rises by 2 and the ResNet's by 1: the ResNet sits "
                 "in the wider, flatter basin (2× smaller rise), as Li et al. found for nets with skip connections.",
                 2000) in [m.value for m in at.markdown]
    _pair_1d(store, ids, lambda a, b: 0.3 + 3 * a * a, lambda a, b: 0.6 + a * a)  # newest first: the reverse
    at = open_app_page(PAGE)
    assert any(plain("the plain net sits in the wider, flatter basin (3× smaller rise), the opposite of Li et al.'s",
                     2000) in m.value for m in at.markdown)


# --- the training path, interpolation, the table, the page's shape ------------------------------------------


@pytest.fixture(scope="module")
def kept_source(tmp_path_factory):
    from tests.helpers.homes import train_keeping_weights

    home = tmp_path_factory.mktemp("kept_home")
    return home, train_keeping_weights(home)


@pytest.fixture
def kept(kept_source, tmp_path, monkeypatch):
    """(store, [resnet id, plain id]) in a private copy of a home whose runs kept their weights every 3 steps."""
    from resnet_lab.store import Store
    from tests.helpers.homes import kill_workers, private_home

    src, ids = kept_source
    private_home(src, tmp_path / "kept")
    monkeypatch.setenv("RESNET_LAB_HOME", str(tmp_path / "kept"))
    monkeypatch.setenv("RESNET_LAB_HEARTBEAT_S", "0.5")
    store = Store()
    yield store, ids
    kill_workers(store)
    store.close()


def test_the_training_path_is_drawn_for_a_run_that_kept_its_weights(kept, open_app_page):
    from resnet_lab.experiments.landscape import kept_steps, load_result

    store, ids = kept
    at = open_app_page(PAGE)
    at.radio(key="ls_dirs").set_value("Training path (PCA)").run()
    assert not at.info and at.radio(key="ls_dims").disabled  # both runs have a path; the path needs 2D
    at.slider(key="ls_steps").set_value(3).run()
    at.slider(key="ls_batches").set_value(1).run()
    at.select_slider(key="ls_bs").set_value(16).run()
    at.button(key="ls_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (task,) = store.jobs.list(kinds=[KIND])
    assert task.params["directions"] == "pca" and task.params["mode"] == "slice"
    task = wait_done(store, task.id)
    at.run()
    assert at.selectbox(key="ls_result").value == task.id
    (fig,) = charts(at)
    paths = [t for t in fig["data"] if t.get("name") == "training path"]
    result = load_result(task.result_path)
    assert len(paths) == 2
    for trace, s, rid in zip(paths, result.surfaces, ids):
        assert trace["customdata"] == kept_steps(rid) == list(s.path.steps)
        assert trace["x"] == pytest.approx(list(s.path.alphas)) and trace["y"] == pytest.approx(list(s.path.betas))
        assert trace["text"][0] == "start (step 0)" and trace["text"][-1] == f"end (step {s.path.steps[-1]})"
    ex = result.surfaces[0].path.explained
    assert fig["layout"]["xaxis"]["title"]["text"] == f"1st PCA direction: {100 * ex[0]:.1f}% of variance"
    assert "PCA directions explain" in " ".join(m.value for m in at.markdown) or at.warning  # or: did not learn
    assert "The red line joins the kept weights" in text(at)


def test_a_run_without_kept_weights_says_how_to_get_them(home, open_app_page):
    store, ids = home
    at = open_app_page(PAGE)
    at.radio(key="ls_dirs").set_value("Training path (PCA)").run()
    said = [i.value for i in at.info]
    assert len(said) == 2 and all("kept no weights along its training" in s for s in said)
    assert all("train with 'Keep weights every k steps' on" in s for s in said)
    assert at.button(key="ls_start").disabled
    at.radio(key="ls_dirs").set_value("Random (filter-normalized)").run()
    assert not at.info and not at.button(key="ls_start").disabled


def test_an_interpolation_is_started_and_both_curves_are_drawn_side_by_side(home, open_app_page):
    from resnet_lab.experiments.landscape import load_interpolation

    store, ids = home
    at = open_app_page(PAGE)
    assert "No interpolation of this run yet." in text(at)
    assert f"#{ids[0]}: its initial weights (rebuilt from seed 0)" in text(at)  # trained without kept weights
    at.slider(key="ls_i_res").set_value(2).run()
    at.slider(key="ls_i_batches").set_value(1).run()
    at.select_slider(key="ls_i_bs").set_value(16).run()
    assert "2 models × 5 points × 1 batch × 2 (BN statistics, then the loss) = 20 forward passes" in text(at)
    at.radio(key="ls_i_from").set_value("another run of the same model").run()
    assert any("No other run of this very model with its twin yet" in i.value for i in at.info)
    at.radio(key="ls_i_from").set_value("its initial weights").run()
    at.button(key="ls_i_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (task,) = store.jobs.list(kinds=[INTERPOLATION])  # a kind of its own
    assert task.params["mode"] == "interpolation" and task.params["start"] == "init"
    assert f"Interpolation job #{task.id}" in text(at)
    task = wait_done(store, task.id)
    at.run()
    assert at.selectbox(key="ls_i_result").value == task.id
    fig = [c for c in charts(at) if any(t.get("mode") == "markers+text" for t in c["data"])][0]
    result = load_interpolation(task.result_path)
    lines = [t for t in fig["data"] if t.get("mode") == "lines+markers"]
    assert [t["xaxis"] for t in lines] == ["x", "x2"]
    assert [t["y"] for t in lines] == [pytest.approx(list(c.loss)) for c in result.curves]
    df = at.dataframe[-1].value
    assert list(df["model"]) == [c.label for c in result.curves]
    assert "None" not in df.to_string()


def test_missing_numbers_read_n_a_never_none(home, open_app_page):
    store, ids = home
    p = LandscapeParams(dims=2, steps=3)
    nan = math.nan
    cut = [surface(p, lambda a, b: nan if b > 0 or (b == 0 and a > 0) else 1.0 + a * a, "#1 tiny (ResNet)", True,
                   ids[0])]
    cut = [Surface(**{**cut[0].__dict__, "complete": False})]
    finished_task(store, ids, p, cut, status="stopped")
    at = open_app_page(PAGE)
    df = at.dataframe[0].value
    assert list(df["rise at ½ span"]) == ["n/a"] and list(df["centre loss"]) == ["1.0000"]  # +α side missing
    assert list(df["lowest loss"]) == ["1.0000"]
    rendered = df.to_string() + json.dumps(df.to_dict())
    assert "None" not in rendered and "nan" not in rendered.lower()
    config = json.loads(at.dataframe[0].proto.columns)
    assert "stopped before" in config["rise at ½ span"]["help"]  # the tooltip says why


def test_the_page_computes_through_the_helper_and_its_functions_read_no_page_globals():
    import ast
    from pathlib import Path

    src = (Path(__file__).resolve().parents[2] / PAGE).read_text()
    assert "with s.lock" not in src and ".lock" not in src
    assert not [n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "id"]
    assert "on_models(" in src
    tree = ast.parse(src)
    page_vars = set()  # variables the page script assigns outside functions (constants in CAPITALS are allowed)
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            page_vars |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
                          and not n.id.isupper()}
    assert {"by_id", "the_run", "picked_subjects"} <= page_vars
    for fn in [n for n in tree.body if isinstance(n, ast.FunctionDef)]:
        own = {a.arg for a in ast.walk(fn) if isinstance(a, ast.arg)} | {
            n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        read = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - own
        assert not read & page_vars, f"{fn.name} reads page globals {sorted(read & page_vars)}"

"""Live views cost next to nothing when nothing changes: they poll fast only while a job they show runs,
slower while it waits, rarely (or not at all) with nothing active; a job starting or ending reruns the page
once to change the pace; a tick with no new data does not build the curves figure again. And in a class the
runs table says whose each run is, as text, with a "Mine only" filter; someone else's job has no Stop."""

import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from resnet_lab import jobs
from resnet_lab.data.registry import DataConfig
from resnet_lab.experiments.degradation import KIND as DEGRADATION, DegradationConfig
from resnet_lab.identity import MACHINE
from resnet_lab.models.presets import PRESETS, cifar_spec
from resnet_lab.store import Store
from resnet_lab.train import launcher
from resnet_lab.train.config import TrainConfig
from resnet_lab.ui import curves
from resnet_lab.ui import session as live
from tests.helpers.homes import seed

pytestmark = pytest.mark.usefixtures("no_workers_left")

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TRAIN = "app_pages/train.py"
SLOW_ENOUGH_S = 10.0  # an idle view may look this often at most: 30 tabs then cost nothing measurable


@pytest.fixture
def paces(monkeypatch):
    """{fragment function's qualname: run_every} for every fragment a page sets up (the last run wins)."""
    seen: dict[str, object] = {}
    real = st.fragment

    def spy(func=None, *, run_every=None, **kw):
        def wrap(f):
            seen[f.__qualname__] = run_every
            return real(f, run_every=run_every, **kw)

        return wrap(func) if func is not None else wrap

    monkeypatch.setattr(st, "fragment", spy)
    return seen


def rows(twin: bool = True) -> list[dict]:
    data = DataConfig(name="digits", image_size=8, train_subset=64)
    return launcher.training_rows(PRESETS["resnet20"], data, TrainConfig(epochs=1, batch_size=32), twin=twin)


def running_job(store: Store) -> tuple[int, list[int]]:
    """A job claimed as if its worker were starting (no process: the reaper gives it START_GRACE_S)."""
    job, ids = store.jobs.create("train", "running here", "cpu", then=seed(runs=rows(), partners=True))
    assert jobs.turns.claim(store, {"cpu": 1}) == [(job, "cpu")]
    return job, ids


def log(store: Store, ids: list[int], first: int, last: int) -> None:
    """Metrics as a worker writes them: a batch of rows (steps ``first`` to ``last``), then the runs' step."""
    store.runs.add_metrics([(rid, step, step / 10, key, 1.0 / step) for rid in ids for step in range(first, last + 1)
                            for key in ("train/loss", "train/acc")])
    store.runs.set_steps(ids, last)


def test_with_nothing_active_no_view_polls_fast(open_app_page, paces, lab_home):
    at = open_app_page(TRAIN)
    assert any("No runs yet" in i.value for i in at.info)
    assert paces["live_fragment._panel"] == paces["_table"] == live.IDLE_S >= SLOW_ENOUGH_S
    store = Store()
    job, ids = store.jobs.create("train", "finished", "cpu", then=seed(runs=rows(), partners=True))
    store.jobs.finish(job, "done", only_if=["queued"])
    log(store, ids, 1, 20)
    at.run()
    assert any(h.value.startswith(f"Run #{ids[0]}") for h in at.subheader) and at.get("plotly_chart")
    assert all(every is None or every >= SLOW_ENOUGH_S for every in paces.values()), paces


def test_a_running_job_is_polled_fast_and_a_waiting_one_slower(open_app_page, paces, lab_home):
    store = Store()
    parked, _ = store.jobs.create("train", "waits for a GPU", "cuda",
                                  then=seed(runs=rows(), partners=True))  # never starts
    at = open_app_page(TRAIN)
    assert paces["live_fragment._panel"] == live.QUEUED_S < SLOW_ENOUGH_S
    assert any("waiting for a free slot" in p.proto.text or "ahead" in p.proto.text for p in at.get("progress"))
    job, _ = running_job(store)
    at.run()
    assert paces["live_fragment._panel"] == live.FAST_S and paces["_table"] == live.TABLE_S
    assert store.jobs.get(job).status == "running" and store.jobs.get(parked).status == "queued"


def test_a_tick_with_no_new_data_builds_no_figure_and_new_data_builds_one(open_app_page, monkeypatch, lab_home):
    built = []
    real = curves.curves_spec
    monkeypatch.setattr(curves, "curves_spec", lambda curves, **kw: built.append(len(curves)) or real(curves, **kw))
    monkeypatch.setattr(curves, "FIGURE_EVERY_S", 0.0)  # new data is drawn at once (not at most once a second)
    store = Store()
    job, ids = running_job(store)
    log(store, ids, 1, 10)
    at = open_app_page(TRAIN)
    assert built == [2]  # the run and its plain twin, on one figure
    at.run()
    other_tab = open_app_page(TRAIN)
    assert built == [2] and other_tab.get("plotly_chart")  # nothing new: the figure is not built again, for anyone
    log(store, ids, 11, 12)
    at.run()
    other_tab.run()
    assert built == [2, 2]  # new steps: built once more, for both tabs
    spec = at.get("plotly_chart")[0].proto.spec
    assert '"y":[1.0,0.5,0.33333' in spec  # what the chart shows, rounded (the store keeps every digit)
    monkeypatch.setattr(curves, "FIGURE_EVERY_S", 3600.0)
    log(store, ids, 13, 14)
    at.run()
    assert built == [2, 2]  # more steps within FIGURE_EVERY_S of the last figure: that figure still serves
    assert store.jobs.finish(job, "done")
    at.run()
    assert built == [2, 2, 2]  # but a run that ends is drawn with its last points at once


def test_a_job_starting_or_ending_reruns_the_page_once_to_change_the_pace(paces):
    def script():
        import streamlit as st

        from resnet_lab.ui.session import live_fragment

        n = st.session_state["full_runs"] = st.session_state.get("full_runs", 0) + 1
        # the page's first look found a running job; by the time the view drew, it had ended
        live_fragment(lambda: [], ["running"] if n == 1 else [])

    at = AppTest.from_function(script, default_timeout=60)
    at.run()
    assert not at.exception and at.session_state["full_runs"] == 2  # once, then the pace fits: no loop
    assert list(paces.values())[-1] == live.IDLE_S


def test_the_degradation_view_stops_polling_once_its_runs_ended(open_app_page, paces, lab_home):
    store = Store()
    cfg = DegradationConfig()
    job_ids = []
    for depth in (20, 56):
        spec = cifar_spec(depth, width=16, num_classes=6)
        job, _ = store.jobs.create("train", f"resnet-{depth}", "cuda", then=seed(runs=launcher.training_rows(
            spec, cfg.data, cfg.train, twin=True), partners=True), origin=DEGRADATION)
        job_ids.append(job)
    store.experiments.create(DEGRADATION, "depth 20 vs 56", cfg.params(), job_ids)
    at = open_app_page("app_pages/degradation.py")
    assert paces["live_fragment._show"] == live.QUEUED_S
    for job in job_ids:
        store.jobs.stop(job, by=MACHINE)
    at.run()
    assert paces["live_fragment._show"] is None and not at.exception


def test_the_pace_follows_the_statuses_shown():
    assert live.poll_every([]) == live.poll_every(["done", "stopped", "failed"]) == live.IDLE_S
    assert live.poll_every(["queued", "done"]) == live.QUEUED_S
    assert live.poll_every(["queued", "running"]) == live.FAST_S < live.QUEUED_S < live.IDLE_S


def test_a_running_jobs_pace_steps_down_as_more_views_share_the_server(monkeypatch):
    from resnet_lab.ui import rerun_guard

    # the server's fast ticks stay within LIVE_TICKS_PER_S, whatever the class size
    assert [live.fast_pace(n) for n in (0, 1, 18, 19, 30, 31, 48, 49, 200)] == \
        [1.5, 1.5, 1.5, 2.5, 2.5, 4.0, 4.0, 4.0, 4.0]
    for n in (1, 18, 30, 48):
        assert n / live.fast_pace(n) <= live.LIVE_TICKS_PER_S
    # the live views are the sessions whose timer reruns the guard admitted in the last 10 s
    monkeypatch.setattr(rerun_guard, "_last", {})
    monkeypatch.setattr(rerun_guard, "_stats", {})
    for i in range(30):
        assert rerun_guard.admit(f"s{i}", "panel", now=100.0 + i / 10)
        assert rerun_guard.admit(f"s{i}", "table", now=100.0 + i / 10)
    assert rerun_guard.live_sessions(now=103.0) == 30 and rerun_guard.live_sessions(now=112.0) == 10
    monkeypatch.setattr(rerun_guard, "live_sessions", lambda: 30)
    assert live.poll_every(["running"]) == 2.5 and live.poll_every(["queued"]) == live.QUEUED_S


def test_the_runs_table_names_owners_as_text_and_filters_mine(monkeypatch, lab_home):
    from resnet_lab.classroom.people import join_class
    from resnet_lab.classroom.settings import load_settings

    code, nasty = "owls-and-ravens-42", "<img src=x onerror=alert(1)> **bold**"
    for var in ("RESNET_LAB_SETTINGS", "RESNET_LAB_PROXY_HEADER", "RESNET_LAB_TEACHERS", "RESNET_LAB_TEACHER_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RESNET_LAB_CLASS_CODE", code)
    store = Store()
    alice, token = join_class(store, "Alice", code, load_settings())
    bob, _ = join_class(store, nasty, code, load_settings())
    mine, _ = store.jobs.create("train", "alice's", "cpu", then=seed(runs=rows(twin=False)), owner=alice)
    theirs, _ = store.jobs.create("train", "bob's", "cuda", then=seed(runs=rows(twin=False)),
                                  owner=bob)  # waits for a GPU
    store.jobs.finish(mine, "done", only_if=["queued"])
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["me"] = token
    at.run()
    at.switch_page(TRAIN).run()
    assert not at.exception, [e.message for e in at.exception]
    assert list(at.dataframe[0].value["owner"]) == [nasty, "you"]  # a dataframe cell: text, never markup
    shown = [m.value for m in at.markdown] + [h.value for h in at.subheader] + [c.value for c in at.caption]
    assert not any(nasty in text or "**bold**" in text for text in shown)
    (own,) = store.runs.of_job(mine)
    assert any(h.value.startswith(f"Run #{own.id}:") for h in at.subheader)  # her own job first, though older
    at.toggle(key="runs_mine_train_watch_job").set_value(True).run()
    assert list(at.dataframe[0].value["owner"]) == ["you"]

    at.session_state["train_watch_job"] = [r.id for r in store.runs.of_job(theirs)]  # watch Bob's queued run
    at.run()
    assert not [b for b in at.button if b.key == f"stop_{theirs}"]  # no Stop for someone else's job
    assert any("Only" in c.value and "teacher may change it" in c.value for c in at.caption)
    assert store.jobs.get(theirs).status == "queued"


def test_a_ready_figure_is_drawn_exactly_as_the_figure_it_stands_for():
    """The live curves reach st.plotly_chart as a ReadyFigure (its dict as it is: no deep copy, no validation
    on every tick). What the browser gets must be what a real plotly Figure of the same dict gives — this fails
    if Streamlit starts to read a figure some other way."""
    def script():
        import plotly.graph_objects as go
        import streamlit as st

        from resnet_lab.ui.curves import ReadyFigure
        from resnet_lab.viz.training import RunCurves, curves_spec

        spec = curves_spec([RunCurves("#3 <i>r</i>", {"train/loss": [(1, 0.1, 2.0), (2, 0.2, 1.0)],
                                                      "val/acc": [(2, 0.2, 0.5)]}, key=3)])
        st.plotly_chart(ReadyFigure(spec), key="ready", width="stretch")
        st.plotly_chart(go.Figure(spec), key="real", width="stretch")
        st.session_state["spec_unchanged"] = spec == curves_spec(
            [RunCurves("#3 <i>r</i>", {"train/loss": [(1, 0.1, 2.0), (2, 0.2, 1.0)], "val/acc": [(2, 0.2, 0.5)]},
                       key=3)])

    at = AppTest.from_function(script, default_timeout=60)
    at.run()
    assert not at.exception
    ready, real = (c.proto for c in at.get("plotly_chart"))
    assert json.loads(ready.spec) == json.loads(real.spec)  # the same figure (keys may come in another order)
    assert "<i>" not in json.loads(ready.spec)["data"][0]["name"]  # names shown as text
    assert '"type":"log"' in ready.spec and ready.config == real.config
    assert at.session_state["spec_unchanged"]  # drawing it changed nothing in the shared dict


def test_the_runs_table_says_a_step_only_where_a_run_stopped_part_way():
    from types import SimpleNamespace

    from resnet_lab.ui.runs_table import status_text
    run = lambda status, step, total: SimpleNamespace(status=status, step=step, total_steps=total)  # noqa: E731
    assert status_text(run("done", 180, 180)) == "done"
    assert status_text(run("queued", 0, 180)) == "queued"
    assert status_text(run("running", 12, 180)) == "running · 12/180"
    assert status_text(run("interrupted", 90, 180)) == "interrupted · 90/180"

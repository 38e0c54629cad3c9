"""Degradation page: one click trains plain-20, plain-56, resnet-20 and resnet-56 (sizes adjustable) on the
same data, seed and budget, shows their training curves overlaid, and says what the final numbers show.

Below it, "Reproduce the paper (Table 6)": He et al. 2015's CIFAR-10 experiment (resnet_lab.experiments.paper_cifar)
— what it would cost here, the short recipe on a subset offered instead on a CPU, and once runs exist the test-error
table beside the paper's numbers and Fig. 6's training curves."""

import hashlib
import json
from datetime import datetime
from typing import Any, Mapping

import streamlit as st

from resnet_lab.checks import MAX_SEED
from resnet_lab.analysis.degradation import TOLERANCE
from resnet_lab.analysis.learned import ACC_MARGIN, LOSS_FACTOR
from resnet_lab.data.registry import DataConfig, dataset_info
from resnet_lab.experiments.degradation import (
    DEFAULT_BATCH,
    DEFAULT_EPOCHS,
    DEFAULT_IMAGES,
    DEFAULT_LR,
    DEPTH_CHOICES,
    KIND,
    WIDTH_RANGE,
    DegradationConfig,
    submit_degradation,
    summarize,
)
from resnet_lab.experiments.paper_cifar import DEPTH_CHOICES as DEPTH_CHOICES_T6
from resnet_lab.experiments.paper_cifar import KIND as PAPER_KIND
from resnet_lab.experiments.paper_cifar import (MAX_SEEDS, PAPER_DEPTHS, PAPER_SOURCE, PaperConfig, cost, submit_paper,
                                                summarize_paper)
from resnet_lab.identity import Identity
from resnet_lab.jobs.slots import resolve_device
from resnet_lab.store import Job
from resnet_lab.train import launcher
from resnet_lab.train.config import TrainConfig
from resnet_lab.ui.charts import show_chart
from resnet_lab.ui.common import PAGES
from resnet_lab.ui.curves import progress_key
from resnet_lab.ui.downloads import missing_dataset_panel
from resnet_lab.ui.identity import me
from resnet_lab.ui.job_card import STATUS_ICON, job_card, show_error
from resnet_lab.ui.session import cached_view, live_fragment, pump, session_token, store
from resnet_lab.viz.experiments import degradation_figure
from resnet_lab.viz.paper_curves import fig6_figure, table_records
from resnet_lab.ui.widgets import choice

PAGE = "app_pages/degradation.py"
DATASETS = ("shapes", "digits")  # built in: no files to place, quick on a CPU
ERROR_KEY = "dg_error"
NOT_YET = "—"  # what the table shows for a number a run has not logged yet (Streamlit would write "None")

st.title(PAGES[PAGE][0])
st.caption("He et al. (2015) noticed something odd: a 56-layer plain network has *higher training error* than a "
           "20-layer one (their Fig. 1). It is not overfitting — the deeper net fits its own training set worse, "
           "although it could copy the shallow one and set the extra layers to the identity. With skip connections "
           "the deeper net trains at least as well (their Fig. 4). This page reruns that comparison: four "
           "networks of depth 6n+2, trained on the same images with the same seed, batch order and budget.")


def _size(name: str) -> int:
    info = dataset_info(name)
    return 32 if name == "shapes" else min(max(info.native_size, info.min_size), info.max_size)


# --- the form ----------------------------------------------------------------------------------------
c = st.columns(4)
c[0].selectbox("Shallow depth", DEPTH_CHOICES, index=DEPTH_CHOICES.index(20), key="dg_shallow",
               help="Layers of the shallower pair: 6n+2, n blocks in each of three stages.")
c[1].selectbox("Deep depth", DEPTH_CHOICES, index=DEPTH_CHOICES.index(56), key="dg_deep",
               help="Layers of the deeper pair (the paper: 56).")
c[2].number_input("Width", WIDTH_RANGE[0], WIDTH_RANGE[1], 16, step=4, key="dg_width",
                  help="Channels of the first stage; the stages have width, 2×, 4×. The paper: 16.")
c[3].selectbox("Dataset", DATASETS, key="dg_data", help="shapes: synthetic, 6 classes; digits: "
               "scikit-learn's 8×8 handwritten digits, 10 classes.")
d = st.columns(5)
d[0].number_input("Training images", 64, 100_000, DEFAULT_IMAGES, step=500, key="dg_subset",
                  help="For shapes, how many to generate; digits has about 1,400.")
d[1].number_input("Epochs", 1, 200, DEFAULT_EPOCHS, key="dg_epochs")
d[2].number_input("Batch size", 8, 1024, DEFAULT_BATCH, step=16, key="dg_batch")
d[3].number_input("Learning rate", 0.001, 1.0, DEFAULT_LR, format="%.3g", key="dg_lr",
                  help="Peak of a one-cycle SGD schedule, the same for all four.")
d[4].number_input("Seed", 0, MAX_SEED, 0, key="dg_seed", help="Data, initialization and batch order.")


def _config(form: Mapping[str, Any]) -> DegradationConfig:
    """The experiment the form describes (``form``: the session state, which holds the widgets' values under
    their keys — also in the button's callback, which runs before the page does). ValueError when invalid."""
    name, seed = form["dg_data"], int(form["dg_seed"])
    data = DataConfig(name=name, image_size=_size(name), train_subset=int(form["dg_subset"]), seed=seed)
    train = TrainConfig(epochs=int(form["dg_epochs"]), batch_size=int(form["dg_batch"]), lr=float(form["dg_lr"]),
                        seed=seed, eval_points=0)
    return DegradationConfig(shallow=int(form["dg_shallow"]), deep=int(form["dg_deep"]), width=int(form["dg_width"]),
                             data=data, train=train)


try:
    cfg = _config(st.session_state)
    problem = None
except ValueError as e:
    cfg, problem = None, str(e)

if cfg is not None:
    st.caption(f"Cost: the {cfg.deep}-layer pair has {cfg.cost_ratio:.1f}× the blocks of the {cfg.shallow}-layer "
               f"pair, so it trains about {cfg.cost_ratio:.1f}× longer; all four take about "
               f"{1 + cfg.cost_ratio:.1f}× as long as the shallow pair alone. Each pair (a ResNet and its plain twin) "
               "is one job: one worker trains both on the very same batches.")


def _launch() -> None:
    try:
        config = _config(st.session_state)
        fingerprint = hashlib.sha1(json.dumps(config.params(), sort_keys=True).encode()).hexdigest()[:16]
        exp_id = submit_degradation(config, store=store(), request_key=f"{session_token()}:{fingerprint}",
                                    owner=me())
    except ValueError as e:
        st.session_state[ERROR_KEY] = str(e)
        return
    st.session_state.pop(ERROR_KEY, None)
    st.session_state["dg_pick"] = exp_id  # show the new experiment


st.button("Run the experiment", type="primary", icon=":material/play_arrow:", key="dg_start", on_click=_launch,
          disabled=cfg is None)
if problem:
    st.warning(problem, icon=":material/warning:")
if st.session_state.get(ERROR_KEY):
    st.error(st.session_state[ERROR_KEY], icon=":material/error:")

# --- the experiment shown ----------------------------------------------------------------------------
st.divider()
experiments = store().experiments.list(KIND)
exp_id = None
if not experiments:
    st.info("No degradation experiment yet: choose the sizes above and press **Run the experiment**. "
            "At the defaults it takes about 30 minutes on a 2-core CPU (the 56-layer pair is most of it) and a minute or "
            "two on a GPU; fewer images or epochs are quicker but may leave the nets at chance (the page will say so).",
            icon=":material/info:")
else:
    by_id = {e.id: e for e in experiments}
    if st.session_state.get("dg_pick") not in by_id:
        st.session_state["dg_pick"] = experiments[0].id
    exp_id = choice(st.selectbox, "Experiment", list(by_id), key="dg_pick", format_func=lambda i: (
        f"#{i} {by_id[i].name} · {datetime.fromtimestamp(by_id[i].created_at):%Y-%m-%d %H:%M}"))


ACTION_ERROR_KEY = "dg_action_error"


def _job_row(s, report, job: Job | None, depth: int, who: Identity) -> None:
    pair = [report.get(True, depth), report.get(False, depth)]
    parts = [(r.status, f"{r.label} (#{r.run_id})") for r in pair]
    if job is None:  # its job is gone: the runs' last word, nothing to press
        st.markdown(" · ".join(f"{STATUS_ICON.get(status, '')} {text}: **{status}**" for status, text in parts))
        return
    job_card(s, job, who, ACTION_ERROR_KEY, parts, label=f"{depth} layers: ", key="dg_")


def _final_table(report) -> None:
    def pct(v):
        return None if v is None else round(100 * v, 2)

    st.dataframe([{"model": r.label, "run": r.run_id, "status": r.status,
                   "final train loss": None if r.final_loss is None else round(r.final_loss, 4),
                   "final train error (%)": pct(r.final_error), "val error (%)": pct(r.final_val_error),
                   "learned": r.learned.learned if r.status == "done" else None}
                  for r in report.runs], hide_index=True, key="dg_table", placeholder=NOT_YET)
    st.caption("Final training loss and error: the mean over the last epoch's training batches (each logged "
               "point is a running mean over the steps since the previous one, so a single point is noisy). "
               f"“At least as well” allows {100 * TOLERANCE:.1f} points, about the noise of one short run. "
               f"*Learned*: final training accuracy at least {100 * ACC_MARGIN:.0f}% of the way from chance to "
               f"100%, and a final loss at most {LOSS_FACTOR:g}× the first; the verdict needs the two shallower "
               "nets to have learned (a deeper net stuck at chance beside them is the degradation itself).")


def _jobs_of(s, exp_id: int) -> list[Job]:
    """The experiment's jobs as they are now (a deleted one left out): a few reads by key."""
    found = []
    for job_id in s.experiments.get(exp_id).job_ids:
        try:
            found.append(s.jobs.get(job_id))
        except KeyError:
            continue
    return found


def _report(s, exp_id: int, experiment_jobs: list[Job]):
    """(report, figure) of the experiment, computed once per new data for every tab of this server: the
    runs' metrics are read and judged again only when a job or run moved on."""
    key = ("degradation", str(s.path), exp_id,
           tuple((j.id, j.status, j.progress, j.stop_requested) for j in experiment_jobs),
           progress_key([r for j in experiment_jobs for r in s.runs.of_job(j.id)]))

    def make():
        report = summarize(s, exp_id)
        return report, degradation_figure(report)

    return cached_view(key, make)


def _show(exp_id: int) -> list[str]:
    """One tick of the experiment's view; returns its jobs' statuses (see ``live_fragment``)."""
    s = store()
    pump(s)
    try:
        experiment_jobs = _jobs_of(s, exp_id)
        report, figure = _report(s, exp_id, experiment_jobs)
    except (KeyError, ValueError) as e:
        st.error(f"Experiment #{exp_id} cannot be shown: {e}", icon=":material/error:")
        return []
    by_job, who = {j.id: j for j in experiment_jobs}, me()
    show_error(ACTION_ERROR_KEY)
    for job_id, depth in zip(report.job_ids, (report.shallow, report.deep)):
        _job_row(s, report, by_job.get(job_id), depth, who)
    show_chart(figure, key="dg_fig", width="stretch")
    for p in report.problems:
        st.warning(p, icon=":material/warning:")
    if report.verdict is not None:
        for line in report.verdict.markdown():
            st.markdown(line)
        for r in report.runs:
            if not r.learned.learned:  # a deeper net stuck at chance beside a shallower one that learned
                st.caption(f"{r.label} did not learn: {r.learned.numbers()}.")
    elif report.inconclusive is not None:
        st.warning(report.inconclusive[0].upper() + report.inconclusive[1:], icon=":material/help:")
    elif not report.finished:
        st.caption("The verdict appears when all four runs are done.")
    else:
        st.info("No verdict: not all four runs finished cleanly (see above). Resume them, or run the "
                "experiment again — a lower learning rate helps when a deep plain net diverges.",
                icon=":material/info:")
    _final_table(report)
    return [j.status for j in experiment_jobs]  # the same source as the page's first look: one pace for both


# fast while a run trains, slower while they wait, not at all once all four ended (the page reruns then)
if exp_id is not None:
    try:
        statuses_now = [j.status for j in _jobs_of(store(), exp_id)]
    except KeyError:
        statuses_now = []
    live_fragment(_show, statuses_now, exp_id, idle=None)


# --- Reproduce the paper (Table 6) --------------------------------------------------------------------------------
T6_ERROR_KEY = "t6_error"
T6_SHORT_SUBSET = 2000  # the short recipe's subset offered on a CPU


def _t6_config(form: Mapping[str, Any]) -> PaperConfig:
    """The Table 6 experiment the section's widgets describe (ValueError when invalid)."""
    return PaperConfig(depths=tuple(int(d) for d in form["t6_depths"]), seeds=int(form["t6_seeds"]),
                       recipe=form["t6_recipe"], subset=int(form["t6_subset"]) or None)


def _t6_launch() -> None:
    try:
        config = _t6_config(st.session_state)
        fingerprint = hashlib.sha1(json.dumps(config.params(), sort_keys=True).encode()).hexdigest()[:16]
        exp = submit_paper(config, store=store(), owner=me(), request_key=f"{session_token()}:{fingerprint}")
    except ValueError as e:
        st.session_state[T6_ERROR_KEY] = str(e)
        return
    st.session_state.pop(T6_ERROR_KEY, None)
    st.session_state["t6_pick"] = exp


def _t6_try_short() -> None:
    st.session_state.update(t6_recipe="short", t6_subset=T6_SHORT_SUBSET)


def _t6_report(s, exp: int, experiment_jobs: list[Job]):
    """(report, figure) of a Table 6 experiment, computed once per new data for every tab of this server."""
    key = ("paper_cifar", str(s.path), exp, tuple((j.id, j.status, j.progress) for j in experiment_jobs),
           progress_key([r for j in experiment_jobs for r in s.runs.of_job(j.id)]))

    def make():
        report = summarize_paper(s, exp)
        return report, fig6_figure(report.runs)

    return cached_view(key, make)


def _t6_show(exp: int) -> list[str]:
    """One tick of a Table 6 experiment's view; returns its jobs' statuses (see ``live_fragment``)."""
    s = store()
    pump(s)
    try:
        experiment_jobs = _jobs_of(s, exp)
        report, figure = _t6_report(s, exp, experiment_jobs)
    except (KeyError, ValueError) as e:
        st.error(f"Experiment #{exp} cannot be shown: {e}", icon=":material/error:")
        return []
    done = sum(r.status == "done" for r in report.runs)
    st.caption(f"{done} of {len(report.runs)} runs done · " + " · ".join(
        f"{STATUS_ICON.get(r.status, '')} {r.label} seed {r.seed}: {r.status}"
        + (f" {r.step:,}/{r.total_steps:,}" if r.total_steps and r.status == "running" else "") for r in report.runs))
    st.dataframe(table_records(report.rows), hide_index=True, key="t6_table", placeholder=NOT_YET)
    title = dataset_info(report.config.dataset).description.split(" (")[0]
    st.caption(f"{title} test error (10,000 official test images) of each model as its training ended; mean ± sample "
               "standard deviation over seeds when more than one ran. "
               + (f"The paper's column: {PAPER_SOURCE} (its plain nets are drawn in Fig. 6, not tabled)."
                  if report.config.dataset == "cifar10" else "The paper has no numbers for this dataset."))
    if report.finding:
        st.markdown(report.finding)
    for p in report.problems:
        st.warning(p, icon=":material/warning:")
    show_chart(figure, key="t6_fig", width="stretch")
    return [j.status for j in experiment_jobs]


def _missing_dataset(name: str, message: str) -> None:
    """What the page shows while a dataset's files are missing: the loader's own message (DatasetMissing: what to
    get, where to put it) with the lab's Get it button (resnet_lab.ui.downloads)."""
    missing_dataset_panel(name, message, key="t6_")


def _paper_section() -> None:
    st.divider()
    st.header("Reproduce the paper (Table 6)")
    st.caption("He et al. (2015, sec. 4.2) train ResNets and plain nets of 20, 32, 44, 56 and 110 layers on CIFAR-10: "
               "45k/5k train/val split, batch 128, SGD momentum 0.9, weight decay 1e-4, lr 0.1 divided by 10 at 32k "
               "and 48k iterations, 64k iterations. The ResNets' test error falls with depth (Table 6: 8.75% at 20 "
               "layers, 6.97% at 56); the plain nets' training error rises (Fig. 6).")
    missing = launcher.missing_data("cifar10")
    if missing:
        _missing_dataset("cifar10", missing)
    for key, value in {"t6_depths": list(PAPER_DEPTHS), "t6_seeds": 1, "t6_recipe": "paper", "t6_subset": 0}.items():
        st.session_state.setdefault(key, value)  # the defaults, also for the "short recipe" button to change
    c = st.columns(4)
    c[0].multiselect("Depths", DEPTH_CHOICES_T6, key="t6_depths",
                     help="Each depth is a ResNet and its plain twin, trained on the same batches.")
    c[1].number_input("Seeds", 1, MAX_SEEDS, key="t6_seeds", help="Runs of each depth, for the run-to-run spread.")
    choice(c[2].selectbox, "Recipe", ("paper", "short"), key="t6_recipe", format_func=lambda r: {
        "paper": "paper (64k steps)", "short": "short (one-cycle, 30 epochs)"}[r])
    c[3].number_input("Training images (0: all)", 0, 50_000, step=1000, key="t6_subset")
    try:
        config, problem = _t6_config(st.session_state), None
    except ValueError as e:
        config, problem = None, str(e)
    device = resolve_device("auto")
    if device == "cpu":
        full = cost(store(), PaperConfig(device="cpu"))
        st.info(f"This lab has no GPU: the paper's experiment (four depths, all images, 64k steps) is {full.text()}. "
                f"Try the short recipe on {T6_SHORT_SUBSET:,} images instead: the same comparison in a lesson's time.",
                icon=":material/memory:")
        st.button(f"Use the short recipe on {T6_SHORT_SUBSET:,} images", key="t6_try_short", on_click=_t6_try_short)
    if config is not None:
        st.caption(f":material/schedule: {config.recipe_of().describe()}. This choice: "
                   f"{cost(store(), config).text()}.")
    st.button("Reproduce Table 6", type="primary", icon=":material/science:", key="t6_start", on_click=_t6_launch,
              disabled=config is None or bool(missing),
              help="Not yet: CIFAR-10's files are missing (see above)." if missing else None)
    if problem:
        st.warning(problem, icon=":material/warning:")
    if st.session_state.get(T6_ERROR_KEY):
        st.error(st.session_state[T6_ERROR_KEY], icon=":material/error:")
    papers = store().experiments.list(PAPER_KIND)
    if not papers:
        return
    by = {e.id: e for e in papers}
    if st.session_state.get("t6_pick") not in by:
        st.session_state["t6_pick"] = papers[0].id
    exp = choice(st.selectbox, "Table 6 experiment", list(by), key="t6_pick", format_func=lambda i: (
        f"#{i} {by[i].name} · {datetime.fromtimestamp(by[i].created_at):%Y-%m-%d %H:%M}"))
    try:
        statuses = [j.status for j in _jobs_of(store(), exp)]
    except KeyError:
        statuses = []
    live_fragment(_t6_show, statuses, exp, idle=None)


_paper_section()

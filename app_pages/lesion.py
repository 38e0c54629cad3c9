"""Lesion study page: delete one block of a trained run at test time and see how much accuracy it costs,
the ResNet beside its plain twin (Veit, Wilber, Belongie 2016)."""

import json
from typing import Callable, Sequence

import streamlit as st
import torch

from resnet_lab.analysis.learned import inconclusive
from resnet_lab.analysis.lesion import (
    KIND_LABELS,
    KINDS,
    DeletionCurve,
    LesionStudy,
    comparison_sentence,
    deletion_sentence,
    lesion_indices,
    lesion_study,
    random_deletions,
    summary_sentence,
)
from resnet_lab.analysis.subject import Subject
from resnet_lab.experiments.learned import check_runs
from resnet_lab.spec import kind_of
from resnet_lab.ui.charts import show_chart
from resnet_lab.ui.common import PAGES, plain
from resnet_lab.ui.compute import Keyed, on_models
from resnet_lab.ui.inspect import cached_dataset, inspectable_runs, loaded_subjects, pick_run
from resnet_lab.ui.session import store
from resnet_lab.viz.experiments import deletion_figure, lesion_figure

PAGE = "app_pages/lesion.py"
DEFAULT_N = 1000  # validation images by default (all when there are fewer)
MAX_N = 100_000
TRIALS = 5  # random subsets per k in the "several blocks" chart
NA = "n/a"  # what a table cell says where a lesion is not possible (the reason is in the row's "why n/a")

st.title(PAGES[PAGE][0])
st.caption("Veit, Wilber and Belongie (2016) deleted single blocks from trained networks at test time and report "
           "that a ResNet's accuracy hardly moved — its skip connections still carry the signal, as if the network "
           "were an ensemble of many shallower paths — while a plain network, with only one path, broke. Does "
           "that hold for your run? Each block is lesioned in turn, on a copy of the model, and the accuracy it "
           "costs is measured on validation images; the sentences under the chart say what this run shows.")

runs = inspectable_runs()
if not runs:
    st.info("No run has a checkpoint yet. Train one on the **Train** page with **Train with plain twin** "
            "(a minute on `shapes`), then come back.", icon=":material/info:")
    st.stop()
c = st.columns([3, 1, 3])
run, partner = pick_run(c[0].selectbox, runs, "lz_run",
                        help="Its twin (the plain net trained beside a ResNet, or the ResNet a plain net is the "
                             "twin of) is studied too.")
chosen = [run] if partner is None else ([run, partner] if run.spec.get("skip", True) else [partner, run])
n_req = int(c[1].number_input("Validation images", 1, MAX_N, DEFAULT_N, step=100, key="lz_n",
                              help="A class-stratified subset of the validation split (all of it when smaller)."))
kind = c[2].radio("Lesion", KINDS, format_func=KIND_LABELS.get, key="lz_kind", horizontal=True,
                  help="Delete the residual branch F(x) (Veit et al.'s lesion), or keep F(x) and remove the "
                       "skip connection instead.")
if partner is None:
    st.caption("This run was trained alone, without a plain twin: only it is studied.")

subjects = list(loaded_subjects(chosen) or st.stop())
data = subjects[0].data
if data is None:
    st.warning("This checkpoint does not say which data it was trained on, so there are no images to test on.",
               icon=":material/warning:")
    st.stop()
try:
    dataset = cached_dataset(data)
except (OSError, ValueError) as e:
    st.warning(f"The validation images of **{data.name}** are not available here: {e}", icon=":material/warning:")
    st.stop()
n = min(n_req, len(dataset.y_val))
if n < n_req:
    st.caption(f"{data.name} has {len(dataset.y_val)} validation images: all of them are used.")


Tick = Callable[[int, int], None]


def in_turn(tick: Tick, count: int) -> list[Tick]:
    """Progress callbacks for ``count`` pieces of work done one after another under one bar: piece j's
    ``progress(done, total)`` moves the bar through the j-th equal share."""
    return [lambda done, total, j=j: tick(j * total + done, count * total) for j in range(count)]


def studies_of(subjects: Sequence[Subject], x: torch.Tensor, y: torch.Tensor, kind: str,
               tick: Tick) -> tuple[LesionStudy, ...]:
    """Each subject's lesion study of ``kind`` on (x in [0, 1], y), in turn (run by on_models on private
    copies of the models: a study switches skips and branches off and on)."""
    return tuple(lesion_study(s.model, s.normalize(x), y, kinds=(kind,), label=s.label, progress=t)
                 for s, t in zip(subjects, in_turn(tick, len(subjects))))


def curves_of(subjects: Sequence[Subject], x: torch.Tensor, y: torch.Tensor, trials: int,
              tick: Tick) -> tuple[DeletionCurve, ...]:
    """Each subject's accuracy with random sets of blocks deleted (Veit et al., Fig. 5a), in turn."""
    return tuple(random_deletions(s.model, s.normalize(x), y, trials=trials, label=s.label, progress=t)
                 for s, t in zip(subjects, in_turn(tick, len(subjects))))


def lesion_table(studies: Sequence[LesionStudy], kind: str) -> tuple[list[dict], dict[str, list[str]]]:
    """(rows, why): one row per block — whether it downsamples, each model's accuracy (%) and drop (points) with
    that block lesioned, missing (the table shows "n/a") where the lesion is not possible — and, for each reason a
    lesion is not possible, the blocks it holds for (said under the table: in a column, the long reasons were
    cut at 1280 px, and they repeat)."""
    table, why = [], {}
    for b in studies[0].blocks:
        row = {"block": b, "downsamples": studies[0].row(b, kind).downsampling}
        for s in studies:
            name = kind_of(s.skip)
            lesion = s.row(b, kind) if b in s.blocks else None
            possible = lesion is not None and lesion.acc is not None and lesion.drop is not None
            row[f"{name} accuracy (%)"] = round(100 * lesion.acc, 2) if possible else None
            row[f"{name} drop (points)"] = round(100 * lesion.drop, 2) if possible else None
            if not possible:
                why.setdefault(f"{name}: {lesion.note if lesion is not None else 'has no such block'}", []).append(b)
        table.append(row)
    return table, why


idx = lesion_indices(dataset.y_val, n)
data_json = json.dumps(data.to_dict(), sort_keys=True)
images = (Keyed(dataset.x_val[idx], ("x_val", data_json, n)), Keyed(dataset.y_val[idx], ("y_val", data_json, n)))
n_blocks = sum(1 for _ in subjects[0].model.blocks())
studies = on_models("lesion.study", subjects, lambda subs, x, y, tick: studies_of(subs, x, y, kind, tick), *images,
                    params=(n, kind), copy_models=True,
                    progress=f"Lesioning {n_blocks} blocks one at a time, {n} images each"
                    + (", and the same for the twin" if len(subjects) > 1 else ""))
show_chart(lesion_figure(studies, kind), key="lz_fig", width="stretch")
why = inconclusive(check_runs(store(), chosen))  # did they learn? else no conclusion is drawn
if why is not None:
    st.warning(why[0].upper() + why[1:], icon=":material/help:")
st.markdown(summary_sentence(studies, kind))
if why is None and comparison_sentence(studies, kind):
    st.markdown(comparison_sentence(studies, kind))
st.caption("Bars: intact accuracy minus the accuracy with that one block lesioned, in percentage points. "
           "Shaded blocks downsample (stride 2, more channels): a plain one cannot be removed at all, and "
           "the averages leave them out, as Veit et al. do. “n/a” (no bar): the lesion is not possible; hover "
           "it, or read under the table, for why.")

rows, why_na = lesion_table(studies, kind)
st.dataframe(rows, hide_index=True, key="lz_table", placeholder=NA)
if why_na:
    st.caption("“n/a”: " + "; ".join(f"{reason} ({', '.join(blocks)})" for reason, blocks in why_na.items()) + ".")
st.caption(" · ".join(f"{plain(s.label)}: intact accuracy **{s.base_acc:.1%}** on {s.n_images} images"
                      for s in studies))

if st.toggle("Delete several blocks at once (Veit et al., Fig. 5a)", key="lz_multi"):
    curves = on_models("lesion.deletions", subjects,
                       lambda subs, x, y, tick: curves_of(subs, x, y, TRIALS, tick), *images,
                       params=(n, TRIALS), copy_models=True, progress="Deleting random sets of blocks")
    show_chart(deletion_figure(curves), key="lz_multi_fig", width="stretch")
    st.caption(f"Mean accuracy over {TRIALS} random sets of k blocks deleted together (band: best and worst set); "
               "only blocks that keep their input's shape are deleted. "
               + (deletion_sentence(curves) if why is None else "No conclusion: the models did not learn (above)."))

"""The CIFAR-10 paper experiment drawn as He et al. 2015 draw it: Fig. 6's training error against iterations (plain
nets dashed, ResNets solid, one colour per depth) and Table 6's rows beside the paper's numbers.

A report in (:class:`resnet_lab.experiments.paper_cifar.PaperReport`), a ``go.Figure`` or plain rows out; every
array is handed to plotly as a plain list, so a figure's JSON holds the report's exact numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import plotly.graph_objects as go

from .text import plain, plain_template
from .training import PALETTE

if TYPE_CHECKING:  # a report in, a figure out: viz reads its fields, never the store
    from ..experiments.paper_cifar import DepthRow, PaperRun

_MARGIN = dict(l=10, r=10, t=50, b=10)
NOT_YET = "—"


def depth_color(depth: int, depths: Sequence[int]) -> str:
    """One colour per depth, in the order of ``depths`` (shallow first), the same for the plain net and the ResNet."""
    return PALETTE[sorted(depths).index(depth) % len(PALETTE)]


def fig6_figure(runs: Sequence[PaperRun], height: int = 460) -> go.Figure:
    """Training error (%) against optimizer steps (the paper's "iter."), one line per run: ResNets solid, plain
    nets dashed, coloured by depth. A depth's first seed names the legend entry ("plain-20"); more seeds join its
    group, fainter. A run with no points yet still has its (empty) trace."""
    fig = go.Figure()
    depths = sorted({r.depth for r in runs})
    shown: set[str] = set()
    for r in sorted(runs, key=lambda r: (r.skip, r.depth, r.seed)):  # plain nets first, as Fig. 6's left panel
        first = r.label not in shown
        shown.add(r.label)
        name = r.label + ("" if r.status == "done" else f" ({r.status})")
        fig.add_trace(go.Scatter(
            x=[p[0] for p in r.train_error], y=[100.0 * p[1] for p in r.train_error], mode="lines",
            name=plain(name), legendgroup=plain(r.label), showlegend=first, opacity=1.0 if first else 0.45,
            line=dict(color=depth_color(r.depth, depths), width=2.0, dash="solid" if r.skip else "dash"),
            hovertemplate=f"{plain_template(r.label)} seed {r.seed}<br>step %{{x}}<br>training error %{{y:.2f}}%"
                          "<extra></extra>"))
    fig.update_xaxes(title_text="iterations (optimizer steps)", rangemode="tozero")
    fig.update_yaxes(title_text="training error (%)", rangemode="tozero")
    fig.update_layout(height=height, margin=_MARGIN, uirevision="keep", title="Training error (He et al. 2015, Fig. 6: "
                      "plain nets dashed, ResNets solid)", legend=dict(orientation="h", y=-0.2))
    return fig


def _pct(v: float | None) -> str:
    return NOT_YET if v is None else f"{100 * v:.2f}%"


def table_records(rows: Sequence[DepthRow]) -> list[dict[str, Any]]:
    """Table 6's rows as text for a table: depth, plain test error, ResNet test error (mean ± std over seeds when
    more than one ran) and the paper's ResNet error. A number not known yet is "—"."""
    return [{"depth": r.depth,
             "plain test error": r.plain.text() if r.plain else NOT_YET,
             "ResNet test error": r.resnet.text() if r.resnet else NOT_YET,
             "paper's ResNet (Table 6)": _pct(r.paper_resnet)} for r in rows]

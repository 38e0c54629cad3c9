"""Every chart of the lab, drawn one way (:func:`show_chart`): the plotly chart, a sentence that says what it shows
(for a screen reader, and for anyone who cannot tell its colours apart), and one click away its numbers as a
table and a CSV file. The sentence and the table come from :mod:`resnet_lab.viz.tables` (pure, tested); this only
renders them."""

from __future__ import annotations

import re
from typing import Any, Callable

import pandas as pd
import streamlit as st

from ..viz.tables import ChartTable, figure_summary, figure_table

NUMBERS_LABEL = "The numbers"


def _file_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", key).strip("-") or "chart"


def show_chart(fig: Any, key: str, *, summary: str | None = None,
               table: ChartTable | Callable[[], ChartTable] | None = None, where: Any = None,
               **plotly_kwargs: Any) -> Any:
    """Draw ``fig`` (``st.plotly_chart``, full width, keyed ``key``; ``plotly_kwargs`` such as ``on_select``
    go along), then ``summary`` as a caption (default: :func:`~resnet_lab.viz.tables.figure_summary` of the
    figure), then an expander with the numbers as a table and a CSV download (``table``, or a function making
    it, default: :func:`~resnet_lab.viz.tables.figure_table`). The expander's body runs only while it is open, so
    a live chart's ticks build no table. ``where``: the container to draw in (a column; default the page).
    Returns what ``st.plotly_chart`` returns (its selection event when ``on_select`` is given)."""
    box = where if where is not None else st
    plotly_kwargs.setdefault("width", "stretch")
    event = box.plotly_chart(fig, key=key, **plotly_kwargs)
    box.caption(summary if summary is not None else figure_summary(fig))
    numbers = box.expander(NUMBERS_LABEL, key=f"{key}__numbers", on_change="rerun", icon=":material/table:")
    if numbers.open:
        with numbers:
            made = table() if callable(table) else table if table is not None else figure_table(fig)
            frame = pd.DataFrame(made.rows, columns=list(made.columns))
            st.dataframe(frame, hide_index=True, width="stretch", key=f"{key}__table", placeholder="—",
                         height=min(400, 38 + 35 * len(made.rows)))
            if frame.isna().any().any():
                st.caption("— : no value there (not measured, or not possible); empty in the CSV.")
            st.download_button("Download CSV", data=made.csv(), file_name=f"{_file_name(key)}.csv", mime="text/csv",
                               key=f"{key}__csv", icon=":material/download:", on_click="ignore")
    return event


__all__ = ["NUMBERS_LABEL", "show_chart"]

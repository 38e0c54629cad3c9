"""One door for choice widgets whose options or labels come from the data.

Streamlit keeps a radio's, select box's or pills' value in the browser as the *label* of the chosen option and
maps it back to an option on the next run. When the labels change with the data (a count in a label, a run's
name after another run was picked), the browser's label no longer names any option: Streamlit then hands the
page the old label, a ``str`` where the page expects one of its options (a crash such as ``1 - side`` on a
string), and the browser shows nothing selected.

:func:`choice` keeps the person's choice across such changes: before the widget is drawn it puts the
choice, as an option, back into the session, so Streamlit labels it anew; a choice that is no longer an option
falls back to the default; and the value returned is always one of the options (a list of them for a
multi-select), never a stale label. A test makes every choice widget with data-dependent options or labels in
the pages go through here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import streamlit as st

T = TypeVar("T")
MULTI_WIDGETS = ("multiselect",)  # widgets whose value is a list of options (pills too, with selection_mode="multi")
DEFAULT_ARGS = ("index", "default", "value")  # how the choice widgets take their first value
# A run's best validation accuracy in a table: a bar with its percentage, narrow enough that the tables listing
# runs fit a 1280-px window beside the sidebar (sized to its content, the bar alone took 170 px).
ACCURACY_COLUMN = st.column_config.ProgressColumn("best val acc", min_value=0, max_value=1, format="percent",
                                                  width=110, help="The run's best accuracy on its validation images")
# the text columns of a table of runs (Train's, the gallery's), a width each: a longer name is cut (the whole of it
# on the run's own pages and in the CSV) so that the table, the owner's column among them in a class, fits an 818-px
# frame at 1280 px with the vertical scroll bar of a long list
RUN_TEXT_COLUMNS = {"status": st.column_config.TextColumn(width=90), "name": st.column_config.TextColumn(width=140),
                    "owner": st.column_config.TextColumn(width=100), "model": st.column_config.TextColumn(width=85),
                    "data": st.column_config.TextColumn(width=95)}


def _is_multi(widget: Callable[..., Any], kwargs: dict[str, Any]) -> bool:
    return getattr(widget, "__name__", "") in MULTI_WIDGETS or kwargs.get("selection_mode") == "multi"


def _kept(value: Any, options: Sequence[Any], multi: bool) -> tuple[bool, Any]:
    """(whether ``value`` can stay, the value restricted to ``options``)."""
    if multi:
        if not isinstance(value, (list, tuple)):
            return False, None
        kept = [v for v in value if v in options]
        return len(kept) == len(value), kept
    return (value is None or value in options), value


def choice(widget: Callable[..., T], label: str, options: Sequence[Any], *, key: str, **kwargs: Any) -> T:
    """``widget(label, options, key=key, **kwargs)`` (``st.radio``, ``col.selectbox``, ``st.pills`` …), returning
    one of ``options`` (or None where the widget allows none; a list of options for multi-selects) even when the
    options' labels changed since the last run. A choice that is still an option is kept; one that is not is
    replaced by the default (``index``/``default`` in ``kwargs``, as the widget takes it)."""
    options = list(options)
    multi = _is_multi(widget, kwargs)
    if key in st.session_state:
        ok, kept = _kept(st.session_state[key], options, multi)
        if ok or (multi and kept):
            # set through the session: Streamlit labels the kept option with this run's format_func
            st.session_state[key] = kept
            for name in DEFAULT_ARGS:  # a default beside a session value makes Streamlit warn on the page
                kwargs.pop(name, None)
        else:
            del st.session_state[key]
    value = widget(label, options, key=key, **kwargs)
    ok, kept = _kept(value, options, multi)
    if ok:
        return value
    if multi:
        return kept  # type: ignore[return-value]
    index = kwargs.get("index", 0)
    return options[index] if options and isinstance(index, int) else None  # type: ignore[return-value]

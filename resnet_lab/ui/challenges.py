"""Challenges in the pages: the leaderboard table (names as text), one challenge's rules, and the Teacher page's
Challenges tab (open one from a form, see the TOML ones and the files that do not open, the private leaderboard and
the two CSV downloads). The student page is ``app_pages/challenge.py``; the rules are
:mod:`resnet_lab.classroom.challenges`."""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

import pandas as pd
import streamlit as st

from ..classroom.challenges import (CONSTRAINT_KEYS, METRICS, Challenge, ChallengeError, ensure_holdout,
                                    list_challenges, open_challenge, parse_definition)
from ..classroom.challenges_board import BoardRow, iso, leaderboard
from ..data.folders import list_user_datasets
from ..data.holdout import SUPPORTED
from ..data.registry import FOLDER_PREFIX
from ..identity import Identity
from .common import plain
from .identity import settings
from .session import store
from .widgets import choice

OPENED_KEY = "challenge_opened"  # what the last open did: ("ok" | "error", text)
LABELS = {"max_params": "Max parameters", "max_depth": "Max depth (layers)", "max_epochs": "Max epochs",
          "max_train_images": "Max training images", "max_image_size": "Max image size (px)"}


def board_frame(rows: Sequence[BoardRow], metric: str) -> pd.DataFrame:
    """The leaderboard as a table: every column one type, names as the text they are."""
    return pd.DataFrame([{"rank": r.rank, "student": r.name, metric: round(r.score, 4), "run": f"#{r.run_id}",
                          "kind": r.kind, "parameters": r.params, "epochs": r.epochs,
                          "submitted": iso(r.submitted_at).replace("T", " ").replace("+00:00", " UTC"),
                          "entries": r.entries} for r in rows],
                        columns=["rank", "student", metric, "run", "kind", "parameters", "epochs", "submitted",
                                 "entries"])


def show_board(challenge: Challenge, entries: Sequence[Any], score: str, key: str) -> None:
    rows = leaderboard(entries, score)
    if not rows:
        st.caption("No scored entry yet.")
        return
    st.dataframe(board_frame(rows, challenge.metric), hide_index=True, width="stretch", key=key, placeholder="—")


def show_rules(challenge: Challenge) -> None:
    st.text(challenge.title)
    if challenge.description:
        st.text(challenge.description)
    st.caption(" · ".join(plain(line, 200) for line in challenge.describe()))


def _open_from_form(who: Identity) -> None:
    """The form's button: a challenge from the widgets' values, through the same door as a file."""
    ss = st.session_state
    when = dt.datetime.combine(ss["ch_form_date"], ss["ch_form_time"], tzinfo=dt.timezone.utc)
    raw: dict[str, Any] = {"id": ss["ch_form_id"].strip(), "title": ss["ch_form_title"],
                           "description": ss["ch_form_description"], "dataset": ss["ch_form_dataset"],
                           "metric": ss["ch_form_metric"], "deadline": when.isoformat(),
                           "per_day": int(ss["ch_form_per_day"])}
    if ss["ch_form_budget"]:
        raw["time_budget_s"] = int(ss["ch_form_budget"])
    raw["constraints"] = {k: int(ss[f"ch_form_{k}"]) for k in CONSTRAINT_KEYS if ss.get(f"ch_form_{k}")}
    try:
        challenge = parse_definition(raw, "the form")
        hold = open_challenge(store(), challenge, who, settings())
    except (ChallengeError, ValueError) as e:
        ss[OPENED_KEY] = ("error", str(e))
        return
    ss[OPENED_KEY] = ("ok", f"Opened {challenge.id}: its hidden test split holds {len(hold.indices):,} images of "
                            f"{challenge.dataset} ({len(hold.public):,} public).")


def open_form(who: Identity) -> None:
    with st.expander("Open a challenge", icon=":material/add:"):
        c1, c2 = st.columns(2)
        c1.text_input("Id (a-z, 0-9, -)", key="ch_form_id", max_chars=40)
        c2.text_input("Title", key="ch_form_title", max_chars=100)
        st.text_area("Description (shown as text)", key="ch_form_description", max_chars=4000)
        c1, c2, c3 = st.columns(3)
        # the built-in sets, then the folders imported into this lab (a hidden split of each class's files)
        datasets = [*SUPPORTED, *(FOLDER_PREFIX + name for name in list_user_datasets())]
        choice(c1.selectbox, "Dataset", datasets, key="ch_form_dataset")
        choice(c2.selectbox, "Metric", list(METRICS), key="ch_form_metric", format_func=lambda m: m.replace("_", "-"))
        c3.number_input("Submissions a day per student", 1, 100, 3, key="ch_form_per_day")
        c1, c2, c3 = st.columns(3)
        c1.date_input("Deadline (UTC)", value=dt.date.today() + dt.timedelta(days=7), key="ch_form_date")
        c2.time_input("at (UTC)", value=dt.time(18, 0), key="ch_form_time")
        c3.number_input("Time budget (training s, 0: none)", 0, 7 * 24 * 3600, 0, key="ch_form_budget")
        cols = st.columns(len(CONSTRAINT_KEYS))
        for col, k in zip(cols, CONSTRAINT_KEYS):
            col.number_input(f"{LABELS[k]} (0: none)", 0, 10**11, 0, key=f"ch_form_{k}")
        st.button("Open the challenge", type="primary", key="ch_form_open", on_click=_open_from_form, args=(who,))
    said = st.session_state.pop(OPENED_KEY, None)
    if said is not None:
        if said[0] == "ok":
            st.success(said[1], icon=":material/emoji_events:")  # the lab's own words and a checked id
        else:
            st.error(plain(said[1], 1000), icon=":material/error:")


def teacher_tab(who: Identity) -> None:
    """The Teacher page's Challenges tab."""
    from ..experiments.challenges import grades, runs_table

    open_form(who)
    s, conf = store(), settings()
    found, problems = list_challenges(s, conf)
    for where, why in problems.items():
        st.error(f"Not opened: {plain(why, 1000)}", icon=":material/error:")
    if not found:
        st.caption("No challenge yet: open one above, or put `challenges/<id>.toml` in a lesson folder ("
                   + ", ".join(f"`{d}`" for d in conf.lessons_dirs) + "; see docs/classroom.md).")
        return
    for c in found:
        with st.container(border=True):
            show_rules(c)
            entries = s.challenges.entries(c.id)
            hold = ensure_holdout(c)  # a file seen for the first time: its split is cut now, before runs train
            st.caption(f"{'Open' if c.is_open() else 'Closed'} · {len(entries)} entries · hidden split: "
                       f"{len(hold.indices):,} images ({len(hold.public):,} public) · private scores below (the "
                       "students see the public ones until the deadline)")
            show_board(c, entries, "private", key=f"ch_board_{c.id}")
            c1, c2 = st.columns(2)
            c1.download_button("Grades (CSV)", grades(s, c), file_name=f"{c.id}-grades.csv", mime="text/csv",
                               key=f"ch_grades_{c.id}", icon=":material/download:")
            c2.download_button("Every student's runs (CSV)", runs_table(s, c.dataset), file_name=f"{c.id}-runs.csv",
                               mime="text/csv", key=f"ch_runs_{c.id}", icon=":material/download:")


__all__ = ["board_frame", "open_form", "show_board", "show_rules", "teacher_tab"]

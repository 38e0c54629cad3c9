"""Challenges, for students: the open challenges and their rules, submitting one of your own finished runs (only
the runs that fit are offered; a refusal says why), your entries with their scoring job's state, and the
leaderboard — public scores while a challenge is open, private ones after its deadline."""

import pandas as pd
import streamlit as st

from resnet_lab.classroom.challenges import EntryRefused, eligible_runs, ensure_holdout, list_challenges
from resnet_lab.classroom.challenges_board import iso
from resnet_lab.experiments.challenges import submit_entry
from resnet_lab.identity import NotAllowed
from resnet_lab.store.jobs import QueueFull
from resnet_lab.ui.challenges import show_board, show_rules
from resnet_lab.ui.common import PAGES, plain
from resnet_lab.ui.identity import current_identity, settings
from resnet_lab.ui.session import store
from resnet_lab.ui.widgets import choice

SAID_KEY = "challenge_said"  # what the last submission did: ("ok" | "error", text)

st.title(PAGES["app_pages/challenge.py"][0])
st.caption("Submit one of your finished runs: the lab scores it once on images nobody has seen — no training, "
           "page or export ever shows them. While a challenge is open the board shows the public half's score; "
           "after the deadline, the private half's decides.")
who = current_identity()
s = store()
found, _problems = list_challenges(s, settings())
if not found:
    st.info("No challenge is open yet. Your teacher opens them.", icon=":material/emoji_events:")
    st.stop()

by_id = {c.id: c for c in found}
chosen = choice(st.selectbox, "Challenge", list(by_id), key="challenge_pick",
                format_func=lambda cid: f"{by_id[cid].title} ({'open' if by_id[cid].is_open() else 'closed'})")
challenge = by_id[chosen]
show_rules(challenge)


def _submit(run_id: int) -> None:
    try:
        submit_entry(store(), challenge, run_id, who)
    except (EntryRefused, QueueFull, NotAllowed, ValueError) as e:
        st.session_state[SAID_KEY] = ("error", str(e))
        return
    st.session_state[SAID_KEY] = ("ok", f"Run #{run_id} submitted: it is scored once, on the queue.")


entries = s.challenges.entries(challenge.id)
mine = [e for e in entries if e.owner == who.owner]
if challenge.is_open():
    runs = s.runs.list(owner=who.owner)
    offered = eligible_runs(challenge, runs, who, ensure_holdout(challenge), entered={e.run_id for e in mine},
                            train_s=s.runs.last_values([r.id for r in runs], "train_s"))
    fits = [r for r, why in offered if why is None]
    if fits:
        names = {r.id: f"#{r.id} · {r.name} ({r.kind}, val acc {r.best.get('val/acc') or 0:.3f})" for r in fits}
        pick = choice(st.selectbox, "Your run", list(names), key="challenge_run", format_func=names.get)
        st.button("Submit this run", type="primary", icon=":material/send:", key="challenge_submit",
                  on_click=_submit, args=(pick,))
    else:
        st.caption(f"None of your finished runs on {challenge.dataset} fits this challenge yet: train one on the "
                   "Train page within the rules above.")
    refused = [(r, why) for r, why in offered if why is not None]
    if refused:
        with st.expander(f"Your runs that do not fit ({len(refused)})"):
            for r, why in refused:
                st.text(f"#{r.id} {r.name}: {why}")
else:
    st.caption(f"This challenge closed at {challenge.deadline_text}: the private scores decide.")
said = st.session_state.pop(SAID_KEY, None)
if said is not None:
    if said[0] == "ok":
        st.success(said[1], icon=":material/send:")  # the lab's own words
    else:
        st.error(plain(said[1], 1000), icon=":material/block:")  # may quote a title or a name: as text

score = challenge.shown_score()
if mine:
    st.subheader("Your entries")
    jobs = {j.id: j.status for j in s.jobs.list(kinds=["challenge"], owner=who.owner, limit=1000)}
    st.dataframe(pd.DataFrame([{
        "run": f"#{e.run_id}", "submitted": iso(e.submitted_at).replace("T", " ").replace("+00:00", " UTC"),
        "state": e.status if e.status != "queued" else f"scoring: {jobs.get(e.job_id, 'queued')}",
        f"{score} {challenge.metric}": getattr(e, f"{score}_score"), "why not scored": e.error or ""}
        for e in mine]), hide_index=True, width="stretch", key="challenge_mine", placeholder="—")
    if any(e.status == "queued" for e in mine):
        st.button("Refresh", icon=":material/refresh:", key="challenge_refresh")

st.subheader(f"Leaderboard ({score} scores)")
show_board(challenge, entries, score, key="challenge_board")

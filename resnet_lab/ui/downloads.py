"""Wherever a page names a missing dataset or weights file: what is missing, a **Get it** button with its size and
source, and once a download of it exists (anyone's: one per file for the whole class) that job live — its bytes,
speed and time left — until the files are here, when the page reruns and goes on.

Who may start a download is decided by :func:`resnet_lab.downloads.submit_download`; the button is only greyed
for a student whose class does not allow it, with why, and a refusal is shown as the jobs layer words it.
"""

from __future__ import annotations

import os
import time

import streamlit as st

from ..data import catalogue, fetch
from ..downloads import DownloadRefused, download_job, may_start, submit_download
from ..fmt import format_bytes
from ..store import Job
from .common import plain
from .identity import me, settings
from .job_card import job_card, show_error
from .session import live_fragment, pump, store

ERROR_KEY = "download_error"


def source_of(name: str) -> str:
    """The host a catalogue entry comes from first ("www.cs.toronto.edu"), or its mirror's."""
    url = os.environ.get(fetch.MIRROR_ENV, "").strip() or catalogue.entry(name).files[0].urls[0]
    return url.split("/")[2] if "//" in url else url


def get_label(name: str) -> str:
    """The button's words: "Get CIFAR-10 (162.6 MiB from www.cs.toronto.edu)"."""
    e = catalogue.entry(name)
    return f"Get {e.title} ({format_bytes(e.total_bytes())} from {source_of(name)})"


def _get(name: str) -> None:
    try:
        submit_download(store(), name, me(), settings=settings())
    except DownloadRefused as e:
        st.session_state[ERROR_KEY] = (str(e), time.monotonic())
        return
    st.session_state.pop(ERROR_KEY, None)


def _live(name: str, key: str) -> list[str]:
    """One tick of a download's card; returns its status (the fragment's pace, and the rerun when it ends)."""
    s = store()
    pump(s)
    job = download_job(s, name)
    if job is None:
        return []
    _card(job, name, key)
    return [job.status]


def _card(job: Job, name: str, key: str) -> None:
    title = catalogue.entry(name).title
    job_card(store(), job, me(), ERROR_KEY, [(job.status, f"download of {title}")], key=f"{key}dl_", resumable=True)
    if job.status == "done" and catalogue.present(name):
        st.success(f"{title} is here.", icon=":material/check_circle:")
    elif job.status in ("failed", "interrupted") and job.error:
        st.error(plain(job.error, 1500), icon=":material/error:")


def download_panel(name: str, message: str | None = None, key: str = "") -> None:
    """The panel for catalogue entry ``name`` that is missing: ``message`` (the loader's: which files, where; by
    default the catalogue's), a Get it button, and its download job live once there is one."""
    if catalogue.present(name):
        return
    entry = catalogue.entry(name)
    job = download_job(store(), name)
    if message is None:  # the catalogue's words are offline mode's: say it as the online panel it is
        by_hand = catalogue.describe_missing(name).partition("\n")[2]
        message = (f"{entry.title} ({', '.join(f.name for f in entry.files)}) is not in {entry.folder()} yet: get "
                   f"it here, or put the files in place by hand.\n{by_hand}")
    text = message
    first, _, rest = text.partition("\n")
    st.warning(plain(first, 400), icon=":material/download:")
    if rest.strip():
        with st.expander("Or put the files in place by hand"):
            st.text(rest.strip())
    show_error(ERROR_KEY)
    if job is not None and job.active:
        live_fragment(_live, [job.status], name, key)
        return
    if job is not None and job.status in ("failed", "stopped", "interrupted"):
        _card(job, name, key)
    if fetch.offline():
        st.caption(f":material/cloud_off: This lab is offline ({fetch.OFFLINE_ENV}=1): it never downloads; put the "
                   "files in place as said above.")
        return
    allowed = may_start(me(), settings())
    st.button(get_label(name), icon=":material/download:", key=f"{key}get_{name}", on_click=_get, args=(name,),
              disabled=not allowed, type="primary",
              help=(f"Downloads {entry.title} once for the whole lab, verified against the publisher's checksum "
                    f"before anything opens it; licence: {entry.licence}.") if allowed else
              "In this class only a teacher starts downloads (Teacher page › Prepare for class).")
    if not allowed:
        st.caption(":material/lock: In this class only a teacher starts downloads: ask yours to get it "
                   "(Teacher page › Prepare for class).")


def missing_dataset_panel(name: str, message: str | None = None, key: str = "") -> None:
    """:func:`download_panel` for a dataset a page needs (the name the Degradation page calls it by)."""
    download_panel(name, message, key)

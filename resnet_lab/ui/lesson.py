"""Which lesson this session follows, the navigation (which pages this person sees, in which order) and the
lesson banner on top of each page.

The session keeps only the lesson's id (from ``?lesson=<id>``, read once by :func:`read_lesson_link`); the lesson
itself is read from the teacher's file on every run. Without a lesson the lab shows its usual sections, plus the
Gallery, and the Teacher page for teachers. With one, its pages come first, in its order, under its title; the
rest of the lab stays reachable by links (the gallery's "Open in Predictions", say) but leaves the menu. The
teacher page is registered for everyone — hidden from students — so that opening its URL shows a clear refusal
instead of a page-not-found; the page itself checks who is asking.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from ..identity import Identity
from .common import PAGES, plain
from .identity import LESSON_ERROR_KEY, LESSON_KEY, URL_SEEN_KEY, current_identity, settings

if TYPE_CHECKING:
    from ..classroom.bounds import Bounds
    from ..classroom.lessons import Lesson

HOME = "app_pages/home.py"
TEACHER = "app_pages/teacher.py"
SECTIONS = {
    "ResNet Lab": [HOME, "app_pages/gallery.py", "app_pages/challenge.py", TEACHER],
    "The path": ["app_pages/build.py", "app_pages/train.py", "app_pages/finetune.py"],
    "Inspect": ["app_pages/predictions.py", "app_pages/feature_maps.py", "app_pages/gradcam.py"],
    "Experiments": ["app_pages/gradient_flow.py", "app_pages/degradation.py", "app_pages/lesion.py",
                    "app_pages/landscape.py"],
}
_BUILT = "_lab_nav_pages"  # {id(page object): page path} of this run's navigation


# --- the lesson this session follows ------------------------------------------------------------


def read_lesson_link() -> None:
    """Apply ``?lesson=<id>`` when it appears or changes (``?lesson=`` empty: leave the lesson). Called by app.py
    first, before :func:`resnet_lab.ui.identity.identity_gate` (a personal link shown on joining names the
    lesson)."""
    from ..classroom.lessons import check_lesson_id

    seen = st.session_state.setdefault(URL_SEEN_KEY, {})
    raw = st.query_params.get("lesson")
    if raw is None or seen.get("lesson") == raw:
        return
    seen["lesson"] = raw
    st.session_state.pop(LESSON_ERROR_KEY, None)
    if raw == "":
        st.session_state.pop(LESSON_KEY, None)
        return
    try:
        lesson_id = check_lesson_id(raw[:64])  # hostile input: only [a-z0-9-]{1,40} is ever looked up
        _load_lesson(lesson_id)
    except (ValueError, OSError) as e:  # LessonError: a bad id, no such lesson, an invalid file; no settings
        st.session_state[LESSON_ERROR_KEY] = f"The lesson link could not be opened: {e}."
        st.session_state.pop(LESSON_KEY, None)
        return
    st.session_state[LESSON_KEY] = lesson_id


def _load_lesson(lesson_id: str) -> Lesson:
    from ..classroom.lessons import load_lesson

    return load_lesson(lesson_id, settings())  # cached on the file's mtime by the lessons module


def current_lesson() -> Lesson | None:
    """The lesson this session follows (opened with ``?lesson=<id>``), or None. The session keeps only the
    lesson's id; the lesson itself is read from the teacher's file on every run."""
    lesson_id = st.session_state.get(LESSON_KEY)
    if not isinstance(lesson_id, str):
        return None
    try:
        return _load_lesson(lesson_id)
    except ValueError as e:  # the file changed (or went) under a running lesson
        st.session_state[LESSON_ERROR_KEY] = f"The lesson could not be opened any more: {e}."
        st.session_state.pop(LESSON_KEY, None)
        return None


def leave_lesson() -> None:
    """Stop following the lesson: forget its id, and take it out of the address bar."""
    st.session_state.pop(LESSON_KEY, None)
    if "lesson" in st.query_params:
        del st.query_params["lesson"]
    st.session_state.setdefault(URL_SEEN_KEY, {}).pop("lesson", None)


def hidden(control: str) -> bool:
    """Does the current lesson hide this control (a name from ``resnet_lab.classroom.lessons.CONTROLS``:
    "optimizer", "lr", "schedule", "batch_size", "augment", "label_smoothing", "device", "seed",
    "custom_model", "upload", …)? Hiding calms a page; what may be done is decided by :func:`current_bounds`."""
    lesson = current_lesson()
    return lesson is not None and lesson.hides(control)


def current_bounds() -> Bounds:
    """The bounds this session's requests must respect: the class's for a student (none for a teacher), and
    the open lesson's on top, for everyone (see ``resnet_lab.classroom.lessons.effective_bounds``)."""
    from ..classroom.lessons import effective_bounds

    who = current_identity()
    try:
        return effective_bounds(who, settings(), current_lesson())
    except ValueError as e:  # the lesson's and the class's allowlists have nothing in common
        st.session_state[LESSON_ERROR_KEY] = f"This lesson cannot be followed in this class: {e}."
        st.session_state.pop(LESSON_KEY, None)
        return effective_bounds(who, settings(), None)



# --- the navigation and the banner ---------------------------------------------------------------


def page_path(name: str) -> str | None:
    """A lesson's page name ("train", "gradient_flow", "app_pages/train.py") -> its path, or None."""
    if name in PAGES:
        return name
    candidate = f"app_pages/{name.strip().replace('-', '_')}.py"
    return candidate if candidate in PAGES else None


def _lesson_paths() -> list[str]:
    lesson = current_lesson()
    if lesson is None:
        return []
    paths = []
    for lp in lesson.pages:
        path = page_path(lp.page)
        if path is not None and path not in paths:
            paths.append(path)
    return paths


def navigation(who: Identity):
    """``st.navigation`` for this person and lesson; returns the page to run."""
    lesson = current_lesson()
    lesson_paths = _lesson_paths()
    default = lesson_paths[0] if lesson_paths else HOME
    built: dict[int, str] = {}

    def page(path: str, visible: bool = True) -> st.Page:
        title, icon, _ = PAGES[path]
        p = st.Page(path, title=title, icon=icon, default=path == default,
                    visibility="visible" if visible or path == default else "hidden")
        built[id(p)] = path
        return p

    sections: dict[str, list[st.Page]] = {}
    if lesson is not None and lesson_paths:
        sections[" ".join(lesson.title.split())[:80] or "Lesson"] = [page(p) for p in lesson_paths]
    for section, paths in SECTIONS.items():
        rest = [p for p in paths if p not in lesson_paths]
        pages = [page(p, visible=(lesson is None or p in ("app_pages/gallery.py", TEACHER))
                      and (p != TEACHER or who.teacher)) for p in rest]
        if pages:
            sections[section] = pages
    nav = st.navigation(sections, expanded=True)  # every page in view: the gallery must not hide under "more"
    st.session_state[_BUILT] = built
    return nav


def current_page_path(nav) -> str | None:
    return st.session_state.get(_BUILT, {}).get(id(nav))


def lesson_banner(nav, who: Identity) -> None:
    """On every page of a lesson: the lesson's title, this page's text, the limits it sets, the next step."""
    error = st.session_state.get(LESSON_ERROR_KEY)
    if error:
        st.warning(error + " The lab opens as usual.", icon=":material/menu_book:")
        st.session_state.pop(LESSON_ERROR_KEY, None)
    lesson = current_lesson()
    if lesson is None:
        return
    path = current_page_path(nav)
    paths = _lesson_paths()
    texts = {page_path(lp.page): lp.text for lp in lesson.pages}
    with st.container(border=True, key="lab_lesson_banner"):
        step = f"step {paths.index(path) + 1} of {len(paths)}" if path in paths else "outside the lesson's steps"
        st.caption(f":material/menu_book: Lesson — {step}")
        st.text(lesson.title)  # written by the teacher; shown as text like every name
        if lesson.intro:  # lesson prose is Markdown (HTML stays escaped): in full on the first step, folded after
            if path == (paths[0] if paths else None):
                st.markdown(lesson.intro)
            else:
                with st.expander("About this lesson"):
                    st.markdown(lesson.intro)
        if texts.get(path):
            st.markdown(texts[path])
        lines = current_bounds().describe()
        if lines:
            st.caption("Limits on training in this lesson — " + " · ".join(plain(x) for x in lines))
        if path in paths and paths.index(path) + 1 < len(paths):
            nxt = paths[paths.index(path) + 1]
            st.page_link(nxt, label=f"Next: {PAGES[nxt][0]}", icon=":material/arrow_forward:")
        if who.teacher:
            st.button("Leave the lesson", key="lab_leave_lesson", on_click=leave_lesson,
                      icon=":material/close:", help="Only teachers see this: students stay in the lesson.")

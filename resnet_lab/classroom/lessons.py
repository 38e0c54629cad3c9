"""Lessons: a TOML file a teacher writes — the pages in order, the text to show on each, the bounds, the
presets and datasets allowed, the controls hidden — opened with a lesson link (``?lesson=<id>``) that locks
the lab to it (TensorFlow Playground's hidden controls, done for a class).

A lesson file, ``<id>.toml``::

    id = "why-skip-connections"          # must equal the file name (without .toml)
    title = "Why skip connections"
    intro = "markdown shown on top of every page of the lesson"
    hide = ["optimizer", "schedule"]     # names from CONTROLS
    presets = ["resnet20", "resnet56"]   # optional; plain twins come along (or put it in [bounds])
    datasets = ["shapes"]                # optional (or put it in [bounds])

    [bounds]                             # the keys of a settings file's [bounds]
    max_epochs = 8

    [[pages]]                            # in the order the lesson walks them
    page = "gradient_flow"               # one of PAGE_IDS
    text = "markdown for that page"

Lesson ids come from URLs, so they are hostile input: only ``[a-z0-9-]{1,40}`` is looked up, and only as a
file name inside the lesson folders (``settings.lessons_dirs``: the folders named in the settings file, the
teacher's ``$RESNET_LAB_HOME/lessons``, then the lessons shipped in the repository's ``lessons/``; the first
match wins, so a teacher can replace a shipped lesson by writing one with its id). Files are size-capped and
parsed strictly: an unknown key, page or control is refused with a message naming it and the file.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checks import check_text as _text, read_small_text
from ..identity import Identity
from .bounds import Bounds
from .settings import ClassSettings

LESSON_ID = re.compile(r"[a-z0-9-]{1,40}")
MAX_LESSON_BYTES = 64 * 1024
MAX_TITLE_CHARS = 100
MAX_TEXT_CHARS = 8000  # an intro or one page's text (markdown)
MAX_PAGES = 20

PAGE_IDS = ("home", "build", "train", "finetune", "predictions", "feature_maps", "gradcam", "gradient_flow",
            "degradation", "lesion", "landscape")
"""Pages a lesson may list: each is ``app_pages/<id>.py``."""

CONTROLS: dict[str, str] = {
    "optimizer": "the optimizer and its settings (momentum, Nesterov, weight decay)",
    "lr": "the learning rate",
    "schedule": "the learning-rate schedule and its warm-up",
    "batch_size": "the batch size (the recipe's is used)",
    "augment": "the data-augmentation switch",
    "label_smoothing": "label smoothing",
    "device": "the choice of CPU or GPU (the lab picks)",
    "compile": "the torch.compile switch",
    "seed": "the seed (the default seed is used)",
    "custom_model": "building a custom model: only presets are offered",
    "upload": "importing your own images as a dataset",
}
"""Controls a lesson may hide, with what hiding each one takes away. Hiding is for a calmer page; what a student
may *do* is decided by the bounds, which the server checks whatever the page shows."""

TOP_KEYS = ("id", "title", "intro", "hide", "presets", "datasets", "bounds", "pages")
PAGE_KEYS = ("page", "text")


class LessonError(ValueError):
    """A lesson that cannot be opened (bad id, not found, or an invalid file); the message says which and why."""


@dataclass(frozen=True)
class LessonPage:
    page: str  # one of PAGE_IDS (app_pages/<page>.py)
    text: str  # markdown shown on that page while the lesson is open


@dataclass(frozen=True)
class Lesson:
    id: str  # the file's name without .toml, and the ?lesson= value
    title: str  # shown as text
    intro: str  # markdown, shown above every page of the lesson
    pages: tuple[LessonPage, ...]  # in the lesson's order
    bounds: Bounds = field(default_factory=Bounds)  # the lesson's bounds, presets and datasets included
    hide: frozenset[str] = frozenset()  # names from CONTROLS
    presets: tuple[str, ...] | None = None  # presets offered (and allowed); None: any
    datasets: tuple[str, ...] | None = None  # datasets offered (and allowed); None: any
    path: Path | None = None  # the file it was read from

    @property
    def page_ids(self) -> tuple[str, ...]:
        return tuple(p.page for p in self.pages)

    def text_for(self, page: str) -> str | None:
        """The lesson's text for ``page``, or None when the lesson does not visit it."""
        return next((p.text for p in self.pages if p.page == page), None)

    def hides(self, control: str) -> bool:
        """Does the lesson hide ``control`` (a name from CONTROLS; an unknown name is a programming error)?"""
        if control not in CONTROLS:
            raise ValueError(f"no control named {control!r}; controls: {', '.join(CONTROLS)}")
        return control in self.hide

    def next_page(self, page: str) -> str | None:
        """The page after ``page`` in the lesson (None at the end, or when the lesson does not visit it)."""
        ids = self.page_ids
        return ids[ids.index(page) + 1] if page in ids and ids.index(page) + 1 < len(ids) else None


def check_lesson_id(lesson_id: Any) -> str:
    """``lesson_id`` when it is a lesson id (``[a-z0-9-]{1,40}``), else :class:`LessonError` (it comes from URLs)."""
    if not isinstance(lesson_id, str) or not LESSON_ID.fullmatch(lesson_id):
        shown = repr(lesson_id)[:60] if isinstance(lesson_id, str) else type(lesson_id).__name__
        raise LessonError(f"{shown} is not a lesson id: use 1 to 40 lower-case letters, digits and '-'")
    return lesson_id


def parse_lesson(text: str, where: str = "the lesson", expected_id: str | None = None) -> Lesson:
    """A lesson from TOML text (the door every lesson file goes through); LessonError naming ``where``."""
    if len(text.encode("utf-8")) > MAX_LESSON_BYTES:
        raise LessonError(f"{where} is larger than {MAX_LESSON_BYTES:,} bytes")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise LessonError(f"{where} is not valid TOML: {e}") from None
    try:
        return _from_raw(raw, expected_id)
    except ValueError as e:
        raise LessonError(f"{where}: {e}") from None


def _from_raw(raw: dict[str, Any], expected_id: str | None) -> Lesson:
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(TOP_KEYS)}")
    for key in ("id", "title", "pages"):
        if key not in raw:
            raise ValueError(f"{key} is missing")
    lesson_id = raw["id"]
    if not isinstance(lesson_id, str) or not LESSON_ID.fullmatch(lesson_id):
        raise ValueError(f"id={lesson_id!r} is not a lesson id: use 1 to 40 lower-case letters, digits and '-'")
    if expected_id is not None and lesson_id != expected_id:
        raise ValueError(f"id={lesson_id!r} must equal the file's name ({expected_id}.toml)")
    title = _text("title", raw["title"], MAX_TITLE_CHARS, required=True)
    intro = _text("intro", raw.get("intro", ""), MAX_TEXT_CHARS)
    pages = raw["pages"]
    if not isinstance(pages, list) or not pages:
        raise ValueError("pages must be a list of [[pages]] tables, at least one")
    if len(pages) > MAX_PAGES:
        raise ValueError(f"a lesson visits at most {MAX_PAGES} pages, this one lists {len(pages)}")
    parsed: list[LessonPage] = []
    for i, p in enumerate(pages):
        if not isinstance(p, dict):
            raise ValueError(f"pages[{i}] must be a table ([[pages]]), got {p!r}")
        bad = sorted(set(p) - set(PAGE_KEYS))
        if bad:
            raise ValueError(f"pages[{i}]: unknown key(s) {', '.join(bad)}; allowed: {', '.join(PAGE_KEYS)}")
        page = p.get("page")
        if page not in PAGE_IDS:
            raise ValueError(f"pages[{i}]: page={page!r} is not a page; choose one of {', '.join(PAGE_IDS)}")
        if any(q.page == page for q in parsed):
            raise ValueError(f"pages[{i}]: page {page!r} is listed twice")
        parsed.append(LessonPage(page, _text(f"pages[{i}].text", p.get("text", ""), MAX_TEXT_CHARS)))
    hide = raw.get("hide", [])
    if not isinstance(hide, list) or not all(isinstance(h, str) for h in hide):
        raise ValueError(f"hide must be a list of control names, got {hide!r}")
    unknown_controls = [h for h in hide if h not in CONTROLS]
    if unknown_controls:
        raise ValueError(f"hide: unknown control(s) {', '.join(map(repr, unknown_controls))}; "
                         f"controls: {', '.join(CONTROLS)}")
    table = raw.get("bounds", {})
    if not isinstance(table, dict):
        raise ValueError(f"bounds must be a table ([bounds]), got {type(table).__name__}")
    table = dict(table)
    for key in ("presets", "datasets"):
        if key in raw:
            if key in table:
                raise ValueError(f"{key} is set twice (at the top and in [bounds]); set it once")
            table[key] = raw[key]
    bounds = Bounds.from_mapping(table, "[bounds]")
    return Lesson(id=lesson_id, title=title, intro=intro, pages=tuple(parsed), bounds=bounds,
                  hide=frozenset(hide), presets=bounds.presets, datasets=bounds.datasets)


_cache: dict[tuple[str, int, int], Lesson] = {}
_cache_lock = threading.Lock()
_CACHE_ENTRIES = 64


def _read(path: Path, lesson_id: str) -> Lesson:
    """The lesson in ``path``, cached on its (path, mtime, size)."""
    try:
        st = path.stat()
    except OSError as e:
        raise LessonError(f"the lesson file {path} cannot be read: {e.strerror or e}") from None
    key = (str(path), st.st_mtime_ns, st.st_size)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    if st.st_size > MAX_LESSON_BYTES:
        raise LessonError(f"{path} is larger than {MAX_LESSON_BYTES:,} bytes")
    text = read_small_text(path, MAX_LESSON_BYTES, "lesson", LessonError)
    lesson = parse_lesson(text, str(path), expected_id=lesson_id)
    lesson = dataclasses.replace(lesson, path=path)
    with _cache_lock:
        if len(_cache) >= _CACHE_ENTRIES:
            _cache.pop(next(iter(_cache)))
        _cache[key] = lesson
    return lesson


def _find(lesson_id: str, settings: ClassSettings) -> Path | None:
    for folder in settings.lessons_dirs:
        path = Path(folder) / f"{lesson_id}.toml"
        if path.is_file():
            return path
    return None


def load_lesson(lesson_id: Any, settings: ClassSettings) -> Lesson:
    """The lesson ``lesson_id`` from the first lesson folder that has it; LessonError for an id that is not one
    (``'../x'``), a lesson that does not exist, or an invalid file."""
    lesson_id = check_lesson_id(lesson_id)
    path = _find(lesson_id, settings)
    if path is None:
        known = ", ".join(_ids(settings)) or "none"
        raise LessonError(f"there is no lesson {lesson_id!r} (lessons: {known})")
    return _read(path, lesson_id)


def _ids(settings: ClassSettings) -> list[str]:
    """Every lesson id in the lesson folders, first folder first, each once."""
    seen: dict[str, None] = {}
    for folder in settings.lessons_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for p in sorted(folder.glob("*.toml")):
            if LESSON_ID.fullmatch(p.stem) and p.is_file():
                seen.setdefault(p.stem, None)
    return list(seen)


def list_lessons(settings: ClassSettings) -> list[Lesson]:
    """Every lesson that opens, sorted by id. A file that does not is left out here and named, with why, by
    :func:`lesson_problems` (the teacher page shows both)."""
    out = []
    for lesson_id in sorted(_ids(settings)):
        try:
            out.append(load_lesson(lesson_id, settings))
        except LessonError:
            continue  # reported by lesson_problems
    return out


def lesson_problems(settings: ClassSettings) -> dict[str, str]:
    """Lesson id -> why its file does not open, for every lesson file that does not."""
    out = {}
    for lesson_id in sorted(_ids(settings)):
        try:
            load_lesson(lesson_id, settings)
        except LessonError as e:
            out[lesson_id] = str(e)
    return out


def effective_bounds(who: Identity, settings: ClassSettings, lesson: Lesson | None = None) -> Bounds:
    """The bounds that apply to ``who``: the class's for a student (none for a teacher, or in single-user mode,
    whose identity is the machine's, a teacher's), made stricter by the open lesson's, which apply to everyone
    who opens it (a teacher previewing a lesson sees what the class sees). ValueError when the lesson's and the
    class's allowlists have nothing in common."""
    base = Bounds() if who.teacher else settings.bounds
    return base if lesson is None else base.stricter(lesson.bounds)


__all__ = ["CONTROLS", "LESSON_ID", "Lesson", "LessonError", "LessonPage", "PAGE_IDS", "check_lesson_id",
           "effective_bounds", "lesson_problems", "list_lessons", "load_lesson", "parse_lesson"]

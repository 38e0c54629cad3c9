"""The classroom: who a browser session is, what a class may train, and the lessons a teacher writes.

Plain Python (never streamlit): the UI (``resnet_lab.ui.identity``) asks, this package decides.

* :mod:`.settings` — the teacher's settings file and environment (:func:`load_settings`, :class:`ClassSettings`,
  its ``mode``: login, proxy, class or single).
* :mod:`.people` — identities from a class code and personal link, a login, a trusted proxy header, or the
  teacher's token; :func:`resolve_identity` picks the source by mode.
* :mod:`.bounds` — server-side bounds on training and uploads (:class:`Bounds`, :class:`OutOfBounds`).
* :mod:`.lessons` — lesson files (:func:`load_lesson`, :func:`list_lessons`, :func:`effective_bounds`).
* :mod:`.uploads` — a person's datasets: an upload within the class's cap, recorded as theirs in the store
  (:func:`import_dataset`), and deleted only by them or a teacher (:func:`remove_dataset`).

Who may stop, resume or delete a record is :mod:`resnet_lab.identity` and the store/jobs layer that calls it.
"""

from .bounds import Bounds, OutOfBounds
from .lessons import CONTROLS, PAGE_IDS, Lesson, LessonError, LessonPage, effective_bounds, list_lessons, load_lesson
from .people import (
    JoinRefused,
    hash_token,
    identity_from_login,
    identity_from_proxy,
    identity_from_token,
    join_class,
    resolve_identity,
    teacher_identity,
)
from .settings import ClassSettings, QueueCaps, SettingsError, load_settings
from .uploads import import_dataset, remove_dataset

__all__ = ["Bounds", "CONTROLS", "ClassSettings", "JoinRefused", "Lesson", "LessonError", "LessonPage", "OutOfBounds",
           "PAGE_IDS", "QueueCaps", "SettingsError", "effective_bounds", "hash_token", "identity_from_login",
           "identity_from_proxy", "identity_from_token", "import_dataset", "join_class", "list_lessons",
           "load_lesson", "load_settings", "remove_dataset", "resolve_identity", "teacher_identity"]

"""The teacher's settings: one TOML file and a few environment variables, read through one safe door.

Where they come from, later ones winning:

1. ``$RESNET_LAB_SETTINGS`` (a TOML file; it must exist when the variable is set), else
   ``$RESNET_LAB_HOME/classroom.toml`` (absent: no class, no limits — one person on their own machine);
2. the environment: ``RESNET_LAB_CLASS_CODE``, ``RESNET_LAB_TEACHER_TOKEN``, ``RESNET_LAB_TEACHERS`` (a comma
   list of logins) and ``RESNET_LAB_PROXY_HEADER`` replace the file's values when set and not empty.

Secrets belong in the environment (or a file only the server's user can read); ``classroom.example.toml`` at
the repository root documents every key. The file is untrusted text all the same: it is size-capped, parsed
with ``tomllib``, and an unknown table or key, a wrong type or an out-of-range value raises
:class:`SettingsError` (a ``ValueError``) naming the key and the file — a typo in ``max_epoch`` must not
silently leave a class unbounded.

:func:`load_settings` is called on every scheduler pump and every page run, so it is cached on the file's
(path, mtime, size) and the environment's values: a call that finds nothing changed costs one ``stat``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from ..checks import check_int, read_small_text
from ..paths import lab_home
from .bounds import DEFAULT_KEEP_WEIGHTS_MB, Bounds

ENV_SETTINGS = "RESNET_LAB_SETTINGS"
ENV_CLASS_CODE = "RESNET_LAB_CLASS_CODE"
ENV_TEACHER_TOKEN = "RESNET_LAB_TEACHER_TOKEN"
ENV_TEACHERS = "RESNET_LAB_TEACHERS"
ENV_PROXY_HEADER = "RESNET_LAB_PROXY_HEADER"
ENV_VARS = (ENV_SETTINGS, ENV_CLASS_CODE, ENV_TEACHER_TOKEN, ENV_TEACHERS, ENV_PROXY_HEADER)

SETTINGS_FILE = "classroom.toml"  # in $RESNET_LAB_HOME
MAX_SETTINGS_BYTES = 64 * 1024  # a settings file is a few hundred bytes; anything far larger is not one
MAX_SECRET_CHARS = 200  # class code, teacher token
MAX_LOGIN_CHARS = 320  # an e-mail address's maximum length
MAX_QUEUE_CAP = 10_000
REPO_LESSONS = Path(__file__).resolve().parents[2] / "lessons"  # the lessons shipped with the lab
HEADER_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")  # an HTTP header name as proxies send them

Mode = Literal["login", "proxy", "class", "single"]

# table -> key -> one line on what it is (the example file documents each with a comment)
SCHEMA: dict[str, dict[str, str]] = {
    "class": {
        "name": "the class's name, shown on the join form and the teacher page (as text)",
        "code": "the class code students type to join (env RESNET_LAB_CLASS_CODE wins)",
        "teacher_token": "the teacher's secret (env RESNET_LAB_TEACHER_TOKEN wins; prefer the env)",
        "teachers": "logins (e-mail, OIDC subject or proxy user) that are teachers (env RESNET_LAB_TEACHERS wins)",
        "proxy_header": "the header a trusted reverse proxy sets to the user's name (env RESNET_LAB_PROXY_HEADER)",
    },
    "bounds": {k: "see resnet_lab.classroom.bounds" for k in Bounds.__dataclass_fields__},
    "queue": {
        "max_queued_per_owner": "jobs one student may have queued or running at once (teachers: no cap)",
        "max_running_per_owner": "jobs of one student that may run at the same time",
    },
    "lessons": {
        "dirs": "extra folders of lesson files, searched first (relative to this file)",
    },
    "downloads": {
        "students_may_start": "whether a student may start a download of a dataset or weights (default false: the "
                              "teacher fetches them, say with Prepare for class; students wait on a download "
                              "already running either way)",
    },
}


class SettingsError(ValueError):
    """The settings file (or an environment variable) is not valid; the message names the key and the file."""


@dataclass(frozen=True)
class QueueCaps:
    max_queued_per_owner: int | None = None  # a student's queued + running jobs at once (None: no cap)
    max_running_per_owner: int | None = None  # a student's jobs running at the same time (None: no cap)


@dataclass(frozen=True)
class ClassSettings:
    class_code: str | None = field(default=None, repr=False)  # what students type to join (None: no class mode)
    teacher_token: str | None = field(default=None, repr=False)  # the teacher's secret (None: only logins)
    teacher_logins: frozenset[str] = frozenset()  # lower-cased logins that are teachers
    proxy_header: str | None = None  # trusted reverse-proxy header with the user's name (None: never read)
    bounds: Bounds = field(default_factory=lambda: Bounds(max_keep_weights_mb=DEFAULT_KEEP_WEIGHTS_MB))  # what
    #   students may train and upload (a file's [bounds]; kept weights have a default, the rest none)
    queue: QueueCaps = field(default_factory=QueueCaps)  # per-owner caps for the scheduler
    lessons_dirs: tuple[Path, ...] = ()  # where lesson files are looked for, first match wins
    class_name: str = ""  # shown as text
    students_may_download: bool = False  # may a student start a download ([downloads] students_may_start)
    path: Path | None = None  # the settings file read (None: none was)

    def mode(self, auth_configured: bool) -> Mode:
        """How a browser session gets its identity: ``"login"`` when the app has Streamlit's ``[auth]``
        configured (the UI knows; it tells us), else ``"proxy"`` with a trusted header, else ``"class"`` with
        a class code, else ``"single"`` (one person on their own machine: no prompt, the machine's identity)."""
        if auth_configured:
            return "login"
        if self.proxy_header:
            return "proxy"
        if self.class_code:
            return "class"
        return "single"

    def is_teacher_login(self, login: str | None) -> bool:
        """Is ``login`` (an e-mail, OIDC subject or proxy user name) on the teachers' list? Case-insensitive."""
        return isinstance(login, str) and login.strip().lower() in self.teacher_logins

    def is_teacher_owner(self, owner: str | None) -> bool:
        """Is the record owner ``owner`` (an ``Identity.owner`` key, as stored on jobs) a teacher's, by these
        settings? The machine (``local``), the teacher of the teacher's token, and ``login:``/``proxy:`` owners
        whose login is on the teachers' list (:meth:`is_teacher_login`) are; a class member (``class:``) never is.
        What the queue asks to let a teacher's jobs past the class's caps (it knows owners, not identities).
        A login whose e-mail is its key but whose *subject* is the one listed is not recognised from the key."""
        from ..identity import LOCAL
        from .people import TEACHER  # the owner key of the teacher's token (people imports this module)

        if not isinstance(owner, str):
            return False
        if owner in (LOCAL, TEACHER):
            return True
        source, _, login = owner.partition(":")
        return source in ("login", "proxy") and self.is_teacher_login(login)


def settings_path() -> Path:
    """The settings file in use: ``$RESNET_LAB_SETTINGS`` or ``$RESNET_LAB_HOME/classroom.toml``."""
    env = os.environ.get(ENV_SETTINGS, "").strip()
    return Path(env).expanduser() if env else lab_home() / SETTINGS_FILE


_cache: dict[tuple[Any, ...], ClassSettings] = {}
_cache_lock = threading.Lock()
_CACHE_ENTRIES = 8


def load_settings(path: str | os.PathLike[str] | None = None) -> ClassSettings:
    """The class's settings (see the module docstring); cached until the file or the environment changes.

    ``path`` overrides ``$RESNET_LAB_SETTINGS``; a path given either way must exist. Raises
    :class:`SettingsError` for a missing explicit file, an oversized or unparsable one, or any invalid key."""
    explicit = path is not None or bool(os.environ.get(ENV_SETTINGS, "").strip())
    p = Path(path).expanduser() if path is not None else settings_path()
    try:
        st = p.stat()
        stamp: tuple[Any, ...] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
    except FileNotFoundError:
        if explicit:
            raise SettingsError(f"the settings file {p} does not exist (set by {ENV_SETTINGS} or given)") from None
        stamp = None
    except OSError as e:
        raise SettingsError(f"the settings file {p} cannot be read: {e.strerror or e}") from None
    key = (str(p), stamp, str(lab_home()), tuple(os.environ.get(v) for v in ENV_VARS))
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    settings = _parse(p if stamp is not None else None)
    with _cache_lock:
        if len(_cache) >= _CACHE_ENTRIES:
            _cache.pop(next(iter(_cache)))
        _cache[key] = settings
    return settings


def parse_settings_text(text: str, where: str = "the settings", base: Path | None = None) -> ClassSettings:
    """Settings from TOML text alone (no environment): the door :func:`load_settings` goes through."""
    if len(text.encode("utf-8")) > MAX_SETTINGS_BYTES:
        raise SettingsError(f"{where} is larger than {MAX_SETTINGS_BYTES:,} bytes; is it the right file?")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{where} is not valid TOML: {e}") from None
    return _from_raw(raw, where, base)


def _parse(path: Path | None) -> ClassSettings:
    if path is None:
        settings = _from_raw({}, "the defaults", None)
    else:
        where = str(path)
        text = read_small_text(path, MAX_SETTINGS_BYTES, "settings", SettingsError, "; is it the right file?")
        settings = parse_settings_text(text, where, path.resolve().parent)
        settings = _replace(settings, path=path)
    return _with_env(settings)


def _replace(s: ClassSettings, **changes: Any) -> ClassSettings:
    return dataclasses.replace(s, **changes)


def _from_raw(raw: Mapping[str, Any], where: str, base: Path | None) -> ClassSettings:
    unknown = sorted(set(raw) - set(SCHEMA))
    if unknown:
        raise SettingsError(f"{where}: unknown table(s) or key(s) {', '.join(unknown)}; "
                            f"allowed tables: {', '.join(f'[{t}]' for t in SCHEMA)}")
    tables: dict[str, Mapping[str, Any]] = {}
    for name, keys in SCHEMA.items():
        table = raw.get(name, {})
        if not isinstance(table, Mapping):
            raise SettingsError(f"{where}: {name} must be a table ([{name}]), got {type(table).__name__}")
        bad = sorted(set(table) - set(keys))
        if bad:
            raise SettingsError(f"{where}: unknown key(s) in [{name}]: {', '.join(bad)}; "
                                f"allowed: {', '.join(keys)}")
        tables[name] = table
    c = tables["class"]
    try:
        code = _secret("[class] code", c.get("code"))
        token = _secret("[class] teacher_token", c.get("teacher_token"))
        teachers = _logins("[class] teachers", c.get("teachers", []))
        header = _header("[class] proxy_header", c.get("proxy_header"))
        name = _text("[class] name", c.get("name", ""), 80)
        # a class caps kept weights even when its file says nothing: DEFAULT_KEEP_WEIGHTS_MB (a number to raise)
        bounds = Bounds.from_mapping({"max_keep_weights_mb": DEFAULT_KEEP_WEIGHTS_MB, **tables["bounds"]}, "[bounds]")
        q = tables["queue"]
        queue = QueueCaps(*(None if q.get(k) is None else check_int(f"[queue] {k}", q[k], 1, MAX_QUEUE_CAP)
                            for k in ("max_queued_per_owner", "max_running_per_owner")))
        may_download = tables["downloads"].get("students_may_start", False)
        if not isinstance(may_download, bool):
            raise ValueError(f"[downloads] students_may_start must be true or false, got {may_download!r}")
        dirs = tables["lessons"].get("dirs", [])
        if not isinstance(dirs, list) or not all(isinstance(d, str) and d.strip() for d in dirs):
            raise ValueError(f"[lessons] dirs must be a list of folder paths, got {dirs!r}")
    except ValueError as e:
        raise SettingsError(f"{where}: {e}") from None
    extra = tuple(_resolve(d, base) for d in dirs)
    defaults = (lab_home() / "lessons", REPO_LESSONS)
    lessons_dirs = tuple(dict.fromkeys(extra + defaults))
    return ClassSettings(class_code=code, teacher_token=token, teacher_logins=teachers, proxy_header=header,
                         bounds=bounds, queue=queue, lessons_dirs=lessons_dirs, class_name=name,
                         students_may_download=may_download)


def _with_env(s: ClassSettings) -> ClassSettings:
    changes: dict[str, Any] = {}
    try:
        if env := os.environ.get(ENV_CLASS_CODE, "").strip():
            changes["class_code"] = _secret(ENV_CLASS_CODE, env)
        if env := os.environ.get(ENV_TEACHER_TOKEN, "").strip():
            changes["teacher_token"] = _secret(ENV_TEACHER_TOKEN, env)
        if env := os.environ.get(ENV_TEACHERS, "").strip():
            changes["teacher_logins"] = _logins(ENV_TEACHERS, [t for t in env.split(",") if t.strip()])
        if env := os.environ.get(ENV_PROXY_HEADER, "").strip():
            changes["proxy_header"] = _header(ENV_PROXY_HEADER, env)
    except ValueError as e:
        raise SettingsError(f"the environment: {e}") from None
    return _replace(s, **changes) if changes else s


def _resolve(d: str, base: Path | None) -> Path:
    p = Path(d).expanduser()
    return p if p.is_absolute() or base is None else base / p


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text)


def _text(name: str, value: Any, limit: int) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    value = value.strip()
    if len(value) > limit or _has_control(value):
        raise ValueError(f"{name} must be at most {limit} characters without control characters")
    return value


def _secret(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got a {type(value).__name__}")
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_SECRET_CHARS or _has_control(value):  # never echo a secret in a message
        raise ValueError(f"{name} must be 1 to {MAX_SECRET_CHARS} characters without control characters")
    return value


def _logins(name: str, value: Any) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, list):
        raise ValueError(f"{name} must be a list of logins, got {value!r}")
    out = set()
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{name} must list logins (non-empty strings), got {item!r}")
        item = item.strip().lower()
        if len(item) > MAX_LOGIN_CHARS or _has_control(item):
            raise ValueError(f"{name}: {item[:40]!r}... is not a login (at most {MAX_LOGIN_CHARS} characters)")
        out.add(item)
    return frozenset(out)


def _header(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a header name, got {value!r}")
    value = value.strip()
    if not value:
        return None
    if not HEADER_NAME.fullmatch(value):
        raise ValueError(f"{name}={value[:100]!r} is not a header name (letters, digits, '-' and '_')")
    return value


__all__ = ["ClassSettings", "ENV_CLASS_CODE", "ENV_PROXY_HEADER", "ENV_SETTINGS", "ENV_TEACHERS", "ENV_TEACHER_TOKEN",
           "QueueCaps", "SCHEMA", "SettingsError", "load_settings", "parse_settings_text", "settings_path"]

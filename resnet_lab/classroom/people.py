"""Who a browser session is, from each of the three sources a class can use (plus the teacher's token).

* **Class code** (the default class mode): :func:`join_class` checks the code the student typed against the
  teacher's (constant time), records the display name and returns a fresh unguessable token for the personal
  link ``?me=<token>``; :func:`identity_from_token` finds the person again from that link, in any tab or on any
  laptop. Only ``sha256(token)`` is stored (:func:`hash_token`): the token carries 192 random bits, so a plain
  hash is as good as a slow password hash here, and a leaked database gives no working links.
* **Login** (Streamlit's ``st.login``, OIDC): :func:`identity_from_login` turns ``st.user``'s claims into an
  identity; teachers by an allowlist of logins.
* **Reverse proxy**: :func:`identity_from_proxy` trusts the header the teacher named, and only then.
* **Teacher's token**: :func:`teacher_identity` (``RESNET_LAB_TEACHER_TOKEN``, constant-time compare).

Names are untrusted text: kept verbatim (HTML included: the UI always shows it as text), but never empty,
never over :data:`MAX_NAME_CHARS` characters, never with control characters. Functions that read something a
browser sent (a token, a header) return ``None`` for junk; they never raise on it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
import unicodedata
from typing import TYPE_CHECKING, Any, Mapping

from ..identity import MACHINE, Identity
from .settings import ClassSettings

if TYPE_CHECKING:
    from ..store import Store

MAX_NAME_CHARS = 40  # a display name, after stripping spaces
MAX_LOGIN_NAME_CHARS = 80  # a name taken from a login or a proxy header
MAX_PROXY_VALUE_CHARS = 256  # a proxy header's user name
TOKEN_BYTES = 24  # random bytes of a personal token (secrets.token_urlsafe: 32 characters)
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")  # what could be a token; anything else is junk
TOUCH_EVERY_S = 60.0  # how often "last seen" is written for a person
TEACHER = "teacher"  # the owner key of the teacher who signs in with the teacher's token
# Unicode format characters that reorder or hide text (bidi embeddings, overrides, isolates): a name must not
# make the names around it read differently
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class JoinRefused(ValueError):
    """Joining the class was refused (wrong code, no class, a bad name); the message is for the student."""


def hash_token(token: str) -> str:
    """What is stored for a personal token: its sha256, hex."""
    if not isinstance(token, str):
        raise TypeError(f"a token is a string, got {type(token).__name__}")
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: Any) -> str:
    """A display name as kept: stripped, 1..40 characters, no control characters; JoinRefused otherwise."""
    if not isinstance(name, str):
        raise JoinRefused("Type your name.")
    name = name.strip()
    if not name:
        raise JoinRefused("Type your name.")
    if len(name) > MAX_NAME_CHARS:
        raise JoinRefused(f"Your name is {len(name)} characters long; use at most {MAX_NAME_CHARS}.")
    if any(_is_control(ch) for ch in name):
        raise JoinRefused("Your name has control characters in it (line breaks, tabs, hidden or right-to-left "
                          "marks); type it again.")
    return name


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs") or ch in _BIDI


def _same(a: str, b: str) -> bool:
    """Constant-time equality of two strings (of any lengths: their digests are compared)."""
    return hmac.compare_digest(hashlib.sha256(a.encode("utf-8")).digest(), hashlib.sha256(b.encode("utf-8")).digest())


GUESS_WINDOW_S = 60.0  # wrong class codes / teacher tokens are counted over this window ...
MAX_WRONG_GUESSES = 30  # ... and past this many, every attempt is refused until the window clears


class _Guesses:
    """Wrong secrets tried lately, in this server process: a short class code cannot be found by trying them
    all. Past :data:`MAX_WRONG_GUESSES` in :data:`GUESS_WINDOW_S`, every attempt (even a right one) is refused
    until older ones age out, so guessing is slower than any class; people already in are not affected."""

    def __init__(self) -> None:
        self._times: list[float] = []
        self._lock = threading.Lock()

    def _recent(self, now: float) -> list[float]:
        self._times = [t for t in self._times if now - t < GUESS_WINDOW_S]
        return self._times

    def blocked(self) -> bool:
        with self._lock:
            return len(self._recent(time.monotonic())) >= MAX_WRONG_GUESSES

    def wrong(self) -> None:
        with self._lock:
            self._recent(time.monotonic()).append(time.monotonic())


_guesses = _Guesses()
TOO_MANY = "Too many wrong codes were tried in the last minute; wait a minute, then try again."


def join_class(store: Store, name: Any, code: Any, settings: ClassSettings) -> tuple[Identity, str]:
    """Join the class as ``name`` with the class ``code``: the new identity and its personal token.

    The token goes into the personal link (``?me=<token>``) and is shown once; only its hash is stored in
    ``store.people``. Raises :class:`JoinRefused` when the lab has no class code, the code is wrong (compared in
    constant time, surrounding spaces ignored) or the name is not acceptable (:func:`check_name`). The code is
    checked before the name, so a wrong code never reveals anything about names."""
    if not settings.class_code:
        raise JoinRefused("This lab has no class code set, so there is no class to join.")
    if _guesses.blocked():
        raise JoinRefused(TOO_MANY)
    if not isinstance(code, str) or not _same(code.strip(), settings.class_code):
        _guesses.wrong()
        raise JoinRefused("That class code is not right. Ask your teacher for it.")
    name = check_name(name)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    person = store.people.create(name, hash_token(token))
    return _class_identity(person.id, person.name), token


def _class_identity(person_id: int, name: str) -> Identity:
    return Identity(owner=f"class:{person_id}", name=name, teacher=False, source="class")


def identity_from_token(store: Store, token: Any) -> Identity | None:
    """The class member whose personal token this is, or None (unknown, malformed, not a string: never raises
    for junk). Notes when they were last seen (at most one write a minute)."""
    if not isinstance(token, str) or not TOKEN_PATTERN.fullmatch(token):
        return None
    person = store.people.by_token_hash(hash_token(token))
    if person is None:
        return None
    if person.last_seen is None or time.time() - person.last_seen >= TOUCH_EVERY_S:  # no write lock on every rerun
        store.people.touch(person.id)
    return _class_identity(person.id, person.name)


def teacher_identity(token: Any, settings: ClassSettings) -> Identity | None:
    """The teacher, when ``token`` is the teacher's token (``RESNET_LAB_TEACHER_TOKEN``, constant-time compare);
    None otherwise, and always when no teacher token is set."""
    if not settings.teacher_token or not isinstance(token, str) or not token or _guesses.blocked():
        return None
    if not _same(token.strip(), settings.teacher_token):
        _guesses.wrong()
        return None
    return Identity(TEACHER, "Teacher", teacher=True, source="teacher")


def identity_from_login(user: Mapping[str, Any], settings: ClassSettings) -> Identity:
    """The identity of a person signed in with Streamlit's OIDC login (``st.user``'s claims as a mapping).

    The owner key is ``login:<e-mail>`` (lower-cased), or ``login:<sub>`` when the provider gives no e-mail or
    says it is not verified (``email_verified`` false); the name is the ``name`` claim, else the e-mail or the
    subject. A teacher when the e-mail (verified) or the subject is in ``settings.teacher_logins``. Raises
    ValueError when the claims name nobody (neither e-mail nor subject)."""
    if not isinstance(user, Mapping):
        raise ValueError(f"a login's claims are a mapping, got {type(user).__name__}")
    email = _claim(user.get("email"))
    if email is not None:
        email = email.lower()
        if user.get("email_verified") is False:
            email = None
    sub = _claim(user.get("sub"))
    key = email or sub
    if key is None:
        raise ValueError("the login gave neither an e-mail address nor a subject: nobody to sign in")
    name = _claim(user.get("name")) or key
    teacher = any(settings.is_teacher_login(k) for k in (email, sub) if k)
    return Identity(owner=f"login:{key}", name=name[:MAX_LOGIN_NAME_CHARS], teacher=teacher, source="login")


def _claim(value: Any) -> str | None:
    """A usable string claim: stripped, not empty, not absurdly long, no control characters; else None."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_PROXY_VALUE_CHARS or any(_is_control(ch) for ch in value):
        return None
    return value


def identity_from_proxy(headers: Mapping[str, Any], settings: ClassSettings) -> Identity | None:
    """The person a trusted reverse proxy says this is, from the header ``settings.proxy_header``; None when no
    header is trusted (the default: anyone can send any header), or it is absent, empty or not a plain name.
    The header name is matched case-insensitively. A teacher when the value is in ``settings.teacher_logins``."""
    header = settings.proxy_header
    if not header or headers is None:
        return None
    wanted = header.lower()
    value = None
    try:
        items = list(headers.items())
    except (AttributeError, TypeError):
        return None
    for k, v in items:
        if isinstance(k, str) and k.lower() == wanted:
            value = v
            break
    user = _claim(value)
    if user is None:
        return None
    return Identity(owner=f"proxy:{user}", name=user[:MAX_LOGIN_NAME_CHARS], teacher=settings.is_teacher_login(user),
                    source="proxy")


def resolve_identity(settings: ClassSettings, *, auth_configured: bool, store: Store | None = None,
                     user: Mapping[str, Any] | None = None, headers: Mapping[str, Any] | None = None,
                     me: Any = None, teacher_token: Any = None) -> Identity | None:
    """Who a browser session is, from what the UI read (it decides nothing itself), or None when the session
    must still sign in or join the class.

    ``settings.mode(auth_configured)`` picks the source: ``single`` is the machine's identity (no prompt);
    ``login`` uses ``user`` (``st.user`` as a mapping; ``is_logged_in`` false or no e-mail/subject: None);
    ``proxy`` uses ``headers``; ``class`` uses the personal token ``me`` (needs ``store``). In every mode but
    ``single``, a valid ``teacher_token`` makes the session the teacher's."""
    mode = settings.mode(auth_configured)
    if mode == "single":
        return MACHINE
    teacher = teacher_identity(teacher_token, settings)
    if teacher is not None:
        return teacher
    if mode == "login":
        if user is None or not isinstance(user, Mapping) or user.get("is_logged_in") is False:
            return None
        try:
            return identity_from_login(user, settings)
        except ValueError:
            return None
    if mode == "proxy":
        return identity_from_proxy(headers or {}, settings)
    if store is None:
        raise ValueError("class mode needs the store to find a personal token")
    return identity_from_token(store, me)


__all__ = ["JoinRefused", "MAX_NAME_CHARS", "TEACHER", "check_name", "hash_token", "identity_from_login",
           "identity_from_proxy", "identity_from_token", "join_class", "resolve_identity", "teacher_identity"]

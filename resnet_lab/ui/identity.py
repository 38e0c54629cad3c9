"""Who is using this browser session. Pages only ask; this module decides (the lesson it follows:
:mod:`resnet_lab.ui.lesson`).

The identity comes from exactly one source, chosen by the class settings (``ClassSettings.mode``):

- ``single``: nobody set up a class; the one person at this machine is :data:`MACHINE`, with no prompt;
- ``login``: Streamlit's own OIDC login (``[auth]`` in ``.streamlit/secrets.toml``): ``st.user``;
- ``proxy``: a header set by a trusted reverse proxy (its name chosen by the teacher);
- ``class``: a personal token from the ``?me=`` link a student got by joining with the class code, or the
  teacher token (``?teacher=`` or the "I'm the teacher" form).

Why a crafted session key or widget value cannot make someone else: the session keeps only a
*credential* (the personal or teacher token), never an identity, and the identity is derived from it on
every script run by the same checks that admitted it (the token's hash looked up in the class's people,
the teacher token compared in constant time). Whatever sits under any session key is therefore either a
valid credential — which the holder may use anyway — or refused. A login or proxy identity is derived
from ``st.user`` / the request headers on every run, which a browser cannot change in a running session.
Verified credentials are remembered for a few seconds in this process (keyed by the token's digest), so
the check costs a dictionary lookup, not a query, on most runs.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from typing import TYPE_CHECKING, Mapping
from urllib.parse import quote, urlsplit

import streamlit as st
from streamlit.errors import StreamlitAuthError

from ..identity import MACHINE, Identity
from .session import store

if TYPE_CHECKING:
    from ..classroom.settings import ClassSettings

CREDENTIAL_KEY = "_lab_credential"  # ("me" | "teacher", token): what the session holds, re-checked every run
JOINED_KEY = "_lab_just_joined"  # show the personal link prominently once, right after joining
LESSON_KEY = "_lab_lesson_id"  # the lesson this session follows (an id, set by resnet_lab.ui.lesson): kept in links
LESSON_ERROR_KEY = "_lab_lesson_error"
URL_SEEN_KEY = "_lab_identity_url_seen"  # the ?me= / ?lesson= values last applied, so each is read once
AUTH_KEY = "_lab_auth_configured"  # (when asked, the answer) of auth_configured, kept AUTH_CHECK_S in the session
AUTH_CHECK_S = 10.0

TOKEN_RE = re.compile(r"[A-Za-z0-9_\-]{8,128}")  # a personal token as it may appear in a link
MAX_SECRET_CHARS = 200  # a teacher token is the teacher's own choice of text, at most this long
VERIFIED_TTL_S = 15.0  # how long a verified credential is trusted without asking the store again
_MAX_VERIFIED = 4096


# --- the credential cache (process memory: no browser reaches it) ------------------------------------


class _Verified:
    """credential digest -> (checked at, Identity or None), for :data:`VERIFIED_TTL_S` seconds."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, Identity | None]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, Identity | None]:
        with self._lock:
            hit = self._items.get(key)
        if hit is None or time.monotonic() - hit[0] > VERIFIED_TTL_S:
            return False, None
        return True, hit[1]

    def put(self, key: str, who: Identity | None) -> None:
        with self._lock:
            if len(self._items) >= _MAX_VERIFIED:
                self._items.clear()
            self._items[key] = (time.monotonic(), who)


_verified = _Verified()


def _digest(kind: str, token: str) -> str:
    return hashlib.sha256(f"{kind}\0{token}".encode()).hexdigest()


# --- the sources ---------------------------------------------------------------------------------------


def settings() -> ClassSettings:
    from ..classroom.settings import load_settings

    return load_settings()


def auth_configured() -> bool:
    """Is Streamlit's login set up (an ``[auth]`` section in the secrets)? ``st.secrets`` raises when there is
    no secrets file at all, so ask whether one loaded first. Every rerun of every page asks (a live panel's tick
    too), and without a secrets file Streamlit looks for one on every call (a tenth of a class server's CPU with 30
    pages open), so the answer is kept in the session for AUTH_CHECK_S."""
    kept = st.session_state.get(AUTH_KEY)
    now = time.monotonic()
    if kept is not None and now - kept[0] < AUTH_CHECK_S:
        return kept[1]
    secrets = st.secrets
    try:
        answer = bool(secrets.load_if_toml_exists()) and "auth" in secrets
    except (FileNotFoundError, KeyError):  # StreamlitSecretNotFoundError is a FileNotFoundError
        answer = False
    st.session_state[AUTH_KEY] = (now, answer)
    return answer


def current_mode() -> str:
    """"single", "login", "proxy" or "class" (see the module docstring)."""
    return settings().mode(auth_configured())


def request_headers() -> Mapping[str, str]:
    """The headers of the request that opened this session (the proxy's, when there is one)."""
    return st.context.headers


def valid_token(raw: object, kind: str = "me") -> str | None:
    """A credential from a link or a form when it could be one, else None: a personal token is the lab's own
    URL-safe text; a teacher token is whatever the teacher chose (printable, at most 200 characters)."""
    if not isinstance(raw, str) or len(raw) > MAX_SECRET_CHARS:
        return None
    raw = raw.strip()
    if kind == "teacher":
        return raw if raw and raw.isprintable() else None
    return raw if TOKEN_RE.fullmatch(raw) else None


def _check(kind: str, token: str) -> Identity | None:
    """The identity a credential stands for (None: it stands for nobody). A personal token is looked up in the
    class's people (remembered for a few seconds per database); the teacher token is compared with the
    settings' every time (no lookup to save, and a changed token takes effect at once)."""
    if kind == "teacher":
        from ..classroom.people import teacher_identity

        return teacher_identity(token, settings())
    if kind != "me":
        return None
    s = store()
    key = _digest(f"me\0{s.path}", token)
    known, who = _verified.get(key)
    if known:
        return who
    from ..classroom.people import identity_from_token

    who = identity_from_token(s, token)
    _verified.put(key, who)
    return who


def _credential() -> tuple[str, str] | None:
    raw = st.session_state.get(CREDENTIAL_KEY)
    if isinstance(raw, tuple) and len(raw) == 2 and raw[0] in ("me", "teacher") and valid_token(raw[1], raw[0]):
        return raw[0], raw[1]
    return None


def _set_credential(kind: str, token: str) -> None:
    st.session_state[CREDENTIAL_KEY] = (kind, token)


def forget() -> None:
    """Leave: this tab forgets who it was (the personal link still works)."""
    st.session_state.pop(CREDENTIAL_KEY, None)
    st.session_state.pop(JOINED_KEY, None)
    if "me" in st.query_params:
        del st.query_params["me"]
    st.session_state[URL_SEEN_KEY] = {}


def _read_url_once() -> str | None:
    """Apply ``?me=`` and ``?teacher=`` when they appear or change. Returns a message for a bad link."""
    seen = st.session_state.setdefault(URL_SEEN_KEY, {})
    message = None
    me = st.query_params.get("me")
    if me is not None and seen.get("me") != me:
        seen["me"] = me
        token = valid_token(me)
        if token is not None and _check("me", token) is not None:
            _set_credential("me", token)
        else:
            message = "This personal link is not valid in this class. Join again with the class code."
            if (_credential() or ("", ""))[0] == "me":
                st.session_state.pop(CREDENTIAL_KEY, None)
    teacher = st.query_params.get("teacher")
    if teacher is not None:
        # never left in the address bar: a teacher's screen is often projected in front of the class
        del st.query_params["teacher"]
        token = valid_token(teacher, "teacher")
        if token is not None and _check("teacher", token) is not None:
            _set_credential("teacher", token)
        else:
            message = "That teacher link is not valid."
    return message


def _class_identity() -> Identity | None:
    cred = _credential()
    if cred is None:
        return None
    who = _check(*cred)
    if who is None:
        st.session_state.pop(CREDENTIAL_KEY, None)
    return who


def _login_identity(conf: ClassSettings) -> Identity | None:
    user = st.user.to_dict()
    if not user.get("is_logged_in"):
        return None
    from ..classroom.people import identity_from_login

    try:
        return identity_from_login(user, conf)
    except ValueError:  # the provider named nobody (no e-mail, no subject): treated as not logged in
        return None


def _resolve(mode: str, conf: ClassSettings) -> Identity | None:
    if mode == "single":
        return MACHINE
    if mode == "login":
        return _login_identity(conf)
    if mode == "proxy":
        from ..classroom.people import identity_from_proxy

        return identity_from_proxy(request_headers(), conf)
    return _class_identity()


# --- what pages ask --------------------------------------------------------------------------------------


def current_identity() -> Identity:
    """Who is acting in this session. Without an identity (a page opened before the gate) the gate is shown,
    which stops the script: a page never acts for nobody."""
    conf = settings()
    who = _resolve(conf.mode(auth_configured()), conf)
    return who if who is not None else identity_gate()


def me() -> Identity:
    """Who acts in this session (:func:`current_identity`), as the live views and pages ask it."""
    return current_identity()


def owner_label(owner: str | None, name: str | None, who: Identity) -> str:
    """How an owner is named to ``who``: "you", the machine, or the display name they gave (plain text)."""
    if owner is not None and owner == who.owner:
        return "you"
    if owner in (None, "", MACHINE.owner):
        return MACHINE.name
    return name or owner


def personal_link(token: str | None = None) -> str | None:
    """The link that brings this person back (another tab, another laptop) — to the lesson this session follows,
    when it follows one — or None (no personal token)."""
    if token is None:
        cred = _credential()
        if cred is None or cred[0] != "me":
            return None
        token = cred[1]
    lesson_id = st.session_state.get(LESSON_KEY)  # an id checked when the lesson link was read
    lesson = f"&lesson={quote(lesson_id, safe='-')}" if isinstance(lesson_id, str) and lesson_id else ""
    return f"{app_root()}?me={token}{lesson}"


def app_root() -> str:
    """The app's address as the browser sees it (scheme, host, base path), without a page or query."""
    url = st.context.url
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    if url:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}/" + (f"{base}/" if base else "")
    host = request_headers().get("Host")
    if host and re.fullmatch(r"[A-Za-z0-9.\-:\[\]]{1,255}", host):
        return f"http://{host}/" + (f"{base}/" if base else "")
    return "/" + (f"{base}/" if base else "")


# --- the gate -----------------------------------------------------------------------------------------


def identity_gate() -> Identity:
    """Called by app.py before the navigation runs (after :func:`resnet_lab.ui.lesson.read_lesson_link`):
    establishes who this session is, or shows how to become someone (join form, login button, refusal) and
    stops the script. Returns the identity."""
    try:
        conf = settings()
    except (ValueError, OSError) as e:
        st.title("ResNet Lab")
        st.error(f"The class settings could not be read, so the lab stays closed: {e}", icon=":material/error:")
        st.stop()
    mode = conf.mode(auth_configured())
    message = _read_url_once() if mode == "class" else None
    who = _resolve(mode, conf)
    if who is None:
        if mode == "login":
            _login_page()
        elif mode == "proxy":
            _proxy_refusal(conf)
        else:
            _join_page(conf, message)
        st.stop()
    _keep_in_url()
    if message:
        st.warning(message, icon=":material/link_off:")
    if st.session_state.pop(JOINED_KEY, False):
        link = personal_link()
        if link:
            st.success("You joined the class. **Your personal link** is below: keep it (bookmark it, or copy it "
                       "somewhere) to come back as yourself from another tab or laptop.", icon=":material/key:")
            st.code(link, language=None)
    return who


def _keep_in_url() -> None:
    """Keep the personal token and the lesson in the address bar, so a reload stays the same person and
    lesson (a page switch drops query parameters)."""
    cred = _credential()
    want = {}
    if cred is not None and cred[0] == "me":
        want["me"] = cred[1]
    lesson_id = st.session_state.get(LESSON_KEY)
    if lesson_id:
        want["lesson"] = lesson_id
    seen = st.session_state.setdefault(URL_SEEN_KEY, {})
    for key, value in want.items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value
        seen[key] = value


def identity_sidebar(who: Identity) -> None:
    """Who this is, in the sidebar: the name (as text), the personal link, the teacher page, leave / log out.
    Called by app.py after the navigation is built (a page link needs it). Nothing in single-user mode."""
    mode = current_mode()
    if mode == "single":
        return
    box = st.sidebar.container(border=True)
    box.caption("Signed in as" + (" (teacher)" if who.teacher else ""))
    box.text(who.name)  # untrusted text: shown as text, never as markdown
    if who.teacher:
        box.page_link("app_pages/teacher.py", label="Teacher page", icon=":material/school:")
    link = personal_link()
    if link:
        with box.popover("Your personal link", icon=":material/key:"):
            st.caption("Keep it to come back as yourself from another tab or laptop. Anyone with it acts as you.")
            st.code(link, language=None)
    if mode == "login":
        box.button("Log out", key="lab_logout", on_click=st.logout, icon=":material/logout:")
    elif mode == "class":
        box.button("Leave", key="lab_leave", on_click=forget, icon=":material/logout:",
                   help="This tab forgets who you are. Your personal link still brings you back.")


def _join_page(conf: ClassSettings, message: str | None) -> None:
    from ..classroom.people import MAX_NAME_CHARS

    st.title("ResNet Lab")
    if conf.class_name:
        st.text(conf.class_name)  # the teacher's words, shown as text all the same
    st.markdown("This lab is set up for a class. Type your name and the **class code** your teacher gave you: "
                "you get a personal link that brings you back to your runs from any tab or laptop.")
    if message:
        st.warning(message, icon=":material/link_off:")
    join, teach = st.tabs(["Join the class", "I'm the teacher"])
    with join:
        with st.form("lab_join_form"):
            st.text_input("Your name", key="lab_join_name", max_chars=MAX_NAME_CHARS,
                          placeholder="as the class knows you")
            st.text_input("Class code", key="lab_join_code", type="password", max_chars=128)
            st.form_submit_button("Join", type="primary", on_click=_join, icon=":material/login:")
        if st.session_state.get("lab_join_error"):
            st.error(st.session_state["lab_join_error"], icon=":material/error:")
    with teach:
        with st.form("lab_teacher_form"):
            st.text_input("Teacher token", key="lab_teacher_token", type="password", max_chars=MAX_SECRET_CHARS,
                          help="RESNET_LAB_TEACHER_TOKEN, as set when the lab was started.")
            st.form_submit_button("Enter as the teacher", on_click=_enter_as_teacher, icon=":material/school:")
        if st.session_state.get("lab_teacher_error"):
            st.error(st.session_state["lab_teacher_error"], icon=":material/error:")


def _join() -> None:
    from ..classroom.people import join_class

    name = st.session_state.get("lab_join_name") or ""
    code = st.session_state.get("lab_join_code") or ""
    st.session_state["lab_join_code"] = ""
    try:
        who, token = join_class(store(), str(name)[:200], str(code)[:200], settings())
    except (ValueError, PermissionError) as e:
        st.session_state["lab_join_error"] = str(e)
        return
    st.session_state.pop("lab_join_error", None)
    _verified.put(_digest(f"me\0{store().path}", token), who)
    _set_credential("me", token)
    st.session_state[JOINED_KEY] = True
    st.query_params["me"] = token
    st.session_state.setdefault(URL_SEEN_KEY, {})["me"] = token


def _enter_as_teacher() -> None:
    raw = st.session_state.get("lab_teacher_token") or ""
    st.session_state["lab_teacher_token"] = ""
    token = valid_token(raw, "teacher")
    if token is None or _check("teacher", token) is None:
        st.session_state["lab_teacher_error"] = "That is not this class's teacher token."
        return
    st.session_state.pop("lab_teacher_error", None)
    _set_credential("teacher", token)


def _login_page() -> None:
    st.title("ResNet Lab")
    st.markdown("This lab is set up for a class: **log in** to keep your runs yours.")
    if st.button("Log in", type="primary", icon=":material/login:", key="lab_login"):
        try:
            st.login()
        except StreamlitAuthError as e:  # Authlib missing, or an [auth] section that is incomplete
            st.error(f"Login is configured but cannot start here: {e}", icon=":material/error:")


def _proxy_refusal(conf: ClassSettings) -> None:
    st.title("ResNet Lab")
    st.error(f"This lab is served behind the class's sign-in, which names each person in the "
             f"`{conf.proxy_header}` header, and this request came without it. Open the lab through the "
             "class's address (not the server's own port), or ask the teacher.", icon=":material/lock:")


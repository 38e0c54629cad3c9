"""Identities from a class code and personal link, a login, a trusted proxy header and the teacher's token."""

import pytest

from resnet_lab.classroom.people import (
    JoinRefused,
    check_name,
    hash_token,
    identity_from_login,
    identity_from_proxy,
    identity_from_token,
    join_class,
    resolve_identity,
    teacher_identity,
)
from resnet_lab.classroom.settings import ClassSettings
from resnet_lab.identity import MACHINE, Identity
from resnet_lab.store import Store

CLASS = ClassSettings(class_code="skip-2016", teacher_token="t" * 32,
                      teacher_logins=frozenset({"teacher@uni.edu", "prof"}), proxy_header="X-Forwarded-User")


@pytest.fixture
def store():
    s = Store()
    yield s
    s.close()


def test_join_then_find_again_from_the_token(store):
    me, token = join_class(store, "  Ada <b>Lovelace</b> ", " skip-2016 ", CLASS)
    assert me == Identity(owner=f"class:{me.owner.split(':')[1]}", name="Ada <b>Lovelace</b>", teacher=False,
                          source="class")
    assert isinstance(token, str) and len(token) >= 32
    assert identity_from_token(store, token) == me  # a reload, a new tab, another laptop
    other = Store()  # another connection (another server thread)
    try:
        assert identity_from_token(other, token) == me
    finally:
        other.close()


def test_only_the_hash_of_the_token_is_stored(store):
    _, token = join_class(store, "Bo", "skip-2016", CLASS)
    rows = store.db.con.execute("SELECT * FROM people").fetchall()
    assert len(rows) == 1
    stored = [str(v) for v in tuple(rows[0])]
    assert token not in " ".join(stored)
    assert rows[0]["token_hash"] == hash_token(token) != token
    assert len(hash_token(token)) == 64


def test_each_join_is_a_new_person_with_a_new_token(store):
    a, ta = join_class(store, "Sam", "skip-2016", CLASS)
    b, tb = join_class(store, "Sam", "skip-2016", CLASS)  # two people may share a name
    assert a.owner != b.owner and ta != tb
    assert identity_from_token(store, ta) == a and identity_from_token(store, tb) == b


@pytest.mark.parametrize("code", ["skip-2015", "SKIP-2016", "", None, 2016, "skip-2016x", "skip"])
def test_a_wrong_code_is_refused_and_nobody_is_created(store, code):
    with pytest.raises(JoinRefused, match="class code is not right"):
        join_class(store, "Eve", code, CLASS)
    assert store.people.list() == []


def test_no_class_code_means_no_class_to_join(store):
    with pytest.raises(JoinRefused, match="no class code"):
        join_class(store, "Eve", "", ClassSettings())
    assert store.people.list() == []


def test_the_code_is_compared_in_constant_time(store, monkeypatch):
    import hmac

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    with pytest.raises(JoinRefused):
        join_class(store, "Eve", "nope", CLASS)
    assert calls


@pytest.mark.parametrize("name, match", [
    ("", "Type your name"), ("   ", "Type your name"), (None, "Type your name"), (42, "Type your name"),
    ("x" * 41, "at most 40"), ("a\nb", "control characters"), ("a\tb", "control characters"),
    ("a\x00b", "control characters"), ("evil\u202eeman", "control characters"), ("a\u2028b", "control characters"),
])
def test_bad_names_are_refused(store, name, match):
    with pytest.raises(JoinRefused, match=match):
        join_class(store, name, "skip-2016", CLASS)
    assert store.people.list() == []


def test_names_are_kept_verbatim():
    for name in ("<script>alert(1)</script>", "Zoë", "李雷", "👩‍💻 dev", "x" * 40, "O'Brien & co"):
        assert check_name(f"  {name} ") == name


@pytest.mark.parametrize("junk", [None, "", "x", 5, b"bytes", ["a"], "a" * 1000, "../../etc/passwd",
                                  "abc def ghi jkl mno pqr", "é" * 32, "A" * 32])
def test_junk_tokens_are_nobody(store, junk):
    join_class(store, "Ann", "skip-2016", CLASS)
    assert identity_from_token(store, junk) is None


def test_last_seen_is_written_at_most_once_a_minute(store, monkeypatch):
    _, token = join_class(store, "Ann", "skip-2016", CLASS)
    touched = []
    monkeypatch.setattr(store.people, "touch", touched.append)
    identity_from_token(store, token)
    assert touched == []  # just joined: seen now
    store.db.con.execute("UPDATE people SET last_seen = last_seen - 120")
    store.db.con.commit()
    identity_from_token(store, token)
    assert len(touched) == 1


def test_teacher_token():
    t = teacher_identity("t" * 32, CLASS)
    assert t == Identity("teacher", "Teacher", teacher=True, source="teacher") and t.may_manage("class:1")
    for wrong in ("t" * 31, "t" * 33, "", None, 5, "T" * 32):
        assert teacher_identity(wrong, CLASS) is None
    assert teacher_identity("t" * 32, ClassSettings()) is None  # no token set: nobody is the teacher that way
    assert teacher_identity("", ClassSettings()) is None


def test_login_identity():
    me = identity_from_login({"email": "Ada@Uni.edu", "sub": "123", "name": "Ada"}, CLASS)
    assert me == Identity("login:ada@uni.edu", "Ada", teacher=False, source="login")
    t = identity_from_login({"email": "teacher@uni.edu", "name": "Prof"}, CLASS)
    assert t.teacher and t.owner == "login:teacher@uni.edu"
    no_email = identity_from_login({"sub": "prof"}, CLASS)
    assert no_email == Identity("login:prof", "prof", teacher=True, source="login")  # a teacher by subject
    unverified = identity_from_login({"email": "teacher@uni.edu", "email_verified": False, "sub": "s9"}, CLASS)
    assert unverified.owner == "login:s9" and not unverified.teacher
    with pytest.raises(ValueError, match="neither an e-mail"):
        identity_from_login({"name": "Nobody"}, CLASS)
    with pytest.raises(ValueError):
        identity_from_login("ada@uni.edu", CLASS)


def test_proxy_identity_only_when_the_header_is_trusted():
    assert identity_from_proxy({"X-Forwarded-User": "ada"}, ClassSettings()) is None  # not enabled: never read
    me = identity_from_proxy({"x-forwarded-user": "ada"}, CLASS)  # case-insensitive header name
    assert me == Identity("proxy:ada", "ada", teacher=False, source="proxy")
    assert identity_from_proxy({"X-FORWARDED-USER": " Prof "}, CLASS).teacher
    for headers in ({}, {"X-Forwarded-User": ""}, {"X-Forwarded-User": "   "}, {"X-Other": "ada"},
                    {"X-Forwarded-User": "a\nb"}, {"X-Forwarded-User": None}, {"X-Forwarded-User": "x" * 300}, None):
        assert identity_from_proxy(headers, CLASS) is None, headers


def test_resolve_identity_picks_the_source_by_mode(store):
    # single user: the machine, no prompt, whatever the browser sends
    assert resolve_identity(ClassSettings(), auth_configured=False, me="junk", headers={"X-Forwarded-User": "x"}) \
        is MACHINE
    # class mode: the personal token, else nobody yet (the join form)
    me, token = join_class(store, "Ann", "skip-2016", CLASS)
    cls = ClassSettings(class_code="skip-2016", teacher_token="t" * 32)
    assert resolve_identity(cls, auth_configured=False, store=store, me=token) == me
    assert resolve_identity(cls, auth_configured=False, store=store, me=None) is None
    assert resolve_identity(cls, auth_configured=False, store=store, me="x" * 32) is None
    assert resolve_identity(cls, auth_configured=False, store=store, teacher_token="t" * 32).teacher
    with pytest.raises(ValueError, match="needs the store"):
        resolve_identity(cls, auth_configured=False, me=token)
    # proxy mode: the trusted header only
    assert resolve_identity(CLASS, auth_configured=False, headers={"x-forwarded-user": "bo"}).owner == "proxy:bo"
    assert resolve_identity(CLASS, auth_configured=False, headers={}) is None
    # login mode wins over the others
    assert resolve_identity(CLASS, auth_configured=True, user={"is_logged_in": False}) is None
    assert resolve_identity(CLASS, auth_configured=True, user=None, headers={"x-forwarded-user": "bo"}) is None
    assert resolve_identity(CLASS, auth_configured=True, user={"is_logged_in": True, "name": "?"}) is None
    assert resolve_identity(CLASS, auth_configured=True, user={"is_logged_in": True, "email": "a@b.c"}).owner == \
        "login:a@b.c"


def test_guessing_the_class_code_is_throttled_and_the_teacher_token_too(store, monkeypatch):
    from resnet_lab.classroom import people

    settings = ClassSettings(class_code="skip-2016", teacher_token="t" * 32)
    for i in range(people.MAX_WRONG_GUESSES):
        with pytest.raises(JoinRefused, match="not right"):
            join_class(store, "Eve", f"guess-{i}", settings)
    with pytest.raises(JoinRefused, match="Too many wrong codes"):  # even the right code, for now
        join_class(store, "Ana", "skip-2016", settings)
    assert teacher_identity("t" * 32, settings) is None
    assert store.people.list() == []
    clock = [people.time.monotonic() + people.GUESS_WINDOW_S + 1]
    monkeypatch.setattr(people.time, "monotonic", lambda: clock[0])  # a minute later
    who, _ = join_class(store, "Ana", "skip-2016", settings)
    assert who.name == "Ana" and teacher_identity("t" * 32, settings).teacher

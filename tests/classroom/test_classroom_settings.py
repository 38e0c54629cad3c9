"""The settings door: TOML parsed strictly, refusals that name the key and the file, the environment winning,
the mode, and the cache that makes a call per scheduler pump cheap."""

import os

import pytest

from resnet_lab.classroom import settings as settings_mod
from resnet_lab.classroom.bounds import DEFAULT_KEEP_WEIGHTS_MB, Bounds
from resnet_lab.classroom.settings import (
    ENV_CLASS_CODE,
    ENV_PROXY_HEADER,
    ENV_SETTINGS,
    ENV_TEACHER_TOKEN,
    ENV_TEACHERS,
    MAX_SETTINGS_BYTES,
    REPO_LESSONS,
    SCHEMA,
    ClassSettings,
    QueueCaps,
    SettingsError,
    load_settings,
)

ROOT = REPO_LESSONS.parent


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in (ENV_SETTINGS, ENV_CLASS_CODE, ENV_TEACHER_TOKEN, ENV_TEACHERS, ENV_PROXY_HEADER):
        monkeypatch.delenv(var, raising=False)


def write(path, text):
    path.write_text(text)
    return path


def test_no_file_means_single_user_and_no_limits_but_the_kept_weights_default(lab_home):
    s = load_settings()
    assert s.path is None and s.class_code is None and s.teacher_token is None and s.proxy_header is None
    # the one default bound (students of a class made by RESNET_LAB_CLASS_CODE alone are held to it; in single-user
    # mode nobody is a student, so it binds nobody)
    assert s.bounds == Bounds(max_keep_weights_mb=DEFAULT_KEEP_WEIGHTS_MB) and s.queue == QueueCaps()
    assert s.bounds == ClassSettings().bounds
    assert s.mode(auth_configured=False) == "single"
    assert s.lessons_dirs == (lab_home / "lessons", REPO_LESSONS)


def test_a_full_file_is_read(tmp_path, lab_home):
    (tmp_path / "more").mkdir()
    p = write(tmp_path / "c.toml", """
[class]
name = "Week 5 <b>"
code = " skip-2016 "
teacher_token = "tt-123456789"
teachers = ["Teacher@Example.edu", "bob"]
proxy_header = "X-Forwarded-User"
[bounds]
max_epochs = 20
max_upload_mb = 0.5
datasets = ["shapes", "folder:*"]
presets = ["resnet20"]
[queue]
max_queued_per_owner = 3
max_running_per_owner = 1
[lessons]
dirs = ["more"]
""")
    s = load_settings(p)
    assert s.class_name == "Week 5 <b>" and s.class_code == "skip-2016" and s.teacher_token == "tt-123456789"
    assert s.teacher_logins == frozenset({"teacher@example.edu", "bob"})
    assert s.is_teacher_login("TEACHER@example.edu ") and not s.is_teacher_login("alice")
    assert s.proxy_header == "X-Forwarded-User"
    assert s.bounds == Bounds(max_epochs=20, max_upload_mb=0.5, datasets=("shapes", "folder:*"), presets=("resnet20",),
                              max_keep_weights_mb=DEFAULT_KEEP_WEIGHTS_MB)
    assert s.queue == QueueCaps(3, 1)
    assert s.lessons_dirs == (tmp_path / "more", lab_home / "lessons", REPO_LESSONS)
    assert s.path == p


def test_secrets_are_not_in_the_repr(tmp_path):
    s = load_settings(write(tmp_path / "c.toml", '[class]\ncode = "abcsecret"\nteacher_token = "zzzsecret"\n'))
    assert "abcsecret" not in repr(s) and "zzzsecret" not in repr(s)


def test_the_example_file_documents_every_key_and_is_valid():
    example = ROOT / "classroom.example.toml"
    s = load_settings(example)
    assert s.mode(False) == "class" and not s.bounds.unbounded and s.queue.max_queued_per_owner
    text = example.read_text()
    for table, keys in SCHEMA.items():
        assert f"[{table}]" in text, table
        for key in keys:
            assert f"{key} =" in text or f"# {key} =" in text, f"{table}.{key} is not documented"


@pytest.mark.parametrize("text, match", [
    ("[clas]\ncode = 'x'\n", r"unknown table\(s\) or key\(s\) clas"),
    ("code = 'x'\n", r"unknown table\(s\) or key\(s\) code"),
    ("[class]\ncod = 'x'\n", r"unknown key\(s\) in \[class\]: cod"),
    ("[bounds]\nmax_epoch = 5\n", r"unknown key\(s\) in \[bounds\]: max_epoch"),
    ("[queue]\nmax_queued = 5\n", r"unknown key\(s\) in \[queue\]: max_queued"),
    ("[bounds]\nmax_epochs = 0\n", r"max_epochs=0 is out of range"),
    ("[bounds]\nmax_epochs = '20'\n", r"max_epochs must be an integer"),
    ("[bounds]\nmax_epochs = true\n", r"max_epochs must be an integer"),
    ("[bounds]\nmax_epochs = 2.5\n", r"max_epochs must be an integer"),
    ("[bounds]\nmax_upload_mb = -1\n", r"max_upload_mb must be a number"),
    ("[bounds]\ndatasets = 'shapes'\n", r"datasets must be a list"),
    ("[bounds]\ndatasets = ['imagenet']\n", r"'imagenet' is not a dataset"),
    ("[bounds]\ndatasets = []\n", r"datasets is an empty list"),
    ("[bounds]\ndatasets = ['folder:../x']\n", r"dataset name '../x' is not allowed"),
    ("[bounds]\npresets = ['resnet19']\n", r"unknown model preset 'resnet19'"),
    ("[bounds]\npresets = ['resnet20', 'resnet20']\n", r"lists a name twice"),
    ("[queue]\nmax_running_per_owner = 0\n", r"\[queue\] max_running_per_owner=0 is out of range"),
    ("[class]\nproxy_header = 'X User: evil'\n", r"is not a header name"),
    ("[class]\nteachers = 'bob'\n", r"teachers must be a list"),
    ("[class]\ncode = 5\n", r"\[class\] code must be a string"),
    ('[class]\nname = "a\\nb"\n', r"\[class\] name must be at most 80 characters without control"),
    ("bounds = 5\n", r"bounds must be a table"),
    ("[lessons]\ndirs = 'x'\n", r"\[lessons\] dirs must be a list"),
    ("[class\n", r"is not valid TOML"),
])
def test_bad_files_are_refused_naming_the_key_and_the_file(tmp_path, text, match):
    p = write(tmp_path / "bad.toml", text)
    with pytest.raises(SettingsError, match=match) as e:
        load_settings(p)
    assert str(p) in str(e.value)


def test_a_secret_is_never_echoed_in_a_refusal(tmp_path):
    p = write(tmp_path / "bad.toml", '[class]\nteacher_token = "s3cr3t\\u0007"\n')
    with pytest.raises(SettingsError, match="teacher_token must be 1 to") as e:
        load_settings(p)
    assert "s3cr3t" not in str(e.value)


def test_oversized_and_binary_files_are_refused(tmp_path):
    big = write(tmp_path / "big.toml", "# " + "x" * MAX_SETTINGS_BYTES + "\n")
    with pytest.raises(SettingsError, match="larger than 65,536 bytes"):
        load_settings(big)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe[class]\n")
    with pytest.raises(SettingsError, match="not UTF-8"):
        load_settings(binary)


def test_an_explicit_file_must_exist(tmp_path, monkeypatch):
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    monkeypatch.setenv(ENV_SETTINGS, str(tmp_path / "nope.toml"))
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings()


def test_the_default_file_is_in_the_lab_home_and_the_env_points_elsewhere(tmp_path, lab_home, monkeypatch):
    write(lab_home / "classroom.toml", "[bounds]\nmax_epochs = 7\n")
    assert load_settings().bounds.max_epochs == 7
    monkeypatch.setenv(ENV_SETTINGS, str(write(tmp_path / "other.toml", "[bounds]\nmax_epochs = 9\n")))
    assert load_settings().bounds.max_epochs == 9


def test_environment_variables_win(tmp_path, monkeypatch):
    p = write(tmp_path / "c.toml", '[class]\ncode = "file-code"\nteachers = ["a@x"]\nteacher_token = "file-tok"\n')
    monkeypatch.setenv(ENV_CLASS_CODE, "env-code")
    monkeypatch.setenv(ENV_TEACHER_TOKEN, "env-token")
    monkeypatch.setenv(ENV_TEACHERS, "B@x, c@x ,")
    monkeypatch.setenv(ENV_PROXY_HEADER, "X-Remote-User")
    s = load_settings(p)
    assert (s.class_code, s.teacher_token, s.proxy_header) == ("env-code", "env-token", "X-Remote-User")
    assert s.teacher_logins == frozenset({"b@x", "c@x"})
    monkeypatch.setenv(ENV_CLASS_CODE, "   ")  # empty: the file's value stays
    assert load_settings(p).class_code == "file-code"
    monkeypatch.setenv(ENV_PROXY_HEADER, "not a header")
    with pytest.raises(SettingsError, match="the environment: RESNET_LAB_PROXY_HEADER"):
        load_settings(p)


def test_mode_follows_the_sources_in_order():
    assert ClassSettings().mode(False) == "single"
    assert ClassSettings(class_code="c").mode(False) == "class"
    assert ClassSettings(class_code="c", proxy_header="X-User").mode(False) == "proxy"
    assert ClassSettings(class_code="c", proxy_header="X-User").mode(True) == "login"
    assert ClassSettings().mode(True) == "login"


def test_the_cache_reads_the_file_once_until_it_changes(tmp_path, monkeypatch):
    p = write(tmp_path / "c.toml", "[bounds]\nmax_epochs = 5\n")
    parsed = []
    real = settings_mod._parse
    monkeypatch.setattr(settings_mod, "_parse", lambda path: parsed.append(path) or real(path))
    first = load_settings(p)
    for _ in range(5):
        assert load_settings(p) is first
    assert len(parsed) == 1
    write(p, "[bounds]\nmax_epochs = 12\n")  # a new size
    os.utime(p, ns=(0, 10**18))
    assert load_settings(p).bounds.max_epochs == 12 and len(parsed) == 2
    monkeypatch.setenv(ENV_CLASS_CODE, "new")  # the environment is part of the key
    assert load_settings(p).class_code == "new" and len(parsed) == 3


def test_a_file_that_breaks_while_running_is_refused_not_ignored(tmp_path):
    p = write(tmp_path / "c.toml", "[bounds]\nmax_epochs = 5\n")
    assert load_settings(p).bounds.max_epochs == 5
    write(p, "[bounds]\nmax_epochs = 5\nmax_epoks = 6\n")
    with pytest.raises(SettingsError, match="max_epoks"):
        load_settings(p)

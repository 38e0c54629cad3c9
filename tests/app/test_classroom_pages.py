"""The classroom in the pages: who you are (single, class code, personal link, teacher, login, proxy), what a
student may do to someone else's jobs (nothing, whatever the page, the widget state or the URL says), the
teacher page, lessons (hidden controls, bounded ranges), the shared result, and names shown as text."""

import re
import socket
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from resnet_lab import jobs
from resnet_lab.data.registry import DataConfig
from resnet_lab.identity import Identity
from resnet_lab.models.presets import PRESETS
from resnet_lab.store import Store
from resnet_lab.train import launcher
from resnet_lab.train.config import TrainConfig
from tests.helpers.homes import seed

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
CODE = "owls-and-ravens-42"
TEACHER_TOKEN = "teacher-token-0123456789abcdef"
NASTY = "<img src=x onerror=alert(1)> **bold**"
URL = "http://lab.example:8501/"

pytestmark = pytest.mark.usefixtures("no_workers_left")


@pytest.fixture
def classroom(monkeypatch):
    """Class mode: a class code and a teacher token, no login, no proxy."""
    for var in ("RESNET_LAB_SETTINGS", "RESNET_LAB_PROXY_HEADER", "RESNET_LAB_TEACHERS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RESNET_LAB_CLASS_CODE", CODE)
    monkeypatch.setenv("RESNET_LAB_TEACHER_TOKEN", TEACHER_TOKEN)


def run(at: AppTest, page: str | None = None) -> AppTest:
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def fresh(query: dict | None = None, page: str | None = None) -> AppTest:
    """A new browser session (a new tab, another laptop) opening the app with ``query`` in the URL."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.context = {"url": URL}
    if query:
        at.query_params.update(query)
    return run(at, page)


def join(name: str, code: str = CODE) -> AppTest:
    at = fresh()
    at.text_input(key="lab_join_name").input(name)
    at.text_input(key="lab_join_code").input(code)
    next(b for b in at.button if b.label == "Join").click().run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def token_of(at: AppTest) -> str:
    me = at.query_params.get("me")
    return me[0] if isinstance(me, list) else me


def signed_in_as(at: AppTest) -> list[str]:
    return [t.value for t in at.sidebar.text]


def student(name: str) -> tuple[Identity, str]:
    """A class member who joined through the page: (their identity as the store knows it, their token)."""
    at = join(name)
    token = token_of(at)
    person = next(p for p in Store().people.list() if p.name == name)
    return Identity(f"class:{person.id}", name, source="class"), token


def rows(spec_name: str = "resnet20") -> list[dict]:
    data = DataConfig(name="digits", image_size=8, train_subset=64)
    return launcher.training_rows(PRESETS[spec_name], data, TrainConfig(epochs=1, batch_size=32), twin=True)


def parked_job(owner: Identity) -> tuple[int, list[int]]:
    """A queued job that never starts here: it asks for a GPU, and the test machine's queue has none."""
    return Store().jobs.create("train", f"{owner.name}'s run", "cuda", then=seed(runs=rows(), partners=True),
                               owner=owner)


def finished_job(owner: Identity, home: Path, status: str = "done", acc: float = 0.75,
                 fingerprint: str | None = None) -> tuple[int, list[int]]:
    """A finished job whose runs have a checkpoint file (its content is never read by these tests)."""
    s = Store()
    job, ids = s.jobs.create("train", f"{owner.name}'s run", "cpu", then=seed(runs=rows(), partners=True), owner=owner,
                             fingerprint=fingerprint)
    assert s.jobs.finish(job, status, only_if=("queued",))
    for rid in ids:
        ckpt = home / "runs" / str(rid) / "best.safetensors"
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        ckpt.write_bytes(b"not read")
        s.runs.update(rid, ckpt_best=str(ckpt), best={"val/acc": acc})
    return job, ids


def snapshot() -> tuple:
    s = Store()
    jobs = sorted((j.id, j.status, j.queued_at, j.stop_requested, j.owner) for j in s.jobs.list(limit=10_000))
    runs = sorted((r.id, r.status, r.job_id, r.owner) for r in s.runs.list(limit=10_000))
    return jobs, runs


# --- who you are -----------------------------------------------------------------------------------------


def test_single_mode_has_no_prompt_and_acts_as_the_machine(monkeypatch):
    for var in ("RESNET_LAB_CLASS_CODE", "RESNET_LAB_PROXY_HEADER", "RESNET_LAB_SETTINGS"):
        monkeypatch.delenv(var, raising=False)
    at = fresh()
    assert at.title[0].value == "ResNet Lab" and not at.text_input and not signed_in_as(at)
    at = fresh(page="app_pages/teacher.py")  # the one person at this machine is its teacher
    assert at.title[0].value == "Teacher" and not at.error


def test_class_mode_joins_with_the_code_and_gives_a_personal_link(classroom):
    at = fresh()
    assert {t.label for t in at.text_input} >= {"Your name", "Class code"}
    assert at.title[0].value == "ResNet Lab" and not signed_in_as(at)

    at.text_input(key="lab_join_name").input("Ada")
    at.text_input(key="lab_join_code").input("not-the-code")
    next(b for b in at.button if b.label == "Join").click().run()
    assert any("class code is not right" in e.value for e in at.error)
    assert Store().people.list() == [] and "me" not in at.query_params and not signed_in_as(at)

    at.text_input(key="lab_join_code").input(CODE)
    next(b for b in at.button if b.label == "Join").click().run()
    token = token_of(at)
    assert token and len(token) >= 32  # unguessable: 24 random bytes
    assert signed_in_as(at) == ["Ada"]
    assert f"{URL}?me={token}" in [c.value for c in at.code]  # the whole link, ready to copy
    assert any("personal link" in s.value for s in at.success)
    (person,) = Store().db.con.execute("SELECT * FROM people").fetchall()
    assert person["name"] == "Ada" and token not in tuple(person)  # only the token's hash is kept

    again = fresh({"me": token})  # a reload, a new tab, another laptop
    assert signed_in_as(again) == ["Ada"] and not again.text_input
    again.switch_page("app_pages/train.py").run()
    assert again.title[0].value == "Train" and token_of(again) == token  # the link stays in the address bar


@pytest.mark.parametrize("link", ["x" * 40, "<script>alert(1)</script>", "a" * 5000, "", "../../etc/passwd"])
def test_a_bad_personal_link_is_nobody(classroom, link):
    student("Ada")
    at = fresh({"me": link})
    assert not signed_in_as(at) and {t.label for t in at.text_input} >= {"Class code"}
    assert at.title[0].value == "ResNet Lab"


def test_leave_forgets_the_tab_but_the_link_still_works(classroom):
    at = join("Ada")
    token = token_of(at)
    at.button(key="lab_leave").click().run()
    assert not signed_in_as(at) and "me" not in at.query_params and at.text_input(key="lab_join_code")
    assert signed_in_as(fresh({"me": token})) == ["Ada"]


def test_the_teacher_enters_by_link_or_form_and_the_token_leaves_the_address_bar(classroom, menu):
    at = fresh({"teacher": TEACHER_TOKEN})
    assert signed_in_as(at) == ["Teacher"] and "teacher" not in at.query_params
    assert "Teacher" in menu and "Gallery" in menu
    _, token = student("Alice")
    fresh({"me": token})
    assert "Teacher" not in menu and "Gallery" in menu  # a student's menu has no teacher page

    at = fresh()
    at.text_input(key="lab_teacher_token").input("wrong-token-0123456789")
    next(b for b in at.button if b.label == "Enter as the teacher").click().run()
    assert any("not this class's teacher token" in e.value for e in at.error) and not signed_in_as(at)
    at.text_input(key="lab_teacher_token").input(TEACHER_TOKEN)
    next(b for b in at.button if b.label == "Enter as the teacher").click().run()
    assert signed_in_as(at) == ["Teacher"]

    at = fresh({"teacher": "wrong-token-0123456789"})
    assert not signed_in_as(at) and any("teacher link is not valid" in w.value for w in at.warning)


@pytest.fixture
def menu(monkeypatch):
    """The page titles the last navigation showed (hidden pages left out), recorded as app.py builds it."""
    import streamlit as st

    shown: list[str] = []
    real = st.navigation

    def recording(pages, **kw):
        shown[:] = [p.title for ps in pages.values() for p in ps if p.visibility != "hidden"]
        return real(pages, **kw)

    monkeypatch.setattr(st, "navigation", recording)
    return shown


def test_display_names_are_shown_as_text(classroom):
    at = join(NASTY)
    assert signed_in_as(at) == [NASTY]  # an st.text element: shown verbatim, never as Markdown or HTML
    markdown = [m.value for m in at.markdown] + [m.value for m in at.sidebar.markdown]
    assert not any(NASTY in m for m in markdown)


def test_login_mode_asks_to_log_in_and_knows_teachers_by_their_login(monkeypatch):
    monkeypatch.delenv("RESNET_LAB_CLASS_CODE", raising=False)
    monkeypatch.setenv("RESNET_LAB_TEACHERS", "prof@school.example")
    secrets = {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                        "client_id": "lab", "client_secret": "s",
                        "server_metadata_url": "https://idp.example/.well-known/openid-configuration"}}
    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets = secrets
    at.user = {"is_logged_in": False}
    run(at)
    assert at.button(key="lab_login").label == "Log in" and not signed_in_as(at)

    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets = secrets
    at.user = {"is_logged_in": True, "email": "kim@school.example", "email_verified": True, "name": "Kim"}
    run(at, "app_pages/teacher.py")
    assert signed_in_as(at) == ["Kim"] and any("teacher's" in e.value for e in at.error)

    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets = secrets
    at.user = {"is_logged_in": True, "email": "prof@school.example", "email_verified": True, "name": "Prof"}
    run(at, "app_pages/teacher.py")
    assert signed_in_as(at) == ["Prof"] and at.title[0].value == "Teacher" and not at.error


def test_proxy_mode_trusts_only_the_named_header(monkeypatch):
    from resnet_lab.ui import identity

    monkeypatch.delenv("RESNET_LAB_CLASS_CODE", raising=False)
    monkeypatch.setenv("RESNET_LAB_PROXY_HEADER", "X-Remote-User")
    monkeypatch.setattr(identity, "request_headers", lambda: {"X-Forwarded-User": "mallory"})
    at = fresh()
    assert any("X-Remote-User" in e.value for e in at.error) and not signed_in_as(at)
    assert at.title[0].value == "ResNet Lab" and not at.button and not at.dataframe  # nothing of the lab
    monkeypatch.setattr(identity, "request_headers", lambda: {"x-remote-user": "alice"})
    assert signed_in_as(fresh()) == ["alice"]


# --- what a student may do to someone else's jobs --------------------------------------------------


def _attack_through_pages(at: AppTest, b_runs: list[int], b_jobs: list[int]) -> None:
    """Student A tries every action on B's jobs that any page could offer, as buttons, crafted state, URLs."""
    # 1. watch B's runs on Train and Fine-tune (a crafted session key) and press whatever the panel offers
    for page, watch in (("app_pages/train.py", "train_watch_job"), ("app_pages/finetune.py", "ft_watch_jobs")):
        at.session_state[watch] = b_runs
        for job in b_jobs:  # the keys a page's buttons for B's jobs would have, set as if pressed
            for key in (f"stop_{job}", f"resume_{job}", f"t_stop_{job}", f"t_back_{job}", f"t_delete_{job}"):
                at.session_state[key] = True
        at.switch_page(page).run()
        assert not at.exception, [e.message for e in at.exception]
        for job in b_jobs:
            for action in ("stop", "resume"):
                found = [b for b in at.button if b.key == f"{action}_{job}"]
                for button in found:
                    if not button.disabled:
                        button.click().run()
                        assert not at.exception, [e.message for e in at.exception]
    # 2. the teacher page's buttons, and a crafted credential and identity in the session
    at.session_state["_lab_credential"] = ("teacher", "not-the-teacher-token-0000")
    for key in ("identity", "_lab_identity", "who", "lab_identity"):
        at.session_state[key] = Identity("teacher", "Teacher", teacher=True, source="teacher")
    at.switch_page("app_pages/teacher.py").run()
    assert not any(b.key and b.key.startswith("t_") for b in at.button)
    # 3. URL parameters naming B's jobs and runs, or an owner
    for job, rid in zip(b_jobs, b_runs):
        for query in ({"run": str(rid), "stop": str(job)}, {"delete": str(job), "owner": "class:2"},
                      {"resume": str(job), "teacher": "guess-guess-guess-guess"}, {"by": "teacher", "job": str(job)}):
            fresh_at = fresh({"me": at.query_params.get("me") or "", **query}, page="app_pages/train.py")
            del fresh_at


def test_a_student_can_change_nothing_of_another_students_jobs(classroom, lab_home):
    a, a_token = student("Alice")
    b, _ = student("Bob")
    queued, queued_runs = parked_job(b)
    stopped, stopped_runs = parked_job(b)
    assert Store().jobs.stop(stopped, by=b) == "stopped"
    done, done_runs = finished_job(b, lab_home)
    before = snapshot()

    at = fresh({"me": a_token})
    assert signed_in_as(at) == ["Alice"]
    _attack_through_pages(at, [queued_runs[0], stopped_runs[0], done_runs[0]], [queued, stopped, done])
    assert snapshot() == before

    # the same page paths, as the teacher, do change them: the attack above was not a no-op by construction
    teacher = fresh({"teacher": TEACHER_TOKEN}, page="app_pages/teacher.py")
    teacher.button(key=f"t_back_{queued}").click().run()
    teacher.button(key=f"t_stop_{queued}").click().run()
    teacher.button(key=f"t_delete_{done}").click().run()
    teacher.button(key=f"t_confirm_{done}").click().run()  # a delete asks first
    assert not teacher.exception and not teacher.error, [e.value for e in teacher.error]
    s = Store()
    assert s.jobs.get(queued).status == "stopped"
    with pytest.raises(KeyError):
        s.jobs.get(done)


def test_the_teacher_page_refuses_a_student_even_by_its_url(classroom):
    _, token = student("Alice")
    at = fresh({"me": token}, page="app_pages/teacher.py")
    assert at.title[0].value == "Teacher" and any("teacher's" in e.value for e in at.error)
    assert not at.dataframe and not at.tabs  # nothing of the class is shown
    # and a teacher sees everyone's jobs, grouped by owner, the queue, the devices, the people
    b, _ = student(NASTY)
    parked_job(b)
    at = fresh({"teacher": TEACHER_TOKEN}, page="app_pages/teacher.py")
    assert not at.error
    labels = [e.label for e in at.expander]
    assert any(label.startswith("\\<img src\\=x") and "1 queued" in label for label in labels), labels
    people = next(d.value for d in at.dataframe if "last seen" in d.value.columns)
    assert set(people["name"]) == {"Alice", NASTY}  # a table cell: text
    devices = next(d.value for d in at.dataframe if "utilisation" in d.value.columns)
    assert devices["slot"].iloc[0] == "cpu" and devices["jobs"].iloc[0].endswith("of 1")
    machines = next(d.value for d in at.dataframe if "machine" in d.value.columns)  # no cluster: this machine
    assert list(machines["machine"]) == [socket.gethostname()] and list(machines["state"]) == ["up"]


def test_the_gallery_shows_every_finished_run_with_its_owner_and_a_mine_filter(classroom, lab_home):
    a, a_token = student("Alice")
    b, _ = student(NASTY)
    finished_job(a, lab_home, acc=0.6)
    finished_job(b, lab_home, acc=0.8)
    parked_job(b)  # not finished: not in the gallery
    at = fresh({"me": a_token}, page="app_pages/gallery.py")
    table = at.dataframe[0].value
    assert sorted(table["owner"]) == sorted(["you", "you", NASTY, NASTY])  # a table cell: the name as text
    at.toggle(key="gallery_mine").set_value(True).run()
    assert list(at.dataframe[0].value["owner"]) == ["you", "you"]


# --- lessons -------------------------------------------------------------------------------------------


LESSON = '''
id = "tiny-train"
title = "<img src=x onerror=alert(1)> Tiny **training**"
intro = "Train a small net, then look at what it answers."
hide = ["optimizer", "seed", "device", "custom_model", "schedule"]
presets = ["resnet20"]
datasets = ["digits", "shapes"]
[bounds]
max_epochs = 5
max_image_size = 24
max_batch_size = 64
[[pages]]
page = "train"
text = "Press **Train with plain twin**."
[[pages]]
page = "predictions"
text = "Read the confusion matrix."
'''


def test_a_lesson_link_hides_controls_and_bounds_the_ranges(monkeypatch, lab_home):
    monkeypatch.delenv("RESNET_LAB_CLASS_CODE", raising=False)
    (lab_home / "lessons").mkdir()
    (lab_home / "lessons" / "tiny-train.toml").write_text(LESSON)
    at = fresh({"lesson": "tiny-train"})
    assert at.title[0].value == "Train"  # the lesson's first page opens
    assert "<img src=x onerror=alert(1)> Tiny **training**" in [t.value for t in at.text]  # its title as text
    assert any("Press **Train with plain twin**" in m.value for m in at.markdown)
    keys = {w.key for w in [*at.selectbox, *at.number_input, *at.radio]}
    assert {"train_opt", "train_seed", "train_device", "train_schedule", "train_source"}.isdisjoint(keys)
    assert at.number_input(key="train_epochs").max == 5 and at.number_input(key="train_size").max == 24
    assert at.number_input(key="train_batch").max == 64 and at.number_input(key="train_size").value <= 24
    assert set(at.selectbox(key="train_preset").options) <= {"resnet20 — " + PRESETS["resnet20"].describe(),
                                                              "plain20 — " + PRESETS["plain20"].describe()}
    assert {o.split(" ")[0] for o in at.selectbox(key="train_data").options} == {"digits", "shapes"}
    assert token_free(at.query_params) == {"lesson": "tiny-train"}
    at.switch_page("app_pages/predictions.py").run()  # the next step keeps the lesson
    assert any("Read the confusion matrix" in m.value for m in at.markdown)
    assert {"lesson": "tiny-train"}.items() <= token_free(at.query_params).items()


def token_free(query) -> dict:
    return {k: (v[0] if isinstance(v, list) else v) for k, v in dict(query).items() if k != "me"}


def test_a_request_outside_the_lesson_bounds_is_refused_with_the_range(monkeypatch, lab_home):
    monkeypatch.delenv("RESNET_LAB_CLASS_CODE", raising=False)
    (lab_home / "lessons").mkdir()
    (lab_home / "lessons" / "tiny-train.toml").write_text(LESSON.replace("max_image_size = 24",
                                                                         "max_image_size = 24\nmax_train_images = 100"))
    at = fresh({"lesson": "tiny-train"})
    at.number_input(key="train_subset").set_value(0).run()  # all of shapes: above 100 images
    next(b for b in at.button if b.label == "Train").click().run()
    assert any("Training images" in e.value and "allowed 1–100" in e.value for e in at.error), \
        [e.value for e in at.error]
    assert Store().jobs.list() == []


def test_a_bad_lesson_link_says_so_and_opens_the_lab_as_usual(monkeypatch):
    monkeypatch.delenv("RESNET_LAB_CLASS_CODE", raising=False)
    for bad in ("../../etc/passwd", "no-such-lesson", "<b>x</b>"):
        at = fresh({"lesson": bad})
        assert at.title[0].value == "ResNet Lab"
        assert any("lesson link could not be opened" in w.value for w in at.warning)


def test_the_shipped_lessons_open_on_their_first_page(monkeypatch):
    monkeypatch.delenv("RESNET_LAB_CLASS_CODE", raising=False)
    assert fresh({"lesson": "why-skip-connections"}).title[0].value == "Gradient flow"
    assert fresh({"lesson": "finetune-your-photos"}).title[0].value == "Fine-tune"


# --- same job, shared result -------------------------------------------------------------------------


def _page_settings(at: AppTest) -> tuple[DataConfig, TrainConfig]:
    """The data and training settings the Train page would submit, read from its widgets."""
    v = {w.key: w.value for w in [*at.number_input, *at.selectbox, *at.toggle]}
    data = DataConfig(name=v["train_data"], image_size=int(v["train_size"]),
                      train_subset=int(v["train_subset"]) or None, val_fraction=float(v["train_val_fraction"]), augment=bool(v["train_augment"]),
                      seed=int(v["train_seed"]))
    opt = v["train_opt"]
    cfg = TrainConfig(epochs=int(v["train_epochs"]), batch_size=int(v["train_batch"]), optimizer=opt,
                      lr=float(v[f"train_lr_{opt}"]), schedule=v["train_schedule"],
                      warmup_epochs=float(v["train_warmup"]), weight_decay=float(v[f"train_wd_{opt}"]),
                      label_smoothing=float(v["train_smoothing"]), seed=int(v["train_seed"]), device=v["train_device"])
    return data, cfg


def test_the_same_finished_job_is_offered_instead_of_a_copy(classroom, lab_home):
    a, a_token = student("Alice")
    b, _ = student(NASTY)
    at = fresh({"me": a_token}, page="app_pages/train.py")
    assert not any(b.key == "train_open_shared" for b in at.button)
    data, cfg = _page_settings(at)
    fp = launcher.fingerprint(PRESETS["resnet20"], data, cfg, twin=True, world_size=1)
    job, ids = finished_job(b, lab_home, acc=0.875, fingerprint=fp)

    at.run()
    offer = next(m.value for m in at.markdown if "Already trained" in m.value)
    assert "\\<img src\\=x onerror\\=alert\\(1\\)\\> \\*\\*bold\\*\\*" in offer and "87.5%" in offer  # escaped
    assert NASTY not in offer
    at.button(key="train_open_shared").click().run()
    assert at.session_state["train_watch_job"] == ids and len(Store().jobs.list()) == 1  # nothing queued
    assert {b.label for b in at.button} >= {"Train a fresh one anyway", "Train", "Train with plain twin"}


def test_the_same_finished_fine_tuning_is_offered_too(classroom, lab_home, tmp_path, monkeypatch):
    from resnet_lab.train.finetune import FinetuneConfig

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    _, a_token = student("Alice")
    b, _ = student("Bob")
    at = fresh({"me": a_token}, page="app_pages/finetune.py")
    at.radio(key="ft_kind").set_value("Scratch").run()
    assert not any(x.key == "ft_open_shared" for x in at.button)
    v = {w.key: w.value for w in [*at.number_input, *at.toggle]}
    data = DataConfig(name="digits", image_size=int(v["ft_size"]), train_subset=int(v["ft_subset"]) or None,
                      augment=bool(v["ft_augment"]))
    cfg = TrainConfig(epochs=int(v["ft_epochs"]), batch_size=int(v["ft_batch"]), lr=float(v["ft_lr"]),
                      schedule="cosine")
    ft = FinetuneConfig(source="scratch:resnet20", strategy="linear", backbone_lr_mult=float(v["ft_mult"]))
    _, ids = finished_job(b, lab_home, acc=0.5, fingerprint=launcher.fingerprint(None, data, cfg, finetune=ft))
    at.run()
    offer = next(m.value for m in at.markdown if "Already fine-tuned" in m.value)
    assert "*linear* by Bob" in offer and "50.0%" in offer and "*full*" not in offer
    at.button(key="ft_open_shared").click().run()
    assert at.session_state["ft_watch_jobs"] == ids and len(Store().jobs.list()) == 1


# --- security settings ----------------------------------------------------------------------------------


def test_xsrf_protection_stays_on():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    import streamlit.config as stconfig

    # the option as the server reads it from this repository's config file
    stconfig.get_config_options(force_reparse=True, options_from_flags={})
    assert stconfig.get_option("server.enableXsrfProtection") is True


def test_plain_shows_markup_literally():
    from resnet_lab.ui.common import plain

    escaped = plain(NASTY + " [x](javascript:alert(1)) :red[x] $x$ ![i](http://e/x.png)\nline")
    # every Markdown/HTML special character is escaped (a backslash before it), so nothing is markup any more
    assert re.sub(r"\\.", "", escaped).translate(str.maketrans("", "", " ")).isalnum()
    assert re.sub(r"\\(.)", r"\1", escaped) == " ".join((NASTY + " [x](javascript:alert(1)) :red[x] $x$ "
                                                         "![i](http://e/x.png)\nline").split())
    assert len(plain("x" * 500, max_chars=40)) == 40


def test_a_teacher_token_may_be_any_printable_text(classroom, monkeypatch):
    monkeypatch.setenv("RESNET_LAB_TEACHER_TOKEN", "correct horse, battery staple!")
    at = fresh()
    at.text_input(key="lab_teacher_token").input("correct horse, battery staple!")
    next(b for b in at.button if b.label == "Enter as the teacher").click().run()
    assert signed_in_as(at) == ["Teacher"]
    assert signed_in_as(fresh({"teacher": "correct horse, battery staple!"})) == ["Teacher"]


def test_devices_status_reads_nvidia_smi_and_counts_each_slots_jobs(monkeypatch):
    import subprocess
    from types import SimpleNamespace

    from resnet_lab.jobs import slots

    for var in ("RESNET_LAB_GPU_COUNT", "RESNET_LAB_GPUS", "RESNET_LAB_CUDA_DEVICES", "RESNET_LAB_JOBS_PER_GPU"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,0")  # the lab's cuda:0 is the machine's GPU 1
    monkeypatch.setattr(slots, "_torch_gpus", lambda: 2)
    out = "0, GPU-aaa, NVIDIA H200, 37, 1024, 143771\n1, GPU-bbb, NVIDIA H200, [N/A], 2048, 143771\n"

    def fake_run(cmd, **kw):
        assert cmd[0] == "nvidia-smi"
        return SimpleNamespace(stdout=out, returncode=0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    running = [SimpleNamespace(slots=["cuda:1"]), SimpleNamespace(slots=["cuda:1"]), SimpleNamespace(slots=["cpu"])]
    cpu, gpu0, gpu1 = slots.devices_status(running)
    assert (cpu.slot, cpu.jobs, cpu.capacity) == ("cpu", 1, 1) and cpu.name.startswith("CPU")
    assert (gpu0.slot, gpu0.name, gpu0.utilisation, gpu0.memory_used, gpu0.jobs) == (
        "cuda:0", "NVIDIA H200", None, 2048 * 2**20, 0)  # machine GPU 1: utilisation not reported
    assert (gpu1.utilisation, gpu1.memory_used, gpu1.memory_total, gpu1.jobs, gpu1.capacity) == (
        0.37, 1024 * 2**20, 143771 * 2**20, 2, 2)

    def no_smi(cmd, **kw):
        raise FileNotFoundError("nvidia-smi")

    monkeypatch.setattr(subprocess, "run", no_smi)
    assert [(d.name, d.utilisation, d.memory_used) for d in slots.devices_status()[1:]] == [
        ("GPU 1", None, None), ("GPU 0", None, None)]  # no nvidia-smi: the slots all the same, facts unknown


# --- the teacher page (issue 21: what a newcomer hit) ---------------------------------------------------


def running_job(owner: Identity) -> tuple[int, list[int]]:
    """A job the queue counts as running on a GPU slot, its worker not started yet (the reaper's grace)."""
    s = Store()
    job, ids = s.jobs.create("train", f"{owner.name}'s running run", "cuda", then=seed(runs=rows(), partners=True),
                             owner=owner)
    assert [j for j, _ in jobs.turns.claim(s, {"cuda:0": 1})] == [job]
    return job, ids


def teacher_tables(monkeypatch) -> list:
    """Every table the page hands to st.dataframe, as it built it (before Streamlit converts it)."""
    import streamlit as st

    built, original = [], st.dataframe

    def recording(data=None, *a, **kw):
        built.append(data)
        return original(data, *a, **kw)

    monkeypatch.setattr(st, "dataframe", recording)
    return built


def test_every_teacher_table_converts_to_arrow_as_built(classroom, lab_home, monkeypatch):
    """The queue's 'turn' column held ints and text: Arrow refused it on every tick (a traceback in the server's
    log, and a conversion done twice)."""
    import logging

    import pyarrow as pa

    b, _ = student("Bob")
    running_job(b)
    parked_job(b)
    parked_job(b)
    finished_job(b, lab_home)
    logged: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.DEBUG)
    handler.emit = logged.append
    log = logging.getLogger("streamlit.dataframe_util")
    level = log.level
    log.setLevel(logging.DEBUG)  # Streamlit says it at INFO
    log.addHandler(handler)
    try:
        built = teacher_tables(monkeypatch)
        at = fresh({"teacher": TEACHER_TOKEN}, page="app_pages/teacher.py")
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    assert not at.exception and not at.error
    tables = [t for t in built if isinstance(t, pd.DataFrame)]
    assert {"turn", "starts in"} <= set(tables[0].columns) and "utilisation" in tables[1].columns  # queue, devices
    for table in tables:
        pa.Table.from_pandas(table)  # raises ArrowTypeError / ArrowInvalid on a column of mixed types
        for column in table.columns:
            assert table[column].map(type).nunique() <= 1 or table[column].isna().any(), (column, table[column])
    assert not [r.getMessage() for r in logged if "Arrow" in r.getMessage()]


def test_the_teacher_queue_names_runs_and_gives_times_or_reasons(classroom, lab_home):
    b, _ = student("Bob")
    finished_job(b, lab_home)  # job 1 has runs 1 and 2: from here on job and run numbers differ
    running, running_runs = running_job(b)
    parked, parked_runs = parked_job(b)
    at = fresh({"teacher": TEACHER_TOKEN}, page="app_pages/teacher.py")
    queue = next(d.value for d in at.dataframe if "starts in" in d.value.columns)
    assert list(queue["job"]) == [f"runs #{running_runs[0]} and #{running_runs[1]}",
                                  f"runs #{parked_runs[0]} and #{parked_runs[1]}"]
    assert list(queue["turn"]) == ["running", "1"]
    cells = list(queue["starts in"]) + list(queue["ends in"])
    assert "?" not in cells and not any(c is None for c in cells)
    # this machine's queue has no GPU slot, and no job like the running one was timed: a dash with the reason
    assert queue["starts in"].iloc[1] == "— this lab has no cuda slot"
    assert queue["ends in"].iloc[0] == "— no job like it timed on cuda yet"
    lines = [m.value for m in at.markdown]
    assert any(f"runs \\#{parked_runs[0]} and \\#{parked_runs[1]}" in v or f"runs #{parked_runs[0]} and "
               f"#{parked_runs[1]}" in v for v in lines), lines
    assert not any(f"#{parked} train" in v for v in lines)  # not by the job's own id
    devices = next(d.value for d in at.dataframe if "utilisation" in d.value.columns)
    cpu = devices["utilisation"].iloc[0]
    assert re.fullmatch(r"\d+\.\d of \d+ cores? busy \((\d+)%\)(, \d+\.\d more waiting)?", cpu), cpu
    assert int(re.search(r"\((\d+)%\)", cpu).group(1)) <= 100


def test_teacher_actions_say_what_they_did_delete_asks_first_and_the_group_stays_open(classroom, lab_home):
    b, _ = student("Bob")
    stopped, stopped_runs = parked_job(b)
    assert Store().jobs.stop(stopped, by=b) == "stopped"
    done, done_runs = finished_job(b, lab_home)
    at = fresh({"teacher": TEACHER_TOKEN}, page="app_pages/teacher.py")

    def bobs_group():
        return next(e for e in at.expander if e.label.startswith("Bob"))

    assert not bobs_group().proto.expanded  # nothing of Bob's waits or runs

    at.button(key=f"t_delete_{done}").click().run()  # the first click only asks
    assert Store().jobs.get(done).status == "done"
    assert any("cannot be undone" in c.value for c in at.caption)
    assert bobs_group().proto.expanded
    at.button(key=f"t_cancel_{done}").click().run()
    assert Store().jobs.get(done).status == "done" and not any("cannot be undone" in c.value for c in at.caption)

    at.button(key=f"t_delete_{done}").click().run()
    at.button(key=f"t_confirm_{done}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with pytest.raises(KeyError):
        Store().jobs.get(done)
    said = [s.value for s in at.success]
    assert said == [f"Deleted runs #{done_runs[0]} and #{done_runs[1]}: its runs, checkpoints and logs."]
    assert [t.value for t in at.toast] == said
    assert not (lab_home / "runs" / str(done_runs[0])).exists()
    assert bobs_group().proto.expanded  # the teacher acted here: it stays open

    at.button(key=f"t_resume_{stopped}").click().run()  # a stopped job can be resumed from here
    assert Store().jobs.get(stopped).status == "queued"
    assert [s.value for s in at.success] == [
        f"Resumed runs #{stopped_runs[0]} and #{stopped_runs[1]}: it is queued again and continues from its last "
        "checkpoint."]
    at.button(key=f"t_stop_{stopped}").click().run()
    assert Store().jobs.get(stopped).status == "stopped"
    assert [s.value for s in at.success] == [f"Stopped runs #{stopped_runs[0]} and #{stopped_runs[1]} (it was "
                                             "waiting)."]

import os
from pathlib import Path

# OpenMP threads that wait sleep instead of spinning, here and in every process the tests start (app servers, the
# CLI, bench scripts; job workers get it from the lab itself): the suite's processes share two cores, and a spinning
# thread that loses its core slows a run up to tenfold. Set before torch is imported, which reads it once.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

from resnet_lab.store import DB_ENV, Store
from tests.helpers.homes import private_home, train_tiny_job
from tests.helpers.tiers import TIERS, tier_of


@pytest.fixture(autouse=True)
def lab_home(tmp_path, monkeypatch):
    """Every test gets its own RESNET_LAB_HOME, never the user's."""
    home = tmp_path / "lab_home"
    home.mkdir()
    monkeypatch.setenv("RESNET_LAB_HOME", str(home))
    monkeypatch.delenv(DB_ENV, raising=False)  # the embedded default, unless a test asks for PostgreSQL (engine)
    monkeypatch.delenv("RESNET_LAB_RAY", raising=False)  # local workers, unless a test starts a Ray cluster
    return home


@pytest.fixture(autouse=True)
def _fresh_guess_counter(monkeypatch):
    """Wrong class codes are counted per server process; each test starts with none counted."""
    from resnet_lab.classroom import people

    monkeypatch.setattr(people, "_guesses", people._Guesses())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def pytest_configure(config):
    # two cores: keep torch from oversubscribing when pytest and a server share the machine (and, with pytest-xdist's
    # workers, when several pytest processes share it: the cores are split among them)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // workers)))


def pytest_collection_modifyitems(config, items):
    """Each test's tier (unit, process, app, browser: pyproject's markers) by where it lives; a test that says its
    own tier (the one test of a module that starts workers, say) keeps it."""
    for item in items:
        if not any(item.get_closest_marker(tier) for tier in TIERS):
            item.add_marker(getattr(pytest.mark, tier_of(item.path)))
    # the costly tiers first: pytest-xdist hands out whole modules in this order, so a module of a few long tests
    # (torchrun groups, bench scripts) never starts last while the other worker sits idle
    items.sort(key=lambda item: COST_ORDER.index(next(t for t in COST_ORDER if item.get_closest_marker(t))))


COST_ORDER = ("browser", "process", "app", "unit")  # the tiers, costliest module first


def worker_unit(nodeid: str) -> str:
    """What stays together on one pytest-xdist worker when `make test` spreads the suite over two: the browser tier
    (one app server, one Chromium and one trained pair for the whole tier), every other module whole (its module
    fixtures built once)."""
    path = nodeid.split("::", 1)[0]
    return "tests/browser" if path.startswith("tests/browser/") else path


def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's scheduler, by :func:`worker_unit` (its ``loadgroup`` reads a test id pytest 9 no longer
    carries, so groups are made here)."""
    from xdist.scheduler import LoadScopeScheduling

    class ByUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_unit(nodeid)

    config.option.loadscopereorder = False  # its order (most tests first) put the few long tests last: ours stays

    return ByUnit(config, log)


def _leftover_workers(base: Path) -> list[tuple[int, str]]:
    """(pid, lab home) of job workers still running for a lab home under ``base`` (this session's temp dir)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"resnet_lab.jobs.worker" not in (proc / "cmdline").read_bytes():
                continue
            env = dict(v.split(b"=", 1) for v in (proc / "environ").read_bytes().split(b"\0") if b"=" in v)
        except OSError:  # gone meanwhile, or not ours to read
            continue
        home = env.get(b"RESNET_LAB_HOME", b"").decode(errors="replace")
        if home.startswith(str(base)):
            found.append((int(proc.name), home))
    return found


def pytest_sessionfinish(session, exitstatus):
    """Workers outlive pages by design, so a test that lets a page start one must end it (see
    tests/app/conftest.py ``no_workers_left``); any left over would train on for hours on CI's two cores."""
    import signal

    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or not Path("/proc").is_dir():
        return
    leftover = _leftover_workers(factory.getbasetemp())
    for pid, _ in leftover:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if leftover:
        homes = sorted({home for _, home in leftover})
        session.config.get_terminal_writer().line(
            f"ended {len(leftover)} job worker(s) a test left running: {homes}", red=True)


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory):
    """A lab home holding one finished job (see :func:`tests.helpers.homes.train_tiny_job`): (home, [resnet id,
    plain id])."""
    home = tmp_path_factory.mktemp("trained_home")
    return home, train_tiny_job(home)


@pytest.fixture(scope="session")
def tiny_job_trainer():
    """The function :func:`tests.helpers.homes.train_tiny_job`, for tests that need a finished job in another home."""
    return train_tiny_job


@pytest.fixture
def finished_run(trained_home, monkeypatch):
    """Point RESNET_LAB_HOME at the trained home (read it, do not train in it); returns the two run ids."""
    home, ids = trained_home
    monkeypatch.setenv("RESNET_LAB_HOME", str(home))
    return ids


@pytest.fixture
def private_trained_home(trained_home, tmp_path, monkeypatch):
    """(store, [resnet id, plain id]) in a private copy of the trained home (its database and run folders):
    jobs, logs and results are written under it. Workers beat every 0.5 s; no worker outlives the test."""
    import signal

    from resnet_lab import jobs
    from resnet_lab.store import Store

    src, ids = trained_home
    dst = tmp_path / "home"
    private_home(src, dst)
    monkeypatch.setenv("RESNET_LAB_HOME", str(dst))
    monkeypatch.setenv("RESNET_LAB_HEARTBEAT_S", "0.5")
    store = Store()
    yield store, ids
    for job in store.jobs.list(statuses=["running"]):  # leave no worker behind
        if job.pid and jobs.pid_alive(job.pid):
            os.kill(job.pid, signal.SIGKILL)
    store.close()


def rewrite_run_numbers(store, run_id: int, val_acc: float, last_loss: float | None = None) -> None:
    """Make a run in a private lab home look as if it reached ``val_acc`` (best and last) and ended its training
    loss at ``last_loss`` (default: its first logged loss, a flat curve) — "at chance" or "learned" on demand,
    whatever the tiny real run reached. One train/loss point is appended; the checkpoint, the other metrics and
    the gradient norms are untouched."""
    loss = store.runs.metrics(run_id, ["train/loss"])["train/loss"]
    step, epoch, first = loss[-1][0] + 1, loss[-1][1], loss[0][2]
    store.runs.add_metrics([(run_id, step, epoch, "train/loss", first if last_loss is None else last_loss)])
    store.runs.update(run_id, best={"val/acc": val_acc}, last={"val/acc": val_acc})


@pytest.fixture
def run_numbers():
    """:func:`rewrite_run_numbers`, for tests that need runs at chance (or learned) in a private home."""
    return rewrite_run_numbers


@pytest.fixture(scope="session")
def pg_server():
    """A database of its own on a real PostgreSQL server, for this pytest process (tests/helpers/pg.py): its URL.
    Skipped, with the reason, where no server can be had."""
    from tests.helpers import pg

    try:
        with pg.server() as url, pg.own_database(url) as db_url:
            yield db_url
    except pg.NoServer as e:
        pytest.skip(str(e))


@pytest.fixture
def pg_url(pg_server):
    """A fresh, empty PostgreSQL lab for this test alone (a schema of its own): its URL."""
    from tests.helpers.pg import fresh_schema

    with fresh_schema(pg_server) as url:
        yield url


# The store on both engines: a test that takes ``engine`` (or ``open_store`` / ``store_location``, which take it) runs
# twice, on SQLite (the default) and on a real PostgreSQL server (a fresh schema per test: tests/helpers/pg.py); one
# that names neither is about SQLite alone (its file, its PRAGMAs, the SQLite migration fixtures).
ENGINES = ("sqlite", "postgresql")


@pytest.fixture(params=ENGINES)
def engine(request, monkeypatch):
    """"sqlite" or "postgresql"; on PostgreSQL, ``RESNET_LAB_DB`` names this test's own fresh lab (schema), so a plain
    ``Store()`` (and any process the test starts) opens it."""
    if request.param == "postgresql":
        monkeypatch.setenv(DB_ENV, request.getfixturevalue("pg_url"))
    else:
        monkeypatch.delenv(DB_ENV, raising=False)
    return request.param


@pytest.fixture
def store_location(engine, tmp_path, monkeypatch):
    """What ``Store(...)`` opens for this test: the SQLite file ``tmp_path/runs.db``, or the PostgreSQL URL."""
    return os.environ[DB_ENV] if engine == "postgresql" else tmp_path / "runs.db"


@pytest.fixture
def open_store(engine):
    """``open_store(home / "runs.db")``: the store of the lab home ``home``, on this test's engine (on PostgreSQL the
    same database whatever the home: only where stored paths are relative to changes)."""
    def open_(path: Path) -> Store:
        return Store(os.environ[DB_ENV], home=Path(path).parent) if engine == "postgresql" else Store(path)

    return open_

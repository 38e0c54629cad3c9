"""A class on one store: 20 writers and 50 readers at once, against one real database (a SQLite file, or a
PostgreSQL server).

The writers are processes, as workers are: each joins the class (a person), then queues jobs and writes what a
training worker writes — heartbeats, progress, metrics, steps, the last evaluation — and ends them. The readers
are threads of one process, as the browser sessions of one Streamlit server are: they list runs and jobs, read
curves and the people, as the pages do, all the while. No error may surface on either side, a reader never sees
a record go backwards or a finished job without all of its metrics, and afterwards every write is there:
counts exact, values exact.
"""

import multiprocessing
import threading
import traceback

from resnet_lab.identity import Identity
from resnet_lab.store import Store
from tests.helpers.homes import seed

WRITERS = 20
READERS = 50
JOBS_EACH = 5
STEPS = 30  # progress updates and metric batches per job
KEYS = ("train/loss", "train/acc")


def run_row(name: str) -> dict:
    return {"name": name, "spec": {"stem": "cifar", "skip": True}, "data": {"name": "digits"}, "train": {"epochs": 1}}


def value(writer: int, job: int, step: int, key: str) -> float:
    """The exact number a writer logs, so the reader of the end result can check every one."""
    return writer * 1000 + job * 100 + step + (0.5 if key == "train/acc" else 0.25)


def write_as_a_student(db, writer: int, go, errors) -> None:
    """One writer process: join, then queue and 'train' JOBS_EACH jobs, writing as a worker does."""
    try:
        go.wait(60)
        store = Store(db)
        me = store.people.create(f"student {writer}", f"token-hash-{writer}")
        who = Identity(f"class:{me.id}", me.name)
        for j in range(JOBS_EACH):
            job, (rid,) = store.jobs.create("train", f"w{writer} j{j}", "cpu",
                                            then=seed(runs=[run_row(f"w{writer} j{j}")]),
                                            owner=who)
            store.runs.update(rid, total_steps=STEPS)
            for step in range(1, STEPS + 1):
                store.jobs.beat(job)
                store.jobs.set_progress(job, step, STEPS)
                store.runs.add_metrics([(rid, step, step / STEPS, k, value(writer, j, step, k)) for k in KEYS])
                store.runs.set_steps([rid], step)
            store.runs.update(rid, last={"val/acc": value(writer, j, STEPS, "train/acc"), "step": STEPS})
            assert store.jobs.finish(job, "done", only_if=("queued",))
        store.close()
    except BaseException:
        errors.put(f"writer {writer}: {traceback.format_exc()}")
        raise


def test_twenty_writers_and_fifty_readers_lose_nothing_and_see_no_error(store_location):
    db = store_location
    Store(db).close()  # created (and migrated) once, as the server does before anyone arrives
    mp = multiprocessing.get_context("fork")  # started before any reader thread exists: nothing locked is copied
    go, errors = mp.Event(), mp.Queue()
    writers = [mp.Process(target=write_as_a_student, args=(db, w, go, errors)) for w in range(WRITERS)]
    for p in writers:
        p.start()

    stop = threading.Event()
    reader_errors: list[str] = []
    passes = [0] * READERS
    saw = {"active": 0, "done": 0}

    def read_as_a_page(i: int) -> None:
        store = Store(db)
        seen_steps: dict[int, int] = {}
        try:
            while True:
                last_pass = stop.is_set()  # one more full pass after the writers are done
                runs = store.runs.list()
                listed = store.jobs.list()
                store.people.list()
                store.jobs.running_per_slot()
                for run in runs[:3]:  # the live panel: the newest runs' curves
                    job = store.jobs.get(run.job_id)
                    curves = store.runs.metrics(run.id, max_points=400)
                    assert len(store.runs.of_job(run.job_id)) == 1
                    points = len(curves.get("train/loss", []))
                    assert points >= seen_steps.get(run.id, 0), "a curve lost points"
                    seen_steps[run.id] = points
                    if job.status == "done":  # read before its metrics: they were all written before it ended
                        assert points == STEPS and job.progress == STEPS, (run.id, points, job.progress)
                        saw["done"] += 1
                    else:
                        saw["active"] += 1
                assert all(j.owner.startswith("class:") for j in listed)
                passes[i] += 1
                if last_pass:
                    break
        except BaseException:
            reader_errors.append(f"reader {i}: {traceback.format_exc()}")
        finally:
            store.close()

    readers = [threading.Thread(target=read_as_a_page, args=(i,)) for i in range(READERS)]
    for t in readers:
        t.start()
    go.set()
    for p in writers:
        p.join(120)
    stop.set()
    for t in readers:
        t.join(60)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert not failures, failures[:3]
    assert not reader_errors, reader_errors[:3]
    assert [p.exitcode for p in writers] == [0] * WRITERS
    assert not any(t.is_alive() for t in readers) and all(passes)
    assert saw["active"] and saw["done"]  # the readers read while jobs were being written, and after

    store = Store(db)
    people = store.people.list()
    assert sorted(p.name for p in people) == sorted(f"student {w}" for w in range(WRITERS))
    jobs = store.jobs.list(limit=10_000)
    assert len(jobs) == WRITERS * JOBS_EACH
    by_name = {j.name: j for j in jobs}
    owner_of = {p.name: f"class:{p.id}" for p in people}
    assert store.db.con.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == WRITERS * JOBS_EACH * STEPS * len(KEYS)
    for w in range(WRITERS):
        for j in range(JOBS_EACH):
            job = by_name[f"w{w} j{j}"]
            assert (job.status, job.progress, job.total, job.owner) == ("done", STEPS, STEPS, owner_of[f"student {w}"])
            (run,) = store.runs.of_job(job.id)
            assert (run.step, run.total_steps, run.status, run.owner) == (STEPS, STEPS, "done", job.owner)
            assert run.last == {"val/acc": value(w, j, STEPS, "train/acc"), "step": STEPS}
            curves = store.runs.metrics(run.id)
            for k in KEYS:
                assert curves[k] == [(s, s / STEPS, value(w, j, s, k)) for s in range(1, STEPS + 1)], (w, j, k)
    store.close()

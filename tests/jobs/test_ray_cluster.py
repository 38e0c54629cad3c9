"""Jobs on a real two-node Ray cluster on this machine (``ray.cluster_utils.Cluster``: a head node and a second node,
each with one fake GPU), the lab home on local disk that both nodes see: the lab decides which job starts (owners'
fair turns), Ray decides where; each worker records its node; a stop from the store reaches a worker on the other
node; a node killed mid-run leaves its job ``interrupted`` within the reaping time, and the job resumes on the node
that is left, where it was; a job of two processes runs as one placement group packed on one node (torchrun); the
workers share a PostgreSQL store where one can be had. Nothing is mocked; the jobs are naps
(tests/jobs/ray_wiring.py), not training."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from resnet_lab.identity import Identity  # noqa: E402
from resnet_lab.jobs import STALE_AFTER_S, JobRequest, launch, resume, stop, submit  # noqa: E402
from resnet_lab.jobs.handlers import kind_named  # noqa: E402
from resnet_lab.paths import job_dir  # noqa: E402
from resnet_lab.store import Store  # noqa: E402
from tests.helpers.cli import run_cli  # noqa: E402
from tests.helpers.waiting import wait_for, wait_job  # noqa: E402

pytestmark = pytest.mark.process

ADA = Identity("class:1", "Ada", source="class")
BOB = Identity("class:2", "Bob", source="class")
NODE = dict(num_cpus=1, num_gpus=1, object_store_memory=80 * 2 ** 20)  # a small node: this machine has 2 cores


@pytest.fixture(scope="module")
def cluster():
    """A head node and a second node, one fake GPU each, with GCS noticing a lost node within a few seconds (ten
    missed checks of half a second: with three, a head node whose beats lagged on a busy 2-core machine was once
    declared dead too, and nothing could run)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
        c = Cluster(initialize_head=True, head_node_args={
            **NODE, "include_dashboard": False,
            "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 10}})
        second = c.add_node(**NODE)
        c.wait_for_nodes()
        c.second = second
        mp.setenv("RESNET_LAB_RAY", c.address)
        try:
            yield c
        finally:
            ray.shutdown()
            launch._launchers.clear()
            c.shutdown()


@pytest.fixture
def lab(cluster, lab_home, monkeypatch):
    """A lab home on this disk (both nodes see it) whose jobs run on the cluster: one job per GPU, fast beats."""
    monkeypatch.setenv("RESNET_LAB_RAY", cluster.address)  # (every other test's lab home runs local workers)
    monkeypatch.setenv("RESNET_LAB_KINDS", "tests.jobs.ray_wiring")
    monkeypatch.setenv("RESNET_LAB_JOBS_PER_GPU", "1")
    monkeypatch.setenv("RESNET_LAB_HEARTBEAT_S", "0.5")
    store = Store()
    yield store
    store.close()


def naps(store: Store, owner: Identity, n: int, nap_s: float = 0.2, name: str = "nap") -> int:
    return submit(store, JobRequest(kind=kind_named("nap"), name=name, device="cuda", owner=owner,
                                    params={"naps": n, "nap_s": nap_s}, start=False))[0]


def node_of(job) -> str:
    """The Ray node id a job's worker said hello from (its host is "<machine> ray:<node id>")."""
    assert job.host and " ray:" in job.host, job.host
    return job.host.split(" ray:", 1)[1]


def test_jobs_of_two_owners_take_turns_on_both_nodes_and_record_their_node(cluster, lab):
    assert launch.launcher().capacity()["cuda:1"] == 1 and "cuda:2" not in launch.launcher().capacity()
    ada = [naps(lab, ADA, 3, name=f"ada {i}") for i in range(3)]
    bob = [naps(lab, BOB, 3, name=f"bob {i}") for i in range(1)]
    ids = ada + bob
    wait_for(lambda: all(lab.jobs.get(j).status == "done" for j in ids), 90, lab, "every nap done",
             explain=lambda: str([(j.id, j.status, j.error) for j in map(lab.jobs.get, ids)]))
    jobs = sorted(map(lab.jobs.get, ids), key=lambda j: j.started_at)
    # the lab chose which job went next: owners take turns (Ada queued all hers first, yet Bob's starts second)
    assert [j.owner for j in jobs] == [ADA.owner, BOB.owner, ADA.owner, ADA.owner]
    # Ray chose where: one GPU a node, one job a GPU, so the first two ran side by side on the two nodes
    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert {node_of(j) for j in jobs[:2]} == alive and len(alive) == 2
    assert all(j.pid and j.host.startswith(launch.hostname()) for j in jobs)
    assert all(Path(j.result_path).read_text() == "3 0\n" for j in jobs)  # written on the shared lab home


def test_a_stop_reaches_the_other_node_and_a_lost_node_interrupts_its_job_which_resumes_on_the_node_left(
        cluster, lab):
    second = cluster.second.node_id
    first = naps(lab, ADA, 200, name="long a")
    other = naps(lab, BOB, 200, name="long b")
    wait_for(lambda: all(lab.jobs.get(j).progress >= 2 for j in (first, other)), 60, lab, "both napping")
    there = next(j for j in (first, other) if node_of(lab.jobs.get(j)) == second)
    here = other if there == first else first

    def owner(job_id: int) -> Identity:
        return ADA if job_id == first else BOB

    # the Teacher page's machines: both nodes, each with its GPU held by the job whose worker is there
    machines = {m.node: m for m in launch.launcher().machines(lab.jobs.list(statuses=["running"]))}
    head = next(n for n in machines if n != second)
    assert set(machines) == {head, second} and all(m.alive and m.gpus == 1 for m in machines.values())
    assert (machines[second].jobs, machines[head].jobs) == ((there,), (here,))
    assert machines[second].gpus_held == machines[head].gpus_held == 1

    # a stop asked in the store reaches the worker on the second node, which stops between two naps
    stop(there, lab, by=owner(there))
    stopped = wait_job(lab, there, timeout=30)
    assert stopped.status == "stopped" and "Stopped after" in (stopped.error or "")
    # resumed: the only free GPU is the second node's, so Ray puts it back there, where it was
    resume(there, lab, by=owner(there))
    wait_for(lambda: lab.jobs.get(there).status == "running" and lab.jobs.get(there).host is not None
             and lab.jobs.get(there).progress > stopped.progress, 60, lab, "the job napping again")
    assert node_of(lab.jobs.get(there)) == second
    listed = run_cli("jobs")  # the command line says where it runs
    assert f"on {launch.hostname()} (Ray node {second[:8]})" in listed.stdout, listed.stdout
    stop(here, lab, by=owner(here))  # the head's GPU is free for what comes next
    assert wait_job(lab, here, timeout=30).status == "stopped"
    # the second node dies mid-run: its job is interrupted within the reaping time, by heartbeat or Ray's own state
    killed_at = time.time()
    cluster.remove_node(cluster.second, allow_graceful=False)
    lost = wait_job(lab, there, timeout=STALE_AFTER_S + 30)
    assert lost.status == "interrupted", (lost.status, lost.error)
    assert time.time() - killed_at < STALE_AFTER_S + 30
    assert "Resume continues" in lost.error
    progress = lost.progress
    # resumed, it runs on the node that is left (the head), from where it was
    resume(there, lab, by=owner(there))
    wait_for(lambda: lab.jobs.get(there).status == "running" and lab.jobs.get(there).host is not None, 60, lab,
             "the job running on the head")
    back = lab.jobs.get(there)
    assert node_of(back) != second and back.progress >= progress  # from its count on the shared home, not from 0
    stop(there, lab, by=owner(there))
    done = wait_job(lab, there, timeout=30)
    assert done.status == "stopped" and done.progress >= progress


def test_a_group_job_is_one_placement_group_packed_on_one_node_running_torchrun(cluster, lab):
    big = cluster.add_node(num_cpus=1, num_gpus=2, object_store_memory=80 * 2 ** 20)  # the only node with 2 GPUs
    cluster.wait_for_nodes()
    group = submit(lab, JobRequest(kind=kind_named("group_nap"), name="pair", device="cuda", world_size=2,
                                   params={"naps": 2, "nap_s": 0.1}))[0]
    done = wait_job(lab, group, timeout=90)
    assert done.status == "done", (done.status, done.error)
    assert node_of(done) == big.node_id  # both bundles on the one node that has two GPUs (STRICT_PACK)
    shown = [(job_dir(group) / f"rank{r}.txt").read_text() for r in (0, 1)]
    assert shown[0] == shown[1] and sorted(shown[0].split(",")) == ["0", "1"]  # torchrun's ranks see the group's GPUs
    # a group no node can hold is refused in words at once, not left waiting for the start-up grace
    three = submit(lab, JobRequest(kind=kind_named("group_nap"), name="three", device="cuda", world_size=3,
                                   params={"naps": 1, "nap_s": 0.1}))[0]
    refused = lab.jobs.get(three)
    assert refused.status == "failed" and "largest node of the Ray cluster has 2" in refused.error
    # the pair's actor ends once its group has (and with it the placement group): nothing left on the node
    wait_for(lambda: not [a for a in ray.util.list_named_actors(all_namespaces=True)
                          if str(a["name"]).startswith(f"job-{group}-")], 30, what="the pair's actor ended")
    assert all(g["state"] == "REMOVED" for g in ray.util.placement_group_table().values())


def test_the_workers_of_a_department_share_a_postgresql_store(cluster, lab_home, pg_url, monkeypatch):
    monkeypatch.setenv("RESNET_LAB_DB", pg_url)  # passed on to every node's workers with the lab's other settings
    monkeypatch.setenv("RESNET_LAB_RAY", cluster.address)  # (every other test's lab home runs local workers)
    monkeypatch.setenv("RESNET_LAB_KINDS", "tests.jobs.ray_wiring")
    monkeypatch.setenv("RESNET_LAB_HEARTBEAT_S", "0.5")
    store = Store()
    try:
        ids = [naps(store, who, 2, nap_s=0.1) for who in (ADA, BOB)]
        wait_for(lambda: all(store.jobs.get(j).status == "done" for j in ids), 90, store, "both naps done",
                 explain=lambda: str([(j.id, j.status, j.error) for j in map(store.jobs.get, ids)]))
        assert all(node_of(store.jobs.get(j)) for j in ids)
        assert not (lab_home / "runs.db").exists()  # the records are in PostgreSQL; the home holds the files
        assert all(Path(store.jobs.get(j).result_path).read_text() == "2 0\n" for j in ids)
    finally:
        store.close()

"""The machines table of the Teacher page (resnet_lab.jobs.launch.machines_of): each machine with what it has, what
the lab's jobs hold of it and which running jobs are there — this machine alone with local workers, or every Ray
node (the two-node cluster itself: tests/jobs/test_ray_cluster.py)."""

from types import SimpleNamespace as Job

from resnet_lab.jobs import launch


def test_without_a_cluster_this_machine_holds_its_local_workers_and_another_machine_gets_a_row():
    here = launch.hostname()
    running = [Job(id=1, host=here, slots=("cpu",)), Job(id=2, host=None, slots=("cpu",)),
               Job(id=3, host="other-box", slots=("cpu",))]
    rows = launch.machines_of(running, [], {})
    assert [(m.name, m.node, m.jobs) for m in rows] == [(here, None, (1, 2)), ("other-box", None, (3,))]
    assert rows[0].alive and rows[0].cpus >= 1 and rows[0].gpus == 0 and rows[0].gpus_held is None


def test_with_ray_every_node_is_a_row_with_its_gpus_held_and_its_jobs():
    nodes = [{"NodeID": "a" * 40, "Alive": True, "NodeManagerHostname": "gpu-1", "Resources": {"GPU": 2, "CPU": 8}},
             {"NodeID": "b" * 40, "Alive": False, "NodeManagerHostname": "gpu-2", "Resources": {"GPU": 1, "CPU": 4}}]
    running = [Job(id=7, host=f"gpu-1 ray:{'a' * 40}", slots=("cuda:0",)),
               Job(id=9, host=f"gpu-1 ray:{'a' * 40}", slots=("cuda:1",)),
               Job(id=8, host=None, slots=("cuda:2",))]  # claimed, its worker not said hello yet: nowhere yet
    rows = launch.machines_of(running, nodes, {"a" * 40: 1.5})
    assert [(m.name, m.alive, m.gpus, m.gpus_held, m.cpus, m.jobs) for m in rows[:2]] == [
        ("gpu-1 (Ray node aaaaaaaa)", True, 2.0, 1.5, 8.0, (7, 9)), ("gpu-2 (Ray node bbbbbbbb)", False, 1.0, None, 4.0, ())]
    assert [(m.name, m.jobs) for m in rows[2:]] == [("starting (no node yet)", (8,))]  # apart, on no node yet

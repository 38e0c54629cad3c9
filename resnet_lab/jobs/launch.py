"""Where a claimed job's worker runs: a process on this machine (the default), or a node of a Ray cluster.

The lab decides *which* job starts next (:mod:`.turns`: owners' fair turns, the class's caps) and on which kind of
slot; a launcher decides *where* its worker process runs. Both run the same harness,
``python -m resnet_lab.jobs.worker JOB_ID`` (:func:`resnet_lab.jobs.scheduler.worker_command`), which talks to the
store itself; neither knows what a job does.

- :class:`LocalLauncher`: ``subprocess.Popen`` on this machine, one slot = one of its GPUs (or its CPU).
- :class:`RayLauncher`, when ``RESNET_LAB_RAY`` is set (a cluster's address, or ``auto``): each job is one detached
  Ray actor holding the job's resources — ``num_gpus`` = 1 / ``RESNET_LAB_JOBS_PER_GPU`` for a GPU job, so two
  short runs share a GPU as they do on one machine; ``RESNET_LAB_RAY_CPUS_PER_JOB`` CPUs (default 1) for a CPU job;
  nothing for a download — placed by Ray on any node. The actor starts the worker there as a subprocess with the
  lab's environment (``RESNET_LAB_HOME`` etc.), waits for it, pumps the queue (as a local worker does as it ends)
  and exits. A job of ``world_size`` N is one placement group of N one-device bundles packed on one node
  (``STRICT_PACK``) running torchrun as on one machine. Detached: a job outlives the page or command that started
  it, as a local worker does. Ray is imported only here, and only when configured.

Under Ray, the lab's slots are the cluster's: ``cuda:0`` … ``cuda:N-1`` for its N GPUs, and one CPU lane per
``RESNET_LAB_JOBS_PER_CPU`` per node; a slot's name is a lane in the lab's count, not a GPU of a machine (Ray picks
the GPU). The lab home must be on storage every node mounts (NFS or similar): a node that cannot see it refuses the
job with that reason (:func:`home_refusal`) instead of starting a worker on an empty home.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Protocol

from ..paths import job_dir, lab_home
from ..store import Store, slot_class
from . import slots

RAY_ENV = "RESNET_LAB_RAY"  # a Ray cluster's address ("ray://…", "host:6379") or "auto"; unset: local processes
RAY_NODE_ENV = "RESNET_LAB_RAY_NODE"  # set for a worker started by Ray: the node it runs on (it says so in `host`)
NAMESPACE = "resnet_lab"  # the Ray namespace of the lab's actors (one per running job)
_REPO = Path(__file__).resolve().parents[2]
_children: dict[int, subprocess.Popen] = {}  # local workers this process started (polled so none is left a zombie)


@dataclass(frozen=True)
class Machine:
    """One machine (a Ray node, or this machine) as the teacher sees the cluster: what it has, what the lab's jobs
    hold of it now, and which running jobs' workers are there."""

    name: str  # "gpu-2", "gpu-2 (Ray node 5f0c1e2a)"
    node: str | None  # the Ray node's id (None: this machine, local processes)
    alive: bool
    gpus: float  # GPUs it has (fake ones on a test cluster count too)
    gpus_held: float | None  # GPUs the lab's jobs hold now (Ray's books; here: lanes in use over jobs per GPU)
    cpus: float
    jobs: tuple[int, ...]  # running jobs whose worker said hello from there


def machines_of(running: Iterable[Any], nodes: list[dict[str, Any]], held: dict[str, float]) -> list[Machine]:
    """The machines table from the running jobs (anything with ``.id`` and ``.host``) and Ray's nodes (``ray.nodes()``
    rows) with the GPUs held on each (node id -> GPUs), or, with no nodes, this machine alone. A running job whose
    host names no known node (a worker on another app server's machine) gets a row of its own."""
    rows: dict[str, dict[str, Any]] = {}
    for n in nodes:
        res = n.get("Resources", {})
        node = str(n["NodeID"])
        rows[node] = dict(name=f"{n.get('NodeManagerHostname', '?')} (Ray node {node[:8]})", node=node,
                          alive=bool(n.get("Alive")), gpus=float(res.get("GPU", 0)), gpus_held=held.get(node),
                          cpus=float(res.get("CPU", 0)), jobs=[])
    if not nodes:
        rows[""] = dict(name=hostname(), node=None, alive=True, gpus=float(slots.gpu_count()), gpus_held=None,
                        cpus=float(os.cpu_count() or 1), jobs=[])
    for job in running:
        host = job.host or ""
        machine, _, node = host.partition(" ray:")
        if node and node in rows:
            key = node
        elif not nodes and (not host or machine == hostname()):
            key = ""  # this machine's local worker (or one not said hello yet)
        else:
            key = f"host:{host}"
        if key not in rows:
            rows[key] = dict(name=host_label(host) or "starting (no node yet)", node=node or None, alive=True,
                             gpus=0.0, gpus_held=None, cpus=0.0, jobs=[])
        rows[key]["jobs"].append(job.id)
    if not nodes:
        here = rows[""]
        gpu_lanes = sum(1 for job in running for slot in getattr(job, "slots", ()) if slot.startswith("cuda:")
                        and job.id in here["jobs"])
        here["gpus_held"] = gpu_lanes / slots.jobs_per_gpu() if here["gpus"] else None
    return [Machine(**{**r, "jobs": tuple(sorted(r["jobs"]))}) for r in rows.values()]


class Launcher(Protocol):
    """Runs the worker of a claimed job somewhere, and says what the lab's slots are there."""

    def capacity(self) -> dict[str, int]:
        """{slot: jobs it may run at once} (see :func:`resnet_lab.jobs.slots.capacity`)."""
        ...

    def spawn(self, store: Store, job_id: int, slot: str, command: list[str]) -> None:
        """Start ``command`` (the job's worker) for a claimed job on ``slot``; record it, or fail the job."""
        ...

    def lost(self, job: Any) -> str | None:
        """Why the engine knows a running job's worker is gone (None: alive, or not known)."""
        ...

    def refusal(self, job: Any) -> str | None:
        """Why the place picked for a running job refused to run it (None: it did not)."""
        ...

    def machines(self, running: Iterable[Any]) -> list[Machine]:
        """The machines jobs run on, with the ``running`` jobs' places (see :class:`Machine`)."""
        ...


def hostname() -> str:
    """This machine's name, as a worker records it (``host``)."""
    return socket.gethostname()


def worker_host() -> str:
    """What a worker records as its host: the machine's name, and under Ray the node's id (two Ray nodes may be
    one machine, and a node's id is what Ray's own state and logs name)."""
    node = os.environ.get(RAY_NODE_ENV)
    return f"{hostname()} ray:{node}" if node else hostname()


def ran_here(host: str | None) -> bool:
    """Whether a job's worker ran on this machine as a local process (its pid means something here). Unknown
    (``None``: not said hello yet, or a lab home from before hosts were recorded) counts as here."""
    return host is None or host == hostname()


def host_label(host: str | None) -> str | None:
    """Where a job's worker runs, in words for a page or the command line — "gpu-2", "gpu-2 (Ray node 5f0c1e2a)" —
    or None when that says nothing (unknown, or this machine's own local worker)."""
    if ran_here(host):
        return None
    assert host is not None
    machine, _, node = host.partition(" ray:")
    return f"{machine} (Ray node {node[:8]})" if node else machine


def home_refusal(home: Path) -> str | None:
    """Why a worker must not run against lab home ``home`` (None: it may): a node that cannot see the shared lab
    home would otherwise create an empty one and lose the job's records."""
    if not home.is_dir():
        return (f"The node {worker_host()} cannot see the lab home {home}: mount the lab's shared storage (NFS or "
                "similar) at that path on every node, or take this node out of the cluster.")
    if not os.environ.get("RESNET_LAB_DB") and not (home / "runs.db").is_file():  # (a server database: no file)
        return (f"The node {worker_host()} sees {home}, but it holds no runs.db: this is not the lab home the lab "
                "runs on (mount the shared one at that path on every node).")
    return None


class LocalLauncher:
    """Workers as processes of this machine (today's lab): a GPU slot is one of its GPUs."""

    def capacity(self) -> dict[str, int]:
        return slots.capacity()

    def spawn(self, store: Store, job_id: int, slot: str, command: list[str]) -> None:
        try:
            d = job_dir(job_id)
            d.mkdir(parents=True, exist_ok=True)
            with open(d / "worker.log", "ab") as log:
                proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True, cwd=_REPO,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1", **slots.worker_env(slot)})
        except OSError as e:  # the job must not stay "running" with no worker
            store.jobs.finish(job_id, "failed", error=f"Its worker could not be started: {e}")
            return
        _children[proc.pid] = proc
        from .scheduler import _hello_by  # the reaper's rule lives with the reaper

        store.jobs.started(job_id, proc.pid, _hello_by(), host=hostname())

    def lost(self, job: Any) -> str | None:
        return None  # the pid and the heartbeat say it (scheduler.gone)

    def refusal(self, job: Any) -> str | None:
        return None  # this machine's worker fails its job itself

    def machines(self, running: Iterable[Any]) -> list[Machine]:
        return machines_of(list(running), [], {})


def _lab_env() -> dict[str, str]:
    """The environment a job's worker gets on any node: the lab's settings (``RESNET_LAB_*``: its home, wiring,
    heartbeat…) and the test/tool settings a worker reads, as this process has them."""
    keep = ("PYTHONUNBUFFERED", "OMP_WAIT_POLICY", "OMP_NUM_THREADS", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if (k.startswith("RESNET_LAB_") and k != RAY_NODE_ENV) or k in keep}
    env["RESNET_LAB_HOME"] = str(lab_home().absolute())  # the same path on every node (symlinks kept)
    env["PYTHONUNBUFFERED"] = "1"
    env["OMP_WAIT_POLICY"] = env.get("OMP_WAIT_POLICY") or "PASSIVE"  # as a local worker (slots.worker_env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO), env.get("PYTHONPATH", "")) if p)
    return env


def _refusal_key(home: str, job_id: int) -> bytes:
    """Where a node that refused a job leaves its reason, in the cluster's key-value store: it cannot write it to
    the lab's store, which it cannot see."""
    return f"resnet_lab/refused/{home}/{job_id}".encode()


class RayLauncher:
    """Jobs as detached Ray actors on a cluster's nodes (see the module's docstring).

    Spawning never waits for Ray: the job's actor is created (placed at once, or when resources free up: the job
    that ends pumps the queue while it still holds its GPU), the job is ``running`` with the start-up grace, and its
    worker says hello (pid, host) from its node. A node that refuses the job (no lab home) leaves its reason in the
    cluster's key-value store, where the next reap finds it and fails the job with it."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._runner: Any = None
        self._live: list[str] = []
        self._live_at = -float("inf")

    def connect(self) -> Any:
        """The ``ray`` module, connected to the cluster (once per process; inside a Ray actor, already)."""
        import ray

        if not ray.is_initialized():
            ray.init(address=self.address, namespace=NAMESPACE, log_to_driver=False,
                     logging_level="WARNING", runtime_env={"env_vars": {"PYTHONPATH": str(_REPO)}})
        if self._runner is None:
            self._runner = ray.remote(max_restarts=0)(JobRunner)
        return ray

    def _nodes(self) -> list[dict[str, Any]]:
        return [n for n in self.connect().nodes() if n.get("Alive")]

    def capacity(self) -> dict[str, int]:
        lanes = slots.capacity(slots.gpu_count())  # the cluster's GPUs, at most RESNET_LAB_GPUS
        lanes["cpu"] *= max(1, sum(1 for n in self._nodes() if n.get("Resources", {}).get("CPU", 0) > 0))
        return lanes

    def machines(self, running: Iterable[Any]) -> list[Machine]:
        """Every node Ray knows (a lost one shown as not alive), with the GPUs held on each: its total less what Ray
        has free there now."""
        ray = self.connect()
        nodes = list(ray.nodes())
        held: dict[str, float] = {}
        try:  # Ray's per-node view of free resources (what ray.available_resources() sums)
            from ray._private.state import state as ray_state

            free = ray_state.available_resources_per_node()
        except (ImportError, AttributeError):
            free = None
        if free is not None:
            for n in nodes:
                if n.get("Alive") and "GPU" in n.get("Resources", {}):
                    held[str(n["NodeID"])] = n["Resources"]["GPU"] - free.get(n["NodeID"], {}).get("GPU", 0.0)
        return machines_of(list(running), nodes, held)

    def gpus(self) -> int:
        """GPUs of the cluster's live nodes (the lab's GPU count under Ray)."""
        return int(sum(n.get("Resources", {}).get("GPU", 0) for n in self._nodes()))

    @staticmethod
    def _resources(slot: str) -> dict[str, float]:
        """What one process of a job on ``slot`` holds on its node."""
        kind = slot_class(slot)
        if kind == "cuda":
            return {"num_gpus": 1.0 / slots.jobs_per_gpu(), "num_cpus": 0}
        if kind == "cpu":
            return {"num_gpus": 0, "num_cpus": float(slots.setting("RESNET_LAB_RAY_CPUS_PER_JOB", 1, 0))}
        return {"num_gpus": 0, "num_cpus": 0}  # a download waits on the network

    def spawn(self, store: Store, job_id: int, slot: str, command: list[str]) -> None:
        """Create the job's actor (``command`` is built again on its node, with that node's Python) and leave the
        job running with the start-up grace: its worker says hello from the node Ray picks."""
        from ray.experimental.internal_kv import _internal_kv_del

        ray = self.connect()
        processes = len(slot.split(","))
        one = self._resources(slot)
        env = _lab_env()
        if slot_class(slot) != "cuda":
            env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU job sees no GPU, as on one machine
        name = f"job-{job_id}-{uuid.uuid4().hex[:8]}"
        options: dict[str, Any] = {"name": name, "namespace": NAMESPACE, "lifetime": "detached", **one}
        group = None
        try:
            _internal_kv_del(_refusal_key(env["RESNET_LAB_HOME"], job_id))  # an earlier start's
            if processes > 1:
                need = "GPU" if slot_class(slot) == "cuda" else "CPU"
                most = max((n.get("Resources", {}).get(need, 0) for n in self._nodes()), default=0)
                if most < processes:  # STRICT_PACK could never place it: say so now, not after the start-up grace
                    store.jobs.finish(job_id, "failed", error=(
                        f"This job runs as a group of {processes} processes on one node, one {need} each; the largest "
                        f"node of the Ray cluster has {most:g}. Ask for a smaller world size."))
                    return
                from ray.util.placement_group import placement_group
                from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

                bundle = {"GPU": 1.0} if slot_class(slot) == "cuda" else {"CPU": max(one["num_cpus"], 0.001)}
                group = placement_group([bundle] * processes, strategy="STRICT_PACK", lifetime="detached", name=name)
                options.update(num_gpus=bundle.get("GPU", 0), num_cpus=bundle.get("CPU", 0),
                               scheduling_strategy=PlacementGroupSchedulingStrategy(group, 0))
            self._runner.options(**options).remote(job_id, processes, str(_REPO), env)
        except Exception as e:  # a refused request, a lost connection: the job must not stay "running"
            if group is not None:
                ray.util.remove_placement_group(group)
            store.jobs.finish(job_id, "failed", error=f"Ray could not start its worker: {type(e).__name__}: {e}")
            return
        store.jobs.started(job_id, None, time.time())  # no pid yet: the start-up grace counts from now (gone())

    def refusal(self, job: Any) -> str | None:
        """The reason a node refused ``job`` (it could not see the lab home), once; None if none did."""
        if job.host is not None:
            return None
        from ray.experimental.internal_kv import _internal_kv_del, _internal_kv_get

        self.connect()
        key = _refusal_key(str(lab_home().absolute()), job.id)
        why = _internal_kv_get(key)
        if why is None:
            return None
        _internal_kv_del(key)
        return why.decode()

    def _live_actors(self, fresh: bool = False) -> list[str]:
        """The names of the lab's live actors, asked of Ray at most once a second (a reap asks for every job), or
        now (``fresh``)."""
        now = time.monotonic()
        if fresh or now - self._live_at > 1.0:
            ray = self.connect()
            self._live = [str(a["name"]) for a in ray.util.list_named_actors(all_namespaces=True)
                          if a.get("namespace") == NAMESPACE]
            self._live_at = now
        return self._live

    def lost(self, job: Any) -> str | None:
        """A job whose worker said hello under Ray and whose actor is no longer among the cluster's live named
        actors (its node died, or Ray ended it) is gone now, without waiting for the heartbeat timeout."""
        if not job.host or " ray:" not in job.host:
            return None
        mine = f"job-{job.id}-"
        if any(name.startswith(mine) for name in self._live_actors()) \
                or any(name.startswith(mine) for name in self._live_actors(fresh=True)):  # not one a second old
            return None
        return f"its Ray actor on {job.host} is gone (the node left the cluster, or Ray ended it)"


def die_with_parent() -> None:
    """SIGKILL this process when its parent dies: a worker started by a job's actor when the actor dies (the node
    lost, or Ray ending the actor), as a local worker dies with its machine — a worker left running would beat for
    a job Ray lost; and each process of a group when torchrun, its parent, dies that way. Linux only (elsewhere
    nothing: the heartbeat still finds a lost worker)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before the signal was asked for
            os.kill(os.getpid(), signal.SIGKILL)


class JobRunner:
    """The Ray actor of one job: takes the lab's environment, checks the lab home, starts the worker on its node,
    waits for it to end, pumps the queue, and ends (its resources go back to Ray). All of it starts in the
    constructor, which Ray runs whatever becomes of the process that created the actor (a page closed, a command
    that exits, another job's actor that ended)."""

    def __init__(self, job_id: int, processes: int, repo: str, env: dict[str, str]) -> None:
        import ray
        from ray.experimental.internal_kv import _internal_kv_put

        os.environ.update(env)  # this process is the job's alone: the lab's settings, as the lab has them
        os.environ[RAY_NODE_ENV] = ray.get_runtime_context().get_node_id()
        why = home_refusal(lab_home())
        worker_env = {k: v for k, v in os.environ.items() if k != RAY_ENV}  # the worker never pumps: see _run
        if why is None and processes > 1 and worker_env.get("CUDA_VISIBLE_DEVICES", "") != "":
            try:
                worker_env["CUDA_VISIBLE_DEVICES"] = ",".join(_group_gpus(processes))
            except Exception as e:  # said to the lab (the job fails with it), not left for the start-up grace
                traceback.print_exc()
                why = f"Its group's GPUs could not be found on {worker_host()}: {type(e).__name__}: {e}"
        if why is not None:
            _internal_kv_put(_refusal_key(os.environ.get("RESNET_LAB_HOME", ""), job_id), why.encode())
            threading.Thread(target=self._end, daemon=True).start()
            return
        threading.Thread(target=self._run, args=(job_id, processes, repo, worker_env), daemon=True).start()

    def _run(self, job_id: int, processes: int, repo: str, env: dict[str, str]) -> None:
        """In its own thread for the worker's whole life (the worker's parent-death signal follows this thread)."""
        from .scheduler import worker_command

        try:
            d = job_dir(job_id)
            d.mkdir(parents=True, exist_ok=True)
            with open(d / "worker.log", "ab") as log:
                proc = subprocess.Popen(worker_command(job_id, processes), stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=repo if Path(repo).is_dir() else None,
                                        env=env, preexec_fn=die_with_parent)
            proc.wait()
        except OSError as e:  # the worker never said hello: the reaper finds it gone after the start-up grace
            print(f"job {job_id}: its worker could not be started on {worker_host()}: {e}", file=sys.stderr)
        self._pump()
        self._end()

    @staticmethod
    def _pump() -> None:
        """Start the next queued jobs, as a local worker does as it ends (their actors are placed once this one
        has ended and freed what it holds)."""
        from .scheduler import pump

        try:
            store = Store()
            try:
                pump(store)
            finally:
                store.close()
        except Exception:  # the next pump (a page, the CLI, another job's end) starts the next job instead
            traceback.print_exc()

    @staticmethod
    def _end() -> None:
        """End this actor and its placement group, if it has one: their resources go back to Ray."""
        import ray
        from ray.util import get_current_placement_group, remove_placement_group

        group = get_current_placement_group()
        if group is not None:
            remove_placement_group(group)
        ray.kill(ray.get_runtime_context().current_actor, no_restart=True)


def _group_gpus(processes: int) -> list[str]:
    """The GPUs of a placement group's bundles, bundle 0 (this actor's) first: one tiny task in each other bundle
    asks Ray which GPU that bundle holds (a bundle keeps its GPU while the group lives)."""
    import ray
    from ray.util import get_current_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    group = get_current_placement_group()
    ask = ray.remote(num_gpus=1, num_cpus=0)(_gpu_ids)
    others = [ask.options(scheduling_strategy=PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=i))
              .remote() for i in range(1, processes)]
    return [str(g) for g in ray.get_gpu_ids()] + [str(g) for ids in ray.get(others) for g in ids]


def _gpu_ids() -> list[Any]:
    import ray

    return list(ray.get_gpu_ids())


_launchers: dict[str, Any] = {}


def ray_address() -> str | None:
    """The Ray cluster the lab runs its jobs on (``RESNET_LAB_RAY``), or None: local processes."""
    address = os.environ.get(RAY_ENV, "").strip()
    return address or None


def launcher() -> Launcher:
    """The launcher configured now: :class:`RayLauncher` for ``RESNET_LAB_RAY``, else :class:`LocalLauncher`."""
    address = ray_address()
    key = address or ""
    if key not in _launchers:
        _launchers[key] = RayLauncher(address) if address else LocalLauncher()
    return _launchers[key]

"""The degradation experiment as background work: queue two twin jobs (shallow, deep) with one data
setting, seed and budget, and read the four runs back into a report with its verdict.

The paper's claim and where this differs from it: :mod:`resnet_lab.analysis.degradation`.

Before the verdict, every run is checked for having learned (:mod:`resnet_lab.analysis.learned`: its final
training accuracy above chance by the stated margin, its training loss down from where it started). The
verdict needs the *shallower* pair to have learned: they are the baseline depth is measured against. A deeper
net stuck at chance beside a shallower one that learned is not a failed experiment but the finding itself (the
paper's plain-56, and this lab's, at 3,000 shapes images and 8 epochs), so it is judged, not excused. When a
shallower net did not learn, the report is inconclusive and says which runs did not learn and what to try.

The paper mode — He et al.'s own CIFAR-10 experiment (Table 6, Fig. 6): plain and ResNet at 20, 32, 44, 56 (and 110)
layers with the paper's 64k-step recipe, their test errors beside the paper's, over seeds — is
:mod:`resnet_lab.experiments.paper_cifar` (``python -m resnet_lab degradation --paper``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..analysis.degradation import DegradationVerdict, Series, last_epoch_mean, run_label, verdict_of
from ..analysis.learned import LearnedCheck, check_learned, inconclusive
from ..data.registry import DataConfig
from ..identity import MACHINE, Identity
from ..jobs import scheduler
from ..models.presets import CIFAR_DEPTHS, cifar_blocks, cifar_spec
from ..spec import ModelSpec
from ..store import Run, Store
from ..train import launcher
from ..train.config import TrainConfig
from .learned import goal_of, setting_of

KIND = "degradation"  # the experiments table's kind for this experiment
DEPTH_CHOICES = CIFAR_DEPTHS  # offered by the page
WIDTH_RANGE = (4, 64)  # channels of the first stage (stages get w, 2w, 4w); the paper uses 16
DEFAULT_IMAGES = 3000  # shapes images the four runs train on
DEFAULT_EPOCHS = 8
DEFAULT_BATCH = 128
DEFAULT_LR = 0.1
"""The default budget: measured on a 2-core CPU (20 vs 56 layers, width 16) it shows the paper's result —
final training error resnet-20 2.1%, resnet-56 2.6%, plain-20 2.2%, plain-56 82.0% — in about 30 minutes
(the 56-layer pair is 3× the 20-layer pair). The old default (2,000 images, 5 epochs: 80 optimizer steps)
left all four at chance."""


def _default_data() -> DataConfig:
    return DataConfig(name="shapes", image_size=32, train_subset=DEFAULT_IMAGES)


def _default_train() -> TrainConfig:
    return TrainConfig(epochs=DEFAULT_EPOCHS, batch_size=DEFAULT_BATCH, lr=DEFAULT_LR, seed=0, eval_points=0)


@dataclass(frozen=True)
class DegradationConfig:
    shallow: int = 20  # layers of the shallower pair, 6n+2 (8, 14, 20, 32, ...)
    deep: int = 56  # layers of the deeper pair, 6n+2 and more than ``shallow``
    width: int = 16  # channels of the first stage (stages have width, 2 x width, 4 x width), 4..64
    data: DataConfig = field(default_factory=_default_data)  # the one dataset all four runs train on
    train: TrainConfig = field(default_factory=_default_train)  # the one budget, seed and schedule of all four

    def __post_init__(self) -> None:
        cifar_blocks(self.shallow, "shallow")
        cifar_blocks(self.deep, "deep")
        if self.deep <= self.shallow:
            raise ValueError(f"deep={self.deep} must be more layers than shallow={self.shallow}")
        lo, hi = WIDTH_RANGE
        if isinstance(self.width, bool) or not isinstance(self.width, int) or not lo <= self.width <= hi:
            raise ValueError(f"width must be an integer in {lo}..{hi} (channels of the first stage), "
                             f"got {self.width!r}")
        if not isinstance(self.data, DataConfig):
            raise ValueError(f"data must be a DataConfig, got {type(self.data).__name__}")
        if not isinstance(self.train, TrainConfig):
            raise ValueError(f"train must be a TrainConfig, got {type(self.train).__name__}")

    def spec(self, depth: int) -> ModelSpec:
        """The ResNet of that depth at this width (10 classes, 3 channels: launcher fits them to the data)."""
        return cifar_spec(depth, width=self.width)

    @property
    def cost_ratio(self) -> float:
        """Roughly how many times longer the deep pair trains than the shallow pair (blocks per stage)."""
        return cifar_blocks(self.deep) / cifar_blocks(self.shallow)

    def params(self) -> dict[str, Any]:
        """The experiment's params as stored: {"shallow", "deep", "width", "data", "train"} (JSON-ready)."""
        return {"shallow": self.shallow, "deep": self.deep, "width": self.width, "data": self.data.to_dict(),
                "train": self.train.to_dict()}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "DegradationConfig":
        """Validate stored (or user) params back into a config."""
        if not isinstance(params, Mapping):
            raise ValueError("degradation params must be a JSON object")
        unknown = set(params) - {"shallow", "deep", "width", "data", "train"}
        if unknown:
            raise ValueError(f"unknown degradation setting(s): {', '.join(sorted(map(str, unknown)))}")
        missing = {"shallow", "deep", "width", "data", "train"} - set(params)
        if missing:
            raise ValueError(f"degradation params lack {', '.join(sorted(missing))}")
        return cls(shallow=params["shallow"], deep=params["deep"], width=params["width"],
                   data=DataConfig.from_dict(params["data"]),
                   train=TrainConfig.from_dict(params["train"]))


def submit_degradation(cfg: DegradationConfig, store: Store | None = None, request_key: str | None = None,
                       owner: Identity = MACHINE, lesson: Any = None) -> int:
    """Queue the experiment: two twin jobs [resnet-shallow + plain-shallow], [resnet-deep + plain-deep] with
    the same DataConfig and TrainConfig, and an ``experiments`` row grouping them. Returns its id.

    The shallow job is queued first, so on one device it trains first. With a ``request_key`` a repeated
    request within the store's dedupe window (a double click) returns the same experiment: the store
    dedupes each job by its key, and the experiment over exactly those jobs (``Store.create_experiment``).
    The jobs are ``owner``'s; an owner without room for both under the class's cap is refused before either
    is queued (:class:`resnet_lab.jobs.QueueFull`), and so is a pair outside the bounds that apply to them
    (:func:`resnet_lab.train.launcher.check_bounds`, with the open ``lesson``'s).
    """
    if not isinstance(cfg, DegradationConfig):
        raise ValueError(f"expected a DegradationConfig, got {type(cfg).__name__}")
    store = store or Store()
    if request_key is None or store.jobs.requested(f"{request_key}:{KIND}:shallow") is None:  # not a repeat
        scheduler.check_room(store, owner, 2)
    for depth in (cfg.shallow, cfg.deep):
        launcher.check_bounds(owner, launcher.fit_spec_to_data(cfg.spec(depth), cfg.data), cfg.data, cfg.train,
                              lesson)
    jobs = []
    for which in ("shallow", "deep"):
        depth = getattr(cfg, which)
        key = None if request_key is None else f"{request_key}:{KIND}:{which}"
        ids = launcher.submit(cfg.spec(depth), cfg.data, cfg.train, twin=True, name=f"{run_label(True, depth)} "
                              f"({KIND})", request_key=key, store=store, origin=KIND, owner=owner,
                              lesson=lesson)
        jobs.append(launcher.job_of(ids[0], store))
    exp_id = store.experiments.create(KIND, f"depth {cfg.shallow} vs {cfg.deep} · {cfg.data.name}", cfg.params(), jobs)
    for job in jobs:
        for run in store.runs.of_job(job):
            spec = ModelSpec.from_dict(run.spec)
            store.runs.update(run.id, name=f"{run_label(spec.skip, spec.depth)} ({KIND} #{exp_id})")
    return exp_id


@dataclass(frozen=True)
class RunSummary:
    label: str  # "plain-20", "resnet-56"
    depth: int  # weighted layers (6n+2)
    skip: bool  # True: the ResNet, False: its plain twin
    run_id: int
    job_id: int | None  # the job that trains it (and its twin)
    name: str  # the run's name in the store
    status: str  # queued, running, done, stopped, failed, diverged, interrupted
    error: str | None  # the run's message when it did not finish cleanly
    step: int  # optimizer steps done
    total_steps: int | None  # steps planned (None until the worker started)
    loss: Series  # train/loss points (step, epoch, value)
    train_error: Series  # 1 - train/acc points (step, epoch, fraction)
    final_loss: float | None  # step-weighted mean train loss over the last logged epoch
    final_error: float | None  # step-weighted mean train error over the last logged epoch, fraction
    final_val_error: float | None  # 1 - the last val/acc, fraction
    learned: LearnedCheck  # did it learn: final training accuracy vs chance, training loss first -> final

    @property
    def progress(self) -> float:
        """Fraction of the planned steps done, 0..1."""
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    def to_dict(self, series: bool = False) -> dict[str, Any]:
        d = {"label": self.label, "depth": self.depth, "skip": self.skip, "run": self.run_id, "name": self.name,
             "status": self.status, "error": self.error, "step": self.step, "total_steps": self.total_steps,
             "final_train_loss": self.final_loss, "final_train_error": self.final_error,
             "final_val_error": self.final_val_error, "learned": self.learned.to_dict()}
        if series:
            d["train_loss"] = [list(p) for p in self.loss]
            d["train_error"] = [list(p) for p in self.train_error]
        return d


@dataclass(frozen=True)
class DegradationReport:
    experiment_id: int | None  # None when read from bare job ids
    name: str
    shallow: int  # depths
    deep: int
    job_ids: tuple[int, int]  # (shallow job, deep job); each job is a ResNet run and its plain twin
    runs: tuple[RunSummary, ...]  # resnet-shallow, resnet-deep, plain-shallow, plain-deep
    complete: bool  # all four runs are done
    verdict: DegradationVerdict | None  # None until complete, and when inconclusive
    inconclusive: str | None  # why there is no verdict although all four are done: the shallower nets did not learn
    problems: tuple[str, ...]  # runs that failed, diverged, stopped or were interrupted; setup mismatches

    @property
    def finished(self) -> bool:
        """No run is queued or running any more (done or not)."""
        return all(r.status not in ("queued", "running") for r in self.runs)

    @property
    def active_jobs(self) -> list[int]:
        return [j for j in self.job_ids if any(r.status in ("queued", "running") for r in self.runs
                                               if r.job_id == j)]

    def get(self, skip: bool, depth: int) -> RunSummary:
        for r in self.runs:
            if r.skip == skip and r.depth == depth:
                return r
        raise KeyError(f"no {run_label(skip, depth)} run in this experiment")

    def to_dict(self, series: bool = False) -> dict[str, Any]:
        return {"experiment": self.experiment_id, "name": self.name, "shallow": self.shallow, "deep": self.deep,
                "jobs": list(self.job_ids), "complete": self.complete, "finished": self.finished,
                "runs": [r.to_dict(series) for r in self.runs],
                "verdict": self.verdict.to_dict() if self.verdict else None,
                "inconclusive": self.inconclusive is not None, "inconclusive_why": self.inconclusive,
                "problems": list(self.problems)}


def _summary(store: Store, run: Run) -> RunSummary:
    spec = ModelSpec.from_dict(run.spec)
    m = store.runs.metrics(run.id, ["train/loss", "train/acc", "val/acc"])
    loss = [tuple(p) for p in m.get("train/loss", [])]
    err = [(s, e, 1.0 - v) for s, e, v in m.get("train/acc", [])]
    val = m.get("val/acc", [])
    label = run_label(spec.skip, spec.depth)
    final_loss, final_error = last_epoch_mean(loss), last_epoch_mean(err)
    learned = check_learned(None if final_error is None else 1.0 - final_error, spec.num_classes,
                            loss[0][2] if loss else None, final_loss, accuracy_kind="training accuracy",
                            label=label, setting=setting_of(run), goal=goal_of(run))
    return RunSummary(label=label, depth=spec.depth, skip=spec.skip, run_id=run.id, job_id=run.job_id,
                      name=run.name, status=run.status, error=run.error, step=run.step, total_steps=run.total_steps,
                      loss=loss, train_error=err, final_loss=final_loss, final_error=final_error,
                      final_val_error=1.0 - val[-1][2] if val else None, learned=learned)


def from_runs(store: Store, job_ids: Sequence[int], experiment_id: int | None = None,
              name: str | None = None) -> DegradationReport:
    """The report of two twin jobs (shallow, deep), however they were launched.

    Each job must hold a ResNet and its plain twin of one depth; the depths are read from the runs'
    specs. Raises ValueError when the jobs do not make the four runs of a degradation experiment.
    """
    job_ids = [int(j) for j in job_ids]
    if len(job_ids) != 2 or job_ids[0] == job_ids[1]:
        raise ValueError(f"a degradation experiment has two jobs (shallow, deep), got {job_ids}")
    runs = [r for j in job_ids for r in store.runs.of_job(j)]
    if not runs:
        raise KeyError(f"no runs for jobs {job_ids}")
    summaries = [_summary(store, r) for r in runs]
    kinds = sorted((s.skip, s.depth) for s in summaries)
    depths = sorted({s.depth for s in summaries})
    if len(summaries) != 4 or len(depths) != 2 or kinds != sorted((k, d) for k in (False, True) for d in depths):
        raise ValueError(f"jobs {job_ids} are not a degradation experiment: they hold "
                         f"{', '.join(s.label for s in summaries) or 'no runs'}, not a ResNet and its plain twin "
                         "at each of two depths")
    shallow, deep = depths
    order = [(True, shallow), (True, deep), (False, shallow), (False, deep)]
    summaries.sort(key=lambda s: order.index((s.skip, s.depth)))
    problems = [f"{s.label} {s.status}" + (f": {s.error}" if s.error else "")
                for s in summaries if s.status in ("failed", "diverged", "stopped", "interrupted")]
    if any(r.data != runs[0].data for r in runs):
        problems.append("the four runs did not train on the same data settings: the comparison is not fair")
    if any(r.train != runs[0].train for r in runs):
        problems.append("the four runs did not share one training config (seed, budget, schedule): "
                        "the comparison is not fair")
    complete = all(s.status == "done" for s in summaries)
    verdict = why = None
    if complete and all(s.final_error is not None for s in summaries):
        baselines = [s.learned for s in summaries if s.depth == shallow]
        if all(c.learned for c in baselines):
            by = {(s.skip, s.depth): s.final_error for s in summaries}
            verdict = verdict_of(by[(False, shallow)], by[(False, deep)], by[(True, shallow)], by[(True, deep)],
                                 shallow, deep)
        else:  # no baseline to degrade from: name every run that did not learn
            why = inconclusive([s.learned for s in summaries])
    elif complete:
        problems.append("a run finished without logging training accuracy, so there is no verdict")
    return DegradationReport(experiment_id=experiment_id, name=name or f"depth {shallow} vs {deep}",
                             shallow=shallow, deep=deep, job_ids=(job_ids[0], job_ids[1]), runs=tuple(summaries),
                             complete=complete and (verdict is not None or why is not None), verdict=verdict,
                             inconclusive=why, problems=tuple(problems))


def summarize(store: Store, experiment_id: int) -> DegradationReport:
    """The report of a degradation experiment recorded in the store (KeyError for an unknown id)."""
    exp = store.experiments.get(experiment_id)
    if exp.kind != KIND:
        raise ValueError(f"experiment {experiment_id} is a {exp.kind} experiment, not a {KIND} experiment")
    return from_runs(store, exp.job_ids, experiment_id=exp.id, name=exp.name)

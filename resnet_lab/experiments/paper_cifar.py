"""He et al. 2015's CIFAR-10 experiment (sec. 4.2, Table 6 and Fig. 6) as background work: for each depth (20, 32,
44, 56; 110 optional) one twin job — the ResNet and its plain twin on the very same batches — per seed, trained
with a named recipe (:func:`resnet_lab.train.recipes.named_recipe`: ``paper``, the paper's 64k-step schedule on a
45k/5k split, or ``short``, a lesson's one-cycle run), queued on the one queue, and read back into a table: depth,
the plain nets' and the ResNets' test error (mean ± std over seeds when more than one ran) beside the paper's
ResNet error, and the training-error curves of Fig. 6.

Where this differs from the paper: Table 6 lists each ResNet's test error from one run (ResNet-110: the best of 5,
with mean ± std); here every seed counts and the spread is the sample standard deviation over seeds. Table 6 has
no plain-net numbers (Fig. 6 draws them); the plain column here is this lab's only. ResNet-110's warm-up (lr 0.01
until the training error is below 80%, about 400 steps) is a one-epoch linear warm-up here. The lab normalises per
channel where the paper subtracts the per-pixel mean. The test error is that of the model as training ended, on
the official 10,000 test images: from its test split when the run held val out of the training images
(``DataConfig.holdout_val``), else from its last validation, whose split *is* the official test set.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..analysis.degradation import run_label
from ..data.registry import DataConfig, dataset_info
from ..identity import MACHINE, Identity
from ..jobs import eta, scheduler, slots
from ..models.presets import cifar_blocks, cifar_spec
from ..models.published import TABLE6_ERROR
from ..spec import ModelSpec
from ..store import Run, Store
from ..train import launcher
from ..train.config import TrainConfig
from ..train.recipes import RECIPE_NAMES, Recipe, named_recipe
from .degradation import WIDTH_RANGE

KIND = "paper_cifar"  # the experiments table's kind
PAPER_DEPTHS = (20, 32, 44, 56)  # Table 6's plain/ResNet comparison (Fig. 6); 110 is optional (a ResNet's day)
DEPTH_CHOICES = (20, 32, 44, 56, 110)
PAPER_RESNET_ERROR = {d: TABLE6_ERROR[d] for d in DEPTH_CHOICES}
"""CIFAR-10 test error of the ResNets (option A), He et al. 2015, Table 6 (110: the best of 5 runs; their mean
6.61 ± 0.16), at the depths this experiment trains; the numbers' one home is
:mod:`resnet_lab.models.published`."""
PAPER_SOURCE = "He et al. 2015, Table 6"
MAX_SEEDS = 10
WARMUP_110_EPOCHS = 1.0  # ResNet-110's warm-up, the paper's "about 400 iterations" (one epoch is 351 steps)


@dataclass(frozen=True)
class PaperConfig:
    depths: tuple[int, ...] = PAPER_DEPTHS  # 6n+2 depths, each a ResNet and its plain twin
    seeds: int = 1  # runs of each depth (seeds 0..seeds-1: initialisation, batch order, augmentation)
    recipe: str = "paper"  # a named recipe: "paper" (64k steps) or "short" (a lesson's one-cycle run)
    subset: int | None = None  # train on this many of the 50,000 training images (None: all)
    width: int = 16  # channels of the first stage (the paper: 16); tests use 4
    max_steps: int | None = None  # a shorter try: stop after this many steps, the paper's lr drops scaled along
    device: str = "auto"  # "auto", "cpu" or "cuda"
    dataset: str = "cifar10"  # or "cifar100" (the paper's column is CIFAR-10's: empty there)

    def __post_init__(self) -> None:
        if isinstance(self.depths, (str, bytes)) or not isinstance(self.depths, (list, tuple)) or not self.depths:
            raise ValueError(f"depths must be a list of 6n+2 depths, got {self.depths!r}")
        for d in self.depths:
            cifar_blocks(d, "a depth")
        object.__setattr__(self, "depths", tuple(sorted(set(self.depths))))
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or not 1 <= self.seeds <= MAX_SEEDS:
            raise ValueError(f"seeds must be an integer in 1..{MAX_SEEDS}, got {self.seeds!r}")
        lo, hi = WIDTH_RANGE
        if isinstance(self.width, bool) or not isinstance(self.width, int) or not lo <= self.width <= hi:
            raise ValueError(f"width must be an integer in {lo}..{hi} (channels of the first stage), got {self.width!r}")
        if self.recipe not in RECIPE_NAMES or self.recipe == "default":
            raise ValueError(f"recipe must be paper or short, got {self.recipe!r}")
        if self.max_steps is not None and (isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int)
                                           or self.max_steps < 1):
            raise ValueError(f"max_steps must be a positive integer (or None: the recipe's), got {self.max_steps!r}")
        self.data()  # the subset and dataset, checked now
        for depth in self.depths:
            self.train(depth, 0)
            self.spec(depth)

    def recipe_of(self) -> Recipe:
        return named_recipe(self.recipe, self.dataset, train_subset=self.subset)

    def data(self) -> DataConfig:
        """The one data setting of every run: the same images and split whatever the seed."""
        return self.recipe_of().data(seed=0)

    def spec(self, depth: int) -> ModelSpec:
        return cifar_spec(depth, width=self.width)

    def train(self, depth: int, seed: int) -> TrainConfig:
        """The recipe's training settings for one seed; with ``max_steps`` the run is that long and the paper's
        lr drops keep their place in it (32k and 48k of 64k: at half and three quarters)."""
        recipe = self.recipe_of()
        cfg = recipe.train(device=self.device, seed=seed)
        if self.max_steps is not None:
            milestones = cfg.milestones
            if milestones and cfg.max_steps:
                scaled = [max(1, round(m * self.max_steps / cfg.max_steps)) for m in milestones]
                milestones = tuple(sorted(set(scaled)))
            cfg = cfg.replace(max_steps=self.max_steps, milestones=milestones)
        if cfg.max_steps is not None:  # a log point every ~1/200 of the run (at most every 100 steps: 640 for 64k)
            log_every = max(1, min(100, cfg.max_steps // 200))
            cfg = cfg.replace(log_every=log_every, grad_norm_every=10 * log_every)
        if depth >= 110 and self.recipe == "paper":
            cfg = cfg.replace(warmup_epochs=WARMUP_110_EPOCHS)
        return cfg

    def plan(self) -> list[tuple[int, int]]:
        """(depth, seed) of every twin job, in the order queued: every depth of seed 0 first, shallow to deep."""
        return [(d, s) for s in range(self.seeds) for d in self.depths]

    def params(self) -> dict[str, Any]:
        return {"depths": list(self.depths), "seeds": self.seeds, "recipe": self.recipe, "subset": self.subset,
                "width": self.width, "max_steps": self.max_steps, "device": self.device, "dataset": self.dataset}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "PaperConfig":
        if not isinstance(params, Mapping):
            raise ValueError("the experiment's params must be a JSON object")
        unknown = set(params) - set(cls().params())
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(map(str, unknown)))}")
        return cls(**{**params, "depths": tuple(params.get("depths", PAPER_DEPTHS))})

    def describe(self) -> str:
        images = "all training images" if self.subset is None else f"{self.subset:,} training images"
        steps = f", {self.max_steps:,} steps" if self.max_steps is not None else ""
        return (f"depths {', '.join(map(str, self.depths))} · {self.recipe} recipe{steps} · {images} · "
                f"{self.seeds} seed{'s' if self.seeds != 1 else ''}")


def submit_paper(cfg: PaperConfig, store: Store | None = None, owner: Identity = MACHINE, lesson: Any = None,
                 request_key: str | None = None) -> int:
    """Queue one twin job per depth and seed (seed 0's depths first, shallow to deep) and an experiments row
    grouping them; returns its id. Refused before anything is queued when the owner has no room for all of them
    (:class:`resnet_lab.jobs.QueueFull`), a job is out of bounds, or the dataset's files are missing
    (:class:`resnet_lab.data.torchvision_sets.DatasetMissing`, saying what to put where)."""
    if not isinstance(cfg, PaperConfig):
        raise ValueError(f"expected a PaperConfig, got {type(cfg).__name__}")
    store = store or Store()
    data = cfg.data()
    launcher.check_data_available(data)
    plan = cfg.plan()
    first_key = None if request_key is None else f"{request_key}:{KIND}:{plan[0][0]}:{plan[0][1]}"
    if first_key is None or store.jobs.requested(first_key) is None:  # not a repeat (a double click)
        scheduler.check_room(store, owner, len(plan))
    for depth, seed in plan:
        launcher.check_bounds(owner, launcher.fit_spec_to_data(cfg.spec(depth), data), data, cfg.train(depth, seed),
                              lesson)
    jobs = []
    for depth, seed in plan:
        key = None if request_key is None else f"{request_key}:{KIND}:{depth}:{seed}"
        ids = launcher.submit(cfg.spec(depth), data, cfg.train(depth, seed), twin=True, request_key=key,
                              name=f"{run_label(True, depth)} seed {seed} ({KIND})", store=store, origin=KIND,
                              owner=owner, lesson=lesson)
        jobs.append(launcher.job_of(ids[0], store))
    exp_id = store.experiments.create(KIND, f"Table 6 · {cfg.describe()}", cfg.params(), jobs)
    for job, (depth, seed) in zip(jobs, plan):
        for run in store.runs.of_job(job):
            spec = ModelSpec.from_dict(run.spec)
            store.runs.update(run.id, name=f"{run_label(spec.skip, spec.depth)} seed {seed} ({KIND} #{exp_id})")
    return exp_id


# --- the report --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PaperRun:
    label: str  # "plain-20", "resnet-56"
    depth: int
    skip: bool
    seed: int
    run_id: int
    job_id: int | None
    status: str
    step: int
    total_steps: int | None
    train_error: tuple[tuple[int, float], ...]  # (step, 1 - train/acc) at each log point: Fig. 6's curves
    test_error: float | None  # on the official test images, as training ended (fraction); None until known

    def to_dict(self, series: bool = False) -> dict[str, Any]:
        d = {"label": self.label, "depth": self.depth, "skip": self.skip, "seed": self.seed, "run": self.run_id,
             "job": self.job_id, "status": self.status, "step": self.step, "total_steps": self.total_steps,
             "test_error": self.test_error}
        if series:
            d["train_error"] = [list(p) for p in self.train_error]
        return d


@dataclass(frozen=True)
class Spread:
    """Test errors of one depth and kind over seeds: their mean and, with two or more, the sample std."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if self.n >= 2 else None

    def text(self) -> str:
        """ "8.91%", or "8.91 ± 0.20% (3 seeds)"."""
        if self.std is None:
            return f"{100 * self.mean:.2f}%"
        return f"{100 * self.mean:.2f} ± {100 * self.std:.2f}% ({self.n} seeds)"

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "n": self.n, "values": list(self.values)}


def spread(values: Sequence[float | None]) -> Spread | None:
    """The :class:`Spread` of the known values (None: none known yet)."""
    known = tuple(float(v) for v in values if v is not None)
    return Spread(known) if known else None


@dataclass(frozen=True)
class DepthRow:
    depth: int
    plain: Spread | None  # the plain nets' test error over seeds
    resnet: Spread | None  # the ResNets'
    paper_resnet: float | None  # Table 6's ResNet test error at this depth (None: not in the table)

    def to_dict(self) -> dict[str, Any]:
        return {"depth": self.depth, "plain_test_error": self.plain.to_dict() if self.plain else None,
                "resnet_test_error": self.resnet.to_dict() if self.resnet else None,
                "paper_resnet_test_error": self.paper_resnet}


def table(runs: Sequence[PaperRun], paper: Mapping[int, float] = PAPER_RESNET_ERROR) -> list[DepthRow]:
    """One row per depth, shallow to deep: the finished runs' test errors (mean ± std over seeds) beside the
    paper's ResNet error (``paper``: Table 6's; empty for a dataset the paper has no numbers for). A run that did not
    finish ``done`` counts in no mean."""
    rows = []
    for depth in sorted({r.depth for r in runs}):
        def errors(skip: bool) -> list[float | None]:
            return [r.test_error for r in runs if r.depth == depth and r.skip == skip and r.status == "done"]

        rows.append(DepthRow(depth, spread(errors(False)), spread(errors(True)), paper.get(depth)))
    return rows


def finding(rows: Sequence[DepthRow], num_classes: int = 10) -> str | None:
    """What the table shows, computed from it (None until every row has both kinds): whether the plain nets' test
    error rises with depth and the ResNets' falls — the paper's Fig. 6 / Table 6 — or not; runs at chance are
    named first, since their numbers say nothing about depth."""
    if len(rows) < 2 or any(r.plain is None or r.resnet is None for r in rows):
        return None
    chance = 1.0 - 1.0 / num_classes
    stuck = [f"{run_label(skip, r.depth)}" for r in rows for skip, s in ((False, r.plain), (True, r.resnet))
             if s.mean >= 0.95 * chance]
    if len(stuck) == 2 * len(rows):
        return "No net learned (every test error is at chance): train longer, or on more images."
    first, last = rows[0], rows[-1]

    def trend(kind: str, a: Spread, b: Spread) -> str:
        change = "rises" if b.mean > a.mean else "falls" if b.mean < a.mean else "stays"
        return f"the {kind} nets' test error {change} from {a.text()} at {first.depth} layers to {b.text()} at " \
               f"{last.depth}"

    text = f"{trend('plain', first.plain, last.plain)}; {trend('residual', first.resnet, last.resnet)}."
    text = text[0].upper() + text[1:]
    if stuck:
        text += f" At chance (learned nothing): {', '.join(stuck)}."
    return text


@dataclass(frozen=True)
class PaperReport:
    experiment_id: int | None
    name: str
    config: PaperConfig
    runs: tuple[PaperRun, ...]  # by depth, then seed, the ResNet before its twin
    rows: tuple[DepthRow, ...]
    problems: tuple[str, ...]  # runs that failed, stopped, diverged or were interrupted

    @property
    def finished(self) -> bool:
        return all(r.status not in ("queued", "running") for r in self.runs)

    @property
    def complete(self) -> bool:
        return bool(self.runs) and all(r.status == "done" and r.test_error is not None for r in self.runs)

    @property
    def job_ids(self) -> list[int]:
        return sorted({r.job_id for r in self.runs if r.job_id is not None})

    @property
    def active_jobs(self) -> list[int]:
        return sorted({r.job_id for r in self.runs if r.job_id is not None and r.status in ("queued", "running")})

    @property
    def finding(self) -> str | None:
        return finding(self.rows, dataset_info(self.config.dataset).num_classes) if self.complete else None

    def to_dict(self, series: bool = False) -> dict[str, Any]:
        return {"experiment": self.experiment_id, "kind": KIND, "name": self.name, "config": self.config.params(),
                "finished": self.finished, "complete": self.complete, "paper_source": PAPER_SOURCE,
                "table": [r.to_dict() for r in self.rows], "runs": [r.to_dict(series) for r in self.runs],
                "finding": self.finding, "problems": list(self.problems)}


def test_error_of(store: Store, run: Run) -> float | None:
    """The run's error on the official test images as its training ended: its ``test/acc`` when it held val out
    of the training images, else its last ``val/acc`` — its val split is the official test split — once done."""
    m = store.runs.metrics(run.id, ["test/acc", "val/acc"])
    if m.get("test/acc"):
        return 1.0 - m["test/acc"][-1][2]
    data = DataConfig.from_dict(run.data)
    if data.holdout_val or not dataset_info(data.name).official_val or run.status != "done" or not m.get("val/acc"):
        return None
    return 1.0 - m["val/acc"][-1][2]


def _run(store: Store, run: Run) -> PaperRun:
    spec = ModelSpec.from_dict(run.spec)
    seed = TrainConfig.from_dict(run.train).seed
    acc = store.runs.metrics(run.id, ["train/acc"]).get("train/acc", [])
    return PaperRun(label=run_label(spec.skip, spec.depth), depth=spec.depth, skip=spec.skip, seed=seed,
                    run_id=run.id, job_id=run.job_id, status=run.status, step=run.step, total_steps=run.total_steps,
                    train_error=tuple((int(s), 1.0 - v) for s, _, v in acc), test_error=test_error_of(store, run))


def summarize_paper(store: Store, experiment_id: int) -> PaperReport:
    """The report of a Table 6 experiment recorded in the store (KeyError for an unknown id)."""
    exp = store.experiments.get(experiment_id)
    if exp.kind != KIND:
        raise ValueError(f"experiment {experiment_id} is a {exp.kind} experiment, not a {KIND} experiment")
    runs = sorted((_run(store, r) for j in exp.job_ids for r in store.runs.of_job(j)),
                  key=lambda r: (r.depth, r.seed, not r.skip))
    problems = tuple(f"{r.label} seed {r.seed} {r.status}" for r in runs
                     if r.status in ("failed", "diverged", "stopped", "interrupted"))
    cfg = PaperConfig.from_params(exp.params)
    paper = PAPER_RESNET_ERROR if cfg.dataset == "cifar10" else {}
    return PaperReport(experiment_id=exp.id, name=exp.name, config=cfg, runs=tuple(runs), rows=tuple(table(runs, paper)),
                       problems=problems)


# --- what it costs -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cost:
    images: int  # training images the models see in all (steps x batch x models, every job)
    device: str  # the kind of device it would run on: "cpu" or "cuda"
    seconds: tuple[float, float] | None  # the queue's estimate for all the jobs one after another (early, late)

    def text(self) -> str:
        """ "about 3–9 h on cpu (33 million training images)", or what is known without a timing."""
        what = f"{self.images / 1e6:,.1f} million training images" if self.images >= 1e6 else \
            f"{self.images:,} training images"
        if self.seconds is None:
            return (f"{what} on {self.device}; no estimate yet (the queue learns this device's speed from a first "
                    "finished training job)")
        return f"about {eta.format_span(*self.seconds)} on {self.device}, one job after another ({what})"


def cost(store: Store, cfg: PaperConfig) -> Cost:
    """What the experiment asks of this machine: the training images of every job and the queue's estimate
    (:func:`resnet_lab.jobs.eta.duration`: this lab's timing of the same job when there is one, else the range of
    its other training jobs' speed per image), summed over the jobs."""
    device = slots.resolve_device(cfg.device)
    data = cfg.data()
    n_train = cfg.subset or dataset_info(data.name).train_images or launcher.NOMINAL_TRAIN_IMAGES
    if data.holdout_val:
        n_train -= max(1, round(data.val_fraction * n_train))
    history = eta.timings(store, device)
    images, lo, hi, known = 0, 0.0, 0.0, True
    for depth, seed in cfg.plan():
        train = cfg.train(depth, seed)
        steps_per_epoch = max(1, n_train // min(train.batch_size, n_train))
        steps = train.max_steps if train.max_steps is not None else train.epochs * steps_per_epoch
        job_images = 2 * steps * min(train.batch_size, n_train)  # the ResNet and its twin
        images += job_images
        work = launcher.training_work("train", [r["spec"] for r in launcher.training_rows(
            cfg.spec(depth), data, train, twin=True)], data, train)
        timed = history.get(work["key"])
        span = eta.duration(work if timed else {"key": work["key"], "units": job_images}, None, history)
        if span is None:
            known = False
        else:
            lo, hi = lo + span.lo, hi + span.hi
    return Cost(images=images, device=device, seconds=(lo, hi) if known and math.isfinite(hi) else None)

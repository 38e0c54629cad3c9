"""Which ResNet for my budget, from this lab's own runs: every finished run of a dataset as a point (best
validation accuracy against parameters, multiply-adds, training time and images/s), the Pareto front on each
axis, and the sentence read off it (:mod:`resnet_lab.analysis.pareto`); the published side is
:mod:`resnet_lab.models.published`, the budget question :mod:`resnet_lab.experiments.budget`.

:func:`points_of` is pure over store records (runs, their logged ``train_s`` and ``images_per_s``, their owners'
names): a run counts when it finished ("done", or "stopped" with its best validation kept) and logged a validation
accuracy. Its parameters and multiply-adds are its spec's at its own image size (:func:`run_costs`). Its training
time is the engine's logged ``train_s`` (time spent training, not queued or stopped) and its images/s the last
logged training throughput; a run that logged neither has no point on those two axes, and is still drawn on the
others. Owner names are text people typed: they are carried as they are, for the page to show as text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Mapping, Sequence

from ..analysis.pareto import CostAxis, Point, front, sentence
from ..models.presets import model_label
from ..models.summary import summarize
from ..spec import ModelSpec
from ..store import Run, Store

RUN_STATUSES = ("done", "stopped")  # finished runs whose best validation accuracy stands


@dataclass(frozen=True)
class Axis:
    key: str  # the RunPoint field drawn on x
    label: str  # the chart's x title
    cost: CostAxis  # how a sentence speaks of it
    higher_better: bool = False  # a speed: the front is computed on its inverse


AXES: dict[str, Axis] = {
    "params": Axis("params", "parameters", CostAxis("parameters")),
    "macs": Axis("macs", "multiply-adds per image", CostAxis("multiply-adds")),
    "train_s": Axis("train_s", "training time (s)", CostAxis("training time", "less")),
    "images_per_s": Axis("images_per_s", "training images/s", CostAxis("time per image", "less", "images/s"),
                         higher_better=True),
}


@dataclass(frozen=True)
class RunPoint:
    run_id: int
    name: str  # the run's name (typed by a person: text)
    model: str  # its preset ("resnet20") or the spec in words
    kind: str  # "ResNet" or "plain"
    owner: str  # identity key
    owner_name: str  # display name given when queued (text), "" when unknown
    dataset: str
    accuracy: float  # best validation accuracy, a fraction
    params: int
    macs: int  # multiply-adds per image at the run's image size
    train_s: float | None  # logged training time, seconds
    images_per_s: float | None  # last logged training throughput

    @property
    def label(self) -> str:
        return f"{self.model} #{self.run_id}"

    def value(self, axis: str) -> float | None:
        return getattr(self, AXES[axis].key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@lru_cache(maxsize=512)
def _costs(spec_json: str, image_size: int) -> tuple[int, int]:
    s = summarize(ModelSpec.from_json(spec_json), image_size)
    return s.params, s.macs


def run_costs(spec: Mapping[str, Any], image_size: int | None) -> tuple[int, int] | None:
    """(parameters, multiply-adds per image) of a stored spec at ``image_size`` (the spec's default when None), or
    None when this lab cannot read the spec or it does not fit that size."""
    try:
        model = ModelSpec.from_dict(dict(spec))
        return _costs(model.to_json(indent=None), int(image_size) if image_size else model.default_input_size())
    except (ValueError, TypeError, RuntimeError):
        return None


def dataset_of(run: Run) -> str:
    return str(run.data.get("name", "?"))


def points_of(runs: Sequence[Run], train_s: Mapping[int, float], images_per_s: Mapping[int, float],
              owner_names: Mapping[int, str], dataset: str | None = None) -> list[RunPoint]:
    """A point per finished run (of ``dataset``, when given) with a best validation accuracy; ``train_s`` and
    ``images_per_s``: run id -> its logged value; ``owner_names``: job id -> the owner's display name. Newest
    first, as the runs came."""
    out = []
    for r in runs:
        acc = r.best.get("val/acc")
        if r.status not in RUN_STATUSES or not isinstance(acc, (int, float)):
            continue
        if dataset is not None and dataset_of(r) != dataset:
            continue
        costs = run_costs(r.spec, r.data.get("image_size"))
        if costs is None:
            continue
        out.append(RunPoint(run_id=r.id, name=r.name, model=model_label(r.spec), kind=r.kind, owner=r.owner,
                            owner_name=owner_names.get(r.job_id, "") if r.job_id is not None else "",
                            dataset=dataset_of(r), accuracy=float(acc), params=costs[0], macs=costs[1],
                            train_s=train_s.get(r.id), images_per_s=images_per_s.get(r.id)))
    return out


def run_points(store: Store, dataset: str | None = None, owner: str | None = None, limit: int = 2000
               ) -> list[RunPoint]:
    """:func:`points_of` the store's finished runs (of one ``owner`` when given; every student's otherwise)."""
    runs = store.runs.list(statuses=RUN_STATUSES, limit=limit, owner=owner)
    if dataset is not None:
        runs = [r for r in runs if dataset_of(r) == dataset]
    ids = [r.id for r in runs]
    names = {j.id: j.owner_name for j in store.jobs.list(kinds=("train", "finetune"), limit=10 * limit)}
    return points_of(runs, store.runs.last_values(ids, "train_s"), store.runs.last_values(ids, "images_per_s"),
                     names, dataset)


def datasets_of(points: Sequence[RunPoint]) -> list[str]:
    """The datasets that have points, the one with the most first."""
    counts: dict[str, int] = {}
    for p in points:
        counts[p.dataset] = counts.get(p.dataset, 0) + 1
    return sorted(counts, key=lambda d: (-counts[d], d))


def _cost(p: RunPoint, axis: Axis) -> float | None:
    v = p.value(axis.key)
    if v is None or v <= 0:
        return None
    return 1.0 / v if axis.higher_better else float(v)


@dataclass(frozen=True)
class Front:
    axis: str  # a key of AXES
    points: list[RunPoint]  # those with a value on this axis
    front: list[RunPoint]  # the Pareto front, cheapest first
    sentence: str  # what the points say ("" without points)


def front_of(points: Sequence[RunPoint], axis: str = "params") -> Front:
    """The Pareto front of ``points`` on ``axis`` (maximise accuracy, minimise the cost; a speed maximised) and
    its sentence. Points without a value on the axis are left out of both."""
    ax = AXES[axis]
    drawn = [p for p in points if _cost(p, ax) is not None]
    by_label = {p.label: p for p in drawn}
    best = front([Point(p.label, p.accuracy, _cost(p, ax)) for p in drawn])  # type: ignore[arg-type]
    said = sentence([Point(p.label, p.accuracy, _cost(p, ax)) for p in drawn], ax.cost)  # type: ignore[arg-type]
    return Front(axis, drawn, [by_label[p.label] for p in best], said)


def runs_report(points: Sequence[RunPoint], dataset: str) -> dict[str, Any]:
    """The runs' side of ``models compare --json``: each axis' front (run ids) and sentence, and the points."""
    fronts = {a: front_of(points, a) for a in AXES}
    return {"dataset": dataset, "points": [p.to_dict() for p in points],
            "fronts": {a: {"run_ids": [p.run_id for p in f.front], "sentence": f.sentence} for a, f in fronts.items()}}


__all__ = ["AXES", "Axis", "Front", "RUN_STATUSES", "RunPoint", "datasets_of", "front_of", "points_of", "run_costs",
           "run_points", "runs_report"]

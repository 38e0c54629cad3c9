"""Did these runs learn? :func:`resnet_lab.analysis.learned.check_learned` fed from a run's store record.

The accuracy judged is the validation accuracy of the checkpoint the pages and commands inspect (the run's
best, else its last evaluation); the loss series is the run's logged ``train/loss`` (first and last points);
the suggestion comes from the run's data and training settings.
"""

from __future__ import annotations

from typing import Sequence

from ..analysis.learned import GOAL, Goal, LearnedCheck, Setting, check_learned
from ..spec import ModelSpec
from ..store import Run, Store


def run_label(run: Run) -> str:
    """"ResNet #3", "plain #4"."""
    return f"{run.kind} #{run.id}"


def setting_of(run: Run) -> Setting:
    """The data and training settings a run used, as far as its record says."""
    data, train = run.data or {}, run.train or {}
    images = data.get("train_subset")
    return Setting(dataset=data.get("name"), images=int(images) if images else None, epochs=train.get("epochs"),
                   batch_size=train.get("batch_size"), lr=train.get("lr"))


def goal_of(run: Run) -> Goal:
    """What to suggest to a run that did not learn: its dataset's default recipe (resnet_lab.train.recipes), or
    the general goal when the recipe cannot be had (an unknown or deleted dataset, an odd spec)."""
    from ..train.recipes import recipe_for

    try:
        recipe = recipe_for(str((run.data or {}).get("name")), ModelSpec.from_dict(run.spec))
    except (ValueError, TypeError, KeyError):
        return GOAL
    images = recipe.train_subset or GOAL.images
    return Goal(images=images, epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr)


def val_accuracy(run: Run) -> float | None:
    """The validation accuracy of the checkpoint that is inspected (its best, else the last evaluation)."""
    for record in (run.best, run.last):
        v = (record or {}).get("val/acc")
        if v is not None:
            return float(v)
    return None


def check_run(store: Store, run: Run, label: str | None = None) -> LearnedCheck:
    """Whether ``run`` learned: its validation accuracy against chance, its training loss first → last."""
    loss = store.runs.metrics(run.id, ["train/loss"]).get("train/loss", [])
    first, last = (loss[0][2], loss[-1][2]) if loss else (None, None)
    return check_learned(val_accuracy(run), int(run.spec.get("num_classes", 10)), first, last,
                         accuracy_kind="val accuracy", label=run_label(run) if label is None else label,
                         setting=setting_of(run), goal=goal_of(run))


def check_runs(store: Store, runs: Sequence[Run]) -> tuple[LearnedCheck, ...]:
    return tuple(check_run(store, r) for r in runs)

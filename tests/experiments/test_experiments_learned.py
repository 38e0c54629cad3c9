"""The learned check read from store records: the inspected checkpoint's val accuracy, the logged training loss
(first → last point), and the run's own setting in the suggestion."""

import pytest

from resnet_lab.data.registry import DataConfig
from resnet_lab.analysis.learned import inconclusive
from resnet_lab.experiments.learned import check_run, check_runs, setting_of, val_accuracy
from resnet_lab.models.presets import cifar_spec
from resnet_lab.store import Store
from resnet_lab.train.config import TrainConfig
from tests.helpers.homes import seed

DATA = DataConfig(name="shapes", image_size=32, train_subset=300)
TRAIN = TrainConfig(epochs=2, batch_size=128, lr=0.1)


def pair(store: Store, acc: tuple[float | None, float | None], losses: tuple[list[float], list[float]]):
    """A ResNet-20 and its plain twin (6 classes) with hand-written val accuracies and training losses."""
    spec = cifar_spec(20, width=16, num_classes=6)
    rows = [{"name": n, "spec": s.to_dict(), "data": DATA.to_dict(), "train": TRAIN.to_dict()}
            for n, s in (("res", spec), ("plain", spec.twin()))]
    job, ids = store.jobs.create("train", "res", "cpu", then=seed(runs=rows, partners=True))
    for rid, a, loss in zip(ids, acc, losses):
        store.runs.add_metrics([(rid, 2 * (i + 1), (i + 1) / len(loss), "train/loss", v) for i, v in enumerate(loss)])
        if a is not None:
            store.runs.update(rid, best={"val/acc": a}, last={"val/acc": a - 0.01})
    store.jobs.finish(job, "done", only_if=["queued"])
    return [store.runs.get(i) for i in ids]


def test_runs_at_chance_did_not_learn_and_say_what_to_try():
    store = Store()
    runs = pair(store, (0.17, 0.165), ([1.80, 1.79, 1.79], [1.79, 1.79, 1.78]))
    checks = check_runs(store, runs)
    assert [c.learned for c in checks] == [False, False]
    assert [c.label for c in checks] == [f"ResNet #{runs[0].id}", f"plain #{runs[1].id}"]
    assert (checks[0].accuracy, checks[0].first_loss, checks[0].last_loss) == (0.17, 1.80, 1.79)
    why = inconclusive(checks)
    assert why.startswith("inconclusive: these models did not learn (ResNet #")
    assert "try more training images (3,000+), 5 epochs and batch 32 (this run: 300 images, 2 epochs at batch 128 " \
           "= about 4 optimizer steps, lr 0.1)" in why
    store.close()


def test_runs_that_learned_pass():
    store = Store()
    runs = pair(store, (0.93, 0.88), ([1.9, 0.8, 0.2], [2.4, 1.1, 0.4]))
    assert all(c.learned for c in check_runs(store, runs)) and inconclusive(check_runs(store, runs)) is None
    store.close()


def test_best_else_last_accuracy_and_the_setting_of_a_run():
    store = Store()
    runs = pair(store, (0.5, None), ([1.9, 1.0], [1.9, 1.0]))
    assert val_accuracy(runs[0]) == 0.5 and val_accuracy(runs[1]) is None
    store.runs.update(runs[1].id, last={"val/acc": 0.7})
    assert val_accuracy(store.runs.get(runs[1].id)) == pytest.approx(0.7)
    assert check_run(store, store.runs.get(runs[1].id)).learned
    s = setting_of(runs[0])
    assert (s.dataset, s.images, s.epochs, s.batch_size, s.lr) == ("shapes", 300, 2, 128, 0.1)
    store.close()


def test_the_suggestion_is_the_datasets_default_recipe(private_trained_home):
    from resnet_lab.experiments.learned import goal_of
    from resnet_lab.models import PRESETS
    from resnet_lab.train.recipes import recipe_for

    store, (resnet, _) = private_trained_home
    run = store.runs.get(resnet)  # trained on shapes
    recipe = recipe_for("shapes", PRESETS["resnet20"])
    goal = goal_of(run)
    assert (goal.images, goal.epochs, goal.batch_size, goal.lr) == (recipe.train_subset, recipe.epochs,
                                                                     recipe.batch_size, recipe.lr)

"""The named CIFAR-10 recipes: ``paper`` is He et al. 2015 sec. 4.2 to the letter, ``short`` a lesson's run whose
90% is a goal said as one."""

import pytest

from resnet_lab.models.presets import PRESETS
from resnet_lab.train.optim import lr_lambda
from resnet_lab.train.recipes import RECIPE_NAMES, named_recipe, recipe_for


def test_the_paper_recipe_is_sec_4_2():
    r = named_recipe("paper")
    data, train = r.data(), r.train(seed=3)
    assert (data.name, data.image_size, data.train_subset, data.augment) == ("cifar10", 32, None, True)
    assert data.holdout_val and data.val_fraction == 0.1  # 45k/5k, the official 10k reported as test
    assert (train.batch_size, train.optimizer, train.momentum, train.nesterov, train.weight_decay, train.lr) == (
        128, "sgd", 0.9, False, 1e-4, 0.1)
    assert (train.schedule, train.milestones, train.max_steps, train.seed) == ("step", (32_000, 48_000), 64_000, 3)
    assert train.label_smoothing == 0.0 and train.warmup_epochs == 0.0
    f = lr_lambda(train, steps_per_epoch=45_000 // 128)
    assert (f(31_999), f(32_000), f(48_000)) == pytest.approx((1.0, 0.1, 0.01))
    assert "64,000 steps" in r.describe() and "÷10 at steps 32,000 and 48,000" in r.describe()


def test_the_short_recipe_says_its_90_percent_is_a_goal_not_a_measurement():
    r = named_recipe("short", train_subset=5000)
    train = r.train()
    assert r.train_subset == 5000 and not r.data().holdout_val
    assert (train.schedule, train.batch_size, train.nesterov, train.label_smoothing, train.weight_decay) == (
        "onecycle", 512, True, 0.1, 5e-4)
    assert 0.2 <= train.lr <= 0.4 and train.epochs == 30 and train.max_steps is None
    assert "GOAL" in r.budget and "not yet measured on a GPU" in r.budget


def test_named_recipes_refuse_what_they_do_not_have():
    assert RECIPE_NAMES == ("default", "paper", "short")
    assert named_recipe("default", "digits", PRESETS["resnet20"]) == recipe_for("digits", PRESETS["resnet20"])
    with pytest.raises(ValueError, match="not known"):
        named_recipe("fast")
    cifar100 = named_recipe("paper", "cifar100")
    assert cifar100.data().name == "cifar100" and cifar100.train() == named_recipe("paper").train()
    assert "no CIFAR-100 result" in cifar100.budget
    with pytest.raises(ValueError, match="for cifar10, cifar100, not digits"):
        named_recipe("paper", "digits")
    with pytest.raises(ValueError, match="spec"):
        named_recipe("default", "digits")


@pytest.mark.parametrize("name, size", [("cifar100", 32), ("svhn", 32), ("imagenette", 64)])
def test_the_downloadable_datasets_have_recipes_of_their_own(name, size):
    from resnet_lab.models.presets import PRESETS
    from resnet_lab.train.recipes import recipe_for

    r = recipe_for(name, PRESETS["resnet20"])
    assert r.image_size == size and not r.why.startswith("your images") and r.dataset == name
    assert r.data().augment and r.train().epochs == r.epochs

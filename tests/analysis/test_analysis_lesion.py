"""Lesion study: each lesion's accuracy equals a model rebuilt by hand with that block replaced; impossible
lesions are None with their reason; the caller's model is never changed; the figure shows the numbers."""

import copy

import pytest
import torch
from torch import nn

from resnet_lab.analysis import from_run
from resnet_lab.analysis.lesion import (
    NOTE_NO_SKIP,
    NOTE_SHAPE,
    DeletionCurve,
    Lesion,
    LesionStudy,
    comparison_sentence,
    deletion_sentence,
    lesion_indices,
    lesion_study,
    random_deletions,
    summary_sentence,
)
from resnet_lab.data.registry import load_dataset
from resnet_lab.models import ResNet, build_model, set_branch, set_skip
from resnet_lab.spec import ModelSpec
from resnet_lab.store import Store
from resnet_lab.viz.experiments import lesion_figure

SPEC = ModelSpec(stem="cifar", depths=(2, 1, 1), widths=(4, 8, 16), shortcut="A", num_classes=3)
BLOCKS = ["layer1.0", "layer1.1", "layer2.0", "layer3.0"]
DOWN = {"layer2.0", "layer3.0"}


def trained_like(spec: ModelSpec) -> nn.Module:
    """A seeded model whose BatchNorms have non-trivial running statistics (a few train-mode passes)."""
    torch.manual_seed(1)
    model = build_model(spec)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 3, 12, 12) * 2 + 0.5)
    return model.eval()


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(48, 3, 12, 12, generator=g)
    y = torch.randint(0, 3, (48,), generator=g)
    return x, y


class ShortcutOnly(nn.Module):
    """What a v1 block computes without its residual branch: relu(shortcut(x))."""

    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x):
        identity = x if self.block.downsample is None else self.block.downsample(x)
        return torch.relu(identity)


class BranchOnly(nn.Module):
    """What a v1 block computes without its skip: relu(F(x))."""

    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x):
        return torch.relu(self.block.branch(x))


def replaced(model: nn.Module, name: str, make) -> nn.Module:
    """A copy of ``model`` with block ``name`` swapped for ``make(block)``."""
    m = copy.deepcopy(model)
    stage, i = name.split(".")
    layer = getattr(m, stage)
    layer[int(i)] = make(layer[int(i)])
    return m.eval()


def accuracy(model: nn.Module, x, y) -> float:
    with torch.no_grad():
        return int((model(x).argmax(1) == y).sum()) / len(y)


def test_resnet_lesions_equal_the_blocks_rebuilt_by_hand(batch):
    x, y = batch
    model = trained_like(SPEC)
    y = torch.where(torch.arange(len(y)) % 2 == 0, accuracy_preds(model, x), y)  # base accuracy well above chance
    study = lesion_study(model, x, y, batch_size=7, label="tiny")
    assert study.label == "tiny" and study.skip and study.n_images == 48
    assert study.base_acc == pytest.approx(accuracy(model, x, y))
    assert study.blocks == BLOCKS
    assert [(r.block, r.kind) for r in study.rows] == [(b, k) for b in BLOCKS for k in ("branch", "skip")]
    for b in BLOCKS:
        branch, skip = study.row(b, "branch"), study.row(b, "skip")
        assert branch.downsampling == skip.downsampling == (b in DOWN)
        assert branch.acc == pytest.approx(accuracy(replaced(model, b, ShortcutOnly), x, y))
        assert skip.acc == pytest.approx(accuracy(replaced(model, b, BranchOnly), x, y))
        assert branch.drop == pytest.approx(study.base_acc - branch.acc)
    lesions_that_change_something = [r for r in study.rows if r.acc != study.base_acc]
    assert lesions_that_change_something  # the test would notice a lesion that does nothing
    kept = [study.row(b, "branch").drop for b in BLOCKS if b not in DOWN]
    assert study.mean_drop("branch") == pytest.approx(sum(kept) / len(kept))
    every = [study.row(b, "branch").drop for b in BLOCKS]
    assert study.mean_drop("branch", exclude_downsampling=False) == pytest.approx(sum(every) / len(every))
    assert lesion_study(model, x, y, batch_size=256).rows == study.rows  # batching does not matter


def accuracy_preds(model, x):
    with torch.no_grad():
        return model(x).argmax(1)


def test_plain_lesions_identity_where_the_shape_is_kept_none_elsewhere(batch):
    x, y = batch
    model = trained_like(SPEC.twin())
    y = torch.where(torch.arange(len(y)) % 2 == 0, accuracy_preds(model, x), y)
    study = lesion_study(model, x, y)
    assert not study.skip
    for b in BLOCKS:
        branch, skip = study.row(b, "branch"), study.row(b, "skip")
        assert skip.acc is None and skip.drop is None and skip.note == NOTE_NO_SKIP
        if b in DOWN:
            assert branch.acc is None and branch.drop is None and branch.note == NOTE_SHAPE
        else:
            assert branch.acc == pytest.approx(accuracy(replaced(model, b, lambda _: nn.Identity()), x, y))
    assert study.mean_drop("skip") is None
    d = study.to_dict()
    assert d["mean_drop"]["skip"] is None and len(d["rows"]) == 8 and d["rows"][4]["acc"] is None


def test_the_callers_model_is_left_exactly_as_it_was(batch):
    x, y = batch
    model = trained_like(SPEC)
    model.train()  # even a model left in train mode, with a block's skip switched off
    set_skip(model, False, ["layer1.1"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [(b.skip_enabled, b.branch_enabled) for b in model.blocks()]
    study = lesion_study(model, x, y)
    random_deletions(model, x, y, trials=2)
    assert model.training
    assert [(b.skip_enabled, b.branch_enabled) for b in model.blocks()] == flags
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats untouched too
    intact = trained_like(SPEC)  # the study measures the model as built: every switch on
    assert study.base_acc == pytest.approx(accuracy(intact, x, y))


@pytest.mark.parametrize("spec", [
    ModelSpec(stem="cifar", depths=(2, 1), widths=(4, 8), shortcut="B", preact=True, num_classes=3),
    ModelSpec(stem="imagenet", block="bottleneck", depths=(1, 2), widths=(4, 8), shortcut="B", num_classes=3),
])
def test_block_by_block_reuse_matches_full_forward_passes(batch, spec):
    """lesion_study reruns only the blocks after a lesion; a full pass with the switch set must agree."""
    x, y = batch
    model = trained_like(spec)
    y = torch.where(torch.arange(len(y)) % 2 == 0, accuracy_preds(model, x), y)
    study = lesion_study(model, x, y, batch_size=20)
    for r in study.rows:
        m = copy.deepcopy(model)
        if r.kind == "branch":
            set_branch(m, False, [r.block])
        else:
            set_skip(m, False, [r.block])
        assert r.acc == pytest.approx(accuracy(m, x, y)), (r.block, r.kind)


class Biased(ResNet):
    """A model whose forward is more than stem, blocks and head: a fixed bias on the logits."""

    def forward(self, x):
        return super().forward(x) + torch.tensor([0.0, 0.3, -0.3])


def test_a_model_with_its_own_forward_is_studied_with_full_passes(batch):
    x, y = batch
    model = Biased(SPEC)
    model.load_state_dict(trained_like(SPEC).state_dict())
    model.eval()
    study = lesion_study(model, x, y, batch_size=16)
    assert study.base_acc == pytest.approx(accuracy(model, x, y))
    for b in BLOCKS:
        assert study.row(b, "branch").acc == pytest.approx(accuracy(replaced(model, b, ShortcutOnly), x, y))


def test_random_deletions_ends_are_the_intact_and_the_fully_deleted_model(batch):
    x, y = batch
    model = trained_like(SPEC)
    curve = random_deletions(model, x, y, trials=3, seed=0, label="r")
    assert curve.candidates == ("layer1.0", "layer1.1") and curve.ks == (0, 1, 2)
    assert curve.mean_acc[0] == pytest.approx(accuracy(model, x, y))
    both = replaced(replaced(model, "layer1.0", ShortcutOnly), "layer1.1", ShortcutOnly)
    assert curve.mean_acc[2] == pytest.approx(accuracy(both, x, y))
    singles = [accuracy(replaced(model, b, ShortcutOnly), x, y) for b in ("layer1.0", "layer1.1")]
    assert curve.min_acc[1] in singles and curve.max_acc[1] in singles  # each trial deletes one of the two
    assert curve.min_acc[1] <= curve.mean_acc[1] <= curve.max_acc[1]
    with pytest.raises(ValueError, match="at most 2 blocks"):
        random_deletions(model, x, y, ks=[3])


def test_progress_counts_every_unit_of_work_up_to_the_total(batch):
    x, y = batch
    model = trained_like(SPEC)
    calls = []
    study = lesion_study(model, x, y, batch_size=20, progress=lambda done, total: calls.append((done, total)))
    possible = sum(r.acc is not None for r in study.rows)  # 4 branch lesions + 4 skip lesions, all possible
    total = 3 * (1 + possible)  # 48 images in batches of 20: three batches, each intact + every lesion
    assert calls == [(i, total) for i in range(1, total + 1)]
    calls.clear()
    random_deletions(model, x, y, trials=3, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 5) for i in range(1, 6)]  # k = 0 and k = 2 have one subset each, k = 1 has three


def test_bad_inputs_are_refused_clearly(batch):
    x, y = batch
    model = trained_like(SPEC)
    with pytest.raises(ValueError, match="lesion kinds"):
        lesion_study(model, x, y, kinds=("branch", "wires"))
    with pytest.raises(ValueError, match="batch_size"):
        lesion_study(model, x, y, batch_size=0)
    with pytest.raises(ValueError, match="labels"):
        lesion_study(model, x, y[:5])
    with pytest.raises(ValueError, match="ResNet"):
        lesion_study(nn.Linear(3, 3), x, y)
    with pytest.raises(ValueError, match="positive"):
        lesion_indices(y, 0)


def test_lesion_indices_are_a_stratified_sorted_subset():
    y = torch.tensor([0] * 30 + [1] * 30 + [2] * 30)
    idx = lesion_indices(y, 12)
    assert idx.tolist() == sorted(set(idx.tolist())) and len(idx) == 12
    assert torch.bincount(y[idx]).tolist() == [4, 4, 4]
    assert lesion_indices(y, 500).tolist() == list(range(90))


def test_on_a_trained_run_every_block_is_studied_for_both_twins(finished_run):
    store = Store()
    subjects = [from_run(store.runs.get(i)) for i in finished_run]
    store.close()
    data = load_dataset(subjects[0].data)
    idx = lesion_indices(data.y_val, 200)
    studies = [lesion_study(s.model, s.normalize(data.x_val[idx]), data.y_val[idx], label=s.label) for s in subjects]
    resnet, plain = studies
    assert resnet.blocks == plain.blocks == ["layer1.0", "layer2.0", "layer3.0"]
    assert all(r.acc is not None for r in resnet.rows)
    assert plain.row("layer1.0", "branch").acc is not None and plain.row("layer2.0", "branch").acc is None
    sentence = summary_sentence(studies, "branch")
    assert sentence.startswith("Deleting one block's residual branch")
    drops = {"the ResNet": resnet.mean_drop("branch"), "the plain net": plain.mean_drop("branch")}
    for who, d in drops.items():
        said = f"{who} {100 * d:.1f} points" if min(drops.values()) >= 0 else f"{who} by {-100 * d:+.1f} points"
        assert said in sentence
    assert "the plain net has no skip connection to remove" in summary_sentence(studies, "skip").lower()


def test_figure_bars_are_the_drops_in_points_with_na_placeholders(batch):
    x, y = batch
    studies = [lesion_study(trained_like(s), x, y, label=lbl) for s, lbl in ((SPEC, "res"), (SPEC.twin(), "pl"))]
    fig = lesion_figure(studies, "branch")
    bars = {t.name: t for t in fig.data}
    for s in studies:
        assert list(bars[s.label].x) == BLOCKS
        want = [None if r.drop is None else 100 * r.drop for r in s.kind_rows("branch")]
        assert [None if v is None else pytest.approx(v) for v in bars[s.label].y] == want
    assert list(bars["pl: n/a"].x) == ["layer2.0", "layer3.0"] and list(bars["pl: n/a"].text) == ["n/a", "n/a"]
    assert "res: n/a" not in bars
    assert len(fig.layout.shapes) == 2  # the two downsampling blocks are shaded
    skip = {t.name: t for t in lesion_figure(studies, "skip").data}
    assert list(skip["pl: n/a"].x) == BLOCKS and all(v is None for v in skip["pl"].y)


def hand_study(skip: bool, drops: list[float | None], label: str = "") -> LesionStudy:
    """A study with the given per-block branch drops (None: not possible) on non-downsampling blocks."""
    rows = tuple(Lesion(f"layer1.{i}", "branch", False, None if d is None else 0.9 - d, d, "")
                 for i, d in enumerate(drops))
    return LesionStudy(label=label, skip=skip, base_acc=0.9, n_images=100, rows=rows)


@pytest.mark.parametrize("res, plain, start, veit", [
    ([0.02, 0.04], [0.5, 0.7], "The plain net loses 57.0 points more per deleted block than the ResNet, 20× as much",
     True),
    ([0.5, 0.7], [0.02, 0.04], "The ResNet loses 57.0 points more per deleted block than the plain net, 20×", False),
    ([0.02, 0.03], [0.03, 0.03], "The two lose about the same (within 1 point)", False),
])
def test_comparison_is_computed_from_the_mean_drops(res, plain, start, veit):
    sentence = comparison_sentence([hand_study(True, res), hand_study(False, plain)])
    assert sentence.startswith(start)
    assert ("as Veit et al. found" in sentence) == veit
    assert "falls apart" not in sentence


def test_comparison_needs_a_resnet_and_a_plain_net_that_can_take_the_lesion():
    assert comparison_sentence([hand_study(True, [0.1])]) == ""
    assert comparison_sentence([hand_study(True, [0.1]), hand_study(True, [0.3])]) == ""
    assert comparison_sentence([hand_study(True, [0.1]), hand_study(False, [None])]) == ""


def curve(skip: bool, accs: list[float]) -> DeletionCurve:
    ks = tuple(range(len(accs)))
    return DeletionCurve("", skip, tuple(f"b{i}" for i in ks[1:]), ks, tuple(accs), tuple(accs), tuple(accs), 5)


def test_deletion_sentence_is_computed_from_the_curves():
    smooth, broken = curve(True, [0.9, 0.88, 0.8, 0.6]), curve(False, [0.9, 0.3, 0.2, 0.17])
    s = deletion_sentence([smooth, broken])
    assert s.startswith("Deleting 1 block costs the ResNet 2.0 points and the plain net 60.0 points on average; "
                        "deleting 3, 30.0 and 73.0 points.")
    assert "The plain net loses more at every k" in s and "as Veit et al. found" in s
    at_chance = deletion_sentence([curve(True, [0.17, 0.17, 0.16, 0.17]), curve(False, [0.17, 0.18, 0.17, 0.17])])
    assert "Veit et al.'s finding does not show here" in at_chance and "falls apart" not in at_chance
    assert "changes the accuracy of the ResNet by" in at_chance  # the plain net gained a point at k = 1
    reverse = deletion_sentence([curve(True, [0.9, 0.3, 0.2]), curve(False, [0.9, 0.88, 0.8])])
    assert "The ResNet loses more at every k: the opposite of Veit et al.'s finding." in reverse

"""Feature maps at every point of a block obey the block's equation; stats and predictions are right."""

import pytest
import torch
import torch.nn.functional as F

from resnet_lab.analysis import activation_stats, evaluate, feature_maps, layer_tree, predict, top_channels
from resnet_lab.analysis.features import compare_responses
from resnet_lab.analysis.points import cam_layers
from resnet_lab.analysis.predict import confusion_matrix
from resnet_lab.models import build_model
from resnet_lab.spec import ModelSpec


def _model(**kw):
    spec = ModelSpec(stem="cifar", depths=(2, 2), widths=(4, 8), num_classes=3, **kw)
    torch.manual_seed(0)
    model = build_model(spec).eval()
    for m in model.modules():  # non-trivial BN statistics, so BN is not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    return model


@pytest.mark.parametrize("shortcut", ["A", "B", "C"])
def test_v1_block_out_is_relu_of_branch_plus_shortcut(shortcut):
    model = _model(shortcut=shortcut)
    x = torch.randn(2, 3, 8, 8)
    for block in ("layer1.0", "layer2.0", "layer2.1"):  # identity and downsampling blocks
        fm = feature_maps(model, x, [f"{block}:{p}" for p in ("x", "branch", "shortcut", "out")] + [block])
        assert torch.allclose(fm[f"{block}:out"], F.relu(fm[f"{block}:branch"] + fm[f"{block}:shortcut"]), atol=1e-6)
        assert torch.equal(fm[f"{block}:out"], fm[block])
    # the x of a block is the previous block's output, and the model's own forward is unchanged
    fm = feature_maps(model, x, ["layer1.1", "layer2.0:x", "stem", "layer1.0:x"])
    assert torch.equal(fm["layer1.1"], fm["layer2.0:x"])
    assert torch.equal(fm["stem"], fm["layer1.0:x"])
    assert fm["stem"].min() >= 0  # read before nothing: a copy taken after the stem's ReLU


def test_branch_is_read_before_the_in_place_relu():
    model = _model(shortcut="B")
    fm = feature_maps(model, torch.randn(2, 3, 8, 8), ["layer1.0:branch"])
    assert float(fm["layer1.0:branch"].min()) < 0  # a BN output: negative values survive the later ReLU


def test_preact_block_out_is_branch_plus_shortcut():
    model = _model(shortcut="B", preact=True)
    x = torch.randn(2, 3, 8, 8)
    for block in ("layer1.0", "layer2.0"):
        fm = feature_maps(model, x, [f"{block}:branch", f"{block}:shortcut", f"{block}:out"])
        assert torch.allclose(fm[f"{block}:out"], fm[f"{block}:branch"] + fm[f"{block}:shortcut"], atol=1e-6)


def test_plain_block_out_is_relu_of_branch_and_has_no_shortcut():
    model = _model(skip=False)
    fm = feature_maps(model, torch.randn(2, 3, 8, 8), ["layer2.0:branch", "layer2.0:out"])
    assert torch.allclose(fm["layer2.0:out"], F.relu(fm["layer2.0:branch"]))
    with pytest.raises(ValueError, match="no shortcut"):
        feature_maps(model, torch.randn(1, 3, 8, 8), ["layer2.0:shortcut"])
    assert not any(n.name.endswith(":shortcut") for n in layer_tree(model))


def test_layer_tree_and_cam_layers_follow_depth():
    model = _model()
    names = [n.name for n in layer_tree(model)]
    assert names[:8] == ["stem", "layer1", "layer1.0", "layer1.0:x", "layer1.0:branch", "layer1.0:shortcut",
                         "layer1.0:out", "layer1.1"]
    assert cam_layers(model) == ["layer2", "layer2.1", "layer2.0", "layer1", "layer1.1", "layer1.0"]
    fm = feature_maps(model, torch.randn(1, 3, 8, 8), names)  # every point of the tree can be read
    assert list(fm) == names


def test_unknown_points_are_clear_errors():
    model = _model()
    for bad, msg in [("layer7", "unknown layer"), ("conv1:branch", "not a residual block"),
                     ("layer1.0:middle", "unknown block part"), ("", "non-empty")]:
        with pytest.raises(ValueError, match=msg):
            feature_maps(model, torch.randn(1, 3, 8, 8), [bad])


def test_top_channels_orders_by_mean_absolute_activation():
    maps = torch.zeros(4, 2, 2)
    maps[1] = -3.0
    maps[3] = 2.0
    maps[0] = 1.0
    assert top_channels(maps, 3) == [1, 3, 0]
    assert top_channels(maps, 99) == [1, 3, 0, 2]


def test_activation_stats_match_feature_maps():
    model = _model(shortcut="B")
    x = torch.randn(6, 3, 8, 8)
    rows = activation_stats(model, x)
    assert [r["name"] for r in rows] == ["stem", "layer1.0", "layer1.1", "layer2.0", "layer2.1"]
    assert [r["index"] for r in rows] == [0, 1, 2, 3, 4]
    fm = feature_maps(model, x, ["layer2.0", "layer2.0:branch"])
    r = rows[3]
    assert r["mean"] == pytest.approx(float(fm["layer2.0"].mean()), rel=1e-5)
    assert r["std"] == pytest.approx(float(fm["layer2.0"].std()), rel=1e-5)
    assert r["zero_frac"] == pytest.approx(float((fm["layer2.0"] == 0).float().mean()))
    assert r["branch_std"] == pytest.approx(float(fm["layer2.0:branch"].std()), rel=1e-5)
    assert "branch_std" not in rows[0]


def test_predict_and_evaluate():
    model = _model()
    x = torch.randn(10, 3, 8, 8)
    probs, classes = predict(model, x, k=5)
    assert probs.shape == classes.shape == (10, 3)  # k capped at the class count
    with torch.no_grad():
        full = torch.softmax(model(x), 1)
    assert torch.allclose(probs[:, 0], full.max(1).values) and torch.equal(classes[:, 0], full.argmax(1))
    assert bool((probs[:, :-1] >= probs[:, 1:]).all())
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    ev = evaluate(model, x, y, batch_size=3)
    assert torch.allclose(ev.probs, full, atol=1e-6)
    pred = full.argmax(1)
    assert ev.accuracy == pytest.approx(float((pred == y).float().mean()))
    cm = ev.confusion()
    assert int(cm.sum()) == 10 and int(cm.trace()) == int((pred == y).sum())
    for t in range(3):
        for p in range(3):
            assert int(cm[t, p]) == int(((y == t) & (pred == p)).sum())
    wrong = ev.select("wrong")
    assert wrong == [i for i in range(10) if pred[i] != y[i]]
    mistakes = ev.confident_mistakes(3)
    assert set(mistakes) <= set(wrong) and len(mistakes) == min(3, len(wrong))
    conf = [float(full[i].max()) for i in mistakes]
    assert conf == sorted(conf, reverse=True)
    assert ev.select("class", 2) == [2, 5, 8]
    with pytest.raises(ValueError):
        ev.select("class", 7)


def test_confusion_matrix_and_per_class_accuracy_by_hand():
    y = torch.tensor([0, 0, 1, 1, 1])
    p = torch.tensor([0, 1, 1, 1, 0])
    assert confusion_matrix(y, p, 3).tolist() == [[1, 1, 0], [1, 2, 0], [0, 0, 0]]
    from resnet_lab.analysis import Evaluation

    probs = F.one_hot(p, 3).float()
    acc = Evaluation(probs, y).per_class_accuracy()
    assert acc[0] == pytest.approx(0.5) and acc[1] == pytest.approx(2 / 3) and torch.isnan(acc[2])


def _rows(stds: list[float]) -> list[dict]:
    return [{"name": "stem", "index": 0, "std": 1.0}] + [
        {"name": f"layer1.{i}", "index": i + 1, "std": 1.0, "branch_std": v} for i, v in enumerate(stds)]


def test_fig7_comparison_is_computed_from_the_measured_stds():
    c = compare_responses(_rows([0.2, 0.4]), _rows([0.6, 0.6]))
    assert (c.resnet_mean, c.plain_mean, c.blocks, c.resnet_smaller_in) == pytest.approx((0.3, 0.6, 2, 2))
    assert c.smaller == "ResNet" and c.holds and c.factor == pytest.approx(2.0)
    assert "the ResNet's responses are 2× smaller, as He et al. (2015, Fig. 7) found" in c.sentence
    reverse = compare_responses(_rows([0.9, 0.9]), _rows([0.3, 0.6]))
    assert not reverse.holds and "2× larger, the opposite of He et al.'s finding" in reverse.sentence
    same = compare_responses(_rows([0.5, 0.52]), _rows([0.5, 0.5]))
    assert same.smaller is None and not same.holds and "does not show here" in same.sentence
    assert "found" not in same.sentence.split("finding")[0]  # never stated as the paper's finding when it fails
    assert compare_responses(_rows([]), _rows([0.3])) is None

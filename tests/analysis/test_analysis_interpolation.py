"""Linear interpolation between two weights (Goodfellow et al. 2015): the grid holds both ends exactly, the
loss at each α equals an independent computation (BN buffers interpolated, or BN statistics recomputed as
torch.optim.swa_utils.update_bn does), a stop gives a partial curve, the summary numbers and sentence come from
the curve, results round-trip, and the figure shows both models side by side."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import update_bn

from resnet_lab import ModelSpec
from resnet_lab.analysis.landscape import (
    Interpolation,
    InterpolationParams,
    estimate_cost,
    interpolate,
    interpolation_summary,
)
from resnet_lab.experiments.landscape import interpolation_sentence
from resnet_lab.models import build_model
from resnet_lab.viz.landscape import interpolation_figure

SPEC = ModelSpec(stem="cifar", depths=(1, 1), widths=(4, 8), shortcut="B", num_classes=3, in_channels=3)


def trained_like(seed: int) -> dict[str, torch.Tensor]:
    """A state dict with non-default BN statistics (a few train-mode forwards of a seeded build)."""
    torch.manual_seed(seed)
    m = build_model(SPEC).train()
    with torch.no_grad():
        for _ in range(3):
            m(torch.randn(8, 3, 8, 8) * (1 + seed) + seed)
    return {k: v.clone() for k, v in m.eval().state_dict().items()}


def batches(n=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(6, 3, 8, 8, generator=g), torch.randint(0, 3, (6,), generator=g)) for _ in range(n)]


def reference(state, data, recompute: bool):
    """Loss and accuracy of a fresh model loaded with ``state`` — BN statistics recomputed by torch's own
    update_bn over the same batches when asked — computed without the landscape module."""
    m = build_model(SPEC)
    m.load_state_dict(state)
    if recompute:
        update_bn([x for x, _ in data], m)
    m.eval()
    with torch.no_grad():
        out = torch.cat([m(x) for x, _ in data])
    y = torch.cat([y for _, y in data])
    return F.cross_entropy(out, y).item(), (out.argmax(1) == y).float().mean().item()


def test_the_grid_holds_both_ends_exactly_and_bad_settings_are_refused():
    p = InterpolationParams()
    a = p.alphas()
    assert a[0] == -0.5 and a[-1] == 1.5 and 0.0 in a and 1.0 in a and p.points == 21 == len(a)
    assert InterpolationParams(resolution=3, extend=0.0).alphas() == [0.0, 1 / 3, 2 / 3, 1.0]
    assert InterpolationParams.from_dict(p.to_dict()) == p
    for bad in [dict(resolution=1), dict(resolution=51), dict(extend=-0.1), dict(extend=1.5), dict(extend=math.nan),
                dict(bn="keep"), dict(batches=0), dict(batch_size=4), dict(seed=-1)]:
        with pytest.raises(ValueError):
            InterpolationParams(**bad)
    with pytest.raises(ValueError, match="unknown interpolation setting"):
        InterpolationParams.from_dict({"steps": 3})
    assert p.describe() == "α from -0.5 to 1.5, 21 points, 2 batches of 128, BN recomputed, seed 0"


@pytest.mark.parametrize("bn", ["interpolate", "recompute"])
def test_every_point_equals_an_independent_computation(bn):
    a, b = trained_like(0), trained_like(1)
    data = batches()
    params = InterpolationParams(resolution=2, extend=0.5, batches=2, batch_size=8, bn=bn)
    model = build_model(SPEC).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    curve = interpolate(model, a, b, data, params, label="m", run_id=7, start_label="its initial weights")
    assert curve.alphas == (-0.5, 0.0, 0.5, 1.0, 1.5) and curve.complete and curve.images == 12
    for alpha, loss, acc in zip(curve.alphas, curve.loss, curve.acc):
        mixed = {k: torch.lerp(a[k], b[k], alpha) if a[k].is_floating_point() else b[k] for k in a}
        ref_loss, ref_acc = reference(mixed, data, recompute=bn == "recompute")
        assert loss == pytest.approx(ref_loss, rel=1e-5) and acc == pytest.approx(ref_acc)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the caller's model untouched
    if bn == "interpolate":  # the ends are the two weights themselves, with their own statistics
        assert curve.loss[1] == pytest.approx(reference(a, data, False)[0], rel=1e-5)
        assert curve.loss[3] == pytest.approx(reference(b, data, False)[0], rel=1e-5)


def test_recomputed_statistics_differ_from_interpolated_ones_in_the_middle():
    a, b = trained_like(0), trained_like(2)
    data = batches()
    kw = dict(resolution=2, extend=0.0, batches=2, batch_size=8)
    model = build_model(SPEC)
    re = interpolate(model, a, b, data, InterpolationParams(bn="recompute", **kw))
    it = interpolate(model, a, b, data, InterpolationParams(bn="interpolate", **kw))
    assert re.loss[1] != pytest.approx(it.loss[1], rel=1e-3)


def test_a_stop_gives_a_partial_curve_and_states_of_another_model_are_refused():
    a, b = trained_like(0), trained_like(1)
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 2

    curve = interpolate(build_model(SPEC), a, b, batches(1), InterpolationParams(resolution=2, batch_size=8),
                        should_stop=stop)
    assert not curve.complete and all(math.isfinite(v) for v in curve.loss[:2])
    assert all(math.isnan(v) for v in curve.loss[2:])
    other = {k: v for k, v in a.items() if k != "fc.bias"}
    with pytest.raises(ValueError, match="start weights do not fit"):
        interpolate(build_model(SPEC), other, b, batches(1), InterpolationParams())
    with pytest.raises(ValueError, match="at least one batch"):
        interpolate(build_model(SPEC), a, b, [], InterpolationParams())


def curve(loss, label="#1 r (ResNet)", skip=True, start="its initial weights (kept at step 0)", complete=True):
    params = InterpolationParams(resolution=4, extend=0.25, batch_size=8)
    alphas = tuple(params.alphas())
    assert len(loss) == len(alphas)
    return Interpolation(label=label, run_id=1, skip=skip, params=params, start=start, alphas=alphas,
                         loss=tuple(loss), acc=tuple(0.5 for _ in loss), images=8, complete=complete)


def test_the_summary_finds_the_climb_and_the_barrier_above_the_chord():
    #         α: -0.25 0    0.25 0.5  0.75 1    1.25
    falls = curve([2.5, 2.0, 1.6, 1.1, 0.6, 0.2, 0.3])
    row = interpolation_summary(falls)
    assert row["monotonic"] is True and row["climb"] == 0.0 and (row["loss_start"], row["loss_end"]) == (2.0, 0.2)
    assert row["barrier"] == pytest.approx(1.6 - 1.55)  # falls slowly at first: above the chord, never climbing
    bump = curve([1.0, 0.5, 0.9, 1.2, 0.8, 0.4, 0.6], label="#2 p (plain)", skip=False)
    row = interpolation_summary(bump)
    assert row["monotonic"] is False and row["climb"] == pytest.approx(1.2 - 0.5)
    assert row["barrier"] == pytest.approx(1.2 - 0.45)  # the chord at α = 0.5: (0.5 + 0.4) / 2
    sentence = interpolation_sentence([falls, bump])
    assert ("#1 r (ResNet): the loss falls all the way from its initial weights (kept at step 0) to the trained "
            "weights (as Goodfellow et al. saw for the nets they studied)") in sentence
    assert ("#2 p (plain): the loss does not fall all the way from its initial weights (kept at step 0): it climbs "
            "by up to 0.7 on the way, at most 0.75 above the straight line between the two ends") in sentence
    other = curve([2.5, 2.0, 1.6, 1.1, 0.6, 0.2, 0.3], start="run #4 other seed")
    assert "Goodfellow" not in interpolation_sentence([other])  # their finding is about the initial weights
    cut = curve([2.5, 2.0, 1.6, math.nan, math.nan, math.nan, math.nan], complete=False)
    assert interpolation_summary(cut)["monotonic"] is None and math.isnan(interpolation_summary(cut)["barrier"])
    assert interpolation_sentence([falls, cut]) == ""


def test_curves_round_trip_and_malformed_ones_are_refused():
    c = curve([2.5, 2.0, 1.6, 1.1, 0.6, 0.2, math.nan], complete=False)
    back = Interpolation.from_dict(c.to_dict())
    assert back.loss[:-1] == c.loss[:-1] and math.isnan(back.loss[-1]) and back.start == c.start
    doc = c.to_dict()
    for broken, match in [({**doc, "loss": [1.0]}, "loss must be a list of 7"), ({**doc, "hack": 1}, "unknown"),
                          ({**doc, "start": 3}, "start must be a string"), ({**doc, "run_id": "1"}, "run_id")]:
        with pytest.raises(ValueError, match=match):
            Interpolation.from_dict(broken)


def test_the_cost_counts_the_statistics_pass():
    model = build_model(SPEC)
    re = estimate_cost([model, model], (3, 8, 8), InterpolationParams(batches=2, batch_size=8),
                       forward_seconds=[0.01, 0.02])
    assert re.forwards == 2 * 21 * 2 * 2 and re.seconds == pytest.approx(0.03 * 21 * 2 * 2)
    assert "× 2 (BN statistics, then the loss)" in re.describe()
    it = estimate_cost(model, (3, 8, 8), InterpolationParams(batches=2, batch_size=8, bn="interpolate"),
                       forward_seconds=[0.01])
    assert it.forwards == 21 * 2 and "BN statistics" not in it.describe()


def test_the_figure_puts_each_model_in_its_own_column_with_both_ends_marked():
    res = curve([2.5, 2.0, 1.6, 1.1, 0.6, 0.2, 0.3], label="#1 <i>r</i> (ResNet)")
    plain = curve([1.0, 0.5, 0.9, 1.2, 0.8, 0.4, 0.6], label="#2 p (plain)", skip=False)
    fig = interpolation_figure([res, plain])
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [list(t.y) for t in lines] == [list(res.loss), list(plain.loss)]
    assert [t.xaxis for t in lines] == ["x", "x2"]  # side by side
    assert lines[1].line.dash == "dash"  # the plain twin dashed
    ends = [t for t in fig.data if t.mode == "markers+text"]
    assert [list(t.x) for t in ends] == [[0.0, 1.0], [0.0, 1.0]] and list(ends[0].text) == ["start", "trained"]
    assert list(ends[0].y) == [2.0, 0.2]
    assert "&lt;i&gt;" in fig.layout.annotations[0].text
    with pytest.raises(ValueError):
        interpolation_figure([])

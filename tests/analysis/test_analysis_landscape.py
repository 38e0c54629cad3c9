"""Loss landscapes: filter-normalized directions, the slice itself against an independent computation,
partial (stopped) slices, the cost estimate, training batches, result files, summary numbers, figures."""

import json
import math

import plotly.graph_objects as go
import pytest
import torch
import torch.nn.functional as F

from resnet_lab import ModelSpec
from resnet_lab.analysis.landscape import (
    LandscapeParams,
    Surface,
    effective_batches,
    estimate_cost,
    loss_surface,
    random_directions,
    rise_at_half_span,
    summary,
    training_batches,
)
from resnet_lab.analysis.subject import from_spec
from resnet_lab.data.registry import DataConfig, Dataset
from resnet_lab.experiments.landscape import basin_sentence
from resnet_lab.models import build_model
from resnet_lab.viz.landscape import landscape_1d_figure, landscape_2d_figure
from resnet_lab.viz.training import PLAIN_COLOR

SPEC = ModelSpec(stem="cifar", depths=(1, 1, 1), widths=(8, 16, 32), shortcut="B", num_classes=4, in_channels=3)


def tiny_model(spec: ModelSpec = SPEC, seed: int = 0) -> torch.nn.Module:
    """A tiny model whose BN running statistics are not the defaults (a few train-mode forwards)."""
    torch.manual_seed(seed)
    m = build_model(spec)
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m(torch.randn(16, 3, 12, 12) * 2 + 0.5)
    return m.eval()


def tiny_batches(n_batches: int = 2, n: int = 6, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, 3, 12, 12, generator=g), torch.randint(0, 4, (n,), generator=g)) for _ in range(n_batches)]


def reference_loss(spec, state, batches):
    """Loss and accuracy of a freshly built model loaded with ``state``: no code from the landscape module."""
    m = build_model(spec)
    m.load_state_dict(state)
    m.eval()
    total, loss, correct = 0, 0.0, 0
    with torch.no_grad():
        for x, y in batches:
            out = m(x)
            loss += F.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
            total += len(y)
    return loss / total, correct / total


def state_copy(m):
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


# --- parameters ----------------------------------------------------------------------------------


def test_params_validate_every_field_with_a_clear_message():
    p = LandscapeParams(dims=1, steps=7, span=2, batches=3, batch_size=16, seed=5)
    assert p.span == 2.0 and isinstance(p.span, float)
    assert LandscapeParams.from_dict(p.to_dict()) == p
    assert p.points == 7 and LandscapeParams(steps=5).points == 25
    assert LandscapeParams(steps=5, span=2.0).coords() == [-2.0, -1.0, 0.0, 1.0, 2.0]
    bad = [dict(dims=3), dict(steps=4), dict(steps=1), dict(steps=53), dict(span=0), dict(span=5.5),
           dict(span=float("nan")), dict(span=True), dict(batches=0), dict(batches=51), dict(batch_size=7),
           dict(batch_size=2048), dict(seed=-1), dict(steps=5.0), dict(dims=True)]
    for kw in bad:
        with pytest.raises(ValueError, match=next(iter(kw))):
            LandscapeParams(**kw)
    with pytest.raises(ValueError, match="unknown landscape setting"):
        LandscapeParams.from_dict({"steps": 5, "colour": "red"})
    with pytest.raises(ValueError, match="must be odd"):
        LandscapeParams(steps=10)


# --- directions ----------------------------------------------------------------------------------


def test_every_direction_filter_has_the_norm_of_its_weight_filter_and_biases_get_none():
    m = tiny_model()
    before = state_copy(m)
    dirs = random_directions(m, seed=3, count=2)
    assert len(dirs) == 2
    checked = 0
    for d in dirs:
        assert set(d) == {n for n, _ in m.named_parameters()}
        for name, p in m.named_parameters():
            assert d[name].shape == p.shape
            if p.dim() <= 1:  # biases, BN weight and bias: not moved
                assert torch.count_nonzero(d[name]) == 0, name
                continue
            for i in range(p.shape[0]):  # one filter: an output channel of a conv, a row of the linear layer
                assert math.isclose(d[name][i].norm().item(), p[i].norm().item(), rel_tol=1e-5), (name, i)
                checked += 1
            # a random direction, not a rescaled copy of the weights
            cos = F.cosine_similarity(d[name].flatten(1), p.detach().flatten(1), dim=1)
            assert cos.abs().mean() < 0.9, name
    assert checked > 100 and "fc.weight" in dirs[0] and "layer2.0.downsample.0.weight" in dirs[0]
    # two directions are different, and nearly orthogonal in this many dimensions
    a = torch.cat([v.flatten() for v in dirs[0].values()])
    b = torch.cat([v.flatten() for v in dirs[1].values()])
    assert abs(F.cosine_similarity(a, b, dim=0)) < 0.2
    after = state_copy(m)  # weights and BN running statistics untouched
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_directions_are_deterministic_per_seed_and_leave_the_global_rng_alone():
    m = tiny_model()
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    d1 = random_directions(m, seed=7, count=1)[0]
    assert torch.equal(torch.rand(3), expected_next)
    d2 = random_directions(m, seed=7, count=1)[0]
    d3 = random_directions(m, seed=8, count=1)[0]
    assert all(torch.equal(d1[k], d2[k]) for k in d1)
    assert not torch.allclose(d1["conv1.weight"], d3["conv1.weight"])


# --- the slice -----------------------------------------------------------------------------------


def test_a_2d_slice_equals_an_independent_computation_and_leaves_the_model_unchanged():
    m = tiny_model()
    m.train()  # the caller's mode must survive; the slice itself runs in eval mode
    before = state_copy(m)
    batches = tiny_batches()
    params = LandscapeParams(dims=2, steps=3, span=0.5, batches=2, batch_size=8, seed=4)
    calls = []
    s = loss_surface(m, batches, params, label="tiny", run_id=7, progress=lambda d, t: calls.append((d, t)))
    assert m.training
    after = state_copy(m)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert calls == [(i, 9) for i in range(1, 10)]
    assert s.alphas == (-0.5, 0.0, 0.5) and s.betas == (-0.5, 0.0, 0.5) and s.grid().shape == (3, 3)
    assert s.images == 12 and s.complete and s.skip and s.run_id == 7

    delta, eta = random_directions(m, seed=4, count=2)  # the same directions (same seed)
    for i, j in [(0, 0), (2, 0), (1, 2), (2, 2), (1, 1)]:
        a, b = s.alphas[i], s.betas[j]
        state = {k: v.clone() for k, v in before.items()}
        for name in delta:
            state[name] = before[name] + a * delta[name] + b * eta[name]
        loss, acc = reference_loss(SPEC, state, batches)
        assert math.isclose(s.loss[j][i], loss, rel_tol=1e-5), (i, j)
        assert math.isclose(s.acc[j][i], acc, abs_tol=1e-9)
    # the centre is the trained model's own loss, in eval mode
    m.eval()
    with torch.no_grad():
        x = torch.cat([b[0] for b in batches])
        y = torch.cat([b[1] for b in batches])
        plain_loss = F.cross_entropy(m(x), y).item()
    assert math.isclose(s.center_loss, plain_loss, rel_tol=1e-5)
    assert s.loss[1][1] == s.center_loss
    # moving away from the weights changes the loss
    assert len({round(v, 6) for row in s.loss for v in row}) == 9


def test_a_1d_slice_moves_only_along_the_first_direction():
    m = tiny_model(seed=2)
    batches = tiny_batches(1, 8)
    params = LandscapeParams(dims=1, steps=5, span=1.0, batches=1, batch_size=8, seed=0)
    s = loss_surface(m, batches, params)
    assert s.betas is None and len(s.loss) == 5
    (delta,) = random_directions(m, seed=0, count=1)
    base = state_copy(m)
    for i in (0, 3):
        state = {k: v.clone() for k, v in base.items()}
        for name in delta:
            state[name] = base[name] + s.alphas[i] * delta[name]
        assert math.isclose(s.loss[i], reference_loss(SPEC, state, batches)[0], rel_tol=1e-5)


def test_a_stop_request_returns_a_partial_surface():
    m = tiny_model()
    params = LandscapeParams(dims=2, steps=3, span=1.0, batches=1, batch_size=8)
    seen = []
    s = loss_surface(m, tiny_batches(1), params, progress=lambda d, t: seen.append(d),
                     should_stop=lambda: len(seen) >= 4)
    assert not s.complete and seen == [1, 2, 3, 4]
    g = s.grid()
    assert torch.isfinite(g).sum() == 4 and torch.isfinite(g[0]).all() and math.isfinite(g[1, 0]) and g[2].isnan().all()
    assert math.isnan(s.center_loss)  # the centre (row 1, column 1) was not reached
    d = s.to_dict()
    assert d["loss"][2] == [None, None, None] and d["center_loss"] is None
    back = Surface.from_dict(json.loads(json.dumps(d)))
    assert torch.equal(back.grid().isnan(), g.isnan()) and not back.complete


def test_directions_that_do_not_cover_the_model_are_refused():
    m = tiny_model()
    dirs = random_directions(m, 0, 2)
    del dirs[0]["fc.weight"]
    with pytest.raises(ValueError, match="exactly the model's parameters"):
        loss_surface(m, tiny_batches(1), LandscapeParams(steps=3), directions=dirs)
    with pytest.raises(ValueError, match="at least one batch"):
        loss_surface(m, [], LandscapeParams(steps=3))


# --- cost ----------------------------------------------------------------------------------------


def test_the_cost_scales_with_points_batches_and_models():
    a, b = tiny_model(), tiny_model(SPEC.twin())
    p3 = LandscapeParams(dims=2, steps=3, batches=2, batch_size=8)
    p5 = LandscapeParams(dims=2, steps=5, batches=3, batch_size=8)
    c3 = estimate_cost([a, b], (3, 12, 12), p3, forward_seconds=[0.01, 0.03])
    c5 = estimate_cost([a, b], (3, 12, 12), p5, forward_seconds=[0.01, 0.03])
    assert (c3.forwards, c5.forwards) == (2 * 9 * 2, 2 * 25 * 3)
    assert math.isclose(c3.seconds, 0.04 * 18) and math.isclose(c5.seconds / c3.seconds, (25 * 3) / (9 * 2))
    assert "2 models × 9 points × 2 batches = 36 forward passes of 8 images" in c3.describe()
    one = estimate_cost(a, (3, 12, 12), LandscapeParams(dims=1, steps=7, batches=1, batch_size=8))
    assert one.forwards == 7 and one.seconds > 0 and one.device == "cpu"
    # a small training split means fewer batches
    assert effective_batches(20, LandscapeParams(batches=5, batch_size=8)) == 3
    assert estimate_cost(a, (3, 12, 12), p5, n_train=9, forward_seconds=[1.0]).forwards == 25 * 2
    with pytest.raises(ValueError, match="one time per model"):
        estimate_cost([a, b], (3, 12, 12), p3, forward_seconds=[1.0])


# --- training batches ----------------------------------------------------------------------------


def test_training_batches_are_a_seeded_sample_of_the_training_split_normalized_like_the_subject():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(50, 3, 8, 8, generator=g)
    y = torch.arange(50) % 4
    ds = Dataset.from_tensors(x, y, x[:10], y[:10], ("a", "b", "c", "d"))
    subject = from_spec(SPEC, ds, DataConfig(name="shapes", image_size=16))
    p = LandscapeParams(batches=3, batch_size=16, seed=2)
    batches = training_batches(subject, ds, p)
    assert [len(b[1]) for b in batches] == [16, 16, 16]
    mean = torch.tensor(ds.mean).view(1, -1, 1, 1)
    std = torch.tensor(ds.std).view(1, -1, 1, 1)
    seen = set()
    for xb, yb in batches:
        raw = xb * std + mean  # undo the normalization: the images must be training images, with their labels
        for img, label in zip(raw, yb):
            idx = int((x - img).abs().flatten(1).amax(1).argmin())
            assert torch.allclose(x[idx], img, atol=1e-5) and y[idx] == label
            seen.add(idx)
    assert len(seen) == 48  # no image twice
    again = training_batches(subject, ds, p)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again))
    other = training_batches(subject, ds, p.__class__(**{**p.to_dict(), "seed": 3}))
    assert not torch.equal(other[0][0], batches[0][0])
    # fewer images than asked: the last batch is short
    short = training_batches(subject, ds, LandscapeParams(batches=4, batch_size=16))
    assert [len(b[1]) for b in short] == [16, 16, 16, 2]


# --- results -------------------------------------------------------------------------------------


def fake_surface(params: LandscapeParams, fn, label="m", skip=True, run_id=1) -> Surface:
    c = params.coords()
    if params.dims == 1:
        loss = tuple(fn(a, 0.0) for a in c)
        acc = tuple(0.5 for _ in c)
    else:
        loss = tuple(tuple(fn(a, b) for a in c) for b in c)
        acc = tuple(tuple(0.5 for _ in c) for _ in c)
    return Surface(label=label, run_id=run_id, skip=skip, params=params, alphas=tuple(c),
                   betas=None if params.dims == 1 else tuple(c), loss=loss, acc=acc, center_loss=fn(0.0, 0.0),
                   center_acc=0.5, images=16)


def test_rise_at_half_span_is_the_mean_loss_at_half_span_on_each_axis_minus_the_centre():
    bowl = lambda a, b: a * a + 2 * b * b + 1.0  # noqa: E731
    # steps 5, span 1: ±0.5 are grid points -> exact values (0.25 along α, 0.5 along β)
    s5 = fake_surface(LandscapeParams(steps=5, span=1.0), bowl)
    assert math.isclose(rise_at_half_span(s5), (0.25 + 0.25 + 0.5 + 0.5) / 4)
    # steps 3: ±0.5 lies halfway between 0 and ±1 -> linear interpolation (0.5 along α, 1.0 along β)
    s3 = fake_surface(LandscapeParams(steps=3, span=1.0), bowl)
    assert math.isclose(rise_at_half_span(s3), (0.5 + 0.5 + 1.0 + 1.0) / 4)
    s1 = fake_surface(LandscapeParams(dims=1, steps=5, span=2.0), bowl)  # ±1 along α only
    assert math.isclose(rise_at_half_span(s1), 1.0)
    row = summary(s5)
    assert (row["min_loss"], row["max_loss"], row["center_loss"]) == (1.0, 4.0, 1.0)


# --- figures -------------------------------------------------------------------------------------


def test_2d_figures_show_the_stored_losses_side_by_side_on_one_colour_scale():
    p = LandscapeParams(steps=3, span=1.0)
    a = fake_surface(p, lambda x, y: 0.1 + x * x + y * y, "#1 net (ResNet)")
    b = fake_surface(p, lambda x, y: 1.0 + 5 * abs(x) + y * y, "#2 net plain (plain)", skip=False, run_id=2)
    fig = landscape_2d_figure([a, b], kind="contour")
    contours = [t for t in fig.data if isinstance(t, go.Contour)]
    assert len(contours) == 2
    for trace, s in zip(contours, (a, b)):
        z = torch.tensor(trace.z, dtype=torch.float64)
        assert torch.allclose(10 ** z, s.grid(), rtol=1e-9)  # contours of log10(loss)
        assert torch.allclose(torch.tensor(trace.customdata, dtype=torch.float64), s.grid())
        assert list(trace.x) == list(s.alphas) and list(trace.y) == list(s.betas)
        assert trace.coloraxis == "coloraxis"
    assert [ann.text for ann in fig.layout.annotations] == [a.label, b.label]
    lo, hi = fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax
    assert math.isclose(lo, math.log10(0.1)) and math.isclose(hi, math.log10(1.0 + 5 + 1))
    surf = landscape_2d_figure([a, b], kind="surface")
    traces = [t for t in surf.data if isinstance(t, go.Surface)]
    assert len(traces) == 2 and torch.allclose(torch.tensor(traces[1].z, dtype=torch.float64), b.grid())
    assert surf.layout.scene2 is not None
    with pytest.raises(ValueError, match="kind"):
        landscape_2d_figure([a], kind="bars")


def test_1d_figure_draws_the_resnet_solid_and_the_plain_twin_dashed_grey():
    p = LandscapeParams(dims=1, steps=5, span=1.0)
    a = fake_surface(p, lambda x, y: 1 + x * x, "ResNet")
    b = fake_surface(p, lambda x, y: 1 + 3 * x * x, "plain", skip=False)
    fig = landscape_1d_figure([a, b])
    loss_traces = [t for t in fig.data if t.yaxis == "y"]
    assert [list(t.y) for t in loss_traces] == [list(a.loss), list(b.loss)]
    assert loss_traces[0].line.dash == "solid" and loss_traces[1].line.dash == "dash"
    assert loss_traces[1].line.color == PLAIN_COLOR
    assert len(fig.data) == 4  # loss and accuracy rows
    with pytest.raises(ValueError, match="1D"):
        landscape_1d_figure([fake_surface(LandscapeParams(steps=3), lambda x, y: 1.0)])


def _surface(fn, skip: bool, label: str, dims: int = 1, span: float = 1.0) -> Surface:
    params = LandscapeParams(dims=dims, steps=5, span=span)
    c = params.coords()
    grid = [fn(a) for a in c] if dims == 1 else [[fn(a) + fn(b) - fn(0.0) for a in c] for b in c]
    acc = [0.9] * len(c) if dims == 1 else [[0.9] * len(c) for _ in c]
    return Surface.from_dict({"label": label, "run_id": None, "skip": skip, "params": params.to_dict(),
                              "alphas": c, "betas": None if dims == 1 else c, "loss": grid, "acc": acc,
                              "center_loss": fn(0.0), "center_acc": 0.9, "images": 64})


@pytest.mark.parametrize("dims", [1, 2])
def test_basin_sentence_is_computed_from_the_rises(dims):
    res = _surface(lambda a: 0.2 + a * a, True, "res", dims)  # rise at ±0.5: 0.25
    plain = _surface(lambda a: 0.5 + 4 * a * a, False, "plain", dims)  # 1.0
    s = basin_sentence([res, plain])
    assert s.startswith("At ±0.5 along the directions the plain net's loss rises by 1 and the ResNet's by 0.25")
    assert "the ResNet sits in the wider, flatter basin (4× smaller rise), as Li et al. found" in s
    s = basin_sentence([_surface(lambda a: 0.2 + 4 * a * a, True, "res", dims), plain])
    assert "about the same" in s and "Li et al." not in s
    s = basin_sentence([_surface(lambda a: 0.2 + 8 * a * a, True, "res", dims), plain])
    assert "the plain net sits in the wider, flatter basin (2× smaller rise), the opposite of Li et al.'s" in s


def test_basin_sentence_without_a_basin_or_a_pair():
    flat_down = _surface(lambda a: 1.0 - a * a, True, "res")
    s = basin_sentence([flat_down, _surface(lambda a: 0.5 + a * a, False, "plain")])
    assert "the loss of the ResNet does not rise" in s and "no basin to compare" in s
    assert basin_sentence([_surface(lambda a: 0.2 + a * a, True, "solo")]) == (
        "At ±0.5 along the directions the loss rises by solo 0.25.")
    assert basin_sentence([_surface(lambda a: math.nan, True, "stopped")]) == ""

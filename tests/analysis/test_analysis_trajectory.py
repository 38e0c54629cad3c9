"""The training path on a PCA slice (Li et al. 2018, sec. 7): trajectory_pca against numpy's SVD and
torch.pca_lowrank on hand-made paths, the slice along the PCA directions against an independent computation,
the grid scaled to the path, the result round trip, and the path drawn over the contour."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from resnet_lab import ModelSpec
from resnet_lab.analysis.landscape import (
    LandscapeParams,
    Surface,
    TrajectoryPath,
    loss_surface,
    path_axes,
    rise_at_half_span,
    trajectory_pca,
)
from resnet_lab.experiments.landscape import basin_sentence
from resnet_lab.models import build_model
from resnet_lab.viz.landscape import landscape_2d_figure

SHAPES = {"conv.weight": (4, 3, 2, 2), "conv.bias": (4,), "fc.weight": (3, 5)}
P = sum(math.prod(s) for s in SHAPES.values())


def unflatten(x: torch.Tensor) -> dict[str, torch.Tensor]:
    out, i = {}, 0
    for k, s in SHAPES.items():
        n = math.prod(s)
        out[k] = x[i:i + n].reshape(s).float()
        i += n
    return out


def flatten(d: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([d[k].reshape(-1).double() for k in SHAPES])


def plane_path(a, b, seed=0):
    """Snapshots final + a_i·u + b_i·v for orthonormal u, v in parameter space (float64 math, float32 tensors)."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(P, 2, generator=g, dtype=torch.float64))
    final = torch.randn(P, generator=g, dtype=torch.float64)
    snaps = [unflatten(final + ai * q[:, 0] + bi * q[:, 1]) for ai, bi in zip(a, b)]
    return snaps, unflatten(final), q


def test_points_on_a_known_plane_are_explained_fully_and_their_coordinates_recovered():
    # centred a and b are uncorrelated with var(a) > var(b): the principal axes are u and v themselves
    t = torch.linspace(0, 2 * math.pi, 13, dtype=torch.float64)[:-1] + 0.3
    a, b = 3.0 * torch.cos(t), 1.0 * torch.sin(t)
    snaps, final, q = plane_path(a, b)
    directions, coords, explained = trajectory_pca(snaps, final)
    assert sum(explained) == pytest.approx(1.0, abs=1e-6) and explained[0] > explained[1]
    assert explained[0] == pytest.approx(9 / 10, abs=1e-5)  # variances 9/2 and 1/2 of cos, sin over a circle
    for j, known in enumerate((a, b)):
        sign = 1.0 if float(coords[0, j]) * float(known[0]) > 0 else -1.0
        torch.testing.assert_close(coords[:, j], sign * known, atol=1e-5, rtol=0)
        d = flatten(directions[j])
        assert float(d.norm()) == pytest.approx(1.0, abs=1e-5)
        assert abs(float(d @ q[:, j])) == pytest.approx(1.0, abs=1e-5)
    assert float(flatten(directions[0]) @ flatten(directions[1])) == pytest.approx(0.0, abs=1e-5)
    assert (coords[0] <= 0).all()  # signs fixed: the path starts left of and below the centre


def test_a_noisy_path_matches_numpy_svd_and_torch_pca_lowrank():
    g = torch.Generator().manual_seed(3)
    steps = 9
    drift = torch.cumsum(torch.randn(steps, P, generator=g, dtype=torch.float64), 0)  # a random walk
    final = drift[-1]
    snaps = [unflatten(x) for x in drift]
    directions, coords, explained = trajectory_pca(snaps, unflatten(final))
    m = (torch.stack([flatten(s) for s in snaps]) - flatten(unflatten(final))).numpy()  # rows θ_i − θ_n
    centred = m - m.mean(0, keepdims=True)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    ratio = sv ** 2 / (sv ** 2).sum()
    assert explained == pytest.approx(tuple(ratio[:2]), abs=1e-6)  # sklearn's explained_variance_ratio_
    _, _, v_lr = torch.pca_lowrank(torch.from_numpy(m), q=4, center=True, niter=6)
    for j in range(2):
        d = flatten(directions[j]).numpy()
        assert abs(d @ vt[j]) == pytest.approx(1.0, abs=1e-4)
        assert abs(d @ v_lr[:, j].numpy()) == pytest.approx(1.0, abs=1e-4)
        np.testing.assert_allclose(coords[:, j].numpy(), m @ d, atol=1e-4)  # projections of θ_i − θ_n, not centred
    assert coords[-1].abs().max() < 1e-5  # the last snapshot is the final weights: the centre


def test_names_choose_what_takes_part_and_bad_paths_are_refused():
    t = torch.linspace(0, 2 * math.pi, 7, dtype=torch.float64)[:-1]
    snaps, final, _ = plane_path(2 * torch.cos(t), torch.sin(t))
    directions, _, _ = trajectory_pca(snaps, final, names=["conv.weight", "fc.weight"])
    assert set(directions[0]) == {"conv.weight", "fc.weight"}
    assert all(directions[0][k].shape == final[k].shape and directions[0][k].dtype == torch.float32
               for k in directions[0])
    with pytest.raises(ValueError, match="at least 3 kept weights"):
        trajectory_pca(snaps[:2], final)
    line, fin, _ = plane_path(torch.arange(5.0), torch.zeros(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="straight line"):
        trajectory_pca(line, fin)
    nan = [{k: v.clone() for k, v in s.items()} for s in snaps]
    nan[2]["fc.weight"][0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite weights .*diverged"):
        trajectory_pca(nan, final)
    with pytest.raises(ValueError, match="does not match"):
        trajectory_pca(snaps[:-1] + [{**snaps[-1], "fc.weight": torch.zeros(2, 2)}], final)


SPEC = ModelSpec(stem="cifar", depths=(1, 1), widths=(4, 8), shortcut="B", num_classes=3, in_channels=3)


def test_a_pca_slice_equals_an_independent_computation_on_the_path_scaled_grid():
    torch.manual_seed(0)
    model = build_model(SPEC).eval()
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(6, 3, 8, 8, generator=g), torch.randint(0, 3, (6,), generator=g)
    names = [n for n, _ in model.named_parameters()]
    final = {k: v.clone() for k, v in model.state_dict().items()}
    snaps = []
    for i in range(5):  # a made-up path: the final weights plus shrinking random offsets
        s = {k: v.clone() for k, v in final.items()}
        for n in names:
            s[n] = s[n] + (4 - i) * 0.05 * torch.randn(s[n].shape, generator=g)
        snaps.append(s)
    directions, coords, explained = trajectory_pca(snaps, final, names)
    path = TrajectoryPath(steps=(0, 10, 20, 30, 40), alphas=tuple(coords[:, 0].tolist()),
                          betas=tuple(coords[:, 1].tolist()), explained=explained)
    params = LandscapeParams(dims=2, steps=3, span=1.5, batches=1, batch_size=8, directions="pca")
    axes = path_axes(params, path)
    assert axes[0][-1] == pytest.approx(1.5 * max(abs(v) for v in path.alphas))
    assert axes[1][0] == pytest.approx(-1.5 * max(abs(v) for v in path.betas))
    surf = loss_surface(model, [(x, y)], params, directions=directions, axes=axes, path=path)
    assert surf.alphas == tuple(axes[0]) and surf.betas == tuple(axes[1]) and surf.path == path
    for j, beta in enumerate(axes[1]):
        for i, alpha in enumerate(axes[0]):
            ref = build_model(SPEC).eval()
            state = {k: v.clone() for k, v in final.items()}
            for n in names:
                state[n] = state[n] + alpha * directions[0][n] + beta * directions[1][n]
            ref.load_state_dict(state)
            with torch.no_grad():
                expected = F.cross_entropy(ref(x), y).item()
            assert surf.loss[j][i] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="axes must be 2 list"):
        loss_surface(model, [(x, y)], params, directions=directions, axes=axes[:1])


def make_path_surface(params, fn, label="m", skip=True, path=None) -> Surface:
    path = path or TrajectoryPath(steps=(0, 5, 10), alphas=(-4.0, -1.0, 0.0), betas=(-1.0, 0.5, 0.0),
                                  explained=(0.8, 0.15))
    xs, ys = path_axes(params, path)
    loss = tuple(tuple(fn(a, b) for a in xs) for b in ys)
    acc = tuple(tuple(0.5 for _ in xs) for _ in ys)
    return Surface(label=label, run_id=1, skip=skip, params=params, alphas=tuple(xs), betas=tuple(ys), loss=loss,
                   acc=acc, center_loss=fn(0.0, 0.0), center_acc=0.5, images=8, path=path)


def test_a_path_surface_round_trips_and_a_path_needs_pca_directions():
    params = LandscapeParams(dims=2, steps=5, span=1.0, batches=1, batch_size=8, directions="pca")
    s = make_path_surface(params, lambda a, b: 1 + a * a + b * b)
    assert Surface.from_dict(s.to_dict()) == s
    assert s.alphas == (-4.0, -2.0, 0.0, 2.0, 4.0) and s.betas == (-1.0, -0.5, 0.0, 0.5, 1.0)
    doc = s.to_dict()
    with pytest.raises(ValueError, match="training path exactly when"):
        Surface.from_dict({**doc, "path": None})
    with pytest.raises(ValueError, match="training path exactly when"):
        Surface.from_dict({**doc, "params": {**doc["params"], "directions": "random"}})
    with pytest.raises(ValueError, match="path alphas"):
        Surface.from_dict({**doc, "path": {**doc["path"], "alphas": [1.0]}})
    old = {k: v for k, v in doc.items() if k != "path"}  # a file from before paths: random directions
    old["params"] = {k: v for k, v in doc["params"].items() if k != "directions"}
    assert Surface.from_dict(old).path is None and Surface.from_dict(old).params.directions == "random"
    with pytest.raises(ValueError, match="2D slice"):
        LandscapeParams(dims=1, directions="pca")
    with pytest.raises(ValueError, match="directions='sideways'"):
        LandscapeParams(directions="sideways")
    assert "PCA directions" in params.describe() and "±1× the path" in params.describe()


def test_the_rise_on_a_path_slice_uses_each_axis_own_reach():
    params = LandscapeParams(dims=2, steps=5, span=1.0, batches=1, batch_size=8, directions="pca")
    s = make_path_surface(params, lambda a, b: 1 + a * a + 10 * b * b)
    # half reach: α = ±2 (loss 5), β = ±0.5 (loss 3.5): mean 4.25, minus the centre 1
    assert rise_at_half_span(s) == pytest.approx(3.25)
    sentence = basin_sentence([s, make_path_surface(params, lambda a, b: 2.0, "plain", False)])
    assert "The first two PCA directions explain m 95.0% (80.0% + 15.0%, 3 kept weights)" in sentence
    assert "flatter" not in sentence  # PCA directions are not filter-normalized: no basin comparison


def test_the_path_is_drawn_over_the_contour_with_its_ends_labelled_and_the_explained_variance_on_the_axes():
    params = LandscapeParams(dims=2, steps=5, span=1.2, batches=1, batch_size=8, directions="pca")
    surfaces = [make_path_surface(params, lambda a, b: 1 + a * a + b * b, "#1 <b>res</b> (ResNet)"),
                make_path_surface(params, lambda a, b: 2 + a * a, "#2 plain (plain)", False,
                                  TrajectoryPath(steps=(0, 4, 8, 12), alphas=(-2.0, -1.5, 0.5, 0.0),
                                                 betas=(-0.5, 0.2, -0.1, 0.0), explained=(0.6, 0.3)))]
    fig = landscape_2d_figure(surfaces, kind="contour")
    paths = [t for t in fig.data if t.name == "training path"]
    assert len(paths) == 2
    for trace, s in zip(paths, surfaces):
        assert list(trace.x) == list(s.path.alphas) and list(trace.y) == list(s.path.betas)
        assert "lines" in trace.mode and "markers" in trace.mode
        assert trace.text[0] == "start (step 0)" and trace.text[-1] == f"end (step {s.path.steps[-1]})"
        assert all(t == "" for t in trace.text[1:-1])
    assert fig.layout.xaxis.title.text == "1st PCA direction: 80.0% of variance"
    assert fig.layout.yaxis.title.text == "2nd PCA direction: 15.0%"
    assert fig.layout.xaxis2.title.text == "1st PCA direction: 60.0% of variance"
    assert "&lt;b&gt;" in fig.layout.annotations[0].text  # the run name is escaped, not rendered as HTML
    assert fig.layout.yaxis.scaleanchor is None  # the path's axes have their own extents
    random = landscape_2d_figure([make_path_surface(params, lambda a, b: 1.0)], kind="surface")
    assert not [t for t in random.data if t.name == "training path"]  # 3D: no path (its height is unknown)

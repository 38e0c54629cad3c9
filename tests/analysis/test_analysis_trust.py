"""Deletion / insertion curves by hand on a model whose score is a sum of a few pixels, captum's infidelity
against a direct captum call and against its formula, and the trust report's contract."""

import math

import pytest
import torch
from captum.metrics import infidelity as captum_infidelity
from torch import nn

from resnet_lab.analysis.trust import (blurred, infidelity, noise_perturbation, perturbation_curve, pixel_order,
                                       trust)

# a 4 x 4 one-channel image: four pixels count (values 4, 3, 2, 1), the other twelve are 0.5 and do not
S = [(0, 1), (1, 2), (2, 0), (3, 3)]
X = torch.full((1, 1, 4, 4), 0.5)
for v, (r, c) in zip((4.0, 3.0, 2.0, 1.0), S):
    X[0, 0, r, c] = v
INSIDE = torch.zeros(1, 4, 4, dtype=torch.bool)
for r, c in S:
    INSIDE[0, r, c] = True


class PixelSum(nn.Module):
    """logits = (sum of the pixels in S, 0): class 0's probability is sigmoid(that sum)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("w", INSIDE[0].float())

    def forward(self, x):
        s = (x[:, 0] * self.w).flatten(1).sum(1)
        return torch.stack([s, torch.zeros_like(s)], 1)


def sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def area(probs: list[float]) -> float:
    """Trapezoid rule on uniform steps 0, 1/k, …, 1 (k = len - 1), written out."""
    k = len(probs) - 1
    return sum((probs[i] + probs[i + 1]) / 2 / k for i in range(k))


def test_deletion_of_the_perfect_map_follows_the_removed_pixels():
    heat = (X[:, 0] * INSIDE).clone()  # 4, 3, 2, 1 on S, 0 elsewhere: the order of importance
    curve = perturbation_curve(PixelSum(), X, heat, 0, "deletion", steps=16)
    # one pixel a step: the sum falls 10 -> 6 -> 3 -> 1 -> 0 and stays there while the others go
    want = [sig(10), sig(6), sig(3), sig(1)] + [sig(0)] * 13
    assert curve.fractions == pytest.approx([k / 16 for k in range(17)])
    assert curve.probs == pytest.approx(want, abs=1e-7)
    assert curve.auc == pytest.approx(area(want), abs=1e-7)


def test_a_backwards_map_deletes_the_irrelevant_pixels_first():
    heat = torch.where(INSIDE, 0.01 * X[:, 0].reciprocal(), torch.ones(1, 4, 4))  # S last, its weakest first
    curve = perturbation_curve(PixelSum(), X, heat, 0, "deletion", steps=16)
    want = [sig(10)] * 13 + [sig(9), sig(7), sig(4), sig(0)]
    assert curve.probs == pytest.approx(want, abs=1e-7)
    perfect = perturbation_curve(PixelSum(), X, X[:, 0] * INSIDE, 0, "deletion", steps=16)
    assert curve.auc == pytest.approx(area(want)) and curve.auc > perfect.auc  # deletion: lower is better


def test_insertion_puts_the_pixels_back_onto_the_substrate():
    heat = X[:, 0] * INSIDE
    curve = perturbation_curve(PixelSum(), X, heat, 0, "insertion", substrate=torch.zeros_like(X), steps=16)
    want = [sig(0), sig(4), sig(7), sig(9)] + [sig(10)] * 13
    assert curve.probs == pytest.approx(want, abs=1e-7)
    assert curve.auc == pytest.approx(area(want), abs=1e-7)


def test_steps_that_group_pixels_and_a_last_short_step():
    heat = X[:, 0] * INSIDE
    grouped = perturbation_curve(PixelSum(), X, heat, 0, "deletion", steps=5)  # ceil(16/5) = 4 pixels a step
    assert grouped.fractions == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    assert grouped.probs == pytest.approx([sig(10)] + [sig(0)] * 4)
    short = perturbation_curve(PixelSum(), X, heat, 0, "deletion", steps=3)  # 6, 6 and the last 4 pixels
    assert short.fractions == pytest.approx([0, 6 / 16, 12 / 16, 1.0])
    # trapezoids of unequal width: the last step covers 4/16 of the image
    want = (sig(10) + sig(0)) / 2 * 6 / 16 + sig(0) * 6 / 16 + sig(0) * 4 / 16
    assert short.auc == pytest.approx(want)


def test_ties_are_broken_by_a_seeded_permutation_not_the_scan_order():
    flat = torch.zeros(2, 8, 8)
    order = pixel_order(flat, seed=0)
    assert sorted(order[0].tolist()) == list(range(64))  # a permutation of the pixels
    assert order[0].tolist() != list(range(64))  # not row-major
    assert torch.equal(order[0], order[1]) and torch.equal(order, pixel_order(flat, seed=0))
    assert not torch.equal(order, pixel_order(flat, seed=1))
    heat = torch.zeros(1, 8, 8)
    heat[0, 7, 7], heat[0, 0, 0] = 2.0, 1.0
    assert pixel_order(heat)[0, :2].tolist() == [63, 0]  # strict order first, ties after


def test_blurred_keeps_a_flat_image_and_smears_a_small_shape():
    flat = torch.full((2, 3, 32, 32), 0.3)
    assert torch.allclose(blurred(flat), flat)
    x = torch.zeros(1, 3, 32, 32)
    x[..., 12:20, 12:20] = 1.0
    b = blurred(x)
    assert float(b.max()) < 0.5 and float(b[..., 0, 0].max()) > 0.0  # sigma 4 px: the square is a smudge
    assert blurred(torch.rand(1, 1, 8, 8)).shape == (1, 1, 8, 8)  # the kernel shrinks for tiny images


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def test_infidelity_is_captums_with_the_documented_perturbation():
    model = Tiny().eval()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    heat = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(1))
    got = infidelity(model, x, heat, [0, 2], sigma=0.1, samples=8, seed=5)

    gen = torch.Generator().manual_seed(5)

    def perturb(inputs):
        noise = torch.randn(inputs.shape, generator=gen) * 0.1
        return noise, inputs - noise

    want = captum_infidelity(model, perturb, x, heat[:, None].expand(-1, 3, -1, -1), target=[0, 2],
                             n_perturb_samples=8, normalize=True)
    assert torch.allclose(got, want, atol=1e-7)
    # and the formula itself: mean over draws of (beta * sum(phi * I) - (f(x) - f(x - I)))^2, beta fitted
    draws = noise_perturbation(0.1, seed=5)
    noise, _ = draws(x.repeat_interleave(8, 0))
    with torch.no_grad():
        f = model(x)[[0, 1], [0, 2]].repeat_interleave(8)
        df = f - model(x.repeat_interleave(8, 0) - noise)[torch.arange(16), torch.tensor([0, 2]).repeat_interleave(8)]
    a = (heat.repeat_interleave(8, 0)[:, None] * noise).flatten(1).sum(1)
    a, df = a.view(2, 8).double(), df.view(2, 8).double()
    beta = (a * df).sum(1) / (a * a).sum(1)
    assert torch.allclose(got.double(), ((beta[:, None] * a - df) ** 2).mean(1), rtol=1e-4)


def test_the_exact_gradient_of_a_linear_score_has_no_infidelity():
    got = infidelity(PixelSum(), X, INSIDE.float(), 0, samples=6)
    wrong = infidelity(PixelSum(), X, (~INSIDE).float(), 0, samples=6)
    assert float(got[0]) < 1e-6 and float(wrong[0]) > 1e-3  # float32 rounding only


def test_trust_report_on_the_pixel_sum_model():
    x = torch.full((1, 1, 4, 4), 0.5)
    x[0, 0][INSIDE[0]] = 1.0  # equal values on S: the mask order's tie-breaking cannot matter
    ticks = []
    report = trust(PixelSum(), x, 0, methods=("saliency",), masks=INSIDE, steps=16,
                   tick=lambda d, t: ticks.append((d, t)))
    assert [r.method for r in report] == ["saliency", "random", "mask"] and ticks[-1] == (3, 3)
    sal, rand, mask = report
    want = [sig(4 - k) for k in range(4)] + [sig(0)] * 13
    assert mask.deletion.probs == pytest.approx(want)  # the object first: the order of a map that marks exactly the object
    assert sal.deletion.probs == pytest.approx(want)  # the gradient of a sum is the mask itself
    assert rand.deletion.auc > mask.deletion.auc and rand.insertion.auc < mask.insertion.auc
    assert sal.infidelity == pytest.approx(0.0, abs=1e-6) and mask.infidelity is None
    assert sal.as_dict()["deletion_auc"] == sal.deletion.auc and sal.label == "Saliency"
    assert mask.label == "object mask"


def test_trust_refuses_what_it_cannot_score():
    with pytest.raises(ValueError, match="unknown method"):
        trust(PixelSum(), X, 0, methods=("magic",))
    with pytest.raises(ValueError, match="out of range"):
        trust(PixelSum(), X, 5, methods=("saliency",))
    with pytest.raises(ValueError, match="masks"):
        trust(PixelSum(), X, 0, methods=("saliency",), masks=torch.zeros(1, 3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="kind"):
        perturbation_curve(PixelSum(), X, X[:, 0], 0, "both")


def test_the_curves_figure_has_a_row_per_model_and_a_line_per_method():
    from resnet_lab.viz.explain import trust_curves_figure

    x = torch.full((1, 1, 4, 4), 0.5)
    x[0, 0][INSIDE[0]] = 1.0
    report = trust(PixelSum(), x, 0, methods=("saliency",), masks=INSIDE, steps=4)
    rows = [t.as_dict(curves=True) for t in report]
    fig = trust_curves_figure({"run <1>": rows, "twin": rows})
    assert len(fig.data) == 2 * 2 * 3  # models x (deletion, insertion) x (saliency, random, mask)
    first = fig.data[0]  # run <1>, saliency, deletion
    assert first.name == "Saliency" and list(first.y) == pytest.approx(list(report[0].deletion.probs))
    assert [t.line.dash for t in fig.data[:6:2]] == ["solid", "dot", "dash"]  # the references dashed
    assert sum(t.showlegend for t in fig.data) == 3  # one legend entry per method
    assert "run &lt;1&gt; · deletion (lower area is better)" in [a.text for a in fig.layout.annotations]

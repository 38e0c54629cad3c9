"""Localization scores by hand, and the cascading-randomization sanity check's contract."""

import pytest
import torch

from resnet_lab.analysis import cascading_randomization, localization, localization_scores
from resnet_lab.models import build_model


def test_localization_scores_by_hand():
    heat = torch.zeros(3, 2, 2)
    heat[0] = torch.tensor([[1.0, 3.0], [0.0, 0.0]])  # 3 of 4 inside, peak inside
    heat[1] = torch.tensor([[4.0, 1.0], [0.0, 0.0]])  # 1 of 5 inside, peak outside
    masks = torch.zeros(3, 2, 2, dtype=torch.bool)
    masks[:, 0, 1] = True
    energy, hit = localization_scores(heat, masks)  # image 2: an all-zero map points nowhere
    assert energy.tolist() == pytest.approx([0.75, 0.2, 0.0])
    assert hit.tolist() == [1.0, 0.0, 0.0]


def test_localization_of_a_model_that_looks_at_the_object():
    # a 1x1 conv "detector" of channel 0 followed by a linear readout: its Grad-CAM is the channel itself
    class Detector(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 1, 1, bias=False)
            self.fc = torch.nn.Linear(1, 2, bias=False)
            with torch.no_grad():
                self.conv.weight.copy_(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1))
                self.fc.weight.copy_(torch.tensor([[1.0], [-1.0]]))

        def forward(self, x):
            return self.fc(self.conv(x).mean((2, 3)))

    x = torch.zeros(4, 3, 8, 8)
    masks = torch.zeros(4, 8, 8, dtype=torch.bool)
    for i in range(4):
        x[i, 0, i : i + 3, 2:5] = 1.0
        masks[i, i : i + 3, 2:5] = True
    loc = localization(Detector(), x, masks, target=0, layer="conv", batch_size=3)
    assert loc.energy == pytest.approx(1.0) and loc.pointing == 1.0 and loc.n == 4
    assert loc.baseline == pytest.approx(9 / 64)
    away = localization(Detector(), x, masks, target=1, layer="conv")  # class 1 has no positive evidence
    assert away.energy == 0.0 and away.pointing == 0.0


def test_cascading_randomization_changes_the_map_and_not_the_model():
    torch.manual_seed(0)
    model = build_model("resnet20").eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, 32, 32)
    steps = cascading_randomization(model, x, None, "layer2", groups=5)
    assert [s.randomized for s in steps] == ["none", "fc", "layer3.2", "layer3.1", "layer3.0", "layer2.2"]
    assert steps[0].rank_corr == 1.0
    assert all(s.heat.shape == (2, 32, 32) for s in steps)
    assert min(s.rank_corr for s in steps[1:]) < 0.9  # re-initialized weights give a different map
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    again = cascading_randomization(model, x, None, "layer2", groups=5)  # seeded: reproducible
    assert [s.rank_corr for s in again] == [s.rank_corr for s in steps]

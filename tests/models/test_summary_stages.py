"""The stage table's output shapes, for a ResNet and its plain twin, against a real forward pass of the
built model (forward hooks on each stage module), not against the summary's own layer rows."""

import pytest
import torch

from resnet_lab import ModelSpec, build_model
from resnet_lab.models.hooks import forward_hooks
from resnet_lab.models.summary import summarize

SPECS = {
    "preact-bottleneck": ModelSpec(stem="cifar", block="bottleneck", preact=True, depths=(2, 1, 1, 2),
                                   widths=(16, 32, 64, 128), num_classes=10),
    "bottleneck": ModelSpec(stem="cifar", block="bottleneck", depths=(2, 2, 1), widths=(8, 16, 32),
                            num_classes=7),
    "preact-basic": ModelSpec(stem="cifar", block="basic", preact=True, depths=(2, 2), widths=(8, 16),
                              shortcut="A", num_classes=5),
    "imagenet-bottleneck-C": ModelSpec(stem="imagenet", block="bottleneck", depths=(1, 2), widths=(8, 16),
                                       shortcut="C", num_classes=3),
}


def measured_stage_shapes(spec: ModelSpec, side: int) -> dict[str, tuple[int, ...]]:
    """Per-image output shape of the stem (what layer1 is handed), each stage and the head, from a CPU forward."""
    model = build_model(spec).eval()
    seen: dict[str, tuple[int, ...]] = {}

    def record(name, module, inputs, out):
        if name == "layer1":
            seen["stem"] = tuple(inputs[0].shape[1:])
        seen[name] = tuple(out.shape[1:])

    named = [(n, getattr(model, n)) for n in model.stages]
    with torch.no_grad(), forward_hooks(named, record):
        out = model(torch.rand(2, spec.in_channels, side, side))
    seen["head"] = tuple(out.shape[1:])
    seen["fc_in"] = (model.fc.in_features,)
    return seen


@pytest.mark.parametrize("skip", [True, False], ids=["ResNet", "plain"])
@pytest.mark.parametrize("name", SPECS)
def test_stage_shapes_match_a_real_forward_for_resnet_and_twin(name, skip):
    spec = SPECS[name].replace(skip=skip)
    side = 32 if spec.stem == "cifar" else 64
    s = summarize(spec, input_size=side)
    real = measured_stage_shapes(spec, side)
    assert {r.name: r.output_shape for r in s.stages} == {k: v for k, v in real.items() if k != "fc_in"}
    assert s.feature_shape == real[f"layer{len(spec.depths)}"]
    assert s.feature_shape[0] == real["fc_in"][0] == spec.widths[-1] * spec.expansion  # what fc reads

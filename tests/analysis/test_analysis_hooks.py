"""After 200 calls of each analysis function: no hook left on the model, no memory growth, model unchanged."""

import gc
import warnings

import pytest
import torch
from torch import nn

from resnet_lab.analysis import activation_stats, attribute, feature_maps, grad_cam, predict
from resnet_lab.models import build_model
from resnet_lab.spec import ModelSpec

SPEC = ModelSpec(stem="cifar", depths=(1, 1), widths=(4, 8), shortcut="B", num_classes=3)
CALLS = 200


def _hooks(model: nn.Module) -> int:
    n = 0
    for m in model.modules():
        n += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        n += len(getattr(m, "_backward_pre_hooks", {}))
        n += len(getattr(m, "_forward_hooks_with_kwargs", {}))
    return n


def _tensors() -> int:
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # isinstance() touches deprecated lazy objects in torch.distributed
        return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


CASES = {
    "predict": lambda m, x: predict(m, x, 2),
    "feature_maps": lambda m, x: feature_maps(m, x, ["stem", "layer1.0:x", "layer1.0:branch", "layer2.0:shortcut",
                                                   "layer2"]),
    "activation_stats": lambda m, x: activation_stats(m, x),
    "grad_cam": lambda m, x: grad_cam(m, x, None, "layer2"),
    "grad_cam_block_part": lambda m, x: grad_cam(m, x, 1, "layer1.0:branch"),
    "saliency": lambda m, x: attribute(m, x, 0, "saliency"),
    "guided_gradcam": lambda m, x: attribute(m, x, 0, "guided_gradcam", "layer2"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_200_calls_leave_no_hooks_and_no_growth(name):
    fn = CASES[name]
    model = build_model(SPEC).eval()
    x = torch.randn(4, 3, 8, 8)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for _ in range(10):  # warm-up: lazy initialisation inside torch and captum
        fn(model, x)
    tensors, rss = _tensors(), _rss()
    for _ in range(CALLS):
        out = fn(model, x)
    del out
    assert _hooks(model) == 0
    assert _tensors() <= tensors + 2, "tensors pile up: something keeps activations or graphs alive"
    assert _rss() - rss < 64 * 2**20
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert not model.training


def test_hooks_are_removed_when_the_forward_raises():
    model = build_model(SPEC).eval()
    with pytest.raises(RuntimeError):
        feature_maps(model, torch.randn(2, 5, 8, 8), ["layer1"])  # wrong channel count: conv1 raises
    with pytest.raises(RuntimeError):
        grad_cam(model, torch.randn(2, 5, 8, 8), 0, "layer1")
    assert _hooks(model) == 0

import operator
import random

import pytest
import torch
import torch.fx
import torchvision
from torch import nn

from resnet_lab import PRESETS, ModelSpec, build_model, set_branch, set_skip
from resnet_lab.models import PadShortcut, ResidualBlock, get_preset

# torchvision's own parameter counts (also in its weights' metadata) and He et al. 2015, Table 6 (option A).
TORCHVISION_PARAMS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
                      "resnet101": 44_549_160, "resnet152": 60_192_808}
PAPER_TABLE6_PARAMS = {"resnet20": 269_722, "resnet32": 464_154, "resnet44": 658_586, "resnet56": 853_018,
                       "resnet110": 1_727_962}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name, expected", TORCHVISION_PARAMS.items())
def test_imagenet_presets_have_torchvisions_parameter_counts(name, expected):
    with torch.device("meta"):
        ours = build_model(name)
        theirs = getattr(torchvision.models, name)()
    assert n_params(ours) == n_params(theirs) == expected


@pytest.mark.parametrize("name", TORCHVISION_PARAMS)
def test_torchvision_state_dict_loads_strictly_and_gives_the_same_logits(name):
    theirs = getattr(torchvision.models, name)().eval()
    ours = build_model(name).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 224 if name == "resnet18" else 96, 224 if name == "resnet18" else 96)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=0)
    assert list(ours.state_dict()) == list(theirs.state_dict())


@pytest.mark.parametrize("name, expected", PAPER_TABLE6_PARAMS.items())
def test_cifar_presets_match_the_papers_table6(name, expected):
    assert n_params(build_model(name)) == expected
    assert n_params(build_model(name, skip=False)) == expected  # option A adds no parameters


def test_resnet1202_has_the_papers_19_4M_parameters():
    with torch.device("meta"):
        assert round(n_params(build_model("resnet1202")) / 1e6, 1) == 19.4


@pytest.mark.slow
def test_plain1202_gradient_overflows_float32_at_init_while_resnet1202_stays_finite():
    # why plain1202 is not a preset: the measured gradient, not a belief about it
    x = torch.randn(2, 3, 32, 32)
    finite = {}
    for skip in (True, False):
        torch.manual_seed(0)
        model = build_model("resnet1202", skip=skip).train()
        model(x).square().mean().backward()
        finite[skip] = bool(torch.isfinite(model.conv1.weight.grad).all())
    assert finite == {True: True, False: False}
    assert "plain1202" not in PRESETS


def test_preact_resnet18_layout():
    # Pre-activation moves BN before each conv: first-block BNs see the stage input (fewer channels),
    # projections lose their BN, the CIFAR stem loses its BN, and a final BN closes the net.
    post = build_model(PRESETS["preact_resnet18"].replace(preact=False))
    pre = build_model("preact_resnet18")
    stem_bn, final_bn = 2 * 64, 2 * 512
    projection_bns = 2 * (128 + 256 + 512)
    narrower_first_bns = 2 * ((128 - 64) + (256 - 128) + (512 - 256))
    assert n_params(pre) == n_params(post) - stem_bn - projection_bns - narrower_first_bns + final_bn
    assert isinstance(pre.bn_final, nn.BatchNorm2d) and pre.layer2[0].bn1.num_features == 64


def _adds(model: nn.Module) -> int:
    graph = torch.fx.symbolic_trace(model).graph
    return sum(1 for n in graph.nodes if n.op == "call_function" and n.target in (operator.add, torch.add)
               or n.op == "call_method" and n.target in ("add", "add_"))


@pytest.mark.parametrize("name", ["resnet20", "resnet50", "preact_resnet18"])
def test_plain_twin_has_no_addition_and_no_shortcut_modules(name):
    resnet, plain = build_model(name), build_model(name, skip=False)
    n_blocks = sum(1 for _ in resnet.blocks())
    assert _adds(resnet) == n_blocks  # one addition per residual block, found in the traced graph
    assert _adds(plain) == 0  # the skip path is gone, not multiplied by zero
    assert not any(isinstance(m, PadShortcut) or ".downsample" in n for n, m in plain.named_modules())
    assert all(not b.has_skip and b.downsample is None for b in plain.blocks())


def test_shortcut_options_a_b_c():
    def kinds(shortcut):
        m = build_model(ModelSpec(stem="cifar", depths=(2, 2), widths=(8, 16), shortcut=shortcut, num_classes=3))
        return [type(b.downsample).__name__ for b in m.blocks()]

    assert kinds("A") == ["NoneType", "NoneType", "PadShortcut", "NoneType"]
    assert kinds("B") == ["NoneType", "NoneType", "Sequential", "NoneType"]
    assert kinds("C") == ["Sequential"] * 4


def test_option_a_pads_zeros_and_subsamples():
    pad = PadShortcut(2, 5, stride=2)
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    y = pad(x)
    assert y.shape == (1, 5, 2, 2)
    torch.testing.assert_close(y[:, :2], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 2:]) == 0


def _trained_like(model: nn.Module) -> nn.Module:
    """Non-zero BN weights and running stats everywhere, as after training (no zero-init identity)."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.uniform_(-0.2, 0.2, generator=g)
            m.running_mean.uniform_(-0.1, 0.1, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
    return model.eval()


def test_runtime_skip_switch_changes_output_and_equals_the_plain_twin():
    resnet = _trained_like(build_model("resnet20"))
    plain = build_model("plain20").eval()
    plain.load_state_dict(resnet.state_dict(), strict=True)  # option A: same parameters
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        with_skip = resnet(x)
        set_skip(resnet, False)
        without = resnet(x)
        torch.testing.assert_close(without, plain(x))
        assert not torch.allclose(with_skip, without, atol=1e-3)
        set_skip(resnet, True)
        torch.testing.assert_close(resnet(x), with_skip)


def test_skip_switch_on_single_blocks_and_branch_lesion():
    model = _trained_like(build_model("resnet20"))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        base = model(x)
        set_skip(model, False, blocks=["layer2.1"])
        assert [n for n, b in model.named_blocks() if not b.skip_enabled] == ["layer2.1"]
        one_off = model(x)
        set_skip(model, True)
        set_branch(model, False, blocks=["layer3.2"])
        lesioned = model(x)
    assert not torch.allclose(base, one_off, atol=1e-4) and not torch.allclose(base, lesioned, atol=1e-4)
    with pytest.raises(ValueError, match="unknown block"):
        set_skip(model, False, blocks=["layer9.0"])


def test_plain_model_cannot_switch_a_skip_on_or_drop_a_branch():
    plain = build_model("plain20")
    with pytest.raises(ValueError, match="built without a skip"):
        set_skip(plain, True)
    with pytest.raises(ValueError, match="no skip connection"):
        set_branch(plain, False)


def test_zero_init_residual_makes_each_block_start_as_identity():
    spec = PRESETS["resnet20"].replace(zero_init_residual=True, shortcut="B")
    model = build_model(spec).eval()
    assert all(torch.count_nonzero(b.bn2.weight) == 0 for b in model.blocks())
    block = model.layer1[0]
    x = torch.relu(torch.randn(2, 16, 8, 8))
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)  # relu(0 + x) with x >= 0
    pre = build_model("preact_resnet18", zero_init_residual=True)
    assert all(torch.count_nonzero(b.conv2.weight) == 0 for b in pre.blocks())
    no_norm = build_model("resnet50", zero_init_residual=True, norm="none")
    assert all(torch.count_nonzero(b.conv3.weight) == 0 for b in no_norm.blocks())


def _check_forward_backward(model: nn.Module, spec: ModelSpec, size: int, batch: int = 2) -> None:
    model.train()
    x = torch.randn(batch, spec.in_channels, size, size)
    out = model(x)
    assert out.shape == (batch, spec.num_classes)
    out.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_runs_forward_and_backward_at_its_input_size(name):
    spec = get_preset(name)
    size = spec.default_input_size
    _check_forward_backward(build_model(spec), spec, size, batch=2)


def random_specs(n: int, seed: int = 0) -> list[ModelSpec]:
    rng = random.Random(seed)
    specs = []
    for _ in range(n):
        stages = rng.randint(1, 4)
        widths = sorted(rng.choice([4, 8, 12, 16, 24]) for _ in range(stages))
        specs.append(ModelSpec(
            stem=rng.choice(["imagenet", "cifar"]), block=rng.choice(["basic", "bottleneck"]),
            depths=tuple(rng.randint(1, 3) for _ in range(stages)), widths=tuple(widths),
            skip=rng.random() < 0.7, shortcut=rng.choice("ABC"), preact=rng.random() < 0.3,
            norm=rng.choice(["batch", "batch", "none"]), zero_init_residual=rng.random() < 0.2,
            in_channels=rng.choice([1, 3, 4]), num_classes=rng.randint(1, 20),
        ))
    return specs


@pytest.mark.parametrize("spec", random_specs(24), ids=lambda s: s.describe().replace(" ", ""))
def test_random_custom_specs_build_and_train_a_step(spec):
    size = max(spec.min_input_size, 32 if spec.stem == "cifar" else 64)
    model = build_model(spec)
    _check_forward_backward(model, spec, size, batch=3)
    assert isinstance(next(iter(model.blocks())), ResidualBlock)


def test_build_model_accepts_names_specs_dicts_and_overrides():
    assert build_model("resnet20").spec == PRESETS["resnet20"]
    assert build_model(PRESETS["resnet20"], num_classes=4).fc.out_features == 4
    assert build_model(PRESETS["resnet20"].to_dict()).spec == PRESETS["resnet20"]
    with pytest.raises(ValueError, match="did you mean resnet56"):
        build_model("resnet57")
    with pytest.raises(ValueError, match="unknown ModelSpec field"):
        build_model("resnet20", width=3)


def test_presets_are_read_only_and_include_every_plain_twin():
    with pytest.raises(TypeError):
        PRESETS["mine"] = PRESETS["resnet20"]  # type: ignore[index]
    for name, spec in PRESETS.items():
        if spec.skip and name != "resnet1202":
            assert PRESETS[name.replace("resnet", "plain")] == spec.replace(skip=False)
    assert {"plain20", "plain56", "plain110", "plain18", "plain50", "preact_plain18"} <= set(PRESETS)


@pytest.mark.parametrize("spec", [
    ModelSpec(stem="cifar", depths=(1, 1), widths=(4, 8), shortcut="A", num_classes=5),
    ModelSpec(stem="cifar", depths=(1, 1), widths=(4, 8), preact=True, num_classes=3, in_channels=1),
    ModelSpec(block="bottleneck", depths=(1, 1, 1), widths=(4, 8, 16), skip=False, num_classes=7),
])
def test_timm_face_forward_head_of_forward_features_is_forward(spec):
    torch.manual_seed(0)
    model = build_model(spec).eval()
    x = torch.randn(3, spec.in_channels, 32, 32)
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model(x)
        pooled = model.forward_head(features, pre_logits=True)
        assert torch.equal(model.forward_head(features), logits)
        assert torch.equal(model.forward_head(features, pre_logits=False), logits)
        assert torch.equal(model.get_classifier()(pooled), logits)
    assert model.get_classifier() is model.fc
    assert pooled.shape == (3, model.fc.in_features) == (3, model.num_features)
    torch.testing.assert_close(pooled, features.mean(dim=(2, 3)))  # global average pooling, by hand


def test_a_table_names_a_run_by_its_preset_whatever_its_classes_else_as_build_describes_it():
    from resnet_lab.models.presets import PRESETS, model_label

    fitted = PRESETS["resnet20"].replace(num_classes=10, in_channels=1)  # as digits trains it
    assert model_label(fitted.to_dict()) == "resnet20"
    assert model_label(PRESETS["plain56"].to_dict()) == "plain56"
    custom = PRESETS["resnet20"].replace(widths=(8, 16, 32))
    assert model_label(custom.to_dict()) == custom.describe() and custom.describe().startswith("ResNet-20")
    assert model_label({"depths": "not a list"}) == "?"

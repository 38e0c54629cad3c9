import pickle

import pytest
import torch
import torchvision.models as tvm

from resnet_lab import PRESETS, build_model
from resnet_lab.data.registry import DataConfig
from resnet_lab.models.pretrained import WeightsMissing, load_imagenet, top_k, weights_path
from resnet_lab.train.config import TrainConfig
from resnet_lab.train.engine import Trainer
from resnet_lab.train.members import MemberSetup
from resnet_lab.train.finetune import Base, FinetuneConfig, adapt_data, plan

from .conftest import TINY, make_data


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def place_weights(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    reference = getattr(tvm, name)()
    path = weights_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(reference.state_dict(), path)
    return reference


def test_imagenet_path_reads_torchvisions_cache_file_and_matches_torchvisions_model(torch_home):
    place_weights("resnet18")
    path = weights_path("resnet18")
    assert path == torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    ours = load_imagenet("resnet18")
    theirs = tvm.resnet18(weights=tvm.ResNet18_Weights.IMAGENET1K_V1).eval()  # torchvision's own API, same cache
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours.model(x), theirs(x), atol=1e-5, rtol=0)
    assert len(ours.categories) == 1000 and ours.categories[0] == "tench"


def test_missing_weights_name_the_file_and_the_folder_without_downloading(torch_home, monkeypatch):
    with pytest.raises(WeightsMissing) as e:
        load_imagenet("resnet50")
    assert "resnet50-0676ba61.pth" in str(e.value) and str(torch_home / "hub" / "checkpoints") in str(e.value)
    assert "weights get resnet50" in str(e.value)  # the lab's one verified download door

    def no_network(*args, **kwargs):
        raise AssertionError("loading weights must never download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with pytest.raises(WeightsMissing):
        load_imagenet("resnet18")


def test_weights_are_read_with_weights_only(torch_home):
    path = weights_path("resnet18")
    path.parent.mkdir(parents=True)
    with open(path, "wb") as f:
        pickle.dump({"conv1.weight": __import__("collections").Counter()}, f)  # not plain tensors
    with pytest.raises(WeightsMissing, match="could not be read"):
        load_imagenet("resnet18")


def test_top5_imagenet_predictions_use_the_weights_metadata(torch_home):
    place_weights("resnet18")
    p = load_imagenet("resnet18")
    preds = top_k(p.model, torch.rand(3, 300, 200), p.categories)
    assert len(preds) == 5 and all(name in p.categories for name, _ in preds)
    probs = [q for _, q in preds]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6


def trained(setup: MemberSetup, spec=TINY, epochs=2):
    cfg = TrainConfig(epochs=epochs, batch_size=16, lr=0.05, log_every=1, grad_norm_every=2, device="cpu")
    t = Trainer([spec], make_data(), cfg, setups=[setup], augment=not setup.head_only)
    start = {k: v.clone() for k, v in t.members[0].model.state_dict().items()}
    t.run()
    return start, t.members[0].model.state_dict(), t


def test_linear_probe_trains_only_the_head():
    base = build_model(TINY).state_dict()
    start, end, t = trained(MemberSetup(state_dict=base, head_only=True))
    for k, v in start.items():
        if k.startswith("fc."):
            assert not torch.equal(v, end[k])
        else:
            assert torch.equal(v, end[k]), k  # weights and BN statistics bit-identical
    assert t.layer_names == ["fc"]


def test_last_n_freezes_earlier_stages_including_their_batchnorm_statistics():
    base = build_model(TINY).state_dict()
    start, end, _ = trained(MemberSetup(state_dict=base, frozen=("conv1", "bn1", "layer1")))
    frozen = [k for k in start if k.split(".")[0] in ("conv1", "bn1", "layer1")]
    assert any("running_mean" in k for k in frozen)
    assert all(torch.equal(start[k], end[k]) for k in frozen)
    assert not torch.equal(start["layer2.0.conv1.weight"], end["layer2.0.conv1.weight"])
    assert not torch.equal(start["layer2.0.bn1.running_mean"], end["layer2.0.bn1.running_mean"])


def test_full_fine_tune_uses_a_smaller_backbone_learning_rate():
    cfg = TrainConfig(epochs=1, batch_size=16, lr=0.1, device="cpu")
    t = Trainer([TINY], make_data(), cfg, setups=[MemberSetup(backbone_lr_mult=0.1)])
    opt = t.members[0].optimizer
    fc = {id(p) for p in t.members[0].model.fc.parameters()}
    lrs = {("head" if id(g["params"][0]) in fc else "backbone"): g["initial_lr"] for g in opt.param_groups}
    assert lrs == {"head": pytest.approx(0.1), "backbone": pytest.approx(0.01)}
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(t.members[0].model.parameters()))


def test_head_swap_keeps_the_backbone_and_starts_a_fresh_head():
    base_spec = TINY.replace(num_classes=10)
    base = Base(base_spec, build_model(base_spec).state_dict(), (0.5,) * 3, (0.2,) * 3, "run 1")
    spec, setup = plan(FinetuneConfig(source="run:1", strategy="last:1"), base, num_classes=3, data_channels=1)
    assert spec.num_classes == 3 and spec.in_channels == 3  # the base's channels: the data is adapted instead
    assert not any(k.startswith("fc.") for k in setup.state_dict)
    assert setup.frozen == ("conv1", "bn1", "layer1")
    model = Trainer([spec], make_data(), TrainConfig(epochs=1, batch_size=16, device="cpu"), setups=[setup]).members[0]
    assert torch.equal(model.model.layer1[0].conv1.weight, base.state_dict["layer1.0.conv1.weight"])
    with pytest.raises(ValueError, match="only 2 stages"):
        plan(FinetuneConfig(source="run:1", strategy="last:3"), base, 3, 3)


def test_adapt_data_converts_channels_and_takes_the_bases_normalization():
    grey = make_data()
    grey = adapt_data(grey, 1, None, None)  # RGB -> grey, own statistics
    assert grey.x_train.shape[1] == 1 and grey.in_channels == 1 and len(grey.mean) == 1
    rgb = adapt_data(grey, 3, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert rgb.x_train.shape[1] == 3 and torch.equal(rgb.x_train[:, 0], rgb.x_train[:, 2])
    assert rgb.mean == (0.485, 0.456, 0.406)


@pytest.mark.parametrize("bad, message", [({"source": "hub:resnet18"}, "use imagenet"),
                                          ({"source": "run:abc"}, "run id is a number"),
                                          ({"source": "imagenet:resnet101"}, "ImageNet weights exist for"),
                                          ({"strategy": "last:9"}, "last:N"),
                                          ({"backbone_lr_mult": 0}, "backbone_lr_mult")])
def test_finetune_config_validation(bad, message):
    with pytest.raises(ValueError, match=message):
        FinetuneConfig(**bad)


def test_submitting_from_imagenet_without_weights_is_refused_before_queueing(torch_home, lab_home):
    from resnet_lab.store import Store
    from resnet_lab.train import launcher

    with pytest.raises(WeightsMissing, match="resnet18-f37072fd.pth"):
        launcher.submit_finetune(FinetuneConfig(source="imagenet:resnet18"), DataConfig(name="digits", image_size=32),
                                 TrainConfig(epochs=1))
    assert Store().runs.list() == []
    assert PRESETS["resnet18"].num_classes == 1000

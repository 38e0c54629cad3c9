"""The published numbers: torchvision's weights metadata as torchvision states it, Table 6 as the paper prints it."""

import torchvision.models as tvm

from resnet_lab.experiments.paper_cifar import PAPER_RESNET_ERROR
from resnet_lab.models.presets import PRESETS
from resnet_lab.models.published import (TABLE6, TABLE6_ERROR, TABLE6_SOURCE, TORCHVISION_SOURCE, best_published,
                                         imagenet_rows, table6_row)
from resnet_lab.models.summary import summarize

ENUMS = {"resnet18": tvm.ResNet18_Weights, "resnet34": tvm.ResNet34_Weights, "resnet50": tvm.ResNet50_Weights,
         "resnet101": tvm.ResNet101_Weights, "resnet152": tvm.ResNet152_Weights}


def test_every_imagenet_weights_entry_is_read_with_torchvisions_own_numbers():
    expected = {(m, w.name): w.meta for m, enum in ENUMS.items() for w in enum if w.name.startswith("IMAGENET1K_")}
    rows = imagenet_rows()
    assert {(r.model, r.weights) for r in rows} == set(expected)
    assert {"V1", "V2"} == {r.version for r in rows}
    for r in rows:
        meta = expected[(r.model, r.weights)]
        assert r.top1 == meta["_metrics"]["ImageNet-1K"]["acc@1"]
        assert r.top5 == meta["_metrics"]["ImageNet-1K"]["acc@5"]
        assert (r.gflops, r.params, r.file_mb) == (meta["_ops"], meta["num_params"], meta["_file_size"])


def test_torchvisions_ops_are_the_labs_multiply_adds_and_its_params_the_presets():
    """The built model goes on the same axis: torchvision's "GFLOPS" are multiply-adds, as the summary counts."""
    for r in imagenet_rows():
        s = summarize(PRESETS[r.model], 224)
        assert round(s.macs / 1e9, 3) == r.gflops
        assert s.params == r.params


def test_best_published_takes_the_stronger_recipe():
    assert best_published("resnet50").version == "V2"
    assert best_published("resnet18").version == "V1"
    assert best_published("resnet20") is None


def test_table6_is_the_papers():
    assert [(r.depth, round(100 * r.error, 2), r.params_m) for r in TABLE6] == [
        (20, 8.75, 0.27), (32, 7.51, 0.46), (44, 7.17, 0.66), (56, 6.97, 0.85), (110, 6.43, 1.7), (1202, 7.93, 19.4)]
    assert table6_row("resnet56").accuracy == 1 - 0.0697
    assert table6_row("resnet18") is None


def test_table6_has_one_home_and_the_paper_experiment_reads_it():
    assert PAPER_RESNET_ERROR == {d: TABLE6_ERROR[d] for d in (20, 32, 44, 56, 110)}


def test_table6_params_match_the_presets_as_printed():
    for r in TABLE6:
        assert round(summarize(PRESETS[r.model], 32).params / 1e6, 2 if r.params_m < 1 else 1) == r.params_m


def test_sources_are_named():
    assert "torchvision" in TORCHVISION_SOURCE and "ImageNet" in TORCHVISION_SOURCE
    assert "He et al. 2015" in TABLE6_SOURCE and "Table 6" in TABLE6_SOURCE

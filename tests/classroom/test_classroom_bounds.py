"""Bounds: every refusal names the setting, the value and what is allowed; widgets get the same ranges."""

import pytest

from resnet_lab.classroom.bounds import (
    ANY_USER_DATASET,
    Bounds,
    OutOfBounds,
    full_train_images,
    matching_presets,
    param_count,
)
from resnet_lab.data.registry import DataConfig
from resnet_lab.models.presets import PRESETS, cifar_spec
from resnet_lab.spec import ModelSpec
from resnet_lab.train.config import TrainConfig

SHAPES = DataConfig(name="shapes", image_size=32, train_subset=3000)
TRAIN = TrainConfig(epochs=5, batch_size=64)


def refused(bounds, spec=PRESETS["resnet20"], data=SHAPES, train=TRAIN) -> OutOfBounds:
    with pytest.raises(OutOfBounds) as e:
        bounds.check_training(spec, data, train)
    return e.value


def test_no_bounds_allow_everything():
    Bounds().check_training(PRESETS["resnet1202"], DataConfig(name="cifar10", image_size=256),
                            TrainConfig(epochs=1000, batch_size=8192))
    assert Bounds().unbounded and not Bounds(max_epochs=3).unbounded


def test_epochs_message_names_the_setting_the_value_and_the_range():
    e = refused(Bounds(max_epochs=20), train=TRAIN.replace(epochs=200))
    assert str(e) == "Epochs 200 is above this class's bound: allowed 1–20."
    assert e.fields == ("max_epochs",) and isinstance(e, ValueError)
    Bounds(max_epochs=20).check_training(PRESETS["resnet20"], SHAPES, TRAIN.replace(epochs=20))  # the edge is in


def test_image_size_batch_and_training_images():
    e = refused(Bounds(max_image_size=32), data=SHAPES.replace(image_size=64))
    assert str(e) == "Image size 64 px is above this class's bound: allowed 16–32 px."
    e = refused(Bounds(max_batch_size=128), train=TRAIN.replace(batch_size=256))
    assert str(e) == "Batch size 256 is above this class's bound: allowed 2–128."
    e = refused(Bounds(max_train_images=1000), data=SHAPES)
    assert str(e) == "Training images 3,000 is above this class's bound: allowed 1–1,000."


def test_the_whole_dataset_counts_when_no_subset_is_chosen():
    bounds = Bounds(max_train_images=5000)
    e = refused(bounds, data=DataConfig(name="cifar10"))
    assert "Training images: all of cifar10 (50,000) is above this class's bound: allowed 1–5,000." in str(e)
    assert "Choose a number of training images" in str(e)
    bounds.check_training(PRESETS["resnet20"], DataConfig(name="digits"), TRAIN)  # all of digits: 1,438
    refused(Bounds(max_train_images=1000), data=DataConfig(name="digits"))
    refused(bounds, data=DataConfig(name="shapes"))  # shapes generates 10,000 at 32 px


def test_full_train_images_agrees_with_the_loaders():
    from resnet_lab.data.registry import load_dataset

    for cfg in (DataConfig(name="digits"), DataConfig(name="digits", val_fraction=0.3)):
        assert full_train_images(cfg) == len(load_dataset(cfg).y_train)
    assert full_train_images(DataConfig(name="shapes", image_size=128)) == 2500  # shapes shrinks above 64 px
    assert full_train_images(DataConfig(name="mnist")) == 60_000
    assert full_train_images(DataConfig(name="folder:nothing-here")) is None


def test_full_train_images_reads_the_size_from_the_datasets_info(monkeypatch):
    """One home for a dataset's size: its DatasetInfo (the published split, or all images before val is carved)."""
    import dataclasses

    from resnet_lab.data import types

    assert [types.DATASET_INFO[n].train_images for n in ("cifar10", "mnist", "fashion_mnist", "digits", "shapes")] == [
        50_000, 60_000, 60_000, 1797, None]
    monkeypatch.setitem(types.DATASET_INFO, "cifar10", dataclasses.replace(types.DATASET_INFO["cifar10"],
                                                                           train_images=123))
    monkeypatch.setitem(types.DATASET_INFO, "digits", dataclasses.replace(types.DATASET_INFO["digits"],
                                                                          train_images=100))
    assert full_train_images(DataConfig(name="cifar10")) == 123
    assert full_train_images(DataConfig(name="digits", val_fraction=0.3)) == 70


def test_an_unknown_size_is_refused_not_waved_through():
    e = refused(Bounds(max_train_images=500), data=DataConfig(name="folder:nothing-here"))
    assert "not known here" in str(e) and "1–500" in str(e)


def test_depth_is_the_papers_count():
    assert PRESETS["resnet20"].depth == 20 and PRESETS["resnet50"].depth == 50
    e = refused(Bounds(max_depth=56), spec=PRESETS["resnet110"])
    assert str(e) == "Depth 110 layers is above this class's bound: allowed up to 56 layers."
    Bounds(max_depth=56).check_training(PRESETS["plain56"], SHAPES, TRAIN)


def test_parameters_are_counted_for_the_model_as_it_will_train():
    assert param_count(PRESETS["resnet18"]) == 11_689_512  # torchvision's resnet18
    # resnet18 fitted to shapes' 6 classes has 513 * 6 head parameters, not 513 * 1000
    fitted = 11_689_512 - 513 * 1000 + 513 * 6
    Bounds(max_params=fitted).check_training(PRESETS["resnet18"], SHAPES, TRAIN)
    e = refused(Bounds(max_params=fitted - 1), spec=PRESETS["resnet18"])
    assert str(e) == "Parameters 11.18M is above this class's bound: allowed up to 11.18M."
    assert e.fields == ("max_params",)


def test_depth_is_checked_before_parameters_are_counted(monkeypatch):
    import resnet_lab.classroom.bounds as b

    monkeypatch.setattr(b, "param_count", lambda spec: pytest.fail("counted a net already refused for its depth"))
    e = refused(Bounds(max_depth=56, max_params=10), spec=PRESETS["resnet1202"])
    assert e.fields == ("max_depth",)


def test_param_count_is_cached():
    spec = cifar_spec(32, width=8)
    param_count.cache_clear()
    param_count(spec)
    param_count(spec)
    assert param_count.cache_info().hits == 1


def test_datasets_allowlist():
    bounds = Bounds(datasets=("shapes", ANY_USER_DATASET))
    e = refused(bounds, data=DataConfig(name="digits"))
    assert str(e) == "Dataset 'digits' is not allowed in this class: allowed shapes, your own images (folder:*)."
    assert bounds.allows_dataset("folder:cats") and bounds.allows_dataset("shapes")
    assert not Bounds(datasets=("folder:cats",)).allows_dataset("folder:dogs")
    bounds.check_training(PRESETS["resnet20"], DataConfig(name="folder:cats", train_subset=10), TRAIN)


def test_presets_allowlist_plain_twins_and_custom_models():
    bounds = Bounds(presets=("resnet20", "resnet56"))
    for name in ("resnet20", "plain20", "plain56"):
        spec = PRESETS[name].replace(num_classes=6)  # fitted to the dataset: still that preset
        bounds.check_training(spec, SHAPES, TRAIN)
        assert bounds.allows_preset(name)
    e = refused(bounds, spec=PRESETS["resnet110"])
    assert str(e).startswith("Model resnet110 (ResNet-110") and "allowed resnet20, resnet56 (each with its plain" in \
        str(e)
    custom = cifar_spec(20, width=8)
    e = refused(bounds, spec=custom)
    assert "(a custom model) is not allowed" in str(e) and e.fields == ("presets",)
    assert not bounds.allows_custom and Bounds().allows_custom
    Bounds(max_depth=56).check_training(custom, SHAPES, TRAIN)  # no preset list: a custom model is allowed
    assert matching_presets(PRESETS["resnet18"].replace(num_classes=3, in_channels=1)) == ["resnet18"]


def test_every_broken_bound_is_named_at_once():
    bounds = Bounds(max_epochs=5, max_batch_size=32, max_depth=20, datasets=("digits",))
    e = refused(bounds, spec=PRESETS["resnet56"], train=TrainConfig(epochs=6, batch_size=64))
    assert set(e.fields) == {"datasets", "max_depth", "max_epochs", "max_batch_size"}
    for part in ("Dataset 'shapes'", "Depth 56 layers", "Epochs 6", "Batch size 64"):
        assert part in str(e)


def test_limit_clips_widget_ranges():
    bounds = Bounds(max_epochs=20, max_image_size=16, max_upload_mb=2.5)
    assert bounds.limit("epochs", 1, 200) == (1, 20)
    assert bounds.limit("max_epochs", 1, 10) == (1, 10)  # the widget's own range is already inside
    assert bounds.limit("batch_size", 2, 4096) == (2, 4096)  # no bound
    assert bounds.limit("image_size", 32, 256) == (32, 32)  # a bound below the widget's floor: the floor only
    assert bounds.limit("upload_mb", 1, 200) == (1, 2)
    with pytest.raises(ValueError, match="no bound named 'epoch'"):
        bounds.limit("epoch", 1, 2)


def test_stricter_takes_the_smaller_number_and_the_common_names():
    cls = Bounds(max_epochs=20, max_depth=110, datasets=("shapes", "digits", ANY_USER_DATASET), presets=None)
    lesson = Bounds(max_epochs=8, max_image_size=32, datasets=("shapes", "folder:cats", "cifar10"),
                    presets=("resnet20",))
    both = cls.stricter(lesson)
    assert both == Bounds(max_epochs=8, max_image_size=32, max_depth=110, datasets=("shapes", "folder:cats"),
                          presets=("resnet20",))
    assert lesson.stricter(cls).max_epochs == 8 and Bounds().stricter(lesson) == lesson
    assert Bounds(presets=("resnet20",)).stricter(Bounds(presets=("plain20", "resnet56"))).presets == ("plain20",)
    with pytest.raises(ValueError, match="nothing in common"):
        Bounds(datasets=("shapes",)).stricter(Bounds(datasets=("digits",)))


def test_upload_cap_per_owner():
    bounds = Bounds(max_upload_mb=10)
    bounds.check_upload(0, 10 * 2**20)
    bounds.check_upload(6 * 2**20, 4 * 2**20)
    with pytest.raises(OutOfBounds, match="would bring your datasets to 10.0 MiB .*allowed up to 10 MB per person"):
        bounds.check_upload(6 * 2**20, 4 * 2**20 + 1)
    Bounds().check_upload(10**12, 10**12)  # no cap
    with pytest.raises(ValueError):
        bounds.check_upload(-1, 5)


def test_bounds_validate_themselves():
    with pytest.raises(ValueError, match="max_epochs=0 is out of range"):
        Bounds(max_epochs=0)
    with pytest.raises(ValueError, match="unknown model preset"):
        Bounds(presets=("resnet21",))
    with pytest.raises(ValueError, match=r"\[bounds\]: unknown key\(s\) max_epoch"):
        Bounds.from_mapping({"max_epoch": 3})
    assert Bounds.from_mapping({"datasets": ["shapes"]}).datasets == ("shapes",)
    assert Bounds(max_epochs=3, presets=("resnet20",)).to_dict() == {"max_epochs": 3, "presets": ["resnet20"]}
    assert Bounds(max_epochs=3, datasets=["shapes"]) == Bounds(max_epochs=3, datasets=("shapes",))  # hashable tuples


def test_describe_lists_what_is_set():
    lines = Bounds(max_epochs=8, max_params=1_000_000, datasets=(ANY_USER_DATASET,), presets=("resnet20",)).describe()
    assert lines == ["Epochs: up to 8", "Parameters: up to 1.00M", "Datasets: your own images (folder:*)",
                     "Models: resnet20 (and their plain twins)"]


def test_a_spec_that_is_not_a_spec_is_a_programming_error():
    with pytest.raises(TypeError):
        Bounds().check_training({"stem": "cifar"}, SHAPES, TRAIN)
    assert isinstance(PRESETS["resnet20"], ModelSpec)


def test_a_datasets_info_fits_a_spec_as_training_builds_it():
    from resnet_lab.data.registry import dataset_info

    spec = PRESETS["resnet20"]
    fitted = dataset_info("digits").fit(spec)
    assert (fitted.num_classes, fitted.in_channels) == (10, 1) and fitted == spec.replace(num_classes=10, in_channels=1)


def test_a_run_by_steps_is_held_to_the_epoch_bound_by_the_passes_its_steps_make():
    from resnet_lab.train.launcher import training_work

    b = Bounds(max_epochs=5)
    spec, data = PRESETS["resnet20"], DataConfig(name="shapes", image_size=32, train_subset=1000)
    ok = TrainConfig(epochs=200, batch_size=100, max_steps=50)  # 10 steps an epoch: 5 passes
    b.check_training(spec, data, ok)
    with pytest.raises(OutOfBounds, match=r"Epochs 6 \(51 steps of 10 an epoch\)") as e:
        b.check_training(spec, data, TrainConfig(epochs=200, batch_size=100, max_steps=51))
    assert e.value.fields == ("max_epochs",)
    with pytest.raises(OutOfBounds, match="number of training images is not known"):
        Bounds(max_epochs=5).check_training(spec, DataConfig(name="folder:nowhere"), ok)
    assert training_work("train", [{}], data, ok)["units"] == 50 * 100  # steps × batch, not 200 epochs
    assert training_work("train", [{}, {}], data, TrainConfig(epochs=3, batch_size=100))["units"] == 2 * 3 * 1000

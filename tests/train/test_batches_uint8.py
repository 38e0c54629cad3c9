"""Batches from a dataset kept as uint8: on the device as bytes, converted and normalized per batch there, and
the same (to float rounding) as the batches of its float32 twin, for one process, a rank of several and a
linear probe; a whole (tiny) run trains on it."""

import torch

from resnet_lab.data.registry import Dataset
from resnet_lab.train.batches import FeatureBatches, ImageBatches
from resnet_lab.train.config import TrainConfig
from resnet_lab.train.engine import Trainer
from resnet_lab.models import build_model

from .conftest import TINY, make_data

CPU = torch.device("cpu")


def twins(n_train=96, n_val=48) -> tuple[Dataset, Dataset]:
    """The conftest's learnable data rounded to uint8, and the float32 twin of exactly those images."""
    f = make_data(n_train, n_val)
    u8 = Dataset.from_tensors((f.x_train * 255).round().to(torch.uint8), f.y_train,
                              (f.x_val * 255).round().to(torch.uint8), f.y_val, f.class_names)
    twin = Dataset.from_tensors(u8.pixels_train.float() / 255, f.y_train, u8.pixels_val.float() / 255, f.y_val,
                                f.class_names)
    return u8, twin


def test_uint8_batches_equal_the_float_twins_for_one_rank_of_several():
    u8, twin = twins()
    assert u8.nbytes * 4 == twin.nbytes  # a quarter of the memory, on the host and the device
    idx = torch.randperm(96, generator=torch.Generator().manual_seed(0))[:32]
    for share, part in ((None, (0, 1)), (slice(8, 16), (1, 4))):
        a = ImageBatches(u8, CPU, True, torch.Generator().manual_seed(1), share=share, part=part)
        b = ImageBatches(twin, CPU, True, torch.Generator().manual_seed(1), share=share, part=part)
        assert a.x_train.dtype == torch.uint8 and b.x_train.dtype == torch.float32
        (xa, ya), (xb, yb) = a.train(idx), b.train(idx)
        assert xa.dtype == torch.float32 and torch.equal(ya, yb)
        torch.testing.assert_close(xa, xb, atol=1e-6, rtol=0)
        va, vb = list(a.val()), list(b.val())
        assert len(va) == len(vb)
        for (xa, ya), (xb, yb) in zip(va, vb):
            torch.testing.assert_close(xa, xb, atol=1e-6, rtol=0)
            assert torch.equal(ya, yb)


def test_a_linear_probes_features_from_uint8_images_equal_the_float_twins():
    u8, twin = twins()
    model = build_model(TINY)
    fa = FeatureBatches(ImageBatches(u8, CPU, False, torch.Generator()), model, cuda=False)
    fb = FeatureBatches(ImageBatches(twin, CPU, False, torch.Generator()), model, cuda=False)
    idx = torch.arange(10)
    torch.testing.assert_close(fa.train(idx)[0], fb.train(idx)[0], atol=1e-5, rtol=1e-5)


def test_a_run_trains_on_uint8_images_like_on_their_float_twin():
    u8, twin = twins()
    cfg = TrainConfig(epochs=2, batch_size=16, device="cpu", seed=0)
    ta, tb = Trainer([TINY], u8, cfg), Trainer([TINY], twin, cfg)
    ra, rb = ta.run(), tb.run()
    assert ra[0].status == rb[0].status == "done"
    ma, mb = ta.evaluate(ta.members[0].model), tb.evaluate(tb.members[0].model)
    assert abs(ma["val/loss"] - mb["val/loss"]) < 1e-3 and abs(ma["val/acc"] - mb["val/acc"]) < 0.05
    assert ma["val/acc"] > 0.5  # the three colour classes are learned from bytes too

"""``TrainConfig.compile``: the training forward goes through torch.compile; its first step is reported apart as
``compile_s`` (and kept out of images/s); what is saved is the model itself, not the compiled wrapper."""

import functools

import pytest
import torch

from resnet_lab.train.config import TrainConfig
from resnet_lab.train.engine import Trainer
from resnet_lab.train.members import Callbacks

from .conftest import TINY, make_data


class Logs(Callbacks):
    def __init__(self):
        self.logs = []

    def on_log(self, idx, step, epoch, metrics):
        self.logs.append((step, metrics))


@pytest.mark.slow
def test_a_compiled_run_reports_its_compile_time_once_and_saves_plain_weights(tmp_path, monkeypatch):
    # the lab's path through torch.compile (dynamo traces the training forward, AOT autograd builds its backward);
    # Inductor's C++ code generation under it is PyTorch's own work, 30 s of a CPU here, and tested by PyTorch
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    logs = Logs()
    cfg = TrainConfig(epochs=2, batch_size=16, log_every=2, eval_points=0, compile=True, device="cpu")
    trainer = Trainer([TINY], make_data(), cfg, logs, checkpoint_dirs=[tmp_path])
    (result,) = trainer.run()
    assert result.status == "done"
    with_compile = [(step, m["compile_s"]) for step, m in logs.logs if "compile_s" in m]
    assert len(with_compile) == 1 and with_compile[0][0] == 2 and with_compile[0][1] > 0
    assert all(m["images_per_s"] > 0 for _, m in logs.logs if "images_per_s" in m)
    assert trainer.members[0].forward is not trainer.members[0].model
    assert not any(k.startswith("_orig_mod") for k in trainer.members[0].model.state_dict())
    assert (tmp_path / "last.safetensors").exists() or any(tmp_path.iterdir())


def test_compile_must_be_a_boolean():
    with pytest.raises(ValueError, match="compile must be true or false"):
        TrainConfig(compile="yes")
    assert TrainConfig.from_dict({"epochs": 1}).compile is False  # runs recorded before the setting existed

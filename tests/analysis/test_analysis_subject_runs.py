"""A run plus its twin, each with a checkpoint, or a refusal that says which run and why (the one place that
decides it: commands, the landscape experiment and the Inspect pages ask here)."""

from types import SimpleNamespace

import pytest

from resnet_lab.analysis.subject import require_checkpoint, run_and_twin


@pytest.fixture
def pair(tmp_path):
    ckpt = tmp_path / "best.json"
    ckpt.write_text("{}")

    def run(rid, partner, saved=True, status="done"):
        return SimpleNamespace(id=rid, partner_id=partner, status=status,
                               ckpt_best=str(ckpt) if saved else None, ckpt_last=None)
    return run


def test_a_run_and_its_twin_both_with_checkpoints(pair):
    a, b = pair(1, 2), pair(2, 1)
    assert run_and_twin(a) == [a]
    assert run_and_twin(a, lambda r: b) == [a, b]
    assert require_checkpoint(a) == a.ckpt_best


def test_refusals_say_which_run_and_why(pair):
    with pytest.raises(ValueError, match=r"^run 1 has no checkpoint yet \(status running\); a landscape needs"):
        run_and_twin(pair(1, 2, saved=False, status="running"), lambda r: None, needs="a landscape needs weights")
    with pytest.raises(ValueError, match=r"^run 1 has no twin: it was trained alone \(train with --twin\)$"):
        run_and_twin(pair(1, None), lambda r: None, alone="train with --twin")
    with pytest.raises(ValueError, match=r"^run 2 \(the twin of run 1\) has no checkpoint yet \(status queued\)$"):
        run_and_twin(pair(1, 2), lambda r: pair(2, 1, saved=False, status="queued"))

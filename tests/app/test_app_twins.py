"""The twin, said once, as a person sees it: a run chosen by hand brings its twin, pages open on the newest
run that has one, and each page's live panel shows only its own kind of job."""

import pytest

from resnet_lab.ui.inspect import NONE
from tests.helpers.homes import seed


def solo_run(store, like_id: int) -> int:
    """A newer run trained alone (it shares the pair's checkpoint file: only its record matters here)."""
    like = store.runs.get(like_id)
    job, (rid,) = store.jobs.create("train", "solo", "cpu", then=seed(runs=[{"name": "solo", "spec": like.spec,
                                                                    "data": like.data, "train": like.train}]))
    store.runs.update(rid, ckpt_best=like.ckpt_best, best={"val/acc": 0.5})
    store.jobs.finish(job, "done", only_if=["queued"])
    return rid


@pytest.mark.parametrize("page, key", [("app_pages/predictions.py", "pred"), ("app_pages/gradcam.py", "cam"),
                                       ("app_pages/feature_maps.py", "fm")])
def test_a_run_chosen_by_hand_brings_its_twin_and_pages_open_on_a_pair(private_trained_home, open_app_page,
                                                                       page, key):
    store, (resnet, plain) = private_trained_home
    solo = solo_run(store, resnet)
    at = open_app_page(page)
    assert not at.exception
    # the newest run (solo) was trained alone: the page opens on the newest run that has a twin
    assert at.selectbox(key=f"{key}_run").value == resnet and at.selectbox(key=f"{key}_vs").value == plain
    at.selectbox(key=f"{key}_run").set_value(plain).run()  # chosen by hand: its twin comes beside it
    assert at.selectbox(key=f"{key}_vs").value == resnet
    at.selectbox(key=f"{key}_run").set_value(solo).run()  # a run trained alone: nothing beside it
    assert at.selectbox(key=f"{key}_vs").value == NONE
    at.selectbox(key=f"{key}_vs").set_value(plain).run()  # any run may still be put beside it by hand
    at.selectbox(key=f"{key}_run").set_value(resnet).run()
    assert at.selectbox(key=f"{key}_vs").value == plain and not at.exception


def test_the_lone_page_pickers_open_on_a_pair_too(private_trained_home, open_app_page):
    store, (resnet, plain) = private_trained_home
    solo_run(store, resnet)
    for page, key in (("app_pages/lesion.py", "lz_run"), ("app_pages/landscape.py", "ls_run"),
                      ("app_pages/gradient_flow.py", "gf_run")):
        at = open_app_page(page)
        assert at.selectbox(key=key).value == resnet, page


def test_each_page_shows_only_its_own_kind_of_job(lab_home, open_app_page):
    from resnet_lab.store import Store

    store = Store()
    row = {"name": "resnet-8 (degradation)", "spec": {"stem": "cifar"}, "data": {"name": "shapes"},
           "train": {"epochs": 1}}
    deg, _ = store.jobs.create("train", "resnet-8", "cpu", then=seed(runs=[row]), origin="degradation")
    store.jobs.finish(deg, "done", only_if=["queued"])
    at = open_app_page("app_pages/finetune.py")
    assert any("Nothing started from this page" in i.value for i in at.info)
    at = open_app_page("app_pages/train.py")
    assert any("Nothing started from this page" in i.value for i in at.info)  # an experiment's job is not the Train page's
    own, _ = store.jobs.create("train", "mine", "cpu", then=seed(runs=[{**row, "name": "mine"}]))
    store.jobs.finish(own, "done", only_if=["queued"])
    at = open_app_page("app_pages/train.py")
    assert any(h.value.startswith("Run #") and "mine" in h.value for h in at.subheader)
    at = open_app_page("app_pages/finetune.py")
    assert any("Nothing started from this page" in i.value for i in at.info)
    assert any("Fine-tuning (2 runs) on cpu: starts now" in c.value for c in at.caption)  # before the button

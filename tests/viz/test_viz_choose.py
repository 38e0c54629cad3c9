"""The Choose charts: V1/V2 told apart without colour, sources on the chart, the built model as a line, names as
text, and the tables and sentences from the same numbers."""

from resnet_lab.experiments.choose import front_of, points_of
from resnet_lab.models.presets import PRESETS
from resnet_lab.models.published import TABLE6, TABLE6_SOURCE, TORCHVISION_SOURCE, imagenet_rows
from resnet_lab.store import Run
from resnet_lab.viz.choose import (Built, published_figure, published_summary, published_table, runs_figure,
                                   runs_summary, runs_table, table6_figure, table6_summary, table6_table)

BUILT = [Built("resnet20", "ResNet", 0.0406, 269_722, 32), Built("plain20", "plain", 0.0406, 269_722, 32)]


def annotations(fig):
    return [a.text for a in fig.layout.annotations]


def test_v1_and_v2_differ_by_marker_and_label_not_only_colour():
    fig = published_figure(imagenet_rows(), BUILT, TORCHVISION_SOURCE)
    traces = {t.name: t for t in fig.data}
    v1, v2 = traces["V1 weights (original recipe)"], traces["V2 weights (torchvision's 2021 recipe)"]
    assert v1.marker.symbol != v2.marker.symbol
    assert all(t.endswith(" V1") for t in v1.text) and all(t.endswith(" V2") for t in v2.text)
    assert len(v1.x) + len(v2.x) == len(imagenet_rows()) and fig.layout.xaxis.type == "log"


def test_the_source_and_the_built_model_are_on_the_chart():
    fig = published_figure(imagenet_rows(), BUILT, TORCHVISION_SOURCE)
    said = annotations(fig)
    assert f"Source: {TORCHVISION_SOURCE}" in said
    assert any("resnet20: 0.0406 GFLOPs" in a for a in said) and any("no ImageNet accuracy" in a for a in said)
    assert [s.x0 for s in fig.layout.shapes] == [0.0406, 0.0406]
    assert [round(10 ** a.x, 4) for a in fig.layout.annotations if a.name == "built"] == [0.0406, 0.0406]  # log axis
    t6 = table6_figure(TABLE6, BUILT[:1], TABLE6_SOURCE)
    assert f"Source: {TABLE6_SOURCE}" in annotations(t6) and [s.x0 for s in t6.layout.shapes] == [0.269722]


def test_tables_and_sentences_carry_the_numbers():
    table = published_table(imagenet_rows(), BUILT, TORCHVISION_SOURCE)
    assert len(table.rows) == len(imagenet_rows()) + 2 and table.rows[-1][2] is None
    said = published_summary(imagenet_rows(), BUILT, TORCHVISION_SOURCE)
    assert "resnet18 V1, 69.8% at 1.8 GFLOPs" in said and "V2 recipe adds 4.0 to 4.7 points at the same cost" in said
    assert "no ImageNet accuracy" in said
    assert table6_table(TABLE6, TABLE6_SOURCE).rows[0][:4] == ("resnet20", 20, 8.75, 0.27)
    assert "to 6.43% (resnet110, 1.7 M)" in table6_summary(TABLE6, TABLE6_SOURCE)


def run(id, preset, acc, name="r"):
    return Run(id=id, job_id=None, partner_id=None, name=name, status="done", spec=PRESETS[preset].to_dict(),
               data={"name": "cifar10", "image_size": 32}, train={}, finetune={}, device="cpu", created_at=0.0,
               started_at=0.0, finished_at=1.0, error=None, step=1, total_steps=1, best={"val/acc": acc}, last={},
               ckpt_best=None, ckpt_last=None, owner="bob")


def test_runs_chart_marks_kinds_draws_the_front_and_shows_names_as_text():
    pts = points_of([run(1, "resnet20", 0.915, "<b>mine</b>"), run(2, "resnet56", 0.921), run(3, "plain56", 0.85)],
                    {}, {}, {})
    f = front_of(pts, "params")
    fig = runs_figure(f, {1: "Bob & <i>co</i>"})
    traces = {t.name: t for t in fig.data}
    assert traces["ResNet runs"].marker.symbol != traces["plain runs"].marker.symbol
    assert [round(y, 6) for y in traces["Pareto front (best accuracy for the cost)"].y] == [91.5, 92.1]
    assert tuple(traces["ResNet runs"].customdata[0]) == ("&lt;b&gt;mine&lt;/b&gt;", "Bob &amp; &lt;i&gt;co&lt;/i&gt;")
    rows = runs_table(f, {1: "Bob & <i>co</i>"}).rows
    assert rows[0][1:3] == ("<b>mine</b>", "Bob & <i>co</i>") and [r[-1] for r in rows] == [True, True, False]
    assert runs_summary(f).startswith("3 runs (1 plain), 2 on the front. resnet20 #1 is within 0.6 points")
    assert runs_summary(front_of([], "train_s")) == "No finished run has a value for training time (s) yet."

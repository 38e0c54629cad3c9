"""A chart's numbers and sentence (resnet_lab.viz.tables), the CSV a spreadsheet opens safely (fmt.csv_text), and
colour never the only sign of a plain twin (line dash, markers, bar hatching, legend names)."""

import csv
import io
import re

import plotly.graph_objects as go

from resnet_lab.fmt import csv_text, spreadsheet_safe
from resnet_lab.viz.experiments import deletion_figure, lesion_figure
from resnet_lab.viz.inspect import confusion_figure, layer_stats_figure, localization_figure, per_class_figure
from resnet_lab.viz.tables import curves_summary, curves_table, figure_summary, figure_table
from resnet_lab.viz.training import PLAIN_PATTERN, RunCurves, curves_figure, twin_style


def _read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_cells_that_look_like_formulas_are_text():
    rows = _read(csv_text(["run", "=x"], [["=HYPERLINK(\"http://evil\")", -0.5], ["+1", 2], ["@SUM(A1)", None],
                                           ["-cmd", float("nan")], ["\tboom", 1.5], ["plain, \"quoted\"", 3]]))
    assert rows[0] == ["run", "'=x"]
    assert [r[0] for r in rows[1:]] == ["'=HYPERLINK(\"http://evil\")", "'+1", "'@SUM(A1)", "'-cmd", "'\tboom",
                                        'plain, "quoted"']
    assert [r[1] for r in rows[1:]] == ["-0.5", "2", "", "", "1.5", "3"]  # numbers stay numbers, NaN is empty
    assert spreadsheet_safe(-3) == -3 and spreadsheet_safe("ok") == "ok"


def test_the_table_of_a_figure_holds_every_drawn_point_with_user_names_as_typed():
    accs = {"<b>=cmd()</b> resnet": [0.9, 0.5, 1.0], "twin & plain": [0.4, 0.6, 0.2]}
    fig = per_class_figure(accs, ["cat", "dog", "<i>ship</i>"], title="Accuracy per class")
    table = figure_table(fig)
    assert table.columns == ("series", "class", "accuracy")
    assert table.rows[:3] == [("<b>=cmd()</b> resnet", "cat", 0.9), ("<b>=cmd()</b> resnet", "dog", 0.5),
                              ("<b>=cmd()</b> resnet", "<i>ship</i>", 1.0)]  # escaped for plotly, shown as typed
    assert len(table.rows) == 6
    assert _read(table.csv())[4][0] == "twin & plain"
    # a name that begins like a formula goes to the spreadsheet as text
    assert _read(figure_table(per_class_figure({"=1+1": [0.5]}, ["a"])).csv())[1][0] == "'=1+1"


def test_the_summary_says_what_the_bars_show():
    fig = per_class_figure({"resnet": [0.9, 0.5, 1.0], "plain": [0.4, 0.6, 0.2]}, ["cat", "dog", "ship"],
                           title="Accuracy per class")
    text = figure_summary(fig)
    assert text.startswith("Accuracy per class. ")
    assert "resnet: highest 100.0% at ship, lowest 50.0% at dog" in text
    assert "plain: highest 60.0% at dog, lowest 20.0% at ship" in text


def test_the_summary_of_lines_says_where_they_end_and_peak():
    curves = [type("C", (), dict(label=label, skip=skip, ks=(0, 1, 2), mean_acc=acc, min_acc=acc, max_acc=acc))()
              for label, skip, acc in (("ResNet", True, (0.9, 0.85, 0.8)), ("plain", False, (0.9, 0.3, 0.1)))]
    fig = deletion_figure(curves)
    text = figure_summary(fig)
    assert "ResNet: ends at 80% (blocks deleted at once 2); highest 90% at blocks deleted at once 0" in text
    assert "plain: ends at 10%" in text
    table = figure_table(fig)  # the shaded ranges are not series of their own
    assert {r[0] for r in table.rows} == {"ResNet", "plain"} and len(table.rows) == 6


def test_a_heat_map_table_has_a_row_per_cell_and_its_summary_its_extremes():
    fig = confusion_figure([[5, 1], [2, 7]], ["cat", "dog"], title="resnet")
    table = figure_table(fig)
    assert table.columns == ("series", "predicted", "true", "count")
    assert sorted(table.rows) == [("resnet", "cat", "cat", 5), ("resnet", "cat", "dog", 2),
                                  ("resnet", "dog", "cat", 1), ("resnet", "dog", "dog", 7)]
    assert figure_summary(fig) == "resnet: values from 1 (true cat, predicted dog) to 7 (true dog, predicted dog)."
    # the Predictions page's matrix: clickable (its heat map leaves the hover to transparent markers), in shares
    clickable = confusion_figure([[5, 1], [2, 7]], ["cat", "dog"], title="resnet", normalize=True, clickable=True)
    assert len(figure_table(clickable).rows) == 4  # the cells once, not the click targets again
    assert "from 16.7% (true cat, predicted dog) to 83.3% (true cat, predicted cat)" in figure_summary(clickable)


def test_an_empty_figure_says_so():
    assert figure_summary(go.Figure()) == "No data drawn yet."
    assert figure_table(go.Figure()).rows == []


def _curves():
    resnet = RunCurves("#12 tiny", {"train/loss": [(1, 0.5, 2.0), (2, 1.0, 1.2), (3, 1.5, 0.9), (4, 2.0, 0.8)],
                                    "val/acc": [(2, 1.0, 0.61), (4, 2.0, 0.74)]}, key=12)
    twin = RunCurves("#13 tiny plain", {"train/loss": [(1, 0.5, 2.1), (4, 2.0, 1.5)],
                                        "val/acc": [(2, 1.0, 0.58), (4, 2.0, 0.52)]}, plain=True, key=12)
    return [resnet, twin]


def test_the_curves_summary_agrees_with_the_drawn_validation_accuracy():
    runs = _curves()
    text = curves_summary(runs)
    fig = curves_figure(runs)
    for run in runs:
        drawn = [t for t in fig.data if t.legendgroup == run.label and t.hovertemplate
                 and "validation accuracy" in t.hovertemplate][0]
        best = max(drawn.y)
        epoch = drawn.x[list(drawn.y).index(best)]
        assert f"{run.label} reached {100 * best:.1f}% validation " \
               f"accuracy at epoch {epoch:.3g}" in text
    assert text.index("#12 tiny") < text.index("#13 tiny plain")  # the twin beside its ResNet
    unnamed = curves_summary([RunCurves("#13 tiny", {"val/acc": [(2, 1.0, 0.5)]}, plain=True, key=12)])
    assert unnamed.startswith("#13 tiny (plain twin) reached 50.0%")  # a twin is said to be one
    waiting = curves_summary([RunCurves("#1 new", {"train/loss": [(1, 0.1, 2.3)]})])
    assert waiting == "#1 new: training loss 2.3 at epoch 0.1, no validation yet."
    table = curves_table(runs)
    assert table.columns == ("run", "what", "step", "epoch", "value") and len(table.rows) == 10
    assert ("#12 tiny", "validation accuracy", 4, 2.0, 0.74) in table.rows


def test_a_plain_twin_differs_from_its_resnet_in_more_than_colour():
    fig = curves_figure(_curves())
    by = {(t.name, t.line.dash) for t in fig.data if t.legendgroup != "line style"}
    assert ("#12 tiny", "solid") in by and ("#12 tiny", "dash") in by
    assert ("#13 tiny plain", "dot") in by and ("#13 tiny plain", "dashdot") in by
    styles = {t.name: t.line.dash for t in fig.data if t.legendgroup == "line style"}
    assert styles["plain twin: training (dotted)"] == "dot" and styles["plain twin: validation (dash-dot)"] == "dashdot"
    unnamed = curves_figure([RunCurves("#13 tiny", {"train/loss": [(1, 0.5, 2.1)]}, plain=True, key=12)])
    assert unnamed.data[0].name == "#13 tiny (plain)"  # the legend says plain even when the run's name does not


def test_bars_and_lines_of_the_second_model_are_hatched_and_dashed():
    bars = per_class_figure({"resnet": [0.9], "plain": [0.4]}, ["cat"])
    assert [t.marker.pattern.shape for t in bars.data] == ["", PLAIN_PATTERN]
    loc = localization_figure({"resnet": {"energy": 0.5, "pointing": 0.6}, "plain": {"energy": 0.4, "pointing": 0.3}})
    assert [t.marker.pattern.shape for t in loc.data if t.type == "bar"] == ["", PLAIN_PATTERN]
    stats = layer_stats_figure({"resnet": [{"name": "a", "index": 0, "std": 1.0}],
                                "plain": [{"name": "a", "index": 0, "std": 2.0}]}, "std")
    assert [(t.line.dash, t.marker.symbol) for t in stats.data] == [("solid", "circle"), ("dash", "square")]
    assert twin_style(True)["dash"] == "dash" and twin_style(False)["dash"] == "solid"


def test_lesion_bars_and_deletion_lines_mark_the_plain_net():
    row = type("R", (), dict(block="layer1.0", drop=0.1, acc=0.8, note="", downsampling=False))
    studies = [type("S", (), dict(label=label, skip=skip, blocks=("layer1.0",), base_acc=0.9,
                                  kind_rows=lambda self, kind: [row()]))()
               for label, skip in (("resnet", True), ("plain", False))]
    fig = lesion_figure(studies)
    assert [(t.name, t.marker.pattern.shape) for t in fig.data] == [("resnet", ""), ("plain", PLAIN_PATTERN)]
    curves = [type("C", (), dict(label=label, skip=skip, ks=(0, 1), mean_acc=(0.9, 0.8), min_acc=(0.9, 0.8),
                                 max_acc=(0.9, 0.8)))() for label, skip in (("resnet", True), ("plain", False))]
    lines = [t for t in deletion_figure(curves).data if t.mode == "lines+markers"]
    assert [(t.line.dash, t.marker.symbol) for t in lines] == [("solid", "circle"), ("dash", "square")]
    assert re.search("plain", lines[1].name)


def test_a_strip_of_pictures_is_said_by_what_each_row_shows_not_by_its_pixels():
    import torch

    from resnet_lab.viz.explain import depth_strip_figure

    image = torch.rand(3, 8, 8)
    fig = depth_strip_figure([("#1 <b>tiny</b>", image, [("layer1", torch.rand(8, 8)), ("layer2", torch.rand(8, 8))]),
                              ("#2 plain", image, [("layer1", torch.rand(8, 8))])], title="Grad-CAM, shallow → deep")
    assert figure_summary(fig) == ("Grad-CAM, shallow → deep: 3 pictures — #1 <b>tiny</b>: layer1, layer2; "
                                   "#2 plain: layer1.")
    assert figure_table(fig).rows == [("layer1", "#1 <b>tiny</b>"), ("layer2", "#1 <b>tiny</b>"),
                                      ("layer1", "#2 plain")]


def test_shares_of_one_stacked_bar_are_said_without_an_empty_category():
    from resnet_lab.viz.errors import agreement_figure

    text = figure_summary(agreement_figure(9, 21, 18, 102, "ResNet", "plain"))
    assert "both right: 9." in text and "both wrong: 102." in text and " at " not in text


def test_a_lesion_that_was_not_possible_is_an_empty_cell_not_a_zero_drop():
    rows = [type("R", (), dict(block="layer1.0", drop=0.1, acc=0.8, note="", downsampling=False)),
            type("R", (), dict(block="layer2.0", drop=None, acc=None, note="shape changes", downsampling=True))]
    study = type("S", (), dict(label="resnet", skip=True, blocks=("layer1.0", "layer2.0"), base_acc=0.9,
                               kind_rows=lambda self, kind: [r() for r in rows]))()
    fig = lesion_figure([study])
    assert figure_table(fig).rows == [("resnet", "layer1.0", 10.0), ("resnet", "layer2.0", None)]
    assert "resnet: 10 at layer1.0" in figure_summary(fig) and "layer2.0" not in figure_summary(fig)

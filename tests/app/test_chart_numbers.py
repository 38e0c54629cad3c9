"""Every chart of a page comes with its sentence and its numbers (resnet_lab/ui/charts.py), and on a really trained
pair the sentence says what the chart draws."""

import json
import re

from resnet_lab.ui.charts import NUMBERS_LABEL


def _charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_the_train_pages_sentence_agrees_with_its_curves_on_a_trained_pair(finished_run, open_app_page):
    at = open_app_page("app_pages/train.py")
    charts = _charts(at)
    assert charts, "the live panel draws the finished pair's curves"
    assert [e.label for e in at.expander].count(NUMBERS_LABEL) == len(charts)  # each chart has its numbers
    (sentence,) = [c.value for c in at.caption if "validation accuracy at epoch" in c.value]
    drawn = {}
    for trace in charts[0]["data"]:
        if "validation accuracy" in (trace.get("hovertemplate") or ""):
            best = max(trace["y"])
            drawn[trace["legendgroup"]] = (best, trace["x"][trace["y"].index(best)])
    assert len(drawn) == 2, drawn  # the ResNet and its plain twin
    for label, (best, epoch) in drawn.items():
        name = re.escape(label.split(" (plain)")[0])
        said = re.search(rf"{name}(?: \(plain twin\))? reached ([\d.]+)% validation accuracy at epoch ([\d.]+)",
                         sentence)
        assert said, (label, sentence)
        assert float(said.group(1)) == round(100 * best, 1) and float(said.group(2)) == float(f"{epoch:.3g}")


def test_every_chart_of_the_app_goes_through_the_one_helper():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    files = [*sorted((root / "app_pages").glob("*.py")), *sorted((root / "resnet_lab" / "ui").glob("*.py"))]
    direct = [f"{p.relative_to(root)}:{n}" for p in files if p.name != "charts.py"
              for n, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\.plotly_chart\(", line)]
    assert not direct, f"charts drawn without their sentence and numbers (use ui.charts.show_chart): {direct}"

"""The Grad-CAM depth strip at the width the page draws it: every column title fits its subplot (wrapped onto
more lines where it must), so neighbouring titles never overlap, and the rows leave room for those lines."""

import pytest
import torch

from resnet_lab.viz.explain import STRIP_WIDTH, depth_strip_figure

CHAR_PX = 7.0  # average width of a character of an 11 px title, with room to spare (6 px measured in Chromium)
LINE_PX = 14  # one line of an 11 px title


def page_titles(n: int, stages: int = 4) -> list[str]:
    """Column titles as the Grad-CAM page writes them: "layer2.0 = layer2 · 16×16" where a stage's last block is
    its output, "layer2.3 · 16×16" for the other blocks."""
    per = max(1, n // stages)
    out = []
    for i in range(n):
        stage, block = i // per + 1, i % per
        side = 64 >> min(stage - 1, 5)
        name = f"layer{stage}.{block}" + (f" = layer{stage}" if block == per - 1 else "")
        out.append(f"{name} · {side}×{side}")
    return out


def cell_box(fig: dict, axis: str, width: int) -> tuple[float, float, float, float]:
    """(left, top, width, height) in px of the subplot of ``axis`` ("x3") in a figure ``width`` px wide."""
    lay = fig["layout"]
    m = lay["margin"]
    xd, yd = lay["xaxis" + axis[1:]]["domain"], lay["yaxis" + axis[1:]]["domain"]
    pw, ph = width - m["l"] - m["r"], lay["height"] - m["t"] - m["b"]
    return m["l"] + xd[0] * pw, m["t"] + (1 - yd[1]) * ph, (xd[1] - xd[0]) * pw, (yd[1] - yd[0]) * ph


FIGURE_TITLE_PX = 40  # the figure's own title, above the first row's column titles


@pytest.mark.parametrize("n", [3, 8, 9, 16, 27])
def test_every_title_fits_its_subplot_at_the_pages_width(n):
    titles = page_titles(n)
    img = torch.rand(3, 8, 8)
    rows = [(label, img, [(t, torch.rand(8, 8)) for t in titles]) for label in ("#1 tiny (ResNet)", "#2 plain")]
    fig = depth_strip_figure(rows, alpha=0.5, title="Grad-CAM of class circle, shallow → deep").to_dict()
    notes = fig["layout"]["annotations"]
    images = [t for t in fig["data"] if t["type"] == "image"]
    assert len(notes) == len(images) == 2 * n
    boxes = [cell_box(fig, t["xaxis"], STRIP_WIDTH) for t in images]
    tops = sorted({round(b[1], 3) for b in boxes})
    for note, (left, top, w, h) in zip(notes, boxes):
        lines = note["text"].split("<br>")
        assert " ".join(lines) in titles  # wrapped at spaces, nothing lost
        wide = max(len(line) for line in lines) * CHAR_PX
        tall = len(lines) * LINE_PX
        if note.get("textangle") == -90:  # turned upright: a line wide, the title tall
            wide, tall = tall, wide
        assert wide <= w, (note["text"], w)  # within its own column: never over the next title
        above = FIGURE_TITLE_PX if round(top, 3) == tops[0] else top - max(
            b[1] + b[3] for b in boxes if b[1] < top - 1)  # the figure's title, or the row above
        assert tall <= top - above, (note["text"], top, above)


def test_a_title_that_fits_is_left_as_it_is():
    rows = [("m", torch.rand(3, 8, 8), [("layer1.0 = layer1 · 32×32", torch.rand(8, 8))] * 3)]
    fig = depth_strip_figure(rows, alpha=0.5).to_dict()
    assert [a["text"] for a in fig["layout"]["annotations"]] == ["layer1.0 = layer1 · 32×32"] * 3

from resnet_lab.viz.training import PLAIN_COLOR, RunCurves, curves_figure


def test_curves_figure_overlays_runs_with_train_solid_and_val_dashed():
    a = RunCurves("resnet", {"train/loss": [(10, 0.5, 2.0), (20, 1.0, 1.0)], "val/loss": [(20, 1.0, 1.2)],
                             "val/acc": [(20, 1.0, 0.6)], "lr": [(10, 0.5, 0.1)]})
    b = RunCurves("plain", {"train/loss": [(10, 0.5, 2.1), (20, 1.0, 1.5)]}, plain=True)
    fig = curves_figure([a, b])
    names = [(t.name, t.line.dash) for t in fig.data]
    assert names == [("resnet", "solid"), ("resnet", "dash"), ("resnet", "dash"), ("resnet", "solid"),
                     ("plain", "solid")]
    assert list(fig.data[0].x) == [0.5, 1.0] and list(fig.data[0].y) == [2.0, 1.0]
    assert fig.data[-1].line.color == PLAIN_COLOR
    assert [t.showlegend for t in fig.data] == [True, False, False, False, True]
    assert list(curves_figure([a], x="step").data[0].x) == [10, 20]
    assert fig.layout.yaxis.type == "log"

import contextlib
import io

import pytest

from resnet_lab import PRESETS
from resnet_lab.models.snippet import python_snippet


@pytest.mark.parametrize("spec", [PRESETS["resnet20"], PRESETS["resnet20"].replace(widths=(8, 16, 24), in_channels=1,
                                                                                    num_classes=4, preact=True)])
def test_snippet_runs_and_rebuilds_the_same_spec(spec):
    code = python_snippet(spec)
    scope: dict = {}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(code, "<snippet>", "exec"), scope)
    assert scope["spec"] == spec
    assert scope["model"].spec == spec and scope["twin"].spec == spec.twin()
    assert f"torch.Size([2, {spec.num_classes}])" in out.getvalue()

"""One job card (resnet_lab.ui.job_card.job_card) for every page that shows a job: its progress speaks the job's
unit, and no page draws its own progress bar or works out its own time left."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from resnet_lab.ui.job_card import progress_text

ROOT = Path(__file__).resolve().parents[2]
VIEWS = ["resnet_lab/ui/live.py", "app_pages/degradation.py", "app_pages/landscape.py"]


@pytest.mark.parametrize("progress, total, unit, label, text", [
    (120, 400, "steps", "", "step 120 of 400"),
    (0, None, "steps", "20 layers: ", "20 layers: step 0"),
    (36, 81, "evaluations", "", "36 of 81 evaluations"),
    (5, None, "evaluations", "", "5 evaluations"),
])
def test_the_progress_text_speaks_the_jobs_unit(progress, total, unit, label, text):
    assert progress_text(SimpleNamespace(progress=progress, total=total, unit=unit), label) == text


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_of_a_job_uses_the_one_card(view):
    source = (ROOT / view).read_text()
    assert "job_card(" in source
    assert "st.progress(" not in source and "started_at" not in source  # the card's bar, the forecast's time left

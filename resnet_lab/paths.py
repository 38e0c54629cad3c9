"""Where the lab keeps its files: ``$RESNET_LAB_HOME`` (default ``~/.resnet_lab``)."""

from __future__ import annotations

import os
from pathlib import Path


def lab_home() -> Path:
    """Runs, checkpoints, uploads and data live here; read at call time (tests point it at a temp dir)."""
    return Path(os.environ.get("RESNET_LAB_HOME") or "~/.resnet_lab").expanduser()


def data_root() -> Path:
    """Where dataset files live by default: ``$RESNET_LAB_HOME/data``."""
    return lab_home() / "data"


def run_dir(run_id: int) -> Path:
    """A run's checkpoints and results: ``$RESNET_LAB_HOME/runs/<id>``."""
    return lab_home() / "runs" / str(run_id)


def job_dir(job_id: int) -> Path:
    """A job's worker log: ``$RESNET_LAB_HOME/jobs/<id>``."""
    return lab_home() / "jobs" / str(job_id)

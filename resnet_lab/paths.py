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

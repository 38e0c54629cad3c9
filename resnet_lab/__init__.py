"""ResNet Lab: build ResNet variants and their plain twins, train them, and look inside.

This package never imports streamlit (only ``resnet_lab.ui`` does).
"""

from .models import PRESETS, ResNet, build_model, set_branch, set_skip
from .spec import ModelSpec

__version__ = "0.1.0"

__all__ = ["ModelSpec", "PRESETS", "ResNet", "build_model", "set_skip", "set_branch", "__version__"]

"""ResNet Lab: build ResNet variants and their plain twins, train them, and look inside.

This package never imports streamlit (only ``resnet_lab.ui`` does). Its top-level names are imported when first
used: ``import resnet_lab.jobs.launch`` (a Ray actor that only starts a worker, the command line's ``jobs``) does not
pay for torch.
"""

from typing import Any

__version__ = "0.1.0"

_FROM = {"ModelSpec": ".spec", "PRESETS": ".models", "ResNet": ".models", "build_model": ".models",
         "set_skip": ".models", "set_branch": ".models"}

__all__ = ["ModelSpec", "PRESETS", "ResNet", "build_model", "set_skip", "set_branch", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _FROM:
        import importlib

        value = getattr(importlib.import_module(_FROM[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Analysis of trained (or untrained) models: predictions, feature maps, Grad-CAM and attributions.

Plain Python, no Streamlit. Every function takes a model and a batch of normalized images and leaves
the model unchanged: hooks are scoped to the call and removed in ``finally``.
"""

from .attributions import (
    METHODS,
    Localization,
    RandomizationStep,
    attribute,
    cascading_randomization,
    grad_cam,
    grad_cam_raw,
    localization,
    localization_scores,
)
from .features import activation_stats, feature_maps, map_stats, top_channels
from .points import cam_layers, layer_tree, resolve
from .predict import Evaluation, confusion_matrix, evaluate, predict
from .subject import Subject, from_checkpoint, from_run, from_spec

__all__ = [
    "METHODS", "Evaluation", "Localization", "RandomizationStep", "Subject", "activation_stats", "attribute",
    "cam_layers", "cascading_randomization", "confusion_matrix", "evaluate", "feature_maps", "from_checkpoint",
    "from_run", "from_spec", "grad_cam", "grad_cam_raw", "layer_tree", "localization", "localization_scores",
    "map_stats", "predict", "resolve", "top_channels",
]

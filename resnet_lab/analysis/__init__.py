"""Analysis of trained (or untrained) models: predictions, feature maps, Grad-CAM and attributions.

Plain Python, no Streamlit. Every function takes a model and a batch of normalized images and leaves
the model unchanged: hooks are scoped to the call and removed in ``finally``.
"""

from .attributions import (
    METHODS,
    CamDepth,
    DepthLocalization,
    Localization,
    RandomizationStep,
    attribute,
    cascading_randomization,
    depth_layers,
    grad_cam,
    grad_cam_depth,
    grad_cam_raw,
    localization,
    localization_by_depth,
    localization_scores,
)
from .features import activation_stats, feature_maps, map_stats, top_channels
from .points import cam_layers, layer_tree, resolve
from .predict import Evaluation, confusion_matrix, evaluate, predict
from .subject import Subject, from_checkpoint, from_run, from_spec
from .trust import Curve, Trust, trust

__all__ = [
    "METHODS", "CamDepth", "Curve", "DepthLocalization", "Evaluation", "Localization", "RandomizationStep",
    "Subject", "Trust", "activation_stats", "attribute", "cam_layers", "cascading_randomization",
    "confusion_matrix", "depth_layers", "evaluate", "feature_maps", "from_checkpoint", "from_run", "from_spec",
    "grad_cam", "grad_cam_depth", "grad_cam_raw", "layer_tree", "localization", "localization_by_depth",
    "localization_scores", "map_stats", "predict", "resolve", "top_channels", "trust",
]

"""Loss landscapes: the training loss on 1D and 2D slices through a trained model's weights, and along the line
between two sets of weights. The math only: a model and batches in, a :class:`Surface` or :class:`Interpolation`
out.

One module per concern:

- :mod:`.directions` — random filter-normalized directions (Li et al. 2018, sec. 4), the training path's first
  two PCA directions (sec. 7) and the grid scaled to that path;
- :mod:`.surface` — the settings (:class:`LandscapeParams`), the slice itself (:func:`loss_surface`,
  :class:`Surface`, :class:`TrajectoryPath`), its summary numbers and JSON readers;
- :mod:`.interpolation` — the loss along θ(α) = (1−α)θ_a + αθ_b (Goodfellow et al. 2015), BN statistics
  recomputed at each α;
- :mod:`.cost` — what a slice or an interpolation costs before it starts, and the seeded training batches.

Each module's docstring says where it differs from the paper and its reference code. Queueing a slice as a
background job, keeping its result with the run and saying what it shows in words is
:mod:`resnet_lab.experiments.landscape`. Every public name of the modules is importable from here.
"""

from .cost import Cost, effective_batches, estimate_cost, time_forward, training_batches
from .directions import Direction, filter_normalize, path_axes, random_directions, trajectory_pca
from .interpolation import (BN_MODES, MAX_EXTEND, MAX_RESOLUTION, Interpolation, InterpolationParams, interpolate,
                            interpolation_summary, recompute_bn)
from .surface import (BATCH_SIZE_RANGE, DIRECTIONS, LOSS_FLOOR, MAX_BATCHES, MAX_SPAN, MAX_STEPS, Batch,
                      LandscapeParams, Surface, TrajectoryPath, loss_surface, rise_at_half_span, summary)

__all__ = [
    "BATCH_SIZE_RANGE", "BN_MODES", "Batch", "Cost", "DIRECTIONS", "Direction", "Interpolation",
    "InterpolationParams", "LOSS_FLOOR", "LandscapeParams", "MAX_BATCHES", "MAX_EXTEND", "MAX_RESOLUTION",
    "MAX_SPAN", "MAX_STEPS", "Surface", "TrajectoryPath", "effective_batches", "estimate_cost", "filter_normalize",
    "interpolate", "interpolation_summary", "loss_surface", "path_axes", "random_directions", "recompute_bn",
    "rise_at_half_span", "summary", "time_forward", "training_batches", "trajectory_pca",
]

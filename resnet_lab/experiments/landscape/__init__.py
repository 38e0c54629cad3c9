"""Loss landscapes as experiments: slices and interpolations of a run (and its twin) as background jobs, their
results kept with the run, and what they show in words.

- :mod:`.results` — the result files (write, read, validate) and the landscape jobs that studied a run;
- :mod:`.jobs` — submission (checked now rather than in the worker), the handlers, and the two kinds of job
  :data:`LANDSCAPE_JOB` and :data:`INTERPOLATION_JOB` (listed by the wiring, :mod:`resnet_lab.kinds`);
- :mod:`.report` — the sentences a page or the CLI says about finished slices and interpolations.

The math is :mod:`resnet_lab.analysis.landscape`. Every public name of the three modules is importable from here.
"""

from .jobs import (HOW_TO_KEEP, INTERPOLATION_JOB, LANDSCAPE_JOB, MIN_PATH, STARTS, check_path, initial_source,
                   initial_state, interpolation_starts, kept_steps, landscape_runs, pca_slice_inputs,
                   run_interpolation, run_landscape, same_architecture, study_run, submit_interpolation,
                   submit_landscape)
from .report import SAME_RISE, basin_sentence, interpolation_sentence, path_sentence
from .results import (INTERPOLATION, KIND, MODES, RESULT_VERSION, InterpolationResult, LandscapeResult, concerns,
                      describe_job, interpolation_path, job_mode, job_settings, landscape_jobs, load_interpolation,
                      load_result, result_path, save_interpolation, save_result)

__all__ = [
    "HOW_TO_KEEP", "INTERPOLATION", "INTERPOLATION_JOB", "InterpolationResult", "KIND", "LANDSCAPE_JOB",
    "LandscapeResult", "MIN_PATH", "MODES", "RESULT_VERSION", "SAME_RISE", "STARTS", "basin_sentence", "check_path",
    "concerns", "describe_job", "initial_source", "initial_state", "interpolation_path", "interpolation_sentence",
    "interpolation_starts", "job_mode", "job_settings", "kept_steps", "landscape_jobs", "landscape_runs",
    "load_interpolation", "load_result", "path_sentence", "pca_slice_inputs", "result_path", "run_interpolation",
    "run_landscape", "same_architecture", "save_interpolation", "save_result", "study_run", "submit_interpolation",
    "submit_landscape",
]

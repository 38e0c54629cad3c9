"""Speed on this device: each model preset's training images/s, batch-1 latency and batch-64 images/s, measured by a
short job on the one queue and kept per device (:mod:`.jobs`), with the measurement itself in :mod:`.measure`
(torch and the lab's models only: ``bench/speed.py`` runs it on a bare GPU machine).

Read side for pages and the command line: :func:`measured` ``(store, device) -> {preset: Speed}``; ask for a
measurement with :func:`submit_speed` (None: all cached).
"""

from ...store import Speed
from .jobs import SPEED_JOB, lab_device_name, measure_into, measured, submit_speed
from .measure import (DEFAULT_PLAN, QUICK_PLAN, Plan, Setup, Timing, check_presets, default_presets, measure,
                      measure_preset, setup_for)

__all__ = ["DEFAULT_PLAN", "QUICK_PLAN", "SPEED_JOB", "Plan", "Setup", "Speed", "Timing", "check_presets",
           "default_presets", "lab_device_name", "measure", "measure_into", "measure_preset", "measured", "setup_for",
           "submit_speed"]

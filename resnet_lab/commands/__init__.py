"""The commands of ``python -m resnet_lab``: one module each, every module has ``register(sub)``.

:mod:`.common` holds what several share; :func:`resnet_lab.jobs.follow.follow` is the one loop that
follows background jobs to their end.
"""

COMMANDS = ("models", "train", "datasets", "runs", "inspect", "gradflow", "degradation", "lesion", "landscape",
            "export", "challenge", "store")
"""Modules in the order their commands are listed in ``--help``."""

"""The experiment commands of ``python -m resnet_lab``: one module each, every module has ``register(sub)``."""

EXPERIMENT_COMMANDS = ("gradflow", "degradation", "lesion", "landscape")

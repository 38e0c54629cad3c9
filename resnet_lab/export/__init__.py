"""Take a trained model home: one zip that works without the lab's server, and the run's curves for TensorBoard.

:func:`export_run` (or :func:`export_checkpoint`) packs

- ``model.safetensors``: the checkpoint's weights, byte for byte, with torchvision's parameter names;
- ``manifest.json``: the spec, class names, the input size and normalization the model was trained with, the
  data and training settings, the run (id, name, accuracy) and the versions of resnet_lab, torch and
  torchvision that wrote it, and whether torchvision can hold the same weights (and if not, why not);
- ``resnet_model.py``: the model's definition — the lab's own block and ``ResNet`` classes, copied unchanged,
  with a small ``ModelSpec`` (:mod:`resnet_lab.models.standalone`) — importing only torch;
- ``load_model.py``: rebuilds the model from ``resnet_model.py``, loads the weights with ``strict=True`` and
  classifies image files (``python load_model.py photo.jpg``). Neither file imports ResNet Lab: the zip runs
  wherever torch, safetensors, numpy and Pillow are installed (the README says the one ``pip install``);
- ``load_torchvision.py``, only for specs that torchvision's ``ResNet`` class expresses (the ImageNet stem,
  stage widths 64-128-256-512, projection shortcuts "B", post-activation, BatchNorm, 3 input channels):
  the same file into ``torchvision.models.resnet18(num_classes=...)`` (or ``resnet.ResNet(block, layers)``
  for other depths), strict, needing neither ResNet Lab nor this manifest's spec;
- ``README.txt``: what the files are.

Both snippets prepare an image exactly as the lab does for a trained model (RGB in [0, 1], shorter side
resized to the training size with antialiased bilinear interpolation, centre crop, then ``(x - mean) / std``),
so they give the lab's logits. They read names and numbers from ``manifest.json``; no text a person typed
(run or class names) is ever written into code.

:func:`write_tensorboard` writes a run's logged metrics (with their steps), its gradient norms and its
settings as TensorBoard event files; ``tensorboard`` is an optional extra (``make tensorboard``).

The package, one concern a module (every public name is importable from ``resnet_lab.export``):
:mod:`.bundle` builds and saves the zip, :mod:`.manifest` holds the file names, the manifest and the
torchvision match, :mod:`.snippets` writes the generated files, :mod:`.tensorboard` the event files.
"""

from .bundle import (EXPORTABLE_STATUSES, Export, ExportError, export_checkpoint, export_run, exportable_checkpoint,
                     write_atomic, zip_name)
from .manifest import (EXPORT_FORMAT, EXPORT_VERSION, LAB_NEEDS, LAB_SNIPPET, MANIFEST, MODEL_MODULE, README,
                       TORCHVISION_NAMED, TORCHVISION_SNIPPET, TORCHVISION_WIDTHS, WEIGHTS, TorchvisionMatch,
                       build_manifest, torchvision_match)
from .snippets import lab_snippet, model_module, readme, torchvision_snippet
from .tensorboard import TENSORBOARD_HINT, TensorBoardExport, TensorBoardMissing, write_tensorboard

__all__ = [
    "EXPORTABLE_STATUSES", "EXPORT_FORMAT", "EXPORT_VERSION", "LAB_NEEDS", "LAB_SNIPPET", "MANIFEST", "MODEL_MODULE",
    "README", "TENSORBOARD_HINT", "TORCHVISION_NAMED", "TORCHVISION_SNIPPET", "TORCHVISION_WIDTHS", "WEIGHTS",
    "Export", "ExportError", "TensorBoardExport", "TensorBoardMissing", "TorchvisionMatch", "build_manifest",
    "export_checkpoint", "export_run", "exportable_checkpoint", "lab_snippet", "model_module", "readme",
    "torchvision_match", "torchvision_snippet", "write_atomic", "write_tensorboard", "zip_name",
]

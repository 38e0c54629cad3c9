"""ImageNet weights through torchvision's own weights API and cache (``$TORCH_HOME/hub/checkpoints``).

torchvision names each weights file after its URL (``resnet18-f37072fd.pth``) and looks for it in
``torch.hub.get_dir()/checkpoints``. We read the file there with ``torch.load(weights_only=True)``; loading
never downloads. The lab's one download door puts it there, verified against the hash in its name
(:mod:`resnet_lab.data.fetch`: ``weights get resnet18``, or Get it on the Fine-tune page); without it the error
names the file, the folder to put it in, and how to get it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision.models as tvm
from torch import nn

from .presets import PRESETS
from .resnet import ResNet

IMAGENET_WEIGHTS = {
    "resnet18": tvm.ResNet18_Weights.IMAGENET1K_V1,
    "resnet34": tvm.ResNet34_Weights.IMAGENET1K_V1,
    "resnet50": tvm.ResNet50_Weights.IMAGENET1K_V1,
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsMissing(ValueError):
    """The ImageNet weights file is not in torchvision's cache and could not be downloaded."""


@dataclass(frozen=True)
class Pretrained:
    model: ResNet  # our ResNet with torchvision's ImageNet weights, in eval mode
    categories: tuple[str, ...]  # the 1000 ImageNet class names, from the weights' metadata
    mean: tuple[float, ...]  # normalization the weights were trained with
    std: tuple[float, ...]
    path: Path  # the weights file that was read


def weights_path(name: str) -> Path:
    """Where torchvision keeps (or would download) the ImageNet weights of ``name``."""
    w = _weights(name)
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(w.url).path)


def _weights(name: str):
    if name not in IMAGENET_WEIGHTS:
        raise ValueError(f"no ImageNet weights for {name!r}; available: {', '.join(IMAGENET_WEIGHTS)}")
    return IMAGENET_WEIGHTS[name]


def load_imagenet(name: str) -> Pretrained:
    """Our ``name`` model with torchvision's ImageNet weights (strict), from torchvision's cache."""
    w = _weights(name)
    path = weights_path(name)
    if not path.is_file():
        raise WeightsMissing(_missing(name, path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsMissing(f"{path} could not be read as a weights file ({type(e).__name__}: {e}); "
                             f"delete it and put the official {path.name} there") from None
    model = ResNet(PRESETS[name])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise WeightsMissing(f"{path} does not hold {name} weights: {str(e).splitlines()[0]}") from None
    return Pretrained(model=model.eval(), categories=tuple(w.meta["categories"]), mean=IMAGENET_MEAN,
                      std=IMAGENET_STD, path=path)


def _missing(name: str, path: Path) -> str:
    return (f"The ImageNet weights for {name} are not on this machine. Get them with `python -m resnet_lab weights "
            f"get {name}` (or Get it on the Fine-tune page), or put the file {path.name} (from {_weights(name).url}) "
            f"in {path.parent}{os.sep} — that is $TORCH_HOME/hub/checkpoints, torchvision's own cache — and try "
            "again.")


def imagenet_preprocess(image: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """torchvision's ImageNet eval transform on a 3×H×W [0, 1] tensor: resize 256, center-crop 224, normalize."""
    from torchvision.transforms import functional as TF

    x = TF.resize(image, 256, antialias=True)
    x = TF.center_crop(x, 224)
    return TF.normalize(x, mean, std)


@torch.no_grad()
def top_k(model: nn.Module, image: torch.Tensor, categories: tuple[str, ...], k: int = 5,
          ) -> list[tuple[str, float]]:
    """The ``k`` most probable ImageNet classes of one image (3×H×W in [0, 1]) with their probabilities."""
    model.eval()
    probs = model(imagenet_preprocess(image).unsqueeze(0)).softmax(1)[0]
    p, i = probs.topk(k)
    return [(categories[j], float(q)) for q, j in zip(p.tolist(), i.tolist())]

"""The files a take-home zip carries beside the weights and the manifest, as text: ``resnet_model.py``
(:func:`model_module`), ``load_model.py`` (:func:`lab_snippet`), ``load_torchvision.py``
(:func:`torchvision_snippet`, only where torchvision can hold the weights) and ``README.txt`` (:func:`readme`).
Both snippets prepare an image exactly as the lab does and read names and numbers from ``manifest.json``: no
text a person typed is ever written into code."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..models.standalone import module_source, spec_literal
from ..spec import ModelSpec
from .manifest import LAB_NEEDS, LAB_SNIPPET, MANIFEST, MODEL_MODULE, TORCHVISION_SNIPPET, WEIGHTS, TorchvisionMatch

_HEAD = '''import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from safetensors.torch import load_file
'''

_PREPROCESS = '''
HERE = Path(__file__).resolve().parent
MANIFEST = json.loads((HERE / "manifest.json").read_text(encoding="utf-8"))
SIZE = MANIFEST["input"]["size"]
MEAN = torch.tensor(MANIFEST["input"]["normalization"]["mean"]).view(-1, 1, 1)
STD = torch.tensor(MANIFEST["input"]["normalization"]["std"]).view(-1, 1, 1)


def load_image(path) -> torch.Tensor:
    """An image file -> the tensor the model takes, prepared as ResNet Lab prepares a photo: upright RGB in
    [0, 1] (transparency over white; a large JPEG decoded at a reduced scale, a large image first box-averaged
    by a whole factor), shorter side resized to SIZE (bilinear, antialiased), centre crop, (x - mean) / std."""
    with Image.open(path) as im:
        if im.format in ("JPEG", "MPO"):
            im.draft(None, (SIZE, SIZE))
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.has_transparency_data:
            rgba = im.convert("RGBA")
            im = Image.new("RGB", rgba.size, (255, 255, 255))
            im.paste(rgba, mask=rgba)
        im = im.convert("RGB")
        if min(im.size) // SIZE >= 2:
            im = im.reduce(min(im.size) // SIZE)
        x = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1) / 255.0
    h, w = x.shape[1:]
    nh, nw = max(SIZE, round(h * SIZE / min(h, w))), max(SIZE, round(w * SIZE / min(h, w)))
    if (nh, nw) != (h, w):
        x = F.interpolate(x[None], size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)[0]
    top, left = (nh - SIZE) // 2, (nw - SIZE) // 2
    x = x[:, top:top + SIZE, left:left + SIZE].clamp(0.0, 1.0)
'''

_GREY = '''    x = (x * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0, keepdim=True)  # grey, as Pillow's "L"
'''
_INK = '''    if x.mean() > 0.5:  # trained on bright strokes on black: dark ink on white paper is inverted
        x = 1.0 - x
'''

_NORMALIZE = '''    return (x - MEAN) / STD
'''

_MAIN = '''

def main(args: list[str]) -> None:
    """Print the top classes of each image file (one JSON line each with --json, logits included)."""
    as_json = "--json" in args
    paths = [a for a in args if a != "--json"]
    model = load_model()
    names = MANIFEST["class_names"]
    if not paths:
        n = sum(p.numel() for p in model.parameters())
        print(f"{MANIFEST['model']['describe']}: {n:,} parameters loaded (strict). "
              f"Classify images with: python {Path(__file__).name} photo.jpg [--json]")
        return
    with torch.no_grad():
        logits = model(torch.stack([load_image(p) for p in paths]))
    for path, row in zip(paths, logits):
        probs = row.softmax(0)
        top = probs.topk(min(3, len(names)))
        best = [(names[i], float(p)) for p, i in zip(top.values, top.indices)]
        if as_json:
            print(json.dumps({"image": path, "logits": row.tolist(), "top": best}))
        else:
            print(f"{path}: " + ", ".join(f"{name} {p:.1%}" for name, p in best))


if __name__ == "__main__":
    main(sys.argv[1:])
'''


def _preprocess(spec: ModelSpec, manifest: Mapping[str, Any]) -> str:
    code = _PREPROCESS
    if spec.in_channels == 1:
        code += _GREY
        if manifest["input"]["ink_on_dark"]:
            code += _INK
    return code + _NORMALIZE


def _docstring(title: str, script: str, needs: str) -> str:
    return (f'"""{title}\n\n'
            f"    python {script}                    # load the weights (strict) and say so\n"
            f"    python {script} photo.jpg [--json]  # the top classes of each image\n\n"
            f"Needs {needs}.\nThe input size, normalization and class names come from manifest.json.\n"
            '"""\n\n')


def _subject(manifest: Mapping[str, Any]) -> str:
    run = manifest["run"]["id"]
    return f"run {run} of ResNet Lab" if run is not None else "a ResNet Lab model"


def model_module(manifest: Mapping[str, Any]) -> str:
    """``resnet_model.py``: the model's definition, self-contained (torch only, no ResNet Lab)."""
    return module_source(f"The network of {_subject(manifest)}, as ResNet Lab builds it (no ResNet Lab needed).")


def lab_snippet(spec: ModelSpec, manifest: Mapping[str, Any]) -> str:
    """``load_model.py``: rebuilds the model from ``resnet_model.py`` (next to it) and loads the weights strictly."""
    load = '''

def load_model() -> torch.nn.Module:
    """The trained model: rebuilt from SPEC, every weight loaded (strict=True: none missing, none left over)."""
    model = ResNet(SPEC)
    model.load_state_dict(load_file(HERE / "model.safetensors"), strict=True)
    return model.eval()
'''
    return (_docstring(f"Rebuild {_subject(manifest)} ({spec.describe()}) and classify images.", LAB_SNIPPET,
                       f"{_needs(LAB_NEEDS)}; not ResNet Lab ({MODEL_MODULE} defines the network)")
            + _HEAD + f"\nfrom resnet_model import ModelSpec, ResNet\n\nSPEC = {spec_literal(spec)}\n"
            + _preprocess(spec, manifest) + load + _MAIN)


def _needs(packages: Sequence[str]) -> str:
    return ", ".join(packages[:-1]) + " and " + packages[-1]


def torchvision_snippet(tv: TorchvisionMatch, manifest: Mapping[str, Any]) -> str:
    """``load_torchvision.py``: the same weights into torchvision's own ResNet, no ResNet Lab needed."""
    spec = ModelSpec.from_dict(manifest["model"]["spec"])
    load = f'''

def load_model() -> torch.nn.Module:
    """torchvision's own ResNet with the trained weights (strict=True: the parameter names are torchvision's)."""
    model = {tv.call}
    model.load_state_dict(load_file(HERE / "model.safetensors"), strict=True)
    return model.eval()
'''
    return (_docstring(f"Load {_subject(manifest)} into torchvision's own ResNet — no ResNet Lab needed.",
                       TORCHVISION_SNIPPET, "torch, torchvision, safetensors, numpy and Pillow")
            + _HEAD + "import torchvision\n" + _preprocess(spec, manifest) + load + _MAIN)


def readme(manifest: Mapping[str, Any], tv: TorchvisionMatch) -> str:
    run = manifest["run"]
    acc = manifest["accuracy"]["best_val_acc"]
    lines = [f"ResNet Lab export: run {run['id']} \"{run['name']}\" — {manifest['model']['describe']}",
             f"{manifest['model']['params']:,} parameters, {len(manifest['class_names'])} classes, "
             f"{manifest['input']['size']}×{manifest['input']['size']} px input"
             + (f", best validation accuracy {acc:.1%}" if acc is not None else ""),
             "",
             f"{WEIGHTS}  the weights (safetensors; parameter names as torchvision's)",
             f"{MANIFEST}      spec, class names, input size and normalization, data and training settings, versions",
             f"{MODEL_MODULE}    the network's definition (torch only): from resnet_model import ModelSpec, ResNet",
             f"{LAB_SNIPPET}      python {LAB_SNIPPET} photo.jpg   (the top classes; --json for the logits)"]
    if tv.ok:
        lines.append(f"{TORCHVISION_SNIPPET} python {TORCHVISION_SNIPPET} photo.jpg   ({tv.call}; no ResNet Lab)")
    lines += ["", "To run it, ResNet Lab is not needed: in this folder,",
              f"    pip install {' '.join(LAB_NEEDS + (('torchvision',) if tv.ok else ()))}",
              f"    python {LAB_SNIPPET} photo.jpg"]
    if not tv.ok:
        lines += ["", "No torchvision version: " + "; ".join(tv.reasons) + "."]
    return "\n".join(lines) + "\n"

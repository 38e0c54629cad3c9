"""`gradcam`, `localize` and `explain-quality`: explain a run's prediction on one image (beside its twin), score
how well the explanation finds the object on shapes' masks, and measure how far each method's maps can be
trusted (deletion / insertion areas, infidelity) and at which depth Grad-CAM finds the object best."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import add_count, add_run, add_twin, class_index, run_subjects, write_png_atomic


def register(sub: argparse._SubParsersAction) -> None:
    from ..analysis import METHODS

    gc = sub.add_parser("gradcam", help="Grad-CAM (or another attribution) of a run on one image, as a PNG overlay")
    add_run(gc, help="a finished run's id")
    gc.add_argument("--image", required=True, metavar="FILE", help="JPEG, PNG, GIF, BMP, WEBP or TIFF")
    gc.add_argument("--layer", help="stage or block, e.g. layer3 or layer3.1 (default: the deepest stage)")
    gc.add_argument("--target", metavar="C",
                    help="class index (an integer) or class name (default: the predicted class)")
    gc.add_argument("--method", default="gradcam", choices=list(METHODS),
                    help="attribution method (default gradcam)")
    gc.add_argument("--alpha", type=float, default=0.5, help="heat map opacity in [0, 1] (default 0.5)")
    add_twin(gc, help="put the run's twin (plain <-> ResNet) beside it, explaining the same class")
    gc.add_argument("--out", required=True, metavar="FILE.png", help="where to write the PNG (folder must exist)")
    gc.set_defaults(func=cmd_gradcam)

    lo = sub.add_parser("localize", help="how well Grad-CAM (or another method) finds the object, on shapes' masks")
    add_run(lo, help="a finished run trained on shapes")
    add_twin(lo, help="score the run's twin too")
    add_count(lo, 512, help="validation images scored (default 512)")
    lo.add_argument("--layer", help="stage or block (default: the deepest stage)")
    lo.add_argument("--method", default="gradcam", choices=list(METHODS), help="attribution method")
    lo.add_argument("--json", action="store_true", help="JSON output")
    lo.set_defaults(func=cmd_localize)

    eq = sub.add_parser("explain-quality",
                        help="can each attribution method be trusted? deletion/insertion areas, infidelity, and the "
                             "depth where Grad-CAM finds the object best (shapes)")
    add_run(eq, help="a finished run's id")
    add_twin(eq, help="measure the run's twin too, on the same images")
    add_count(eq, 32, old=["--images"],
              help="validation images for the deletion/insertion curves and infidelity (default 32)")
    eq.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS), metavar="METHOD",
                    help=f"attribution methods (default all: {' '.join(METHODS)})")
    eq.add_argument("--layer", help="where Grad-CAM and Guided Grad-CAM read (default: the deepest stage)")
    eq.add_argument("--steps", type=int, default=32, help="pixel groups per deletion/insertion curve (default 32)")
    eq.add_argument("--depth-images", type=int, default=256, metavar="N",
                    help="validation images for localization by depth, on shapes (default 256)")
    eq.add_argument("--json", action="store_true", help="one JSON object")
    eq.set_defaults(func=cmd_explain_quality)


def cmd_gradcam(args: argparse.Namespace) -> int:
    from PIL import Image

    from ..analysis import METHODS, attribute, cam_layers, predict
    from ..analysis.attributions import LAYER_METHODS
    from ..data.images import ImageRejected
    from ..viz.inspect import overlay

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out must name a .png file, got {args.out!r}")
    if not out.parent.is_dir():
        raise ValueError(f"the folder {str(out.parent)!r} does not exist; create it first")
    if out.is_dir():
        raise ValueError(f"--out {args.out!r} is a folder; give a file name ending in .png")
    if not 0.0 <= args.alpha <= 1.0:
        raise ValueError(f"--alpha must be in [0, 1], got {args.alpha}")
    runs, subjects = run_subjects(args.run, args.twin)
    main = subjects[0]
    layers = cam_layers(main.model)
    layer = args.layer or layers[0]
    for s in subjects:
        valid = cam_layers(s.model)
        if layer not in valid:
            raise ValueError(f"unknown layer {layer!r} for run {s.run_id}; valid layers: {', '.join(valid)}")
    if args.twin and subjects[1].class_names != main.class_names:
        raise ValueError(f"runs {runs[0].id} and {runs[1].id} have different classes; cannot compare them")
    images = []
    for s in subjects:
        try:
            images.append(s.load_image(Path(args.image)))
        except ImageRejected as e:
            raise ValueError(f"image {args.image!r} refused: {e}") from None
    target = None if args.target is None else class_index(args.target, main.class_names)
    rows, tiles = [], []
    for s, image in zip(subjects, images):
        x = s.normalize(image[None])
        probs, classes = predict(s.model, x, k=1)
        pred, prob = int(classes[0, 0]), float(probs[0, 0])
        if target is None:
            target = pred  # the main model's prediction; the twin is asked about the same class
        heat = attribute(s.model, x, target, args.method, layer)[0].cpu()
        tiles.append(overlay(image, heat, args.alpha, size=256))
        rows.append({"run": s.run_id, "label": s.label, "layer": layer if args.method in LAYER_METHODS else None,
                     "method": args.method, "method_label": METHODS[args.method],
                     "target": {"index": target, "name": s.class_name(target)},
                     "prediction": {"index": pred, "name": s.class_name(pred), "probability": prob}})
    canvas = Image.new("RGB", (sum(t.width for t in tiles), max(t.height for t in tiles)))
    left = 0
    for t in tiles:
        canvas.paste(t, (left, 0))
        left += t.width
    write_png_atomic(canvas, out)
    result = {**rows[0], "out": str(out), "size": list(canvas.size)}
    if args.twin:
        result["twin"] = rows[1]
    print(json.dumps(result, indent=2))
    return 0


def cmd_localize(args: argparse.Namespace) -> int:
    from ..analysis import METHODS, cam_layers, localization
    from ..analysis.attributions import LAYER_METHODS
    from ..data.registry import load_dataset

    runs, subjects = run_subjects(args.run, args.twin)
    main = subjects[0]
    if main.data is None:
        raise ValueError(f"run {main.run_id}'s checkpoint does not say which data it was trained on")
    data = load_dataset(main.data)
    if data.mask_val is None:
        raise ValueError(f"{main.data.name} has no object masks; localization needs a dataset with masks (shapes)")
    n = min(args.n, len(data.y_val))
    if n < 1:
        raise ValueError("--n must be at least 1")
    layer = args.layer or cam_layers(main.model)[0]
    rows = []
    for s in subjects:
        if layer not in cam_layers(s.model):
            raise ValueError(f"unknown layer {layer!r} for run {s.run_id}; valid layers: {', '.join(cam_layers(s.model))}")
        loc = localization(s.model, s.normalize(data.x_val[:n]), data.mask_val[:n], target=data.y_val[:n],
                           layer=layer, method=args.method)
        rows.append({"run": s.run_id, "label": s.label, **loc.as_dict()})
    result = {"layer": layer, "method": args.method, "target": "true class", "n": n, "models": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    where = f" at {layer}" if args.method in LAYER_METHODS else ""
    print(f"{METHODS[args.method]}{where}, true class, {n} validation images of {main.data.name}")
    print(f"{'model':40s} {'energy in mask':>15s} {'pointing hits':>14s}")
    for r in rows:
        print(f"{r['label'][:40]:40s} {r['energy']:15.1%} {r['pointing']:14.1%}")
    print(f"{'a uniform map':40s} {rows[0]['baseline']:15.1%}")
    return 0


def cmd_explain_quality(args: argparse.Namespace) -> int:
    from ..analysis import cam_layers, localization_by_depth, trust
    from ..analysis.trust import NOISE, SAMPLES
    from ..data.registry import load_dataset

    if args.n < 1:
        raise ValueError("--n must be at least 1")
    if args.steps < 1:
        raise ValueError("--steps must be at least 1")
    if args.depth_images < 1:
        raise ValueError("--depth-images must be at least 1")
    methods = tuple(dict.fromkeys(args.methods))
    runs, subjects = run_subjects(args.run, args.twin)
    main = subjects[0]
    if main.data is None:
        raise ValueError(f"run {main.run_id}'s checkpoint does not say which data it was trained on")
    if args.twin and subjects[1].class_names != main.class_names:
        raise ValueError(f"runs {runs[0].id} and {runs[1].id} have different classes; cannot compare them")
    data = load_dataset(main.data)
    layer = args.layer or cam_layers(main.model)[0]
    for s in subjects:
        if layer not in cam_layers(s.model):
            valid = ", ".join(cam_layers(s.model))
            raise ValueError(f"unknown layer {layer!r} for run {s.run_id}; valid layers: {valid}")
    n = min(args.n, len(data.y_val))
    nd = min(args.depth_images, len(data.y_val))
    masks = data.mask_val
    models = []
    for s in subjects:
        report = trust(s.model, s.normalize(data.x_val[:n]), data.y_val[:n], methods, layer,
                       masks=None if masks is None else masks[:n], steps=args.steps)
        depth = None
        if masks is not None:
            depth = localization_by_depth(s.model, s.normalize(data.x_val[:nd]), masks[:nd], data.y_val[:nd]).as_dict()
        models.append({"run": s.run_id, "label": s.label,
                       "methods": [t.as_dict() for t in report if t.method in methods],
                       "references": [t.as_dict() for t in report if t.method not in methods],
                       "depth": depth})
    result = {"data": main.data.name, "images": n, "target": "true class", "layer": layer, "steps": args.steps,
              "deletion": "pixels replaced by the dataset mean, most important first",
              "insertion": "pixels put back into the blurred image (sigma = 1/8 of the side), most important first",
              "infidelity": {"perturbation": "gaussian", "sigma": NOISE, "samples": SAMPLES, "normalize": True},
              "depth_images": nd if masks is not None else None, "models": models}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{n} validation images of {main.data.name}, true class; Grad-CAM reads {layer}; "
          f"{args.steps} steps per curve")
    print("deletion area: lower is better; insertion area: higher is better; infidelity: lower is better")
    for m in models:
        print(f"\n{m['label']}")
        print(f"  {'method':28s} {'deletion':>9s} {'insertion':>9s} {'infidelity':>11s}")
        for r in m["methods"] + m["references"]:
            inf = "" if r["infidelity"] is None else f"{r['infidelity']:11.4g}"
            print(f"  {r['label'][:28]:28s} {r['deletion_auc']:9.3f} {r['insertion_auc']:9.3f} {inf}")
        if m["depth"] is not None:
            d = m["depth"]
            print(f"  Grad-CAM localises best at {d['best_layer']}: energy {d['best_energy']:.1%}, pointing game "
                  f"{d['best_pointing']:.1%} ({d['n']} images; a uniform map: {d['baseline']:.1%})")
    return 0

"""`export` and `export-tensorboard`: take a finished run home as a zip, or its curves to TensorBoard."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import add_run
from ..export import TORCHVISION_SNIPPET, TensorBoardMissing, export_run, write_atomic, write_tensorboard


def register(sub: argparse._SubParsersAction) -> None:
    ex = sub.add_parser("export", help="zip a finished run: weights (safetensors), manifest and loading code",
                        description="Write OUT.zip with the run's weights (model.safetensors), manifest.json (spec, "
                        "classes, input size and normalization, settings, accuracy, versions) and load_model.py; "
                        f"plus {TORCHVISION_SNIPPET} when torchvision's ResNet can hold the weights.")
    add_run(ex, help="a finished run's id (see `runs`)", old_positional=True)
    ex.add_argument("out", type=Path, help="the zip file to write, e.g. my_model.zip")
    ex.add_argument("--force", action="store_true", help="replace OUT if it exists")
    ex.add_argument("--json", action="store_true", help="print the manifest as JSON")
    ex.set_defaults(func=cmd_export)

    tb = sub.add_parser("export-tensorboard", help="write a run's metrics and settings as TensorBoard event files",
                        description="Every logged metric at its step, the gradient norms and the settings (as text "
                        "and HParams) in DIR; view with `tensorboard --logdir DIR`. Needs the optional tensorboard "
                        "package (`make tensorboard`).")
    add_run(tb, help="a run's id (see `runs`)", old_positional=True)
    tb.add_argument("dir", type=Path, help="a new (or empty) folder for the event files")
    tb.add_argument("--json", action="store_true", help="JSON output")
    tb.set_defaults(func=cmd_tensorboard)


def cmd_export(args: argparse.Namespace) -> int:
    export = export_run(args.run)
    out = write_atomic(export.data, args.out, overwrite=args.force)
    if args.json:
        print(json.dumps({"out": str(out), "bytes": len(export.data), "manifest": export.manifest}, indent=2))
        return 0
    tv = export.manifest["torchvision"]
    print(f"run {args.run}: wrote {out} ({len(export.data):,} bytes): {', '.join(export.files)}")
    print("  unzip it and run: python load_model.py photo.jpg")
    print(f"  torchvision: {tv['call']} ({TORCHVISION_SNIPPET})" if tv["loadable"] else
          f"  no torchvision version: {'; '.join(tv['why'])}")
    return 0


def cmd_tensorboard(args: argparse.Namespace) -> int:
    from ..store import Store

    store = Store()
    try:
        run = store.runs.get(args.run)
        metrics = store.runs.metrics(args.run)
        grads = store.runs.grad_norms(args.run)
    finally:
        store.close()
    try:
        done = write_tensorboard(run, metrics, args.dir, grad_norms=grads if grads[0] and grads[1] else None)
    except TensorBoardMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"dir": str(done.directory), "event_files": [str(p) for p in done.event_files],
                          "scalars": done.scalars, "texts": list(done.texts)}, indent=2))
        return 0
    points = sum(done.scalars.values())
    print(f"run {args.run}: {points:,} points of {len(done.scalars)} scalars and {len(done.texts)} settings texts "
          f"in {done.directory}")
    print(f"  view them: tensorboard --logdir {done.directory}")
    return 0

"""`datasets` and `import-dataset`: your own images as a dataset (a zip of class folders), through the
safe archive door, with the one thing the lab cannot guess asked for: whether a mirror image keeps its label."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    ls = sub.add_parser("datasets", help="list your imported datasets (folder:NAME) with their classes and sizes")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_datasets)

    im = sub.add_parser("import-dataset", help="import a zip of class folders as folder:NAME",
                        description="Import a zip with one folder per class. Say whether a horizontal flip keeps "
                                    "an image's label (cats: yes; letters or arrows: no) — the lab cannot guess it, "
                                    "and training augments with flips only when it does.")
    im.add_argument("zip", help="the zip file")
    im.add_argument("--name", required=True, help="lower-case letters, digits, - and _ (up to 40)")
    flip = im.add_mutually_exclusive_group(required=True)
    flip.add_argument("--flips-keep-label", dest="hflip", action="store_true",
                      help="a mirror image is the same class (photos of objects, animals, scenes)")
    flip.add_argument("--no-flips", dest="hflip", action="store_false",
                      help="a mirror image may be another class (letters, digits, arrows, left/right)")
    im.add_argument("--json", action="store_true")
    im.set_defaults(func=cmd_import)


def cmd_datasets(args: argparse.Namespace) -> int:
    from ..data.folders import dataset_meta, list_user_datasets
    from ..data.registry import dataset_info

    rows = []
    for name in list_user_datasets():
        info = dataset_info(f"folder:{name}")
        rows.append({"name": f"folder:{name}", "classes": info.num_classes, "native_size": info.native_size,
                     "hflip": dataset_meta(name)["hflip"], "description": info.description})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['name']:<30} {r['classes']} classes, images ~{r['native_size']} px, "
                  f"flips {'keep' if r['hflip'] else 'may change'} the label")
        if not rows:
            print("no imported datasets yet: python -m resnet_lab import-dataset ZIP --name NAME --no-flips")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from ..classroom.bounds import Bounds
    from ..classroom.uploads import import_dataset
    from ..data.archives import ArchiveRejected
    from ..data.zip_import import DatasetRejected
    from ..identity import MACHINE
    from ..store import Store

    store = Store()
    try:  # the CLI is the machine's owner (not capped)
        report = import_dataset(args.zip, args.name, owner=MACHINE, bounds=Bounds(), hflip=args.hflip, store=store)
    except DatasetRejected as e:
        raise ValueError(f"{args.name} was not imported: {e}") from None
    except ArchiveRejected as e:
        raise ValueError(f"that archive was not imported: {e}") from None
    finally:
        store.close()
    out = {**report.to_dict(), "name": f"folder:{args.name}", "hflip": args.hflip}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"imported folder:{args.name}: {report.num_images} images in {len(report.class_names)} classes "
              f"(~{report.native_size} px), flips {'keep' if args.hflip else 'may change'} the label")
        for w in report.warnings:
            print(f"  ! {w}")
    return 0

"""`datasets` (list, get), `weights` (list, get) and `import-dataset`: the catalogue's datasets and ImageNet weights
fetched by a download job (verified, resumable, one per file for the whole lab), and your own images as a
dataset (a zip of class folders) through the safe archive door, with the one thing the lab cannot guess asked
for: whether a mirror image keeps its label."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    ds = sub.add_parser("datasets", help="datasets: the catalogue's (present or missing) and yours; `get` fetches",
                        description="Without a subcommand: the same as `datasets list`.")
    ds.add_argument("--json", action="store_true")
    ds.set_defaults(func=cmd_list, kind="dataset")
    ds_sub = ds.add_subparsers(dest="action", metavar="{list,get}")
    ls = ds_sub.add_parser("list", help="every dataset the lab can fetch (present or missing, size, source) and "
                                        "your imported ones (folder:NAME)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list, kind="dataset")
    get = ds_sub.add_parser("get", help="download datasets (verified against the publisher's checksum, resumable)")
    get.add_argument("names", nargs="+", metavar="NAME", help="cifar10, cifar100, mnist, fashion_mnist, svhn, "
                                                               "imagenette")
    _get_options(get)
    get.set_defaults(func=cmd_get, kind="dataset")

    w = sub.add_parser("weights", help="torchvision's ImageNet weights: list them, or `get` one",
                       description="Without a subcommand: the same as `weights list`.")
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=cmd_list, kind="weights")
    w_sub = w.add_subparsers(dest="action", metavar="{list,get}")
    wl = w_sub.add_parser("list", help="the ImageNet weights the lab can fetch, present or missing")
    wl.add_argument("--json", action="store_true")
    wl.set_defaults(func=cmd_list, kind="weights")
    wg = w_sub.add_parser("get", help="download ImageNet weights for fine-tuning (resnet18, resnet34, resnet50)")
    wg.add_argument("names", nargs="+", metavar="MODEL", help="resnet18, resnet34 or resnet50")
    wg.add_argument("--v2", action="store_true", help="torchvision's V2 weights (resnet50: 80.9%% top-1 instead "
                                                      "of 76.1%%)")
    _get_options(wg)
    wg.set_defaults(func=cmd_get, kind="weights")

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


def _get_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mirror", metavar="URL", help="a base URL serving the same file names (a university's own "
                                                   "copy), tried first; default $RESNET_LAB_MIRROR")
    p.add_argument("--detach", action="store_true", help="queue the downloads and return at once")
    p.add_argument("--json", action="store_true")


def _imported_rows() -> list[dict[str, Any]]:
    from ..data.folders import dataset_meta, list_user_datasets
    from ..data.registry import dataset_info

    rows = []
    for name in list_user_datasets():
        info = dataset_info(f"folder:{name}")
        rows.append({"name": f"folder:{name}", "kind": "imported", "present": True, "classes": info.num_classes,
                     "native_size": info.native_size, "hflip": dataset_meta(name)["hflip"],
                     "description": info.description})
    return rows


def cmd_list(args: argparse.Namespace) -> int:
    from ..data import catalogue
    from ..downloads import status_rows
    from ..store import Store

    store = Store()
    try:
        rows = [{**w.to_dict(), "licence": catalogue.entry(w.name).licence}
                for w in status_rows(store) if w.kind == args.kind]
    finally:
        store.close()
    if args.kind == "dataset":
        rows += _imported_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        if r["kind"] == "imported":
            print(f"{r['name']:<22} present  yours: {r['classes']} classes, images ~{r['native_size']} px, "
                  f"flips {'keep' if r['hflip'] else 'may change'} the label")
            continue
        job = r["job"]
        state = "present" if r["present"] else (f"job {job['id']} {job['status']}" if job and job["status"] in
                                                ("queued", "running") else "missing")
        print(f"{r['name']:<22} {state:<8} {r['size']:>9}  {r['title']} from {r['source']} ({r['licence']})")
    if args.kind == "dataset" and not any(r["kind"] == "imported" for r in rows):
        print("your own images: python -m resnet_lab import-dataset ZIP --name NAME --no-flips")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    from ..data import catalogue
    from ..downloads import DownloadRefused, submit_download
    from ..fmt import format_bytes
    from ..identity import MACHINE
    from ..jobs.follow import follow
    from ..store import Store

    names = [f"{n}_v2" if getattr(args, "v2", False) else n for n in args.names]
    for n in names:
        entry = catalogue.entry(n)  # ValueError naming the known ones
        if entry.kind != args.kind:
            other = "weights get" if entry.kind == "weights" else "datasets get"
            raise ValueError(f"{n} is {'a weights file' if entry.kind == 'weights' else 'a dataset'}: "
                             f"use `{other} {n}`")
    store = Store()
    try:
        try:  # the command line acts as the machine's owner (a teacher): it may start downloads
            ids = {n: submit_download(store, n, MACHINE, mirror=args.mirror) for n in names}
        except DownloadRefused as e:
            raise ValueError(str(e)) from None
        queued = [j for j in ids.values() if j is not None]
        if queued and not args.detach:
            def report(jobs: list[Any]) -> None:
                for j in jobs:
                    if j.active:
                        print(f"job {j.id} {j.name}: {format_bytes(j.progress)} of "
                              f"{format_bytes(j.total or 0)}", file=sys.stderr, flush=True)

            follow(store, queued, report=report, report_every_s=2.0)
        rows = []
        for n, job_id in ids.items():
            job = store.jobs.get(job_id) if job_id is not None else None
            rows.append({"name": n, "present": catalogue.present(n), "job": job_id,
                         "status": job.status if job is not None else "present", "error": job.error if job else None,
                         "folder": str(catalogue.entry(n).folder())})
    finally:
        store.close()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            what = f"job {r['job']} {r['status']}" if r["job"] is not None else "already here"
            print(f"{r['name']}: {what}" + (f" — {r['error']}" if r["error"] else "") + f" ({r['folder']})")
    return 0 if all(r["present"] or (args.detach and r["status"] in ("queued", "running")) for r in rows) else 1


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

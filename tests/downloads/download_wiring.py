"""The lab's kinds of job for a worker process that downloads from a test's local server: the catalogue entries named
in the JSON file ``$RESNET_LAB_TEST_CATALOGUE`` (name -> its files' names, sizes, checksums, URLs) replace the real
ones when the worker imports this module — in the worker only, never in the lab itself. A test names this module in
``$RESNET_LAB_KINDS``; the worker imports it from the repository root."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from resnet_lab.data import catalogue
from resnet_lab.kinds import KINDS as LAB_KINDS

ENV = "RESNET_LAB_TEST_CATALOGUE"


def write_overrides(path: Path, entries: dict[str, catalogue.CatalogueEntry]) -> Path:
    """Write the test's entries for the worker to read (see the module docstring)."""
    path.write_text(json.dumps({n: [dataclasses.asdict(f) for f in e.files] for n, e in entries.items()}))
    return path


def _apply() -> None:
    raw = os.environ.get(ENV)
    if not raw:
        return
    for name, files in json.loads(Path(raw).read_text()).items():
        new = tuple(catalogue.RemoteFile(**{**f, "urls": tuple(f["urls"])}) for f in files)
        catalogue.CATALOGUE[name] = dataclasses.replace(catalogue.entry(name), files=new)


_apply()
KINDS = LAB_KINDS

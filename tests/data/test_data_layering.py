"""The data package imports one way: types <- loaders <- registry (read from the source, not by running it)."""

import ast
from pathlib import Path

import pytest

import resnet_lab.data as data_pkg
import resnet_lab.data.registry as registry
import resnet_lab.data.types as types

DATA = Path(data_pkg.__file__).parent
LOADERS = ("shapes", "digits", "folders", "torchvision_sets")


def imported_modules(name: str) -> set[str]:
    """Every ``resnet_lab.data`` module that ``data/<name>.py`` imports, at the top or inside a function."""
    tree = ast.parse((DATA / f"{name}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from .x import y / from . import x
                found.update([node.module] if node.module else [a.name for a in node.names])
            elif node.level == 0 and node.module and node.module.startswith("resnet_lab.data"):
                rest = node.module.removeprefix("resnet_lab.data").lstrip(".")
                found.update([rest.split(".")[0]] if rest else [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("resnet_lab.data."):
                    found.add(alias.name.split(".")[2])
    return found


def test_the_parser_sees_relative_absolute_and_lazy_imports():
    assert {"types"} <= imported_modules("shapes")
    assert {"shapes", "digits", "folders", "torchvision_sets", "types"} <= imported_modules("registry")


@pytest.mark.parametrize("loader", LOADERS)
def test_no_loader_imports_the_registry(loader):
    assert "registry" not in imported_modules(loader), f"data/{loader}.py imports the registry: a cycle"


def test_types_imports_no_loader_and_not_the_registry():
    assert not imported_modules("types") & {*LOADERS, "registry"}


def test_the_registry_re_exports_the_types():
    for name in ("DataConfig", "Dataset", "DatasetInfo", "take_subset", "stratified_order", "channel_stats",
                 "MAX_SEED", "VAL_FRACTION_RANGE", "MAX_TRAIN_SUBSET", "DATASET_INFO", "DATASETS", "FOLDER_PREFIX"):
        assert getattr(registry, name) is getattr(types, name), name

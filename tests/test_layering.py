"""Who may import whom (the layer table of docs/architecture.md), read from the source with ast:
lazy imports inside functions count too."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "resnet_lab"


STRING_IMPORT = re.compile(r"(resnet_lab(?:\.\w+)+)(?::[\w.]+)?")  # "resnet_lab.x.y" or "resnet_lab.x.y:func"


def imports_in(source: str, package: list[str]) -> set[str]:
    """Every module a source file (in ``package``, as its dotted parts) imports, as absolute dotted names
    (relative imports resolved): import statements, lazy ones inside functions too, and string imports — a
    literal "resnet_lab.module" or "resnet_lab.module:function", and the literal argument of
    ``importlib.import_module`` / ``__import__`` (documentation — docstrings, and strings standing alone as
    statements — names things without importing them: :func:`test_the_job_system_names_no_kind_of_work` reads
    those too for jobs/)."""
    out: set[str] = set()
    tree = ast.parse(source)
    docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                out.add(node.args[0].value)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            out |= {m.group(1) for m in STRING_IMPORT.finditer(node.value)}
    return out


def imports_of(path: Path) -> set[str]:
    """:func:`imports_in` for a file of the repository."""
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
    package = parts if path.name == "__init__.py" else parts[:-1]
    return imports_in(path.read_text(), package)


def files(sub: str) -> list[Path]:
    return sorted((PKG / sub).rglob("*.py"))


def offenders(sub: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in files(sub):
        for mod in imports_of(path):
            if any(mod == f or mod.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    return bad


def test_the_import_reader_sees_relative_and_lazy_imports(tmp_path):
    assert "resnet_lab.store" in imports_of(PKG / "jobs" / "scheduler.py")
    assert "resnet_lab.jobs.slots" in imports_of(PKG / "ui" / "job_card.py")
    # inside a function:
    assert "resnet_lab.analysis.subject" in imports_of(PKG / "experiments" / "landscape" / "jobs.py")


def test_the_import_reader_sees_string_imports():
    source = ("import importlib\n"
              "HANDLERS = {'train': 'resnet_lab.train.handler:run_training'}\n"
              "def load():\n"
              "    importlib.import_module('resnet_lab.experiments.landscape')\n"
              "    return __import__('resnet_lab.commands')\n")
    seen = imports_in(source, ["resnet_lab", "jobs"])
    assert {"resnet_lab.train.handler", "resnet_lab.experiments.landscape", "resnet_lab.commands"} <= seen


@pytest.mark.parametrize("layer, forbidden", [
    # analysis is the math: a model and data in, numbers out
    ("analysis", ("resnet_lab.store", "resnet_lab.jobs", "resnet_lab.experiments", "resnet_lab.train.launcher",
                  "resnet_lab.train.handler", "resnet_lab.commands", "resnet_lab.cli", "resnet_lab.ui", "streamlit")),
    # the store is SQL: it knows no queue policy, no training, no pages
    ("store", ("resnet_lab.jobs", "resnet_lab.experiments", "resnet_lab.train", "resnet_lab.analysis",
               "resnet_lab.commands", "resnet_lab.ui", "streamlit", "torch")),
    # the job system runs any kind of work and names none, in any form (the wiring lists the kinds)
    ("jobs", ("resnet_lab.train", "resnet_lab.experiments", "resnet_lab.analysis", "resnet_lab.commands",
              "resnet_lab.kinds", "resnet_lab.ui", "streamlit")),
    ("train", ("resnet_lab.experiments", "resnet_lab.commands", "resnet_lab.ui", "streamlit")),
    ("experiments", ("resnet_lab.commands", "resnet_lab.ui", "streamlit")),
    ("viz", ("resnet_lab.store", "resnet_lab.jobs", "resnet_lab.train", "resnet_lab.commands", "resnet_lab.ui",
             "streamlit")),
    ("models", ("resnet_lab.store", "resnet_lab.jobs", "resnet_lab.train", "resnet_lab.analysis", "resnet_lab.ui",
                "streamlit")),
    ("data", ("resnet_lab.store", "resnet_lab.jobs", "resnet_lab.train", "resnet_lab.analysis", "resnet_lab.ui",
              "streamlit")),
    ("commands", ("resnet_lab.ui", "streamlit")),
    # the classroom decides who a session is and what it may train; pages ask it, the scheduler reads its settings
    ("classroom", ("resnet_lab.jobs", "resnet_lab.ui", "resnet_lab.commands", "resnet_lab.cli", "streamlit")),
])
def test_each_layer_imports_only_what_is_below_it(layer, forbidden):
    assert offenders(layer, forbidden) == []


ARCHITECTURE = ROOT / "docs" / "architecture.md"
FLOOR_LINE = re.compile(r"^((?:[a-z_]+(?:/|\.py))(?:, [a-z_]+(?:/|\.py))*)(?:\s{2,}|$)")


def layer_table(text: str) -> str:
    """The code block under the "## Layers" heading of a document."""
    start = text.index("```", text.index("## Layers"))
    return text[start: text.index("```", start + 3) + 3]


def floors_of_table(table: str) -> tuple[tuple[str, ...], ...]:
    """The floors a layer table names, bottom up: each line that starts with module names (``jobs/``,
    ``kinds.py``, several with commas) is one floor of resnet_lab; ``app.py`` and ``app_pages/`` are outside it."""
    floors = []
    for line in table.splitlines():
        m = FLOOR_LINE.match(line)
        if m:
            names = tuple(n.removesuffix("/").removesuffix(".py") for n in m.group(1).split(", "))
            if "app" not in names:
                floors.append(names)
    return tuple(reversed(floors))


# the layer table of docs/architecture.md, bottom up: each floor imports only from the floors below
FLOORS: tuple[tuple[str, ...], ...] = floors_of_table(layer_table(ARCHITECTURE.read_text()))


def test_the_table_is_read_from_the_architecture_document():
    assert FLOORS[0] == ("spec", "train_config", "identity", "checks", "fmt", "paths", "device")
    assert FLOORS[1] == ("models", "data") and FLOORS[-1] == ("ui",)
    assert floor_of("classroom") < floor_of("jobs") < floor_of("train") < floor_of("experiments") < floor_of("kinds")
    # a made-up table: two floors, the second above the first
    assert floors_of_table("```\nui/     pages\nfoo.py, bar/   x\n          more\n```") == (("foo", "bar"), ("ui",))


def floor_of(name: str) -> int | None:
    return next((i for i, names in enumerate(FLOORS) if name in names), None)


def test_every_module_of_the_package_has_a_floor():
    tops = {p.relative_to(PKG).parts[0].removesuffix(".py") for p in PKG.rglob("*.py")}
    assert sorted(t for t in tops - {"__init__", "__main__", "__pycache__"} if floor_of(t) is None) == []


def test_each_floor_imports_only_from_the_floors_below_it():
    """The table as written, string imports included: no arrow points up or sideways."""
    found: set[tuple[str, str]] = set()
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        me = rel.parts[0].removesuffix(".py")
        mine = floor_of(me)
        if mine is None:
            continue
        for mod in imports_of(path):
            parts = mod.split(".")
            if parts[0] != "resnet_lab" or len(parts) < 2 or parts[1] == me:
                continue
            theirs = floor_of(parts[1])
            if theirs is None or theirs < mine or (theirs == mine == 0):
                continue
            found.add((rel.as_posix(), parts[1]))
    assert sorted(found) == [], "an import that points up or sideways"


def test_the_job_system_names_no_kind_of_work():
    """jobs/ names the packages whose work it runs in no form at all: no import, no string, no comment or docstring
    (the kinds are listed by the wiring, resnet_lab/kinds.py, and found through it)."""
    upward = ("train", "experiments", "analysis", "commands", "ui", "kinds")
    for path in files("jobs"):
        text = path.read_text()
        for name in upward:
            assert f"resnet_lab.{name}" not in text and not re.search(rf"from \.\.{name}\b", text), (path, name)


def test_the_data_layer_keeps_files_and_knows_no_owner():
    """Who uploaded a dataset is a record in the store, written and read by the classroom: data/ keeps the files."""
    assert offenders("data", ("resnet_lab.classroom", "resnet_lab.store", "resnet_lab.identity")) == []


def test_no_command_imports_private_names_from_the_cli():
    for path in files("commands"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("cli"):
                assert not any(a.name.startswith("_") for a in node.names), path


def test_only_the_job_system_spawns_processes():
    for path in sorted(PKG.rglob("*.py")):
        if path.is_relative_to(PKG / "jobs"):
            continue
        text = path.read_text()
        assert "subprocess" not in text and "Popen" not in text, path

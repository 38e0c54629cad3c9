"""The UI helpers import one another without a circle (DESIGN: resnet_lab/ui/, "No circle among them"): the
import graph of resnet_lab/ui/*.py, read with ast — lazy imports inside functions count too — has no cycle."""

import ast
from pathlib import Path

UI = Path(__file__).resolve().parents[1] / "resnet_lab" / "ui"
PREFIX = "resnet_lab.ui."


def ui_imports(path: Path, modules: set[str]) -> set[str]:
    """The ui modules (by name, among ``modules``) that a ui file imports: ``from .x import``, ``from . import x``,
    ``import resnet_lab.ui.x``, ``from resnet_lab.ui.x import`` and ``from resnet_lab.ui import x``, anywhere in
    the file (module level, inside functions, under ``if TYPE_CHECKING``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name.removeprefix(PREFIX) for a in node.names if a.name.startswith(PREFIX)]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1 or node.module in ("resnet_lab.ui", None):
                base = (node.module or "") if node.level == 1 else ""
                names = [base] if base else [a.name for a in node.names]
            elif node.module and node.module.startswith(PREFIX):
                names = [node.module.removeprefix(PREFIX)]
        found |= {n.split(".")[0] for n in names if n.split(".")[0] in modules}
    return found - {path.stem}


def graph() -> dict[str, set[str]]:
    modules = {p.stem for p in UI.glob("*.py") if p.stem != "__init__"}
    return {m: ui_imports(UI / f"{m}.py", modules) for m in sorted(modules)}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as the modules along it (first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt]
            if nxt not in state:
                found = visit(nxt, path + [node])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state:
            found = visit(start, [])
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle_and_passes_a_tree():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_reader_sees_every_way_of_importing_a_ui_module(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("from .a import y\nfrom . import b\nimport resnet_lab.ui.c\nfrom resnet_lab.ui.d import z\n"
                 "from resnet_lab.ui import e\ndef f():\n    from .g import h\nfrom ..store import Store\n")
    assert ui_imports(f, set("abcdefgx")) == set("abcdeg")


def test_no_circle_among_the_ui_modules():
    edges = graph()
    assert edges, "no ui modules found"
    assert cycle(edges) is None, f"the ui modules import each other in a circle: {' -> '.join(cycle(edges))}"

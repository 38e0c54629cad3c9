"""The README a newcomer reads first, and the docs/ it points to: short, the two commands first, one line per
page of the app, a command-line example that the CLI accepts, and no link to a file that is not there."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from resnet_lab.cli import build_parser, main
from resnet_lab.paths import lab_home
from resnet_lab.ui.common import PAGES

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MAX_README_LINES = 150
CLI_EXAMPLE_HEADING = "## From the command line"
CLI_PREFIX = ".venv/bin/python -m resnet_lab "
RUN_FOR_REAL = {"summary", "presets", "runs", "jobs", "datasets"}  # commands that finish in a second, no run needed

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def prose(text: str) -> str:
    """The text without fenced code blocks and code spans, where brackets are code, not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = CODE_SPAN.sub(lambda m: m.group(0).strip("`"), heading.strip().lstrip("#").strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(line) for line in FENCE.sub("", path.read_text()).splitlines() if line.startswith("#")}


def first_block(text: str) -> str:
    """The first thing after the headings: a fenced block whole, or a paragraph."""
    lines = iter(text.splitlines())
    for line in lines:
        if line.strip() and not line.startswith("#"):
            break
    else:
        return ""
    block = [line]
    for line in lines:
        if line.startswith("```") if block[0].startswith("```") else not line.strip():
            break
        block.append(line)
    return "\n".join(block)


def cli_example() -> list[str]:
    """The lines of the README's command-line example: the first fenced block under its heading."""
    text = README.read_text()
    assert CLI_EXAMPLE_HEADING in text, f"the README has no '{CLI_EXAMPLE_HEADING}' section"
    section = text.split(CLI_EXAMPLE_HEADING, 1)[1]
    match = FENCE.search(section)
    assert match, "the command-line section has no code block"
    return [line for line in match.group(0).splitlines()[1:-1] if line.strip()]


def cli_commands() -> list[list[str]]:
    commands = [shlex.split(line[len(CLI_PREFIX):], comments=True) for line in cli_example()
                if line.startswith(CLI_PREFIX)]
    assert len(commands) >= 3, f"the example shows fewer than three commands ({CLI_PREFIX}...)"
    return commands


def test_the_readme_is_short():
    n = len(README.read_text().splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines; at most {MAX_README_LINES} (depth goes to docs/)"


def test_the_readme_starts_with_the_two_commands():
    block = first_block(README.read_text())
    assert "make run" in block and "make test" in block, f"the README's first block is not the two commands:\n{block}"


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_image_points_to_a_file_that_exists(doc):
    broken = []
    for target in LINK.findall(prose(doc.read_text())):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        where = (doc.parent / path).resolve() if path else doc
        if not where.exists():
            broken.append(f"{target} (no {where.relative_to(ROOT) if where.is_relative_to(ROOT) else where})")
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            broken.append(f"{target} (no heading '#{anchor}' in {where.name})")
    assert not broken, f"{doc.name}: broken links: {broken}"


def test_there_are_docs_and_the_readme_links_each_one():
    assert {p.name for p in DOCS} >= {"pages.md", "classroom.md", "validation.md", "architecture.md", "cli.md"}
    links = set(LINK.findall(README.read_text()))
    assert not [p.name for p in DOCS if f"docs/{p.name}" not in links], "a docs/ file the README never links"


def test_every_page_of_the_app_has_one_line_in_the_readme():
    lines = README.read_text().splitlines()
    for path, (title, _icon, _purpose) in PAGES.items():
        assert (ROOT / path).exists(), path
        mentions = [line for line in lines if f"({path})" in line]
        assert len(mentions) == 1, f"{path} is on {len(mentions)} lines of the README, not one"
        assert f"**{title}**" in mentions[0], f"the README's line for {path} does not name the page '{title}'"


def test_the_cli_example_is_five_lines_that_the_cli_parses():
    assert len(cli_example()) <= 5, cli_example()
    parser = build_parser()
    for argv in cli_commands():
        parser.parse_args(argv)  # exits (a SystemExit, failing the test) on an unknown command or option


def test_the_cli_example_sets_the_home_the_lab_reads(monkeypatch, tmp_path):
    exports = [line.split()[1].split("=", 1) for line in cli_example() if line.startswith("export ")]
    for name, _value in exports:
        monkeypatch.setenv(name, str(tmp_path))
    assert exports and lab_home() == tmp_path, f"the example's exports {exports} do not set where the lab lives"


def test_the_quick_commands_of_the_cli_example_run(capsys):
    quick = [argv for argv in cli_commands() if argv[0] in RUN_FOR_REAL]
    assert quick, f"the example has none of {sorted(RUN_FOR_REAL)} to run here"
    for argv in quick:
        assert main(argv) == 0, argv
    assert capsys.readouterr().out.strip()


def test_the_cli_doc_names_every_command():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    text = (ROOT / "docs" / "cli.md").read_text()
    missing = [name for name in commands if f"{CLI_PREFIX}{name}" not in text]
    assert not missing, f"docs/cli.md does not show these commands: {missing}"

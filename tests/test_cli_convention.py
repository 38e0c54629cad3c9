"""One spelling per argument across the command line: a run is ``--run ID``, the twin ``--twin``, a count of images
``--n N``, and every handler is ``cmd_<name>``. The rules are read off the parser itself (every subcommand, every
action), not a hand list; the old spellings (a positional RUN_ID, ``--plain-twin``, ``--plain``, ``--images``) are
still accepted for one release, each with one note on stderr."""

from __future__ import annotations

import argparse
import json

import pytest

from resnet_lab.cli import build_parser
from resnet_lab.commands.common import OLD_FORM_GOES
from tests.helpers.cli import run_cli

OLD_SPELLINGS = {"--plain-twin": "--twin", "--plain": "--twin", "--images": "--n"}
RUN_DESTS = {"run", "id", "run_id"}  # what a positional naming a run was called
COUNT_DESTS = {"n", "images"}


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """Every subcommand's parser, by name, from :func:`resnet_lab.cli.build_parser`."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def visible(action: argparse.Action) -> bool:
    """Whether ``--help`` shows the action (the deprecated spellings are hidden)."""
    return action.help is not argparse.SUPPRESS


def test_the_parser_has_the_subcommands_these_rules_are_about():
    names = set(subcommands())
    assert {"stop", "resume", "delete", "export", "export-tensorboard", "gradcam", "localize", "explain-quality",
            "gradflow", "lesion", "landscape", "train", "summary"} <= names


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_each_subcommand_spells_runs_twins_and_counts_one_way(name):
    parser = subcommands()[name]
    for action in parser._actions:
        options = set(action.option_strings)
        if visible(action):
            assert not options & set(OLD_SPELLINGS), f"{name}: {options & set(OLD_SPELLINGS)} is shown in --help"
        else:
            assert action.option_strings or action.dest == "run_positional", f"{name}: a hidden {action.dest}"
        if not action.option_strings:  # a positional: none names a run, except the hidden old form
            assert action.dest not in RUN_DESTS and action.metavar != "RUN_ID", f"{name}: run as positional"
            if action.dest == "run_positional":
                assert not visible(action), f"{name}: the old positional run is shown in --help"
            continue
        if action.dest == "run":
            assert action.option_strings == ["--run"], f"{name}: the run is {action.option_strings}"
        if action.dest == "twin" or any("twin" in o for o in options):
            allowed = {"--twin", "--no-twin"} if visible(action) else {"--plain-twin", "--plain"}
            assert options <= allowed and action.dest == "twin", f"{name}: twin flag {options} -> {action.dest}"
        if action.dest in COUNT_DESTS:
            allowed = {"--n"} if visible(action) else {"--images"}
            assert options <= allowed and action.dest == "n", f"{name}: count {options} -> {action.dest}"


def test_every_handler_is_named_cmd_something():
    for name, parser in subcommands().items():
        func = parser.get_default("func")
        assert func is not None and func.__name__.startswith("cmd_"), f"{name}: handler {func}"


def parse(*argv: str) -> argparse.Namespace:
    """``python -m resnet_lab ARGV`` parsed only (nothing runs)."""
    return build_parser().parse_args(list(argv))


@pytest.mark.parametrize("argv, old, new, field, value", [
    (("train", "--plain-twin", "--plain-twin"), "--plain-twin", "--twin", "twin", True),
    (("summary", "resnet20", "--plain", "--plain"), "--plain", "--twin", "twin", True),
    (("explain-quality", "--run", "1", "--images", "4", "--images", "5"), "--images", "--n", "n", 5),
])
def test_each_old_flag_still_works_with_one_note_on_stderr(argv, old, new, field, value, capsys):
    assert getattr(parse(*argv), field) == value
    assert capsys.readouterr().err == f"note: `{old}` is now `{new}`; {OLD_FORM_GOES}\n"  # once, though given twice


@pytest.mark.parametrize("argv, run, job, note", [
    (("stop", "3"), 3, None, "`stop 3` is now `stop --run 3`"),
    (("resume", "4"), 4, None, "`resume 4` is now `resume --run 4`"),
    (("delete", "5"), 5, None, "`delete 5` is now `delete --run 5`"),
    (("stop", "6", "--job"), None, 6, "`stop 6 --job` is now `stop --job 6`"),
    (("export", "7", "out.zip"), 7, None, "`export 7` is now `export --run 7`"),
    (("export-tensorboard", "8", "tb"), 8, None, "`export-tensorboard 8` is now `export-tensorboard --run 8`"),
])
def test_each_old_positional_run_still_works_with_one_note_on_stderr(argv, run, job, note, capsys):
    args = parse(*argv)
    assert (args.run, getattr(args, "job", None)) == (run, job)
    assert capsys.readouterr().err == f"note: {note}; {OLD_FORM_GOES}\n"


@pytest.mark.parametrize("argv, run, job", [
    (("stop", "--run", "3"), 3, None),
    (("stop", "--job", "3"), None, 3),  # also the old `stop --job 3`: the same meaning
    (("export", "--run", "7", "out.zip"), 7, None),
    (("export", "out.zip", "--run", "7"), 7, None),
])
def test_the_new_spellings_parse_without_a_note(argv, run, job, capsys):
    args = parse(*argv)
    assert (args.run, getattr(args, "job", None)) == (run, job)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("argv, message", [
    (("stop",), "the following arguments are required: --run (or --job)"),
    (("export", "out.zip"), "the following arguments are required: --run"),
    (("stop", "3", "--run", "4"), "two runs given: 3 and --run 4"),
    (("delete", "--run", "3", "--job", "4"), "give --run ID or --job ID, not both"),
])
def test_a_missing_or_doubled_run_is_refused_by_argparse(argv, message):
    r = run_cli(*argv)
    assert r.returncode == 2 and message in r.stderr and r.stdout == ""


def test_a_run_is_stopped_and_deleted_with_run_the_old_positional_still_works(private_trained_home):
    store, (resnet, plain) = private_trained_home
    old = run_cli("stop", resnet, "--json")
    assert old.returncode == 0, old.stderr
    assert json.loads(old.stdout) == {"run": resnet, "status": "done"}
    assert old.stderr == f"note: `stop {resnet}` is now `stop --run {resnet}`; {OLD_FORM_GOES}\n"
    new = run_cli("stop", "--run", resnet, "--json")
    assert new.stderr == "" and json.loads(new.stdout) == {"run": resnet, "status": "done"}
    deleted = run_cli("delete", "--run", plain)
    assert deleted.returncode == 0 and deleted.stderr == ""
    assert deleted.stdout.strip() == f"deleted runs {resnet}, {plain}"
    assert store.runs.list() == []


def test_summary_twin_means_what_plain_meant():
    new, old = run_cli("summary", "resnet20", "--twin", "--json"), run_cli("summary", "resnet20", "--plain", "--json")
    assert new.returncode == old.returncode == 0 and new.stderr == "" and "`--plain` is now `--twin`" in old.stderr
    assert json.loads(new.stdout) == json.loads(old.stdout) and json.loads(new.stdout)["spec"]["skip"] is False

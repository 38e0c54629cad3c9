"""The command line in this process: :func:`resnet_lab.cli.main` with its exit code and output captured, as
``python -m resnet_lab ARGS`` gives them, without starting a Python and importing torch for each call. The real
processes (the entry points) are tried once each, in tests/test_cli_processes.py."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass


@dataclass(frozen=True)
class Done:
    """What a command gave: its exit code and what it printed (as ``subprocess.CompletedProcess`` names them)."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args) -> Done:
    """``python -m resnet_lab ARGS`` in this process (arguments may be numbers or paths). The lab home is the
    test's ``RESNET_LAB_HOME``, as for a real process started from the test."""
    from resnet_lab.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse's own refusals (a missing required option, --help) exit
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return Done(code, out.getvalue(), err.getvalue())

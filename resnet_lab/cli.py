"""Command line: ``python -m resnet_lab ...``. Same engine as the app, JSON output for scripts.

This module only builds the parser and dispatches: every command is a module in
:mod:`resnet_lab.commands` with ``register(sub)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .commands import COMMANDS
from .commands.common import LabParser


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: one subcommand per :mod:`resnet_lab.commands` module (each a :class:`LabParser`,
    so the checks its arguments registered run after parsing)."""
    p = LabParser(prog="python -m resnet_lab", description="ResNet Lab from the command line.")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError, KeyError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2

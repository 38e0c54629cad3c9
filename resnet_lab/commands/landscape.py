"""`python -m resnet_lab landscape` (being built)."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the subcommand to the parser (nothing yet)."""

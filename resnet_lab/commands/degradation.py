"""`python -m resnet_lab degradation` (being built)."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the subcommand to the parser (nothing yet)."""

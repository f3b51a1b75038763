"""CLI commands for this stage (placeholder: filled in by the stage's issue)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this stage's subcommands."""

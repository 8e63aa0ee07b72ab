"""One module per `nsp-edge` subcommand; shared argument types here."""

from __future__ import annotations

import argparse
from pathlib import Path


def output_file(text: str) -> Path:
    """An --out file argument: its folder must exist and be a folder, checked when the command
    line is read, so a long run never ends in a traceback at its very last step."""
    path = Path(text)
    folder = path.parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(
            f"the folder {folder} does not exist: create it first (mkdir -p {folder}) or "
            "give a file in an existing folder")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder: give a file name, e.g. "
                                         f"{path / 'result.json'}")
    return path

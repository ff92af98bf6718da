"""What every command shares: how a usage or input error ends the run (one line, exit 2)."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from .textsafe import visible

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def die(message: str) -> NoReturn:
    """The message names paths, VM names and error texts from outside: shown escaped, on one line."""
    click.echo(f"hyperward: error: {visible(message)}", err=True)
    sys.exit(EXIT_USAGE)

"""What every command shares: how a usage or input error ends the run (one line, exit 2)."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def die(message: str) -> NoReturn:
    click.echo(f"hyperward: error: {message}", err=True)
    sys.exit(EXIT_USAGE)

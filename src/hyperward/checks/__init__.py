"""One module per category; importing this package registers every check."""

from . import ids, isolation, nested, patching, side_channels, tpm, vulnerabilities  # noqa: F401

"""One module per category; importing this package registers every check."""

from . import access, auth, backups, firewall, ids, isolation, monitoring, nested, network, patching, side_channels, tpm, vulnerabilities  # noqa: F401

"""hyperward: audit and watch the security of virtualization hosts beyond the firewall."""

__version__ = "0.1.0"

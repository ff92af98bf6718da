"""Hypervisor platforms as peers: each one a package with the protocol in base.py."""

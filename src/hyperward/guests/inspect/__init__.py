"""Agentless scanning inside the guests, from their disks, read-only (issue 18).

images.py checks each disk before it is opened; appliance.py holds one libguestfs appliance for
every guest's disks; collect.py reads each guest's files with the host's own collectors and
reduces its secrets to fingerprints and tokens; keys.py and secrets.py do that reduction.
"""

from .collect import scan_guests

__all__ = ["scan_guests"]

"""Proxmox VE's own files under /etc/pve (pmxcfs): datacenter.cfg's migration type and a node's
host.fw `enable`. Turning the cluster firewall on is left to a person: with policy_in DROP and no
rule for SSH and port 8006 from the management network it locks every administrator out."""

from __future__ import annotations

import re

from ..plan import Context, Failing, Fix, Manual, Needs, SetKey, fixer

DATACENTER = "/etc/pve/datacenter.cfg"
NODE = re.compile(r"^node/([A-Za-z0-9][A-Za-z0-9.-]{0,62})$")


@fixer("HV-NET-008")
def migration_type(finding: Failing, context: Context) -> Fix | None:
    text = context.read(DATACENTER)
    if text is None:
        return None
    for line in text.splitlines():
        match = re.match(r"^\s*migration:\s*(\S+)\s*$", line)
        if match:
            parts = [p for p in match.group(1).split(",") if p]
            fixed = ["type=secure" if p in ("insecure", "type=insecure") else p for p in parts]
            return Fix((SetKey(DATACENTER, "migration", ",".join(fixed), "colon", append=False),))
    return None


@fixer("HV-FW-004", "HV-FW-005")
def firewall(finding: Failing, context: Context) -> Fix | None:
    if finding.check_id == "HV-FW-004":
        return Fix((Manual("turn the cluster firewall on in /etc/pve/firewall/cluster.fw ([OPTIONS] enable: 1) only after "
                           "its rules allow SSH and 8006 from the management network: with policy_in DROP it locks "
                           "administrators out otherwise"),))
    match = NODE.match(finding.resource)
    if not match or "host.fw enable" not in finding.message:
        return None
    path = f"/etc/pve/nodes/{match.group(1)}/host.fw"
    if context.read(path) is None:
        return None
    edits: list[SetKey | Manual] = [SetKey(path, "enable", "1", "colon", append=False)]
    if "cluster firewall is off" in finding.message:
        edits.append(Manual("the host firewall runs only with the cluster firewall on (HV-FW-004, by hand)"))
    return Fix(tuple(edits), (Needs("command", "pve-firewall restart"),))

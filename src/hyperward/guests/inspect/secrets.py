"""Credentials inside a guest, found by place and shape, reported by path, line and kind only.

The values found here are secrets of the guest's owner or of the host; they are matched and
dropped in this module, never returned.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from ...facts import HashRef, SecretRef
from ...parsers.auth_files import hash_scheme

#: cloud-config keys whose value is a password in clear text (cloud-init docs: Users and Groups,
#: Set Passwords modules); a value starting with $ is a crypt(3) hash and is not plaintext
_CLOUD_KEYS = re.compile(r"^\s*(?:-\s*)?(plain_text_passwd|password|passwd)\s*:\s*(.*?)\s*$")
_CHPASSWD_LIST = re.compile(r"^\s*(?:-\s*)?(list|expire|users)\s*:\s*(\|)?\s*(.*)$")
_USER_PASS = re.compile(r"^\s*(?:-\s*)?[A-Za-z_][A-Za-z0-9_.-]*:(\S+)\s*$")

#: hypervisor and cloud credentials a guest should not hold: libvirt auth.conf (libvirt docs
#: "Client authentication configuration"), Proxmox API tokens and passwords as the common clients
#: (proxmoxer, the Terraform provider, pvesh env) take them, vSphere as govc and the Terraform
#: provider take them
_HYPERVISOR = [
    (re.compile(r"^\s*password\s*=\s*\S"), "libvirt auth.conf password", ("auth.conf",)),
    (re.compile(r"PVEAPIToken=\S+=\S+"), "Proxmox API token", ()),
    (re.compile(r"\b(?:pm_api_token_secret|pm_password|PM_PASS|PROXMOX_VE_PASSWORD|PROXMOX_VE_API_TOKEN|PROXMOX_PASSWORD)\b\s*[=:]\s*\S"), "Proxmox credential", ()),
    (re.compile(r"\b(?:GOVC_PASSWORD|VSPHERE_PASSWORD|VMWARE_PASSWORD)\b\s*[=:]\s*\S"), "vSphere password", ()),
    (re.compile(r"<password>[^<]+</password>"), "vSphere credential store password", ("vicredentials.xml",)),
    (re.compile(r"\bGOVC_URL\s*=\s*\S*://[^/\s:@]+:[^@\s]+@"), "vSphere password in a URL", ()),
    (re.compile(r"\b(?:qemu\+\w+|xen\+\w+|esx|vpx)://[^/\s:@]+:[^@\s]+@"), "hypervisor URI with a password", ()),
]


def cloud_init_passwords(path: str, text: str) -> list[SecretRef]:
    """Plaintext passwords in cloud-config user-data: `password:`/`plain_text_passwd:` values that
    are not crypt hashes, and `user:password` lines of `chpasswd: list:`. Only #cloud-config
    documents are judged (a shell-script user-data is opaque)."""
    out: list[SecretRef] = []
    in_list = False
    list_indent = -1
    for number, line in enumerate(text.splitlines()[:100_000], 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if in_list:
            if indent > list_indent or stripped.startswith("- "):
                match = _USER_PASS.match(line)
                if match and not match.group(1).startswith("$") and match.group(1) not in ("RANDOM", "R"):
                    out.append(SecretRef(path, number, "cloud-init chpasswd plaintext password"))
                    continue
                if match or stripped.startswith("-"):
                    continue
            in_list = False
        listing = _CHPASSWD_LIST.match(line)
        if listing and listing.group(1) == "list":
            in_list, list_indent = True, indent
            if listing.group(3):
                for part in listing.group(3).split():
                    if ":" in part and not part.split(":", 1)[1].startswith("$"):
                        out.append(SecretRef(path, number, "cloud-init chpasswd plaintext password"))
            continue
        match = _CLOUD_KEYS.match(line)
        if match:
            key, value = match.groups()
            value = value.strip("'\"")
            if key == "passwd" or not value or value.startswith("$") or value in ("RANDOM", "R", "|", ">"):
                continue  # passwd: takes a hash by definition
            out.append(SecretRef(path, number, f"cloud-init {key} in plain text"))
    return out


def hypervisor_credentials(path: str, text: str) -> list[SecretRef]:
    out: list[SecretRef] = []
    name = path.rsplit("/", 1)[-1]
    for number, line in enumerate(text.splitlines()[:200_000], 1):
        for pattern, kind, only in _HYPERVISOR:
            if only and name not in only:
                continue
            if pattern.search(line):
                out.append(SecretRef(path, number, kind))
                break
    return out


def hash_tokens(shadow: str, key: bytes, path: str = "/etc/shadow") -> list[HashRef]:
    """Every real password hash (not empty, not locked) as a token keyed with this scan's secret:
    equal tokens, equal hash strings, and nothing else learnt."""
    out = []
    for line in shadow.splitlines():
        parts = line.split(":")
        if len(parts) < 2 or not parts[0]:
            continue
        scheme = hash_scheme(parts[1])
        if scheme in ("empty", "locked"):
            continue
        token = hmac.new(key, parts[1].encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:24]
        out.append(HashRef(parts[0][:64], scheme, token, path))
    return out

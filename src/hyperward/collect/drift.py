"""Normalized digests of the virtualization configuration, for `hyperward baseline accept` and the
drift check. Comments, blank lines, whitespace and XML formatting do not count as change."""

from __future__ import annotations

import hashlib
import json
import os
import xml.etree.ElementTree as ET

import defusedxml.ElementTree as DET

from ..facts import DriftFacts, Maybe
from ..model import Unavailable
from ..paths import data_file
from ..safefile import PRIVATE, Ownership, UnsafePath, ensure_directory, read_state, write_text
from .fs import RootFS

CONFIG_FILES = ("qemu.conf", "libvirtd.conf", "virtqemud.conf", "virtproxyd.conf")
XML_DIRS = (("domain", "/etc/libvirt/qemu"), ("network", "/etc/libvirt/qemu/networks"), ("nwfilter", "/etc/libvirt/nwfilter"))
BASELINE_FORMAT = "hyperward-baseline"


def default_baseline_path() -> str:
    return data_file("HYPERWARD_BASELINE", "baseline.json")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def normalize_conf(text: str) -> str:
    lines = []
    for line in text.splitlines():
        stripped = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if stripped:
            lines.append(" ".join(stripped.split()))
    return "\n".join(lines)


def normalize_xml(text: str) -> str:
    DET.fromstring(text, forbid_dtd=True)  # refuses entities before canonicalize parses it again
    return ET.canonicalize(text, strip_text=True)


def config_digests(fs: RootFS) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in CONFIG_FILES:
        text = fs.read_text(f"/etc/libvirt/{name}")
        if isinstance(text, str):
            out[f"/etc/libvirt/{name}"] = _digest(normalize_conf(text))
    for kind, directory in XML_DIRS:
        listing = fs.listdir(directory)
        for name in listing if isinstance(listing, list) else []:
            if not name.endswith(".xml"):
                continue
            text = fs.read_text(f"{directory}/{name}", 8 * 1024 * 1024)
            if not isinstance(text, str):
                continue
            try:
                root = DET.fromstring(text, forbid_dtd=True)
                label = (root.findtext("name") or root.get("name") or name[:-4]).strip()
                out[f"{kind} {label}"] = _digest(normalize_xml(text))
            except Exception:  # unreadable XML: its raw digest still shows a change
                out[f"{kind} {name[:-4]}"] = _digest(text)
    return dict(sorted(out.items()))


def read_baseline(path: str) -> tuple[Maybe[dict[str, str]], str | None]:
    try:
        document = json.loads(read_state(path, 64 * 1024 * 1024))
    except FileNotFoundError:
        return Unavailable(path, "missing", "no baseline accepted yet: run 'hyperward baseline accept'"), None
    except PermissionError:
        return Unavailable(path, "denied", "permission denied"), None
    except UnsafePath as exc:
        return Unavailable(path, "invalid", str(exc)), None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        return Unavailable(path, "invalid", f"not a hyperward baseline ({exc})"), None
    if not isinstance(document, dict) or document.get("format") != BASELINE_FORMAT or not isinstance(document.get("digests"), dict):
        return Unavailable(path, "invalid", "not a hyperward baseline"), None
    return {str(k): str(v) for k, v in document["digests"].items()}, str(document.get("accepted_at") or "")


def collect_drift(fs: RootFS, baseline_path: str | None) -> DriftFacts | None:
    if not fs.exists("/etc/libvirt"):
        return None
    path = baseline_path or default_baseline_path()
    baseline, accepted = read_baseline(path)
    # Digesting every definition costs as much as parsing it again: only when there is a baseline.
    current = config_digests(fs) if isinstance(baseline, dict) else {}
    return DriftFacts(current, baseline, path, accepted)


def write_baseline(path: str, digests: dict[str, str], host: str, root: str, accepted_at: str,
                   ownership: Ownership = PRIVATE) -> None:
    ensure_directory(os.path.dirname(os.path.abspath(path)))
    document = {"format": BASELINE_FORMAT, "version": 1, "accepted_at": accepted_at, "host": host, "root": root, "digests": digests}
    write_text(path, json.dumps(document, indent=1, sort_keys=True), ownership)

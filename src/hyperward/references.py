"""A check's references as URLs, for reports a SIEM or a person follows: the catalog's textual
sources ("libvirt docs/formatdomain.rst (Filesystems)", "sudoers(5)") mapped by the rules in
data/reference_urls.json (libvirt.org, docs.kernel.org, manpages.debian.org, pve.proxmox.com...)."""

from __future__ import annotations

import functools
import json
import re
from importlib import resources

from .model import CheckMeta


@functools.cache
def _rules() -> tuple[tuple[re.Pattern[str], str, bool], ...]:
    raw = json.loads(resources.files("hyperward").joinpath("data/reference_urls.json").read_text(encoding="utf-8"))
    return tuple((re.compile(r["pattern"]), str(r["url"]), bool(r.get("all", False))) for r in raw["rules"])


def urls_for(reference: str) -> list[str]:
    """The URLs one textual reference points to (none when no rule knows it)."""
    for pattern, template, every in _rules():
        if every:
            found = [m.expand(template) for m in pattern.finditer(reference)]
            if found:
                return found
            continue
        match = pattern.search(reference)
        if match:
            return [match.expand(template)]
    return []


def check_urls(meta: CheckMeta, sources: str = "") -> list[str]:
    """Every URL of a check: its references, then the catalog row's primary sources; each once."""
    texts = [*meta.references, *(s.strip() for s in sources.split(";") if s.strip())]
    return list(dict.fromkeys(url for text in texts for url in urls_for(text)))

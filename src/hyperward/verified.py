"""What a pass verified, in words (data/verified.json): a check's title names the risk, so a
passing check is reported by what was found to be right, never by its title and severity."""

from __future__ import annotations

import functools
import json
from importlib import resources


@functools.cache
def _sentences() -> dict[str, str]:
    text = resources.files("hyperward").joinpath("data/verified.json").read_text(encoding="utf-8")
    loaded = json.loads(text)
    return {str(k): str(v) for k, v in loaded.items()}


def verified(check_id: str) -> str:
    """The pass condition in words; the catalog's passes-when text for a check without a sentence."""
    sentence = _sentences().get(check_id)
    if sentence is not None:
        return sentence
    from .catalog import catalog

    entry = catalog().get(check_id)
    if entry is None:
        return "passed"
    from .shorthand import expand

    return f"passes when: {expand(entry.passes_when)}"

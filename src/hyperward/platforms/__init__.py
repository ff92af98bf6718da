"""Hypervisor platforms as peers. Each is a subpackage that exposes `PLATFORM`, an object with the
protocol in base.py; the registry finds them by walking this package, so adding a platform is
adding a folder."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Platform


@functools.cache
def registry() -> dict[str, Platform]:
    found: dict[str, Platform] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        platform = getattr(module, "PLATFORM", None)
        if platform is not None:
            found[platform.name] = platform
    return found


def by_letter() -> dict[str, Platform]:
    return {p.letter: p for p in registry().values()}

"""A platform's own rows become checks the same way on every platform: each judge reads that
platform's facts and is registered under its catalog ID (title, severity and fix from the row);
where the platform was not found, its checks are not applicable with the platform's own reason,
and every result names the platform. Imported by a platform's checks module, so only once the
platform was found."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ..model import Result, Severity


def register(platform: str, judges: Mapping[str, Callable[..., Iterable[Result]]], absent: str, *,
             with_host: bool = False, profile_severity: Mapping[str, dict[str, Severity]] | None = None) -> None:
    """`with_host`: the judges also take the HostFacts (VirtualBox's judge a home's users and
    the host's interfaces); `absent`: why the rows do not apply where the platform is missing."""
    from ..engine import check

    for check_id, judge in judges.items():
        check(check_id, profile_severity=(profile_severity or {}).get(check_id))(_on_host(platform, judge, absent, with_host))


def _on_host(platform: str, judge: Callable[..., Iterable[Result]], absent: str, with_host: bool) -> Callable[[Any], Iterator[Result]]:
    @functools.wraps(judge)
    def run(host: Any) -> Iterator[Result]:
        facts = host.platforms.get(platform)
        if facts is None:
            yield Result.not_applicable(absent)
            return
        for result in judge(facts, host) if with_host else judge(facts):
            yield result if result.platform == platform else result.on(platform)

    return run

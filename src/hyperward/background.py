"""The installed packages and apt's view of them, collected beside the rest of a scan.

Reading apt's indexes is a scan's biggest single job (tens of MB decompressed, scanned by the
regex engine, which holds the GIL), so a thread would only take turns with the main one. A
forked child runs it on another core instead; the CLI starts it first, before importing the
checks and the other collectors, so the child's work overlaps the parent's imports too. This
module imports nothing of hyperward's at load time for that reason.
"""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from .facts import PatchingFacts

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Pending(Protocol[T_co]):
    def result(self) -> T_co: ...


class InThread(threading.Thread, Generic[T]):
    """One job on its own thread; its exception, if any, is raised where the result is taken."""

    def __init__(self, job: Callable[[], T]) -> None:
        super().__init__(name="hyperward-collect", daemon=True)
        self.job = job
        self.value: T | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.value = self.job()
        except BaseException as exc:  # handed to the caller by result()
            self.error = exc

    def result(self) -> T:
        self.join()
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class InChild(Generic[T]):
    """One job in a forked child, its result pickled back over an anonymous pipe: pickle is safe
    here because the child is this process's own copy and nothing else can write to that pipe.
    If the child fails in any way, the job runs again here, where its error surfaces."""

    def __init__(self, job: Callable[[], T], kind: Callable[[], type]) -> None:
        self.job, self.kind = job, kind
        self.read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child never returns into the caller's code
            status = 1
            try:
                os.close(self.read)
                with os.fdopen(write, "wb") as out:
                    out.write(pickle.dumps(job(), pickle.HIGHEST_PROTOCOL))
                status = 0
            finally:
                os._exit(status)
        os.close(write)
        self.pid = pid

    def result(self) -> T:
        with os.fdopen(self.read, "rb") as handle:
            data = handle.read()
        _pid, status = os.waitpid(self.pid, 0)
        if status == 0:
            try:
                value = pickle.loads(data)  # noqa: S301 - our own child, over a private pipe
            except Exception:  # noqa: BLE001 - collected again below, where its error surfaces
                value = None
            if isinstance(value, self.kind()):
                return value  # type: ignore[return-value]
        return self.job()


def in_background(job: Callable[[], T], kind: Callable[[], type]) -> Pending[T]:
    """A child process where a second core can run it and no thread is running yet (forking a
    process with threads can copy a lock one of them holds); a thread otherwise. `kind` gives
    the type the child's result must have (a function, so the caller need not import it yet).
    HYPERWARD_NO_FORK=1 keeps it in this process."""
    if (os.cpu_count() or 1) > 1 and threading.active_count() == 1 and not os.environ.get("HYPERWARD_NO_FORK"):
        try:
            return InChild(job, kind)
        except OSError:
            pass
    return InThread(job)


def _collect_patching(root: str) -> PatchingFacts:
    from .collect.fs import RootFS
    from .collect.system import collect_patching

    return collect_patching(RootFS(root))


def _patching_type() -> type:
    from .facts import PatchingFacts

    return PatchingFacts


def patching_in_background(root: str) -> Pending[PatchingFacts]:
    return in_background(lambda: _collect_patching(root), _patching_type)

"""Signs of host compromise or instability the kernel records itself."""

from __future__ import annotations

from collections.abc import Iterator

from ..engine import check
from ..facts import HostFacts
from ..model import Category, Result, Severity, Unavailable
from ..parsers.kernel import decode_taint


@check("HV-IDS-007", Category.IDS, Severity.LOW, "Kernel tainted",
    fix="find the cause in the kernel log (out-of-tree or unsigned module, oops, livepatch) and remove it, or suppress this finding with the reason",
    references=("Linux Documentation/admin-guide/tainted-kernels.rst",),
)
def kernel_tainted(host: HostFacts) -> Iterator[Result]:
    """A taint records that the kernel ran unsigned or out-of-tree code, was force-loaded, oopsed or
    was live-patched: each is either explained (suppress it with a reason) or worth investigating."""
    mask = host.kernel.tainted
    if isinstance(mask, Unavailable):
        yield Result.unavailable(mask, "kernel")
    elif mask == 0:
        yield Result.passed("kernel", "/proc/sys/kernel/tainted=0")
    else:
        flags = ", ".join(f"{letter} ({meaning})" for _, letter, meaning in decode_taint(mask))
        yield Result.fail("kernel", f"/proc/sys/kernel/tainted={mask}: {flags}")

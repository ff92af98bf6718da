"""The Windows guest's registry fixture, without the appliance: the minimal regf this suite writes
is accepted by real hivex (hivexregedit merges keys into it and exports them again), and real
hivex rejects it once its header checksum is wrong, so the file is judged by hivex, not by us.
The appliance reads the same hive from an NTFS image in test_inside.py."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import imagekit as k
import regf
from conftest import require


@pytest.fixture
def hivexregedit() -> str:
    found = shutil.which("hivexregedit")
    require(found is not None, "hivexregedit (libwin-hivex-perl; scripts/install.sh --test)")
    assert found
    return found


def test_minimal_hive_takes_keys_through_real_hivex(tmp_path: pathlib.Path, hivexregedit: str) -> None:
    hive = k.software_hive(tmp_path / "SOFTWARE")
    exported = k.run(hivexregedit, "--export", str(hive), "\\Microsoft\\Windows NT\\CurrentVersion")
    # REG_SZ values come back as hex(1): UTF-16LE with the terminating NUL, as Windows stores them
    product = "Windows Server 2019 Standard".encode("utf-16-le") + b"\0\0"
    assert '"ProductName"=hex(1):' + ",".join(f"{b:02x}" for b in product) in exported
    assert '"UBR"=dword:00000d2c' in exported
    assert hive.read_bytes()[:4] == b"regf" and len(hive.read_bytes()) % 4096 == 0


def test_real_hivex_rejects_a_bad_checksum(tmp_path: pathlib.Path, hivexregedit: str) -> None:
    data = bytearray(regf.minimal_hive())
    data[0x1FC] ^= 0xFF
    (tmp_path / "bad").write_bytes(bytes(data))
    done = subprocess.run([hivexregedit, "--export", str(tmp_path / "bad"), "\\"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "hivex_open" in done.stderr and "Invalid argument" in done.stderr  # EINVAL: bad checksum
    (tmp_path / "good").write_bytes(regf.minimal_hive())
    assert subprocess.run([hivexregedit, "--export", str(tmp_path / "good"), "\\"], capture_output=True, timeout=60).returncode == 0

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperward.parsers.cmdline import parse_cmdline, parse_grub_defaults, split_param
from hyperward.parsers.config_files import apt_conf_part_ok, parse_apt_conf, parse_dpkg_status, parse_group, parse_modprobe
from hyperward.parsers.cpu_vuln import main_status, parse_vulnerability
from hyperward.parsers.kernel import compare_versions, decode_taint
from hyperward.parsers.libvirt_conf import LibvirtConfError, parse_libvirt_conf

from conftest import ROOTS, require


def test_cmdline_quotes_and_init_args():
    text = 'BOOT_IMAGE=/vmlinuz root=UUID=1 "acpi_osi=Windows 2020" dyndbg="file x +p" quiet -- single mitigations=off\n'
    assert parse_cmdline(text) == ["BOOT_IMAGE=/vmlinuz", "root=UUID=1", "acpi_osi=Windows 2020", "dyndbg=file x +p", "quiet"]
    assert parse_cmdline("") == []
    assert split_param("kvm-intel.vmentry_l1d_flush=never") == ("kvm_intel.vmentry_l1d_flush", "never")
    assert split_param("nopti") == ("nopti", None)


def test_grub_defaults_debian_file_and_dropins():
    debian = (ROOTS / "hardened/etc/default/grub").read_text()
    assert parse_grub_defaults([("/etc/default/grub", debian)]) == ["quiet"]
    extra = 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX spectre_v2=on"\nexport GRUB_CMDLINE_LINUX_DEFAULT="${GRUB_CMDLINE_LINUX_DEFAULT} nosmt"  # comment\n'
    assert parse_grub_defaults([("/etc/default/grub", debian), ("/etc/default/grub.d/x.cfg", extra)]) == ["spectre_v2=on", "quiet", "nosmt"]


@pytest.mark.parametrize(
    "text,main,clauses",
    [
        ("Not affected", "not_affected", [(None, "Not affected")]),
        ("KVM: Mitigation: Split huge pages", "mitigated", [(None, "KVM: Mitigation: Split huge pages")]),
        ("Vulnerable; IBPB: disabled; STIBP: disabled; PBRSB-eIBRS: Not affected; BHI: Vulnerable", "vulnerable",
         [(None, "Vulnerable"), ("IBPB", "disabled"), ("STIBP", "disabled"), ("PBRSB-eIBRS", "Not affected"), ("BHI", "Vulnerable")]),
        ("Mitigation: PTE Inversion; VMX: vulnerable, SMT disabled", "mitigated", [(None, "Mitigation: PTE Inversion"), ("VMX", "vulnerable, SMT disabled")]),
        ("Unknown: No mitigations", "unknown", [(None, "Unknown: No mitigations")]),
        ("Processor vulnerable", "vulnerable", [(None, "Processor vulnerable")]),
        ("banana", "unrecognized", [(None, "banana")]),
    ],
)
def test_vulnerability_clauses(text, main, clauses):
    assert main_status(text) == main
    assert [(c.name, c.text) for c in parse_vulnerability(text)] == clauses


def test_apt_conf_forms():
    text = (
        '// comment\nAPT::Periodic::Update-Package-Lists "1";\n/* block\n comment */\n'
        'APT { Periodic { Unattended-Upgrade "1"; AutocleanInterval "7"; }; };\n'
        'Unattended-Upgrade::Origins-Pattern { "origin=Debian,codename=${distro_codename}-security"; };\n'
        '#clear APT::Periodic::AutocleanInterval;\n'
    )
    conf = parse_apt_conf(text)
    assert conf["apt::periodic::update-package-lists"] == "1"
    assert conf["apt::periodic::unattended-upgrade"] == "1"
    assert "apt::periodic::autocleaninterval" not in conf
    # Debian's shipped 50unattended-upgrades: every scalar in it is commented out (//Unattended-Upgrade::Mail "";
    # and two dozen more); what is live are lists (Origins-Pattern, Package-Blacklist), which hold no scalar
    real = (ROOTS / "hardened/etc/apt/apt.conf.d/50unattended-upgrades").read_text()
    assert "//Unattended-Upgrade::Mail" in real and parse_apt_conf(real) == {}
    assert parse_apt_conf((ROOTS / "hardened/etc/apt/apt.conf.d/20auto-upgrades").read_text()) == {
        "apt::periodic::update-package-lists": "1", "apt::periodic::unattended-upgrade": "1"}
    assert parse_apt_conf(real + '\nUnattended-Upgrade::Mail "root";\n') == {"unattended-upgrade::mail": "root"}
    assert apt_conf_part_ok("20auto-upgrades") and apt_conf_part_ok("99local.conf")
    assert not apt_conf_part_ok("20auto-upgrades.dpkg-old") and not apt_conf_part_ok("foo~") and not apt_conf_part_ok("x.disabled")


def test_libvirt_conf_real_and_synthetic():
    assert parse_libvirt_conf((ROOTS / "hardened/etc/libvirt/qemu.conf").read_text()) == {
        "migrate_tls_force": 1, "migration_address": "10.20.0.5", "security_require_confined": 1,
    }
    text = 'user = "+64055"\nvnc_listen = "0.0.0.0"  # all\nnamespaces = [ ]\ncgroup_device_acl = [\n  "/dev/null", "/dev/full",\n  "/dev/kvm"\n]\nmax_files = 32768\n'
    assert parse_libvirt_conf(text) == {
        "user": "+64055", "vnc_listen": "0.0.0.0", "namespaces": [], "cgroup_device_acl": ["/dev/null", "/dev/full", "/dev/kvm"], "max_files": 32768,
    }
    for bad, line in (('x = "unterminated\n', 1), ("a = 1\nb ==\n", 2), ("a = [ 1,\n", 1), ("= 3\n", 1)):
        with pytest.raises(LibvirtConfError) as err:
            parse_libvirt_conf(bad)
        assert err.value.line == line


def test_modprobe_group_dpkg():
    opts = parse_modprobe("# c\noptions kvm-intel nested=1 \\\n  enable_apicv=0\nblacklist nouveau\n", "/etc/modprobe.d/x.conf")
    assert [(o.module, o.param, o.value) for o in opts] == [("kvm_intel", "nested", "1"), ("kvm_intel", "enable_apicv", "0")]
    groups = parse_group("kvm:x:104:alice,bob\nbroken line\nlibvirt:x:110:\n")
    assert groups["kvm"].members == ["alice", "bob"] and groups["libvirt"].members == []
    status = parse_dpkg_status((ROOTS / "hardened/var/lib/dpkg/status").read_text() + "Package: half\n\nPackage: removed\nStatus: deinstall ok config-files\nVersion: 1\n")
    assert status["qemu-system-x86"] == "1:7.2+dfsg-7+deb12u18+b3" and "half" not in status and "removed" not in status


def test_taint_decoding():
    assert [letter for _, letter, _ in decode_taint(12288)] == ["O", "E"]
    assert [letter for _, letter, _ in decode_taint(4097)] == ["P", "O"]
    assert decode_taint(0) == []


KERNELS = ["6.1.0-9-amd64", "6.1.0-10-amd64", "6.1.0-28-amd64", "6.1.0-28-cloud-amd64", "5.10.0-30-amd64", "6.12.38+deb12-amd64",
           "6.12.9+bpo-amd64", "6.1.0-0.deb11.17-amd64", "6.8.12-4-pve", "6.8.0-45-generic", "6.1~rc1-1-amd64", "6.1.0-28-rt-amd64"]
version_text = st.from_regex(r"\A[0-9][0-9a-z.+~]{0,12}\Z", fullmatch=True)


def _dpkg_cmp(a: str, b: str) -> int:
    if subprocess.run(["dpkg", "--compare-versions", a, "lt", b], timeout=10).returncode == 0:
        return -1
    if subprocess.run(["dpkg", "--compare-versions", a, "eq", b], timeout=10).returncode == 0:
        return 0
    return 1


def test_kernel_release_order_matches_dpkg():
    require(shutil.which("dpkg") is not None, "dpkg is needed as the reference implementation")
    for a in KERNELS:
        for b in KERNELS:
            assert compare_versions(a, b) == _dpkg_cmp(a, b), (a, b)


@settings(max_examples=300, deadline=None)
@given(version_text, version_text)
def test_version_order_matches_dpkg_property(a, b):
    require(shutil.which("dpkg") is not None, "dpkg is needed as the reference implementation")
    assert compare_versions(a, b) == _dpkg_cmp(a, b)


def test_proc_and_unit_parsers():
    from hyperward.parsers.proc import (
        cpu_count, deleted_mappings, machine_slice, net_listeners, parse_mounts, qemu_cpu_pm, qemu_guest_name, sasl_mech_list,
    )
    from hyperward.parsers.systemd import last, parse_unit

    header = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    tcp6 = header + (
        "   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n"
        "   1: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0\n"
        "   2: 0000000000000000FFFF00000100007F:3F0D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0\n"
        "   3: 00000000000000000000000001000000:0277 00000000000000000000000001000000:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0\n"
    )
    assert [(l.address, l.port) for l in net_listeners(tcp6, "tcp6")] == [("::", 22), ("::1", 631), ("::ffff:127.0.0.1", 16141)]
    tcp = header + "   0: 0100007F:407D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1 0 100 0 0 10 0\n"
    assert [(l.protocol, l.address, l.port) for l in net_listeners(tcp, "tcp")] == [("tcp", "127.0.0.1", 16509)]
    assert parse_mounts("/dev/sda1 /mnt/my\\040disk ext4 rw 0 0\n")[0].target == "/mnt/my disk"
    assert qemu_guest_name(["qemu-system-x86_64", "-name", "guest=a,,b,debug-threads=on"]) == "a,b"
    assert qemu_guest_name(["kvm", "-name", "web01"]) == "web01"
    assert qemu_cpu_pm(["qemu", "-overcommit", "mem-lock=off,cpu-pm=on"]) and not qemu_cpu_pm(["qemu", "-overcommit", "cpu-pm=off"])
    assert machine_slice("12:pids:/machine.slice/x\n0::/machine.slice/machine-qemu\\x2d1\\x2dvm.scope/libvirt/emulator\n").startswith("/machine.slice/machine-qemu")
    maps = ("7f00-7f01 r-xp 0 fe:01 1 /usr/lib/x86_64-linux-gnu/libssl.so.3 (deleted)\n"
            "7f01-7f02 rw-s 0 00:01 2 /memfd:pc.ram (deleted)\n7f02-7f03 rw-s 0 00:01 3 /SYSV00000000 (deleted)\n"
            "7f03-7f04 r--p 0 fe:01 4 /usr/share/locale/de/LC_MESSAGES/libc.mo (deleted)\n")
    assert deleted_mappings(maps) == ["/usr/lib/x86_64-linux-gnu/libssl.so.3"]
    assert cpu_count("0-3,6,8-9\n") == 7 and cpu_count("garbage") is None
    assert sasl_mech_list("# c\nmech_list: gssapi scram-sha-256\n") == ["gssapi", "scram-sha-256"] and sasl_mech_list("keytab: x\n") is None
    unit = parse_unit(["[Socket]\nListenStream=/run/libvirt/libvirt-sock\nSocketMode=0666\n", "[Socket]\nSocketMode=0600\nListenStream=\nListenStream=/run/x.sock\n"])
    assert last(unit, "Socket", "SocketMode") == "0600" and unit["Socket"]["ListenStream"] == ["/run/x.sock"]


# Documentation/admin-guide/tainted-kernels.rst, "Table for decoding tainted state": bit, letter
TAINT_LETTERS = "PFSRMBUDAWCIOELKXTNJ"


@pytest.mark.parametrize("bit", range(len(TAINT_LETTERS)))
def test_every_taint_bit_decodes_to_its_documented_letter(bit):
    [(decoded_bit, letter, meaning)] = decode_taint(1 << bit)
    assert (decoded_bit, letter) == (bit, TAINT_LETTERS[bit]) and meaning


def test_domain_state_names_are_libvirts_own():
    """virDomainState as the libvirt binding numbers it: the monitor names a guest's state by it."""
    from libvirt_validate import available

    require(available(), "python3-libvirt")
    import libvirt

    from hyperward.parsers.domstats import STATE_NAMES, parse_domain_stats

    for code, name in enumerate(STATE_NAMES):
        assert getattr(libvirt, f"VIR_DOMAIN_{name.upper()}") == code
        assert parse_domain_stats("g", "u", {"state.state": code}).state == name
    assert len(STATE_NAMES) == libvirt.VIR_DOMAIN_PMSUSPENDED + 1
    assert parse_domain_stats("g", "u", {"state.state": len(STATE_NAMES)}).state == "unknown"


def test_aide_invalid_negative_rule_is_ignored_as_aide_does():
    """A negative rule that is no valid regex excludes nothing (AIDE ignores it); it must not stop
    the evaluation of the rules around it."""
    from hyperward.parsers.aide import AideSelection

    rules = [("/", "/etc"), ("!", "/etc/[")]
    assert AideSelection(rules).covers("/etc/libvirt/qemu.conf") is True
    assert AideSelection([*rules, ("!", "/etc/libvirt")]).covers("/etc/libvirt/qemu.conf") is False
    assert AideSelection([*rules, ("!", r"/etc/libvirt/.*\.bak$")]).covers("/etc/libvirt/qemu.conf") is True  # a valid one that does not match
    assert AideSelection([*rules, ("!", r"/etc/libvirt/.*\.bak")]).covers("/etc/libvirt/qemu.conf") is True   # nor without the $
    assert AideSelection([*rules, ("!", r"/etc/libvirt/q")]).covers("/etc/libvirt/qemu.conf") is False          # without $ a prefix excludes


def test_account_file_field_counts():
    """passwd needs its seven fields (the shell is the seventh) and a numeric UID, group its four;
    NIS lines (+/-) and comments are no groups; a shadow line needs only name and hash."""
    from hyperward.parsers.auth_files import passwd_entries, shadow_schemes

    assert passwd_entries("root:x:0:0:root:/root:/bin/bash\nshort:x:0:0:gecos:/home\n+::::::\n") == [("root", 0, "/bin/bash")]
    groups = parse_group("kvm:x:104:alice\n+:::\n-evil:x:0:bob\n#c:x:1:eve\nthree:x:5\nlibvirt:x:110:\n")
    assert sorted(groups) == ["kvm", "libvirt"]
    assert shadow_schemes("alice:$6$salt$hash\nbob\n:$1$x$y\n") == {"alice": "sha512"}


@pytest.mark.parametrize("option,scheme", [("-1", "md5"), ("-5", "sha256"), ("-6", "sha512")])
def test_hash_schemes_of_real_hashes(option, scheme):
    """Hashes crypt(3) produces, made by openssl passwd, are named by their scheme."""
    from hyperward.parsers.auth_files import hash_scheme

    openssl = shutil.which("openssl")
    require(openssl is not None, "openssl (Debian package)")
    made = subprocess.run([openssl, "passwd", option, "-salt", "hyperward", "secret"], capture_output=True, text=True, timeout=30, check=True)
    assert hash_scheme(made.stdout.strip()) == scheme
    for locked in ("!" + made.stdout.strip(), "*", "!", "x", "NP", "!!"):
        assert hash_scheme(locked) == "locked"
    assert hash_scheme("") == "empty"


def test_mounts_parse_as_findmnt_lists_them():
    """This machine's /proc/self/mounts, read by the parser, gives the same mount points and
    filesystem types as util-linux's findmnt (octal escapes in paths included)."""
    from hyperward.parsers.proc import parse_mounts

    findmnt = shutil.which("findmnt")
    require(findmnt is not None, "util-linux's findmnt")
    listed = subprocess.run([findmnt, "-r", "-n", "-k", "-o", "TARGET,FSTYPE"], capture_output=True, text=True, timeout=30, check=True).stdout
    theirs = [tuple(line.split(" ", 1)) for line in listed.splitlines()]
    unescape = lambda s: s.encode().decode("unicode_escape")  # findmnt -r prints \x20 for a blank
    ours = [(m.target, m.fstype) for m in parse_mounts(pathlib.Path("/proc/self/mounts").read_text())]
    assert sorted(ours) == sorted((unescape(t), f) for t, f in theirs)


@pytest.mark.parametrize("pattern,why", [
    (r"/etc/(a)\1", "backreference"), (r"/etc/(?P<x>a)(?(x)b|c)", "backreference"),
    (r"/etc/(x+x+)+y", "nested quantifiers"), (r"/etc/(ab|cd)*e", "alternation under a quantifier"),
    (r"/etc/libvirt/[0-9a-f]{8}-[0-9a-f]{4}", None), (r"/etc/libvirt/.*\.xml$", None), (r"/etc/(a|b)c", None),
])
def test_aide_rule_hazards(pattern, why):
    """Each kind of regex that may backtrack for seconds is named and never run; exact repeats
    (UUID rules), one variable repeat and a plain alternation are run."""
    from hyperward.parsers.aide import _hazard

    assert _hazard(pattern) == why


def test_tracker_severity_is_the_most_urgent_release():
    """The Debian tracker rates urgency per release; the record takes the most urgent one."""
    from hyperward.parsers.advisories import parse_debian_tracker

    def severity(*urgencies: str) -> str | None:
        releases = {name: {"status": "resolved", "fixed_version": "1.1-1", "urgency": u} for name, u in zip(("bookworm", "bullseye", "trixie"), urgencies)}
        [record] = list(parse_debian_tracker({"qemu": {"CVE-2099-0001": {"releases": releases}}}))
        return record.severity  # type: ignore[union-attr]

    assert severity("low", "medium") == "medium"
    assert severity("unimportant", "low") == "low"
    assert severity("medium", "high", "low") == "high"
    assert severity("unimportant") == "unimportant"


def test_apt_conf_comments_of_every_form_are_skipped():
    conf = parse_apt_conf('// APT::Periodic::Unattended-Upgrade "1";\n/* APT::Periodic::Update-Package-Lists "1"; */\n'
                          '# APT::Periodic::AutocleanInterval "7";\nAPT::Periodic::Download-Upgradeable-Packages "1";\n')
    assert conf == {"apt::periodic::download-upgradeable-packages": "1"}


def test_libvirt_conf_line_not_starting_with_a_name_is_an_error():
    with pytest.raises(LibvirtConfError) as raised:
        parse_libvirt_conf('listen_tls = 0\n"auth_tcp" = "none"\n')
    assert "line 2" in str(raised.value) and "expected a setting name" in str(raised.value)


def test_deleted_mappings_skip_shared_memory_and_devices():
    """A deleted library or QEMU binary still mapped means a process runs old code; memfd, SysV
    shared memory and /dev/shm files are no such thing."""
    from hyperward.parsers.proc import deleted_mappings

    line = "7f0000000000-7f0000001000 r-xp 00000000 08:01 1234 {} (deleted)\n"
    maps = "".join(line.format(p) for p in ("/usr/lib/x86_64-linux-gnu/libssl.so.3", "/usr/bin/qemu-system-x86_64", "/dev/shm/qemu-ram.so",
                                               "/memfd:qemu-ram.so", "/SYSV00000000", "/[aio].so", "/var/lib/x/notes.txt"))
    assert deleted_mappings(maps) == ["/usr/bin/qemu-system-x86_64", "/usr/lib/x86_64-linux-gnu/libssl.so.3"]

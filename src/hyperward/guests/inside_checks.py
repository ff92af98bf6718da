"""Checks over what the guests' disks hold (guests/inspect), written once for every platform.

A guest's own patch level, SSH and accounts are judged by the host checks' own logic, run over a
copy of the host's facts whose patching and access are the guest's: a guest is held to the same
rules as its host. The stepping stones (credentials that lead from a guest to the host or to
another guest) are compared by fingerprint and scan-keyed token only.

Every result names the guest; a guest read while running says its files may have been caught
mid-write. A guest whose disks could not be read is not applicable with the reason (encrypted,
corrupt, outside its pool), never a pass.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections import defaultdict
from collections.abc import Callable, Iterator

from ..checks.access import local_accounts, ssh_config
from ..checks.patching import apk_pending_updates, pending_updates
from ..checks.vulnerabilities import known_cves
from ..engine import check
from ..facts import GuestInside, GuestScanFacts, HostFacts, Lifecycle, OsRelease
from ..model import Details, Result, Status, Unavailable

NOT_SCANNED = ("the guests' disks were not looked inside: their images (/var/lib/libvirt/images and the other pools) are read "
               "only when asked (hyperward scan --guests, or hyperward guests scan)")
MID_WRITE = " [read while the guest ran: files may be mid-write]"


def _about(inside: GuestInside) -> dict[str, str | None]:
    return {"guest": inside.name, "guest_id": inside.guest_id, "platform": inside.platform}


def _for(inside: GuestInside, result: Result, own_resource: bool = True) -> Result:
    resource = f"{inside.label}: {result.resource}" if own_resource and result.resource not in ("host", "") else inside.label
    message = result.message + (MID_WRITE if inside.running and result.status is not Status.NOT_APPLICABLE else "")
    return dataclasses.replace(result, resource=resource, message=message).on(inside.platform).with_details(**_about(inside))


def _scan(host: HostFacts) -> GuestScanFacts | Result:
    scan = host.guest_insides
    if scan is None:
        return Result.not_applicable(NOT_SCANNED)
    if not scan.guests:
        return Result.not_applicable("no guest to scan inside")
    return scan


def each_inside(host: HostFacts, judge: Callable[[GuestInside], Iterator[Result]], windows: bool = False) -> Iterator[Result]:
    """`windows`: the judge also reads Windows guests, of which only the registry's release is
    known; other judges give them not applicable."""
    scan = _scan(host)
    if isinstance(scan, Result):
        yield scan
        return
    for inside in scan.guests:
        if not inside.scanned:
            yield _for(inside, Result.not_applicable(f"not scanned inside: {inside.reason}"), own_resource=False)
            continue
        if not windows and (inside.patching is None or inside.access is None):
            yield _for(inside, Result.not_applicable(f"{inside.os_product or 'a guest without a Linux root'}: only its release is read "
                                                     "(its packages, accounts, keys and credentials are not)"), own_resource=False)
            continue
        yield from (_for(inside, r) for r in judge(inside))


def _as_guest(host: HostFacts, inside: GuestInside) -> HostFacts:
    assert inside.patching is not None and inside.access is not None
    return dataclasses.replace(host, patching=inside.patching, access=inside.access)


@check("HV-PATCH-070",
    fix="inside the guest: apt-get update && apt-get upgrade, or apk update && apk upgrade on Alpine (then reboot it for a kernel)",
    references=("apt_preferences(5) (candidate selection)", "Debian Security Advisories", "apk-repositories(5) (indexes cached under /var/cache/apk)"),
)
def guest_pending_updates(host: HostFacts) -> Iterator[Result]:
    """A guest that can be broken into is a foothold next to the hypervisor. Its pending updates
    are computed from its own apt lists, sources and pins exactly as HV-PATCH-001 does for the host;
    an Alpine guest's from the indexes its apk cached, compared in apk's version order."""

    def judge(inside: GuestInside) -> Iterator[Result]:
        guest = _as_guest(host, inside)
        if isinstance(guest.patching.packages, Unavailable):
            # no inventory, so no apt or apk state: the reason is the inventory's (a refused link names it)
            return iter([Result.unavailable(guest.patching.packages, "packages")])
        if guest.patching.apk_state is not None and guest.patching.apt_state is None:
            return apk_pending_updates(guest)
        return pending_updates(guest)

    yield from each_inside(host, judge)


def _table_age(found: Lifecycle, day: str) -> int | None:
    """How many days past its max age the sourced table behind FOUND was on DAY (YYYY-MM-DD);
    None when it was within it or the date did not come from the table. A compile date that is
    not a date (a hand-edited snapshot) counts as past it: it vouches for nothing."""
    if not found.table_compiled or not found.table_max_age_days:
        return None
    try:
        age = (datetime.date.fromisoformat(day) - datetime.date.fromisoformat(found.table_compiled)).days
    except ValueError:
        return found.table_max_age_days + 1
    return age if age > found.table_max_age_days else None


@check("HV-PATCH-071",
    fix="upgrade the guest to a supported release (Debian: apt full-upgrade to the next stable; Ubuntu: do-release-upgrade; Alpine: the next "
        "branch in /etc/apk/repositories; Windows: an in-place upgrade to a supported release), or enrol it in the vendor's extended "
        "programme and rebuild it later",
    references=("Debian distro-info-data (debian.csv, ubuntu.csv)", "Debian LTS (wiki.debian.org/LTS)", "Red Hat Enterprise Linux Life Cycle",
                "Alpine Linux releases (alpinelinux.org/releases)", "Microsoft Lifecycle (learn.microsoft.com/lifecycle/products)"),
)
def guest_end_of_life(host: HostFacts) -> Iterator[Result]:
    """A release past its end of life gets no more security updates: whatever is found in it from
    then on stays open, and no advisory database lists it. The date is the vendor's (Debian's
    distro-info-data on the scanning host, hyperward's sourced table for the others); a paid
    extension counts only where the guest's sources show it is used. A "supported until" from
    the sourced table holds only while the table is younger than its max_age_days (365) at the
    facts' collection: past that the release is not applicable, naming the table's age and
    `hyperward db update` (a vendor may have moved the date); a date already passed fails
    whatever the table's age. A table that cannot be loaded is not applicable with its path and
    reason, as every unknown end of life is here."""

    def judge(inside: GuestInside) -> Iterator[Result]:
        found = inside.lifecycle
        if found is None:
            yield Result.not_applicable("the guest's release was not looked up (a snapshot older than this check)")
            return
        if isinstance(found, Unavailable):
            yield Result.not_applicable(f"end of life unknown: {found.reason}")
            return
        if found.released is None:
            yield Result.not_applicable(f"{found.name} is a development release (testing or unstable): it has no security support "
                                        "calendar to judge")
            return
        if found.eol is None:
            yield Result.passed("release", f"{found.name}: supported, no end of life announced yet ({found.source})")
            return
        today = host.meta.collected_at[:10]
        end, label = found.eol, found.eol_label
        if found.extended_in_use and found.extended:
            end, label = found.extended, f"{found.extended_label}, which the guest's sources use"
        details: Details = {"release": found.name, "end_of_life": end, "support": label, "source": found.source}
        if today > end:
            after = (f"; {found.extended_label} runs to {found.extended} for guests enrolled in it"
                     if found.extended and not found.extended_in_use and found.extended > today else "")
            yield Result.fail(f"release {found.name}", f"{found.name} is past its end of life: {label} ended {end}{after} ({found.source})",
                              details=details)
        elif (age := _table_age(found, today)) is not None:
            yield Result.not_applicable(f"{found.name}: supported until {end} by hyperward's lifecycle table, but the table is {age} days "
                                        f"older than the scan (compiled {found.table_compiled}, trusted for {found.table_max_age_days} "
                                        "days): the vendor may have moved the date since; run `hyperward db update`",
                                        f"release {found.name}", details=details)
        else:
            yield Result.passed(f"release {found.name}", f"{found.name}: supported until {end} ({label}; {found.source})", details=details)

    yield from each_inside(host, judge, windows=True)


@check("HV-VULN-070",
    fix="inside the guest: apt-get update && apt-get upgrade (dnf upgrade --security on RHEL rebuilds, apk upgrade on Alpine) for the listed packages",
    references=("OSV schema (ossf.github.io/osv-schema)", "Debian security tracker (security-tracker.debian.org)"),
)
def guest_known_cves(host: HostFacts) -> Iterator[Result]:
    """The guest's installed packages (dpkg status, its rpm database or apk's) matched against the
    advisory database in its own ecosystem and release, by the matching HV-VULN-001 uses for the host."""
    yield from each_inside(host, lambda inside: known_cves(_as_guest(host, inside)))


@check("HV-AUTH-070",
    fix="inside the guest: PermitRootLogin prohibit-password, PasswordAuthentication no, KbdInteractiveAuthentication no in /etc/ssh/sshd_config.d/",
    references=("sshd_config(5)",),
)
def guest_ssh(host: HostFacts) -> Iterator[Result]:
    """The guest's effective sshd configuration (Include and Match followed), judged as HV-AUTH-013
    judges the host's: password and root logins are how a guest is taken before the host is tried."""
    yield from each_inside(host, lambda inside: ssh_config(_as_guest(host, inside)))


@check("HV-AUTH-071",
    fix="inside the guest: lock or re-hash the listed accounts (passwd -l, chpasswd with yescrypt), give root alone UID 0, remove NOPASSWD: ALL",
    references=("shadow(5), crypt(5)", "sudoers(5)", "login.defs(5)"),
)
def guest_accounts(host: HostFacts) -> Iterator[Result]:
    """Empty or weakly hashed passwords, a second UID 0 and passwordless sudo to ALL in the guest,
    judged as HV-AUTH-015 judges the host's; hashes by scheme only."""
    yield from each_inside(host, lambda inside: local_accounts(_as_guest(host, inside)))


@check("HV-AUTH-072",
    fix="remove the private key from the guest and its public half from the host's authorized_keys; give the guest's automation a key the host does not trust",
    references=("sshd(8) AUTHORIZED_KEYS FILE FORMAT", "MITRE ATT&CK T1552.004 (Private Keys)", "MITRE ATT&CK T1021.004 (Remote Services: SSH)"),
)
def guest_key_trusted_by_host(host: HostFacts) -> Iterator[Result]:
    """Whoever is root in the guest reads its private keys; a key whose public half the host's sshd
    accepts (any account's authorized_keys, AuthorizedKeysFile targets, the Proxmox cluster's
    shared file) takes them from the guest to the host. Compared by SHA256 fingerprint."""
    scan = _scan(host)
    if isinstance(scan, Result):
        yield scan
        return
    trusted = defaultdict(list)
    for ref in scan.host.trusted:
        trusted[ref.fingerprint].append(ref)
    for problem in scan.host.problems:
        yield Result.unavailable(problem, problem.path)
    if not scan.host.trusted:
        note = "the host trusts no SSH key (no authorized_keys found)"
    else:
        note = f"the host trusts {len(trusted)} key(s)"

    def judge(inside: GuestInside) -> Iterator[Result]:
        hits = [(k, t) for k in inside.keys if k.role == "user" for t in trusted.get(k.fingerprint, [])]
        for key, where in hits:
            yield Result.fail(f"{key.path}", f"private key {key.fingerprint} ({key.kind}) is trusted by the host: {where.path} "
                                             f"(account {where.owner})", details={"fingerprint": key.fingerprint, "file": key.path,
                                                                                   "host_file": where.path, "host_account": where.owner})
        if not hits:
            mine = len([k for k in inside.keys if k.role == "user"])
            yield Result.passed("private keys", f"{mine} private key(s) in the guest, none trusted by the host; {note}")

    yield from each_inside(host, judge)


@check("HV-AUTH-073",
    fix="delete the copied key from the guest, then rotate it on the host (ssh-keygen -A after removing /etc/ssh/ssh_host_*; a new identity key and authorized_keys entries)",
    references=("sshd(8) HostKey", "MITRE ATT&CK T1552.004 (Private Keys)"),
)
def host_key_in_guest(host: HostFacts) -> Iterator[Result]:
    """A host's SSH host key in a guest lets the guest impersonate the host to every admin who
    connects; a host identity key there opens whatever that key opens. Either is found by
    fingerprint among the guest's private keys."""
    scan = _scan(host)
    if isinstance(scan, Result):
        yield scan
        return
    own = {k.fingerprint: k for k in scan.host.own_keys}

    def judge(inside: GuestInside) -> Iterator[Result]:
        hits = [(k, own[k.fingerprint]) for k in inside.keys if k.fingerprint in own]
        for key, mine in hits:
            what = "SSH host key" if mine.role == "host" else f"private key of host account {mine.owner}"
            yield Result.fail(key.path, f"holds the host's {what} {key.fingerprint} (host: {mine.path})",
                              details={"fingerprint": key.fingerprint, "file": key.path, "host_file": mine.path})
        if not hits:
            yield Result.passed("host's keys", f"none of the host's {len(own)} key(s) found in the guest")

    yield from each_inside(host, judge)


@check("HV-AUTH-074",
    fix="regenerate the host keys in each clone: rm /etc/ssh/ssh_host_* && ssh-keygen -A (or dpkg-reconfigure openssh-server), and make templates run it on first boot (cloud-init ssh_deletekeys)",
    references=("sshd(8) HostKey", "cloud-init cc_ssh (ssh_deletekeys)", "virt-sysprep(1) ssh-hostkeys operation"),
)
def shared_guest_host_keys(host: HostFacts) -> Iterator[Result]:
    """Clones that kept their template's SSH host key can impersonate each other: a client that
    trusts one accepts all. Found by fingerprint across every scanned guest."""
    scan = _scan(host)
    if isinstance(scan, Result):
        yield scan
        return
    holders = defaultdict(list)
    for inside in scan.guests:
        for key in inside.keys:
            if key.role == "host":
                holders[key.fingerprint].append(inside.label)

    def judge(inside: GuestInside) -> Iterator[Result]:
        shared = False
        for key in inside.keys:
            if key.role != "host":
                continue
            others = sorted(set(holders[key.fingerprint]) - {inside.label})
            if others:
                shared = True
                yield Result.fail(key.path, f"SSH host key {key.fingerprint} ({key.kind}) is also the host key of {', '.join(others)}",
                                  details={"fingerprint": key.fingerprint, "file": key.path, "also_in": others})
        if not shared:
            yield Result.passed("host keys", f"{len([k for k in inside.keys if k.role == 'host'])} host key(s), none shared with another guest")

    yield from each_inside(host, judge)


@check("HV-AUTH-075",
    fix="set a distinct password in the guest (passwd), or lock it (passwd -l) and use keys; never reuse the host's",
    references=("NIST SP 800-63B 5.1.1 (memorized secrets)", "CIS Controls v8 5.2 (unique passwords)", "crypt(5)"),
)
def shared_password_hashes(host: HostFacts) -> Iterator[Result]:
    """The same crypt string on the host and in a guest (or in two guests) is the same password
    and salt: cracked or phished once, it opens both. Compared as tokens keyed with a secret drawn
    for this scan; no hash is kept or shown."""
    scan = _scan(host)
    if isinstance(scan, Result):
        yield scan
        return
    on_host = defaultdict(list)
    for ref in scan.host.hashes:
        on_host[ref.token].append(ref.user)
    in_guests = defaultdict(list)
    for inside in scan.guests:
        for ref in inside.hashes:
            in_guests[ref.token].append((inside.label, ref.user))

    def judge(inside: GuestInside) -> Iterator[Result]:
        found = False
        for ref in inside.hashes:
            if ref.token in on_host:
                found = True
                yield Result.fail(f"account {ref.user}", f"same password hash as host account(s) {', '.join(sorted(on_host[ref.token]))}",
                                  details={"account": ref.user, "host_accounts": sorted(on_host[ref.token])})
            others = sorted({f"{label} account {user}" for label, user in in_guests[ref.token] if label != inside.label})
            if others:
                found = True
                yield Result.fail(f"account {ref.user}", f"same password hash as {', '.join(others)}", severity=None,
                                  details={"account": ref.user, "also_in": others})
        if not found:
            yield Result.passed("accounts", f"{len(inside.hashes)} password hash(es), none shared with the host or another guest")

    yield from each_inside(host, judge)


@check("HV-AUTH-076",
    fix="remove the credential from the guest (cloud-init: hashed_passwd or ssh keys only, then delete /var/lib/cloud/instance/user-data.txt; detach the seed ISO); rotate it on the hypervisor",
    references=("cloud-init docs: Set Passwords (cc_set_passwords) and Users and Groups", "libvirt: Client authentication (auth.conf)",
                "Proxmox VE API tokens (pveum)", "MITRE ATT&CK T1552.001 (Credentials In Files)"),
)
def guest_stored_credentials(host: HostFacts) -> Iterator[Result]:
    """Plaintext passwords left by provisioning (cloud-init user-data, NoCloud seed volumes) and
    hypervisor credentials stored in a guest (libvirt auth.conf, Proxmox API tokens, vSphere
    passwords) are read by whoever is root in it. Reported by file, line and kind, never the value."""

    def judge(inside: GuestInside) -> Iterator[Result]:
        for ref in inside.secrets:
            yield Result.fail(f"{ref.path}:{ref.line}", ref.kind, details={"file": ref.path, "line": ref.line, "kind": ref.kind})
        if not inside.secrets:
            yield Result.passed("files", "no plaintext provisioning password or hypervisor credential found")

    yield from each_inside(host, judge)


@check("HV-ISO-070",
    fix="replace the symbolic link with the image itself inside the pool (or define the pool where the image lives); find who planted it",
    references=("libvirt storage pools (formatstorage)", "CWE-59 (link following)"),
)
def disk_outside_pool(host: HostFacts) -> Iterator[Result]:
    """A guest disk that is a symbolic link out of its storage directory gives the guest (and
    whoever could write the pool) a host file of their choosing as a disk: /etc/shadow, another
    tenant's image, a host block device. hyperward does not follow it."""
    scan = _scan(host)
    if isinstance(scan, Result):
        yield scan
        return
    for inside in scan.guests:
        bad = [d for d in inside.disks if d.status == "outside-pool"]
        for disk in bad:
            yield _for(inside, Result.fail(disk.source, disk.reason, details={"file": disk.source}))
        if not bad:
            yield _for(inside, Result.passed("disks", f"{len(inside.disks)} disk(s) inside their storage directories"))


@check("HV-SCAN-070",
    fix="make the listed disks readable to hyperward (install libguestfs, fix or restore the image); encrypted guests need an agent-based scan",
    references=("libguestfs(3) (read-only drives, inspection)", "qemu-img(1) info"),
)
def guests_scanned_inside(host: HostFacts) -> Iterator[Result]:
    """Which guests hyperward could look inside, and why not where it could not: a corrupt or
    truncated image, a broken backing chain, an encrypted disk. A guest not scanned is a guest
    whose patch level nobody knows."""
    scan = _scan(host)
    if isinstance(scan, Result):
        yield scan
        return
    for problem in scan.problems:
        yield Result.error(problem, "guest scan")
    for inside in scan.guests:
        errors = [d for d in inside.disks if d.status == "error"]
        for disk in errors:
            yield _for(inside, Result.error(f"{disk.source}: {disk.reason}", disk.source))
        encrypted = [d for d in inside.disks if d.status == "encrypted"]
        if inside.scanned:
            what = inside.os_product or (inside.os.id if isinstance(inside.os, OsRelease) else "unknown OS")
            yield _for(inside, Result.passed("inside", f"scanned: {what}; filesystems {', '.join(inside.filesystems) or 'none'}"
                                                        + (f"; {'; '.join(inside.notes)}" if inside.notes else "")))
        elif encrypted and not errors:
            yield _for(inside, Result.not_applicable(f"encrypted disk(s), not opened: {', '.join(d.source for d in encrypted)}"), own_resource=False)
        elif not errors:
            yield _for(inside, Result.fail("inside", f"not scanned: {inside.reason}"))

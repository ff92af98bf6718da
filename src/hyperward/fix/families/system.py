"""Host files outside libvirt: pwquality.conf, login.defs, journald (a drop-in, read after
journald.conf), audit rules, and systemd socket drop-ins for libvirt's sockets."""

from __future__ import annotations

from ..plan import Context, Failing, Fix, Manual, Needs, SetKey, WriteFile, fixer

AUDIT_RULE = "# hyperward fix (HV-IDS-002)\n-w /etc/libvirt/ -p wa -k libvirt-config\n"


@fixer("HV-AUTH-015")
def password_policy(finding: Failing, context: Context) -> Fix | None:
    if finding.resource == "password policy" and "minlen" in finding.message:
        return Fix((SetKey("/etc/security/pwquality.conf", "minlen", "14", "equals"),))
    if finding.resource == "login.defs" and "ENCRYPT_METHOD" in finding.message:
        return Fix((SetKey("/etc/login.defs", "ENCRYPT_METHOD", "YESCRYPT", "keyword"),),
                   (Needs("command", "re-hash existing passwords: they keep their old hash until changed (passwd USER)"),))
    return None


@fixer("HV-MON-001")
def journald(finding: Failing, context: Context) -> Fix | None:
    if finding.resource != "journald" or "Storage=" not in finding.message:
        return None
    return Fix((WriteFile("/etc/systemd/journald.conf.d/zz-hyperward.conf",
                          "# hyperward fix (HV-MON-001): keep the journal across reboots\n[Journal]\nStorage=persistent\n"),),
               (Needs("restart", "systemd-journald"),))


@fixer("HV-IDS-002")
def audit_rules(finding: Failing, context: Context) -> Fix | None:
    if finding.resource == "/etc/libvirt":
        return Fix((WriteFile("/etc/audit/rules.d/hyperward-libvirt.rules", AUDIT_RULE),), (Needs("command", "augenrules --load"),))
    if finding.resource == "auditd":
        return Fix((Manual("enable auditd (systemctl enable --now auditd): hyperward does not start services"),))
    return None


def for_socket(finding: Failing, context: Context) -> Fix | None:
    """HV-AUTH-006's -admin.socket unit: SocketMode=0600 in a drop-in sorted after the others."""
    unit = finding.resource
    if not unit.endswith("-admin.socket") or "/" in unit or not unit.replace("-", "").replace(".", "").isalnum():
        return None
    return Fix((WriteFile(f"/etc/systemd/system/{unit}.d/zz-hyperward.conf",
                          "# hyperward fix (HV-AUTH-006): the admin socket for root only\n[Socket]\nSocketMode=0600\n"),),
               (Needs("command", f"systemctl daemon-reload && systemctl restart {unit}"),))


def manual(text: str) -> Fix:
    return Fix((Manual(text),))


APT_PERIODIC = "/etc/apt/apt.conf.d/20auto-upgrades"


@fixer("HV-PATCH-005")
def unattended_upgrades(finding: Failing, context: Context) -> Fix | None:
    """APT::Periodic in the file dpkg-reconfigure unattended-upgrades writes; the package itself is
    for a person to install (hyperward installs nothing)."""
    edits: list[SetKey | Manual] = []
    for key in ("APT::Periodic::Update-Package-Lists", "APT::Periodic::Unattended-Upgrade"):
        if f"{key} is '" in finding.message:
            edits.append(SetKey(APT_PERIODIC, key, "1", "apt"))
    if "unattended-upgrades is not installed" in finding.message:
        edits.append(Manual("apt install unattended-upgrades (the APT::Periodic settings do nothing without it)"))
    return Fix(tuple(edits)) if edits else None

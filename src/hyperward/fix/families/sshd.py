"""sshd: the key rewritten where the scan found it (that file and only that key, Match blocks
included), or, when OpenSSH's default is the problem, set in a drop-in read before the others
(/etc/ssh/sshd_config.d/00-hyperward-KEY.conf: for sshd the first value obtained wins)."""

from __future__ import annotations

from ...parsers.sshd import DEFAULTS, weak_algorithms
from ..plan import Context, Failing, Fix, Manual, Needs, SetKey, WriteFile, fixer

SAFE = {
    "permitrootlogin": "prohibit-password",
    "passwordauthentication": "no",
    "kbdinteractiveauthentication": "no",
    "challengeresponseauthentication": "no",
    "permitemptypasswords": "no",
}
CANONICAL = {"permitrootlogin": "PermitRootLogin", "passwordauthentication": "PasswordAuthentication",
             "kbdinteractiveauthentication": "KbdInteractiveAuthentication", "permitemptypasswords": "PermitEmptyPasswords",
             "challengeresponseauthentication": "ChallengeResponseAuthentication",
             "ciphers": "Ciphers", "macs": "MACs", "kexalgorithms": "KexAlgorithms"}


def strong_list(kind: str) -> str:
    """OpenSSH's default list without what HV-AUTH-016 counts as weak."""
    algorithms = DEFAULTS[kind].split(",")
    weak = set(weak_algorithms(kind, algorithms))
    return ",".join(a for a in algorithms if a not in weak)


def _key(finding: Failing) -> str | None:
    key = finding.details.get("key")
    if isinstance(key, str):
        return key
    word = finding.message.split(" ", 1)[0]
    return word if word.lower() in CANONICAL else None


@fixer("HV-AUTH-013", "HV-AUTH-016")
def sshd_key(finding: Failing, context: Context) -> Fix | None:
    key = _key(finding)
    if key is None:
        return None
    lower = key.lower()
    value = SAFE.get(lower) or (strong_list(lower) if lower in ("ciphers", "macs", "kexalgorithms") else None)
    if value is None:
        return None
    name = CANONICAL[lower]
    needs = (Needs("command", "sshd -t && systemctl reload ssh"),)
    path = finding.details.get("file")
    if isinstance(path, str) and path.startswith("/etc/ssh/"):
        return Fix((SetKey(path, name, value, "sshd", append=False),), needs)
    main = context.read("/etc/ssh/sshd_config") or ""
    if not any(line.strip().lower().startswith("include /etc/ssh/sshd_config.d/") for line in main.splitlines()):
        return Fix((Manual(f"add '{name} {value}' to /etc/ssh/sshd_config before any Match block "
                           "(it has no Include of /etc/ssh/sshd_config.d)"),), needs)
    return Fix((WriteFile(f"/etc/ssh/sshd_config.d/00-hyperward-{lower}.conf", f"# hyperward fix ({finding.check_id})\n{name} {value}\n"),), needs)

"""Who can log in to the hypervisor and how: SSH server settings, multi-factor authentication for
sshd and sudo, local password hashes, UID 0 accounts, passwordless sudo and the password policy."""

from __future__ import annotations

from collections.abc import Iterator

from ..engine import check
from ..facts import AccessFacts, HostFacts, SshFacts
from ..model import Details, Result, Unavailable, is_missing
from ..parsers.auth_files import WEAK_SCHEMES
from ..parsers.sshd import DEFAULTS, resolve_algorithms, weak_algorithms

NAMES = {"permitrootlogin": "PermitRootLogin", "passwordauthentication": "PasswordAuthentication",
         "kbdinteractiveauthentication": "KbdInteractiveAuthentication", "permitemptypasswords": "PermitEmptyPasswords",
         "authenticationmethods": "AuthenticationMethods", "ciphers": "Ciphers", "macs": "MACs", "kexalgorithms": "KexAlgorithms",
         "usepam": "UsePAM"}
NO_LOGIN_SHELLS = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false", "")
MIN_PASSWORD_LENGTH = 12
#: pam_unix(8): "minlen=n ... The default value is 6", enforced with `obscure` (Debian's stock rule)
PAM_UNIX_MINLEN = 6
#: libpwquality's compiled default minlen (pwquality.conf(5))
PWQUALITY_MINLEN = 8
QUALITY_MODULES = ("pam_pwquality", "pam_cracklib")


def _arg(args: str, name: str) -> str | None:
    for word in args.split():
        if word.startswith(f"{name}="):
            return word.split("=", 1)[1]
    return None


def _length_verdict(minlen: int, how: str) -> Result:
    if minlen < MIN_PASSWORD_LENGTH:
        return Result.fail("password policy", f"{how}: passwords of {minlen} characters are accepted (shorter than {MIN_PASSWORD_LENGTH})")
    return Result.passed("password policy", how)


def _rule_at(access: AccessFacts, module: str) -> Details:
    """The file and line of MODULE's winning `password` rule (common-password or what it includes)."""
    at = access.password_rules.get(module)
    return {"file": at.file, "line": at.line, "key": module} if at else {}


def _password_length(access: AccessFacts) -> Result:
    """The shortest password a passwd change accepts, from the module that enforces it: pam_pwquality
    (its minlen= argument, else pwquality.conf, else libpwquality's 8), else pam_unix's own check."""
    stack = access.password_modules
    quality = access.pwquality
    if isinstance(stack, Unavailable) and not is_missing(stack):
        return Result.unavailable(stack, "password policy")
    modules = stack if isinstance(stack, dict) else {}
    where = "/etc/pam.d/common-password" if not isinstance(stack, Unavailable) else stack.path
    checker = next((m for m in QUALITY_MODULES if m in modules), None)
    if checker is not None or (isinstance(stack, Unavailable) and isinstance(quality, dict)):
        argument = _arg(modules.get(checker or "", ""), "minlen")
        if argument is None and isinstance(quality, Unavailable) and not is_missing(quality):
            return Result.unavailable(quality, "password policy")
        conf = quality if isinstance(quality, dict) else {}
        value, source = (argument, f"{checker}.so minlen={argument} ({where})") if argument is not None else (
            (conf["minlen"], f"pwquality minlen {conf['minlen']} (/etc/security/pwquality.conf)") if "minlen" in conf
            else (str(PWQUALITY_MINLEN), f"pwquality minlen {PWQUALITY_MINLEN} (libpwquality's default; /etc/security/pwquality.conf does not set it)"))
        try:
            minlen = int(value)
        except ValueError:
            minlen = 0
        at = access.pwquality_minlen_at
        where_set: Details = (_rule_at(access, checker or "") if argument is not None else
                              {"file": at.file, "line": at.line, "key": "minlen"} if at and "minlen" in conf else
                              {"file": "/etc/security/pwquality.conf"} if isinstance(quality, dict) else {})
        return _length_verdict(minlen, source).with_details(**where_set)
    if isinstance(stack, Unavailable):
        return Result.not_applicable("password policy unknown: no /etc/pam.d/common-password, /etc/pam.d/system-auth or /etc/security/pwquality.conf", "password policy")
    unix = modules.get("pam_unix")
    if unix is not None:
        argument = _arg(unix, "minlen")
        if argument is not None:
            try:
                minlen = int(argument)
            except ValueError:
                minlen = 0
            return _length_verdict(minlen, f"pam_unix.so minlen={argument} ({where}), no pam_pwquality").with_details(**_rule_at(access, "pam_unix"))
        if "obscure" in unix.split():
            return _length_verdict(PAM_UNIX_MINLEN, f"pam_unix.so obscure ({where}) without minlen= or pam_pwquality: "
                                                    f"pam_unix's default minimum of {PAM_UNIX_MINLEN} characters").with_details(**_rule_at(access, "pam_unix"))
    return Result.fail("password policy", f"{where}: no pam_pwquality, and pam_unix without obscure or minlen=: no minimum password length is enforced")


def _value(ssh: SshFacts, key: str) -> tuple[str, str]:
    """The value sshd uses and where it comes from: sshd -T when it ran, else the parsed files."""
    if isinstance(ssh.sshd_t, dict) and key in ssh.sshd_t:
        return ssh.sshd_t[key], "sshd -T"
    source = ssh.sources.get(key)
    return ssh.values[key], source or "OpenSSH default"


def _requires_two_factors(methods: str) -> bool:
    """AuthenticationMethods "publickey,keyboard-interactive" needs both; "any" or single methods do not."""
    return methods != "any" and all("," in alternative for alternative in methods.split())


def _password_problems(key: str, value: str, ssh: SshFacts) -> str | None:
    value = value.lower()
    if key == "permitrootlogin" and value == "yes":
        return "root may log in with a password"
    if key == "passwordauthentication" and value == "yes":
        return "password logins allowed"
    if key == "kbdinteractiveauthentication" and value == "yes":
        use_pam = _value(ssh, "usepam")[0].lower() == "yes"
        return "keyboard-interactive (PAM password prompts) allowed" if use_pam else None
    if key == "permitemptypasswords" and value == "yes":
        return "accounts with empty passwords may log in"
    return None


def _ssh_facts(host: HostFacts) -> SshFacts | Result:
    ssh = host.access.ssh
    if ssh is None:
        return Result.not_applicable("no /etc/ssh/sshd_config (no SSH server)")
    if isinstance(ssh, Unavailable):
        return Result.unavailable(ssh, "/etc/ssh/sshd_config")
    return ssh


def _ssh_problems(ssh: SshFacts) -> Iterator[Result]:
    for problem in ssh.problems:
        yield Result.unavailable(problem, problem.path)
    if isinstance(ssh.sshd_t, Unavailable):
        yield Result.error(f"sshd -T could not confirm the configuration: {ssh.sshd_t.reason}; judged from the files", "sshd -T")


ALGORITHM_KEYS = ("ciphers", "macs", "kexalgorithms")


@check("HV-AUTH-013",
    fix="set PermitRootLogin prohibit-password (or no), PasswordAuthentication no and KbdInteractiveAuthentication no in /etc/ssh/sshd_config.d/, then reload sshd",
    references=("sshd_config(5)",),
)
def ssh_config(host: HostFacts) -> Iterator[Result]:
    """A hypervisor's SSH is its most exposed door: guessable passwords and root logins are how
    hosts are taken over. (Its algorithms are HV-AUTH-016.)"""
    ssh = _ssh_facts(host)
    if isinstance(ssh, Result):
        yield ssh
        return
    yield from _ssh_problems(ssh)
    methods = _value(ssh, "authenticationmethods")[0]
    two_factor = _requires_two_factors(methods)
    for key in ("permitrootlogin", "passwordauthentication", "kbdinteractiveauthentication", "permitemptypasswords"):
        value, source = _value(ssh, key)
        resource = f"sshd:{NAMES[key]}"
        problem = _password_problems(key, value, ssh)
        if problem and two_factor and key != "permitemptypasswords":
            yield Result.passed(resource, f"{NAMES[key]} {value} ({source}), but AuthenticationMethods {methods} requires a second factor")
        elif problem:
            yield Result.fail(resource, f"{NAMES[key]} {value} ({source}): {problem}")
        else:
            yield Result.passed(resource, f"{NAMES[key]} {value} ({source})")
    for override in ssh.overrides:
        if override.keyword in ALGORITHM_KEYS:
            continue
        problem = _password_problems(override.keyword, override.value, ssh)
        if problem:
            yield Result.fail(f"sshd:Match {override.criteria}", f"{NAMES.get(override.keyword, override.keyword)} {override.value} ({override.source}): {problem}")


@check("HV-AUTH-016",
    fix="set explicit Ciphers, MACs and KexAlgorithms lists without the listed algorithms in /etc/ssh/sshd_config.d/, then reload sshd",
    references=("sshd_config(5) Ciphers, MACs, KexAlgorithms", "ssh-audit", "Mozilla OpenSSH security guideline", "BSI TR-02102-4"),
)
def ssh_algorithms(host: HostFacts) -> Iterator[Result]:
    """Broken algorithms undo the encryption or integrity of every session, however strong the
    login. Weak means what ssh-audit rates fail (3DES/Blowfish/CAST/DES/arcfour ciphers,
    MD5/SHA-1/RIPEMD-160/UMAC-32 MACs, SHA-1 and NIST P-curve exchanges). Judged on what sshd actually offers: OpenSSH's compiled defaults with the config's +/-/^ edits."""
    ssh = _ssh_facts(host)
    if isinstance(ssh, Result):
        yield ssh
        return
    yield from _ssh_problems(ssh)
    for key in ALGORITHM_KEYS:
        value, source = _value(ssh, key)
        algorithms = resolve_algorithms(value, DEFAULTS[key]) if source != "sshd -T" else value.split(",")
        weak = weak_algorithms(key, algorithms)
        if weak:
            yield Result.fail(f"sshd:{NAMES[key]}", f"{', '.join(weak)} offered ({source})",
                              remediation=f"set {NAMES[key]} to an explicit list without them ({', '.join(weak)})")
        else:
            yield Result.passed(f"sshd:{NAMES[key]}", f"{len(algorithms)} algorithms, none broken ({source})")
    for override in ssh.overrides:
        if override.keyword not in ALGORITHM_KEYS:
            continue
        weak = weak_algorithms(override.keyword, resolve_algorithms(override.value, DEFAULTS[override.keyword]))
        if weak:
            yield Result.fail(f"sshd:Match {override.criteria}", f"{NAMES[override.keyword]} {override.value} ({override.source}): {', '.join(weak)} offered")


@check("HV-AUTH-014",
    fix="add a second factor: pam_u2f or pam_google_authenticator in /etc/pam.d/sshd and /etc/pam.d/sudo, and AuthenticationMethods publickey,keyboard-interactive",
    references=("pam_u2f(8)", "google-authenticator-libpam", "sshd_config(5) AuthenticationMethods"),
)
def mfa(host: HostFacts) -> Iterator[Result]:
    """A stolen key or password is the most common way into a hypervisor; a second factor makes it insufficient."""
    access = host.access
    ssh = access.ssh
    for service in ("sshd", "sudo"):
        stack = access.pam.get(service)
        if isinstance(stack, Unavailable):
            if stack.kind == "missing" and (service == "sudo" or ssh is None):
                yield Result.not_applicable(f"{stack.describe()} ({service} not installed)", service)
            else:
                yield Result.unavailable(stack, service)
            continue
        if stack is None:
            continue
        if service == "sshd" and isinstance(ssh, SshFacts):
            methods = _value(ssh, "authenticationmethods")[0]
            if _requires_two_factors(methods):
                yield Result.passed(service, f"AuthenticationMethods {methods}" + (f"; PAM: {', '.join(stack.mfa_modules)}" if stack.mfa_modules else ""))
                continue
        if stack.mfa_modules:
            yield Result.passed(service, f"PAM auth stack requires {', '.join(stack.mfa_modules)}")
        else:
            yield Result.fail(service, f"/etc/pam.d/{service}: auth stack {', '.join(stack.auth_modules) or '(empty)'}: no second factor",
                              details={"file": f"/etc/pam.d/{service}"})


@check("HV-AUTH-015",
    fix="lock or re-hash the listed accounts (passwd -l / chpasswd with yescrypt), remove NOPASSWD: ALL rules, give root alone UID 0, set minlen = 14 in /etc/security/pwquality.conf",
    references=("shadow(5), crypt(5)", "sudoers(5)", "pam_pwquality(8)", "login.defs(5)"),
)
def local_accounts(host: HostFacts) -> Iterator[Result]:
    """Every local account on a hypervisor is a way to the guests: an empty or weakly hashed password,
    a second UID 0 or a passwordless sudo to ALL turns one leaked credential into root. Hashes are
    judged by scheme only and never shown."""
    access = host.access
    schemes = access.password_schemes
    if isinstance(schemes, Unavailable):
        yield Result.unavailable(schemes, "/etc/shadow")
    else:
        bad = {user: scheme for user, scheme in schemes.items() if scheme in WEAK_SCHEMES
               and not (scheme == "empty" and access.login_shells.get(user, "") in NO_LOGIN_SHELLS)}
        for user, scheme in sorted(bad.items()):
            what = "no password" if scheme == "empty" else f"{scheme} password hash"
            yield Result.fail(f"account {user}", f"{what} (/etc/shadow)", details={"file": "/etc/shadow", "key": user})
        if not bad:
            yield Result.passed("/etc/shadow", f"{len(schemes)} accounts: no empty or weak password hash")
    extra_root = [u for u in access.uid0 if u != "root"]
    for user in extra_root:
        yield Result.fail(f"account {user}", "UID 0 besides root (/etc/passwd)", details={"file": "/etc/passwd", "key": user})
    rules = access.nopasswd_all
    if isinstance(rules, Unavailable):
        yield Result.unavailable(rules, rules.path)
    else:
        for rule in rules:
            yield Result.fail(f"sudo {rule.who}", f"{rule.file}:{rule.line}: NOPASSWD for ALL commands",
                              details={"file": rule.file, "line": rule.line, "key": "NOPASSWD"})
        if not rules:
            yield Result.passed("sudoers", "no passwordless rule for ALL commands")
    yield _password_length(access)
    defs = access.login_defs
    if isinstance(defs, dict):
        method = defs.get("ENCRYPT_METHOD", "DES").upper()
        if method not in ("SHA512", "YESCRYPT", "SHA256", "GOST_YESCRYPT", "BCRYPT"):
            where: Details = {"file": "/etc/login.defs", "key": "ENCRYPT_METHOD"} if "ENCRYPT_METHOD" in defs else {"file": "/etc/login.defs"}
            yield Result.fail("login.defs", f"ENCRYPT_METHOD {method}: new passwords get a weak hash", details=where)

"""Collecting a Xen dom0: guest configs from /etc/xen/*.cfg and the xendomains auto directory,
xl.conf, /etc/default/{xen,xendomains}, Xen's command line from GRUB's defaults and EFI xen.cfg,
and on a live dom0 `xl info`, `xl list -l`, `xl getenforce` and /sys/hypervisor.

Every file read goes through RootFS (bounded, resolved inside the audited root, non-blocking);
every program through collect.commands.run (system path, argument list, timeout). A file that
cannot be read or parsed becomes an Unavailable naming it, and the rest is still collected.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from ...collect import commands
from ...collect.fs import RootFS
from ...collect.grub import grub_defaults
from ...model import Unavailable
from ...parsers.cmdline import XEN_VARIABLES, grub_variables
from . import parsers
from .facts import REDACTED, SECRET_KEYS, XEN_DIR, XenCmdline, XenFacts, XenGuestConfig

CFG_LIMIT = 1024 * 1024
XL_LIST_LIMIT = 64 * 1024 * 1024
XL_TIMEOUT = 20.0
AUTO_DIR = "/etc/xen/auto"
EFI_DIR = "/boot/efi/EFI"
#: where Debian puts xl (a wrapper picking /usr/lib/xen-<version>/bin/xl) and upstream installs it
XL_PATHS = ("/usr/sbin/xl", "/usr/bin/xl")


def is_dom0(fs: RootFS) -> bool:
    caps = fs.read_line("/proc/xen/capabilities", 256)
    return isinstance(caps, str) and "control_d" in caps.split(",")


def redact(keyed_spec: str) -> str:
    """A spec string with the values of its secret settings replaced."""
    parts = []
    for part in keyed_spec.split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip() in SECRET_KEYS:
            part = f"{key}={REDACTED if value.strip() else ''}"
        parts.append(part)
    return ",".join(parts)


def _scrub(cfg: parsers.XlConfig) -> tuple[dict[str, str], dict[str, list[str]]]:
    scalars = dict(cfg.scalars)
    for key in SECRET_KEYS:
        if key in scalars:
            scalars[key] = REDACTED if scalars[key] else ""
    lists = {k: [redact(v) for v in items] for k, items in cfg.lists.items()}
    for key in SECRET_KEYS:
        if key in lists:
            lists[key] = [REDACTED if v else "" for v in lists[key]]
    return scalars, lists


def guest_from_text(path: str, text: str, autostart: bool) -> XenGuestConfig | Unavailable:
    try:
        cfg = parsers.parse_xl_cfg(text)
    except parsers.ParseError as exc:
        return Unavailable(path, "invalid", f"xl would refuse it: {exc}")
    scalars, lists = _scrub(cfg)
    name = scalars.get("name")
    if not name:
        return Unavailable(path, "invalid", "no name= (xl.cfg(5): mandatory); xl refuses to create the domain")
    return XenGuestConfig("file", path, name, scalars, lists, autostart=autostart)


def _auto_dir(fs: RootFS, defaults: dict[str, str] | Unavailable) -> str:
    if isinstance(defaults, dict):
        configured = defaults.get("XENDOMAINS_AUTO", "").strip()
        if configured.startswith("/"):
            return configured.rstrip("/") or "/"
    return AUTO_DIR


def _listing(fs: RootFS, directory: str, problems: list[Unavailable]) -> list[str]:
    """A directory's names: none when it does not exist (no guest configured there), and an
    unreadable one is recorded in `problems`, never taken for an empty one."""
    names = fs.listdir(directory)
    if isinstance(names, Unavailable):
        if names.kind != "missing":
            problems.append(names)
        return []
    return names


def _configs(fs: RootFS, auto_dir: str) -> list[XenGuestConfig | Unavailable]:
    """/etc/xen/*.cfg and every file of the auto directory; a link in auto/ to a .cfg is the same
    guest (marked autostart), never a second one."""
    found: dict[str, tuple[str, bool]] = {}
    order: list[str] = []
    problems: list[Unavailable] = []
    for name in _listing(fs, XEN_DIR, problems):
        if name.endswith(".cfg"):
            path = f"{XEN_DIR}/{name}"
            key = _identity(fs, path)
            if key not in found:
                found[key] = (path, False)
                order.append(key)
    for name in _listing(fs, auto_dir, problems):
        if name.startswith("."):
            continue
        path = f"{auto_dir}/{name}"
        key = _identity(fs, path)
        if key in found:
            found[key] = (found[key][0], True)
        else:
            found[key] = (path, True)
            order.append(key)
    out: list[XenGuestConfig | Unavailable] = list(problems)
    for key in order:
        path, autostart = found[key]
        st = fs.stat(path)
        if isinstance(st, Unavailable):
            out.append(st)
            continue
        if not stat.S_ISREG(st.st_mode):
            if stat.S_ISDIR(st.st_mode):
                continue
            out.append(Unavailable(path, "invalid", "not a regular file; not read"))
            continue
        text = fs.read_text(path, CFG_LIMIT)
        if isinstance(text, Unavailable):
            out.append(text)
            continue
        out.append(guest_from_text(path, text, autostart))
    return out


def _identity(fs: RootFS, path: str) -> str:
    """The file a name resolves to inside the root, so a link in auto/ and the .cfg it names are one
    guest; a name that does not resolve (a symlink loop) stays itself, and reading it says why."""
    if not fs.exists(path) or isinstance(fs.stat(path), Unavailable):
        return path
    return os.path.realpath(fs.local_path(path))


def _shell_file(fs: RootFS, path: str) -> dict[str, str] | Unavailable:
    text = fs.read_text(path, CFG_LIMIT)
    if isinstance(text, Unavailable):
        return text
    try:
        return parsers.parse_shell_assignments(text)
    except parsers.ParseError as exc:
        return Unavailable(path, "invalid", str(exc))


def _xl_conf(fs: RootFS) -> dict[str, str] | Unavailable:
    path = f"{XEN_DIR}/xl.conf"
    text = fs.read_text(path, CFG_LIMIT)
    if isinstance(text, Unavailable):
        return text
    try:
        cfg = parsers.parse_xl_cfg(text)
    except parsers.ParseError as exc:
        return Unavailable(path, "invalid", str(exc))
    return dict(cfg.scalars)


def _grub_cmdline(fs: RootFS) -> list[XenCmdline | Unavailable]:
    """GRUB_CMDLINE_XEN* from the same read of GRUB's defaults the kernel collector uses."""
    grub = grub_defaults(fs)
    out: list[XenCmdline | Unavailable] = [*([grub.main_error] if grub.main_error else []), *grub.dropin_errors]
    if not grub.files:
        return out
    env = grub_variables(grub.files, XEN_VARIABLES)
    line = env["GRUB_CMDLINE_XEN"] + " " + env["GRUB_CMDLINE_XEN_DEFAULT"]
    out.append(XenCmdline(grub.label, False, parsers.split_xen_cmdline(line)))
    return out


def _efi_cmdlines(fs: RootFS) -> list[XenCmdline | Unavailable]:
    """xen.efi reads the .cfg beside it with its own name (xen.cfg, xen-4.17-amd64.cfg)."""
    out: list[XenCmdline | Unavailable] = []
    vendors = fs.listdir(EFI_DIR)
    if not isinstance(vendors, list):
        return out
    for vendor in vendors:
        names = fs.listdir(f"{EFI_DIR}/{vendor}")
        if not isinstance(names, list):
            continue
        for name in names:
            if not (name.startswith("xen") and name.endswith(".cfg")):
                continue
            path = f"{EFI_DIR}/{vendor}/{name}"
            text = fs.read_text(path, CFG_LIMIT)
            if isinstance(text, Unavailable):
                out.append(text)
                continue
            default, sections = parsers.parse_efi_cfg(text)
            options = sections.get(default or "", {}).get("options")
            if options is not None:
                out.append(XenCmdline(f"{path} [{default}]", False, parsers.split_xen_cmdline(options)))
    return out


def _sys_hypervisor(fs: RootFS) -> dict[str, str] | Unavailable:
    base = "/sys/hypervisor"
    kind = fs.read_line(f"{base}/type", 64)
    if isinstance(kind, Unavailable):
        return kind
    out = {"type": kind}
    for key, rel in (("major", "version/major"), ("minor", "version/minor"), ("extra", "version/extra"),
                     ("capabilities", "properties/capabilities"), ("uuid", "uuid")):
        value = fs.read_line(f"{base}/{rel}", 1024)
        if isinstance(value, str):
            out[key] = value
    return out


def find_xl(fs: RootFS) -> str | None:
    return commands.find("xl")


#: hypervisor parameters that `xl set-parameters` changes at run time and hypfs shows live
#: (docs/misc/hypfs-paths.pandoc /params/* and /cpupool/*/sched-gran; read with xenhypfs(1))
HYPFS_PATHS = ("/params/ept", "/cpupool/0/sched-gran")


def _hypfs(program: str | None) -> dict[str, str] | Unavailable | None:
    """The live values of HYPFS_PATHS that Xen exposes (a Xen built without CONFIG_HYPFS, or an
    older one, has none: an Unavailable says why); None when xenhypfs is not installed."""
    if program is None:
        return None
    out: dict[str, str] = {}
    first: Unavailable | None = None
    for path in HYPFS_PATHS:
        text = commands.run([program, "cat", path], f"xenhypfs cat {path}", timeout=XL_TIMEOUT)
        if isinstance(text, Unavailable):
            first = first or text
        else:
            out[path] = text.strip()[:200]
    return out if out or first is None else first


def collect(fs: RootFS | None, xl: str | None = None, live: bool | None = None, xenhypfs: str | None = None) -> XenFacts:
    """`xl`, `xenhypfs`: the programs to run on a live dom0 (found on the system path when not
    given); `live` (default: the root is /) asks the running system: /sys/hypervisor, xl and
    xenhypfs."""
    if fs is None:
        missing = Unavailable(XEN_DIR, "missing", "no root filesystem to read")
        return XenFacts(False, [], None, [], missing, missing, missing, None, None)
    xendomains = _shell_file(fs, "/etc/default/xendomains")
    configs = _configs(fs, _auto_dir(fs, xendomains))
    cmdlines: list[XenCmdline | Unavailable] = []
    notes: list[str] = []
    xl_info: dict[str, str] | Unavailable | None = None
    running: list[XenGuestConfig] | Unavailable | None = None
    getenforce: str | Unavailable | None = None
    sys_hv: dict[str, str] | Unavailable | None = None
    hypfs: dict[str, str] | Unavailable | None = None
    if fs.live if live is None else live:
        sys_hv = _sys_hypervisor(fs)
        program = xl or find_xl(fs)
        if program is None:
            notes.append("xl not found on the system path: the running domains and the booted Xen command line are not known")
        elif not is_dom0(fs) and xl is None:
            notes.append("not running as Xen's dom0 (no control_d in /proc/xen/capabilities): only the configuration files are judged")
        else:
            xl_info, running, getenforce = _live(program)
            hypfs = _hypfs(xenhypfs or commands.find("xenhypfs"))
            if isinstance(xl_info, dict) and "xen_commandline" in xl_info:
                cmdlines.append(XenCmdline("xl info (xen_commandline)", True,
                                           parsers.split_xen_cmdline(xl_info["xen_commandline"])))
    cmdlines.extend(_grub_cmdline(fs))
    cmdlines.extend(_efi_cmdlines(fs))
    if isinstance(running, list):
        files = {c.name: c for c in configs if isinstance(c, XenGuestConfig)}
        running = [_link(d, files.get(d.name)) for d in running]
        names = {d.name for d in running}
        configs = [c if not isinstance(c, XenGuestConfig) else
                   XenGuestConfig(c.source, c.path, c.name, c.scalars, c.lists, c.autostart, c.name in names)
                   for c in configs]
    return XenFacts(
        installed=True,
        configs=configs,
        running=running,
        cmdlines=cmdlines,
        xl_conf=_xl_conf(fs),
        default_xen=_shell_file(fs, "/etc/default/xen"),
        xendomains=xendomains,
        xl_info=xl_info,
        sys_hypervisor=sys_hv,
        getenforce=getenforce,
        hypfs=hypfs,
        notes=notes,
    )


def _link(domain: XenGuestConfig, file: XenGuestConfig | None) -> XenGuestConfig:
    if file is None:
        return domain
    return XenGuestConfig(domain.source, domain.path, domain.name, domain.scalars, domain.lists,
                          file.autostart, True, domain.domid, file.path)


def _live(xl: str) -> tuple[dict[str, str] | Unavailable, list[XenGuestConfig] | Unavailable, str | Unavailable]:
    info_text = commands.run([xl, "info"], "xl info", timeout=XL_TIMEOUT)
    info: dict[str, str] | Unavailable
    if isinstance(info_text, Unavailable):
        info = info_text
    else:
        try:
            info = parsers.parse_xl_info(info_text)
        except parsers.ParseError as exc:
            info = Unavailable("xl info", "invalid", str(exc))
    list_text = commands.run([xl, "list", "-l"], "xl list -l", timeout=XL_TIMEOUT)
    running: list[XenGuestConfig] | Unavailable
    if isinstance(list_text, Unavailable):
        running = list_text
    elif len(list_text) > XL_LIST_LIMIT:
        running = Unavailable("xl list -l", "invalid", f"more than {XL_LIST_LIMIT} bytes of output; not read")
    else:
        try:
            running = [d for d in (running_domain(doc) for doc in parsers.parse_xl_list_json(list_text)) if d is not None]
        except parsers.ParseError as exc:
            running = Unavailable("xl list -l", "invalid", str(exc))
    enforce_text = commands.run([xl, "getenforce"], "xl getenforce", timeout=XL_TIMEOUT)
    enforce = enforce_text if isinstance(enforce_text, Unavailable) else enforce_text.strip()[:40]
    return info, running, enforce


# --- xl list -l JSON to xl.cfg keys ---------------------------------------------------------------


def _truth(value: Any) -> bool | None:
    """libxl's JSON: a libxl_defbool is "True"/"False" (absent or "<default>" when unset), a
    plain bool is true/false."""
    if isinstance(value, bool):
        return value
    if value in ("True", "true", 1):
        return True
    if value in ("False", "false", 0):
        return False
    return None


def _put_bool(out: dict[str, str], key: str, value: Any) -> None:
    truth = _truth(value)
    if truth is not None:
        out[key] = "1" if truth else "0"


def _text(value: Any) -> str | None:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    return None


def _vnc(out: dict[str, str], vnc: Any) -> list[str]:
    """A libxl_vnc_info as xl.cfg settings; returns them as vfb spec parts too."""
    parts: list[str] = []
    if not isinstance(vnc, dict):
        return parts
    truth = _truth(vnc.get("enable"))
    if truth is not None:
        out["vnc"] = "1" if truth else "0"
        parts.append(f"vnc={out['vnc']}")
    listen = _text(vnc.get("listen"))
    if listen is not None:
        out["vnclisten"] = listen
        parts.append(f"vnclisten={listen}")
    if "passwd" in vnc:
        out["vncpasswd"] = REDACTED if vnc.get("passwd") else ""
        parts.append(f"vncpasswd={out['vncpasswd']}")
    return parts


def _backend(dev: dict[str, Any]) -> str | None:
    """libxl_device_*'s backend_domname, else backend_domid (both left out of the JSON when they
    are the default: dom0)."""
    name = _text(dev.get("backend_domname"))
    if name:
        return name
    domid = dev.get("backend_domid")
    return str(domid) if isinstance(domid, int) and not isinstance(domid, bool) and domid != 0 else None


def _backend_parts(dev: dict[str, Any]) -> list[str]:
    """A device's backend and its `trusted` defbool as xl.cfg spec items."""
    parts = []
    backend = _backend(dev)
    if backend is not None:
        parts.append(f"backend={backend}")
    if _truth(dev.get("trusted")) is False:
        parts.append("untrusted")
    return parts


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def running_domain(doc: dict[str, Any]) -> XenGuestConfig | None:
    """One `xl list -l` entry (libxl_domain_config as libxl's JSON generator writes it, field names
    from libxl_types.idl) as xl.cfg keys. Domain-0 is not a guest. Passwords are never kept."""
    domid = doc.get("domid")
    config = doc.get("config")
    if not isinstance(config, dict) or domid == 0:
        return None
    c_info = _object(config.get("c_info"))
    b_info = _object(config.get("b_info"))
    name = _text(c_info.get("name")) or f"domid {domid}"
    s: dict[str, str] = {"name": name}
    lists: dict[str, list[str]] = {}
    kind = _text(c_info.get("type"))
    if kind:
        s["type"] = kind
    for key, field_name in (("uuid", "uuid"), ("seclabel", "ssid_label")):
        value = _text(c_info.get(field_name))
        if value:
            s[key] = value
    _put_bool(s, "driver_domain", c_info.get("driver_domain"))
    _put_bool(s, "device_model_stubdomain_override", b_info.get("device_model_stubdomain"))
    _put_bool(s, "dm_restrict", b_info.get("dm_restrict"))
    _put_bool(s, "nestedhvm", b_info.get("nested_hvm"))
    for key in ("device_model_user", "bootloader", "bootloader_user"):
        value = _text(b_info.get(key))
        if value:
            s[key] = value
    _put_bool(s, "bootloader_restrict", b_info.get("bootloader_restrict"))
    version = _text(b_info.get("device_model_version"))
    if version:
        s["device_model_version"] = version.replace("_", "-")
    vcpus = b_info.get("max_vcpus")
    if isinstance(vcpus, int):
        s["vcpus"] = str(vcpus)
    memkb = b_info.get("target_memkb") or b_info.get("max_memkb")
    if isinstance(memkb, int):
        s["memory"] = str(memkb // 1024)
    arch = b_info.get("arch_x86")
    if isinstance(arch, dict):
        _put_bool(s, "msr_relaxed", arch.get("msr_relaxed"))
    iomem = [f"{e.get('start', 0):x},{e.get('number', 0):x}" for e in b_info.get("iomem") or [] if isinstance(e, dict)
             and isinstance(e.get("start", 0), int) and isinstance(e.get("number", 0), int)]
    if iomem:
        lists["iomem"] = iomem
    ioports = [f"{e.get('first', 0):x}-{e.get('first', 0) + max(e.get('number', 1), 1) - 1:x}" for e in b_info.get("ioports") or []
               if isinstance(e, dict) and isinstance(e.get("first", 0), int) and isinstance(e.get("number", 1), int)]
    if ioports:
        lists["ioports"] = ioports
    irqs = [str(i) for i in b_info.get("irqs") or [] if isinstance(i, int)]
    if irqs:
        lists["irqs"] = irqs
    hvm = b_info.get("type.hvm")
    if isinstance(hvm, dict):
        _vnc(s, hvm.get("vnc"))
        spice = hvm.get("spice")
        if isinstance(spice, dict):
            _put_bool(s, "spice", spice.get("enable"))
            for key, field_name in (("spicehost", "host"), ("spiceport", "port"), ("spicetls_port", "tls_port"),
                                    ("spiceusbredirection", "usbredirection")):
                value = _text(spice.get(field_name))
                if value is not None and value != "0":
                    s[key] = value
            _put_bool(s, "spicedisable_ticketing", spice.get("disable_ticketing"))
            _put_bool(s, "spicevdagent", spice.get("vdagent"))
            _put_bool(s, "spice_clipboard_sharing", spice.get("clipboard_sharing"))
            if "passwd" in spice:
                s["spicepasswd"] = REDACTED if spice.get("passwd") else ""
        if "nestedhvm" not in s:  # before Xen 4.16 nested_hvm sat in the HVM part
            _put_bool(s, "nestedhvm", hvm.get("nested_hvm"))
        gfx = hvm.get("gfx_passthru")
        _put_bool(s, "gfx_passthru", gfx)
        for key, field_name in (("bios", "bios"), ("firmware", "firmware")):
            value = _text(hvm.get(field_name))
            if value:
                s[key] = value
        serial = [v for v in hvm.get("serial_list") or [] if isinstance(v, str)]
        if not serial and isinstance(hvm.get("serial"), str):
            serial = [hvm["serial"]]
        if serial:
            lists["serial"] = serial
        usbdevices = [v for v in hvm.get("usbdevice_list") or [] if isinstance(v, str)]
        if usbdevices:
            lists["usbdevice"] = usbdevices
    pv = b_info.get("type.pv")
    if isinstance(pv, dict):
        _put_bool(s, "e820_host", pv.get("e820_host"))
    pci = []
    for dev in config.get("pcidevs") or []:
        if not isinstance(dev, dict):
            continue
        # libxl's JSON leaves out every number that is 0 (gentypes.py get_default_expr), so
        # 0000:03:00.0 is {"bus": 3}: an absent domain, bus, dev or func is 0
        bdf = _object(dev.get("bdf")) or dev
        try:
            address = (f"{int(bdf.get('domain', 0)):04x}:{int(bdf.get('bus', 0)):02x}:"
                       f"{int(bdf.get('dev', 0)):02x}.{int(bdf.get('func', 0))}")
        except (TypeError, ValueError):
            continue
        flags = [f"{k}={'1' if _truth(dev.get(k)) else '0'}" for k in ("permissive", "seize", "msitranslate", "power_mgmt")
                 if _truth(dev.get(k)) is not None]
        pci.append(",".join([address, *flags]))
    if pci:
        lists["pci"] = pci
    vfbs = []
    for vfb in config.get("vfbs") or []:
        if isinstance(vfb, dict):
            parts = _vnc({}, vfb.get("vnc"))
            vfbs.append(",".join(parts) if parts else "vnc=0")
    if vfbs:
        lists["vfb"] = vfbs
    vtpms = [f"backend={_backend(v) or ''}" for v in config.get("vtpms") or [] if isinstance(v, dict)]
    if vtpms:
        lists["vtpm"] = vtpms
    disks = []
    for d in config.get("disks") or []:
        if isinstance(d, dict) and isinstance(d.get("pdev_path"), str):
            access = "rw" if _truth(d.get("readwrite")) else "r"  # 0, a read-only disk, is left out of the JSON
            parts = [f"vdev={d.get('vdev') or ''}", f"access={access}"]
            if _truth(d.get("is_cdrom")):
                parts.append("devtype=cdrom")
            if isinstance(d.get("format"), str):
                parts.append(f"format={d['format']}")
            parts.extend(_backend_parts(d))
            disks.append(",".join(parts) + f",target={d['pdev_path']}")
    if disks:
        lists["disk"] = disks
    nics = []
    for nic in config.get("nics") or []:
        if isinstance(nic, dict):
            parts = [f"{k}={nic[k]}" for k in ("mac", "bridge", "ip", "script") if isinstance(nic.get(k), str)]
            nics.append(",".join([*parts, *_backend_parts(nic)]))
    if nics:
        lists["vif"] = nics
    p9 = [",".join([*(f"{k}={v[k]}" for k in ("tag", "path", "security_model") if isinstance(v.get(k), str)), *_backend_parts(v)])
          for v in config.get("p9s") or [] if isinstance(v, dict)]
    if p9:
        lists["p9"] = p9
    return XenGuestConfig("running", f"xl list -l (domid {domid})", name, s, lists, running=True,
                          domid=domid if isinstance(domid, int) else None)

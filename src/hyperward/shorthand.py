"""The catalog's source shorthand (the spec's Legend: `qc:`, `lc:`, `x:`, `v:`, `mp:X/`, `cmd:`)
written out in words and real paths, for people: the catalog keeps the shorthand, `explain` shows
where hyperward really looks."""

from __future__ import annotations

import re

QEMU_CONF = "/etc/libvirt/qemu.conf"
DAEMON_CONF = "/etc/libvirt/libvirtd.conf (virtqemud.conf, virtproxyd.conf for modular daemons)"
VULN_DIR = "/sys/devices/system/cpu/vulnerabilities"
CMDLINE = "the kernel command line (/proc/cmdline, /etc/default/grub, /etc/kernel/cmdline)"
DOMAIN_XML = "domain XML"
#: said once under a check's detection when it reads domain XML
DOMAIN_XML_SOURCES = "domain XML is each guest's definition: the libvirt API, /etc/libvirt/qemu/*.xml (persistent), /run/libvirt/qemu/*.xml (live)"

#: any shorthand prefix the spec uses; after expand() none may remain
PREFIX = re.compile(r"(?<![\w/+.-])(qc|lc|x|v|mp|cmd):")
_SIMPLE_PREDICATE = re.compile(r"^@([\w-]+)='([^']*)'$")


def _split_steps(xpath: str) -> list[str]:
    steps, depth, current = [], 0, ""
    for ch in xpath:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "/" and depth == 0:
            steps.append(current)
            current = ""
        else:
            current += ch
    steps.append(current)
    return [s for s in steps if s]


def _predicates(step: str) -> tuple[str, list[str]]:
    name, _, rest = step.partition("[")
    found, depth, current = [], 0, ""
    for ch in "[" + rest if rest else "":
        if ch == "[":
            depth += 1
            if depth == 1:
                current = ""
                continue
        elif ch == "]":
            depth -= 1
            if depth == 0:
                found.append(current)
                continue
        current += ch
    return name, found


def xpath_words(xpath: str, prefix: bool = True) -> str:
    """//filesystem[@type='mount'] -> "<filesystem type='mount'> elements"; /domain/@type ->
    "the type attribute of <domain>"; other predicates are said as 'where ...'."""
    steps = _split_steps(xpath)
    attribute = steps.pop()[1:] if steps and steps[-1].startswith("@") else None
    tags: list[str] = []
    conditions: list[str] = []
    for step in steps:
        name, predicates = _predicates(step)
        attrs = ""
        for predicate in predicates:
            match = _SIMPLE_PREDICATE.match(predicate)
            if match:
                attrs += f" {match.group(1)}='{match.group(2)}'"
            else:
                conditions.append(predicate.replace("@", ""))
        tags.append(f"<{name}{attrs}>")
    chain = "".join(tags) or "<domain>"
    where = f" where {'; '.join(conditions)}" if conditions else ""
    if attribute and "=" in attribute:
        said = f"{chain} with {attribute}{where}"
    elif attribute:
        said = f"the {attribute} attribute of {chain}{where}"
    else:
        said = f"{chain} elements{where}"
    return f"{DOMAIN_XML}: {said}" if prefix else said


def _looks_like_xpath(item: str) -> bool:
    return item.startswith(("//", "/domain")) or "/@" in item or item.startswith("@") or "[@" in item


def _xpath_end(text: str, start: int) -> int:
    depth, i = 0, start
    while i < len(text):
        ch = text[i]
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif depth == 0 and (ch.isspace() or ch in ";,"):
            break
        i += 1
    return i


def expand(text: str) -> str:
    """Every shorthand token of a catalog text in words and real paths."""
    out: list[str] = []
    i = 0
    while True:
        match = PREFIX.search(text, i)
        if match is None:
            out.append(text[i:])
            break
        out.append(text[i:match.start()])
        kind, j = match.group(1), match.end()
        if kind == "x":
            end = _xpath_end(text, j)
            out.append(xpath_words(text[j:end]) if end > j else DOMAIN_XML)
            while text.startswith((", ", "; "), end):
                nxt = _xpath_end(text, end + 2)
                item = text[end + 2:nxt]
                if not _looks_like_xpath(item):
                    break
                out.append(text[end:end + 2] + (f"the {item[1:]} attribute" if item.startswith("@") else xpath_words(item, prefix=False)))
                end = nxt
        elif kind in ("qc", "lc"):
            key = re.match(r"\w+(?:=\w+)?", text[j:])
            end = j + (key.end() if key else 0)
            where = QEMU_CONF if kind == "qc" else DAEMON_CONF
            out.append(f"{key.group(0)} in {where}" if key else where)
        elif kind == "v":
            name = re.match(r"[\w*]+", text[j:])
            end = j + (name.end() if name else 0)
            out.append(f"{VULN_DIR}/{name.group(0)}" if name else f"{VULN_DIR}/")
        elif kind == "mp":
            param = re.match(r"([\w-]+)/([\w-]*)", text[j:])
            end = j + (param.end() if param else 0)
            out.append(f"/sys/module/{param.group(1)}/parameters/{param.group(2)}" if param else "/sys/module/*/parameters/")
        else:
            token = re.match(r"[\w.=-]+", text[j:])
            end = j + (token.end() if token else 0)
            out.append(f"{token.group(0)} on {CMDLINE}" if token else CMDLINE)
        i = end
    said = "".join(out)
    if DOMAIN_XML + ":" in said:
        said = re.sub(r"(?<![\w/<])(\w+)/@(\w+)", r"the \2 attribute of <\1>", said)
    return said

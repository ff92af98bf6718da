"""SSH keys reduced to their fingerprints.

A private key found in a guest is compared with the host's authorized_keys by the public half it
carries: an OpenSSH-format private key holds its public blob in clear even when the private part is
passphrase-protected, and a PEM key yields its public half through `cryptography` (only unencrypted
PEM keys; an encrypted one is reported by path without a fingerprint). Nothing here keeps key
material: each function returns the SHA256 fingerprint as ssh-keygen -l prints it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct

OPENSSH_MAGIC = b"openssh-key-v1\0"
_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----\s*(.*?)-----END \1PRIVATE KEY-----", re.DOTALL)
#: authorized_keys key types (sshd(8) AUTHORIZED_KEYS FILE FORMAT)
KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
             "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com", "ssh-ed448")


def fingerprint(blob: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _string(data: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(data):
        raise ValueError("truncated")
    (length,) = struct.unpack(">I", data[offset:offset + 4])
    end = offset + 4 + length
    if end > len(data):
        raise ValueError("truncated")
    return data[offset + 4:end], end


def blob_kind(blob: bytes) -> str:
    try:
        kind, _ = _string(blob, 0)
        return kind.decode("ascii", errors="replace")[:40]
    except ValueError:
        return "unknown"


def private_key_blobs(data: bytes) -> list[bytes]:
    """The public blobs of the private keys in `data` (a file's first bytes); [] when it holds none
    this can read. Never raises on hostile input."""
    out: list[bytes] = []
    for match in _PEM.finditer(data[:256 * 1024]):
        label, body = match.group(1).strip(), match.group(2)
        lines = [ln for ln in body.split(b"\n") if ln.strip() and b":" not in ln]  # drop PEM headers (Proc-Type)
        try:
            der = base64.b64decode(b"".join(ln.strip() for ln in lines), validate=False)
        except (binascii.Error, ValueError):
            continue
        if label == b"OPENSSH":
            out.extend(_openssh_public(der))
        elif b"ENCRYPTED" not in body[:200] and b"Proc-Type: 4,ENCRYPTED" not in body[:200]:
            blob = _pem_public(match.group(0))
            if blob is not None:
                out.append(blob)
    return out


def _openssh_public(der: bytes) -> list[bytes]:
    if not der.startswith(OPENSSH_MAGIC):
        return []
    try:
        offset = len(OPENSSH_MAGIC)
        for _ in range(3):  # ciphername, kdfname, kdfoptions
            _, offset = _string(der, offset)
        (count,) = struct.unpack(">I", der[offset:offset + 4])
        offset += 4
        blobs = []
        for _ in range(min(count, 16)):
            blob, offset = _string(der, offset)
            blobs.append(blob)
        return blobs
    except (ValueError, struct.error):
        return []


def _pem_public(pem: bytes) -> bytes | None:
    try:
        from cryptography.hazmat.primitives import serialization
        key = serialization.load_pem_private_key(pem, password=None)
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    except Exception:  # noqa: BLE001  (cryptography raises several types for unsupported, encrypted or malformed keys)
        return None
    parts = public.split()
    try:
        return base64.b64decode(parts[1]) if len(parts) >= 2 else None
    except (binascii.Error, ValueError):
        return None


def looks_private(data: bytes) -> bool:
    return b"PRIVATE KEY-----" in data[:256 * 1024]


def authorized_blobs(text: str) -> list[tuple[int, bytes]]:
    """(line, public blob) of each key line of an authorized_keys (or .pub / known key list) file:
    options before the key type are skipped as sshd does."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = _split_options(line)
        for i, token in enumerate(fields[:-1]):
            if token in KEY_TYPES or token.startswith("ecdsa-sha2-") or token.endswith("-cert-v01@openssh.com"):
                try:
                    out.append((number, base64.b64decode(fields[i + 1], validate=True)))
                except (binascii.Error, ValueError):
                    pass
                break
    return out


def _split_options(line: str) -> list[str]:
    """Whitespace split that keeps a quoted option (command="a b") in one token."""
    tokens: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        if ch in " \t" and not quoted:
            if current:
                tokens.append("".join(current))
                current = []
            continue
        current.append(ch)
    if current:
        tokens.append("".join(current))
    return tokens

"""The board's keys and disk, made once per workspace: the root login key (OpenSSH format), the board's
dropbear host key (dropbear's own format) with its known_hosts line, and the ext4 image mounted on /opt."""
from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

from ..errors import AlogError


def ensure_keys(identity: Path, host_key: Path) -> None:
    """Write the Ed25519 login key (identity, identity.pub) and the host key when they are missing."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not identity.is_file():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
        pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        _write_private(identity, pem)
        identity.with_suffix(".pub").write_bytes(pub + b" alog-edge-board\n")
    if not host_key.is_file():
        key = Ed25519PrivateKey.generate()
        secret = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                   serialization.NoEncryption())
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        # dropbear's key file: string "ssh-ed25519", string (32-byte seed || 32-byte public key)
        _write_private(host_key, _ssh_string(b"ssh-ed25519") + _ssh_string(secret + public))


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


def _ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def host_public_key(host_key: Path) -> str:
    """The host key as an OpenSSH public key (`ssh-ed25519 AAAA...`)."""
    public = host_key.read_bytes()[-32:]
    return "ssh-ed25519 " + base64.b64encode(_ssh_string(b"ssh-ed25519") + _ssh_string(public)).decode()


def write_known_hosts(known_hosts: Path, host_key: Path, name: str) -> None:
    """known_hosts with the one line for `name` (OpenSSH's `[host]:port`)."""
    tmp = known_hosts.with_name(known_hosts.name + ".tmp")
    tmp.write_text(f"{name} {host_public_key(host_key)}\n")
    tmp.replace(known_hosts)


def ensure_opt_image(image: Path, size: int) -> None:
    """A sparse ext4 image of `size` bytes (mkfs.ext4 of e2fsprogs), made once."""
    if image.is_file():
        return
    mkfs = shutil.which("mkfs.ext4") or "/sbin/mkfs.ext4"
    tmp = image.with_name(image.name + ".tmp")
    with open(tmp, "wb") as f:
        f.truncate(size)
    result = subprocess.run([mkfs, "-q", "-F", "-L", "opt", "-E", "root_owner=0:0", str(tmp)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise AlogError(image, f"mkfs.ext4 failed: {result.stderr.strip()[-200:]}")
    tmp.replace(image)

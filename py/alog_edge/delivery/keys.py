"""Ed25519 signing keys and signatures in minisign's format (py-minisign, on pyca/cryptography).

The stock `minisign` tool reads every file written here: `minisign -Vm MANIFEST.json -p key.pub`
verifies a bundle. Signatures are prehashed ('ED', BLAKE2b-512 of the data), minisign's default.
Ed25519 is deterministic, so the same key, data and trusted comment give the same signature bytes
(bundles stay reproducible).

Key ids are printed as minisign prints them: the 8 id bytes read as a little-endian integer, in
16 upper-case hex digits.

A secret key with a passphrase is decrypted with the passphrase in $ALOG_EDGE_PASSPHRASE, or
typed at a prompt when stdin is a terminal.
"""
from __future__ import annotations

import getpass
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import minisign

from ..errors import AlogError

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]
PASSPHRASE_ENV = "ALOG_EDGE_PASSPHRASE"
SECRET_NAME = "minisign.key"


def default_key_path() -> Path:
    """The per-user signing key: $XDG_CONFIG_HOME/alog-edge/minisign.key (~/.config by default)."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "alog-edge" / SECRET_NAME


@dataclass(frozen=True)
class KeyPair:
    secret: Path
    public: Path
    key_id: str


def key_id_text(raw: bytes) -> str:
    """minisign's display of a key id (little-endian 64-bit number, upper-case hex)."""
    return raw[::-1].hex().upper()


def public_path(secret: Path) -> Path:
    return secret.with_name(secret.name + ".pub")


def refuse_unsafe_location(path: Path) -> None:
    """Secret keys never live inside the repository or a bundle (a folder with MANIFEST.json)."""
    resolved = path.resolve()
    if resolved == REPO or REPO in resolved.parents:
        raise AlogError(path, "refusing to keep a key inside the repository (it would be one "
                              f"`git add` from being published): use e.g. {default_key_path()}")
    for folder in resolved.parents:
        if (folder / "MANIFEST.json").exists():
            raise AlogError(path, f"refusing to keep a key inside a bundle ({folder})")


def generate(out: Path, passphrase: str | None = None, force: bool = False) -> KeyPair:
    """Write a new Ed25519 secret key at `out` (mode 0600) and its public key at `out`.pub."""
    out = Path(out)
    refuse_unsafe_location(out)
    pub = public_path(out)
    for path in (out, pub):
        if path.exists() and not force:
            raise AlogError(path, "exists; pass --force to replace it (every device trusting the "
                                  "old key must then be given the new one)")
    pair = minisign.KeyPair.generate()
    raw_id = pair.public_key._keynum_pk.key_id
    key_id = key_id_text(raw_id)
    secret = pair.secret_key
    if passphrase:
        secret.encrypt(passphrase)
    secret.untrusted_comment = f"alog-edge minisign {'encrypted ' if passphrase else ''}secret key {key_id}"
    public = pair.public_key
    public.untrusted_comment = f"minisign public key {key_id}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_atomic(out, bytes(secret) + b"\n", 0o600)
        _write_atomic(pub, bytes(public) + b"\n", 0o644)
    except OSError as exc:
        raise AlogError(exc.filename or out, f"cannot write the key: {exc.strerror or exc}") from None
    finally:
        secret.wipe()
    return KeyPair(out, pub, key_id)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _passphrase(path: Path) -> str:
    if os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV]
    if sys.stdin.isatty():
        return getpass.getpass(f"passphrase of {path}: ")
    raise AlogError(path, f"the key has a passphrase: set ${PASSPHRASE_ENV} or run on a terminal")


def load_secret(path: Path) -> minisign.SecretKey:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AlogError(path, "no such key; create one with `invoke keygen --out PATH`") from None
    except OSError as exc:
        raise AlogError(path, exc.strerror or str(exc)) from None
    try:
        key = minisign.SecretKey.from_bytes(data)
        if key.is_encrypted():
            key.decrypt(_passphrase(path))
    except minisign.Error as exc:
        raise AlogError(path, f"not a usable minisign secret key ({exc})") from None
    return key


def secret_key_id(path: Path) -> str:
    key = load_secret(path)
    try:
        return key_id_text(bytes(key._keynum_sk.key_id))
    finally:
        key.wipe()


def sign(data: bytes, secret_path: Path, trusted_comment: str) -> bytes:
    """A minisign signature file (4 lines, prehashed) of `data`."""
    key = load_secret(secret_path)
    try:
        key_id = key_id_text(bytes(key._keynum_sk.key_id))
        sig = key.sign(data, prehash=True, trusted_comment=trusted_comment,
                       untrusted_comment=f"signature from alog-edge secret key {key_id}")
    except minisign.Error as exc:
        raise AlogError(secret_path, f"cannot sign: {exc}") from None
    finally:
        key.wipe()
    return bytes(sig) + b"\n"


def load_public(path: Path) -> tuple[str, minisign.PublicKey]:
    path = Path(path)
    try:
        key = minisign.PublicKey.from_bytes(path.read_bytes())
    except OSError as exc:
        raise AlogError(path, exc.strerror or str(exc)) from None
    except minisign.Error as exc:
        raise AlogError(path, f"not a minisign public key ({exc})") from None
    return key_id_text(key._keynum_pk.key_id), key


def signature_key_id(signature_bytes: bytes) -> str:
    """The id of the key that made a signature (not verified)."""
    try:
        return key_id_text(minisign.Signature.from_bytes(signature_bytes)._key_id)
    except minisign.Error as exc:
        raise AlogError("MANIFEST.json.minisig", f"not a minisign signature ({exc})") from None


def verify(manifest_bytes: bytes, signature_bytes: bytes, pubkey_path: Path) -> str:
    """Check a minisign signature (and its trusted comment) of `manifest_bytes`; returns the key id."""
    key_id, key = load_public(pubkey_path)
    signed_by = signature_key_id(signature_bytes)
    if signed_by != key_id:
        raise AlogError("MANIFEST.json.minisig", f"signed by key {signed_by}, not by the trusted "
                                                 f"key {key_id} ({pubkey_path})")
    try:
        key.verify(manifest_bytes, minisign.Signature.from_bytes(signature_bytes))
    except minisign.Error:
        raise AlogError("MANIFEST.json.minisig", f"the signature does not verify with key {key_id}: "
                                                 "MANIFEST.json or its signature was altered") from None
    return key_id


def trusted_comment(signature_bytes: bytes) -> str:
    try:
        return minisign.Signature.from_bytes(signature_bytes).trusted_comment
    except minisign.Error as exc:
        raise AlogError("MANIFEST.json.minisig", f"not a minisign signature ({exc})") from None


def refuses_as_payload(path: Path) -> bool:
    """True for a minisign secret key file (it must never travel inside a bundle)."""
    try:
        with open(path, "rb") as f:
            head = f.read(400)
        minisign.SecretKey.from_bytes(head.rstrip(b"\n"))
    except (OSError, minisign.Error, ValueError):
        return False
    return True


def ask_passphrase() -> str:
    """A new passphrase: $ALOG_EDGE_PASSPHRASE, else typed twice at the terminal."""
    if os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV]
    if not sys.stdin.isatty():
        raise AlogError("--passphrase", f"no terminal to type it on: set ${PASSPHRASE_ENV}")
    first = getpass.getpass("passphrase: ")
    if not first or first != getpass.getpass("passphrase again: "):
        raise AlogError("--passphrase", "empty, or the two do not match")
    return first

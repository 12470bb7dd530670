"""The transport-agnostic flash driver: plan a delta against the device's current release, upload it into
`P/incoming/`, run the device's trusted installer with `--staged`, read `status`. SSH and serial plug a
`Transport` in (CONTRACT.md, "Flashers")."""
from __future__ import annotations

import hashlib
import json
import logging
import shlex
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from alog_edge.errors import AlogError

log = logging.getLogger(__name__)

# Resume granularity: an interrupted upload restarts at most one chunk before where it stopped.
CHUNK = 256 * 1024
INSTALL_TIMEOUT = 300.0
COMMAND_TIMEOUT = 60.0
SIGNED = ("MANIFEST.json", "MANIFEST.json.minisig")


class Transport(Protocol):
    label: str

    def run(self, command: str, timeout: float) -> tuple[int, bytes, bytes]: ...

    def read_file(self, path: str) -> bytes | None: ...

    def send_file(self, data: bytes, remote: str, progress: Callable[[int], None]) -> int: ...

    def close(self) -> None: ...


@dataclass
class Plan:
    """What a flash of `bundle` onto a device whose current manifest is `current` has to send."""
    kind: str                      # "up to date", "model-only", "full", "first install"
    send: list                     # ManifestEntry of the files whose sha256 the device lacks
    version_before: str | None
    version_after: str

    @property
    def bytes(self) -> int:
        return sum(e.size for e in self.send)


@dataclass
class FlashResult:
    host: str
    result: str = "failed"         # "ok", "up to date", "dry-run", "failed"
    kind: str = ""
    files_sent: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0
    version_before: str | None = None
    version_after: str | None = None
    selftest: str | None = None
    error: str | None = None
    install_seconds: float = 0.0   # the device's installer alone
    files: list[dict] = field(default_factory=list)   # per file: path, size, sent (bytes on the wire)

    @property
    def failed(self) -> bool:
        return self.result == "failed"

    def json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def summary(self) -> str:
        if self.failed:
            return f"{self.host}: failed: {self.error}"
        versions = f"{self.version_before or '(none)'} -> {self.version_after}"
        if self.result == "up to date":
            return f"{self.host}: up to date ({self.version_after}), nothing sent"
        verb = "would send" if self.result == "dry-run" else "sent"
        names = ", ".join(f["path"] for f in self.files[:6]) + (", ..." if len(self.files) > 6 else "")
        kind = self.kind if self.kind == "first install" else f"{self.kind} update"
        text = (f"{self.host}: {kind} {versions}: {verb} {self.files_sent} files, "
                f"{human_bytes(self.bytes_sent)} ({names}) in {self.seconds:.1f}s")
        return text if self.result == "dry-run" else f"{text}; selftest {self.selftest or 'unknown'}"


def human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def recap(results: list[FlashResult]) -> str:
    """Ansible-style per-host table: host, result, bytes sent, time, version."""
    head = ("HOST", "RESULT", "KIND", "SENT", "TIME", "VERSION", "SELFTEST")
    rows = [head] + [(r.host, r.result, r.kind or "-", human_bytes(r.bytes_sent), f"{r.seconds:.1f}s",
                      r.version_after or r.version_before or "-", r.selftest or "-") for r in results]
    width = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    for r in results:
        if r.failed:
            lines.append(f"{r.host}: {r.error}")
    ok = sum(not r.failed for r in results)
    lines.append(f"{ok} of {len(results)} hosts ok, {len(results) - ok} failed")
    return "\n".join(lines)


def make_plan(bundle, current: dict | None, force: bool = False) -> Plan:
    files = list(bundle.files)
    if current is None:
        return Plan("first install", files, None, bundle.version)
    have = {(f.get("path"), f.get("sha256")) for f in current.get("files", []) if isinstance(f, dict)}
    send = [e for e in files if (e.path, e.sha256) not in have]
    before = current.get("version")
    if not send and before == bundle.version and not force:
        return Plan("up to date", [], before, bundle.version)
    parts, cur_parts = bundle.manifest.get("parts", {}), current.get("parts", {})
    runtime_same = parts.get("runtime", {}).get("sha256") == cur_parts.get("runtime", {}).get("sha256")
    if runtime_same and all(e.path.startswith("models/") for e in send):
        return Plan("model-only", send, before, bundle.version)
    return Plan("full", send, before, bundle.version)


def verified_prefix(transport: Transport, data: bytes, part: str, size: int | None = None) -> int:
    """Bytes of an existing `part` on the device that are a verified prefix of `data` (0 when none): the
    whole partial file when its sha256 matches, else its last whole chunk boundary when that prefix matches.
    The part is truncated to the returned length. `size`: the part's size when the caller knows it."""
    q = shlex.quote(part)
    if size is None:
        rc, out, _ = transport.run(f"if [ -f {q} ]; then wc -c < {q}; else echo 0; fi", COMMAND_TIMEOUT)
        size = int(out.split()[0]) if rc == 0 and out.split() and out.split()[0].isdigit() else 0
    if size == 0:
        return 0
    if size > len(data):
        return _truncate(transport, q, 0)
    for n in dict.fromkeys((size, size - size % CHUNK)):
        if n == 0:
            continue
        rc, out, _ = transport.run(f"head -c {n} {q} | sha256sum", COMMAND_TIMEOUT)
        if rc == 0 and out.split()[:1] == [hashlib.sha256(data[:n]).hexdigest().encode()]:
            return _truncate(transport, q, n) if n != size else n
    return _truncate(transport, q, 0)


def _truncate(transport: Transport, quoted: str, n: int) -> int:
    cmd = f"rm -f {quoted}" if n == 0 else f"truncate -s {n} {quoted}"
    _check(transport, cmd, "cannot reset the partial upload")
    return n


def _check(transport: Transport, command: str, what: str, timeout: float = COMMAND_TIMEOUT) -> bytes:
    rc, out, err = transport.run(command, timeout)
    if rc != 0:
        raise AlogError(transport.label, f"{what}: {_last_line(err) or f'exit status {rc}'}")
    return out


def _last_line(data: bytes) -> str:
    lines = [x for x in data.decode(errors="replace").splitlines() if x.strip()]
    return lines[-1].strip() if lines else ""


def _device_arch(transport: Transport) -> str:
    arch = _check(transport, "uname -m", "cannot read the device's architecture").decode().strip()
    return {"arm64": "aarch64", "amd64": "x86_64"}.get(arch, arch)


def _device_manifest(transport: Transport, prefix: str) -> dict | None:
    data = transport.read_file(f"{prefix}/current/MANIFEST.json")
    if data is None:
        return None
    try:
        manifest = json.loads(data)
    except ValueError:
        log.warning("%s: %s/current/MANIFEST.json is not JSON; sending everything", transport.label, prefix)
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _check_signature(transport: Transport, bundle, prefix: str, trust_key: Path | None) -> None:
    """Refuse on the host a bundle the device would refuse: verify against --trust-key, or the device's keys."""
    from alog_edge.delivery import keys
    if trust_key is not None:
        keys.verify(bundle.manifest_bytes, bundle.signature_bytes, trust_key)
        return
    q = shlex.quote(f"{prefix}/keys")
    rc, out, _ = transport.run(f"for k in {q}/*.pub; do [ -f \"$k\" ] && cat \"$k\" && echo; done; true",
                               COMMAND_TIMEOUT)
    pubs = _split_public_keys(out.decode(errors="replace")) if rc == 0 else []
    if not pubs:
        raise AlogError("--trust-key", f"{transport.label} trusts no key yet ({prefix}/keys is empty): "
                        "name the bundle's public key for the first install")
    errors = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(pubs):
            local = Path(tmp) / f"{i}.pub"
            local.write_text(text)
            try:
                keys.verify(bundle.manifest_bytes, bundle.signature_bytes, local)
                return
            except AlogError as exc:
                errors.append(exc.message)
    raise AlogError(transport.label, f"the bundle's signature does not verify with any key the device trusts "
                                     f"({errors[-1]})")


def _split_public_keys(text: str) -> list[str]:
    """minisign public key files, concatenated: each starts with its `untrusted comment:` line."""
    keys_, cur = [], []
    for line in text.splitlines():
        if line.startswith("untrusted comment:") and cur:
            keys_.append("\n".join(cur) + "\n")
            cur = []
        if line.strip():
            cur.append(line)
    return keys_ + (["\n".join(cur) + "\n"] if cur else [])


def _check_contents(bundle, entries: list) -> dict[str, bytes]:
    """Read what will be sent and refuse a bundle whose files differ from its signed manifest."""
    out = {}
    for e in entries:
        data = bundle.read(e.path)
        if len(data) != e.size or hashlib.sha256(data).hexdigest() != e.sha256:
            raise AlogError(e.path, "differs from the bundle's signed manifest (tampered bundle)")
        out[e.path] = data
    return out


def flash(transport: Transport, bundle_path, prefix: str, trust_key: Path | None = None,
          dry_run: bool = False, force: bool = False, bar: Callable[[int, str], object] | None = None,
          install_timeout: float = INSTALL_TIMEOUT) -> FlashResult:
    """Flash one device with a bundle (its path, or a Bundle already opened). Refusals raise AlogError with one line; the device's current release stays as it was.
    `bar(total, label)` makes a progress bar (tqdm-like: update(n), close())."""
    from alog_edge.delivery import bundle as bundles
    start = time.monotonic()
    bundle = bundle_path if hasattr(bundle_path, "manifest") else bundles.open_bundle(Path(bundle_path))
    res = FlashResult(transport.label)
    prefix = prefix.rstrip("/") or "/"
    arch = _device_arch(transport)
    if arch != bundle.target:
        raise AlogError(bundle.path, f"built for {bundle.target}, but {transport.label} is {arch}")
    current = _device_manifest(transport, prefix)
    plan = make_plan(bundle, current, force)
    res.kind, res.version_before, res.version_after = plan.kind, plan.version_before, plan.version_after
    if plan.kind == "up to date":
        res.result, res.seconds = "up to date", time.monotonic() - start
        return res
    _check_signature(transport, bundle, prefix, trust_key)
    contents = _check_contents(bundle, plan.send)
    signed = {name: data for name, data in zip(SIGNED, (bundle.manifest_bytes, bundle.signature_bytes))}
    if dry_run:
        res.result, res.files_sent = "dry-run", len(plan.send)
        res.bytes_sent = plan.bytes + sum(map(len, signed.values()))
        res.files = [{"path": e.path, "size": e.size} for e in plan.send]
        res.seconds = time.monotonic() - start
        return res

    incoming = f"{prefix}/incoming/{bundle.version}-{bundle.target}"
    dirs = sorted({str(Path(incoming, p).parent) for p in contents} | {incoming, f"{prefix}/keys"})
    # complete files of an earlier, interrupted flash are kept; its partial ones are resumed
    there, parts = _uploaded(transport, incoming, dirs)
    if trust_key is not None:
        key_file, key_bytes = f"{prefix}/keys/{bundle.key_id}.pub", Path(trust_key).read_bytes()
        if transport.read_file(key_file) != key_bytes:  # send_file: its sha256 checked on the device
            sent = transport.send_file(key_bytes, key_file, lambda n: None)
            res.bytes_sent += sent
            res.files.append({"path": f"keys/{bundle.key_id}.pub", "size": len(key_bytes), "sent": sent})
    digests = {e.path: e.sha256 for e in plan.send}  # the contents were checked against them
    digests.update({name: hashlib.sha256(data).hexdigest() for name, data in signed.items()})
    # (path in the report, data, its sha256, remote path)
    uploads = [(p, d, digests[p], f"{incoming}/{p}") for p, d in [*contents.items(), *signed.items()]
               if there.get(p) != digests[p]]
    progress = bar(sum(len(u[1]) for u in uploads), transport.label) if bar else None
    try:
        _send_all(transport, res, uploads, progress, parts)
    finally:
        if progress is not None:
            progress.close()
    # the trusted installer of the current release; on a first install the bundle's own, verified above
    installer = f"{prefix}/current/install.sh" if current is not None else f"{incoming}/install.sh"
    # leftovers of interrupted uploads are not part of the release
    # and the device's status in the same command (a round trip and a shell less)
    cmd = (f"find {shlex.quote(incoming)} -name '*.part' -exec rm -f {{}} + && "
           f"sh {shlex.quote(installer)} install --staged {shlex.quote(incoming)} --prefix {shlex.quote(prefix)}"
           + (" --force" if force else "") + f" && echo {STATUS_MARK} && {_status_command(prefix)}")
    log.debug("%s: %s", transport.label, cmd)
    before = time.monotonic()
    rc, out, err = transport.run(cmd, install_timeout)
    res.install_seconds = time.monotonic() - before
    _, marked, status_out = out.partition(STATUS_MARK.encode() + b"\n")
    if not marked:
        raise AlogError(transport.label, f"install failed: {_last_line(err) or f'exit status {rc}'}")
    if rc != 0:
        raise AlogError(transport.label, f"installed, but status failed: {_last_line(err) or f'exit status {rc}'}")
    status = _parse_status(transport, status_out)
    res.version_after = status.get("current")
    res.selftest = _selftest_result(status, res.version_after)
    res.result, res.seconds = "ok", time.monotonic() - start
    if res.version_after != bundle.version:
        raise AlogError(transport.label, f"installed, but the device runs {res.version_after} "
                                         f"(rolled back? selftest {res.selftest})")
    return res


def _send_all(transport: Transport, res: FlashResult, uploads: list, progress, parts: dict[str, int]) -> None:
    """Upload every file; a transport with `send_files` takes them at once (it finishes them in one command)."""
    def tick(n: int) -> None:
        if progress is not None:
            progress.update(n)
    before = time.monotonic()
    batch = getattr(transport, "send_files", None)
    if batch is not None:
        sent = batch([(data, remote, digest) for _, data, digest, remote in uploads], tick, parts)
    else:
        sent = [transport.send_file(data, remote, tick) for _, data, _, remote in uploads]
    log.debug("%s: %d files, %d bytes on the wire in %.2fs", transport.label, len(uploads), sum(sent),
              time.monotonic() - before)
    for (path, data, _, _), n in zip(uploads, sent):
        res.bytes_sent += n
        res.files_sent += 1
        res.files.append({"path": path, "size": len(data), "sent": n})


def _uploaded(transport: Transport, incoming: str, dirs: list[str]) -> tuple[dict[str, str], dict[str, int]]:
    """Create the upload folders; returns the sha256 of the complete files already there (by relative path)
    and the size of every partial upload there (`*.part`, by remote path)."""
    q = shlex.quote(incoming)
    out = _check(transport, "mkdir -p " + " ".join(map(shlex.quote, dirs)) +
                 f" && cd {q} && find . -type f ! -name '*.part' -exec sha256sum {{}} + && "
                 "find . -type f -name '*.part' -exec ls -ln {} +", f"cannot create {incoming}")
    found, parts = {}, {}
    for line in out.decode(errors="replace").splitlines():
        digest, _, path = line.partition("  ")
        if path.startswith("./"):
            found[path[2:]] = digest
            continue
        words = line.split()
        if len(words) >= 9 and words[4].isdigit() and words[-1].startswith("./"):  # ls -ln: size is field 5
            parts[f"{incoming}/{words[-1][2:]}"] = int(words[4])
    return found, parts


STATUS_MARK = "ALOG-EDGE-STATUS"


def _status_command(prefix: str) -> str:
    q = shlex.quote(prefix)
    return f"sh {q}/current/install.sh status --prefix {q}"


def device_status(transport: Transport, prefix: str) -> dict:
    return _parse_status(transport, _check(transport, _status_command(prefix), "status failed"))


def _parse_status(transport: Transport, out: bytes) -> dict:
    try:
        status = json.loads(out)
    except ValueError:
        raise AlogError(transport.label, "install.sh status did not print JSON") from None
    return status if isinstance(status, dict) else {}


def _selftest_result(status: dict, version: str | None) -> str | None:
    """"passed"/"failed" from the device's last history entry for `version` (install.sh writes a boolean)."""
    for entry in reversed(status.get("history") or []):
        if isinstance(entry, dict) and entry.get("version") == version:
            value = entry.get("selftest")
            return {True: "passed", False: "failed"}.get(value, value) if value is not None else entry.get("result")
    return None

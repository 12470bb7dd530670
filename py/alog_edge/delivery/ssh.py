"""The SSH transport of the flash driver: fabric's Connection with strict host keys (RejectPolicy set
explicitly, since fabric installs AutoAddPolicy), key authentication, SFTP uploads with an exec-channel
`cat >>` fallback for servers without SFTP (dropbear), and resume from the device's `.part` file."""
from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import logging
import os
import re
import shlex
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import fabric
import paramiko

from alog_edge.delivery import flash
from alog_edge.delivery.shellchan import ShellChannel
from alog_edge.errors import AlogError

log = logging.getLogger(__name__)
logging.getLogger("paramiko").setLevel(logging.CRITICAL)  # its tracebacks on a cut line are ours to report

WRITE_SIZE = 32 * 1024
PACK_MIN_BYTES = 256 * 1024   # smaller files are not worth a gunzip on the device
PACK_MAX_RATIO = 0.7          # send packed only when it saves at least 30%
_packed_cache: dict[str, bytes | None] = {}
_packed_lock = threading.Lock()
_known_hosts_lock = threading.Lock()


@dataclass(frozen=True)
class HostSpec:
    user: str
    host: str
    port: int = 22
    prefix: str | None = None      # per-host install prefix (hosts file `prefix=`), else --prefix

    @property
    def label(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    @property
    def known_hosts_name(self) -> str:  # OpenSSH's form of the name in known_hosts
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


_HOST = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[^:@\s\[\]]+))(?::(?P<port>\d+))?$")


def parse_host(text: str, source: str = "--host") -> HostSpec:
    m = _HOST.match(text.strip())
    port = int(m.group("port")) if m and m.group("port") else 22
    if not m or not 0 < port < 65536:
        raise AlogError(source, f"{text!r} is not user@host[:port]")
    return HostSpec(m.group("user") or os.environ.get("USER") or "root", m.group("v6") or m.group("host"), port)


def read_hosts_file(path: Path) -> list[HostSpec]:
    """One user@host[:port] per line, optionally followed by `prefix=/path` (that host's install prefix, as
    an Ansible inventory sets host variables); blank lines and `#` comments are skipped."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise AlogError(path, f"cannot read the hosts file ({exc.__class__.__name__})") from None
    hosts = []
    for n, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        spec, where = parse_host(words[0], f"{path}:{n}"), f"{path}:{n}"
        for word in words[1:]:
            key, _, value = word.partition("=")
            if key != "prefix" or not value.startswith("/"):
                raise AlogError(where, f"{word!r}: the only host setting is prefix=/absolute/path")
            spec = dataclasses.replace(spec, prefix=value)
        hosts.append(spec)
    if not hosts:
        raise AlogError(path, "names no host")
    return hosts


def packed_form(data: bytes, digest: str | None = None) -> bytes | None:
    """gzip (level 1, no name or time: the same bytes every time, so a partial upload stays a prefix) of a
    file that compresses well, else None. Computed once per content (`digest`: its sha256) for a whole fleet."""
    if len(data) < PACK_MIN_BYTES:
        return None
    key = digest or hashlib.sha256(data).hexdigest()
    with _packed_lock:
        if key not in _packed_cache:
            packed = gzip.compress(data, compresslevel=1, mtime=0)
            _packed_cache[key] = packed if len(packed) <= PACK_MAX_RATIO * len(data) else None
        return _packed_cache[key]


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint, as `ssh-keygen -l` prints it."""
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


class _HostKeyPolicy(paramiko.RejectPolicy):
    """Unknown host: refuse with the fingerprint, or (--accept-new-host-key) record it in known_hosts."""

    def __init__(self, spec: HostSpec, known_hosts: Path, accept_new: bool) -> None:
        self.spec, self.known_hosts, self.accept_new = spec, known_hosts, accept_new

    def missing_host_key(self, client, hostname, key):
        if not self.accept_new:
            raise AlogError(self.spec.label, f"unknown host key {fingerprint(key)} (not in {self.known_hosts}); "
                                             "check it and pass --accept-new-host-key to record it")
        record_host_key(self.known_hosts, self.spec.known_hosts_name, key)
        log.info("%s: recorded new host key %s in %s", self.spec.label, fingerprint(key), self.known_hosts)


def record_host_key(path: Path, name: str, key: paramiko.PKey) -> None:
    """Append one known_hosts line atomically (temp file beside, then rename); safe across fleet threads."""
    with _known_hosts_lock:
        old = path.read_text() if path.exists() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(old + f"{name} {key.get_name()} {key.get_base64()}\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)


# AES-GCM first: one AES-NI + carry-less multiply pass, where CTR adds a separate HMAC pass (OpenSSH offers it;
# dropbear builds without it agree on aes128-ctr + hmac-sha2-256, paramiko's default). Compression stays off:
# files that pay travel gzip-packed, packed once per fleet.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def _transport(sock, **kwargs) -> paramiko.Transport:
    """paramiko's Transport with the cipher order above and TCP_NODELAY: every command is a small request
    awaiting its answer, which Nagle's algorithm would hold back for the last one's (delayed) ACK."""
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = paramiko.Transport(sock, **kwargs)
    opts = t.get_security_options()
    have = list(opts.ciphers)
    opts.ciphers = [c for c in PREFERRED_CIPHERS if c in have] + [c for c in have if c not in PREFERRED_CIPHERS]
    return t


@dataclass
class SshOptions:
    known_hosts: Path = Path("~/.ssh/known_hosts").expanduser()
    identity: Path | None = None
    accept_new_host_key: bool = False
    password: str | None = None
    connect_timeout: float = 15.0


class SshTransport:
    """One device over SSH. Raises AlogError with one line for refusals (host key, authentication)."""

    def __init__(self, spec: HostSpec, options: SshOptions) -> None:
        self.spec, self.label, self.options = spec, spec.label, options
        self._sftp: paramiko.SFTPClient | None = None
        self._shell: ShellChannel | None = None
        self._sftp_missing = False
        self.uploads_by_exec = 0
        kwargs: dict = {"allow_agent": True, "look_for_keys": options.identity is None,
                        "transport_factory": _transport,
                        "banner_timeout": options.connect_timeout, "auth_timeout": options.connect_timeout}
        if options.identity is not None:
            if not Path(options.identity).is_file():
                raise AlogError("--identity", f"{options.identity}: no such key file")
            kwargs["key_filename"] = str(options.identity)
        if options.password is not None:
            kwargs["password"] = options.password
        self.conn = fabric.Connection(spec.host, user=spec.user, port=spec.port, connect_kwargs=kwargs,
                                      connect_timeout=options.connect_timeout)
        client = self.conn.client
        known = Path(options.known_hosts)
        if known.exists():
            try:
                client.load_host_keys(str(known))
            except (OSError, paramiko.SSHException, UnicodeDecodeError) as exc:
                raise AlogError(known, f"not a known_hosts file ({exc})") from None
        client.set_missing_host_key_policy(_HostKeyPolicy(spec, known, options.accept_new_host_key))
        self._connect()

    def _connect(self) -> None:
        try:
            self.conn.open()
        except paramiko.BadHostKeyException as exc:
            raise AlogError(self.label, f"host key CHANGED: the device offers {fingerprint(exc.key)}, "
                                        f"{self.options.known_hosts} has {fingerprint(exc.expected_key)}; "
                                        "refusing (possible man-in-the-middle)") from None
        except paramiko.AuthenticationException:
            raise AlogError(self.label, "authentication failed: the device accepts none of the keys offered "
                                        "(--identity, the agent" + (", the password)" if self.options.password
                                                                    else ")")) from None
        except (paramiko.SSHException, socket.error, EOFError) as exc:
            raise AlogError(self.label, f"cannot connect: {exc or exc.__class__.__name__}") from None

    def run(self, command: str, timeout: float) -> tuple[int, bytes, bytes]:
        """The command under the device's sh, on one shell kept open (see shellchan)."""
        if self._shell is None:
            self._shell = ShellChannel(self._session(timeout), self.label)
        try:
            return self._shell.run(command, timeout)
        except (AlogError, OSError, EOFError, paramiko.SSHException):
            self._shell.close()  # its state is unknown now: the next command opens a new one
            self._shell = None
            raise

    def run_session(self, command: str, timeout: float) -> tuple[int, bytes, bytes]:
        """The command on a session of its own."""
        chan = self._session(timeout)
        try:
            chan.settimeout(timeout)
            chan.exec_command(command)
            chan.shutdown_write()
            out, err = _drain(chan, time.monotonic() + timeout, self.label)
            return chan.recv_exit_status(), out, err
        finally:
            chan.close()

    def _session(self, timeout: float) -> paramiko.Channel:
        """A new exec channel; dropbear now and then refuses one while it closes the last: retry briefly."""
        transport = self.conn.transport
        for attempt in range(5):
            if transport is None or not transport.is_active():
                raise AlogError(self.label, "the connection was lost")
            try:
                return transport.open_session(timeout=timeout)
            except paramiko.ChannelException:
                time.sleep(0.05 * (attempt + 1))
            except paramiko.SSHException as exc:
                if "Unable to open channel" not in str(exc) or attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AlogError(self.label, "the device refuses new sessions")

    def read_file(self, path: str) -> bytes | None:
        sftp = self._sftp_client()
        if sftp is not None:
            try:
                with sftp.open(path, "rb") as f:
                    return f.read()
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise AlogError(self.label, f"cannot read {path}: {exc}") from None
        q = shlex.quote(path)
        rc, out, _ = self.run(f"if [ -f {q} ]; then cat {q}; else exit 3; fi", flash.COMMAND_TIMEOUT)
        if rc == 3:
            return None
        if rc != 0:
            raise AlogError(self.label, f"cannot read {path}")
        return out

    def send_file(self, data: bytes, remote: str, progress: Callable[[int], None]) -> int:
        """One file (Transport.send_file): like send_files, and its whole sha256 checked on the device."""
        return self.send_files([(data, remote, None)], progress, None, check_sha256=True)[0]

    def send_files(self, files: list[tuple[bytes, str, str | None]], progress: Callable[[int], None],
                   parts: dict[str, int] | None, check_sha256: bool = False) -> list[int]:
        """Upload each (data, remote, its sha256 when known) into remote.part (gzip-packed into remote.gz.part
        where that pays),
        resuming the verified prefix of a partial upload: `parts` gives their sizes (remote part path -> bytes;
        None: ask the device). Then one command unpacks the packed ones (gunzip checks their CRC and length),
        checks every size and renames them into place. Returns the bytes put on the wire per file.
        The device's installer checks every file's sha256 before it installs anything, so the whole-file
        sha256 is not computed here too (`check_sha256` does, for a file nothing checks later)."""
        sent, finish = [], []
        for data, remote, digest in files:
            packed = packed_form(data, digest)
            if packed is None:
                sent.append(self._upload(data, remote + ".part", remote, progress, parts))
            else:
                scale = len(data) / len(packed)
                sent.append(self._upload(packed, remote + ".gz.part", remote, lambda n: progress(round(n * scale)),
                                         parts))
            finish.append(_finish_line(data, remote, packed is not None, check_sha256))
        if finish:
            rc, out, err = self.run("\n".join(finish), flash.COMMAND_TIMEOUT + len(finish))
            if rc == 9:
                raise AlogError(self.label, f"{flash._last_line(out)}: the upload does not check out "
                                            f"({flash._last_line(err) or 'its size or sha256 differs'}); removed it")
            if rc != 0:
                raise AlogError(self.label, f"cannot finish the uploads: {flash._last_line(err) or f'exit status {rc}'}")
        return sent

    def _upload(self, payload: bytes, part: str, name: str, progress: Callable[[int], None],
                parts: dict[str, int] | None) -> int:
        sftp = self._sftp_client()
        size = None if parts is None else parts.get(part, 0)
        if sftp is not None and size is None:
            try:
                size = sftp.stat(part).st_size or 0
            except FileNotFoundError:
                size = 0
        offset = flash.verified_prefix(self, payload, part, size)
        if offset:
            log.info("%s: %s: resuming at byte %d of %d", self.label, name, offset, len(payload))
            progress(offset)
        if sftp is not None:
            with sftp.open(part, "r+b" if offset else "wb") as f:
                f.set_pipelined(True)
                f.seek(offset)
                for i in range(offset, len(payload), WRITE_SIZE):
                    f.write(payload[i:i + WRITE_SIZE])
                    progress(min(WRITE_SIZE, len(payload) - i))
        else:
            self._cat_write(payload[offset:], part, progress, append=offset > 0)
        return len(payload) - offset

    @property
    def has_sftp(self) -> bool:
        return self._sftp_client() is not None

    def _sftp_client(self) -> paramiko.SFTPClient | None:
        """The SFTP session, opened once; None when the server has none (dropbear ships no sftp-server)."""
        if self._sftp is None and not self._sftp_missing:
            chan = self._session(flash.COMMAND_TIMEOUT)
            try:
                chan.invoke_subsystem("sftp")
                self._sftp = paramiko.SFTPClient(chan)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                log.debug("%s: no SFTP (%s): uploading through an exec channel", self.label,
                         exc or exc.__class__.__name__)
                self._sftp_missing = True
                chan.close()  # and wait until it is: dropbear can refuse a channel opened meanwhile
                chan.status_event.wait(flash.COMMAND_TIMEOUT)
        return self._sftp

    def _cat_write(self, data: bytes, part: str, progress: Callable[[int], None], append: bool) -> None:
        self.uploads_by_exec += 1
        chan = self._session(flash.COMMAND_TIMEOUT)
        try:
            chan.settimeout(flash.COMMAND_TIMEOUT)
            chan.exec_command(f"cat {'>>' if append else '>'} {shlex.quote(part)}")
            for i in range(0, len(data), WRITE_SIZE):
                chan.sendall(data[i:i + WRITE_SIZE])
                progress(min(WRITE_SIZE, len(data) - i))
            chan.shutdown_write()
            _, err = _drain(chan, time.monotonic() + flash.COMMAND_TIMEOUT, self.label)
            rc = chan.recv_exit_status()
        finally:
            chan.close()
        if rc != 0:
            raise AlogError(self.label, f"cat > {part} failed: {err.decode(errors='replace').strip()}")

    def close(self) -> None:
        try:
            if self._shell is not None:
                self._shell.close()
            if self._sftp is not None:
                self._sftp.close()
        except (OSError, EOFError, paramiko.SSHException):
            pass
        self.conn.close()


def _finish_line(data: bytes, remote: str, packed: bool, check_sha256: bool) -> str:
    """One line of the finishing command: unpack, check the size (and the sha256), rename; on any
    difference remove the upload and exit 9 naming it."""
    part, q, gz = shlex.quote(remote + ".part"), shlex.quote(remote), shlex.quote(remote + ".gz.part")
    steps = [f"gunzip -c {gz} > {part} && rm -f {gz}"] if packed else []
    steps.append(f'set -- $(ls -ln {part}) && [ "$5" = {len(data)} ]')
    if check_sha256:
        steps.append(f'set -- $(sha256sum {part}) && [ "$1" = {hashlib.sha256(data).hexdigest()} ]')
    steps.append(f"mv -f {part} {q}")
    return f"{{ {' && '.join(steps)}; }} || {{ rm -f {part} {gz}; echo {q}; exit 9; }}"


def _drain(chan: paramiko.Channel, deadline: float, label: str) -> tuple[bytes, bytes]:
    """Everything the command printed, once it exited; AlogError when the line drops or time runs out."""
    out, err = bytearray(), bytearray()
    try:
        for buf, recv in ((out, chan.recv), (err, chan.recv_stderr)):
            while data := recv(65536):
                buf += data
    except socket.timeout:
        raise AlogError(label, "the device did not answer in time") from None
    if not chan.status_event.wait(max(0.0, deadline - time.monotonic())):
        raise AlogError(label, "the device did not answer in time")
    if chan.exit_status < 0 and not chan.get_transport().is_active():  # -1 alone: killed by a signal
        raise AlogError(label, "the connection was lost")
    return bytes(out), bytes(err)

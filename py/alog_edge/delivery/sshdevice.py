"""Local SSH test devices: a real OpenSSH sshd (with SFTP) or a real dropbear (without) on 127.0.0.1 at a free
port, with test-only host keys, client key and config in one folder. Commands run under busybox sh with a PATH
of busybox applets only; the device prefix is `<folder>/prefix`. Used by the tests and `invoke device-ssh`."""
from __future__ import annotations

import json
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from alog_edge.errors import AlogError

log = logging.getLogger(__name__)

SSHD = Path("/usr/sbin/sshd")
SFTP_SERVER = Path("/usr/lib/openssh/sftp-server")
DROPBEAR = Path("/usr/sbin/dropbear")
BUSYBOX = Path("/usr/bin/busybox")
NSS_WRAPPER = next(iter(sorted(Path("/usr/lib").glob("*/libnss_wrapper.so"))), Path("/usr/lib/libnss_wrapper.so"))
START_SECONDS = 10.0
HEALTH_SECONDS = 1


@dataclass
class Device:
    """One started test device; `host` is what `invoke flash --host` takes."""
    kind: str            # "sshd" or "dropbear"
    root: Path
    port: int
    pid: int
    user: str

    @property
    def host(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"

    @property
    def prefix(self) -> Path:
        return self.root / "prefix"

    @property
    def identity(self) -> Path:
        return self.root / "client" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "client" / "known_hosts"

    @property
    def host_key_line(self) -> str:
        return (self.root / "client" / "host_key.line").read_text()

    def save(self) -> None:
        data = {k: str(v) for k, v in asdict(self).items()}
        (self.root / "device.json").write_text(json.dumps(data) + "\n")

    @classmethod
    def load(cls, root: Path) -> "Device":
        try:
            d = json.loads((Path(root) / "device.json").read_text())
            return cls(d["kind"], Path(d["root"]), int(d["port"]), int(d["pid"]), d["user"])
        except (OSError, ValueError, KeyError) as exc:
            raise AlogError(root, f"not a test device folder ({exc.__class__.__name__})") from None

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(*cmd: str) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise AlogError(cmd[0], f"failed: {res.stderr.strip().splitlines()[-1:] or res.returncode}")
    return res.stdout


def _check_tools(kind: str) -> None:
    need = [BUSYBOX, NSS_WRAPPER] + ([SSHD, SFTP_SERVER] if kind == "sshd" else [DROPBEAR])
    for tool in need:
        if not tool.exists():
            raise AlogError(tool, "missing: run `invoke setup` (openssh-server, dropbear-bin, busybox, "
                                  "libnss-wrapper)")


def _busybox_bin(root: Path) -> Path:
    bindir = root / "bin"
    bindir.mkdir()
    for applet in _run(str(BUSYBOX), "--list").split():
        (bindir / applet).symlink_to(BUSYBOX)
    return bindir


def _write_shell(root: Path, bindir: Path, sftp: bool) -> Path:
    """The device's login: the client's command under busybox sh, with busybox applets only on PATH."""
    env = f"{bindir}/env -i PATH={bindir} HOME={root}/home USER=$USER LOGNAME=$USER SHELL={bindir}/sh"
    sftp_line = f"exec {SFTP_SERVER}" if sftp else "echo 'this device has no SFTP' >&2; exit 1"
    shell = root / "shell"
    shell.write_text(f"""#!{bindir}/sh
case "$SSH_ORIGINAL_COMMAND" in
  */sftp-server|internal-sftp|sftp) {sftp_line} ;;
  "") exec {env} {bindir}/sh -l ;;
esac
exec {env} {bindir}/sh -c "$SSH_ORIGINAL_COMMAND"
""")
    shell.chmod(0o755)
    return shell


def create(root: Path, kind: str = "sshd", identity: Path | None = None) -> Device:
    """Make the device folder and start its server. `identity`: reuse a client key (a fleet shares one)."""
    if kind not in ("sshd", "dropbear"):
        raise AlogError("--kind", f"{kind!r}: sshd or dropbear")
    _check_tools(kind)
    root = Path(root).resolve()
    if (root / "device.json").exists():
        raise AlogError(root, "already holds a test device (stop it first)")
    for sub in ("etc", "client", "home/.ssh", "prefix/etc", "prefix/var/log", "run"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "home", 0o700)
    os.chmod(root / "home" / ".ssh", 0o700)
    bindir = _busybox_bin(root)
    shell = _write_shell(root, bindir, sftp=kind == "sshd")
    client_key = root / "client" / "id_ed25519"
    if identity is not None:
        shutil.copy(identity, client_key)
        shutil.copy(f"{identity}.pub", f"{client_key}.pub")
        os.chmod(client_key, 0o600)
    else:
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alog-edge-test-client", "-f", str(client_key))
    authorized = root / "home" / ".ssh" / "authorized_keys"
    authorized.write_text(Path(f"{client_key}.pub").read_text())
    os.chmod(authorized, 0o600)
    (root / "prefix" / "var" / "log" / "app.log").touch()
    (root / "prefix" / "etc" / "alog-edge.conf").write_text(
        f"ALOG_EDGE_LOG={root}/prefix/var/log/app.log\nALOG_EDGE_HEALTH_SECONDS={HEALTH_SECONDS}\n")
    user = pwd.getpwuid(os.getuid()).pw_name
    port = free_port()
    if kind == "sshd":
        key_line, proc = _start_sshd(root, port, shell, authorized, user)
    else:
        key_line, proc = _start_dropbear(root, port, shell, user)
    (root / "client" / "host_key.line").write_text(f"[127.0.0.1]:{port} {key_line}\n")
    device = Device(kind, root, port, proc.pid, user)
    device.save()
    _wait_listening(device, proc)
    return device


def _start_sshd(root: Path, port: int, shell: Path, authorized: Path, user: str):
    host_key = root / "etc" / "ssh_host_ed25519_key"
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alog-edge-test-device", "-f", str(host_key))
    (root / "etc" / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}", f"PidFile {root}/run/sshd.pid",
        f"AuthorizedKeysFile {authorized}", "StrictModes no", "PubkeyAuthentication yes",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
        "UsePAM no", f"AllowUsers {user}", f"ForceCommand {shell}", f"Subsystem sftp {SFTP_SERVER}",
        "MaxStartups 100:30:200", "MaxSessions 64", "LogLevel ERROR", "PrintMotd no", ""]))
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    _write_passwd(root, user)
    return " ".join(Path(f"{host_key}.pub").read_text().split()[:2]), _spawn(root, "sshd", port)


def _start_dropbear(root: Path, port: int, shell: Path, user: str):
    host_key = root / "etc" / "dropbear_ed25519_host_key"
    _run("dropbearkey", "-t", "ed25519", "-f", str(host_key))
    pub = next(line for line in _run("dropbearkey", "-y", "-f", str(host_key)).splitlines()
               if line.startswith("ssh-"))
    _write_passwd(root, user)
    return " ".join(pub.split()[:2]), _spawn(root, "dropbear", port)


def _write_passwd(root: Path, user: str) -> None:
    """The device's own passwd for nss_wrapper: dropbear reads authorized_keys from the user's home, and both
    servers start the user's shell (a real account's, e.g. bash with its rc files, is not the device's)."""
    ent = pwd.getpwuid(os.getuid())
    lines = [f"{user}:x:{ent.pw_uid}:{ent.pw_gid}:test device:{root}/home:/bin/sh"]
    try:
        priv = pwd.getpwnam("sshd")  # OpenSSH's privilege separation user
        lines.append(f"sshd:x:{priv.pw_uid}:{priv.pw_gid}::{priv.pw_dir}:/usr/sbin/nologin")
    except KeyError:
        pass
    (root / "etc" / "passwd").write_text("\n".join(lines) + "\n")
    (root / "etc" / "group").write_text(f"{user}:x:{ent.pw_gid}:\n")


def _spawn(root: Path, kind: str, port: int) -> subprocess.Popen:
    if kind == "sshd":
        argv = [str(SSHD), "-D", "-e", "-f", str(root / "etc" / "sshd_config")]
    else:
        argv = [str(DROPBEAR), "-F", "-E", "-s", "-m", "-r", str(root / "etc" / "dropbear_ed25519_host_key"),
                "-p", f"127.0.0.1:{port}", "-P", str(root / "run" / "dropbear.pid"), "-c", str(root / "shell")]
    env = dict(os.environ, LD_PRELOAD=str(NSS_WRAPPER), NSS_WRAPPER_PASSWD=str(root / "etc" / "passwd"),
               NSS_WRAPPER_GROUP=str(root / "etc" / "group"))
    with open(root / "run" / "server.log", "ab") as log_file:
        return subprocess.Popen(argv, stdout=log_file, stderr=log_file, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)


def _wait_listening(device: Device, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (device.root / "run" / "server.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise AlogError(device.kind, f"exited at start: {tail[0] if tail else proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", device.port), timeout=1) as s:
                s.settimeout(1)
                if s.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    stop(device)
    raise AlogError(device.kind, f"not listening on 127.0.0.1:{device.port} after {START_SECONDS:.0f}s")


def trust(device: Device, known_hosts: Path | None = None) -> Path:
    """Add the device's host key to a known_hosts file (default: its own client/known_hosts)."""
    path = known_hosts or device.known_hosts
    with open(path, "a") as f:
        f.write(device.host_key_line)
    return path


def processes_under(root: Path) -> list[int]:
    """Processes whose executable or arguments live in the device folder (its service, its sessions)."""
    pids, mine = [], str(root)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if mine in cmd:
            pids.append(int(entry.name))
    return pids


def kill_server(device: Device) -> None:
    """SIGKILL the server: its listener and every per-connection server process (they call setsid, so not one
    process group), leaving the commands they ran to find their channel gone. A crash, for the soak."""
    binary = str(SSHD if device.kind == "sshd" else DROPBEAR)
    for pid in descendants(device.pid):
        try:
            if os.readlink(f"/proc/{pid}/exe") == binary:
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    _reap(device.pid)


def descendants(pid: int) -> list[int]:
    """pid and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def restart(device: Device) -> Device:
    """Start the server again on the same port with the same keys (after kill_server)."""
    kill_server(device)
    proc = _spawn(device.root, device.kind, device.port)
    device.pid = proc.pid
    device.save()
    _wait_listening(device, proc)
    return device


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(device: Device, timeout: float = 5.0) -> None:
    """Stop the server, its sessions and anything the device started (the alog-edge service)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(device.pid, sig)
        except OSError:
            pass
        for pid in processes_under(device.root):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (device.alive() or processes_under(device.root)):
            _reap(device.pid)
            time.sleep(0.05)
        _reap(device.pid)
    (device.root / "device.json").unlink(missing_ok=True)


def _devices_in(folder: Path) -> list[Device]:
    roots = [folder] if (folder / "device.json").exists() else sorted(
        (p.parent for p in folder.glob("*/device.json")), key=lambda p: (len(p.name), p.name))
    return [Device.load(r) for r in roots]


def start_fleet(folder: Path, kinds: list[str]) -> list[Device]:
    """Devices folder/0, folder/1, ... sharing one client key; folder/known_hosts and folder/hosts list them."""
    folder.mkdir(parents=True, exist_ok=True)
    devices: list[Device] = []
    try:
        for i, kind in enumerate(kinds):
            devices.append(create(folder / str(i), kind, identity=devices[0].identity if devices else None))
    except BaseException:
        for d in devices:
            stop(d)
        raise
    (folder / "known_hosts").write_text("".join(d.host_key_line for d in devices))
    (folder / "hosts").write_text("# test devices (invoke device-ssh)\n" + "".join(f"{d.host} prefix={d.prefix}\n" for d in devices))
    return devices


def manage(action: str, folder: Path, kind: str = "sshd", count: int = 1) -> str:
    """`invoke device-ssh start|stop|status`."""
    folder = folder.resolve()
    if action == "start":
        if count < 1:
            raise AlogError("--count", f"{count}: must be at least 1")
        if folder.exists() and any(folder.iterdir()):
            raise AlogError(folder, "is not empty (invoke device-ssh stop first)")
        if count == 1:
            devices = [create(folder, kind)]
            trust(devices[0])
            known, ident = devices[0].known_hosts, devices[0].identity
            hosts = f"--host {devices[0].host} --prefix {devices[0].prefix}"
        else:
            devices = start_fleet(folder, [kind] * count)
            known, ident, hosts = folder / "known_hosts", devices[0].identity, f"--hosts {folder / 'hosts'}"
        lines = [f"{d.kind} on {d.host} (pid {d.pid}), prefix {d.prefix}" for d in devices]
        return "\n".join(lines + [f"flash: invoke flash --bundle BUNDLE {hosts} --identity {ident} "
                                  f"--known-hosts {known} --trust-key KEY.pub",
                                  f"stop:  invoke device-ssh stop --dir {folder}"])
    if action == "stop":
        devices = _devices_in(folder) if folder.exists() else []
        for d in devices:
            stop(d)
        if folder.exists():
            shutil.rmtree(folder)
        return f"stopped {len(devices)} device(s), removed {folder}"
    if action == "status":
        devices = _devices_in(folder) if folder.exists() else []
        if not devices:
            return f"no test device in {folder}"
        out = []
        for d in devices:
            cur = d.prefix / "current"
            version = os.readlink(cur).rsplit("/", 1)[-1] if cur.is_symlink() else "(nothing installed)"
            out.append(f"{d.kind} {d.host} {'running' if d.alive() else 'STOPPED'}: {version}")
        return "\n".join(out)
    raise AlogError("action", f"{action!r}: start, stop or status")


def trust_alias(device: Device, port: int) -> None:
    """Also trust the device's host key under another local port (a relay in front of it)."""
    key = device.host_key_line.split(" ", 1)[1]
    with open(device.known_hosts, "a") as f:
        f.write(f"[127.0.0.1]:{port} {key}")

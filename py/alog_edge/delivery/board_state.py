"""The files and the state of an emulated board (`<workspace>/board/`, see board.py): board.json written
atomically, read back with a check that its qemu still runs (a pid reused by another program is stale)."""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import AlogError

log = logging.getLogger(__name__)

QEMU = "qemu-system-aarch64"
HOST = "127.0.0.1"
USER = "root"


class BoardError(AlogError):
    pass


@dataclass(frozen=True)
class BoardFiles:
    workspace: Path

    @property
    def dir(self) -> Path:
        return self.workspace / "board"

    def __getattr__(self, name: str) -> Path:
        names = {"state": "board.json", "identity": "id_ed25519", "host_key": "host_key",
                 "known_hosts": "known_hosts", "opt_image": "opt.img", "initrd": "initrd.img",
                 "serial_log": "serial.log", "qemu_log": "qemu.log", "pidfile": "qemu.pid",
                 "qmp": "qmp.sock"}
        if name not in names:
            raise AttributeError(name)
        return self.dir / names[name]


@dataclass
class BoardState:
    pid: int
    ssh_port: int
    serial_port: int
    memory: int
    started: float
    ssh_seconds: float = 0.0

    def describe(self, files: BoardFiles) -> dict:
        return {"state": "running", "ssh": f"{USER}@{HOST}:{self.ssh_port}",
                "identity": str(files.identity), "known_hosts": str(files.known_hosts),
                "serial": f"socket://{HOST}:{self.serial_port}", "pid": self.pid,
                "memory_mb": self.memory, "started": int(self.started),
                "boot_to_ssh_seconds": round(self.ssh_seconds, 1), "opt_image": str(files.opt_image)}


def files_of(workspace: Path) -> BoardFiles:
    return BoardFiles(Path(workspace).resolve())


def read_state(workspace: Path) -> tuple[str, BoardState | None]:
    """("running", state), ("stale", state) for a board.json whose qemu is gone, or ("stopped", None)."""
    files = files_of(workspace)
    try:
        data = json.loads(files.state.read_text())
        state = BoardState(**data)
    except FileNotFoundError:
        return "stopped", None
    except (ValueError, TypeError) as exc:
        log.warning("%s: unreadable (%s): treated as stale", files.state, exc)
        return "stale", None
    return ("running" if is_our_qemu(state.pid, files) else "stale"), state


def is_our_qemu(pid: int, files: BoardFiles) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and Path(cmdline[0].decode()).name == QEMU and \
        str(files.opt_image).encode() in b" ".join(cmdline)


def write_state(files: BoardFiles, state: BoardState) -> None:
    tmp = files.state.with_name(files.state.name + ".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=1) + "\n")
    tmp.replace(files.state)


def clear_state(files: BoardFiles) -> None:
    for path in (files.state, files.pidfile, files.qmp):
        path.unlink(missing_ok=True)

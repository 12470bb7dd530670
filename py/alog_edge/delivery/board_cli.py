"""`invoke board ACTION`: start, stop, status and console of the emulated aarch64 board (board.py)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .board import USER, BoardError, BoardFiles, start, status, stop


def how_to_reach(info: dict) -> str:
    host, port = info["ssh"].split("@", 1)[1].rsplit(":", 1)
    return (f"ssh:    ssh -i {info['identity']} -o UserKnownHostsFile={info['known_hosts']} "
            f"-p {port} {USER}@{host}\n"
            f"serial: {info['serial']}  (invoke board console; invoke flash --serial {info['serial']})")


def command(repo: Path, action: str, workspace: Path, ssh_port: int, serial_port: int | None,
            memory: int, kernel: Path | None, as_json: bool) -> int:
    """`invoke board ACTION`; returns the exit status (status: 0 running, 3 not running)."""
    if action == "start":
        info = start(repo, workspace, ssh_port, serial_port, memory, kernel)
        print(json.dumps(info) if as_json else
              f"board running (pid {info['pid']}, SSH after {info['boot_to_ssh_seconds']}s)\n"
              + how_to_reach(info))
        return 0
    if action == "stop":
        print(f"board: {stop(workspace)}")
        return 0
    if action == "status":
        info = status(workspace)
        if as_json:
            print(json.dumps(info))
        elif info["state"] == "running":
            print(f"board running (pid {info['pid']})\n" + how_to_reach(info))
        else:
            print(f"board {info['state']}" + (f": {info['note']}" if "note" in info else ""))
        return 0 if info["state"] == "running" else 3
    if action == "console":
        return console(workspace)
    raise BoardError("action", f"{action!r}: choose start, stop, status or console")


def console(workspace: Path) -> int:
    """An interactive terminal on the board's serial console (pyserial's miniterm; Ctrl-] leaves)."""
    from serial.tools import miniterm

    info = status(workspace)
    if info["state"] != "running":
        raise BoardError(BoardFiles(Path(workspace).resolve()).state, "no board runs in this workspace: `invoke board start`")
    sys.argv = ["miniterm", "--raw", "--eol", "LF", "--exit-char", "29", info["serial"], "115200"]
    miniterm.main()
    return 0

"""The delivery tasks behind tasks.py whose bodies choose between transports or modes: flash, install, soak.

Each returns (text to print, exit code): the task prints the text, then exits with the code when it is not 0.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from invoke import Exit

from alog_edge.errors import AlogError


def opt(path: str | None) -> Path | None:
    return Path(path) if path else None


def flash(bundle: str, host: list[str] | None, hosts: str | None, identity: str | None, known_hosts: str | None,
          accept_new_host_key: bool, ask_password: bool, prefix: str, trust_key: str | None, dry_run: bool,
          force: bool, parallel: int, timeout: float, json_: bool, serial: str | None, baud: int, user: str | None,
          encoding: str, chunk_size: int | None, compress: str) -> tuple[str | None, int]:
    if serial:
        from alog_edge.delivery import serial_flash
        res = serial_flash.flash_serial(bundle, serial, int(baud), user, prefix, opt(trust_key), dry_run, force,
                                        encoding, compress, int(chunk_size) if chunk_size else None)
        return (res.json() if json_ else res.summary()), 0
    from alog_edge.delivery import flash_cli
    req = flash_cli.request(bundle=bundle, host=host, hosts=hosts, identity=identity, known_hosts=known_hosts,
                            accept_new_host_key=accept_new_host_key, ask_password=ask_password, prefix=prefix,
                            trust_key=trust_key, dry_run=dry_run, force=force, parallel=int(parallel),
                            timeout=float(timeout))
    return None, 1 if flash_cli.run(req, json_=json_) else 0


def install(root: Path, bundle: str | None, prefix: str | None, trust_key: str | None, force: bool, rollback: bool,
            status: bool, json_: bool) -> tuple[str, int]:
    from alog_edge.delivery import local
    where = opt(prefix) or root / "device"
    try:
        if status:
            return json.dumps(local.status(where)), 0
        if not (bundle or rollback):
            raise AlogError("--bundle", "needed (or --rollback / --status)")
        res = local.rollback(where) if rollback else local.install(Path(bundle), where, opt(trust_key), force=force)
    except local.InstallError as exc:  # install.sh's own one line and exit code
        raise Exit(f"error: {exc}", code=exc.code) from None
    return (json.dumps(res.summary()) if json_ else res.text()), 0


def soak(repo: Path, root: Path, transport: str, runs: int | None, seed: int, no_steps: bool, bundle_a: str | None,
         bundle_b: str | None, key: str | None, json_: bool, tamper: bool, faults: str, devices: int,
         baud: int) -> tuple[str, int]:
    result: Any
    if transport == "serial":
        from alog_edge.delivery import serial_bench
        result = serial_bench.soak(int(runs or 200), int(baud), int(seed))
        return (json.dumps(result.as_dict()) if json_ else result.report()), 0 if result.ok else 1
    if transport == "ssh":
        from alog_edge.delivery import flash_rig
        report = flash_rig.run_soak(root / "soak-ssh", faults.split(","), int(runs or 200), int(seed), repo,
                                    int(devices))
        return (json.dumps(report.summary()) if json_ else report.text()), 1 if report.failures else 0
    if transport != "local":
        raise AlogError("--transport", f"{transport!r}: local, ssh or serial")
    from alog_edge.delivery import soak as s
    if tamper:
        from alog_edge.delivery import keys
        if not (bundle_a and bundle_b):
            raise AlogError("--tamper", "needs --bundle-a (installed) and --bundle-b (tampered with)")
        res = s.run_local_tamper(root, (Path(bundle_a), Path(bundle_b)),
                                 keys.public_path(opt(key) or keys.default_key_path()))
    else:
        res = s.run_local_soak(root, int(runs or 100), int(seed), (Path(bundle_a), Path(bundle_b))
                               if bundle_a and bundle_b else None, opt(key), every_step=not no_steps)
    return (json.dumps(res.summary()) if json_ else res.text()), 0

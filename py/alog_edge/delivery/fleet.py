"""`invoke flash` over SSH for one device or a fleet: bounded parallelism, a per-host timeout, one result per
host (a failing host never stops the others), a recap table and JSON lines."""
from __future__ import annotations

import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import paramiko
from tqdm import tqdm

from alog_edge.delivery import flash, ssh
from alog_edge.errors import AlogError

log = logging.getLogger(__name__)


@dataclass
class FleetRequest:
    bundle: Path
    hosts: list[ssh.HostSpec]
    options: ssh.SshOptions = field(default_factory=ssh.SshOptions)
    prefix: str = "/opt/alog-edge"
    trust_key: Path | None = None
    dry_run: bool = False
    force: bool = False
    parallel: int = 10
    host_timeout: float = 600.0
    progress: bool | None = None   # None: bars only on a terminal


def hosts_from_flags(host: list[str] | None, hosts_file: str | None) -> list[ssh.HostSpec]:
    specs = [ssh.parse_host(h) for h in host or []]
    if hosts_file:
        specs += ssh.read_hosts_file(Path(hosts_file))
    if not specs:
        raise AlogError("--host", "name a device (--host user@host[:port], repeatable) or --hosts FILE")
    seen: set[str] = set()
    return [s for s in specs if not (s.label in seen or seen.add(s.label))]


def check_request(req: FleetRequest):
    """Refuse bad input before any connection; returns the opened bundle (shared by every host)."""
    from alog_edge.delivery import bundle as bundles
    if req.parallel < 1:
        raise AlogError("--parallel", f"{req.parallel}: must be at least 1")
    if req.host_timeout <= 0:
        raise AlogError("--timeout", f"{req.host_timeout}: must be more than 0 seconds")
    if req.trust_key is not None and not Path(req.trust_key).is_file():
        raise AlogError("--trust-key", f"{req.trust_key}: no such file")
    if not req.prefix.startswith("/"):
        raise AlogError("--prefix", f"{req.prefix!r} is not an absolute path")
    return bundles.open_bundle(Path(req.bundle))


def flash_host(spec: ssh.HostSpec, bundle, req: FleetRequest, slot: int = 0) -> flash.FlashResult:
    """One device from connect to status; every failure becomes this host's result, never an exception."""
    start = time.monotonic()
    holder: dict[str, ssh.SshTransport] = {}
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        if "t" in holder:
            holder["t"].close()  # unblocks whatever the transfer waits on
    timer = threading.Timer(req.host_timeout, expire)
    timer.daemon = True
    timer.start()

    def bar(total: int, label: str):
        return tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024, position=slot,
                    leave=False, disable=None if req.progress is None else not req.progress)
    try:
        holder["t"] = ssh.SshTransport(spec, req.options)
        if timed_out.is_set():
            raise TimeoutError
        res = flash.flash(holder["t"], bundle, spec.prefix or req.prefix, trust_key=req.trust_key, dry_run=req.dry_run,
                          force=req.force, bar=bar, install_timeout=req.host_timeout)
    except Exception as exc:  # noqa: BLE001 - one host's failure, whatever it is, is that host's result
        res = flash.FlashResult(spec.label, error=_reason(exc, spec, timed_out.is_set(), req.host_timeout))
        if not isinstance(exc, (AlogError, paramiko.SSHException, OSError, EOFError, TimeoutError)):
            log.debug("%s: unexpected failure", spec.label, exc_info=True)
    finally:
        timer.cancel()
        if "t" in holder:
            holder["t"].close()
    res.seconds = time.monotonic() - start
    return res


def _reason(exc: BaseException, spec: ssh.HostSpec, timed_out: bool, timeout: float) -> str:
    if timed_out:
        return f"timed out after {timeout:g}s"
    if isinstance(exc, AlogError):
        text = str(exc)
        return text[len(spec.label) + 2:] if text.startswith(spec.label + ": ") else text
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "the device did not answer in time"
    if isinstance(exc, (EOFError, ConnectionError, paramiko.SSHException)):
        return f"the connection was lost ({exc.__class__.__name__}{': ' + str(exc) if str(exc) else ''})"
    return f"{exc.__class__.__name__}: {exc}"


def flash_fleet(req: FleetRequest, on_result: Callable[[flash.FlashResult], None] | None = None
                ) -> list[flash.FlashResult]:
    """Flash every host, at most `parallel` at once; results in the order the hosts were named."""
    bundle = check_request(req)
    workers = min(req.parallel, len(req.hosts))
    slots = list(range(workers))
    lock = threading.Lock()

    def job(spec: ssh.HostSpec) -> flash.FlashResult:
        with lock:
            slot = slots.pop(0)
        try:
            return flash_host(spec, bundle, req, slot)
        finally:
            with lock:
                slots.append(slot)

    results: dict[ssh.HostSpec, flash.FlashResult] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="flash") as pool:
        futures = {pool.submit(job, spec): spec for spec in req.hosts}
        for fut in as_completed(futures):
            res = fut.result()
            results[futures[fut]] = res
            if on_result is not None:
                on_result(res)
    return [results[s] for s in req.hosts]

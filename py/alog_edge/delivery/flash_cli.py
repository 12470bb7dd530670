"""What `invoke flash` prints: one summary line per host as it finishes, the recap table for a fleet, or one
JSON line per host; a single failing device is one `error:` line."""
from __future__ import annotations

import getpass
import sys
from pathlib import Path

from alog_edge.delivery import fleet, ssh
from alog_edge.errors import AlogError


def request(*, bundle: str, host: list[str] | None, hosts: str | None, identity: str | None,
            known_hosts: str | None, accept_new_host_key: bool, ask_password: bool, prefix: str,
            trust_key: str | None, dry_run: bool, force: bool, parallel: int, timeout: float) -> fleet.FleetRequest:
    specs = fleet.hosts_from_flags(host, hosts)
    options = ssh.SshOptions(known_hosts=Path(known_hosts).expanduser() if known_hosts else
                             ssh.SshOptions().known_hosts,
                             identity=Path(identity).expanduser() if identity else None,
                             accept_new_host_key=bool(accept_new_host_key))
    req = fleet.FleetRequest(Path(bundle), specs, options, prefix=prefix,
                             trust_key=Path(trust_key) if trust_key else None, dry_run=bool(dry_run),
                             force=bool(force), parallel=parallel, host_timeout=timeout)
    fleet.check_request(req)  # bad flags fail before the password prompt
    if ask_password:
        options.password = getpass.getpass("device password: ")
    return req


def run(req: fleet.FleetRequest, json_: bool = False) -> bool:
    """Flash and print; True when any host failed."""
    single = len(req.hosts) == 1

    def show(res) -> None:
        if json_:
            print(res.json(), flush=True)
        elif not (single and res.failed):
            print(res.summary(), file=sys.stderr if not single else sys.stdout, flush=True)
    results = fleet.flash_fleet(req, on_result=show)
    if single and results[0].failed and not json_:
        raise AlogError(results[0].host, results[0].error or "failed")
    if not single and not json_:
        print(fleet.flash.recap(results))
    return any(r.failed for r in results)

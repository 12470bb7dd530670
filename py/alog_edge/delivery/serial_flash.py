"""`invoke flash --serial PORT`: the flash driver of flash.py over a serial console session, with a progress bar
(bytes/s and ETA) and the same summary line / JSON line as over SSH."""
from __future__ import annotations

import logging
from pathlib import Path

from tqdm import tqdm

from . import flash
from .serial_transport import PASSWORD_ENV, SerialTransport

log = logging.getLogger(__name__)


def bar(total: int, label: str):
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, leave=False)


def flash_serial(bundle: str | Path, port: str, baud: int = 115200, user: str | None = None,
                 prefix: str = "/opt/alog-edge", trust_key: Path | None = None, dry_run: bool = False,
                 force: bool = False, encoding: str = "auto", compress: str = "auto", chunk_size: int | None = None,
                 password_env: str = PASSWORD_ENV, show_bar: bool = True) -> flash.FlashResult:
    from .bundle import open_bundle
    opened = open_bundle(Path(bundle))  # a bad bundle fails before the console is touched
    transport = SerialTransport(port, baud, user=user, password_env=password_env, encoding=encoding,
                                compress=compress, chunk_size=chunk_size)
    try:
        res = flash.flash(transport, opened, prefix, trust_key=trust_key, dry_run=dry_run, force=force,
                          bar=bar if show_bar else None)
    finally:
        transport.close()
    log.debug("%s: %s framing, %d line drops", port, transport.encoding, transport.line_drops)
    return res

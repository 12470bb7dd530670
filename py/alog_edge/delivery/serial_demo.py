"""The serial part of `invoke demo`: a local serial test device gets the first bundle (a factory install: over the
same relay switched to a fast rate, or by a callable such as the local installer), then the model-only update
over the relay paced at 115200 baud, login, verification, install and selftest included; prints time and bytes."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import flash
from .serial_bench import FACTORY_BAUD
from .serial_device import SerialTestDevice
from .serial_transport import PASSWORD_ENV, SerialTransport

USER = "field"


@dataclass
class SerialDemo:
    result: flash.FlashResult
    baud: int
    seconds: float  # from opening the port to the status after the install

    def text(self) -> str:
        r = self.result
        files = ", ".join(f["path"] for f in r.files)
        return (f"  serial: model-only update over a {self.baud}-baud console (busybox ash on a pty, paced relay, "
                f"login '{USER}'): {r.version_before} -> {r.version_after} in {self.seconds:.1f}s, "
                f"{r.bytes_sent} bytes on the line for {sum(f['size'] for f in r.files)} bytes of "
                f"{r.files_sent} files ({files}); selftest {r.selftest or 'unknown'}")

    @property
    def summary(self) -> dict:
        return {"baud": self.baud, "seconds": round(self.seconds, 1), "bytes_sent": self.result.bytes_sent,
                "files_sent": self.result.files_sent, "kind": self.result.kind,
                "version_after": self.result.version_after, "selftest": self.result.selftest}


def model_only_update(first, second, public_key: Path, work: Path, baud: int = 115200,
                      install_first: Callable[[Path], object] | None = None, bar: bool = False) -> SerialDemo:
    """`first`, `second`: bundles (paths or opened) with the same runtime; `install_first(prefix)` installs the
    first one without the console when given."""
    password = os.urandom(6).hex()
    old = os.environ.get(PASSWORD_ENV)
    os.environ[PASSWORD_ENV] = password  # the demo's own throwaway password, never printed
    try:
        with SerialTestDevice(work / "serial-device", FACTORY_BAUD if install_first is None else baud, user=USER,
                              password=password) as dev:
            prefix = dev.root / "opt" / "alog-edge"
            workdir = str(dev.root / "agent")
            if install_first is not None:
                install_first(prefix)
            else:
                tr = SerialTransport(dev.url, FACTORY_BAUD, user=USER, compress="gz", workdir=workdir)
                try:
                    flash.flash(tr, first, str(prefix), trust_key=public_key)
                finally:
                    tr.close()
                dev.fault(f"baud {baud}")
            t0 = time.monotonic()
            tr = SerialTransport(dev.url, baud, user=USER, workdir=workdir)
            try:
                res = flash.flash(tr, second, str(prefix), bar=_bar if bar else None)
            finally:
                tr.close()
            return SerialDemo(res, baud, time.monotonic() - t0)
    finally:
        if old is None:
            os.environ.pop(PASSWORD_ENV, None)
        else:
            os.environ[PASSWORD_ENV] = old


def _bar(total: int, label: str):
    from .serial_flash import bar
    return bar(total, label)

"""`invoke setup`: install what the project needs, fast when nothing changed (standard library only)."""
from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

# Debian packages the Python pipeline needs beyond a fresh machine (the native build adds its own).
# minisign: the stock verifier of bundle signatures (a test checks it reads ours); busybox: the
# device shell and applets that install.sh is tested with; openssh-server, dropbear-bin, libnss-wrapper:
# the SSH test devices (tests, invoke device-ssh).
APT_PACKAGES: tuple[str, ...] = ("minisign", "busybox", "openssh-server", "dropbear-bin", "libnss-wrapper")


def _stamp(repo: Path, name: str, content: str) -> tuple[Path, str]:
    return repo / ".tools" / f"{name}.stamp", hashlib.sha256(content.encode()).hexdigest()


def _fresh(stamp: Path, digest: str) -> bool:
    return stamp.exists() and stamp.read_text() == digest


def _mark(stamp: Path, digest: str) -> None:
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)


def python_packages(repo: Path) -> None:
    """pip install the package with its pinned dependencies (torch==2.13.0 is the CPU build on disk)."""
    stamp, digest = _stamp(repo, "pip", (repo / "pyproject.toml").read_text() + sys.prefix)
    if _fresh(stamp, digest):
        log.info("python packages: up to date")
        return
    log.info("python packages: installing (first run takes a few minutes)")
    subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q",
                    "-e", f"{repo}[dev]"], check=True)
    _mark(stamp, digest)


def apt_packages(repo: Path, packages: tuple[str, ...] = APT_PACKAGES) -> None:
    stamp, digest = _stamp(repo, "apt", " ".join(sorted(packages)))
    if _fresh(stamp, digest):
        log.info("debian packages: up to date")
        return
    log.info("debian packages: installing %s", " ".join(packages))
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], check=True)
    _mark(stamp, digest)


def setup(repo: Path) -> None:
    """Everything `invoke setup` installs; each part is a no-op when it is up to date."""
    python_packages(repo)
    apt_packages(repo)
    from alog_edge.toolchain import prepare  # needs the Python packages just installed
    prepare.setup_native(repo)
    from alog_edge.delivery import board_image  # the emulated board's kernel and initramfs
    board_image.fetch_board_image(repo)

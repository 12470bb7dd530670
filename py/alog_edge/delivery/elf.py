"""What a bundle needs to know about its ELF files (pyelftools): machine, DT_NEEDED, glibc versions.

`closure()` walks DT_NEEDED from the binary and returns every shared library it loads that is not
part of glibc (glibc comes with the device: its sonames are those of the GNU C Library itself).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

from ..errors import AlogError

MACHINES = {"EM_X86_64": "x86_64", "EM_AARCH64": "aarch64"}
# The shared objects of the GNU C Library itself (glibc 2.34+ folds libpthread, libdl, librt and
# libutil into libc but keeps these sonames as stubs). Everything else a binary needs is bundled.
GLIBC_SONAMES = frozenset({
    "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1",
    "libresolv.so.2", "libanl.so.1", "libnsl.so.1", "libBrokenLocale.so.1", "libmvec.so.1",
    "libthread_db.so.1", "libnss_files.so.2", "libnss_dns.so.2",
    "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"})
# Where the toolchain's own libraries (libstdc++, libgcc_s) of each target live on this machine.
SYSTEM_LIBDIRS = {"x86_64": ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"),
                  "aarch64": ("/usr/aarch64-linux-gnu/lib",)}
_GLIBC_VERSION = re.compile(r"^GLIBC_(\d+(?:\.\d+)+)$")


@dataclass(frozen=True)
class ElfInfo:
    machine: str            # "x86_64", "aarch64" or the raw e_machine name
    needed: tuple[str, ...]
    soname: str | None
    glibc: tuple[int, ...] | None  # the newest GLIBC_x.y symbol version it needs


def is_elf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def inspect(path: Path) -> ElfInfo:
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            machine = MACHINES.get(elf["e_machine"], str(elf["e_machine"]))
            needed: list[str] = []
            soname = None
            newest: tuple[int, ...] | None = None
            for section in elf.iter_sections():
                if isinstance(section, DynamicSection):
                    for tag in section.iter_tags():
                        if tag.entry.d_tag == "DT_NEEDED":
                            needed.append(tag.needed)
                        elif tag.entry.d_tag == "DT_SONAME":
                            soname = tag.soname
                elif isinstance(section, GNUVerNeedSection):
                    for _, auxiliaries in section.iter_versions():
                        for aux in auxiliaries:
                            m = _GLIBC_VERSION.match(aux.name)
                            if m:
                                version = tuple(int(x) for x in m.group(1).split("."))
                                newest = version if newest is None else max(newest, version)
    except (ELFError, OSError) as exc:
        raise AlogError(path, f"not a readable ELF file ({exc})") from None
    return ElfInfo(machine, tuple(needed), soname, newest)


def closure(binary: Path, target: str, libdirs: list[Path]) -> dict[str, Path]:
    """soname -> file of every non-glibc library `binary` loads, searched in `libdirs` first,
    then in the target's system library folders."""
    search = [*libdirs, *(Path(d) for d in SYSTEM_LIBDIRS[target])]
    found: dict[str, Path] = {}
    todo = [(binary, name) for name in inspect(binary).needed]
    while todo:
        parent, name = todo.pop()
        if name in GLIBC_SONAMES or name in found:
            continue
        path = next((d / name for d in search if (d / name).exists()), None)
        if path is None:
            raise AlogError(parent, f"needs {name}, found in none of {', '.join(map(str, search))}")
        info = inspect(path.resolve())
        if info.machine != target:
            raise AlogError(path, f"is a {info.machine} library, not {target}")
        found[name] = path.resolve()
        todo += [(path, n) for n in info.needed]
    return found


def version_text(version: tuple[int, ...] | None) -> str | None:
    return None if version is None else ".".join(map(str, version))

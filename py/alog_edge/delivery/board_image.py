"""What the emulated aarch64 board boots: Debian's arm64 kernel and an initramfs built from pinned
Debian bookworm arm64 packages.

- `fetch_board_image(repo)` (run by `invoke setup`): downloads the pinned .debs through the private
  apt state of `alog_edge.native` (each checked against its sha256), extracts the kernel and the
  virtio/ext4 modules, and writes `.tools/board/vmlinuz` and `.tools/board/base.cpio.gz`: busybox
  (applet links for every applet), glibc, libstdc++/libgcc, dropbear and the init files of
  `deploy/board/`. Idempotent: a stamp holds the digest of everything the image is made of.
- `workspace_initrd(...)`: the base archive followed by a small per-workspace one (the board's host
  key, the authorized key): the kernel unpacks concatenated cpio archives in order.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Iterable

from alog_edge.toolchain import deps as native
from ..errors import AlogError

log = logging.getLogger(__name__)

KERNEL_RELEASE = "6.1.0-57-arm64"


def _deb(package: str, version: str, sha256: str) -> dict[str, Any]:
    file = f"{package}_{version.split(':', 1)[-1]}_arm64.deb"
    return {"file": file, "sha256": sha256,
            "apt": {"package": package, "version": version, "arch": "arm64", "suite": "bookworm"}}


# Everything the board is made of, pinned like native.QEMU_DEB (sha256 of the archive's index).
KERNEL_DEB = _deb(f"linux-image-{KERNEL_RELEASE}", "6.1.192-3",
                  "8301bd5b5b2cf8fd5e479832200c23e64eca0ae9ec45c487c5c318b1e44d4692")
ROOTFS_DEBS: tuple[dict[str, Any], ...] = (
    _deb("busybox-static", "1:1.35.0-4+deb12u1+b1",
         "732c9135564fc71337e0e05fb4da4d11e6c28c1834bce3e405e575afef2a52f5"),
    _deb("libc6", "2.36-9+deb12u14", "01f4330719fd4f65580e16ea5a0527f372fca750e8f588d26deaf09f2d3b1cf4"),
    _deb("libstdc++6", "12.2.0-14+deb12u1", "26e138c677a985775331373828a6c286c551ff397cb735d00e2383cb273d1cb2"),
    _deb("libgcc-s1", "12.2.0-14+deb12u1", "576926b283613db80168ddf76380a3bd877602778cf0d226caa7bfbfa71eacf3"),
    _deb("dropbear-bin", "2022.83-1+deb12u3", "5ac2b0026ee47cbbb2378e339400a183196e9fe291d4794754b144b2dd8723e0"),
    # dropbear-bin's dependencies
    _deb("zlib1g", "1:1.2.13.dfsg-1+deb12u1", "61477d8059daf1765683a73099cc17941e1970acb520fd238646dedf99eb16f6"),
    _deb("libtomcrypt1", "1.18.2-6", "e9fb6df9fde6b428fd7ae0dbbd012a20b77db999adbf38e4b331357c0ca04ec3"),
    _deb("libtommath1", "1.2.0-6+deb12u1", "517fb3c1c0a0277fa55f332bdf7b5e6f9d9bd35edfbc95344c3eb2edc3cd365b"),
    _deb("libcrypt1", "1:4.4.33-2", "eea0ad76ea5eb507127fea0c291622ea4ecdbb71c4b9a8ed9c76ae33fc1a0127"),
    _deb("libgmp10", "2:6.2.1+dfsg1-1.1", "9906387c1dd806518c915bd8616d072c741061d7fa26b222e52763456060b31a"),
)
BOARD_DEBS = (KERNEL_DEB, *ROOTFS_DEBS)

# Modules the init loads (with their dependencies from modules.dep): PCI virtio transport, network,
# disk, entropy, and ext4 for /opt. The PL011 serial console and the PCI host bridge are built in.
MODULES: tuple[str, ...] = ("virtio_pci", "virtio_net", "virtio_blk", "virtio_rng", "crc32c_generic", "ext4")

# Parts of the packages a board never uses (documentation, locales, charset converters).
SKIP_PREFIXES: tuple[str, ...] = ("usr/share/", "usr/lib/aarch64-linux-gnu/gconv/", "etc/ld.so.conf.d/",
                                  "usr/lib/aarch64-linux-gnu/audit/", "sbin/ldconfig", "usr/bin/")
KEEP: tuple[str, ...] = ("usr/bin/dropbearkey", "usr/bin/dbclient")


class BoardImageError(AlogError):
    def __init__(self, path: Path | str | None, message: str) -> None:
        super().__init__(path, message)


def board_dir(repo: Path) -> Path:
    return Path(repo).resolve() / ".tools" / "board"


def kernel_path(repo: Path) -> Path:
    return board_dir(repo) / "vmlinuz"


def base_initrd_path(repo: Path) -> Path:
    return board_dir(repo) / "base.cpio.gz"


def init_files(repo: Path) -> Path:
    return Path(repo).resolve() / "deploy" / "board"


def _image_digest(repo: Path) -> str:
    digest = hashlib.sha256()
    for deb in BOARD_DEBS:
        digest.update(deb["sha256"].encode())
    digest.update(" ".join(MODULES).encode())
    for file in sorted(init_files(repo).rglob("*")):
        if file.is_file():
            digest.update(file.name.encode() + b"\0" + file.read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()


def image_is_current(repo: Path) -> bool:
    """Whether .tools/board/ was built from the pinned packages and the current deploy/board/."""
    stamp = board_dir(repo) / "image.sha256"
    return stamp.is_file() and stamp.read_text() == _image_digest(repo) and kernel_path(repo).is_file() \
        and base_initrd_path(repo).is_file()


def refresh_board_image(repo: Path) -> None:
    """Rebuild a stale image (deploy/board/ changed) from the packages already fetched; never downloads."""
    if image_is_current(repo):
        return
    paths = native.Paths(Path(repo).resolve())
    if all(native._verified(paths.downloads / d["file"], d["sha256"]) for d in BOARD_DEBS):
        fetch_board_image(repo)


def fetch_board_image(repo: Path) -> None:
    """Fetch the pinned packages and build the kernel and base initramfs under .tools/board/."""
    paths = native.Paths(Path(repo).resolve())
    out = board_dir(paths.repo)
    stamp = out / "image.sha256"
    digest = _image_digest(paths.repo)
    if image_is_current(paths.repo):
        log.info("board image: up to date in %s", out)
        return
    missing = [d for d in BOARD_DEBS if not native._verified(paths.downloads / d["file"], d["sha256"])]
    if missing:
        paths.downloads.mkdir(parents=True, exist_ok=True)
        log.info("board image: fetching %d Debian arm64 packages", len(missing))
        native._apt_download(paths, missing)
        for deb in missing:
            native._check_sha256(paths.downloads / deb["file"], deb["sha256"])
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        for deb in ROOTFS_DEBS:
            _extract(paths.downloads / deb["file"], root, _rootfs_member)
        kernel = _extract_kernel(paths.downloads / KERNEL_DEB["file"], root, Path(tmp) / "vmlinuz")
        _install_init_files(paths.repo, root)
        _link_busybox_applets(root)
        archive = Path(tmp) / "base.cpio.gz"
        write_cpio_gz(archive, tree_entries(root))
        kernel.replace(kernel_path(paths.repo))
        archive.replace(base_initrd_path(paths.repo))
    stamp.write_text(digest)
    log.info("board image: kernel %s and initramfs (%d KiB) in %s", KERNEL_RELEASE,
             base_initrd_path(paths.repo).stat().st_size // 1024, out)


def _rootfs_member(name: str) -> bool:
    return name in KEEP or not name.startswith(SKIP_PREFIXES)


def _extract(deb: Path, root: Path, wanted) -> None:
    """Unpack the members of a .deb's data archive that `wanted(name)` accepts into root."""
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                name = member.name.lstrip("./")
                if not name or not wanted(name):
                    continue
                target = root / name
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.issym():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if target.is_symlink() or target.exists():
                        target.unlink()
                    os.symlink(member.linkname, target)
                elif member.isfile():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(member)
                    assert source is not None
                    with open(target, "wb") as f:
                        shutil.copyfileobj(source, f)
                    target.chmod(member.mode & 0o7777)
                elif member.islnk():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(root / member.linkname.lstrip("./"), target)
        proc.stdout.read()
    if proc.returncode != 0:
        raise BoardImageError(deb, f"dpkg-deb --fsys-tarfile failed (exit {proc.returncode})")


def _extract_kernel(deb: Path, root: Path, kernel_out: Path) -> Path:
    """The kernel image, and MODULES with their dependencies (the `depends=` of each module's
    .modinfo: the package ships no modules.dep, depmod makes it at install) into root/lib/modules/."""
    moddir = f"lib/modules/{KERNEL_RELEASE}/"
    deps: dict[str, list[str]] = {}   # module name -> names it depends on
    paths: dict[str, str] = {}        # module name -> path under moddir

    def read_modinfo(name: str, data: bytes) -> None:
        module = Path(name).name.removesuffix(".ko").replace("-", "_")
        paths[module] = name[len(moddir):]
        info = dict(field.split(b"=", 1) for field in _modinfo(data).split(b"\0") if b"=" in field)
        deps[module] = [d.replace("-", "_") for d in info.get(b"depends", b"").decode().split(",") if d]

    _scan(deb, lambda n: n.startswith(moddir) and n.endswith(".ko"), read_modinfo)
    order: list[str] = []

    def visit(module: str) -> None:
        if module in order:
            return
        if module not in deps:
            raise BoardImageError(deb, f"has no module {module}")
        for dep in deps[module]:
            visit(dep)
        order.append(module)
    for name in MODULES:
        visit(name)
    wanted = {moddir + paths[m] for m in order} | {f"boot/vmlinuz-{KERNEL_RELEASE}"}
    staging = kernel_out.parent / "kernel"
    _extract(deb, staging, wanted.__contains__)
    for module in order:
        target = root / moddir / paths[module]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(staging / moddir / paths[module], target)
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "board-modules").write_text("".join(f"/{moddir}{paths[m]}\n" for m in order))
    image = staging / "boot" / f"vmlinuz-{KERNEL_RELEASE}"
    if not image.is_file():
        raise BoardImageError(deb, f"has no boot/vmlinuz-{KERNEL_RELEASE}")
    image.replace(kernel_out)
    shutil.rmtree(staging)
    return kernel_out


def _scan(deb: Path, wanted, visit) -> None:
    """Call visit(name, data) for each member of a .deb's data archive that wanted(name) accepts."""
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                name = member.name.lstrip("./")
                if member.isfile() and wanted(name):
                    source = tar.extractfile(member)
                    assert source is not None
                    visit(name, source.read())
        proc.stdout.read()
    if proc.returncode != 0:
        raise BoardImageError(deb, f"dpkg-deb --fsys-tarfile failed (exit {proc.returncode})")


def _modinfo(elf: bytes) -> bytes:
    """The .modinfo section of a 64-bit little-endian ELF object (b"" when it has none)."""
    def u(offset: int, size: int) -> int:
        return int.from_bytes(elf[offset:offset + size], "little")
    shoff, shentsize, shnum, shstrndx = u(0x28, 8), u(0x3A, 2), u(0x3C, 2), u(0x3E, 2)
    strtab = u(shoff + shstrndx * shentsize + 0x18, 8)
    for i in range(shnum):
        header = shoff + i * shentsize
        name_at = strtab + u(header, 4)
        if elf[name_at:name_at + 9] == b".modinfo\0":
            offset, size = u(header + 0x18, 8), u(header + 0x20, 8)
            return elf[offset:offset + size]
    return b""


def _install_init_files(repo: Path, root: Path) -> None:
    """deploy/board/ mirrors the board's file system: etc/inittab, etc/init.d/rcS, ..."""
    source = init_files(repo)
    for file in sorted(source.rglob("*")):
        if file.is_file():
            target = root / file.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, target)
    for name in ("root", "opt", "tmp", "run", "proc", "sys", "dev", "var/log", "mnt"):
        (root / name).mkdir(parents=True, exist_ok=True)
    (root / "root").chmod(0o700)
    (root / "tmp").chmod(0o1777)


def _link_busybox_applets(root: Path) -> None:
    """A link for every applet busybox lists (asked through qemu-aarch64), where no file is."""
    busybox = root / "bin" / "busybox"
    repo_qemu = native.Paths(Path(__file__).resolve().parents[3]).qemu
    result = subprocess.run([str(repo_qemu), str(busybox), "--list-full"], capture_output=True, text=True)
    if result.returncode != 0 or not result.stdout.strip():
        raise BoardImageError(busybox, "busybox --list-full under qemu-aarch64 failed "
                              "(run `invoke setup` for .tools/qemu)")
    for applet in result.stdout.split():
        link = root / applet.lstrip("/")
        if link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink("/bin/busybox", link)
    (root / "init").unlink(missing_ok=True)
    os.symlink("/sbin/init", root / "init")  # the kernel runs /init from an initramfs


# ----------------------------------------------------------------------------------------------
# cpio (newc), written here so that building the image needs neither root nor the cpio tool


def tree_entries(root: Path) -> Iterable[tuple[str, int, bytes, int]]:
    """(name, mode, data, rdev) for a tree, every file owned by root, plus /dev/console and /dev/null."""
    yield "dev", stat.S_IFDIR | 0o755, b"", 0
    yield "dev/console", stat.S_IFCHR | 0o600, b"", os.makedev(5, 1)
    yield "dev/null", stat.S_IFCHR | 0o666, b"", os.makedev(1, 3)
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if name == "dev":
            continue
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            yield name, stat.S_IFLNK | 0o777, os.readlink(path).encode(), 0
        elif stat.S_ISDIR(info.st_mode):
            yield name, stat.S_IFDIR | stat.S_IMODE(info.st_mode), b"", 0
        else:
            yield name, stat.S_IFREG | stat.S_IMODE(info.st_mode), path.read_bytes(), 0


def write_cpio_gz(out: Path, entries: Iterable[tuple[str, int, bytes, int]]) -> None:
    """A gzip'd newc cpio archive (fixed mtime, uid/gid 0), written beside out and renamed in."""
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) as f:
        ino = 1
        for name, mode, data, rdev in entries:
            f.write(_cpio_header(ino, mode, len(data), rdev, name) + data + _pad(len(data)))
            ino += 1
        f.write(_cpio_header(0, 0, 0, 0, "TRAILER!!!"))
    tmp.replace(out)


def _cpio_header(ino: int, mode: int, size: int, rdev: int, name: str) -> bytes:
    encoded = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, 0, size, 0, 0, os.major(rdev), os.minor(rdev), len(encoded), 0]
    header = b"070701" + b"".join(b"%08X" % v for v in fields) + encoded
    return header + _pad(len(header))


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


def workspace_initrd(repo: Path, out: Path, files: dict[str, tuple[int, bytes]]) -> None:
    """The base initramfs followed by an archive of `files` ({path: (mode, data)}), renamed into out."""
    base = base_initrd_path(repo)
    if not base.is_file():
        raise BoardImageError(base, "missing: run `invoke setup` (it builds the board image)")
    extra = io.BytesIO()
    dirs = sorted({str(Path(p).parent) for p in files} - {"."})
    entries = [(d, stat.S_IFDIR | (0o700 if d.startswith("root") else 0o755), b"", 0) for d in dirs]
    entries += [(p, stat.S_IFREG | mode, data, 0) for p, (mode, data) in sorted(files.items())]
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        part = Path(tmp) / "extra.cpio.gz"
        write_cpio_gz(part, entries)
        extra.write(part.read_bytes())
    tmp_out = out.with_name(out.name + ".tmp")
    with open(tmp_out, "wb") as f, open(base, "rb") as b:
        shutil.copyfileobj(b, f)
        f.write(extra.getvalue())
    tmp_out.replace(out)

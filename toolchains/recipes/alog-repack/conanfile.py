"""Shared code of the local recipes that repackage registry artifacts (python_requires).

Every repackaging recipe lists its artifacts in its conandata.yml, per Conan arch:

    artifacts:
      "<version>":
        <arch>:
          - file: <name in the downloads folder>
            sha256: <pin>
            pip: {requirement: ..., platform: ..., python_version: ...}   # a PyPI wheel, or
            apt: {package: ..., version: ..., arch: ..., suite: ...}      # a Debian package

alog_edge.native fetches them by package name with pip / apt-get into the folder named by the conf
`user.alog_edge:downloads` (set by the profiles in toolchains/); the recipes never download.
"""
import hashlib
import os
import shutil
import subprocess
import zipfile

from conan import ConanFile
from conan.errors import ConanException, ConanInvalidConfiguration

DEBIAN_ARCH = {"x86_64": "amd64", "armv8": "arm64"}
MULTIARCH = {"x86_64": "x86_64-linux-gnu", "armv8": "aarch64-linux-gnu"}


def validate_linux(conanfile):
    """Only the two targets the project ships: Linux on x86_64 and on armv8 (aarch64)."""
    if conanfile.settings.os != "Linux" or str(conanfile.settings.arch) not in DEBIAN_ARCH:
        raise ConanInvalidConfiguration(
            f"{conanfile.ref} repackages Linux x86_64/armv8 binaries only, "
            f"not {conanfile.settings.os}/{conanfile.settings.arch}")


def artifacts(conanfile):
    """The conandata.yml entries of this version and arch."""
    arch = str(conanfile.settings.arch)
    try:
        return conanfile.conan_data["artifacts"][str(conanfile.version)][arch]
    except KeyError:
        raise ConanInvalidConfiguration(f"{conanfile.ref}: no artifacts pinned for arch {arch}")


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetched(conanfile, entry):
    """Path of a fetched artifact after checking it against its sha256 pin."""
    downloads = conanfile.conf.get("user.alog_edge:downloads")
    if not downloads:
        raise ConanException(
            f"{conanfile.ref}: conf user.alog_edge:downloads is not set; "
            "build with the profiles in toolchains/ (alog_edge.native.build_runtime)")
    path = os.path.join(downloads, entry["file"])
    if not os.path.isfile(path):
        raise ConanException(
            f"{conanfile.ref}: artifact {entry['file']} is missing from {downloads}; "
            "fetch it with alog_edge.native.setup_native()")
    actual = sha256_of(path)
    if actual != entry["sha256"]:
        raise ConanException(
            f"{conanfile.ref}: sha256 mismatch for {path}: pinned {entry['sha256']}, got {actual}")
    return path


def unpack_deb(conanfile, deb, destination):
    """Extract a .deb's files (not its maintainer scripts) with dpkg-deb."""
    os.makedirs(destination, exist_ok=True)
    conanfile.output.info(f"unpacking {os.path.basename(deb)}")
    subprocess.run(["dpkg-deb", "--extract", deb, destination], check=True)


def unpack_wheel_members(conanfile, wheel, members, destination):
    """Extract the named members of a wheel (a zip archive) into destination, flat."""
    os.makedirs(destination, exist_ok=True)
    conanfile.output.info(f"unpacking {', '.join(members)} from {os.path.basename(wheel)}")
    with zipfile.ZipFile(wheel) as zf:
        for member in members:
            target = os.path.join(destination, os.path.basename(member))
            with zf.open(member) as src, open(target, "wb") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)


def link(name, target, folder):
    """Create (or replace) the relative symlink folder/name -> target."""
    path = os.path.join(folder, name)
    if os.path.lexists(path):
        os.remove(path)
    os.symlink(target, path)


def copy_debian_copyright(conanfile, unpacked, package):
    """Put a Debian package's copyright file into the package's licenses/ as <package>.copyright."""
    source = os.path.join(unpacked, "usr", "share", "doc", package, "copyright")
    licenses = os.path.join(conanfile.package_folder, "licenses")
    os.makedirs(licenses, exist_ok=True)
    shutil.copyfile(source, os.path.join(licenses, f"{package}.copyright"))


class AlogRepack(ConanFile):
    name = "alog-repack"
    version = "1.0"
    package_type = "python-require"
    description = "Helpers of the alog-edge recipes that repackage pinned registry artifacts"

"""`alog-edge verify` on real bundles: what the stock minisign tool signs verifies (prehashed and
legacy), and a changed byte anywhere, another key, no signature, a link, an unlisted file, the wrong
architecture or a newer glibc are each refused with exit status 5 and a line naming the problem."""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from alog_edge.toolchain import build as native
from alog_edge.delivery import keys, manifest
from conftest import REPO

NOT_VERIFIED = 5


@pytest.fixture(scope="module")
def unpacked(x86_bundles, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(x86_bundles[0].path) as tar:
        tar.extractall(dest, filter="data")
    return next(dest.iterdir())


@pytest.fixture
def copy(unpacked, tmp_path) -> Path:
    return Path(shutil.copytree(unpacked, tmp_path / unpacked.name, symlinks=True))


def verify(runtime: Path, bundle_dir: Path, keys_at: Path, qemu: list[str] | None = None):
    return subprocess.run([*(qemu or []), str(runtime / "bin" / "alog-edge"), "verify", "--keys", str(keys_at),
                           str(bundle_dir)], capture_output=True, text=True, timeout=300)


def errors(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error: ")]


def test_a_signed_bundle_verifies_against_a_folder_of_trusted_keys(runtime_x86_64, unpacked, signing_key, other_key,
                                                                   tmp_path):
    trusted = tmp_path / "keys"
    trusted.mkdir()
    shutil.copy(other_key.public, trusted / "other.pub")
    shutil.copy(signing_key.public, trusted / "release.pub")
    proc = verify(runtime_x86_64, unpacked, trusted)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"verified {unpacked}: alog-edge ") and signing_key.key_id in proc.stdout


@pytest.mark.parametrize("legacy", [False, True])
def test_signatures_of_the_stock_minisign_tool_verify(runtime_x86_64, copy, signing_key, legacy):
    (copy / "MANIFEST.json.minisig").unlink()
    subprocess.run(["minisign", "-S", *(["-l"] if legacy else []), "-s", str(signing_key.secret), "-m",
                    str(copy / "MANIFEST.json"), "-t", "signed by the stock tool"], check=True,
                   stdin=subprocess.DEVNULL, capture_output=True)
    algorithm = base64.b64decode((copy / "MANIFEST.json.minisig").read_text().splitlines()[1])[:2]
    assert algorithm == (b"Ed" if legacy else b"ED")
    proc = verify(runtime_x86_64, copy, signing_key.public)
    assert proc.returncode == 0, proc.stderr


def test_one_flipped_byte_in_any_file_is_refused_naming_that_file(runtime_x86_64, unpacked, signing_key, tmp_path):
    """Every file of the bundle, the manifest and the signature, each in its own copy."""
    names = sorted(p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*") if p.is_file())
    assert len(names) > 10
    for name in names:
        work = Path(shutil.copytree(unpacked, tmp_path / name.replace("/", "_"), symlinks=True))
        path = work / name
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        proc = verify(runtime_x86_64, work, signing_key.public)
        assert proc.returncode == NOT_VERIFIED, (name, proc.stderr)
        lines = errors(proc)
        assert len(lines) == 1, (name, proc.stderr)
        if name.startswith("MANIFEST.json"):
            assert "MANIFEST.json.minisig" in lines[0], lines
        else:
            assert lines[0] == f"error: {path}: sha256 differs from the manifest", lines
        shutil.rmtree(work)


def test_another_key_and_a_missing_signature_are_refused(runtime_x86_64, copy, other_key, signing_key):
    proc = verify(runtime_x86_64, copy, other_key.public)
    assert proc.returncode == NOT_VERIFIED and "which is not a trusted key" in proc.stderr
    (copy / "MANIFEST.json.minisig").unlink()
    proc = verify(runtime_x86_64, copy, signing_key.public)
    assert proc.returncode == NOT_VERIFIED and errors(proc) == [
        f"error: {copy}/MANIFEST.json.minisig: No such file or directory (the bundle is unsigned)"]


def test_links_unlisted_files_and_wrong_modes_are_each_one_line(runtime_x86_64, copy, signing_key):
    vocab = copy / "models" / "vocab.json"
    vocab.unlink()
    vocab.symlink_to("/etc/hostname")
    (copy / "lib" / "libm.so.6").write_bytes(b"hijack")
    (copy / "models" / "parser.json").chmod(0o755)
    proc = verify(runtime_x86_64, copy, signing_key.public)
    assert proc.returncode == NOT_VERIFIED
    assert sorted(errors(proc)) == sorted([
        f"error: {vocab}: not a regular file (a symbolic link)",
        f"error: {copy}/lib/libm.so.6: not listed in the manifest",
        f"error: {copy}/models/parser.json: mode 0755, the manifest says 0644"])


def _resign(bundle_dir: Path, secret: Path, change) -> None:
    doc = json.loads((bundle_dir / "MANIFEST.json").read_text())
    change(doc)
    data = manifest.dumps(doc)
    (bundle_dir / "MANIFEST.json").write_bytes(data)
    (bundle_dir / "MANIFEST.json.minisig").write_bytes(keys.sign(data, secret, "resigned"))


def test_a_bundle_needing_a_newer_glibc_than_the_device_has_is_refused(runtime_x86_64, copy, signing_key):
    _resign(copy, signing_key.secret, lambda d: d.update(min_glibc="9.99"))
    proc = verify(runtime_x86_64, copy, signing_key.public)
    assert proc.returncode == NOT_VERIFIED
    assert len(errors(proc)) == 1 and "the bundle needs glibc 9.99, this device has 2." in proc.stderr


def test_the_aarch64_verifier_accepts_its_bundle_and_the_x86_64_one_refuses_it(
        runtime_x86_64, arm_bundle, signing_key, tmp_path):
    with tarfile.open(arm_bundle.path) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    arm = next((tmp_path / "x").iterdir())
    proc = verify(arm, arm, signing_key.public, qemu=native.qemu_command(REPO))
    assert proc.returncode == 0, proc.stderr
    proc = verify(runtime_x86_64, arm, signing_key.public)
    assert proc.returncode == NOT_VERIFIED and errors(proc) == [
        f"error: {arm}/MANIFEST.json: the bundle is for aarch64, this device is x86_64"]

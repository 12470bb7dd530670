"""Signed bundles: keys in minisign's format (checked by the stock minisign tool), the layout and
manifest, reproducibility, stripping, the library closure, and what `invoke bundle` refuses."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from alog_edge.delivery import bundle, elf, keys, manifest
from alog_edge.errors import AlogError
from bundle_fixtures import copy_models, make_bundle, rewrite_bundle, top_of
from conftest import REPO, invoke


def extract(path: Path, dest: Path) -> Path:
    with tarfile.open(path) as tar:
        tar.extractall(dest, filter="data")
    (top,) = dest.iterdir()
    return top


def test_keygen_writes_a_0600_secret_key_and_a_public_key_that_minisign_reads(tmp_path):
    proc = invoke("keygen", "--out", str(tmp_path / "k" / "sign.key"))
    assert proc.returncode == 0, proc.stderr
    secret, public = tmp_path / "k" / "sign.key", tmp_path / "k" / "sign.key.pub"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    key_id = keys.load_public(public)[0]
    assert key_id in proc.stdout and public.read_text().startswith(f"untrusted comment: minisign public key {key_id}")
    (tmp_path / "data").write_bytes(b"payload\n")
    sig = keys.sign(b"payload\n", secret, "timestamp:1\tfile:data")
    (tmp_path / "data.minisig").write_bytes(sig)
    ok = subprocess.run(["minisign", "-Vm", str(tmp_path / "data"), "-p", str(public)], capture_output=True, text=True)
    assert ok.returncode == 0 and "Trusted comment: timestamp:1\tfile:data" in ok.stdout, ok.stderr
    again = invoke("keygen", "--out", str(secret))
    assert again.returncode == 1 and again.stderr.strip().startswith("error: ") and "--force" in again.stderr


def test_keygen_refuses_a_key_inside_the_repository():
    proc = invoke("keygen", "--out", str(REPO / "dist" / "x.key"))
    assert proc.returncode == 1 and "inside the repository" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (REPO / "dist" / "x.key").exists()


def test_a_key_with_a_passphrase_signs_only_with_the_passphrase(tmp_path, monkeypatch):
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "correct horse")
    pair = keys.generate(tmp_path / "p.key", passphrase="correct horse")
    assert b"encrypted" in pair.secret.read_bytes()
    sig = keys.sign(b"x", pair.secret, "t")
    assert keys.verify(b"x", sig, pair.public) == pair.key_id
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "wrong")
    with pytest.raises(AlogError, match="not a usable minisign secret key"):
        keys.sign(b"x", pair.secret, "t")


def test_stock_minisign_verifies_the_bundle_manifest_and_layout_matches_the_contract(x86_bundles, signing_key,
                                                                                     tmp_path):
    res = x86_bundles[0]
    top = extract(res.path, tmp_path)
    assert top.name == f"alog-edge-{res.version}-x86_64"
    ok = subprocess.run(["minisign", "-Vm", str(top / "MANIFEST.json"), "-p", str(signing_key.public)],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "Signature and comment signature verified" in ok.stdout, ok.stderr
    doc = json.loads((top / "MANIFEST.json").read_text())
    assert doc["key_id"] == signing_key.key_id and doc["target"] == "x86_64" and doc["format"] == 1
    listed = [f["path"] for f in doc["files"]]
    on_disk = sorted(p.relative_to(top).as_posix() for p in top.rglob("*") if p.is_file()
                     and p.name not in ("MANIFEST.json", "MANIFEST.json.minisig"))
    assert listed == on_disk
    for f in doc["files"]:
        data = (top / f["path"]).read_bytes()
        assert len(data) == f["size"] and hashlib.sha256(data).hexdigest() == f["sha256"]
        assert f"{stat.S_IMODE((top / f['path']).stat().st_mode):04o}" == f["mode"]
    assert {"bin/alog-edge", "install.sh", "service/alog-edge.init", "service/alog-edge.service",
            "models/golden.json", "lib/libonnxruntime.so.1"} <= set(listed)
    assert doc["parts"]["models"] == manifest.part_digest(
        manifest.ManifestEntry(f["path"], f["size"], f["mode"], f["sha256"]) for f in doc["files"]
        if f["path"].startswith("models/"))
    # the device checks a part with sha256sum: the same lines
    lines = subprocess.run(["sha256sum", *[p for p in listed if p.startswith("models/")]], cwd=top,
                           capture_output=True, check=True).stdout
    assert hashlib.sha256(lines).hexdigest() == doc["parts"]["models"]["sha256"]


def test_the_bundle_carries_every_non_glibc_library_stripped_and_records_the_glibc_it_needs(x86_bundles, tmp_path):
    res = x86_bundles[0]
    top = extract(res.path, tmp_path)
    binary = elf.inspect(top / "bin" / "alog-edge")
    wanted = {n for n in binary.needed if n not in elf.GLIBC_SONAMES}
    libs = {p.name for p in (top / "lib").iterdir()}
    assert wanted <= libs and "libstdc++.so.6" in libs  # onnxruntime's, found through its DT_NEEDED
    for lib in libs:
        assert not set(elf.inspect(top / "lib" / lib).needed) - elf.GLIBC_SONAMES - libs, lib
    for path in [top / "bin" / "alog-edge", *(top / "lib").iterdir()]:
        sections = subprocess.run(["readelf", "-S", "-W", str(path)], capture_output=True, text=True).stdout
        assert ".symtab" not in sections and ".debug_info" not in sections, path
    newest = max(elf.inspect(p).glibc for p in [top / "bin" / "alog-edge", *(top / "lib").iterdir()])
    assert res.min_glibc == ".".join(map(str, newest))
    # the bundled binary runs from the bundle alone: RUNPATH $ORIGIN/../lib
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    out = subprocess.run([str(top / "bin" / "alog-edge"), "--version"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.startswith("alog-edge "), out.stderr


def test_two_bundles_of_the_same_inputs_are_byte_identical_and_a_new_model_is_a_new_version(
        x86_bundles, model_dirs, signing_key, runtime_x86_64, tmp_path):
    first, second = x86_bundles
    again = make_bundle(tmp_path, model_dirs.first, signing_key.secret, runtime=runtime_x86_64)
    assert again.path.read_bytes() == first.path.read_bytes()
    assert second.version != first.version
    assert second.parts["runtime"] == first.parts["runtime"] and second.parts["models"] != first.parts["models"]
    os.environ["SOURCE_DATE_EPOCH"] = "1700000000"
    try:
        dated = make_bundle(tmp_path / "dated", model_dirs.first, signing_key.secret, runtime=runtime_x86_64)
    finally:
        del os.environ["SOURCE_DATE_EPOCH"]
    with tarfile.open(dated.path) as tar:
        assert {m.mtime for m in tar.getmembers()} == {1700000000}
        assert {(m.uid, m.gid) for m in tar.getmembers()} == {(0, 0)}
        assert [m.name.split("/", 1)[-1] for m in tar.getmembers()[:3]][1:] == ["MANIFEST.json",
                                                                               "MANIFEST.json.minisig"]
    assert dated.path.read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime 0


def test_xz_bundles_open_like_gzip_ones(xz_bundle, x86_bundles, signing_key):
    res = xz_bundle
    assert res.path.name.endswith(".tar.xz") and res.path.read_bytes()[:6] == b"\xfd7zXZ\x00"
    assert res.version == x86_bundles[0].version
    opened = bundle.open_bundle(res.path)
    assert opened.version == res.version and opened.verify(signing_key.public) == signing_key.key_id


def test_open_bundle_gives_the_flashers_the_manifest_files_and_their_bytes(x86_bundles, signing_key):
    res = x86_bundles[0]
    b = bundle.open_bundle(res.path)
    assert b.top == f"alog-edge-{res.version}-x86_64" and b.target == "x86_64" and b.version == res.version
    assert [e.path for e in b.files] == [e.path for e in res.files]
    entry = next(e for e in b.files if e.path == "models/vocab.json")
    assert hashlib.sha256(b.read("models/vocab.json")).hexdigest() == entry.sha256
    assert keys.verify(b.manifest_bytes, b.signature_bytes, signing_key.public) == signing_key.key_id


def test_the_wrong_architecture_is_refused_at_bundle_time(model_dirs, signing_key, runtime_x86_64, tmp_path):
    proc = invoke("bundle", "--target", "aarch64", "--runtime", str(runtime_x86_64), "--models",
                  str(model_dirs.first), "--key", str(signing_key.secret), "--out", str(tmp_path / "b.tar.gz"))
    assert proc.returncode == 1 and "is built for x86_64, not for the target aarch64" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not list(tmp_path.iterdir())


def test_a_secret_key_inside_the_model_directory_is_refused(model_dirs, signing_key, runtime_x86_64, tmp_path):
    models = copy_models(model_dirs.first, tmp_path / "models")
    (models / "oops.key").write_bytes(signing_key.secret.read_bytes())
    with pytest.raises(AlogError, match="secret key"):
        make_bundle(tmp_path / "out", models, signing_key.secret, runtime=runtime_x86_64)


@pytest.mark.parametrize("what, change, message", [
    ("a file's byte", lambda i, d: (i, d[:-1] + bytes([d[-1] ^ 1])) if i.name.endswith("vocab.json") else (i, d),
     "sha256 differs from the manifest"),
    ("an extra file", lambda i, d: (i, d), None),
    ("a missing signature", lambda i, d: None if i.name.endswith(".minisig") else (i, d), "unsigned"),
    ("a link", lambda i, d: (_as_link(i), None) if i.name.endswith("models/vocab.json") else (i, d), "is a link"),
    ("a climbing path", lambda i, d: (_renamed(i, "../evil"), d) if i.name.endswith("install.sh") else (i, d),
     "climbing path"),
    ("a gzip header with a time", None, "gzip header"),
])
def test_open_bundle_refuses_a_damaged_or_unsafe_archive_with_one_line(x86_bundles, tmp_path, what, change, message):
    src = x86_bundles[0].path
    if what == "an extra file":
        extra = tarfile.TarInfo(f"{top_of(src)}/bin/extra")
        out = rewrite_bundle(src, tmp_path / "x.tar.gz", extra=[(extra, b"x")])
        message = "is not listed in the manifest"
    elif change is None:
        data = bytearray(src.read_bytes())
        data[4] ^= 1
        (out := tmp_path / "x.tar.gz").write_bytes(bytes(data))
    else:
        out = rewrite_bundle(src, tmp_path / "x.tar.gz", change)
    with pytest.raises(AlogError, match=message) as exc:
        bundle.open_bundle(out)
    assert "\n" not in str(exc.value)


def _as_link(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.type, info.linkname, info.size = tarfile.SYMTYPE, "/etc/passwd", 0
    return info


def _renamed(info: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    info.name = info.name.split("/", 1)[0] + "/" + name
    return info


def test_invoke_bundle_for_aarch64_takes_the_demo_models_of_the_workspace(model_dirs, signing_key, arm_bundle,
                                                                          tmp_path):
    ws = tmp_path / "ws"
    copy_models(model_dirs.first, ws / "demo" / "models" / "onnx")
    out = tmp_path / "arm.tar.gz"
    proc = invoke("bundle", "--target", "aarch64", "-w", str(ws), "--key", str(signing_key.secret),
                  "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["target"] == "aarch64" and summary["key_id"] == signing_key.key_id
    assert out.read_bytes() == arm_bundle.path.read_bytes()  # the same inputs through the task
    b = bundle.open_bundle(out)
    machines = {e.path: e.elf_machine for e in b.files if e.elf_machine}
    assert set(machines.values()) == {"aarch64"} and "lib/libstdc++.so.6" in machines
    assert b.read("models/vocab.json") == (model_dirs.first / "vocab.json").read_bytes()

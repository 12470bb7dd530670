"""deploy/install.sh run by busybox alone (a PATH of busybox applets): install, a model-only update
from staged files, status, rollback, gc, the service and its health watch; what it refuses without
changing anything; a kill at every step and at random instants; `invoke install` (aarch64 through
qemu)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from alog_edge.delivery import keys, manifest, soak
from bundle_fixtures import copy_models, make_bundle, rewrite_bundle, top_of
from conftest import invoke

SUITE_RANDOM_KILLS = 2  # `invoke soak --runs 100` does 100


def make_device(root: Path, busybox_dir: Path, service: str = "init", **conf: str) -> soak.Device:
    log = root / "watched.log"
    log.touch()
    settings = {"ALOG_EDGE_SERVICE": service, "ALOG_EDGE_LOG": str(log), "ALOG_EDGE_HEALTH_SECONDS": "1", **conf}
    return soak.Device(root / "p", path_dir=busybox_dir, conf=settings)


@pytest.fixture
def device(tmp_path, busybox_dir):
    dev = make_device(tmp_path, busybox_dir)
    yield dev
    dev.stop_service()


def one_error_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def snapshot(prefix: Path) -> dict[str, str]:
    """Everything under the prefix that an install may change (not the service's run/ and var/)."""
    out = {}
    for path in sorted(prefix.rglob("*")):
        rel = path.relative_to(prefix).as_posix()
        if rel.split("/")[0] in ("run", "var"):
            continue
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.stat().st_size < 1 << 16 else \
                f"{path.stat().st_size} {path.stat().st_ino}"
        else:
            out[rel] = "dir"
    return out


def service_pid(dev: soak.Device) -> int:
    return int((dev.prefix / "run" / "alog-edge.pid").read_text())


def test_install_update_rollback_and_gc_under_busybox(device, x86_bundles, xz_bundle, signing_key, model_dirs,
                                                      tmp_path):
    first, second = x86_bundles
    proc = device.install(xz_bundle.path, "--trust-key", str(signing_key.public))  # the bundle's own installer
    assert proc.returncode == 0, proc.stderr
    st = device.status()
    assert st["current"] == first.version and st["previous"] is None and st["service"] == "running"
    assert st["keys"] == [signing_key.key_id] and st["target"] == "x86_64"
    assert json.loads((device.prefix / "state.json").read_text()) == st
    pid = service_pid(device)
    assert f"releases/{first.version}" in Path(f"/proc/{pid}/cmdline").read_text() or \
        "current/bin/alog-edge" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")

    # a model-only update: only the models' files and the manifest are uploaded
    staged = device.prefix / "incoming" / f"{second.version}-x86_64"
    top = top_of(second.path)
    with tarfile.open(second.path) as tar:
        for m in tar.getmembers():
            rel = m.name[len(top) + 1:]
            if m.isfile() and (rel.startswith("models/") or rel.startswith("MANIFEST.json")):
                m.name = rel
                tar.extract(m, staged, filter="data")
    proc = device.run("install", "--staged", str(staged))
    assert proc.returncode == 0, proc.stderr
    assert not staged.exists()
    st = device.status()
    assert st["current"] == second.version and st["previous"] == first.version and st["service"] == "running"
    assert service_pid(device) != pid
    old, new = device.prefix / "releases" / first.version, device.prefix / "releases" / second.version
    assert (old / "lib" / "libonnxruntime.so.1").stat().st_ino == (new / "lib" / "libonnxruntime.so.1").stat().st_ino
    assert (new / "models" / "deeplog.onnx").read_bytes() == (model_dirs.second / "deeplog.onnx").read_bytes()
    assert device.check_current() == second.version

    # a staged upload missing a changed file is refused naming it
    half = tmp_path / "half"
    half.mkdir()
    for name in ("MANIFEST.json", "MANIFEST.json.minisig"):
        shutil.copy(old / name, half / name)
    before = snapshot(device.prefix)
    proc = device.run("install", "--staged", str(half))
    assert proc.returncode == 5 and "models/deeplog.onnx: missing from the upload" in one_error_line(proc)
    assert snapshot(device.prefix) == before

    proc = device.run("rollback")
    assert proc.returncode == 0, proc.stderr
    st = device.status()
    assert (st["current"], st["previous"], st["service"]) == (first.version, second.version, "running")
    assert [(h["version"], h["action"], h["result"]) for h in st["history"]] == [
        (first.version, "install", "ok"), (second.version, "install", "ok"), (first.version, "rollback", "ok")]

    # gc keeps current and previous, removes other releases and stale uploads
    (device.prefix / "releases" / "0.0.1-old").mkdir()
    stale = device.prefix / "incoming" / "old-upload"
    stale.mkdir()
    subprocess.run(["touch", "-d", "2000-01-01 00:00", str(stale)], check=True)
    fresh = device.prefix / "incoming" / "fresh-upload"
    fresh.mkdir()
    proc = device.run("gc")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (device.prefix / "releases").iterdir()) == sorted([first.version, second.version])
    assert not stale.exists() and fresh.exists()


def test_a_bundle_failing_its_selftest_never_becomes_current(device, x86_bundles, model_dirs, signing_key,
                                                             runtime_x86_64, tmp_path):
    models = copy_models(model_dirs.first, tmp_path / "bad-golden")
    golden = json.loads((models / "golden.json").read_text())
    case = golden["cases"][0]
    output = next(iter(case["outputs"].values()))
    output["data"][0] += 1.0
    (models / "golden.json").write_text(json.dumps(golden))
    bad = make_bundle(tmp_path / "b", models, signing_key.secret, runtime=runtime_x86_64)
    assert device.install(x86_bundles[0].path, "--trust-key", str(signing_key.public)).returncode == 0
    proc = device.install(bad.path)
    assert proc.returncode == 4 and f"release {bad.version} failed its selftest" in one_error_line(proc)
    st = device.status()
    assert st["current"] == x86_bundles[0].version and st["previous"] is None
    assert bad.version not in st["releases"] and st["history"][-1]["result"] == "selftest-failed"
    assert device.check_current() == x86_bundles[0].version


def test_a_service_that_does_not_stay_up_is_rolled_back_by_itself(tmp_path, busybox_dir, x86_bundles, signing_key):
    dev = make_device(tmp_path, busybox_dir)
    try:
        first, second = x86_bundles
        assert dev.install(first.path, "--trust-key", str(signing_key.public)).returncode == 0
        conf = dev.prefix / "etc" / "alog-edge.conf"
        conf.write_text(conf.read_text().replace(str(tmp_path / "watched.log"), str(tmp_path)))  # a folder
        proc = dev.install(second.path)
        assert proc.returncode == 6 and f"restored {first.version}" in one_error_line(proc)
        st = dev.status()
        assert st["current"] == first.version and st["history"][-1]["result"] == "health-failed"
    finally:
        dev.stop_service()


# --- refusals: one line, a distinct exit status, and the prefix exactly as it was ----------------

@pytest.fixture(scope="module")
def installed(tmp_path_factory, busybox_dir, x86_bundles, signing_key):
    dev = make_device(tmp_path_factory.mktemp("installed"), busybox_dir, service="none")
    assert dev.install(x86_bundles[0].path, "--trust-key", str(signing_key.public)).returncode == 0
    return dev


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1:]


def _flip_member(suffix: str, header: bool = False):
    def change(info, data):
        if info.name.endswith(suffix):
            if header:
                info.name = info.name[:-1] + chr(ord(info.name[-1]) ^ 1)
            else:
                data = flip(data, len(data) // 2)
        return info, data
    return change


ARCHIVE_FLIPS = {"gzip magic": 1, "gzip flags": 3, "gzip time": 5, "gzip os": 9, "deflate start": 100,
                 "deflate middle": None, "crc trailer": -8, "size trailer": -2}
MEMBER_FLIPS = {"manifest": "MANIFEST.json", "signature": "MANIFEST.json.minisig", "binary": "bin/alog-edge",
                "library": "lib/libcjson.so.1", "installer": "install.sh", "model": "models/deeplog.onnx",
                "init script": "service/alog-edge.init"}


@pytest.mark.parametrize("region", list(ARCHIVE_FLIPS) + list(MEMBER_FLIPS) + ["tar header"])
def test_one_flipped_byte_in_any_region_is_refused(installed, x86_bundles, tmp_path, region):
    src = x86_bundles[1].path
    out = tmp_path / "flipped.tar.gz"
    if region in ARCHIVE_FLIPS:
        data = src.read_bytes()
        at = ARCHIVE_FLIPS[region]
        out.write_bytes(flip(data, len(data) // 2 if at is None else at % len(data)))
    elif region == "tar header":
        rewrite_bundle(src, out, _flip_member("bin/alog-edge", header=True))
    else:
        rewrite_bundle(src, out, _flip_member(MEMBER_FLIPS[region]))
    before = snapshot(installed.prefix)
    proc = installed.install(out)
    assert proc.returncode == 5, proc.stderr
    one_error_line(proc)
    assert snapshot(installed.prefix) == before


def _resigned(src: Path, out: Path, secret: Path, change) -> Path:
    def edit(info, data):
        if info.name.endswith("/MANIFEST.json"):
            doc = json.loads(data)
            change(doc)
            data = manifest.dumps(doc)
            edit.manifest = data
        elif info.name.endswith("/MANIFEST.json.minisig"):
            data = keys.sign(edit.manifest, secret, "resigned")
        return info, data
    return rewrite_bundle(src, out, edit)


def _crafted(out: Path, members: list[tuple[str, str, str]]) -> Path:
    """A tiny tar.gz with (name, type, link target) members: what no bundle holds."""
    extra = []
    for name, kind, target in members:
        info = tarfile.TarInfo(name)
        if kind == "dir":
            info.type = tarfile.DIRTYPE
        elif kind == "sym":
            info.type, info.linkname = tarfile.SYMTYPE, target
        elif kind == "hard":
            info.type, info.linkname = tarfile.LNKTYPE, target
        extra.append((info, b"x" if kind == "file" else None))
    empty = out.with_name("empty.tar")
    with tarfile.open(empty, "w"):
        pass
    return rewrite_bundle(empty, out, extra=extra)


@pytest.mark.parametrize("case, code, message", [
    ("other key", 5, "which is not a trusted key"),
    ("unsigned", 5, "unsigned"),
    ("wrong architecture", 5, "the bundle is for aarch64, this device is x86_64"),
    ("newer glibc", 5, "the bundle needs glibc 9.99, this device has 2."),
    ("already installed", 3, "is installed and current already"),
    ("climbing path", 5, "a member has a climbing path, refused"),
    ("absolute path", 5, "a member has an absolute path or unsafe name, refused"),
    ("symlink out", 5, "holds a link or special file, refused"),
    ("hard link", 5, "holds a hard link, refused"),
])
def test_refusals_leave_the_device_unchanged(installed, x86_bundles, arm_bundle, model_dirs, other_key, signing_key,
                                             runtime_x86_64, tmp_path, case, code, message):
    src = x86_bundles[1].path
    top = top_of(src)
    out = tmp_path / "refused.tar.gz"
    if case == "other key":
        out = make_bundle(tmp_path, model_dirs.second, other_key.secret, runtime=runtime_x86_64).path
    elif case == "unsigned":
        rewrite_bundle(src, out, lambda i, d: None if i.name.endswith(".minisig") else (i, d))
    elif case == "wrong architecture":
        out = arm_bundle.path
    elif case == "newer glibc":
        _resigned(src, out, signing_key.secret, lambda doc: doc.update(min_glibc="9.99"))
    elif case == "already installed":
        out = x86_bundles[0].path
    elif case == "climbing path":
        _crafted(out, [(top, "dir", ""), (f"{top}/../evil", "file", "")])
    elif case == "absolute path":
        _crafted(out, [("/tmp/evil", "file", "")])
    elif case == "symlink out":
        _crafted(out, [(top, "dir", ""), (f"{top}/lib", "sym", "/etc")])
    elif case == "hard link":
        _crafted(out, [(top, "dir", ""), (f"{top}/a", "file", ""), (f"{top}/b", "hard", "/etc/shadow")])
    before = snapshot(installed.prefix)
    proc = installed.install(out)
    assert proc.returncode == code, proc.stderr
    assert message in one_error_line(proc)
    assert snapshot(installed.prefix) == before


def test_a_full_disk_is_refused_and_cleaned_up(tmp_path, busybox_dir, x86_bundles, signing_key):
    """A 48 MiB tmpfs prefix holds one release (35 MB) but not a second one."""
    root = tmp_path / "small"
    root.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(root)], capture_output=True,
                             text=True)
    assert mounted.returncode == 0, f"mount -t tmpfs failed (the test needs root): {mounted.stderr}"
    try:
        dev = make_device(root, busybox_dir, service="none")
        first, second = x86_bundles
        assert dev.install(first.path, "--trust-key", str(signing_key.public)).returncode == 0
        before = snapshot(dev.prefix)
        proc = dev.install(second.path)
        assert proc.returncode == 1 and "No space left on device" in one_error_line(proc)
        assert snapshot(dev.prefix) == before
        assert dev.check_current() == first.version
    finally:
        subprocess.run(["umount", str(root)], check=True)


# --- kills --------------------------------------------------------------------------------------

def test_a_kill_at_every_step_and_at_random_instants_leaves_old_or_new_complete(tmp_path, busybox_dir, x86_bundles,
                                                                               signing_key):
    """The small count of `invoke soak --transport local --runs 100` (service off: the health watch is
    covered by the soak and by the rollback test)."""
    dev = make_device(tmp_path, busybox_dir, service="none")
    res = soak.kill_soak(dev, (x86_bundles[0].path, x86_bundles[1].path), signing_key.public,
                         random_runs=SUITE_RANDOM_KILLS, seed=3)
    print(res.text())
    assert {"check-archive", "verify-signature", "unpack", "check-files", "rename", "selftest", "switch",
            "switch-current", "commit"} <= set(res.steps)
    assert res.step_kills == len(res.steps) and res.random_kills == SUITE_RANDOM_KILLS
    assert res.old_after_kill + res.new_after_kill == res.recovered_installs == len(res.steps) + SUITE_RANDOM_KILLS
    assert res.old_after_kill >= 1 and res.new_after_kill >= 1


# --- invoke install -----------------------------------------------------------------------------

def test_invoke_install_installs_an_aarch64_bundle_whose_selftest_runs_under_qemu(arm_bundle, signing_key, tmp_path):
    prefix = tmp_path / "arm-device"
    proc = invoke("install", "--bundle", str(arm_bundle.path), "--prefix", str(prefix), "--trust-key",
                  str(signing_key.public), "--json")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert "selftest passed" in res["message"]
    assert res["status"]["current"] == arm_bundle.version and res["status"]["target"] == "aarch64"
    proc = invoke("install", "--status", "--prefix", str(prefix))
    assert json.loads(proc.stdout)["history"][0]["selftest"] is True
    again = invoke("install", "--bundle", str(arm_bundle.path), "--prefix", str(prefix))
    assert again.returncode == 3 and "installed and current already" in again.stderr


def test_invoke_install_refuses_a_bundle_the_prefix_does_not_trust(x86_bundles, other_key, tmp_path):
    proc = invoke("install", "--bundle", str(x86_bundles[0].path), "--prefix", str(tmp_path / "d"), "--trust-key",
                  str(other_key.public))
    assert proc.returncode == 1 and "not by the trusted key" in proc.stderr
    assert not (tmp_path / "d" / "current").exists()

"""`invoke flash` over SSH against real local sshd and dropbear devices (busybox-only PATH): first install,
model-only delta, up to date, dry run, JSON, and every refusal leaving the device untouched."""
from __future__ import annotations

import json
import subprocess

import paramiko
import pytest
from conftest import invoke
from ssh_fixtures import (current_version, flash_args, flash_one, nothing_installed, options)

from alog_edge.delivery import flash, ssh, sshdevice


def models_bytes(first, second) -> int:
    """Size of the model files whose sha256 differs between two bundles."""
    old = {(e.path, e.sha256) for e in first.files}
    return sum(e.size for e in second.files if (e.path, e.sha256) not in old)


@pytest.mark.parametrize("kind", ["sshd", "dropbear"])
def test_first_install_then_up_to_date_then_a_model_only_update(devices, ssh_bundles, kind):
    dev = devices.start(kind)
    first = invoke(*flash_args(dev, ssh_bundles.first, "--trust-key", str(ssh_bundles.public_key)))
    assert first.returncode == 0, first.stderr
    assert f"first install (none) -> {ssh_bundles.first.version}" in first.stdout
    assert "selftest passed" in first.stdout
    assert current_version(dev) == ssh_bundles.first.version
    assert list((dev.prefix / "keys").glob("*.pub"))

    again = invoke(*flash_args(dev, ssh_bundles.first, "--json"))
    assert again.returncode == 0, again.stderr
    row = json.loads(again.stdout)
    assert (row["result"], row["bytes_sent"], row["files_sent"]) == ("up to date", 0, 0)

    update = flash_one(dev, ssh_bundles.second)
    assert update.result == "ok", update.error
    assert update.kind == "model-only"
    assert {f["path"] for f in update.files} <= {e.path for e in ssh_bundles.second.files
                                                 if e.path.startswith("models/")} | set(flash.SIGNED)
    model_bytes = models_bytes(ssh_bundles.first, ssh_bundles.second)
    assert model_bytes <= update.bytes_sent <= model_bytes * 1.05
    assert (update.version_before, update.version_after) == (ssh_bundles.first.version, ssh_bundles.second.version)
    assert update.selftest == "passed"
    assert current_version(dev) == ssh_bundles.second.version
    # unchanged files were hard-linked from the release before, not sent
    old = dev.prefix / "releases" / ssh_bundles.first.version / "lib" / "libonnxruntime.so.1"
    new = dev.prefix / "releases" / ssh_bundles.second.version / "lib" / "libonnxruntime.so.1"
    assert old.stat().st_ino == new.stat().st_ino


def test_dropbear_has_no_sftp_and_the_exec_channel_carries_the_files(devices, ssh_bundles):
    dev = devices.start("dropbear")
    t = ssh.SshTransport(ssh.parse_host(dev.host), options(dev))
    try:
        with pytest.raises(paramiko.SSHException):
            t.conn.client.open_sftp()
        res = flash.flash(t, ssh_bundles.first, str(dev.prefix), trust_key=ssh_bundles.public_key)
        assert res.result == "ok" and t.uploads_by_exec == len(ssh_bundles.first.files) + 3  # + manifest, sig, key
    finally:
        t.close()
    assert current_version(dev) == ssh_bundles.first.version


def test_dry_run_says_what_it_would_send_and_changes_nothing(devices, ssh_bundles):
    dev = devices.start("sshd")
    res = invoke(*flash_args(dev, ssh_bundles.first, "--trust-key", str(ssh_bundles.public_key), "--dry-run"))
    assert res.returncode == 0, res.stderr
    assert "first install" in res.stdout and "would send" in res.stdout and "lib/libonnxruntime.so.1" in res.stdout
    assert nothing_installed(dev) and not (dev.prefix / "keys").exists()


def test_the_device_path_has_busybox_applets_only(devices):
    dev = devices.start("dropbear")
    t = ssh.SshTransport(ssh.parse_host(dev.host), options(dev))
    try:
        rc, out, _ = t.run('echo "$PATH"; for c in sh sha256sum mv; do readlink -f "$(command -v $c)"; done', 10)
    finally:
        t.close()
    lines = out.decode().split()
    assert rc == 0 and lines[0] == str(dev.root / "bin") and set(lines[1:]) == {"/usr/bin/busybox"}


def test_an_unknown_host_key_is_refused_with_its_fingerprint(devices, ssh_bundles, tmp_path):
    dev = devices.start("sshd", trusted=False)
    known = tmp_path / "known_hosts"
    res = invoke(*flash_args(dev, ssh_bundles.first, "--trust-key", str(ssh_bundles.public_key), known_hosts=known))
    fp = subprocess.run(["ssh-keygen", "-lf", str(dev.root / "etc" / "ssh_host_ed25519_key.pub")],
                        capture_output=True, text=True).stdout.split()[1]
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1
    assert lines[0].startswith(f"error: {dev.host}: unknown host key ssh-ed25519 {fp}")
    assert nothing_installed(dev) and not known.exists()


def test_accept_new_host_key_records_it_and_the_next_run_trusts_it(devices, ssh_bundles, tmp_path):
    dev = devices.start("dropbear", trusted=False)
    known = tmp_path / "known_hosts"
    opts = options(dev, known_hosts=known, accept_new_host_key=True)
    res = flash_one(dev, ssh_bundles.first, trust_key=ssh_bundles.public_key, opts=opts, dry_run=True)
    assert res.result == "dry-run", res.error
    assert known.read_text() == dev.host_key_line
    res = flash_one(dev, ssh_bundles.first, trust_key=ssh_bundles.public_key, opts=options(dev, known_hosts=known))
    assert res.result == "ok", res.error


def test_a_changed_host_key_is_refused_even_with_accept_new(devices, ssh_bundles, tmp_path):
    dev, impostor = devices.start("sshd"), devices.start("sshd")
    known = tmp_path / "known_hosts"
    # known_hosts says the device at this port has another device's key
    known.write_text(impostor.host_key_line.replace(f"]:{impostor.port} ", f"]:{dev.port} "))
    res = invoke(*flash_args(dev, ssh_bundles.first, "--trust-key", str(ssh_bundles.public_key),
                             "--accept-new-host-key", known_hosts=known))
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1
    assert f"error: {dev.host}: host key CHANGED" in res.stderr
    assert nothing_installed(dev)


def test_a_key_the_device_does_not_authorize_is_refused(devices, ssh_bundles, tmp_path):
    dev = devices.start("sshd")
    stranger = tmp_path / "id_stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    res = invoke(*flash_args(dev, ssh_bundles.first, "--trust-key", str(ssh_bundles.public_key), identity=stranger))
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1
    assert f"error: {dev.host}: authentication failed" in res.stderr
    assert nothing_installed(dev)


def test_bad_bundles_are_refused_before_anything_is_installed(devices, ssh_bundles, other_key, tmp_path,
                                                              x86_bundles, model_dirs, runtime_x86_64):
    from bundle_fixtures import make_bundle
    dev = devices.start("sshd")
    tampered = tmp_path / "tampered.tar.gz"
    _tamper(ssh_bundles.first.path, tampered)
    res = invoke(*flash_args(dev, _Named(tampered), "--trust-key", str(ssh_bundles.public_key)))
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1 and "sha256" in res.stderr

    foreign = make_bundle(tmp_path / "foreign", model_dirs.second, other_key.secret, runtime=runtime_x86_64)
    res = invoke(*flash_args(dev, _Named(foreign.path), "--trust-key", str(ssh_bundles.public_key)))
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert nothing_installed(dev)

    # an installed device refuses a bundle signed by a key it does not trust, with no --trust-key given
    assert flash_one(dev, ssh_bundles.first, trust_key=ssh_bundles.public_key).result == "ok"
    res = flash_one(dev, _Named(foreign.path))
    assert res.failed and "does not verify with any key the device trusts" in res.error
    assert current_version(dev) == ssh_bundles.first.version


def test_a_bundle_for_another_architecture_is_refused(devices, ssh_bundles, model_dirs, signing_key,
                                                      runtime_aarch64, tmp_path):
    from bundle_fixtures import make_bundle
    dev = devices.start("dropbear")
    arm = make_bundle(tmp_path / "arm", model_dirs.first, signing_key.secret, target="aarch64", runtime=runtime_aarch64)
    res = invoke(*flash_args(dev, _Named(arm.path), "--trust-key", str(ssh_bundles.public_key)))
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1
    assert "built for aarch64" in res.stderr and "x86_64" in res.stderr
    assert nothing_installed(dev)


def test_a_failing_host_gives_one_line_and_a_fleet_goes_on(devices, ssh_bundles, tmp_path):
    good = devices.start("sshd")
    dead = sshdevice.free_port()
    hosts = tmp_path / "hosts"
    hosts.write_text(f"# two devices\n{good.host} prefix={good.prefix}\nroot@127.0.0.1:{dead}  # switched off\n")
    res = invoke("flash", "--bundle", str(ssh_bundles.first.path), "--hosts", str(hosts), "--identity",
                 str(good.identity), "--known-hosts", str(good.known_hosts), "--trust-key",
                 str(ssh_bundles.public_key), "--timeout", "20")
    assert res.returncode == 1
    table = res.stdout.splitlines()
    assert table[0].split()[:3] == ["HOST", "RESULT", "KIND"]
    assert table[1].split()[:2] == [good.host, "ok"] and table[2].split()[:2] == [f"root@127.0.0.1:{dead}", "failed"]
    assert "1 of 2 hosts ok, 1 failed" in res.stdout
    assert current_version(good) == ssh_bundles.first.version


class _Named:
    """A bundle path where flash_args expects an opened bundle."""

    def __init__(self, path) -> None:
        self.path = path


def _tamper(src, dest) -> None:
    """The same archive with one byte of the model changed (the manifest and signature untouched)."""
    import io
    import tarfile
    with tarfile.open(src) as tin, tarfile.open(dest, "w:gz") as tout:
        for m in tin:
            data = tin.extractfile(m).read() if m.isfile() else None
            if m.name.endswith("models/deeplog.onnx"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            tout.addfile(m, io.BytesIO(data) if data is not None else None)

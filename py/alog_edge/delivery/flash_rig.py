"""What `invoke soak` needs before its faults: two real bundles that differ in their models (a DeepLog
trained on HDFS sessions, converted at opset 11 and 17), a signing key, and two test devices (sshd and
dropbear) holding the first bundle."""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from alog_edge.delivery import flash, flash_soak as soak, ssh, sshdevice
from alog_edge.errors import AlogError

log = logging.getLogger(__name__)
HDFS_SESSIONS = 400


def datasets_dir(repo: Path) -> Path:
    return Path(os.environ.get("ALOG_EDGE_DATASETS", repo.parent / "shared" / "datasets"))


def model_dirs(work: Path, datasets: Path, hidden: int = 128) -> list[Path]:
    from alog_edge.data import dataset, parse
    from alog_edge.export import convert as export
    from alog_edge.formats import logformat, vocab
    from alog_edge.training import train
    from alog_edge.models.deeplog import DeepLogConfig
    sessions = datasets / "hdfs-sessions"
    if not (sessions / "hdfs_train").is_file():
        raise AlogError(sessions, "the HDFS sessions are missing (set ALOG_EDGE_DATASETS)")
    dirs = [work / "models-opset11", work / "models-opset17"]
    if all((d / "golden.json").is_file() for d in dirs):
        return dirs
    subset = work / "hdfs_train"
    subset.write_text("\n".join((sessions / "hdfs_train").read_text().splitlines()[:HDFS_SESSIONS]) + "\n")
    templates = sessions / "HDFS_templates.csv"
    dataset.build_deeplog_inputs(work, sessions_file=subset, templates_file=templates)
    parse.parse([datasets / "loghub-2k" / "HDFS" / "HDFS_2k.log"], logformat.PRESETS["hdfs"], work,
                template_file=templates)
    voc = vocab.load(work / "vocab.json")
    train.train_deeplog(work / "sequences.parquet", voc, work / "deeplog.pth",
                        DeepLogConfig(voc.num_classes, hidden_size=hidden), train.TrainConfig(epochs=1, seed=5, threads=1))
    for out, opset in zip(dirs, (11, 17)):
        export.convert(export.ConvertRequest(vocab=work / "vocab.json", parser=work / "parser.json", output_dir=out,
                                             deeplog_model=work / "deeplog.pth", sequences=work / "sequences.parquet",
                                             opset=opset))
    return dirs


def bundles(work: Path, models: list[Path], repo: Path) -> tuple[list, Path]:
    """Two signed x86_64 bundles of the model directories; returns them (opened) and the public key."""
    from alog_edge.toolchain import build as native
    from alog_edge.delivery import bundle, keys
    key = work / "keys" / "soak.key"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        keys.generate(key)
    runtime = native.build_runtime(repo, "x86_64", quiet=True)
    built = [bundle.build(bundle.BundleRequest("x86_64", key=key, models=m, runtime=runtime,
                                               out=work / f"bundle-{m.name}.tar.gz", repo=repo)) for m in models]
    return [bundle.open_bundle(b.path) for b in built], keys.public_path(key)


def first_install(device: sshdevice.Device, bundle, pub: Path) -> None:
    t = ssh.SshTransport(ssh.parse_host(device.host), ssh.SshOptions(known_hosts=device.known_hosts,
                                                                     identity=device.identity))
    try:
        flash.flash(t, bundle, str(device.prefix), trust_key=pub)
    finally:
        t.close()


def run_soak(work: Path, faults: list[str], runs: int, seed: int, repo: Path, devices: int = 4) -> soak.SoakReport:
    """`runs` of each fault on `devices` local devices (sshd and dropbear alternating), faulted in parallel."""
    work.mkdir(parents=True, exist_ok=True)
    logging.getLogger("alog_edge.delivery.ssh").setLevel(logging.WARNING)  # resumes are counted, not told
    opened, pub = bundles(work, model_dirs(work, datasets_dir(repo)), repo)
    devices_dir = work / "devices"
    if devices_dir.exists():
        for d in sshdevice._devices_in(devices_dir):
            sshdevice.stop(d)
        shutil.rmtree(devices_dir)
    if devices < 1:
        raise AlogError("--devices", f"{devices}: must be at least 1")
    started = sshdevice.start_fleet(devices_dir, [("sshd", "dropbear")[i % 2] for i in range(devices)])
    try:
        for d in started:
            sshdevice.trust(d)
            first_install(d, opened[0], pub)
        return soak.run_faults(started, opened, faults, runs, seed)
    finally:
        for d in started:
            sshdevice.stop(d)
        shutil.rmtree(devices_dir, ignore_errors=True)


def fleet_bench(work: Path, count: int, parallel: int, repo: Path) -> str:
    """First install of one device alone, then of `count` devices (sshd and dropbear alternating) with
    `parallel` at once; returns both times, their ratio and the fleet's recap."""
    from alog_edge.delivery import fleet
    import time
    work.mkdir(parents=True, exist_ok=True)
    opened, pub = bundles(work, model_dirs(work, datasets_dir(repo)), repo)
    devices_dir = work / "fleet-devices"
    shutil.rmtree(devices_dir, ignore_errors=True)
    devices = sshdevice.start_fleet(devices_dir, ["sshd", "dropbear"][:1] + ["sshd", "dropbear"] * (count // 2)
                                    + ["sshd"] * (count % 2))
    try:
        opts = ssh.SshOptions(known_hosts=devices_dir / "known_hosts", identity=devices[0].identity)
        specs = ssh.read_hosts_file(devices_dir / "hosts")

        def timed(hosts: list, n: int) -> tuple[float, list]:
            start = time.monotonic()
            results = fleet.flash_fleet(fleet.FleetRequest(opened[0].path, hosts, opts, trust_key=pub, parallel=n))
            return time.monotonic() - start, results
        one, _ = timed(specs[:1], 1)
        many, results = timed(specs[1:], parallel)
        return "\n".join([flash.recap(results), f"one device: {one:.1f}s; {count} devices with --parallel {parallel}: "
                          f"{many:.1f}s ({many / one:.1f}x one device)"])
    finally:
        for d in devices:
            sshdevice.stop(d)
        shutil.rmtree(devices_dir, ignore_errors=True)

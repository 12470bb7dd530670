"""Session fixtures of the delivery tests (loaded by conftest.py): real model directories, a signing
key outside the repo, and signed bundles made from them with the session's runtime builds (conftest.py)."""
from __future__ import annotations

import io
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from alog_edge.export import convert as export
from alog_edge.toolchain import build as native
from alog_edge.delivery import bundle, keys, soak

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ModelDirs:
    first: Path        # DeepLog on the HDFS sessions, opset 11
    second: Path       # the same checkpoint converted at opset 17: a model-only update
    workspace: Path


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory, hdfs_deeplog) -> ModelDirs:
    """Two real model directories of the session's HDFS DeepLog (conftest), converted with golden.json."""
    trained, _, _ = hdfs_deeplog
    ws = tmp_path_factory.mktemp("bundle-models")
    dirs = []
    for name, opset in (("models", 11), ("models-v2", 17)):
        export.convert(export.ConvertRequest(vocab=trained / "vocab.json", parser=trained / "parser.json",
                                             output_dir=ws / name, deeplog_model=trained / "deeplog.pth",
                                             sequences=trained / "sequences.parquet", opset=opset))
        dirs.append(ws / name)
    return ModelDirs(dirs[0], dirs[1], trained)


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory) -> keys.KeyPair:
    return keys.generate(tmp_path_factory.mktemp("keys") / "test.key")


@pytest.fixture(scope="session")
def other_key(tmp_path_factory) -> keys.KeyPair:
    return keys.generate(tmp_path_factory.mktemp("other-keys") / "other.key")


def make_bundle(out_dir: Path, models: Path, key: Path, target: str = "x86_64", runtime: Path | None = None,
                **kwargs) -> bundle.BundleResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    return bundle.build(bundle.BundleRequest(
        target, key=key, models=models, runtime=runtime or native.install_prefix(REPO, target),
        out=out_dir / f"{target}-{models.name}-{kwargs.get('compress', 'gz')}.tar.{kwargs.get('compress', 'gz')}",
        **kwargs))


@pytest.fixture(scope="session")
def x86_bundles(tmp_path_factory, model_dirs, signing_key, runtime_x86_64):
    """(first, second): x86_64 bundles of the two model directories, signed by signing_key."""
    out = tmp_path_factory.mktemp("bundles")
    return (make_bundle(out, model_dirs.first, signing_key.secret, runtime=runtime_x86_64),
            make_bundle(out, model_dirs.second, signing_key.secret, runtime=runtime_x86_64))


def copy_models(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    return dest


def rewrite_bundle(src: Path, out: Path, change=None, extra: list[tuple[tarfile.TarInfo, bytes | None]] = ()) -> Path:
    """Copy a bundle through `change(info, data) -> (info, data) | None` (None drops the member), adding
    `extra` members at the end, with the gzip header a bundle has (what an attacker can also write)."""
    raw = io.BytesIO()
    with tarfile.open(src) as tar, tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as dst:
        for info in tar.getmembers():
            data = tar.extractfile(info).read() if info.isfile() else None
            changed = (info, data) if change is None else change(info, data)
            if changed is None:
                continue
            info, data = changed
            if data is not None:
                info.size = len(data)
            dst.addfile(info, io.BytesIO(data) if data is not None else None)
        for info, data in extra:
            if data is not None:
                info.size = len(data)
            dst.addfile(info, io.BytesIO(data) if data is not None else None)
    out.write_bytes(soak.bundle_gzip(raw.getvalue()))
    return out


def top_of(bundle_path: Path) -> str:
    with tarfile.open(bundle_path) as tar:
        return tar.next().name.split("/")[0]


@pytest.fixture(scope="session")
def busybox_dir(tmp_path_factory) -> Path:
    """A PATH with nothing but busybox's applets (the device's shell and tools)."""
    return soak.busybox_applets(tmp_path_factory.mktemp("busybox-path"))


@pytest.fixture(scope="session")
def arm_bundle(tmp_path_factory, model_dirs, signing_key, runtime_aarch64) -> bundle.BundleResult:
    return make_bundle(tmp_path_factory.mktemp("arm-bundle"), model_dirs.first, signing_key.secret,
                       target="aarch64", runtime=runtime_aarch64)


@pytest.fixture(scope="session")
def xz_bundle(tmp_path_factory, model_dirs, signing_key, runtime_x86_64) -> bundle.BundleResult:
    return make_bundle(tmp_path_factory.mktemp("xz-bundle"), model_dirs.first, signing_key.secret,
                       runtime=runtime_x86_64, compress="xz", xz_preset=0)  # preset 6 by default: 10x slower

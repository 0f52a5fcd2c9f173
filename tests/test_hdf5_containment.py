"""HDF5 files that point outside themselves (external storage, virtual datasets, external links) are
refused before any of their data is read: a shared model must not read local files into its weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from conftest import write_tiny_model

from neurodeploy.errors import ArtifactError, NeurodeployError
from neurodeploy.nirio import load_nir

WEIGHT = "node/nodes/linear/weight"


def _model(path: Path) -> Path:
    return write_tiny_model(path)


def _external(path: Path, target: Path) -> Path:
    """The model with its weight dataset stored in ``target`` (HDF5 external storage)."""
    with h5py.File(_model(path), "a") as f:
        del f[WEIGHT]
        f.create_dataset(WEIGHT, shape=(2, 3), dtype="<f8", external=[(str(target), 0, 48)])
    return path


def test_external_storage_is_refused_without_reading_the_target(tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"s3cret-bytes" * 8)
    with pytest.raises(NeurodeployError, match=r"node/nodes/linear/weight.*keeps its data in another file"):
        load_nir(_external(tmp_path / "ext.nir", secret))
    # a target that does not exist: reading it would fail inside HDF5, so this message proves no read
    with pytest.raises(NeurodeployError, match="keeps its data in another file"):
        load_nir(_external(tmp_path / "gone.nir", tmp_path / "missing.bin"))


def test_virtual_datasets_and_external_links_are_refused(tmp_path: Path) -> None:
    other = _model(tmp_path / "other.nir")
    path = _model(tmp_path / "virtual.nir")
    layout = h5py.VirtualLayout(shape=(2, 3), dtype="<f8")
    layout[:] = h5py.VirtualSource(str(other), WEIGHT, shape=(2, 3))
    with h5py.File(path, "a") as f:
        del f[WEIGHT]
        f.create_virtual_dataset(WEIGHT, layout)
    with pytest.raises(NeurodeployError, match="virtual dataset"):
        load_nir(path)
    linked = _model(tmp_path / "linked.nir")
    with h5py.File(linked, "a") as f:
        del f[WEIGHT]
        f[WEIGHT] = h5py.ExternalLink(str(other), WEIGHT)
    with pytest.raises(NeurodeployError, match="external link"):
        load_nir(linked)


def test_cli_refuses_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    model = _external(tmp_path / "ext.nir", Path("/dev/zero"))
    out = tmp_path / "out.ndp"
    done = subprocess.run(
        [sys.executable, "-m", "neurodeploy.cli", "compile", str(model), "--profile", "loihi2", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "keeps its data in another file" in done.stderr
    assert not out.exists()


def test_compiled_artifacts_with_external_storage_are_refused(tmp_path: Path) -> None:
    import neurodeploy
    from neurodeploy.compiler.artifact import read_artifact

    art = tmp_path / "m.ndp"
    neurodeploy.compile(load_nir(_model(tmp_path / "m.nir")), "loihi2", dt=1e-3, reset="zero").save(art)
    read_artifact(art)  # intact: reads
    with h5py.File(art, "a") as f:
        name = next(n for n in _datasets(f) if f[n].size >= 1)
        shape, dtype = f[name].shape, f[name].dtype
        del f[name]
        f.create_dataset(name, shape=shape, dtype=dtype, external=[(str(tmp_path / "missing.bin"), 0, 1 << 20)])
    with pytest.raises(ArtifactError, match="keeps its data in another file"):
        read_artifact(art)


def _datasets(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return names

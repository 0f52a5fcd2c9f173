"""Declared sizes are checked from headers before anything is read: tiny files that claim huge arrays
are one clear error, fast, and the limit can be raised on purpose."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from conftest import write_tiny_model

from neurodeploy.errors import NeurodeployError
from neurodeploy.limits import ENV, check_numpy_file, max_input_bytes
from neurodeploy.nirio import load_nir


def _huge_npy(path: Path, shape: tuple[int, ...]) -> Path:
    with path.open("wb") as fh:  # a header only: the data it promises is never written
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return path


def test_an_npy_header_claiming_a_terabyte_is_refused_at_once(tmp_path: Path) -> None:
    path = _huge_npy(tmp_path / "s.npy", (10**6, 1000, 1000))
    t0 = time.perf_counter()
    with pytest.raises(NeurodeployError, match=r"declares 7\.3 TiB.*NEURODEPLOY_MAX_INPUT_BYTES=") as err:
        check_numpy_file(path)
    assert time.perf_counter() - t0 < 1.0 and str(path) in str(err.value)


def test_a_decompression_bomb_is_refused_and_the_limit_can_be_raised(tmp_path, monkeypatch) -> None:
    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, input=np.zeros(64 << 20, dtype=np.uint8))  # 64 MiB in about 64 KiB
    assert bomb.stat().st_size < 1 << 20
    monkeypatch.setenv(ENV, "16M")
    assert max_input_bytes() == 16 << 20
    with pytest.raises(NeurodeployError, match="archive declares 64.0 MiB"):
        check_numpy_file(bomb)
    monkeypatch.setenv(ENV, "1GiB")
    check_numpy_file(bomb)  # raised on purpose: accepted
    monkeypatch.setenv(ENV, "lots")
    with pytest.raises(NeurodeployError, match="not a size"):
        max_input_bytes()


def test_a_nir_file_declaring_a_huge_weight_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.nir"
    graph = nir.NIRGraph.from_list(nir.Input(np.array([3])), nir.Linear(np.ones((2, 3))), nir.Output(np.array([2])))
    nir.write(str(path), graph)
    with h5py.File(path, "a") as f:  # 40k x 40k float64, compressed and never written: a few KB on disk
        del f["node/nodes/linear/weight"]
        f.create_dataset("node/nodes/linear/weight", shape=(40000, 40000), dtype="<f8", chunks=(1000, 1000),
                         compression="gzip")  # fmt: skip
    assert path.stat().st_size < 1 << 20
    t0 = time.perf_counter()
    with pytest.raises(NeurodeployError, match="declares 11.9 GiB"):
        load_nir(path)
    assert time.perf_counter() - t0 < 5.0


def _compiled(tmp_path: Path) -> tuple[Path, list[str]]:
    """The tiny model compiled by the CLI into ``m.ndp``; returns it and the CLI's command prefix."""
    art = tmp_path / "m.ndp"
    cli = [sys.executable, "-m", "neurodeploy.cli"]
    model = write_tiny_model(tmp_path / "m.nir")
    assert subprocess.run([*cli, "compile", str(model), "--dt", "1e-3", "-o", str(art)], timeout=120).returncode == 0
    return art, cli


def test_cli_run_refuses_a_huge_header_with_one_line(tmp_path: Path) -> None:
    art, cli = _compiled(tmp_path)
    spikes = _huge_npy(tmp_path / "s.npy", (10**6, 1000, 3))
    done = subprocess.run([*cli, "run", str(art), "-i", str(spikes)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "declares" in done.stderr


def _conv_graph(h: int, w: int, c_out: int = 2, neurons: bool = False) -> nir.NIRGraph:
    """Input → Conv2d (3×3, padding 1) [→ IF] → Output: a few bytes of weights, h·w·c_out neurons."""
    conv = nir.Conv2d(input_shape=(h, w), weight=np.ones((c_out, 1, 3, 3)), stride=1, padding=1, dilation=1,
                      groups=1, bias=np.zeros(c_out))  # fmt: skip
    nodes = {"input": nir.Input(np.array([1, h, w])), "conv": conv, "output": nir.Output(np.array([c_out, h, w]))}
    if not neurons:
        return nir.NIRGraph(nodes, [("input", "conv"), ("conv", "output")])
    nodes["if"] = nir.IF(r=np.ones((c_out, h, w)), v_threshold=np.ones((c_out, h, w)))
    return nir.NIRGraph(nodes, [("input", "conv"), ("conv", "if"), ("if", "output")])


@pytest.mark.parametrize(("h", "w", "node"), [(100_000, 100_000, "input"), (3000, 3000, "conv")])
def test_a_conv_over_a_declared_huge_input_is_refused_before_lowering(h: int, w: int, node: str) -> None:
    from neurodeploy.compiler.normalize import normalize

    t0 = time.perf_counter()
    with pytest.raises(NeurodeployError, match=r"declares [\d,]+ neurons.*NEURODEPLOY_MAX_NEURONS=") as err:
        normalize(_conv_graph(h, w), dt=1e-3, reset="zero")
    assert time.perf_counter() - t0 < 5.0 and f"node {node!r}" in str(err.value)


def test_the_synapse_limit_stops_a_conv_expansion_and_can_be_raised(monkeypatch) -> None:
    from neurodeploy.compiler.normalize import normalize

    monkeypatch.setenv("NEURODEPLOY_MAX_SYNAPSES", "10K")
    with pytest.raises(NeurodeployError, match=r"expanded convolution declares 36,864 synapses.*=1M"):
        normalize(_conv_graph(32, 32, c_out=4, neurons=True), dt=1e-3, reset="zero")
    monkeypatch.setenv("NEURODEPLOY_MAX_SYNAPSES", "1M")
    ir = normalize(_conv_graph(32, 32, c_out=4, neurons=True), dt=1e-3, reset="zero")
    assert ir.population("if").size == 4096


def test_an_artifact_declaring_a_billion_neurons_is_refused(tmp_path: Path) -> None:
    from neurodeploy.compiler import artifact

    art, cli = _compiled(tmp_path)
    with h5py.File(art, "a") as f:  # a forged size with a valid checksum: the checksum is not a signature
        group = next(g for g in f["core/populations"].values() if int(g.attrs["size"]) == 2)
        group.attrs["size"] = 10**9
        f.attrs["checksum"] = artifact._digest(f)
    done = subprocess.run([*cli, "inspect", str(art)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "declares 1,000,000,000 neurons" in done.stderr and "NEURODEPLOY_MAX_NEURONS" in done.stderr

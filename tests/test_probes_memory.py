"""Every hostile or careless input probe, run through the CLI under an address-space limit: each is one
line and exit 2, takes at most 500 MB of memory and 5 s of CPU before it refuses, and writes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from conftest import write_tiny_model

PEAK_LIMIT_MB = 500
CPU_LIMIT_S = 5.0
ADDRESS_SPACE = 8 << 30  # the guard: a probe that tried to allocate gigabytes fails here, not the machine
WEIGHT = "node/nodes/linear/weight"


def _model(path: Path) -> Path:
    return write_tiny_model(path)


def _external_storage(d: Path) -> list[str]:
    path = _model(d / "ext.nir")
    with h5py.File(path, "a") as f:
        del f[WEIGHT]
        f.create_dataset(WEIGHT, shape=(2, 3), dtype="<f8", external=[("/dev/zero", 0, 48)])
    return ["compile", str(path), "--dt", "1e-3", "-o", str(d / "out.ndp")]


def _huge_weight(d: Path) -> list[str]:
    path = _model(d / "big.nir")
    with h5py.File(path, "a") as f:  # 40k x 40k, compressed and never written: a few KB on disk
        del f[WEIGHT]
        f.create_dataset(WEIGHT, shape=(40000, 40000), dtype="<f8", chunks=(1000, 1000), compression="gzip")
    return ["compile", str(path), "--dt", "1e-3", "-o", str(d / "out.ndp")]


def _conv(d: Path, side: int) -> list[str]:
    conv = nir.Conv2d(input_shape=(side, side), weight=np.ones((2, 1, 3, 3)), stride=1, padding=1, dilation=1,
                      groups=1, bias=np.zeros(2))  # fmt: skip
    nodes = {
        "input": nir.Input(np.array([1, side, side])),
        "conv": conv,
        "output": nir.Output(np.array([2, side, side])),
    }
    path = d / "conv.nir"
    nir.write(str(path), nir.NIRGraph(nodes, [("input", "conv"), ("conv", "output")]))
    return ["compile", str(path), "--dt", "1e-3", "-o", str(d / "out.ndp")]


def _artifact(d: Path) -> Path:
    art = d / "m.ndp"
    done = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "compile", str(_model(d / "m.nir")), "--dt", "1e-3",
                           "-o", str(art)], capture_output=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return art


def _billion_neurons(d: Path) -> list[str]:
    from neurodeploy.compiler import artifact

    art = _artifact(d)
    with h5py.File(art, "a") as f:
        group = next(g for g in f["core/populations"].values() if int(g.attrs["size"]) == 2)
        group.attrs["size"] = 10**9
        f.attrs["checksum"] = artifact._digest(f)
    return ["inspect", str(art)]


def _npy_header(d: Path) -> list[str]:
    spikes = d / "s.npy"
    with spikes.open("wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "|b1", "fortran_order": False, "shape": (10**12, 1, 3)})
    return ["run", str(_artifact(d)), "-i", str(spikes), "-o", str(d / "out.npz")]


def _npz_bomb(d: Path) -> list[str]:
    bomb = d / "bomb.npz"
    np.savez_compressed(bomb, input=np.zeros((1 << 20, 1, 3), dtype=bool))  # 3 MiB in a few KB ...
    return ["run", str(_artifact(d)), "-i", str(bomb), "-o", str(d / "out.npz")]  # ... with a 1 MiB limit below


def _run_too_big(d: Path) -> list[str]:
    spikes = d / "long.npz"  # 90 MB of spikes in about 100 KB: under the input limit, but its run is not
    np.savez_compressed(spikes, input=np.zeros((3 * 10**7, 1, 3), dtype=bool))
    return ["run", str(_artifact(d)), "-i", str(spikes), "-o", str(d / "out.npz")]


def _profile_device(d: Path) -> list[str]:
    return ["profiles", "show", "/dev/zero"]


PROBES: dict[str, tuple[Callable[[Path], list[str]], str, dict[str, str]]] = {
    "HDF5 external storage into /dev/zero": (_external_storage, "keeps its data in another file", {}),
    "compressed 40k x 40k weight": (_huge_weight, "declares 11.9 GiB", {}),
    "conv over 1 x 1e5 x 1e5": (lambda d: _conv(d, 100_000), "NEURODEPLOY_MAX_NEURONS", {}),
    "conv over 3k x 3k": (lambda d: _conv(d, 3000), "NEURODEPLOY_MAX_NEURONS", {}),
    ".ndp declaring 1e9 neurons": (_billion_neurons, "1,000,000,000 neurons", {}),
    ".npy header of 1e12 steps": (_npy_header, "declares", {}),
    ".npz decompression bomb": (_npz_bomb, "declares", {"NEURODEPLOY_MAX_INPUT_BYTES": "1M"}),
    "a run whose recordings would not fit": (
        _run_too_big,
        "the run would hold",
        {"NEURODEPLOY_MAX_INPUT_BYTES": "100M"},
    ),
    "profile path /dev/zero": (_profile_device, "regular file", {}),
}


# A small launcher forks the CLI under the limit and writes the CLI's own peak memory and CPU time
# (wait4) to a file. A child forked from the test process itself would count the test's memory too.
LAUNCHER = """
import json, os, resource, sys
report, limit, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
pid = os.fork()
if pid == 0:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.execv(argv[0], argv)
_, status, usage = os.wait4(pid, 0)
code = os.waitstatus_to_exitcode(status)
with open(report, "w") as fh:
    json.dump({"rc": code, "peak_mb": usage.ru_maxrss / 1024, "cpu_s": usage.ru_utime + usage.ru_stime}, fh)
sys.exit(code if code >= 0 else 128 - code)
"""


def _cli(argv: list[str], report: Path) -> list[str]:
    cli = [sys.executable, "-m", "neurodeploy.cli", *argv]
    return [sys.executable, "-c", LAUNCHER, str(report), str(ADDRESS_SPACE), *cli]


@pytest.mark.parametrize("probe", list(PROBES))
def test_each_probe_is_one_line_and_cheap(probe: str, tmp_path: Path) -> None:
    make, words, env = PROBES[probe]
    argv = make(tmp_path)
    before = {p.name for p in tmp_path.iterdir()}
    report = tmp_path.parent / f"{tmp_path.name}.usage.json"  # outside the folder checked for leftovers
    proc = subprocess.Popen(_cli(argv, report), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})  # fmt: skip
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, (proc.returncode, err)
    assert "Traceback" not in err and words in err and len(err.strip().splitlines()) == 1, err
    assert {p.name for p in tmp_path.iterdir()} == before  # nothing written, no temp left


def test_probes_stay_under_the_memory_and_time_budget(tmp_path: Path) -> None:
    """One CLI process per probe, measured with wait4 by its launcher: peak resident memory and CPU time."""
    rows = []
    for i, (probe, (make, _, env)) in enumerate(PROBES.items()):
        folder = tmp_path / f"p{i}"
        folder.mkdir()
        argv = make(folder)
        report = tmp_path / f"p{i}.json"
        subprocess.run(_cli(argv, report), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={**os.environ, **env}, timeout=120)  # fmt: skip
        used = json.loads(report.read_text())
        rows.append((probe, used["rc"], round(used["peak_mb"]), round(used["cpu_s"], 2)))
    print("\n".join(f"{p}: exit {rc}, peak {mb} MB, cpu {cpu} s" for p, rc, mb, cpu in rows))
    bad = [r for r in rows if r[1] != 2 or r[2] > PEAK_LIMIT_MB or r[3] > CPU_LIMIT_S]
    assert not bad, rows

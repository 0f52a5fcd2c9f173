"""Loihi 2 boards: find out what is attached and run a CoreNetwork on one through Lava.

Running on silicon needs Intel's proprietary lava-loihi (NxSDK) and a board reachable through SLURM
(the Intel Neuromorphic Research Cloud) or an Ethernet host (``NXSDKHOST``, Kapoho Point). Neither is
public, so this module mostly has to explain clearly why there is no board, instead of failing deep
inside Lava's compiler.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Mapping

import numpy as np

from neurodeploy.emulator.backends.lava import NC_COMPILER, run_lava
from neurodeploy.emulator.backends.lava_compat import ensure_lava_importable
from neurodeploy.emulator.network import CoreNetwork
from neurodeploy.emulator.simulate import SimulationOutput
from neurodeploy.errors import NeurodeployError

WHERE = "neurodeploy.emulator.backends.board"


def _spec_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def detect_boards() -> tuple[list[dict], str]:
    """Attached Loihi boards as dicts (name, partition, state, via), and the reason when there are none."""
    if not _spec_exists("lava"):
        return [], "lava-nc is not installed (run `make venv`)"
    try:
        ensure_lava_importable()
    except NeurodeployError as err:
        return [], str(err)
    if not _spec_exists(NC_COMPILER):
        return [], (
            f"Intel's proprietary lava-loihi package (NxSDK; module {NC_COMPILER}) is not installed; "
            "it is distributed only to Intel Neuromorphic Research Community members"
        )
    boards: list[dict] = []
    try:
        from lava.utils import slurm

        if slurm.is_available():
            boards += [
                {"name": b.nodename, "partition": b.partition, "state": b.state, "via": "slurm"}
                for b in slurm.get_boards()
            ]
    except OSError:  # no `sinfo` on PATH: lava's helper only catches SubprocessError
        pass
    host = os.environ.get("NXSDKHOST")
    if host:
        boards.append({"name": host, "partition": "", "state": "unknown", "via": "ethernet"})
    if not boards:
        return [], (
            "lava-loihi is installed but no board was found: no SLURM controller answers `sinfo` "
            "and NXSDKHOST is not set (see lava.utils.loihi.use_slurm_host / use_ethernet_host)"
        )
    return boards, ""


def list_boards() -> list[dict]:
    """Attached Loihi boards; [] when there are none (``detect_boards`` says why)."""
    return detect_boards()[0]


def run_board(
    net: CoreNetwork,
    inputs: Mapping[str, np.ndarray],
    steps: int | None = None,
    record: Iterable[str] = ("spikes",),
    populations: Iterable[str] | None = None,
    chunk: int | None = None,
) -> SimulationOutput:
    """Run ``net`` on a Loihi 2 board via ``run_lava(hardware=True)``, after checking one is there."""
    boards, why = detect_boards()
    if not boards:
        raise NeurodeployError("no Loihi board is available", where=WHERE, hint=why)
    return run_lava(net, inputs, steps, record=record, populations=populations, hardware=True, chunk=chunk)

"""Recorded spikes have one dtype on every profile and backend: uint8 counts per step.

Users compared runs across profiles and found bool on some (loihi2, ideal, dynapse2) and integer
counts on Xylo, whose hidden neurons fire several times a step. These tests pin the one dtype at every
place a user sees spikes: ``RunResult.spikes``, ``output()``, ``counts()`` and the CLI's ``out.npz``.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
from conftest import lif_graph, spikes
from test_cli import cli

import neurodeploy as nd
from neurodeploy.emulator import xylo
from neurodeploy.errors import NeurodeployError
from neurodeploy.runner import SPIKE_DTYPE, SPIKE_MAX, RunResult, spike_counts

ZERO_RESET = ("ideal", "loihi1", "loihi2", "dynapse2", "brainscales2", "spinnaker2")
PROFILES = (*ZERO_RESET, "xylo-audio2")
HAVE_LAVA = importlib.util.find_spec("lava") is not None


def unbiased_graph() -> nir.NIRGraph:
    """lif_graph without biases: DYNAP-SE2 shares one parameter set per core."""
    graph = lif_graph(hidden=12)
    for node in graph.nodes.values():
        if isinstance(node, nir.Affine):
            node.bias[:] = 0
    return graph


def xylo_graph(scale: float = 100.0) -> nir.NIRGraph:
    """16 -> 12 -> 4 CubaLIF at dt = 1 ms with subtractive reset; strong weights fire hidden neurons 31 times a step."""
    rng = np.random.default_rng(0)
    nodes: list = []
    for n_in, n_out in ((16, 12), (12, 4)):
        ones = np.ones(n_out)
        nodes.append(nir.Linear(weight=rng.normal(0, scale / np.sqrt(n_in), (n_out, n_in))))
        nodes.append(nir.CubaLIF(tau_syn=2e-3 * ones, tau_mem=2e-3 * ones, r=ones, v_leak=0 * ones,
                                 v_threshold=ones, w_in=ones))  # fmt: skip
    graph = nir.NIRGraph.from_list(*nodes)
    graph.metadata.update({"neurodeploy.dt": 1e-3, "neurodeploy.reset": "subtract"})
    return graph


def compiled_and_inputs(profile: str) -> tuple[object, np.ndarray]:
    """A tiny network each profile accepts, compiled, and 0/1 input spikes for it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if profile.startswith("xylo"):
            return nd.compile(xylo_graph(), profile), np.random.default_rng(0).random((30, 4, 16)) < 0.5
        return nd.compile(unbiased_graph(), profile), spikes(steps=30, batch=4)


@pytest.fixture(scope="module")
def runs() -> dict[str, RunResult]:
    out = {}
    for profile in PROFILES:
        compiled, x = compiled_and_inputs(profile)
        out[profile] = nd.run(compiled, x, record=("spikes", "v"))
    return out


def test_every_profile_records_uint8_spike_counts(runs: dict[str, RunResult]) -> None:
    dtypes = {(p, n): a.dtype for p, r in runs.items() for n, a in r.spikes.items()}
    assert set(dtypes.values()) == {np.dtype(np.uint8)} == {SPIKE_DTYPE}, dtypes
    for profile, result in runs.items():
        assert result.output().dtype == np.uint8, profile
        assert result.counts().dtype == np.int64, profile
        assert np.array_equal(result.counts(), result.output().astype(np.int64).sum(axis=0)), profile
        assert result.predictions().shape == (4,), profile
        for name, v in result.v.items():  # membrane recordings keep their own (wider) dtype
            assert v.dtype in (np.int64, np.float64), (profile, name, v.dtype)


def test_xylo_multi_spikes_fit_uint8_and_sum_without_wrapping(runs: dict[str, RunResult]) -> None:
    assert max(xylo.MAX_HIDDEN_SPIKES, xylo.MAX_INPUT_SPIKES, xylo.MAX_OUTPUT_SPIKES) <= SPIKE_MAX
    result = runs["xylo-audio2"]
    hidden = result.spikes["cubalif"]
    assert hidden.max() == xylo.MAX_HIDDEN_SPIKES  # the chip's per-step limit is reached and held exactly
    total = result.counts("cubalif")
    assert total.dtype == np.int64 and total.max() > SPIKE_MAX  # totals over time exceed uint8, yet do not wrap
    assert np.array_equal(total, hidden.astype(np.int64).sum(axis=0))


def test_counts_compare_across_profiles_without_underflow(runs: dict[str, RunResult]) -> None:
    ideal, chip = runs["ideal"], runs["loihi2"]
    diff = chip.counts() - ideal.counts()  # int64: a chip with fewer spikes gives negative differences
    assert diff.dtype == np.int64 and np.abs(diff).max() < 30 * 4
    out = ideal.output()
    silent = np.logical_not(out)  # the logical mask; ``~`` on uint8 would flip bits (255, 254)
    assert silent.dtype == bool and np.array_equal(silent, out == 0)
    assert 0.0 <= float(np.mean(chip.output() != ideal.output())) <= 1.0


def test_spike_counts_views_bool_casts_counts_and_refuses_what_does_not_fit() -> None:
    trains = np.random.default_rng(2).random((5, 2, 3)) < 0.5
    viewed = spike_counts(trains[1:])  # an aligned (sliced) recording: viewed, not copied
    assert viewed.dtype == np.uint8 and np.shares_memory(viewed, trains)
    assert np.array_equal(viewed, trains[1:])
    counts = np.array([[0, 3, 31]], dtype=np.int64)
    assert spike_counts(counts).dtype == np.uint8 and spike_counts(counts).tolist() == [[0, 3, 31]]
    assert spike_counts(np.array([1.0, 0.0])).dtype == np.uint8
    for bad in (np.array([-1]), np.array([SPIKE_MAX + 1]), np.array([0.5]), np.array([np.nan]), np.array(["1"])):
        with pytest.raises(NeurodeployError, match="counts from 0 to 255"):
            spike_counts(bad)
    recorded = RunResult(spikes={"out": trains}, outputs=["out"])  # e.g. an out.npz written before uint8
    assert recorded.output().dtype == np.uint8 and recorded.counts().dtype == np.int64


@pytest.mark.lava
@pytest.mark.skipif(not HAVE_LAVA, reason="lava-nc is not installed (make venv)")
def test_lava_backend_records_the_same_dtype() -> None:
    compiled, x = compiled_and_inputs("loihi2")
    lava = nd.run(compiled, x, backend="lava")
    emu = nd.run(compiled, x)
    assert {a.dtype for a in lava.spikes.values()} == {np.dtype(np.uint8)}
    for name, arr in emu.spikes.items():
        assert np.array_equal(lava.spikes[name], arr), name


@pytest.mark.parametrize("profile", ["loihi2", "xylo-audio2"])
def test_cli_out_npz_holds_uint8_spikes(profile: str, tmp_path: Path) -> None:
    model, inputs, artifact, out = (tmp_path / f for f in ("m.nir", "x.npy", "m.ndp", "out.npz"))
    graph = xylo_graph() if profile.startswith("xylo") else unbiased_graph()
    nir.write(str(model), graph)
    _, x = compiled_and_inputs(profile)
    np.save(inputs, x)
    assert cli("compile", str(model), "--profile", profile, "-o", str(artifact)).returncode == 0
    ran = cli("run", str(artifact), "-i", str(inputs), "-o", str(out), "--record", "spikes,v", "--json")
    assert ran.returncode == 0, ran.stderr
    with np.load(out) as data:
        spike_keys = [k for k in data.files if k.startswith("spikes/")]
        assert spike_keys and {data[k].dtype for k in spike_keys} == {np.dtype(np.uint8)}
        assert all(data[k].dtype != np.uint8 for k in data.files if k.startswith("v/"))
        total = sum(int(data[k].sum(dtype=np.int64)) for k in spike_keys)
    assert sum(json.loads(ran.stdout)["spike_counts"].values()) == total

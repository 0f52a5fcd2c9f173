"""Calibration: a nominal chip is left alone, trims stay on the stated grid, and trimming each neuron's
threshold to its nominal probe response recovers most of the accuracy lost to threshold and weight-gain
mismatch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
from conftest import lif_graph, spikes

import neurodeploy as nd
from neurodeploy.calibration import DEFAULT_TRIM_BITS, DEFAULT_TRIM_RANGE, calibrate, trim_resolution
from neurodeploy.emulator.mismatch import sample
from neurodeploy.runner import run_core
from neurodeploy.variability import variability

ZERO = {"tau_mem": 0.0, "tau_syn": 0.0, "v_threshold": 0.0, "weight": 0.0}
# DYNAP-SE2-like: threshold sigma 0.1 per neuron, weight-current sigma 0.1 as a per-neuron gain
MISMATCH = {"tau_mem": 0.0, "tau_syn": 0.0, "v_threshold": 0.1, "weight@synapse": 0.0, "weight@neuron": 0.1}


@pytest.fixture(scope="module")
def dyn():
    graph = lif_graph(hidden=60)
    for node in graph.nodes.values():
        if isinstance(node, nir.Affine):
            node.bias[:] = 0
    compiled = nd.compile(graph, "dynapse2")
    x = spikes(batch=100, seed=5)
    return compiled, x, nd.run(compiled, x).predictions()


def test_sigma_zero_changes_nothing(dyn):
    compiled, x, _ = dyn
    net = sample(compiled, instances=4, seed=0, sigma=ZERO)
    cal, report = calibrate(compiled, net)
    for pop, orig in zip(cal.populations, net.populations, strict=True):
        for key, value in orig.params.items():
            np.testing.assert_array_equal(pop.params[key], value)
    assert all(np.all(s == 0) for s in report["steps"].values())
    np.testing.assert_array_equal(run_core(cal, x).output(), run_core(net, x).output())


def test_trims_stay_within_the_stated_resolution(dyn):
    compiled, _, _ = dyn
    assert trim_resolution(compiled.profile) == (DEFAULT_TRIM_BITS, DEFAULT_TRIM_RANGE)
    net = sample(compiled, instances=8, seed=1, sigma=MISMATCH)
    cal, report = calibrate(compiled, net)
    half = 2 ** (DEFAULT_TRIM_BITS - 1)
    step = 2 * DEFAULT_TRIM_RANGE / 2**DEFAULT_TRIM_BITS
    for name, steps in report["steps"].items():
        assert steps.dtype.kind == "i" and steps.min() >= -half and steps.max() <= half - 1
        factor = cal.population(name).params["v_th"] / net.population(name).params["v_th"]
        np.testing.assert_allclose(factor[:, 0], 1 + step * steps)
        assert np.all(np.abs(factor - 1) <= DEFAULT_TRIM_RANGE)
        np.testing.assert_array_equal(cal.population(name).params["bias_v"], net.population(name).params["bias_v"])
        assert report["populations"][name]["count_error_after"] < report["populations"][name]["count_error_before"]


def test_recovers_at_least_half_of_the_accuracy_gap(dyn):
    compiled, x, labels = dyn
    result = variability(compiled, x, labels, instances=16, seed=0, sigma=MISMATCH, calibrate=True)
    cal = result.calibration
    assert result.nominal_accuracy == 1.0 and cal["gap_before"] > 0.05
    assert cal["recovered"] >= 0.5, cal
    assert cal["mean"] > result.mean and len(cal["accuracy"]) == 16


def test_cli_variability_calibrate(dyn, tmp_path: Path):
    compiled, x, labels = dyn
    np.save(tmp_path / "x.npy", x[:, :20])
    np.save(tmp_path / "y.npy", labels[:20])
    args = [sys.executable, "-m", "neurodeploy.cli", "variability", str(compiled.save(tmp_path / "m.ndp"))]
    args += ["--inputs", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--instances", "4"]
    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([*args, "--calibrate", "--json"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    cal = json.loads(done.stdout)["calibration"]
    assert len(cal["accuracy"]) == 4 and cal["trim"]["trim_bits"] == DEFAULT_TRIM_BITS and "steps" not in cal["trim"]

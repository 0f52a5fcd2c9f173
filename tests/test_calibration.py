"""Calibration: a nominal chip is left alone, threshold and bias trims stay on the stated grids, and
trimming each neuron to its nominal probe responses recovers most of the accuracy lost to threshold and
weight-gain mismatch, also with temporal noise on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import lif_graph, spikes

import neurodeploy as nd
from neurodeploy.calibration import (
    DEFAULT_TRIM_BITS,
    DEFAULT_TRIM_RANGE,
    bias_trim_resolution,
    calibrate,
    trim_resolution,
)
from neurodeploy.emulator.mismatch import sample
from neurodeploy.errors import NeurodeployError, ProfileError
from neurodeploy.runner import run_core
from neurodeploy.studies.variability import variability

ZERO = {"tau_mem": 0.0, "tau_syn": 0.0, "v_threshold": 0.0, "weight": 0.0}
# DYNAP-SE2-like: threshold sigma 0.1 per neuron, weight-current sigma 0.1 as a per-neuron gain
MISMATCH = {"tau_mem": 0.0, "tau_syn": 0.0, "v_threshold": 0.1, "weight@synapse": 0.0, "weight@neuron": 0.1}


@pytest.fixture(scope="module")
def dyn():
    graph = lif_graph(hidden=60, bias=False)
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
    bias_bits, bias_span = bias_trim_resolution(compiled.profile)
    bias_step = 2 * bias_span / 2**bias_bits
    for name, steps in report["steps"].items():
        assert steps.dtype.kind == "i" and steps.min() >= -half and steps.max() <= half - 1
        factor = cal.population(name).params["v_th"] / net.population(name).params["v_th"]
        np.testing.assert_allclose(factor[:, 0], 1 + step * steps)
        assert np.all(np.abs(factor - 1) <= DEFAULT_TRIM_RANGE)
        codes = report["bias_steps"][name]
        assert codes.dtype.kind == "i" and codes.min() >= -(2 ** (bias_bits - 1)) and codes.max() < 2 ** (bias_bits - 1)
        unit = np.abs(compiled.core.population(name).params["v_th"])
        offset = cal.population(name).params["bias_v"] - net.population(name).params["bias_v"]
        np.testing.assert_allclose(offset[:, 0], bias_step * codes * unit, atol=1e-12)
        assert np.all(np.abs(offset) <= bias_span * unit + 1e-12)
        stats = report["populations"][name]
        assert stats["count_error_after"] < stats["count_error_before"]
        assert stats["curve_error_after"] < stats["curve_error_before"]
    assert any(np.any(codes != 0) for codes in report["bias_steps"].values())  # the bias knob is used
    before, after = report["instances"]["curve_error_before"], report["instances"]["curve_error_after"]
    assert len(before) == len(after) == 8 and all(a < b for a, b in zip(after, before, strict=True))


def test_threshold_only_leaves_the_bias_alone(dyn):
    compiled, _, _ = dyn
    net = sample(compiled, instances=4, seed=2, sigma=MISMATCH)
    cal, report = calibrate(compiled, net, knobs=("v_th",))
    assert report["trimmed"] == ["v_th"] and report["untrimmed"] == ["bias_v"]
    for name in report["steps"]:
        np.testing.assert_array_equal(cal.population(name).params["bias_v"], net.population(name).params["bias_v"])
        assert np.all(report["bias_steps"][name] == 0)
    with pytest.raises(NeurodeployError, match="knobs"):
        calibrate(compiled, net, knobs=("bias_v",))


def test_trim_resolution_comes_from_the_profile(tmp_path: Path):
    header = 'schema_version = 1\nname = "t"\ntitle = "T"\nkind = "analog"\ncore_model = "float"\n'
    header += '[sources]\ns = "ref"\n[numerics]\n'
    path = tmp_path / "trims.toml"
    path.write_text(
        header
        + 'trim_bits = { value = 6, source = "s" }\ntrim_range = { value = 0.25, source = "s" }\n'
        + 'bias_trim_bits = { value = 5, source = "s" }\nbias_trim_range = { value = 0.1, source = "s" }\n'
    )
    prof = nd.profiles.get(str(path))
    assert trim_resolution(prof) == (6, 0.25) and bias_trim_resolution(prof) == (5, 0.1)
    assert bias_trim_resolution(nd.profiles.get("dynapse2")) == (8, 0.25)
    path.write_text(header + 'trim_range = { value = 1.5, source = "s" }\n')
    with pytest.raises(ProfileError, match="trim_range"):
        nd.profiles.get(str(path))


def test_recovers_at_least_half_of_the_accuracy_gap(dyn):
    compiled, x, labels = dyn
    result = variability(compiled, x, labels, instances=16, seed=0, sigma=MISMATCH, calibrate=True)
    cal = result.calibration
    assert result.nominal_accuracy == 1.0 and cal["gap_before"] > 0.05
    assert cal["recovered"] >= 0.5, cal
    assert cal["mean"] > result.mean and len(cal["accuracy"]) == 16


def test_calibration_improves_accuracy_with_temporal_noise_on(dyn):
    compiled, x, labels = dyn
    noisy = {**MISMATCH, "v_noise": 0.02}
    result = variability(compiled, x, labels, instances=8, seed=3, sigma=noisy, calibrate=True)
    assert result.spec["v_noise"][0]["sigma"] == 0.02
    assert result.calibration["mean"] > result.mean


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
    np.save(tmp_path / "probe.npy", x[:, 20:40])
    probed = subprocess.run([*args, "--calibrate", "--probe", str(tmp_path / "probe.npy"), "--json"],
                            capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert probed.returncode == 0, probed.stderr
    assert len(json.loads(probed.stdout)["calibration"]["accuracy"]) == 4
    lonely = subprocess.run([*args, "--probe", str(tmp_path / "probe.npy")], capture_output=True, text=True,
                            timeout=120, env=env)  # fmt: skip
    assert lonely.returncode == 2 and "--calibrate" in lonely.stderr + lonely.stdout
    assert "Traceback" not in lonely.stderr

"""Device variability: mismatch sampling is exact at sigma 0, reproducible per instance, scoped as the
profile says, and visible as an accuracy spread on an analog profile."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
from conftest import lif_graph, spikes

import neurodeploy as nd
from neurodeploy.emulator.floatcore import FloatCubaState
from neurodeploy.emulator.mismatch import core_map, sample
from neurodeploy.errors import NeurodeployError
from neurodeploy.runner import run_core
from neurodeploy.studies.variability import reproduce_instance, variability

ZERO = {"tau_mem": 0.0, "tau_syn": 0.0, "v_threshold": 0.0, "weight": 0.0}


def small_graph(hidden: int = 60) -> nir.NIRGraph:
    """lif_graph without biases: DYNAP-SE2 shares neuron parameters per core, so one set per layer."""
    graph = lif_graph(hidden=hidden)
    for node in graph.nodes.values():
        if isinstance(node, nir.Affine):
            node.bias[:] = 0
    return graph


@pytest.fixture(scope="module")
def dyn():
    compiled = nd.compile(small_graph(), "dynapse2")
    x = spikes(batch=50)
    return compiled, x, nd.run(compiled, x).predictions()


def test_sigma_zero_gives_the_nominal_spikes_exactly(dyn):
    compiled, x, _ = dyn
    nominal = nd.run(compiled, x)
    batch = run_core(sample(compiled, instances=4, seed=3, sigma=ZERO), x)
    for name, expected in nominal.spikes.items():
        got = batch.spikes[name]
        assert got.shape == (expected.shape[0], 4, *expected.shape[1:])
        for k in range(4):
            np.testing.assert_array_equal(got[:, k], expected)


def test_digital_profile_without_mismatch_is_nominal_and_user_sigmas_round_to_its_registers():
    compiled = nd.compile(small_graph(), "loihi2")
    net = sample(compiled, instances=2, seed=0)
    for pop, orig in zip(net.populations, compiled.core.populations, strict=True):
        for key, value in orig.params.items():
            np.testing.assert_array_equal(pop.params[key][1, 0], value)
    sigma = {"weight": 0.1, "v_threshold": 0.2, "tau_mem": 0.1, "tau_syn": 0.1}
    net = sample(compiled, instances=6, seed=0, sigma=sigma)
    alone = sample(compiled, instances=1, seed=0, sigma=sigma, first=4)
    for pop, orig, one in zip(net.populations[1:], compiled.core.populations[1:], alone.populations[1:], strict=True):
        vth = pop.params["vth"]
        assert vth.dtype == np.int64 and vth.shape == (6, 1, pop.size) and vth.min() >= 0
        assert not np.all(vth == np.asarray(orig.params["vth"]))  # really perturbed
        assert pop.params["dv"].max() <= 4095 and pop.params["du"].max() <= 4095
        for key in pop.params:
            np.testing.assert_array_equal(pop.params[key][4], one.params[key][0])
    for pr in net.projections:
        step = 2 ** (8 - pr.num_weight_bits + (pr.sign_mode == "mixed"))
        assert pr.weight.shape[0] == 6 and np.all(pr.weight % step == 0)
        assert pr.weight.min() >= -256 and pr.weight.max() <= 255
    x = np.random.default_rng(0).random((30, 8, compiled.core.populations[0].size)) < 0.3
    out = run_core(net, x)  # the integer emulator runs the perturbed registers
    assert out.spikes[compiled.core.outputs[0]].shape[1] == 6


def test_same_seed_same_result_and_instance_k_alone_equals_the_batch(dyn):
    compiled, x, labels = dyn
    a = variability(compiled, x, labels, instances=16, seed=7)
    b = variability(compiled, x, labels, instances=16, seed=7)
    assert a.accuracy == b.accuracy
    assert variability(compiled, x, labels, instances=16, seed=8).accuracy != a.accuracy
    batch = sample(compiled, instances=16, seed=7)
    alone = sample(compiled, instances=1, seed=7, first=11)
    for pb, pa in zip(batch.populations, alone.populations, strict=True):
        for key in pb.params:
            np.testing.assert_array_equal(pb.params[key][11], pa.params[key][0])
    for rb, ra in zip(batch.projections, alone.projections, strict=True):
        np.testing.assert_array_equal(rb.weight[11], ra.weight[0])
    k = a.worst_instance
    net = reproduce_instance(compiled, k, seed=7)
    assert np.mean(run_core(net, x).predictions() == labels) == pytest.approx(a.accuracy[k])


NOISE = {**ZERO, "v_noise": 0.05}


def test_temporal_noise_sigma_zero_is_nominal_and_draws_nothing(dyn):
    compiled, x, _ = dyn
    nominal = nd.run(compiled, x)
    net = sample(compiled, instances=3, seed=4, sigma={**ZERO, "v_noise": 0.0})
    assert all("v_noise" not in p.params and "noise_stream" not in p.params for p in net.populations)
    got = run_core(net, x)
    for name, expected in nominal.spikes.items():
        for k in range(3):
            np.testing.assert_array_equal(got.spikes[name][:, k], expected)


def test_temporal_noise_is_reproducible_and_instance_k_alone_equals_the_batch(dyn):
    compiled, x, _ = dyn
    batch = run_core(sample(compiled, instances=6, seed=5, sigma=NOISE), x)
    again = run_core(sample(compiled, instances=6, seed=5, sigma=NOISE), x)
    other = run_core(sample(compiled, instances=6, seed=6, sigma=NOISE), x)
    quiet = run_core(sample(compiled, instances=6, seed=5, sigma=ZERO), x)
    alone = run_core(sample(compiled, instances=2, seed=5, sigma=NOISE, first=3), x)
    single = run_core(reproduce_instance(compiled, 4, seed=5, sigma=NOISE), x)
    hidden = [p.name for p in compiled.core.populations if p.name not in compiled.core.inputs]
    for name in hidden:
        np.testing.assert_array_equal(batch.spikes[name], again.spikes[name])
        np.testing.assert_array_equal(batch.spikes[name][:, 3:5], alone.spikes[name])
        np.testing.assert_array_equal(batch.spikes[name][:, 4], single.spikes[name])
    first = hidden[0]
    assert np.any(batch.spikes[first] != quiet.spikes[first])  # the noise reaches the spikes
    assert np.any(batch.spikes[first] != other.spikes[first])  # and depends on the seed
    # instances and populations draw from different streams
    assert np.any(batch.spikes[first][:, 0] != batch.spikes[first][:, 1])
    net = sample(compiled, instances=2, seed=5, sigma=NOISE)
    streams = {tuple(p.params["noise_stream"][0, 0]) for p in net.populations if "noise_stream" in p.params}
    assert len(streams) == len(hidden)


def test_temporal_noise_scale_and_refusals(dyn):
    compiled, _, _ = dyn
    prof = dataclasses.replace(
        compiled.profile,
        mismatch={"v_noise": {"sigma": 0.03, "distribution": "normal", "scope": "neuron"}},
    )
    net = sample(compiled.core, prof, instances=2, seed=0)
    for pop, orig in zip(net.populations[1:], compiled.core.populations[1:], strict=True):
        np.testing.assert_allclose(pop.params["v_noise"][:, 0], 0.03 * np.abs(orig.params["v_th"]) * np.ones((2, 1)))
        np.testing.assert_array_equal(pop.params["v_th"][:, 0], np.broadcast_to(orig.params["v_th"], (2, pop.size)))
    with pytest.raises(NeurodeployError, match="per neuron and step"):
        sample(compiled, instances=2, seed=0, sigma={"v_noise@core": 0.1})
    with pytest.raises(NeurodeployError, match="float cores only"):
        sample(nd.compile(small_graph(), "loihi2"), instances=2, seed=0, sigma={"v_noise": 0.1})
    params = {"du": 1.0, "dv": 0.1, "v_th": 1.0, "v_noise": np.full((2, 1, 4), 0.1)}
    with pytest.raises(NeurodeployError, match="noise_stream is missing"):
        FloatCubaState((2, 5, 4), params, "zero", True)
    params["noise_stream"] = np.zeros((3, 1, 3), dtype=np.int64)  # 3 streams for 2 instances
    with pytest.raises(NeurodeployError, match="do not broadcast"):
        FloatCubaState((2, 5, 4), params, "zero", True)


def test_core_scope_is_shared_within_a_core_and_differs_across_cores(dyn):
    compiled, _, _ = dyn
    prof = dataclasses.replace(
        compiled.profile, mismatch={"v_threshold": {"sigma": 0.2, "distribution": "normal", "scope": "core"}}
    )
    blocks = [dataclasses.replace(b) for b in compiled.placement.blocks]
    for b in blocks:  # split the hidden layer over cores 0 and 1, the output layer on core 2
        if b.population == "lif":
            b.stop = 30
    blocks.append(dataclasses.replace(blocks[0], start=30, stop=60, core=1))
    for b in blocks:
        if b.population == "lif_1":
            b.core = 2
    placement = dataclasses.replace(compiled.placement, blocks=blocks)
    assert core_map(compiled.core, placement)["lif"].tolist() == [0] * 30 + [1] * 30
    net = sample(compiled.core, prof, instances=8, seed=1, placement=placement)
    hidden = net.population("lif").params["v_th"][:, 0]
    out = net.population("lif_1").params["v_th"][:, 0]
    assert np.all(hidden[:, :30] == hidden[:, :1]) and np.all(hidden[:, 30:] == hidden[:, 30:31])
    assert np.all(hidden[:, 0] != hidden[:, 30]) and np.all(out[:, 0] != hidden[:, 0])
    assert np.std(hidden[:, 0]) > 0  # and it varies from chip to chip
    # a neuron-level part on top of the core draw makes neurons of one core differ
    both = sample(compiled.core, prof, instances=2, seed=1, placement=placement, sigma={"v_threshold@neuron": 0.05})
    assert len(np.unique(both.population("lif").params["v_th"][0, 0, :30])) == 30


def test_dynapse2_shows_an_accuracy_spread_at_the_profile_sigma(dyn):
    compiled, x, labels = dyn
    result = variability(compiled, x, labels, instances=32, seed=0, sweep=[0, 1])
    assert result.nominal_accuracy == 1.0
    assert result.std > 0 and result.worst < 1.0
    assert result.sweep[0]["mean"] == 1.0 and result.sweep[1]["mean"] == pytest.approx(result.mean)
    data = json.loads(json.dumps(result.to_dict()))
    assert set(data["quantiles"]) == {"q05", "q25", "q50", "q75", "q95"}
    assert data["rates"]["lif"]["std"] > 0


CLI = [sys.executable, "-m", "neurodeploy.cli"]


def test_cli_variability(dyn, tmp_path: Path):
    compiled, x, labels = dyn
    model = compiled.save(tmp_path / "m.ndp")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", labels)
    args = [
        *CLI,
        "variability",
        str(model),
        "--inputs",
        str(tmp_path / "x.npy"),
        "--labels",
        str(tmp_path / "y.npy"),
        "--instances",
        "8",
        "--seed",
        "2",
    ]
    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [*args, "--sigma", "weight=0.2", "--json", "-o", str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["instances"] == 8 and len(data["accuracy"]) == 8
    assert data["spec"]["weight"][0]["sigma"] == 0.2
    assert json.loads((tmp_path / "r.json").read_text()) == data
    bad = subprocess.run(
        [*args, "--sigma", "weight=lots", "-o", str(tmp_path / "bad.json")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "--sigma" in bad.stderr
    assert not (tmp_path / "bad.json").exists()


def test_cli_variability_help_has_an_example():
    done = subprocess.run(
        [*CLI, "variability", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0 and "Example" in done.stdout


def test_a_profile_without_mismatch_says_every_instance_is_identical():
    compiled = nd.compile(small_graph(), "loihi2")
    x = spikes(steps=10, batch=4, n=compiled.core.population(compiled.core.inputs[0]).size)
    with pytest.warns(UserWarning, match=r"all 3 instances are identical.*--sigma v_threshold="):
        variability(compiled, x, np.zeros(4, dtype=int), instances=3)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a sigma: no such warning
        variability(compiled, x, np.zeros(4, dtype=int), instances=3, sigma={"v_threshold": 0.05})

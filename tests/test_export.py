"""``export_nir``: the compiled network back to NIR carries the chip's values, and runs like the chip.

The oracle is the chip emulator itself: the exported graph, compiled for ``ideal``, must hold exactly
the chip's dequantized parameters, and its spikes must match the chip's up to the state rounding the
float graph does not do (``neurodeploy.export``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
from conftest import DT, lif_graph, spikes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurodeploy as nd
from neurodeploy.errors import NeurodeployError
from neurodeploy.export import _float_params, chip_weights, export_nir


def _roundtrip(compiled: object, tmp_path: Path) -> object:
    """Export, write and read the file back (what a user's tool sees), compile it for ideal."""
    path = tmp_path / "chip.nir"
    nir.write(str(path), export_nir(compiled))
    return nd.compile(nd.load_nir(path), "ideal")


def _assert_same_parameters(compiled: object, ideal: object) -> None:
    """The ideal compile of the export holds the chip's values: decays, thresholds, biases, weights."""
    for pop in compiled.core.populations:
        if pop.model == "input":
            continue
        want = _float_params(compiled, pop)
        got = ideal.core.population(pop.name).params
        for key in ("du", "dv", "v_th"):
            np.testing.assert_allclose(got[key], want[key], rtol=1e-12, err_msg=f"{pop.name}.{key}")
        got_u, got_v = np.asarray(got["bias_u"]), np.asarray(got["bias_v"])
        if np.all(want["du"] == 1):  # u holds one step's input: a bias on u or on v is the same
            got_u, got_v, want_u, want_v = 0.0, got_u + got_v, 0.0, want["bias_u"] + want["bias_v"]
        else:
            want_u, want_v = want["bias_u"], want["bias_v"]
        np.testing.assert_allclose(got_u, want_u, rtol=1e-9, atol=1e-12, err_msg=f"{pop.name}.bias_u")
        np.testing.assert_allclose(got_v, want_v, rtol=1e-9, atol=1e-12, err_msg=f"{pop.name}.bias_v")
    ideal_projections = {p.name: p for p in ideal.core.projections}
    for pr in compiled.core.projections:
        match = [p for p in ideal_projections.values() if p.src == pr.src and p.dst == pr.dst]
        assert len(match) == 1, pr.name
        got = match[0].weight.toarray() if hasattr(match[0].weight, "toarray") else match[0].weight
        np.testing.assert_allclose(got, chip_weights(compiled, pr), rtol=1e-12, atol=1e-15, err_msg=pr.name)


def _mismatch(a: object, b: object) -> dict[str, float]:
    return {n: float(np.mean(a.spikes[n] != b.spikes[n])) for n in a.spikes}


def test_demo_network_exported_runs_like_the_chip(tmp_path: Path):
    """The demo's trained snnTorch network on loihi2: export, reload, run on ideal, compare spikes."""
    pytest.importorskip("snntorch")
    from neurodeploy.datasets import yin_yang_splits
    from neurodeploy.training import train_yinyang_snntorch

    trained = train_yinyang_snntorch(epochs=2, seed=0, n_train=500)
    x_test, _ = yin_yang_splits()["test"]
    inputs = trained.encode(x_test)
    graph = nd.from_torch(trained.module, inputs[:, 0], framework="snntorch")
    compiled = nd.compile(graph, "loihi2")
    ideal = _roundtrip(compiled, tmp_path)
    _assert_same_parameters(compiled, ideal)
    chip, exported = nd.run(compiled, inputs), nd.run(ideal, inputs)
    mismatch = _mismatch(chip, exported)
    # The stated figure (docs/concepts/export.md): the float graph skips the chip's truncation of decayed
    # state, so a spike may move by a step; on this network under 0.1 % of spikes differ.
    assert max(mismatch.values()) < 1e-3, mismatch
    assert np.mean(chip.predictions() == exported.predictions()) >= 0.995


@st.composite
def _networks(draw: st.DrawFn) -> tuple[nir.NIRGraph, int, str]:
    """Input -> Affine -> (LIF | CubaLIF | IF) -> Affine -> (LIF | CubaLIF | LI), with biases."""
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    n_in, hidden, n_out = draw(st.integers(1, 6)), draw(st.integers(1, 12)), draw(st.integers(1, 4))

    def neuron(kind: str, n: int) -> nir.NIRNode:
        tau = DT * rng.uniform(1.5, 40, n)
        th = rng.uniform(0.5, 2.0, n)
        if kind == "lif":
            return nir.LIF(tau=tau, r=tau / DT, v_leak=np.zeros(n), v_threshold=th)
        if kind == "cuba":
            return nir.CubaLIF(
                tau_syn=DT * rng.uniform(1.5, 10, n), tau_mem=tau, r=tau / DT, v_leak=np.zeros(n),
                v_threshold=th, w_in=np.ones(n),
            )  # fmt: skip
        if kind == "if":
            return nir.IF(r=np.ones(n), v_threshold=th)
        return nir.LI(tau=tau, r=tau / DT, v_leak=np.zeros(n))

    hidden_kind = draw(st.sampled_from(["lif", "cuba", "if"]))
    profile = draw(st.sampled_from(["loihi2", "loihi1", "ideal", "spinnaker2"]))
    out_kinds = ["lif", "cuba"] + ([] if profile.startswith("loihi") else ["li"])  # Loihi cores: no LI neurons
    out_kind = draw(st.sampled_from(out_kinds))
    graph = nir.NIRGraph.from_list(
        nir.Input(np.array([n_in])),
        nir.Affine(weight=rng.normal(0, 0.8, (hidden, n_in)), bias=rng.normal(0, 0.05, hidden)),
        neuron(hidden_kind, hidden),
        nir.Affine(weight=rng.normal(0, 0.5, (n_out, hidden)), bias=rng.normal(0, 0.05, n_out)),
        neuron(out_kind, n_out),
        nir.Output(np.array([n_out])),
    )
    graph.metadata.update({"neurodeploy.dt": DT, "neurodeploy.reset": "zero"})
    return graph, n_in, profile


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(net=_networks())
def test_export_holds_the_chip_values(tmp_path: Path, net: tuple[nir.NIRGraph, int, str]):
    """Any neuron model and bias, any profile with a NIR-expressible core: the values survive exactly."""
    graph, n_in, profile = net
    compiled = nd.compile(graph, profile, strict=False)
    ideal = _roundtrip(compiled, tmp_path)
    _assert_same_parameters(compiled, ideal)
    if profile == "ideal":  # float to float: nothing is rounded, so the spikes are the same
        x = spikes(steps=30, batch=8, n=n_in, seed=3)
        assert max(_mismatch(nd.run(compiled, x), nd.run(ideal, x)).values()) == 0.0


def test_loops_and_delays_survive(tmp_path: Path):
    """A recurrent layer behind a NIR Delay: the export keeps the delay and the loop's timing."""
    rng = np.random.default_rng(0)
    n = 20
    tau = np.full(n, DT / 0.1)
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([5])),
            "w_in": nir.Linear(rng.normal(0, 1.0, (n, 5))),
            "late": nir.Delay(np.full(n, 3 * DT)),
            "lif": nir.LIF(tau=tau, r=tau / DT, v_leak=np.zeros(n), v_threshold=np.ones(n)),
            "w_rec": nir.Linear(rng.normal(0, 0.3, (n, n))),
            "output": nir.Output(np.array([n])),
        },
        edges=[
            ("input", "w_in"),
            ("w_in", "late"),
            ("late", "lif"),
            ("lif", "w_rec"),
            ("w_rec", "lif"),
            ("lif", "output"),
        ],  # fmt: skip
    )
    graph.metadata.update({"neurodeploy.dt": DT, "neurodeploy.reset": "zero"})
    compiled = nd.compile(graph, "loihi2")
    exported = export_nir(compiled)
    assert any(isinstance(node, nir.Delay) for node in exported.nodes.values())
    ideal = _roundtrip(compiled, tmp_path)
    _assert_same_parameters(compiled, ideal)
    x = spikes(steps=60, batch=32, n=5, seed=4)
    reference = nd.run(nd.compile(graph, "ideal"), x)
    mismatch_export = _mismatch(nd.run(compiled, x), nd.run(ideal, x))["lif"]
    mismatch_source = _mismatch(nd.run(compiled, x), reference)["lif"]
    assert mismatch_export <= mismatch_source + 1e-9 and mismatch_export < 0.01


def test_xylo_refuses_with_one_clear_error():
    compiled = nd.compile(lif_graph(n_in=4, hidden=8, n_out=2), "xylo-audio2", strict=False)
    with pytest.raises(NeurodeployError, match="several spikes per step"):
        export_nir(compiled)


def test_cli_export_writes_a_graph_the_compiler_reads(tmp_path: Path):
    artifact = tmp_path / "model.ndp"
    nd.compile(lif_graph(), "loihi2").save(artifact)
    out = tmp_path / "chip.nir"
    cli = [sys.executable, "-m", "neurodeploy.cli", "export", str(artifact), "-o", str(out), "--json"]
    done = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["nodes"] == len(nir.read(str(out)).nodes)
    bad = subprocess.run([*cli[:-3], "-o", str(tmp_path / "chip.h5")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "should end in .nir" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "chip.h5").exists()

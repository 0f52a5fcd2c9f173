"""Stateless nodes before an Output become a host readout: never dropped, always said."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurodeploy as nd
from neurodeploy.compiler.reference import simulate_nir
from neurodeploy.errors import NeurodeployError

DT = 1e-4


def _graph(*nodes: nir.NIRNode) -> nir.NIRGraph:
    graph = nir.NIRGraph.from_list(*nodes)
    graph.metadata.update({"neurodeploy.dt": DT, "neurodeploy.reset": "zero"})
    return graph


def _lif(n: int) -> nir.LIF:
    tau = np.full(n, 1e-3)
    return nir.LIF(tau=tau, r=tau / DT, v_leak=np.zeros(n), v_threshold=np.ones(n))


def _x(n: int, steps: int = 30, batch: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((steps, batch, n)) < 0.4


def test_affine_after_lif_is_the_output_on_every_profile():
    """Input -> Linear -> LIF -> Affine -> Output: the Affine's values, not the LIF spikes."""
    weight, bias = np.arange(6.0).reshape(2, 3) - 2, np.array([0.5, -1.0])
    graph = _graph(nir.Input(np.array([2])), nir.Linear(np.ones((3, 2)) * 0.6), _lif(3),
                   nir.Affine(weight, bias), nir.Output(np.array([2])))  # fmt: skip
    x = _x(2)
    ref = simulate_nir(graph, x, DT, precision="float64", initial="zero")
    for profile in ("ideal", "loihi2", "dynapse2"):
        compiled = nd.compile(graph, profile)
        result = nd.run(compiled, x)
        assert compiled.core.outputs == ["affine"] and result.output().shape == (30, 8, 2)
        expected = result.spikes["lif"].astype(float) @ weight.T + bias
        np.testing.assert_allclose(result.output(), expected, rtol=1e-12)
        assert result.predictions().tolist() == result.counts().argmax(axis=-1).tolist()
        if profile == "ideal":
            np.testing.assert_allclose(result.output(), ref["output"], rtol=1e-9)
        (readout,) = compiled.report["readouts"]
        assert readout["runs_on"] == "host" and readout["nodes"] == ["affine"] and readout["sources"] == ["lif"]


def test_affine_on_the_input_alone():
    """Input -> Affine(-I, +5) -> Output: 5 - x on no core at all."""
    graph = _graph(nir.Input(np.array([2])), nir.Affine(-np.eye(2), np.full(2, 5.0)), nir.Output(np.array([2])))
    x = _x(2)
    for profile in ("ideal", "loihi2"):
        result = nd.run(nd.compile(graph, profile), x)
        np.testing.assert_array_equal(result.output(), 5.0 - x)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1000), pooled=st.booleans())
def test_stateless_tails_match_the_reference(seed: int, pooled: bool):
    """Conv, pooling, Scale and Affine tails on ideal equal the node-by-node reference."""
    rng = np.random.default_rng(seed)
    tail = [nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))] if pooled \
        else [nir.Conv2d(input_shape=np.array([4, 4]), weight=rng.normal(0, 1, (2, 1, 3, 3)), stride=1, padding=1,
                         dilation=1, groups=1, bias=rng.normal(0, 0.1, 2))]  # fmt: skip
    tau = np.full((1, 4, 4), 1e-3)
    graph = _graph(
        nir.Input(np.array([1, 4, 4])),
        nir.Scale(np.full((1, 4, 4), 1.5)),
        nir.LIF(tau=tau, r=tau / DT, v_leak=np.zeros_like(tau), v_threshold=np.ones_like(tau)),
        *tail,
        nir.Output(np.array([2 if not pooled else 1, 4 if not pooled else 2, 4 if not pooled else 2])),
    )
    x = _x(16, steps=12, batch=3, seed=seed)
    compiled = nd.compile(graph, "ideal")
    got = nd.run(compiled, x).output()
    ref = simulate_nir(graph, x, DT, precision="float64", initial="zero")["output"]
    np.testing.assert_allclose(got, ref.reshape(got.shape), rtol=1e-9, atol=1e-12)


def test_readout_survives_the_artifact_the_cli_and_the_export(tmp_path: Path):
    graph = _graph(nir.Input(np.array([2])), nir.Linear(np.ones((3, 2))), _lif(3),
                   nir.Affine(np.ones((2, 3)), np.ones(2)), nir.Output(np.array([2])))  # fmt: skip
    compiled = nd.compile(graph, "loihi2")
    x = _x(2)
    before = nd.run(compiled, x).output()
    path = compiled.save(tmp_path / "m.ndp")
    np.testing.assert_array_equal(nd.run(nd.load_compiled(path), x).output(), before)
    exported = tmp_path / "chip.nir"
    nir.write(str(exported), nd.export_nir(compiled))
    again = nd.run(nd.compile(nd.load_nir(exported), "ideal"), x).output()
    np.testing.assert_allclose(again, before, rtol=1e-12)
    np.save(tmp_path / "x.npy", x)
    cli = [sys.executable, "-m", "neurodeploy.cli", "run", str(path), "-i", str(tmp_path / "x.npy"), "-o",
           str(tmp_path / "out.npz")]  # fmt: skip
    done = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "readout affine (host)" in " ".join(done.stdout.split())
    np.testing.assert_array_equal(np.load(tmp_path / "out.npz")["readout/affine"], before)
    shown = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "inspect", str(path)], capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert "readout affine (affine) runs on the host" in " ".join(shown.stdout.split())


def test_learning_refuses_a_readout_with_one_error():
    from neurodeploy.compiler.learning import layered
    from neurodeploy.compiler.normalize import normalize

    graph = _graph(nir.Input(np.array([2])), nir.Linear(np.ones((3, 2))), _lif(3),
                   nir.Affine(np.ones((2, 3)), np.ones(2)), nir.Output(np.array([2])))  # fmt: skip
    with pytest.raises(NeurodeployError, match="stateless nodes .*affine"):
        layered(normalize(graph))

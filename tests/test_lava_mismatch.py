"""Mismatched (float) chip instances on Lava: ``MismatchLIF`` + Lava's float Dense against the emulator.

The neuron update is the float core's, operation for operation, so with one synapse per neuron (no sum
whose order could differ) u and v are bit-identical. With full weight matrices the synaptic sums are
formed in a different order (Lava: numpy's pairwise sum over the active columns; the emulator: BLAS,
gathers, and its own order across projections); float addition is not associative, so u and v may
differ in the last bits. There the test requires identical spikes and u, v within 1e-12 of their
scale, and only counts examples whose v never comes within 1e-9 (relative) of v_th: closer than that a
last-bit difference could legitimately flip a spike. The margin is computed from the emulator's own
pre-reset v, which the test reconstructs exactly and checks against the emulator's spikes.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
from conftest import lif_graph, spikes
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import neurodeploy as nd
from neurodeploy.emulator.backends.lava_float import (
    agreement,
    cross_check,
    instance_count,
    lava_offsets,
    run_lava_float,
    take_instances,
)
from neurodeploy.emulator.mismatch import sample
from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.emulator.simulate import SimulationOutput, simulate
from neurodeploy.errors import NeurodeployError
from neurodeploy.studies.variability import variability

HAVE_LAVA = importlib.util.find_spec("lava") is not None
skip_without_lava = pytest.mark.skipif(not HAVE_LAVA, reason="lava-nc is not installed (make venv)")
REL = 1e-12  # u, v agreement relative to the population's largest |u|, |v|
MARGIN = 1e-9  # closest relative approach of v to v_th that an example may have


def _params(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "du": rng.uniform(0.05, 0.95, n),
        "dv": rng.uniform(0.02, 0.6, n),
        "v_th": rng.uniform(0.3, 1.5, n),
        "v_reset": rng.uniform(-0.3, 0.3, n),
        "bias_u": rng.normal(0.0, 0.02, n),
        "bias_v": rng.normal(0.0, 0.05, n),
    }


def dynapse2_graph(hidden: int) -> nir.NIRGraph:
    """lif_graph without biases: DYNAP-SE2 shares neuron parameters per core (one set per layer)."""
    graph = lif_graph(hidden=hidden)
    for node in graph.nodes.values():
        if isinstance(node, nir.Affine):
            node.bias[:] = 0
    return graph


def _pop(name: str, n: int, params: dict, reset: str = "zero", spiking: bool = True) -> CorePopulation:
    return CorePopulation(name, n, "float", params, reset=reset, spiking=spiking)


def threshold_margin(net: CoreNetwork, out: SimulationOutput) -> float:
    """Closest relative approach of the emulator's pre-reset v to v_th, over spiking neurons and steps."""
    margins = [np.inf]
    for pop in net.populations:
        if pop.name in net.inputs or not pop.spiking:
            continue
        u, v = out.u[pop.name], out.v[pop.name]
        dv, bias_v = np.asarray(pop.params["dv"]), np.asarray(pop.params.get("bias_v", 0.0))
        v_th = np.asarray(pop.params["v_th"])
        v_prev = np.concatenate([np.zeros_like(v[:1]), v[:-1]])
        v_pre = (1.0 - dv) * v_prev + u + bias_v  # the float core's expression, same order
        assert np.array_equal(v_pre > v_th, out.spikes[pop.name]), "pre-reset v does not reproduce the spikes"
        scale = max(float(np.abs(v_pre).max()), float(np.abs(v_th).max()))
        margins.append(float(np.abs(v_pre - v_th).min()) / scale)
    return min(margins)


def assert_same(ref: SimulationOutput, got: SimulationOutput, exact: bool) -> None:
    """Same keys, shapes, dtypes and spikes; u, v bit-identical or within REL of their scale."""
    for kind in ("spikes", "u", "v"):
        a, b = getattr(ref, kind), getattr(got, kind)
        assert a.keys() == b.keys(), kind
        for name in a:
            assert a[name].shape == b[name].shape and a[name].dtype == b[name].dtype, (kind, name)
            if kind == "spikes" or exact:
                if not np.array_equal(a[name], b[name]):
                    t, *_ = np.argwhere(a[name] != b[name])[0]
                    pytest.fail(f"{kind}[{name}] first differs at step {t}")
            else:
                scale = float(np.abs(a[name]).max())
                np.testing.assert_allclose(b[name], a[name], rtol=REL, atol=REL * scale, err_msg=f"{kind}[{name}]")
    assert got.counters["synaptic_events"] == ref.counters["synaptic_events"]


# --------------------------------------------------------------------------- without a Lava run


def test_offsets_make_every_lava_connection_take_a_step_and_refuse_fast_loops():
    pops = [CorePopulation("in", 2, "input"), _pop("h", 2, {}), _pop("o", 2, {})]

    def net(*edges):
        projs = [CoreProjection(f"{s}{d}", s, d, np.ones((2, 2)), delay=k) for s, d, k in edges]
        return CoreNetwork(pops, projs, ["in"], ["o"], "float")

    assert lava_offsets(net(("in", "h", 0), ("h", "o", 0))) == {"in": 0, "h": 1, "o": 2}
    assert lava_offsets(net(("in", "h", 0), ("h", "o", 0), ("in", "o", 0), ("h", "h", 1))) == {"in": 0, "h": 1, "o": 2}
    assert lava_offsets(net(("in", "h", 3), ("h", "o", 1), ("o", "h", 2))) == {"in": 0, "h": 0, "o": 0}
    with pytest.raises(NeurodeployError, match="loop"):  # 1 step of delay around a loop of 2 projections
        lava_offsets(net(("in", "h", 1), ("h", "o", 0), ("o", "h", 1)))


def test_rejects_what_the_float_models_cannot_express():
    x = np.zeros((3, 1, 2), dtype=bool)
    params = _params(np.random.default_rng(0), 2)
    net = CoreNetwork(
        [CorePopulation("in", 2, "input"), _pop("h", 2, params)],
        [CoreProjection("p", "in", "h", np.ones((2, 2)))],
        ["in"],
        ["h"],
        "float",
    )
    net.populations[1].reset_rule = "snntorch"
    with pytest.raises(NeurodeployError, match="reset_rule='snntorch'"):
        run_lava_float(net, {"in": x})
    net.populations[1].reset_rule = "nir"
    net.numerics = "loihi"
    with pytest.raises(NeurodeployError, match="numerics='loihi'"):
        run_lava_float(net, {"in": x})


def test_take_instances_picks_the_sampled_instances():
    compiled = nd.compile(dynapse2_graph(6), "dynapse2")
    net = sample(compiled, instances=5, seed=4)
    assert instance_count(net) == 5
    sub = take_instances(net, [3, 1])
    alone = sample(compiled, instances=1, seed=4, first=3)
    for ps, pa in zip(sub.populations, alone.populations, strict=True):
        for key in ps.params:
            np.testing.assert_array_equal(ps.params[key][0], pa.params[key][0])
    np.testing.assert_array_equal(sub.projections[0].weight[1], net.projections[0].weight[1])
    with pytest.raises(NeurodeployError, match="out of range"):
        take_instances(net, [5])


# --------------------------------------------------------------------------- Lava against the emulator


@st.composite
def sampled_case(draw):
    """A small random float network (delays 0..3, recurrence, feedback, skip), sampled as dynapse2 instances."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_in, n_h, n_o = draw(st.integers(1, 8)), draw(st.integers(1, 6)), draw(st.integers(1, 4))
    pops = [
        CorePopulation("in", n_in, "input"),
        _pop("h", n_h, _params(rng, n_h), draw(st.sampled_from(["zero", "subtract"]))),
        _pop("o", n_o, _params(rng, n_o), draw(st.sampled_from(["zero", "subtract"])), draw(st.booleans())),
    ]
    edges = [("in", "h", draw(st.integers(0, 2))), ("h", "o", draw(st.integers(0, 2)))]
    if draw(st.booleans()):
        edges.append(("h", "h", draw(st.integers(1, 2))))
    if draw(st.booleans()):
        edges.append(("in", "o", draw(st.sampled_from([0, 1, 3]))))
    if draw(st.booleans()):
        edges.append(("o", "h", draw(st.integers(2, 3))))
    size = {"in": n_in, "h": n_h, "o": n_o}
    projs = [CoreProjection(f"{s}->{d}", s, d, rng.normal(0.0, 0.8, (size[d], size[s])), delay=k) for s, d, k in edges]
    core = CoreNetwork(pops, projs, ["in"], ["o"], "float")
    sigma = {name: draw(st.sampled_from([0.05, 0.15, 0.3])) for name in ("tau_mem", "tau_syn", "v_threshold", "bias")}
    sigma["weight"] = draw(st.sampled_from([0.05, 0.15, 0.3]))  # per synapse in the dynapse2 profile
    instances = draw(st.integers(1, 3))
    net = sample(core, nd.profiles.get("dynapse2"), instances, seed=draw(st.integers(0, 99)), sigma=sigma)
    picked = draw(st.lists(st.integers(0, instances - 1), min_size=1, max_size=2, unique=True))
    t_in = draw(st.integers(5, 14))
    x = rng.random((t_in, draw(st.integers(1, 3)), n_in)) < draw(st.sampled_from([0.2, 0.5, 0.9]))
    return net, x, picked, t_in + draw(st.integers(0, 3))


@pytest.mark.lava
@skip_without_lava
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=sampled_case())
def test_sampled_instances_on_lava_match_the_emulator(case):
    net, x, picked, steps = case
    sub = take_instances(net, picked)
    ref = simulate(sub, {"in": x}, steps=steps, record=("spikes", "u", "v"))
    assume(threshold_margin(sub, ref) > MARGIN)
    check = cross_check(net, {"in": x}, picked, steps=steps)
    assert_same(check.emulator, ref, exact=True)  # cross_check ran the emulator on the same instances
    assert_same(ref, check.lava, exact=False)
    assert all(
        row["identical_spikes"] and row["max_rel_u"] <= REL and row["max_rel_v"] <= REL for row in check.agreement
    )
    assert [row["instance"] for row in check.agreement] == picked


@pytest.mark.lava
@skip_without_lava
def test_one_synapse_per_neuron_gives_bit_identical_u_and_v():
    """No sum whose order could differ: the neuron update alone decides, and it is the float core's."""
    rng = np.random.default_rng(7)
    n = 6
    pops = [
        CorePopulation("in", n, "input"),
        _pop("h", n, _params(rng, n), "zero"),
        _pop("o", n, _params(rng, n), "subtract"),
        _pop("li", n, _params(rng, n), spiking=False),
    ]

    def diagonal(scale: float) -> np.ndarray:
        return np.diag(rng.normal(0.0, scale, n) + np.sign(rng.normal(size=n)) * 0.5)

    projs = [
        CoreProjection("in->h", "in", "h", diagonal(1.0), delay=0),
        CoreProjection("h->h", "h", "h", diagonal(0.5), delay=1),  # a second input to h: a + b = b + a
        CoreProjection("h->o", "h", "o", diagonal(1.5), delay=0),
        CoreProjection("in->o", "in", "o", diagonal(1.0), delay=3),
        CoreProjection("o->li", "o", "li", diagonal(1.0), delay=2),
    ]
    core = CoreNetwork(pops, projs, ["in"], ["li"], "float")
    sigma = {"tau_mem": 0.2, "tau_syn": 0.2, "v_threshold": 0.2, "bias": 0.3, "weight": 0.2}
    net = sample(core, nd.profiles.get("dynapse2"), 3, seed=5, sigma=sigma)
    x = rng.random((25, 4, n)) < 0.5
    ref = simulate(net, {"in": x}, steps=30, record=("spikes", "u", "v"))
    got = run_lava_float(net, {"in": x}, steps=30, record=("spikes", "u", "v"), chunk=5)
    assert_same(ref, got, exact=True)
    assert ref.spikes["h"].any() and ref.spikes["o"].any() and not ref.spikes["li"].any()
    assert got.paths["lava_offsets"] == {"in": 0, "h": 1, "o": 2, "li": 1}
    assert got.paths["lava_delays"] == {"in->h": 1, "h->h": 1, "h->o": 1, "in->o": 5, "o->li": 1}


@pytest.mark.lava
@skip_without_lava
def test_lava_runs_the_per_neuron_model():
    """Thresholds k + 1/2 per neuron: a perfect integrator fed 1 per step spikes every k + 1 steps.

    Lava's own LIF has one threshold per process and could not give these counts; ``lava_models``
    names the ProcessModels Lava selected with ``select_tag="floating_pt"``.
    """
    n, steps = 5, 24
    params = {
        "du": np.ones(n),
        "dv": np.zeros(n),
        "v_th": np.arange(n) + 0.5,
        "v_reset": np.zeros(n),
        "bias_u": np.zeros(n),
        "bias_v": np.zeros(n),
    }
    net = CoreNetwork(
        [CorePopulation("in", 1, "input"), _pop("h", n, params)],
        [CoreProjection("in->h", "in", "h", np.ones((n, 1)), delay=1)],
        ["in"],
        ["h"],
        "float",
    )
    x = np.ones((steps, 1, 1), dtype=bool)
    got = run_lava_float(net, {"in": x}, record=("spikes", "v"))
    counts = got.spikes["h"][:, 0].sum(axis=0)
    assert counts.tolist() == [(steps - 1) // (k + 1) for k in range(n)]
    np.testing.assert_array_equal(got.spikes["h"], simulate(net, {"in": x}, record=("spikes",)).spikes["h"])
    assert got.paths["lava_models"] == {"h": "PyMismatchLIFModelFloat", "in->h": "PyDenseModelFloat"}
    # the same thresholds on every neuron give the same counts everywhere: the thresholds made the difference
    net.populations[1].params["v_th"] = np.full(n, 2.5)
    same = run_lava_float(net, {"in": x}).spikes["h"][:, 0].sum(axis=0)
    assert same.tolist() == [(steps - 1) // 3] * n


@pytest.mark.lava
@skip_without_lava
def test_sparse_weights_run_on_lava_sparse_and_delay_sparse():
    """scipy.sparse weights (shared: no weight mismatch) become Lava's float Sparse / DelaySparse."""
    import scipy.sparse as sp

    rng = np.random.default_rng(1)
    n_in, n_h, n_o = 20, 10, 4
    pops = [CorePopulation("in", n_in, "input"), _pop("h", n_h, _params(rng, n_h)),
            _pop("o", n_o, _params(rng, n_o), "subtract")]  # fmt: skip
    projs = [
        CoreProjection("a", "in", "h", sp.random(n_h, n_in, density=0.3, random_state=1, format="csr") * 2, delay=0),
        CoreProjection("b", "h", "o", sp.random(n_o, n_h, density=0.5, random_state=2, format="csr") * 2, delay=4),
    ]
    core = CoreNetwork(pops, projs, ["in"], ["o"], "float")
    net = sample(core, nd.profiles.get("dynapse2"), 2, seed=0, sigma={"weight": 0.0, "bias": 0.2})
    x = rng.random((20, 3, n_in)) < 0.4
    ref = simulate(net, {"in": x}, steps=24, record=("spikes", "u", "v"))
    assert threshold_margin(net, ref) > MARGIN and ref.spikes["o"].any()
    got = run_lava_float(net, {"in": x}, steps=24, record=("spikes", "u", "v"))
    assert_same(ref, got, exact=False)
    assert got.paths["lava_models"]["a"] == "PySparseModelFloat"
    assert got.paths["lava_models"]["b"] == "PyDelaySparseModelFloat"


# --------------------------------------------------------------------------- variability --lava-check


@pytest.fixture(scope="module")
def dyn():
    compiled = nd.compile(dynapse2_graph(20), "dynapse2")
    x = spikes(batch=12)
    return compiled, x, nd.run(compiled, x).predictions()


def test_variability_lava_check_bounds(dyn):
    compiled, x, labels = dyn
    with pytest.raises(NeurodeployError, match="lava_check"):
        variability(compiled, x, labels, instances=2, lava_check=3)
    assert variability(compiled, x, labels, instances=2).lava == {}


@pytest.mark.lava
@skip_without_lava
def test_variability_cross_checks_instances_on_lava(dyn, tmp_path: Path):
    compiled, x, labels = dyn
    result = variability(compiled, x, labels, instances=4, seed=3, lava_check=2)
    lava = result.lava
    assert lava["instances"] == 2 and lava["spikes_identical_in"] == 2 and lava["accuracy_identical_in"] == 2
    assert [r["accuracy"] for r in lava["per_instance"]] == result.accuracy[:2]
    assert lava["max_rel_u"] <= REL and lava["max_rel_v"] <= REL
    assert json.loads(json.dumps(result.to_dict()))["lava"]["per_instance"][1]["instance"] == 1
    # the command line: --lava-check K
    model = compiled.save(tmp_path / "m.ndp")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", labels)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "neurodeploy.cli",
            "variability",
            str(model),
            "--inputs",
            str(tmp_path / "x.npy"),
            "--labels",
            str(tmp_path / "y.npy"),
            "--instances",
            "3",
            "--lava-check",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert "Lava cross-check" in done.stdout and "spikes identical in 1/1" in done.stdout


def test_agreement_counts_differences_per_instance():
    a = SimulationOutput(spikes={"h": np.zeros((3, 2, 1, 2), dtype=bool)}, v={"h": np.ones((3, 2, 1, 2))})
    b = SimulationOutput(spikes={"h": a.spikes["h"].copy()}, v={"h": a.v["h"].copy()})
    b.spikes["h"][1, 1, 0, 0] = True
    b.v["h"][2, 1, 0, 1] = 1.5
    rows = agreement(a, b, instances=2)
    assert rows[0] == {"identical_spikes": True, "differing_spikes": 0, "max_rel_u": 0.0, "max_rel_v": 0.0}
    assert rows[1]["differing_spikes"] == 1 and not rows[1]["identical_spikes"] and rows[1]["max_rel_v"] == 0.5

"""Differential test: our emulator against Lava 0.10's fixed-point models, bit for bit, on random networks.

Beyond tests/test_lava_backend.py (2-layer chains): recurrent projections (a population to itself and
to an earlier one), delays 1..63 (DelayDense / DelaySparse), 1-3 layers of 1..40 neurons, sparse
(CSR) weights, per-instance parameters and weights, weights at the extremes, every sign mode,
num_weight_bits 1..8, weight_exp -8..8, du/dv 0..4095, and "hot" cases that wrap u and saturate v.
Spikes, u and v must be identical at every step. Bulk arrays come from a drawn seed, so each example
is cheap to generate; each Lava run costs about half a second, so the search is bounded.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.emulator.simulate import simulate

pytestmark = [
    pytest.mark.lava,
    pytest.mark.skipif(importlib.util.find_spec("lava") is None, reason="lava-nc is not installed (make venv)"),
]
SIGN_MODES = ["mixed", "excitatory", "inhibitory"]
EXTREMES = np.array([-256, -255, -254, -1, 0, 1, 253, 254, 255])


def _lif(rng: np.random.Generator, lead: tuple[int, ...], n: int, hot: bool, vth_hi: int) -> dict[str, np.ndarray]:
    shape = (*lead, n)
    du_hi = 64 if hot else 4095
    return {
        "du": rng.integers(0, du_hi + 1, shape),
        "dv": rng.choice([0, 1, 4095, *rng.integers(0, 4096, 3)], shape),
        "vth": rng.integers(0, vth_hi + 1, shape),
        "bias_mant": rng.integers(-4096, 4096, shape),
        "bias_exp": rng.integers(-2, 8, shape),
    }


def _weights(rng: np.random.Generator, lead: tuple[int, ...], n_dst: int, n_src: int, style: str, sparse: bool):
    shape = (*lead, n_dst, n_src)
    w = rng.choice(EXTREMES, shape) if style == "extreme" else rng.integers(-256, 256, shape)
    if style == "mostly_zero":
        w = w * (rng.random(shape) < 0.2)
    if sparse:
        import scipy.sparse as sp

        return sp.csr_matrix(w * (rng.random(shape) < 0.4))
    return w


@st.composite
def networks(draw):
    """A random CoreNetwork with recurrence and delays, its inputs and the number of steps."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_layers = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 40)) for _ in range(n_layers + 1)]
    hot = draw(st.booleans())
    instances = draw(st.sampled_from([0, 0, 2]))  # 0: no instance axis
    samples = draw(st.integers(1, 2))
    lead = (instances, 1) if instances else ()
    vth_hi = draw(st.sampled_from([50, 2000, 131071]))
    names = ["in"] + [f"l{i}" for i in range(n_layers)]
    pops = [CorePopulation("in", sizes[0], "input")]
    for name, size in zip(names[1:], sizes[1:], strict=True):
        pops.append(CorePopulation(name, size, "loihi", _lif(rng, lead, size, hot, vth_hi)))

    def delay() -> int:
        return draw(st.one_of(st.integers(1, 4), st.integers(5, 63)))

    def proj(src: int, dst: int, d: int) -> CoreProjection:
        sparse = draw(st.booleans()) and not (instances and draw(st.booleans()))
        per_instance = bool(instances) and not sparse and draw(st.booleans())
        style = draw(st.sampled_from(["uniform", "extreme", "mostly_zero"]))
        w = _weights(rng, (instances,) if per_instance else (), sizes[dst], sizes[src], style, sparse)
        exp = draw(st.integers(5, 8)) if hot else draw(st.integers(-8, 8))
        return CoreProjection(f"{names[src]}->{names[dst]}#{d}", names[src], names[dst], w, delay=d,
                              weight_exp=exp, num_weight_bits=draw(st.integers(1, 8)),
                              sign_mode=draw(st.sampled_from(SIGN_MODES)))  # fmt: skip

    projs = [proj(i, i + 1, delay()) for i in range(n_layers)]
    for i in range(1, n_layers + 1):
        if draw(st.booleans()):
            projs.append(proj(i, i, delay()))  # onto itself
    if n_layers >= 2 and draw(st.booleans()):
        src = draw(st.integers(2, n_layers))
        projs.append(proj(src, draw(st.integers(1, src - 1)), delay()))  # back to an earlier population
    if n_layers >= 2 and draw(st.booleans()):
        projs.append(proj(0, n_layers, delay()))  # skip connection from the input
    net = CoreNetwork(pops, projs, inputs=["in"], outputs=[names[-1]], numerics="loihi")
    t_in = draw(st.integers(3, 24))
    p = draw(st.sampled_from([0.05, 0.3, 0.7, 1.0]))
    x = rng.random((t_in, *((instances,) if instances else ()), samples, sizes[0])) < p
    max_delay = max(pr.delay for pr in projs)
    steps = t_in + draw(st.integers(0, min(max_delay, 40)))
    return net, x, steps


def compare(net: CoreNetwork, x: np.ndarray, steps: int, kernels: str = "numba"):
    """Emulator (compiled or numpy neuron kernels) and Lava: identical spikes, u and v everywhere, every step."""
    from neurodeploy.emulator.backends.lava import run_lava

    record = ("spikes", "u", "v")
    ref = simulate(net, {"in": x}, steps=steps, record=record, kernels=kernels)
    got = run_lava(net, {"in": x}, steps=steps, record=record)
    for kind in record:
        a, b = getattr(ref, kind), getattr(got, kind)
        assert a.keys() == b.keys(), kind
        for name in a:
            assert a[name].shape == b[name].shape, (kind, name, a[name].shape, b[name].shape)
            if not np.array_equal(a[name], b[name]):
                idx = tuple(np.argwhere(a[name] != b[name])[0])
                pytest.fail(f"{kind}[{name}] differs first at {idx}: emulator {a[name][idx]} lava {b[name][idx]}")
    assert got.counters["synaptic_events"] == ref.counters["synaptic_events"]
    return ref


@settings(max_examples=70, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(networks(), st.sampled_from(["numba", "numpy"]))
def test_emulator_matches_lava_on_random_recurrent_networks(case, kernels):
    net, x, steps = case
    compare(net, x, steps, kernels)


def test_recurrent_sparse_delayed_network_wraps_u_and_saturates_v():
    """A fixed hot case: self- and back-projections, delays 1, 2, 37 and 63, sparse weights."""
    import scipy.sparse as sp

    rng = np.random.default_rng(7)
    lif = {"du": rng.integers(0, 8, 12), "dv": rng.choice([0, 4095], 12), "vth": rng.integers(0, 3000, 12),
           "bias_mant": rng.integers(-4096, 4096, 12), "bias_exp": rng.integers(0, 8, 12)}  # fmt: skip
    pops = [CorePopulation("in", 10, "input"), CorePopulation("a", 12, "loihi", lif),
            CorePopulation("b", 12, "loihi", {k: v[::-1].copy() for k, v in lif.items()})]  # fmt: skip
    recurrent = sp.csr_matrix(rng.integers(-256, 256, (12, 12)) * (rng.random((12, 12)) < 0.5))
    projs = [
        CoreProjection("in->a", "in", "a", rng.integers(-256, 256, (12, 10)), delay=1, weight_exp=7),
        CoreProjection("a->a", "a", "a", recurrent, delay=2, weight_exp=6),
        CoreProjection(
            "a->b", "a", "b", rng.integers(0, 256, (12, 12)), delay=37, weight_exp=8, sign_mode="excitatory"
        ),
        CoreProjection(
            "b->a", "b", "a", rng.integers(-256, 1, (12, 12)), delay=63, weight_exp=5, sign_mode="inhibitory"
        ),
    ]
    net = CoreNetwork(pops, projs, inputs=["in"], outputs=["b"])
    x = rng.random((70, 2, 10)) < 0.5
    ref = compare(net, x, steps=110)
    assert ref.counters["u_wraps"] > 0 and ref.counters["v_saturations"] > 0
    assert ref.spikes["b"].any() and ref.spikes["a"].any()


def test_per_instance_parameters_and_weights():
    """Instances (3, 1) x samples 2: per-instance du/dv/vth/bias and a per-instance weight matrix."""
    rng = np.random.default_rng(3)
    n_in, n = 8, 6
    lif = {"du": rng.integers(0, 4096, (3, 1, n)), "dv": rng.integers(0, 4096, (3, 1, n)),
           "vth": rng.integers(0, 400, (3, 1, n)), "bias_mant": rng.integers(-100, 100, (3, 1, n)),
           "bias_exp": np.zeros((3, 1, n), dtype=np.int64)}  # fmt: skip
    net = CoreNetwork(
        [CorePopulation("in", n_in, "input"), CorePopulation("h", n, "loihi", lif)],
        [CoreProjection("w", "in", "h", rng.integers(-256, 256, (3, n, n_in))),
         CoreProjection("r", "h", "h", rng.integers(-256, 256, (n, n)), delay=3, weight_exp=-1)],
        inputs=["in"], outputs=["h"],
    )  # fmt: skip
    x = rng.random((20, 2, n_in)) < 0.4  # shared by the 3 instances
    ref = compare(net, x, steps=24)
    assert ref.spikes["h"].shape == (24, 3, 2, n)
    assert not np.array_equal(ref.spikes["h"][:, 0], ref.spikes["h"][:, 1])

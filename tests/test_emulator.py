"""Loihi core numerics against hand-computed values, and the vectorised loop's bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

from neurodeploy.emulator.loihi import LoihiCubaState, prepare_weights
from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.emulator.simulate import simulate


def _params(**kw):
    base = {"du": 4095, "dv": 0, "vth": 5, "bias_mant": 0, "bias_exp": 0}
    base.update(kw)
    return {k: np.array([v]) for k, v in base.items()}


def _one_neuron(weight: int, params: dict, weight_exp: int = 0) -> CoreNetwork:
    return CoreNetwork(
        [CorePopulation("in", 1, "input"), CorePopulation("n", 1, "loihi", params)],
        [CoreProjection("in->n", "in", "n", np.array([[weight]]), delay=1, weight_exp=weight_exp)],
        ["in"],
        ["n"],
    )


def test_integrator_spikes_on_the_step_after_the_third_input():
    # weight 2 -> a_in 2 -> u = 2 << 6 = 128 per input; dv = 0 integrates; vth 5 -> 320; 384 > 320.
    net = _one_neuron(2, _params())
    x = np.zeros((8, 1, 1), dtype=bool)
    x[[0, 2, 4]] = True
    out = simulate(net, {"in": x}, record=("spikes", "u", "v"))
    np.testing.assert_array_equal(out.spikes["n"][:, 0, 0].nonzero()[0], [5])  # one step of Dense latency
    np.testing.assert_array_equal(out.u["n"][:, 0, 0], [0, 128, 0, 128, 0, 128, 0, 0])
    np.testing.assert_array_equal(out.v["n"][:, 0, 0], [0, 128, 128, 256, 256, 0, 0, 0])


def test_decays_truncate_toward_zero_and_du_has_the_plus_one():
    state = LoihiCubaState(
        (2,),
        {
            "du": np.array([0, 0]),
            "dv": np.array([0, 0]),
            "vth": np.array([131071] * 2),
            "bias_mant": np.array([0, 0]),
            "bias_exp": np.array([0, 0]),
        },
    )
    state.u = np.array([1000, -1000])
    state.step(np.zeros(2, dtype=np.int64))
    # du = 0 still leaks: 1000 * 4095 / 4096 = 999.76 -> 999; negative truncates toward zero -> -999.
    np.testing.assert_array_equal(state.u, [999, -999])


def test_bias_exponent_and_weight_exponent():
    params = _params(vth=131071, bias_mant=3, bias_exp=2, dv=4095)
    net = _one_neuron(10, params, weight_exp=-2)
    x = np.ones((3, 1, 1), dtype=bool)
    out = simulate(net, {"in": x}, record=("v",))
    # v = T(v * 1/4096) + u + 12 with u = (10 >> 2) << 6 = 128 from step 1 on.
    np.testing.assert_array_equal(out.v["n"][:, 0, 0], [12, 140, 140])


def test_u_wraps_and_v_saturates_with_counters():
    net = _one_neuron(254, _params(vth=131071, du=0), weight_exp=8)
    out = simulate(net, {"in": np.ones((5, 1, 1), dtype=bool)}, record=("u",))
    # Independent scalar model: a_in = 254 << 8; u = trunc(u * 4095 / 4096) + (a_in << 6), 24-bit wrap.
    u, expected = 0, [0]
    for _ in range(4):
        u = int(u * 4095 / 4096) + ((254 << 8) << 6)
        u = u - 2**24 if u > 2**23 else u
        expected.append(u)
    np.testing.assert_array_equal(out.u["n"][:, 0, 0], expected)
    assert min(expected) < 0 and out.counters["u_wraps"] > 0
    net = _one_neuron(254, _params(vth=131071, du=0), weight_exp=5)
    out = simulate(net, {"in": np.ones((40, 1, 1), dtype=bool)}, record=("v",))
    assert out.counters["v_saturations"] > 0
    assert out.v["n"].max() <= 2**23 - 1  # saturated v crosses vth << 6 and resets


@pytest.mark.parametrize(
    ("weights", "bits", "mode", "expected"),
    [
        ([255, -256, 3, -3, 300], 8, "mixed", [254, -256, 2, -4, 254]),
        ([255, 3, 300, -5], 8, "excitatory", [255, 3, 255, 0]),
        ([-3, -300, 5], 7, "inhibitory", [-2, -254, 0]),
        ([100, -100], 5, "mixed", [96, -112]),
    ],
)
def test_weight_preparation_matches_lava_weightutils(weights, bits, mode, expected):
    np.testing.assert_array_equal(prepare_weights(np.array(weights), bits, mode), expected)


def test_batch_and_instance_axes_are_independent():
    net = _one_neuron(2, _params())
    x = np.zeros((6, 3, 1), dtype=bool)
    x[:, 1] = True
    out = simulate(net, {"in": x}, steps=7)
    assert out.spikes["n"][:, 0].sum() == 0 and out.spikes["n"][:, 1].sum() > 0
    single = simulate(net, {"in": x[:, 1:2]}, steps=7)
    np.testing.assert_array_equal(out.spikes["n"][:, 1:2], single.spikes["n"])
    assert out.counters["synaptic_events"] == 6


def test_float_core_subtract_reset():
    params = {
        "du": np.array([1.0]),
        "dv": np.array([0.0]),
        "v_th": np.array([1.0]),
        "v_reset": np.array([0.0]),
        "bias_u": np.array([0.0]),
        "bias_v": np.array([0.4]),
    }
    net = CoreNetwork(
        [CorePopulation("in", 1, "input"), CorePopulation("n", 1, "float", params, reset="subtract")],
        [],
        ["in"],
        ["n"],
        numerics="float",
    )
    out = simulate(net, {"in": np.zeros((5, 1, 1), dtype=bool)}, record=("spikes", "v"))
    np.testing.assert_allclose(out.v["n"][:, 0, 0], [0.4, 0.8, 0.2, 0.6, 0.0], atol=1e-12)
    np.testing.assert_array_equal(out.spikes["n"][:, 0, 0], [0, 0, 1, 0, 1])

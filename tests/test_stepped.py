"""The stepped run loop: programmable neurons, graded channels, ports, delays and engine-plastic projections."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.emulator.plasticity import LearningRule, PlasticDense, TraceSpec
from neurodeploy.emulator.programs import Emission, LoihiEngine
from neurodeploy.emulator.simulate import simulate
from neurodeploy.emulator.stepped import SteppedRun, needs_stepping
from neurodeploy.errors import NeurodeployError


class Relay:
    """Sends, on channel "value", the sum of its soma input and twice its apical input this step; keeps a count."""

    ports = ("soma", "apical")
    channels = ("value",)

    def init(self, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        return {"count": np.zeros(shape, dtype=np.int64)}

    def step(self, state: dict[str, np.ndarray], inputs: dict, t: int) -> Emission:
        value = np.asarray(inputs.get("soma", 0) + 2 * np.asarray(inputs.get("apical", 0)), dtype=np.int64)
        value = np.broadcast_to(value, state["count"].shape).copy()
        state["count"] += value != 0
        return Emission(value > 0, {"value": value})


def relay_chain(delay: int, port: str = "soma") -> CoreNetwork:
    pops = [CorePopulation("x", 3, "input"), CorePopulation("a", 3, "program", program=Relay()),
            CorePopulation("b", 3, "program", program=Relay())]  # fmt: skip
    eye = np.eye(3, dtype=np.int64)
    projs = [CoreProjection("xa", "x", "a", 6 * eye, delay=delay, channel="graded"),
             CoreProjection("ab", "a", "b", 2 * eye, delay=delay, channel="value", port=port)]  # fmt: skip
    return CoreNetwork(pops, projs, ["x"], ["b"])


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 3), st.sampled_from(["soma", "apical"]))
def test_a_graded_value_arrives_after_each_projections_delay_on_its_port(delay: int, port: str) -> None:
    x = np.zeros((8, 3), dtype=np.int64)
    x[1] = [1, -2, 3]
    rec = SteppedRun(relay_chain(delay, port)).run({"x": x}, steps=8, record=("value",))
    gain = 2 if port == "apical" else 1
    expect_a, expect_b = np.zeros((8, 3)), np.zeros((8, 3))
    expect_a[1 + delay] = 6 * x[1]
    if 1 + 2 * delay < 8:
        expect_b[1 + 2 * delay] = gain * 12 * x[1]
    np.testing.assert_array_equal(rec["value"]["a"], expect_a)
    np.testing.assert_array_equal(rec["value"]["b"], expect_b)


def test_state_and_weights_carry_over_between_runs_until_reset() -> None:
    run = SteppedRun(relay_chain(1))
    x = np.ones((2, 3), dtype=np.int64)
    run.run({"x": x}, steps=2)
    assert run.states["a"]["count"].tolist() == [1, 1, 1] and run.t == 2
    run.run({"x": np.zeros((2, 3))}, steps=2)  # the in-flight value of step 1 still arrives
    assert run.states["a"]["count"].tolist() == [2, 2, 2]
    run.reset()
    assert run.states["a"]["count"].tolist() == [0, 0, 0] and run.emission("a") is None


def test_native_loihi_neurons_in_the_stepped_loop_match_the_block_loop() -> None:
    rng = np.random.default_rng(3)
    params = {"du": np.full(6, 400), "dv": np.full(6, 300), "vth": np.full(6, 200),
              "bias_mant": np.zeros(6, dtype=np.int64), "bias_exp": np.zeros(6, dtype=np.int64)}  # fmt: skip
    proj = CoreProjection("w", "in", "h", rng.integers(-60, 120, (6, 4)), delay=1)  # odd weights: truncated
    net = CoreNetwork(
        [CorePopulation("in", 4, "input"), CorePopulation("h", 6, "loihi", params)], [proj], ["in"], ["h"]
    )
    spikes = rng.random((40, 5, 4)) < 0.3
    block = simulate(net, {"in": spikes}, record=("spikes",), kernels="numpy").spikes["h"]
    stepped = SteppedRun(net, (5,)).run({"in": spikes}, record=("spikes",))["spikes"]["h"]
    assert block.any()
    np.testing.assert_array_equal(stepped, block)


def test_per_instance_weights_broadcast_over_the_samples_as_in_the_block_loop() -> None:
    rng = np.random.default_rng(4)
    params = {"du": np.full(5, 500), "dv": np.full(5, 200), "vth": np.full(5, 150),
              "bias_mant": np.zeros(5, dtype=np.int64), "bias_exp": np.zeros(5, dtype=np.int64)}  # fmt: skip
    proj = CoreProjection("w", "in", "h", 2 * rng.integers(-30, 60, (3, 5, 4)), delay=1)  # 3 chip instances
    net = CoreNetwork(
        [CorePopulation("in", 4, "input"), CorePopulation("h", 5, "loihi", params)], [proj], ["in"], ["h"]
    )
    spikes = rng.random((30, 3, 2, 4)) < 0.3  # (time, instances, samples, n)
    block = simulate(net, {"in": spikes}, record=("spikes",), kernels="numpy").spikes["h"]
    stepped = SteppedRun(net, (3, 2)).run({"in": spikes})["spikes"]["h"]
    assert block.any() and (block[:, 0] != block[:, 1]).any()
    np.testing.assert_array_equal(stepped, block)


def test_a_plastic_projection_learns_as_the_engine_does_on_its_own() -> None:
    rng = np.random.default_rng(5)
    w0 = rng.integers(-40, 40, (3, 4))
    rule = LearningRule(dw="2^-2*x1*y0 - 2^-3*y1*x0", x1=TraceSpec(64, 4.0), y1=TraceSpec(64, 4.0), t_epoch=4,
                        rng_seed=9)  # fmt: skip
    pre = rng.random((24, 2, 4)) < 0.4
    net = CoreNetwork([CorePopulation("in", 4, "input"), CorePopulation("out", 3, "program", program=Relay())],
                      [CoreProjection("w", "in", "out", w0, delay=1,
                                      engine=LoihiEngine(PlasticDense(w0, rule, batch_shape=(2,), draws="hardware")))],
                      ["in"], ["out"])  # fmt: skip
    assert needs_stepping(net)
    out = simulate(net, {"in": pre}, record=("spikes",))
    ref = PlasticDense(w0, rule, batch_shape=(2,), draws="hardware")
    arriving = np.zeros((2, 4), dtype=bool)
    for t in range(24):
        post = ref.forward(arriving) > 0
        np.testing.assert_array_equal(out.spikes["out"][t], post)
        ref.step(pre[t], post)
        arriving = pre[t]
    np.testing.assert_array_equal(net.projections[0].engine.weights, ref.weights)
    assert (ref.weights != w0).any()


def test_a_projection_into_a_missing_port_is_refused_by_name() -> None:
    net = relay_chain(1, port="basal")
    with pytest.raises(NeurodeployError, match="port 'basal'.*'soma', 'apical'"):
        SteppedRun(net)


def test_loihi1_arithmetic_is_refused() -> None:
    net = relay_chain(1)
    net.arithmetic = "loihi1"
    with pytest.raises(NeurodeployError, match="Loihi 2.*'loihi1'"):
        SteppedRun(net)


class Recorder:
    """An engine that keeps the third factors it was handed; its weights never move."""

    def __init__(self, weights: np.ndarray) -> None:
        self.weights, self.seen = weights, []

    def deliver(self, payload: np.ndarray) -> np.ndarray:
        return np.asarray(self.weights, dtype=np.float64) @ np.asarray(payload, dtype=np.float64)

    def learn(self, pre: Emission, post: Emission, t: int) -> bool:
        self.seen.append(dict(post.third_factor))
        return False


class Teacher(Relay):
    """A relay that also sends its value as the third factor y1."""

    def step(self, state: dict[str, np.ndarray], inputs: dict, t: int) -> Emission:
        em = super().step(state, inputs, t)
        return Emission(em.spikes, em.payload, {"y1": em.payload["value"]})


def test_an_engine_reads_its_third_factor_from_the_population_the_projection_names() -> None:
    engine = Recorder(np.eye(3))
    pops = [CorePopulation("x", 3, "input"), CorePopulation("b", 3, "program", program=Relay()),
            CorePopulation("c", 3, "program", program=Teacher())]  # fmt: skip
    projs = [CoreProjection("xb", "x", "b", np.eye(3), delay=0, channel="graded", engine=engine, third_factor_from="c"),
             CoreProjection("xc", "x", "c", 2 * np.eye(3, dtype=np.int64), delay=0, channel="graded")]  # fmt: skip
    x = np.array([[0, 0, 0], [1, 2, 3]])
    SteppedRun(CoreNetwork(pops, projs, ["x"], ["b"])).run({"x": x})
    assert engine.seen[0]["y1"].tolist() == [0, 0, 0] and engine.seen[1]["y1"].tolist() == [2, 4, 6]
    projs[0].third_factor_from = "nowhere"
    with pytest.raises(NeurodeployError, match="third factors from unknown population 'nowhere'"):
        SteppedRun(CoreNetwork(pops, projs, ["x"], ["b"]))

"""The emulator's fast paths agree with each other and with a plain per-step int64 reference loop.

Covered: strict mode, sparse == dense weights, instance batching (instance k alone == instance k in
the batch), event-driven (gather, sparse spikes) == dense kernels, block size independence, the
float64 neuron state == the int64 one, the float32 guard and the int64 fallback for huge inputs, and
the synaptic-event counter with per-instance weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodeploy.emulator import synapses
from neurodeploy.emulator.kernels import LoihiCompiledState
from neurodeploy.emulator.kernels import available as kernels_available
from neurodeploy.emulator.loihi import LoihiCubaState, LoihiFastState, prepare_weights, shift_by_exp
from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.emulator.simulate import simulate
from neurodeploy.errors import NeurodeployError

REC = ("spikes", "u", "v")


def reference(net: CoreNetwork, x: np.ndarray, steps: int) -> dict[str, dict[str, np.ndarray]]:
    """The straightforward loop: every step, every projection as an int64 matmul, LoihiCubaState."""
    weights = {}
    for pr in net.projections:
        w = pr.weight.toarray() if sp.issparse(pr.weight) else np.asarray(pr.weight)
        w = prepare_weights(w, pr.num_weight_bits, pr.sign_mode)
        weights[pr.name] = w[..., None, :, :] if w.ndim > 2 else w  # instances x (shared) samples
    lead = [np.shape(v)[:-1] for p in net.populations for v in p.params.values()]
    batch = np.broadcast_shapes(x.shape[1:-1], *lead, *(w.shape[:-2] for w in weights.values()))
    spikes = {p.name: np.zeros((steps, *batch, p.size), dtype=bool) for p in net.populations}
    states = {p.name: LoihiCubaState((*batch, p.size), p.params) for p in net.populations if p.name not in net.inputs}
    out = {k: {n: np.zeros((steps, *batch, net.population(n).size), dtype=np.int64) for n in states} for k in "uv"}
    for t in range(steps):
        for pop in net.update_order():
            if pop.name in net.inputs:
                spikes[pop.name][t] = x[t] if t < len(x) else False
                continue
            a = np.zeros((*batch, pop.size), dtype=np.int64)
            for pr in net.projections:
                if pr.dst == pop.name and t >= pr.delay:
                    s = spikes[pr.src][t - pr.delay].astype(np.int64)
                    a = a + shift_by_exp((weights[pr.name] @ s[..., None])[..., 0], pr.weight_exp)
            spikes[pop.name][t] = states[pop.name].step(a)
            out["u"][pop.name][t], out["v"][pop.name][t] = states[pop.name].u, states[pop.name].v
    return {"spikes": spikes, **out}


def assert_same(got, expected: dict, kinds=REC) -> None:
    for kind in kinds:
        exp = expected[kind] if isinstance(expected, dict) else getattr(expected, kind)
        for name, arr in getattr(got, kind).items():
            np.testing.assert_array_equal(arr, exp[name], err_msg=f"{kind}[{name}]")


def _lif(rng, shape, vth_hi=3000, du_hi=4095):
    return {"du": rng.integers(0, du_hi + 1, shape), "dv": rng.integers(0, 4096, shape),
            "vth": rng.integers(0, vth_hi, shape), "bias_mant": rng.integers(-200, 200, shape),
            "bias_exp": rng.integers(0, 4, shape)}  # fmt: skip


def recurrent_net(seed: int, n_in=12, n=10, lead=(), w_lead=(), sparse=False, hot=False) -> CoreNetwork:
    """in -> a -> b, a -> a (delay 2), b -> a (delay 5), in -> b (delay 3)."""
    rng = np.random.default_rng(seed)

    def w(n_dst, n_src, shared=False):
        m = rng.integers(-256, 256, (*(() if shared else w_lead), n_dst, n_src)) * (rng.random((n_dst, n_src)) < 0.5)
        return sp.csr_matrix(m) if sparse else m

    exp = 7 if hot else 0
    pops = [CorePopulation("in", n_in, "input"),
            CorePopulation("a", n, "loihi", _lif(rng, (*lead, n), du_hi=50 if hot else 4095)),
            CorePopulation("b", n, "loihi", _lif(rng, (*lead, n)))]  # fmt: skip
    projs = [CoreProjection("in->a", "in", "a", w(n, n_in), delay=1, weight_exp=exp),
             CoreProjection("a->a", "a", "a", w(n, n), delay=2, weight_exp=-1, num_weight_bits=6),
             CoreProjection("a->b", "a", "b", w(n, n, shared=True), delay=1, sign_mode="excitatory"),
             CoreProjection("b->a", "b", "a", w(n, n), delay=5, weight_exp=2, sign_mode="inhibitory"),
             CoreProjection("in->b", "in", "b", w(n, n_in), delay=3)]  # fmt: skip
    return CoreNetwork(pops, projs, ["in"], ["b"])


# ------------------------------------------------------------------ against the reference loop


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**31), st.sampled_from(["dense", "sparse", "instances"]), st.booleans(),
       st.sampled_from([0.05, 0.4, 1.0]), st.sampled_from(["numba", "numpy"]))  # fmt: skip
def test_fast_paths_match_the_reference_loop(seed, kind, hot, p, kernels):
    inst = kind == "instances"
    net = recurrent_net(
        seed, sparse=kind == "sparse", hot=hot, lead=(2, 1) if inst else (), w_lead=(2,) if inst else ()
    )
    x = np.random.default_rng(seed + 1).random((30, 3, 12)) < p
    out = simulate(net, {"in": x}, steps=36, record=REC, kernels=kernels)
    assert_same(out, reference(net, x, 36))


def test_sparse_weights_equal_dense_weights():
    rng = np.random.default_rng(0)
    x = rng.random((40, 2, 12)) < 0.3
    dense = simulate(recurrent_net(5), {"in": x}, steps=45, record=REC)
    sparse = simulate(recurrent_net(5, sparse=True), {"in": x}, steps=45, record=REC)
    assert_same(sparse, {k: getattr(dense, k) for k in REC})
    assert sparse.counters == dense.counters and dense.counters["synaptic_events"] > 0
    assert sparse.paths["kernel_calls"]["sparse"] > 0


@pytest.mark.parametrize("w_lead", [(4,), ()], ids=["per-instance weights", "shared weights"])
def test_instance_alone_equals_instance_in_the_batch(w_lead):
    """Instances (4, 1) x 3 samples; per-instance parameters (and weights); the input is shared."""
    net = recurrent_net(11, lead=(4, 1), w_lead=w_lead)
    x = np.random.default_rng(1).random((25, 3, 12)) < 0.3
    batch = simulate(net, {"in": x}, steps=30, record=REC)
    assert batch.spikes["b"].shape == (30, 4, 3, 10)
    events = 0
    for k in range(4):
        alone = CoreNetwork(
            [CorePopulation(p.name, p.size, p.model, {n: v[k] for n, v in p.params.items()}) for p in net.populations],
            [CoreProjection(pr.name, pr.src, pr.dst, pr.weight[k] if pr.weight.ndim > 2 else pr.weight, pr.delay,
                            pr.weight_exp, pr.num_weight_bits, pr.sign_mode) for pr in net.projections],
            net.inputs, net.outputs,
        )  # fmt: skip
        one = simulate(alone, {"in": x}, steps=30, record=REC)
        for kind in REC:
            for name, arr in getattr(one, kind).items():
                np.testing.assert_array_equal(getattr(batch, kind)[name][:, k], arr, err_msg=f"{kind} {name} {k}")
        events += one.counters["synaptic_events"]
    assert batch.counters["synaptic_events"] == events  # fan-out counted per instance
    assert_same(batch, reference(net, x, 30))


def test_event_driven_and_dense_kernels_agree(monkeypatch):
    net = recurrent_net(3)
    x = np.random.default_rng(2).random((60, 2, 12)) < 0.05
    runs = {}
    cases = [("dense", 0.0, -1.0, "numpy"), ("gather", 1.0, -1.0, "numpy"), ("sparse", 0.0, 1.0, "numpy")]
    if kernels_available():
        cases.append(("events", 0.0, -1.0, "numba"))
    for name, gather, density, kernels in cases:
        monkeypatch.setattr(synapses, "GATHER_FRACTION", gather)
        monkeypatch.setattr(synapses, "SPARSE_SPIKE_DENSITY", density)
        runs[name] = simulate(net, {"in": x}, steps=64, record=REC, kernels=kernels)
        assert runs[name].paths["kernel_calls"][name] > 0, runs[name].paths
    for name in [c[0] for c in cases[1:]]:
        assert_same(runs[name], {k: getattr(runs["dense"], k) for k in REC})
        assert runs[name].counters == runs["dense"].counters


def test_block_size_does_not_change_results():
    net = recurrent_net(4, lead=(2, 1))  # instances: blocks also broadcast the shared input's sums
    x = np.random.default_rng(3).random((50, 2, 12)) < 0.3
    whole = simulate(net, {"in": x}, steps=55, record=REC)
    for block in (1, 7):
        out = simulate(net, {"in": x}, steps=55, record=REC, block_steps=block)
        assert_same(out, {k: getattr(whole, k) for k in REC})


# ------------------------------------------------------------------ strict mode


def _chain(weight_exp: int, dv: int = 0, n_in: int = 1) -> CoreNetwork:
    lif = {"du": np.array([0]), "dv": np.array([dv]), "vth": np.array([131071]), "bias_mant": np.array([0]),
           "bias_exp": np.array([0])}  # fmt: skip
    quiet = {**lif, "du": np.array([4095])}
    return CoreNetwork(
        [CorePopulation("in", n_in, "input"), CorePopulation("first", 1, "loihi", quiet),
         CorePopulation("second", 1, "loihi", lif)],
        [CoreProjection("p1", "in", "first", np.full((1, n_in), 2)),
         CoreProjection("p2", "in", "second", np.full((1, n_in), 254), delay=1, weight_exp=weight_exp)],
        ["in"], ["second"],
    )  # fmt: skip


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_strict_names_population_and_step_of_the_first_u_wrap(kernels):
    x = np.ones((6, 1, 1), dtype=bool)
    net = _chain(weight_exp=8, dv=4095)  # u grows by 254 * 2^14 = 4.16M per step; v just follows u
    relaxed = simulate(net, {"in": x}, record=("u",), kernels=kernels)
    assert relaxed.counters["u_wraps"] > 0
    step = int(np.argmax(relaxed.u["second"][:, 0, 0] < 0))
    with pytest.raises(NeurodeployError) as err:
        simulate(net, {"in": x}, strict=True, kernels=kernels)
    assert "'second'" in str(err.value) and f"step {step}" in str(err.value) and "u wrap" in str(err.value)


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_strict_reports_the_earliest_step_across_populations(kernels):
    """'first' runs before 'second' but overflows later: the error names 'second' and its step."""
    net = _chain(weight_exp=8, dv=4095)
    net.populations[1].params = dict(net.populations[2].params)
    net.projections[0].weight = np.array([[120]])
    net.projections[0].weight_exp = 8  # 120 * 2^14 per step: u passes 2^23 at step 5, later than 'second'
    x = np.ones((8, 1, 1), dtype=bool)
    relaxed = simulate(net, {"in": x}, record=("u",), kernels=kernels)
    first_wrap = {n: int(np.argmax(relaxed.u[n][:, 0, 0] < 0)) for n in ("first", "second")}
    assert 0 < first_wrap["second"] < first_wrap["first"]
    with pytest.raises(NeurodeployError, match=f"u wrap \\(24 bit\\) at step {first_wrap['second']} .*'second'"):
        simulate(net, {"in": x}, strict=True, block_steps=3, kernels=kernels)


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_strict_reports_v_saturation_and_int32_overflow(kernels):
    x = np.ones((200, 1, 1), dtype=bool)
    with pytest.raises(NeurodeployError, match="v saturation"):
        simulate(_chain(weight_exp=4), {"in": x}, strict=True, kernels=kernels)  # u settles below 2^23, v integrates up
    net = _chain(weight_exp=8, n_in=600)  # 600 x 254 x 2^14 > 2^31
    with pytest.raises(NeurodeployError, match="int32 overflow of u"):
        simulate(net, {"in": np.ones((3, 1, 600), dtype=bool)}, strict=True, kernels=kernels)


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_strict_without_overflow_changes_nothing(kernels):
    net = recurrent_net(8)
    x = np.random.default_rng(4).random((30, 2, 12)) < 0.3
    a = simulate(net, {"in": x}, record=REC, kernels=kernels)
    b = simulate(net, {"in": x}, record=REC, strict=True, kernels=kernels)
    assert a.counters["u_wraps"] == a.counters["v_saturations"] == 0
    assert_same(b, {k: getattr(a, k) for k in REC})


# ------------------------------------------------------------------ numerics guards


def test_float_state_equals_int_state_through_every_overflow():
    rng = np.random.default_rng(9)
    params = _lif(rng, (3, 50), vth_hi=131071, du_hi=4095)
    fast, ref = LoihiFastState((3, 50), params), LoihiCubaState((3, 50), params)
    for t in range(300):
        a = rng.integers(-(2**28), 2**28, (3, 50)) * (rng.random((3, 50)) < 0.3) >> rng.integers(0, 30)
        s_fast, s_ref = fast.step((a << 6).astype(float), t), ref.step(a, t)
        np.testing.assert_array_equal(s_fast, s_ref)
        np.testing.assert_array_equal(fast.u, ref.u)
        np.testing.assert_array_equal(fast.v, ref.v)
    assert fast.u_wraps == ref.u_wraps > 0 and fast.v_saturations == ref.v_saturations > 0
    assert vars(fast.first_violation) == vars(ref.first_violation)


def test_compiled_state_equals_int_state_through_every_overflow(monkeypatch):
    """Per step and in blocks of parallel chunks: LoihiCubaState's numbers, counters and first violation."""
    from neurodeploy.emulator import kernels

    monkeypatch.setattr(kernels, "CHUNK", 7)  # 150 neurons in 22 chunks, merged afterwards
    rng = np.random.default_rng(19)
    params = _lif(rng, (3, 50), vth_hi=131071, du_hi=4095)
    a = (
        rng.integers(-(2**28), 2**28, (300, 3, 50)) * (rng.random((300, 3, 50)) < 0.3)
        >> rng.integers(0, 30, 300)[:, None, None]
    )
    ref = LoihiCubaState((3, 50), params)
    per_step, block = LoihiCompiledState((3, 50), params), LoihiCompiledState((3, 50), params)
    spikes = np.zeros((300, 3, 50), dtype=bool)
    rec_u, rec_v = np.zeros((2, 300, 3, 50), dtype=np.int64)
    block.run((a << 6).astype(float), 0, spikes, rec_u, rec_v)
    for t in range(300):
        s_ref = ref.step(a[t], t)
        np.testing.assert_array_equal(per_step.step((a[t] << 6).astype(float), t), s_ref)
        np.testing.assert_array_equal(per_step.u, ref.u)
        np.testing.assert_array_equal(per_step.v, ref.v)
        np.testing.assert_array_equal(spikes[t], s_ref)
        np.testing.assert_array_equal(rec_u[t], ref.u)
        np.testing.assert_array_equal(rec_v[t], ref.v)
    for state in (per_step, block):
        assert state.u_wraps == ref.u_wraps > 0 and state.v_saturations == ref.v_saturations > 0
        assert vars(state.first_violation) == vars(ref.first_violation)


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_float32_only_where_exact_and_int64_state_for_huge_inputs(kernels):
    rng = np.random.default_rng(5)
    n_in = 70_000  # 70000 x 255 > 2^24: a float32 sum could round
    lif = {"du": np.array([4095]), "dv": np.array([0]), "vth": np.array([131071]), "bias_mant": np.array([0]),
           "bias_exp": np.array([0])}  # fmt: skip
    pops = [CorePopulation("in", n_in, "input"), CorePopulation("h", 1, "loihi", lif),
            CorePopulation("g", 1, "loihi", dict(lif))]  # fmt: skip
    projs = [CoreProjection("big", "in", "h", np.full((1, n_in), 255), sign_mode="excitatory"),
             CoreProjection("huge", "in", "g", rng.choice([-256, 254], (1, n_in)), weight_exp=40)]  # fmt: skip
    net = CoreNetwork(pops, projs, ["in"], ["h"])
    x = rng.random((4, 1, n_in)) < 0.9
    out = simulate(net, {"in": x}, record=REC, kernels=kernels)
    assert out.paths["dtypes"] == {"big": "float64", "huge": "float64"}
    fast = "LoihiCompiledState" if kernels == "numba" else "LoihiFastState"
    assert out.paths["states"] == {"h": fast, "g": "LoihiCubaState"}
    assert_same(out, reference(net, x, 4))
    small = simulate(recurrent_net(1), {"in": x[:, :, :12]})
    assert set(small.paths["dtypes"].values()) == {"float32"}


def test_float_numerics_and_positional_call_still_work():
    params = {"du": np.array([0.5]), "dv": np.array([0.0]), "v_th": np.array([1.0]), "v_reset": np.array([0.0]),
              "bias_u": np.array([0.0]), "bias_v": np.array([0.0])}  # fmt: skip
    net = CoreNetwork([CorePopulation("in", 1, "input"), CorePopulation("n", 1, "float", params)],
                      [CoreProjection("p", "in", "n", np.array([[0.3]]))], ["in"], ["n"], numerics="float")  # fmt: skip
    out = simulate(net, {"in": np.ones((6, 2, 1), dtype=bool)}, 8, ("spikes", "v"), ["n"])
    assert set(out.spikes) == {"n"} and out.v["n"].shape == (8, 2, 1)
    # u: 0, .3, .45, .525 ...; v integrates u: 0, .3, .75, 1.275 > 1 -> spike at step 3
    assert out.spikes["n"][:, 0, 0].nonzero()[0][0] == 3


@pytest.mark.parametrize("mode", ["mixed", "excitatory", "inhibitory"])
def test_float32_weight_preparation_equals_the_integer_one(mode):
    rng = np.random.default_rng(6)
    w = np.concatenate([rng.integers(-700, 700, 500), [2**40, -(2**40), 255, -256, 0, 1, -1]])
    for bits in range(1, 9):
        np.testing.assert_array_equal(synapses._prepare_float32(w, bits, mode), prepare_weights(w, bits, mode))
    f = rng.uniform(-300, 300, 200)  # float weights truncate toward zero, like an int conversion
    np.testing.assert_array_equal(synapses._prepare_float32(f, 6, mode), prepare_weights(f, 6, mode))


@pytest.mark.parametrize("w_lead", [(3,), ()], ids=["per-instance weights", "shared weights"])
@pytest.mark.parametrize("mode,bits", [("mixed", 8), ("excitatory", 8), ("inhibitory", 7), ("mixed", 3)])
def test_int8_gemm_equals_the_float_sums(monkeypatch, w_lead, mode, bits):
    """With torch loaded, dense blocks go through the int8 GEMM (offset levels included) and change nothing."""
    pytest.importorskip("torch")
    from neurodeploy.emulator import int8gemm

    monkeypatch.setattr(int8gemm, "MIN_MACS", 0)
    monkeypatch.setattr(synapses, "MIN_MACS", 0)
    rng = np.random.default_rng(bits)
    pops = [CorePopulation("in", 40, "input"), CorePopulation("h", 30, "loihi", _lif(rng, (*w_lead, 1, 30))),
            CorePopulation("o", 20, "loihi", _lif(rng, (20,)))]  # fmt: skip
    projs = [CoreProjection("in->h", "in", "h", rng.integers(-256, 256, (*w_lead, 30, 40)), sign_mode=mode,
                            num_weight_bits=bits),
             CoreProjection("h->o", "h", "o", rng.integers(-256, 256, (20, 30)), weight_exp=-2)]  # fmt: skip
    net = CoreNetwork(pops, projs, ["in"], ["o"])
    x = rng.random((50, 2, 40)) < 0.6
    fast = simulate(net, {"in": x}, record=REC, kernels="auto")
    plain = simulate(net, {"in": x}, record=REC, kernels="numpy")
    assert fast.paths["kernel_calls"]["int8"] > 0 and plain.paths["kernel_calls"]["int8"] == 0
    assert_same(fast, {k: getattr(plain, k) for k in REC})
    assert_same(plain, reference(net, x, 50))


@pytest.mark.parametrize("chunk", [3, 2048])
def test_input_shared_by_all_instances_is_broadcast_not_copied(monkeypatch, chunk):
    """One input row for 5 instances: the compiled kernel reads it per row of neurons (in chunks of 3 or one
    chunk per row) and keeps the reference numbers, wraps and saturations included."""
    from neurodeploy.emulator import kernels

    monkeypatch.setattr(kernels, "CHUNK", chunk)
    net = recurrent_net(21, lead=(5, 1), hot=True)
    net.projections = [pr for pr in net.projections if pr.src == "in" or pr.name == "a->b"]  # feed-forward
    x = np.random.default_rng(3).random((30, 1, 12)) < 0.5
    out = simulate(net, {"in": x}, steps=36, record=REC, kernels="numba")
    assert out.counters["u_wraps"] + out.counters["v_saturations"] > 0
    assert_same(out, reference(net, x, 36))
    assert_same(simulate(net, {"in": x}, steps=36, record=REC, kernels="numpy"), reference(net, x, 36))


@pytest.mark.skipif(not kernels_available(), reason="numba (the fast extra) is not installed")
@pytest.mark.parametrize("mode,bits", [("mixed", 8), ("excitatory", 8), ("inhibitory", 7), ("mixed", 3)])
def test_compiled_event_sums_are_exact(mode, bits):
    """Int8 levels (with the offset of unsigned modes) summed in int16 lanes and flushed every 255 active
    sources: equal to the float64 sums at every density, with empty and full rows."""
    from neurodeploy.emulator.events import EventWeights

    rng = np.random.default_rng(bits)
    w = prepare_weights(rng.integers(-256, 256, (70, 600)), bits, mode)
    step = 2 ** (8 - bits + int(mode == "mixed"))
    ev = EventWeights(w, step)
    for density in (0.0, 0.02, 0.3, 1.0):  # 600 active sources: two flushes of the int16 lanes
        rows = rng.random((9, 600)) < density
        want = rows.astype(np.float64) @ w.T.astype(np.float64)
        np.testing.assert_array_equal(ev.sums(rows), want)
    with pytest.raises(ValueError, match="256 levels"):
        EventWeights(np.array([[0, 3]]), 2)

"""Differential test: the ``loihi1`` arithmetic against nengo-loihi 1.1.0's emulator and brian2-loihi 0.5.2.

Both oracles model Loihi 1 itself, independently of Lava. Random networks are drawn as raw integers
(and one is compiled with ``neurodeploy.compile(graph, "loihi1")``); spikes, u and v must agree at every
step. What each oracle can express bounds what it is asked:

- nengo-loihi (``nengo_loihi/emulator/interface.py``): per-neuron du, dv, vth, bias and refractory
  counter, the 21-bit accumulator and 23-bit u wraps, v saturation (vmin/vmax set to ±(2^23 - 1), the
  widest Loihi 1 allows), one step of synaptic latency. The weights it receives are our stored mantissas
  passed through its own two-part chip shift (``builder/discretize.py`` ``shift``, then << 6).
- brian2-loihi (``loihi_synapses.py``, ``loihi_neuron_group.py``): delays 0..62, per-group scalar
  parameters, no bias, no wraps (it clips each weight at 21 bits instead), so it gets in-range networks.
  It computes the actual weights from the mantissa, sign mode and num_weight_bits itself. Its step k is
  our step k + 1 and its synaptic delay d our delay d + 1; its I recorded at the step's end is our
  u after one decay.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.emulator.simulate import simulate

SIGN_MODES = ["mixed", "excitatory", "inhibitory"]
RECORD = ("spikes", "u", "v")


def _need(module: str) -> None:
    """Skip with the import error as the reason when an oracle cannot be imported."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[oracles]')")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importlib.import_module(module)
    except Exception as exc:  # an oracle that installs but cannot import is still no oracle
        pytest.skip(f"{module} does not import: {exc!r}")


def _ours(net: CoreNetwork, x: np.ndarray, steps: int, kernels: str = "auto"):
    return simulate(net, {"in": x}, steps=steps, record=RECORD, strict=False, kernels=kernels)


# --- nengo-loihi -------------------------------------------------------------------------------------


def run_nengo(net: CoreNetwork, x: np.ndarray, steps: int) -> dict[str, dict[str, np.ndarray]]:
    from neurodeploy.emulator.backends.nengo_loihi import run_nengo_loihi

    return run_nengo_loihi(net, {net.inputs[0]: x}, steps)


def compare_nengo(net: CoreNetwork, x: np.ndarray, steps: int, kernels: str = "auto"):
    ours = _ours(net, x, steps, kernels)
    ref = run_nengo(net, x, steps)
    for name, kinds in ref.items():
        for kind, b in kinds.items():
            a = np.asarray(getattr(ours, kind)[name])
            if not np.array_equal(a, b.astype(a.dtype)):
                idx = tuple(np.argwhere(a != b)[0])
                pytest.fail(f"{kind}[{name}] differs first at {idx}: ours {a[idx]} nengo-loihi {b[idx]}")
    return ours


def _lif(rng: np.random.Generator, n: int, hot: bool, refractory: bool) -> dict[str, np.ndarray]:
    p = {
        "du": rng.choice([0, 1, 4095, *rng.integers(0, 64 if hot else 4096, 3)], n),
        "dv": rng.choice([0, 1, 4095, *rng.integers(0, 4096, 3)], n),
        "vth": rng.integers(0, (1 << 17) if hot else 3000, n),
        "bias_mant": rng.integers(-4096, 4096, n) * (rng.random(n) < 0.7),
        "bias_exp": rng.integers(0, 8, n),
    }
    if refractory:
        p["refractory"] = rng.integers(0, 63, n)
    return p


@st.composite
def nengo_networks(draw):
    """1-2 layers of 1..8 neurons, an optional self-projection, exponents -7..7; ``hot`` forces wraps."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_layers = draw(st.integers(1, 2))
    sizes = [draw(st.integers(1, 8)) for _ in range(n_layers + 1)]
    hot = draw(st.booleans())
    names = ["in"] + [f"l{i}" for i in range(n_layers)]
    pops = [CorePopulation("in", sizes[0], "input")]
    pops += [CorePopulation(nm, sz, "loihi", _lif(rng, sz, hot, draw(st.booleans())))
             for nm, sz in zip(names[1:], sizes[1:], strict=True)]  # fmt: skip

    def proj(src: int, dst: int) -> CoreProjection:
        exp = draw(st.integers(4, 7)) if hot else draw(st.integers(-7, 7))
        w = rng.integers(-256, 256, (sizes[dst], sizes[src]))
        bits, mode = draw(st.integers(1, 8)), draw(st.sampled_from(SIGN_MODES))
        return CoreProjection(f"{names[src]}->{names[dst]}", names[src], names[dst], w, delay=1, weight_exp=exp,
                              num_weight_bits=bits, sign_mode=mode)  # fmt: skip

    projs = [proj(i, i + 1) for i in range(n_layers)]
    projs += [proj(i, i) for i in range(1, n_layers + 1) if draw(st.booleans())]
    net = CoreNetwork(pops, projs, inputs=["in"], outputs=[names[-1]], arithmetic="loihi1")
    steps = draw(st.integers(2, 16))
    x = rng.random((steps, sizes[0])) < draw(st.sampled_from([0.1, 0.5, 1.0]))
    return net, x, steps


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nengo_networks(), st.sampled_from(["auto", "numpy"]))
def test_loihi1_matches_nengo_loihi_on_random_networks(case, kernels):
    _need("nengo_loihi")
    net, x, steps = case
    compare_nengo(net, x, steps, kernels)


def test_negative_exponent_drops_bits_per_weight_and_lava_differs():
    """Exponent -2, weights 1..3: Loihi 1 floors each weight to 0, Lava's floor of the sum keeps them."""
    _need("nengo_loihi")
    lif = {"du": np.array([4095]), "dv": np.array([0]), "vth": np.array([1000]),
           "bias_mant": np.array([0]), "bias_exp": np.array([0])}  # fmt: skip
    pops = [CorePopulation("in", 4, "input"), CorePopulation("h", 1, "loihi", lif)]
    proj = CoreProjection("p", "in", "h", np.array([[2, 2, 2, 2]]), weight_exp=-2)
    x = np.ones((5, 4), dtype=bool)
    ours = compare_nengo(CoreNetwork(pops, [proj], ["in"], ["h"], arithmetic="loihi1"), x, 5)
    lava = _ours(CoreNetwork(pops, [proj], ["in"], ["h"]), x, 5)
    assert not ours.u["h"].any()  # 2 >> 2 = 0 per synapse
    assert lava.u["h"][1:].min() == (8 >> 2) << 6  # the sum 8 >> 2 = 2


def test_accumulator_u_and_bias_wraps_match_nengo_loihi():
    """A hot fixed case: the 21-bit input wrap, the u wrap, the u + bias wrap and v saturation all occur."""
    _need("nengo_loihi")
    n = 4
    lif = {"du": np.array([0, 4095, 0, 10]), "dv": np.array([0, 0, 4095, 0]), "vth": np.full(n, (1 << 17) - 1),
           "bias_mant": np.array([4095, -4096, 4095, 0]), "bias_exp": np.full(n, 7)}  # fmt: skip
    pops = [CorePopulation("in", 8, "input"), CorePopulation("h", n, "loihi", lif)]
    w = np.array([[254] * 8, [-256] * 8, [254] * 4 + [-256] * 4, [100] * 8])
    net = CoreNetwork(pops, [CoreProjection("p", "in", "h", w, weight_exp=7)], ["in"], ["h"], arithmetic="loihi1")
    x = np.random.default_rng(1).random((40, 8)) < 0.6
    ours = compare_nengo(net, x, 40)
    assert ours.counters["u_wraps"] > 0 and ours.counters["v_saturations"] > 0


def test_compiled_loihi1_network_with_exponent_minus_2_matches_nengo_loihi(graph):
    """``neurodeploy.compile(graph, "loihi1")``, every exponent forced to -2: identical on both."""
    _need("nengo_loihi")
    import neurodeploy as nd

    compiled = nd.compile(graph, "loihi1", strict=False)
    core = compiled.core
    assert core.arithmetic == "loihi1"
    names = {p.name: f"p{i}" for i, p in enumerate(core.populations)}
    pops = [CorePopulation(names[p.name], p.size, p.model, p.params, reset=p.reset) for p in core.populations]
    projs = [CoreProjection(pr.name, names[pr.src], names[pr.dst], np.asarray(pr.weight), delay=1, weight_exp=-2,
                            num_weight_bits=pr.num_weight_bits, sign_mode=pr.sign_mode)
             for pr in core.projections]  # fmt: skip
    inputs = [names[n] for n in core.inputs]
    assert len(inputs) == 1
    for p in pops:
        if p.name == inputs[0]:
            p.name = "in"
    for pr in projs:
        pr.src = "in" if pr.src == inputs[0] else pr.src
    net = CoreNetwork(pops, projs, ["in"], [names[core.outputs[0]]], arithmetic="loihi1")
    x = np.random.default_rng(0).random((30, pops[0].size)) < 0.5
    compare_nengo(net, x, 30)


def test_lava_backend_refuses_loihi1_weights_whose_low_bits_the_shift_drops():
    """Lava shifts the summed input, Loihi 1 each weight: the backend runs only what they agree on."""
    from neurodeploy.emulator.backends.lava import _check_network
    from neurodeploy.errors import NeurodeployError

    lif = {"du": np.full(2, 100), "dv": np.full(2, 100), "vth": np.full(2, 50), "bias_mant": np.zeros(2, int),
           "bias_exp": np.zeros(2, int)}  # fmt: skip
    pops = [CorePopulation("in", 3, "input"), CorePopulation("h", 2, "loihi", lif)]

    def net(w, arithmetic):
        proj = CoreProjection("p", "in", "h", np.array(w), weight_exp=-2)
        return CoreNetwork(pops, [proj], ["in"], ["h"], arithmetic=arithmetic)

    with pytest.raises(NeurodeployError, match="shifts each weight by weight_exp=-2") as err:
        _check_network(net([[6, 2, 0], [8, 4, 0]], "loihi1"))
    assert "backend='emulator'" in str(err.value) and "projection 'p'" in str(err.value)
    _check_network(net([[8, 4, 0], [-8, 12, 0]], "loihi1"))  # no bits to drop: both agree
    _check_network(net([[6, 2, 0], [8, 4, 0]], "lava"))


# --- brian2-loihi ------------------------------------------------------------------------------------

BRIAN_SIGN = {"mixed": 1, "excitatory": 2, "inhibitory": 3}


def run_brian(net: CoreNetwork, x: np.ndarray, steps: int) -> dict[str, dict[str, np.ndarray]]:
    """The network on brian2-loihi, aligned to our steps 1..steps-1 (its I: our u after one decay)."""
    from brian2 import SpikeMonitor, StateMonitor, ms, prefs
    from brian2_loihi import LoihiNetwork, LoihiNeuronGroup, LoihiSpikeGeneratorGroup, LoihiSynapses

    prefs.codegen.target = "numpy"  # no C compiler needed, the numbers are the same
    t_idx, n_idx = np.nonzero(x)
    objs: dict[str, object] = {"in": LoihiSpikeGeneratorGroup(x.shape[1], n_idx, t_idx)}
    monitors = {}
    for pop in net.populations:
        if pop.name in net.inputs:
            continue
        p = {k: int(np.unique(np.asarray(v))[0]) for k, v in pop.params.items()}
        assert p["bias_mant"] == 0, "brian2-loihi neurons have no bias"
        grp = LoihiNeuronGroup(pop.size, refractory=p.get("refractory", 0) + 1, threshold_v_mant=p["vth"],
                               decay_v=p["dv"], decay_I=p["du"] + 1)  # fmt: skip
        objs[pop.name] = grp
        monitors[pop.name] = (StateMonitor(grp, ("I", "v"), record=True, when="end"), SpikeMonitor(grp))
    syns = []
    for pr in net.projections:
        syn = LoihiSynapses(objs[pr.src], objs[pr.dst], delay=pr.delay - 1, w_exp=int(pr.weight_exp),
                            sign_mode=BRIAN_SIGN[pr.sign_mode], num_weight_bits=pr.num_weight_bits)  # fmt: skip
        syn.connect()
        syn.w = np.asarray(pr.weight)[syn.j[:], syn.i[:]]
        syns.append(syn)
    mons = [m for pair in monitors.values() for m in pair]
    LoihiNetwork(*objs.values(), *syns, *mons).run(steps - 1)
    out = {}
    for name, (state, spk) in monitors.items():
        n = objs[name].N
        s = np.zeros((steps - 1, n), dtype=bool)
        s[np.rint(np.asarray(spk.t / ms)).astype(int), np.asarray(spk.i)] = True
        out[name] = {"spikes": s, "I": np.asarray(state.I).T, "v": np.asarray(state.v).T}
    return out


def compare_brian(net: CoreNetwork, x: np.ndarray, steps: int, require_in_range: bool = True):
    ours = _ours(net, x, steps)
    if require_in_range:  # brian2-loihi has no wraps or saturation: only in-range runs are comparable
        from hypothesis import assume

        assume(ours.counters["u_wraps"] == 0 and ours.counters["v_saturations"] == 0)
    ref = run_brian(net, x, steps)
    for name, got in ref.items():
        pop = net.population(name)
        keep = 4096 - (np.asarray(pop.params["du"], dtype=np.int64) + 1)
        u = np.asarray(ours.u[name])
        u_decayed = np.sign(u) * ((np.abs(u) * keep) >> 12)
        mine = {"spikes": ours.spikes[name][1:], "I": u_decayed[1:], "v": ours.v[name][1:]}
        assert not ours.spikes[name][0].any() and not u[0].any()
        for kind, b in got.items():
            a = mine[kind]
            if not np.array_equal(a, b.astype(a.dtype)):
                idx = tuple(np.argwhere(a != b)[0])
                pytest.fail(f"{kind}[{name}] differs first at step {idx[0] + 1}, neuron {idx[1]}: "
                            f"ours {a[idx]} brian2-loihi {b[idx]}")  # fmt: skip
    return ours


def _grid_weights(rng: np.random.Generator, shape: tuple[int, int], sign_mode: str, bits: int) -> np.ndarray:
    """Mantissas on the grid both sides agree on (brian2-loihi truncates toward zero, Lava floors)."""
    prec = 2 ** (8 - bits + (sign_mode == "mixed"))
    lo, hi = {"mixed": (-256, 254), "excitatory": (0, 255), "inhibitory": (-255, 0)}[sign_mode]
    return rng.integers(-(-lo // prec), hi // prec + 1, shape) * prec


@st.composite
def brian_networks(draw):
    """1-2 layers of 1..6 neurons, self- and skip projections, delays 1..63, per-group parameters."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_layers = draw(st.integers(1, 2))
    sizes = [draw(st.integers(1, 6)) for _ in range(n_layers + 1)]
    names = ["in"] + [f"l{i}" for i in range(n_layers)]
    pops = [CorePopulation("in", sizes[0], "input")]
    for nm, sz in zip(names[1:], sizes[1:], strict=True):
        p = {"du": draw(st.sampled_from([0, 1, 4095, int(rng.integers(0, 4096))])),
             "dv": draw(st.sampled_from([0, 1, 4095, int(rng.integers(0, 4096))])),
             "vth": int(rng.integers(0, 4000)), "bias_mant": 0, "bias_exp": 0,
             "refractory": draw(st.sampled_from([0, 0, 1, int(rng.integers(2, 63))]))}  # fmt: skip
        pops.append(CorePopulation(nm, sz, "loihi", {k: np.full(sz, v) for k, v in p.items()}))

    def proj(src: int, dst: int) -> CoreProjection:
        mode, bits = draw(st.sampled_from(SIGN_MODES)), draw(st.integers(1, 8))
        w = _grid_weights(rng, (sizes[dst], sizes[src]), mode, bits)
        delay = draw(st.one_of(st.integers(1, 3), st.integers(4, 63)))
        return CoreProjection(f"{names[src]}->{names[dst]}", names[src], names[dst], w, delay=delay,
                              weight_exp=draw(st.integers(-8, 3)), num_weight_bits=bits, sign_mode=mode)  # fmt: skip

    projs = [proj(i, i + 1) for i in range(n_layers)]
    projs += [proj(i, i) for i in range(1, n_layers + 1) if draw(st.booleans())]
    if n_layers == 2 and draw(st.booleans()):
        projs.append(proj(0, 2))
    net = CoreNetwork(pops, projs, inputs=["in"], outputs=[names[-1]], arithmetic="loihi1")
    steps = draw(st.integers(2, 20)) + max(pr.delay for pr in projs) // 4
    x = rng.random((steps, sizes[0])) < draw(st.sampled_from([0.1, 0.5, 1.0]))
    return net, x, steps


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(brian_networks())
def test_loihi1_matches_brian2_loihi_on_random_networks(case):
    _need("brian2_loihi")
    net, x, steps = case
    compare_brian(net, x, steps)


def test_delays_and_refractory_match_brian2_loihi():
    """A fixed case: delays 1, 5 and 40, a recurrent projection, refractory 3, exponent -3 per weight."""
    _need("brian2_loihi")
    rng = np.random.default_rng(5)
    full = {"du": 200, "dv": 100, "vth": 300, "bias_mant": 0, "bias_exp": 0, "refractory": 3}
    pops = [CorePopulation("in", 4, "input"),
            CorePopulation("a", 5, "loihi", {k: np.full(5, v) for k, v in full.items()})]  # fmt: skip
    projs = [CoreProjection("in->a#1", "in", "a", _grid_weights(rng, (5, 4), "mixed", 8), delay=1, weight_exp=-3),
             CoreProjection("in->a#40", "in", "a", _grid_weights(rng, (5, 4), "excitatory", 6), delay=40,
                            weight_exp=1, num_weight_bits=6, sign_mode="excitatory"),
             CoreProjection("a->a", "a", "a", _grid_weights(rng, (5, 5), "mixed", 7), delay=5, weight_exp=0,
                            num_weight_bits=7)]  # fmt: skip
    net = CoreNetwork(pops, projs, ["in"], ["a"], arithmetic="loihi1")
    x = rng.random((60, 4)) < 0.5
    ours = compare_brian(net, x, 60, require_in_range=False)
    assert ours.spikes["a"].sum() > 3 and ours.counters["u_wraps"] == 0


# --- the option itself (no oracle needed) ------------------------------------------------------------


def test_profiles_pick_their_arithmetic_and_artifacts_keep_it(graph, tmp_path):
    """loihi1 compiles to Loihi 1's arithmetic, loihi2 to Lava's; a saved network reads back the same."""
    import neurodeploy as nd
    from neurodeploy.compiler.compiled import load_compiled

    assert nd.compile(graph, "loihi2", strict=False).core.arithmetic == "lava"
    compiled = nd.compile(graph, "loihi1", strict=False)
    assert compiled.core.arithmetic == "loihi1"
    back = load_compiled(compiled.save(tmp_path / "net.h5"))
    assert back.core.arithmetic == "loihi1"


def test_quantizer_rounds_mantissas_to_what_loihi1_keeps():
    """Small weights get exponent -4: loihi1's mantissas are multiples of 16 (the chip's per-weight shift
    loses nothing more), and its weight SNR is lower than loihi2's, whose shift acts on the sum."""
    import nir
    from conftest import DT

    import neurodeploy as nd

    rng = np.random.default_rng(0)
    tau = DT / (1 - 0.9)
    graph = nir.NIRGraph.from_list(
        nir.Linear(weight=rng.normal(0, 1e-4, (6, 5))),
        nir.LIF(tau=np.full(6, tau), r=np.full(6, tau / DT), v_leak=np.zeros(6), v_threshold=np.ones(6)),
    )
    graph.metadata.update({"neurodeploy.dt": DT, "neurodeploy.reset": "zero"})
    snr = {}
    for profile in ("loihi1", "loihi2"):
        compiled = nd.compile(graph, profile, strict=False)
        (pr,) = compiled.core.projections
        assert pr.weight_exp == -4
        snr[profile] = compiled.report["layers"][0]["weight_snr_db"][pr.name]
        if profile == "loihi1":
            assert not np.any(np.asarray(pr.weight) % 16)
    assert snr["loihi1"] < snr["loihi2"] - 6

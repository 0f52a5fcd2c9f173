"""The Xylo core: the emulator against xylosim 0.1.3 (the vendor's C++ simulator), and the compiler onto it.

Differential tests build one random chip configuration, run it in xylosim (one sample at a time) and in
``simulate`` (all samples at once), and compare spike counts, every synaptic state and v at every step.
"""

from __future__ import annotations

import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurodeploy as nd
from neurodeploy.compiler.artifact import read_artifact
from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.emulator.simulate import simulate
from neurodeploy.errors import CompileError, NeurodeployError

LAYERS = ("in", "rec", "out")


# ------------------------------------------------------------------------------------------ chip <-> core


def random_chip(seed: int, n_in: int, n_hid: int, n_out: int, n_syn: int, n_syn_out: int, v2: bool) -> dict:
    """A chip configuration with extremes mixed in: full-range or small weights, shifts that wrap int16,
    thresholds from 1 to 32767 (sometimes 0 or negative), biases up to the int16 bounds, aliases."""
    rng = np.random.default_rng(seed)

    def weights(shape: tuple[int, ...]) -> np.ndarray:
        span = rng.choice([8, 40, 128])
        w = rng.integers(-span, span, shape)
        w = np.where(rng.random(shape) < 0.1, rng.choice([-128, 127], shape), w)
        return np.where(rng.random(shape) < rng.uniform(0.2, 0.9), w, 0)

    def thresholds(n: int) -> np.ndarray:
        th = np.exp(rng.uniform(0, np.log(32767), n)).astype(np.int64)
        return np.where(rng.random(n) < 0.05, rng.integers(-300, 1, n), th)

    def biases(n: int) -> np.ndarray | None:
        extreme = rng.choice([-32768, 32767], n)
        return np.where(rng.random(n) < 0.1, extreme, rng.integers(-2000, 2000, n)) if v2 else None

    shifts = rng.integers(0, 8, 3)
    if rng.random() < 0.15:
        shifts[rng.integers(0, 3)] = rng.integers(8, 11)  # beyond the chip's 3 bits: int16(w << shift) wraps
    return {
        "w_in": weights((n_syn, n_hid, n_in)),
        "w_rec": weights((n_syn, n_hid, n_hid)),
        "w_out": weights((n_syn_out, n_out, n_hid)),
        "shifts": shifts,
        "dash_syn": rng.integers(0, 16, (n_syn, n_hid)),
        "dash_syn_out": rng.integers(0, 16, (n_syn_out, n_out)),
        "dash_mem": rng.integers(0, 16, n_hid),
        "dash_mem_out": rng.integers(0, 16, n_out),
        "th": thresholds(n_hid),
        "th_out": thresholds(n_out),
        "bias": biases(n_hid),
        "bias_out": biases(n_out),
        "alias": np.where(rng.random(n_hid) < 0.2, rng.integers(0, n_hid, n_hid), -1),
    }


def _params(chip: dict, suffix: str, sel: slice, alias: np.ndarray | None = None) -> dict:
    dash = chip["dash_syn" + suffix][:, sel]
    p = {"dash_syn": dash[0], "dash_mem": chip["dash_mem" + suffix][sel], "threshold": chip["th" + suffix][sel]}
    if dash.shape[0] > 1:
        p["dash_syn2"] = dash[1]
    if chip["bias" + suffix] is not None:
        p["bias"] = chip["bias" + suffix][sel]
    if alias is not None:
        p["alias"] = alias
    return p


def core_from_chip(chip: dict, split: int = 0) -> CoreNetwork:
    """The chip as a CoreNetwork; ``split`` > 0 puts hidden neurons split.. in a second population."""
    n_syn, n_hid, n_in = chip["w_in"].shape
    parts = [slice(0, split), slice(split, n_hid)] if split else [slice(0, n_hid)]
    names = [f"h{i}" for i in range(len(parts))]
    pops = [CorePopulation("in", n_in, "input")]
    for name, part in zip(names, parts, strict=True):
        alias = chip["alias"][part]
        local = np.where(alias >= 0, alias - part.start, -1)  # random_chip keeps aliases inside each part
        pops.append(CorePopulation(name, part.stop - part.start, "xylo", _params(chip, "", part, local)))
    pops.append(CorePopulation("out", chip["w_out"].shape[1], "xylo_output", _params(chip, "_out", slice(None))))
    shift = dict(zip(LAYERS, (int(s) for s in chip["shifts"]), strict=True))
    projs = []
    for s in range(n_syn):
        for name, part in zip(names, parts, strict=True):
            projs.append(CoreProjection(f"in>{name}.{s}", "in", name, chip["w_in"][s, part], 0, shift["in"], synapse=s))
            for src, spart in zip(names, parts, strict=True):
                w = chip["w_rec"][s, part, spart]
                projs.append(CoreProjection(f"{src}>{name}.{s}", src, name, w, 1, shift["rec"], synapse=s))
    for s in range(chip["w_out"].shape[0]):
        for name, part in zip(names, parts, strict=True):
            w = chip["w_out"][s][:, part]
            projs.append(CoreProjection(f"{name}>out.{s}", name, "out", w, 1, shift["out"], synapse=s))
    return CoreNetwork(pops, projs, ["in"], ["out"], numerics="xylo")


def chip_from_core(core: CoreNetwork) -> dict:
    """A compiled single-hidden-population core in xylosim's terms (the inverse of ``core_from_chip``)."""
    (hid,) = [p for p in core.populations if p.model == "xylo"]
    (out,) = [p for p in core.populations if p.model == "xylo_output"]
    by = {(pr.src, pr.dst): pr for pr in core.projections}
    w_in, w_rec, w_out = (by.get(k) for k in ((core.inputs[0], hid.name), (hid.name, hid.name), (hid.name, out.name)))
    zero = np.zeros((1, hid.size, hid.size), dtype=np.int64)
    chip = {
        "w_in": w_in.weight[None],
        "w_rec": zero if w_rec is None else w_rec.weight[None],
        "w_out": w_out.weight[None],
        "shifts": np.array([w_in.weight_exp, 0 if w_rec is None else w_rec.weight_exp, w_out.weight_exp]),
        "alias": np.full(hid.size, -1),
    }
    for suffix, pop in (("", hid), ("_out", out)):
        chip["dash_syn" + suffix] = np.asarray(pop.params["dash_syn"])[None]
        chip["dash_mem" + suffix] = np.asarray(pop.params["dash_mem"])
        chip["th" + suffix] = np.asarray(pop.params["threshold"])
        chip["bias" + suffix] = pop.params.get("bias")
    return chip


def run_xylosim(chip: dict, counts: np.ndarray) -> dict[str, np.ndarray]:
    """xylosim 0.1.3 (v1, or v2 with biases) on counts (time, batch, n_in); recordings (time, batch, ...)."""
    mod = pytest.importorskip("xylosim.v2" if chip["bias"] is not None else "xylosim.v1")

    def synapses(w: np.ndarray) -> list:
        n_syn, n_post, n_pre = w.shape
        return [[mod.XyloSynapse(int(j), int(s), int(w[s, j, i])) for s in range(n_syn) for j in range(n_post)
                 if w[s, j, i]] for i in range(n_pre)]  # fmt: skip

    args = [synapses(chip["w_in"]), synapses(chip["w_rec"]), synapses(chip["w_out"])]
    args += [[[int(a)] if a >= 0 else [] for a in chip["alias"]], chip["th"].tolist(), chip["th_out"].tolist()]
    if chip["bias"] is not None:
        args += [True, chip["bias"].tolist(), chip["bias_out"].tolist()]
    args += [int(s) for s in chip["shifts"]]
    args += [chip["dash_mem"].tolist(), chip["dash_mem_out"].tolist()]
    args += [chip["dash_syn"].T.tolist(), chip["dash_syn_out"].T.tolist(), "test"]
    layer = mod.XyloLayer(*args)
    runs = []
    for b in range(counts.shape[1]):
        layer.reset_all()
        layer.evolve(counts[:, b].astype(int).tolist())
        rec = {"hid": layer.rec_recurrent_spikes, "out": layer.rec_out_spikes, "v": np.transpose(layer.rec_v_mem),
               "v_out": np.transpose(layer.rec_v_mem_out), "i0": np.transpose(layer.rec_i_syn),
               "i0_out": np.transpose(layer.rec_i_syn_out)}  # fmt: skip
        if chip["w_in"].shape[0] > 1:
            rec["i1"] = np.transpose(layer.rec_i_syn2)
        if chip["w_out"].shape[0] > 1:
            rec["i1_out"] = np.transpose(layer.rec_i_syn2_out)
        runs.append({k: np.asarray(v).reshape(counts.shape[0], -1) for k, v in rec.items()})
    return {k: np.stack([r[k] for r in runs], axis=1) for k in runs[0]}


def assert_same(core: CoreNetwork, chip: dict, counts: np.ndarray) -> dict:
    """Spikes, every synaptic state and v of the emulator equal xylosim's at every step."""
    ref = run_xylosim(chip, counts)
    got = simulate(core, {"in": counts} if "in" in core.inputs else {core.inputs[0]: counts},
                   record=("spikes", "u", "v", "isyn"))  # fmt: skip
    hidden = [p.name for p in core.populations if p.model == "xylo"]
    (out,) = [p.name for p in core.populations if p.model == "xylo_output"]
    cat = {kind: np.concatenate([getattr(got, kind)[n] for n in hidden], axis=-1) for kind in ("spikes", "v")}
    isyn = np.concatenate([got.isyn[n] for n in hidden], axis=-1)
    np.testing.assert_array_equal(cat["spikes"], ref["hid"])
    np.testing.assert_array_equal(got.spikes[out], ref["out"])
    np.testing.assert_array_equal(cat["v"], ref["v"])
    np.testing.assert_array_equal(got.v[out], ref["v_out"])
    for s in range(isyn.shape[-2]):
        np.testing.assert_array_equal(isyn[..., s, :], ref[f"i{s}"])
    for s in range(got.isyn[out].shape[-2]):
        np.testing.assert_array_equal(got.isyn[out][..., s, :], ref[f"i{s}_out"])
    np.testing.assert_array_equal(got.u[out], got.isyn[out].sum(axis=-2))
    return got.counters


# ------------------------------------------------------------------------------------------ differential


@st.composite
def chips(draw: st.DrawFn) -> tuple[dict, CoreNetwork, np.ndarray]:
    n_in, n_hid, n_out = draw(st.integers(1, 16)), draw(st.integers(1, 24)), draw(st.integers(1, 8))
    n_syn, n_syn_out, v2 = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.booleans())
    chip = random_chip(draw(st.integers(0, 2**32 - 1)), n_in, n_hid, n_out, n_syn, n_syn_out, v2)
    split = draw(st.integers(0, n_hid - 1))
    if split:  # aliases stay inside their population
        part = np.arange(n_hid) >= split
        chip["alias"] = np.where(part[np.maximum(chip["alias"], 0)] == part, chip["alias"], -1)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    steps, batch = draw(st.integers(1, 30)), draw(st.integers(1, 3))
    top = draw(st.sampled_from([1, 15, 40]))  # counts above 15 act as 15
    counts = rng.integers(0, top + 1, (steps, batch, n_in)) * (rng.random((steps, batch, n_in)) < 0.4)
    return chip, core_from_chip(chip, split), counts


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chips())
def test_emulator_equals_xylosim_spike_for_spike(case: tuple[dict, CoreNetwork, np.ndarray]) -> None:
    chip, core, counts = case
    assert_same(core, chip, counts)


def test_saturating_and_quiet_networks_match_and_count() -> None:
    """Full-scale weights at shift 7 saturate Isyn and v all the time; small weights never do."""
    loud = random_chip(3, 16, 20, 8, 2, 1, v2=False)
    loud.update(w_in=np.full_like(loud["w_in"], 127), shifts=np.array([7, 7, 7]))
    loud["w_in"][1] = -128
    counts = np.full((20, 2, 16), 15)
    counters = assert_same(core_from_chip(loud), loud, counts)
    assert counters["isyn_saturations"] > 0 and counters["v_saturations"] > 0 and counters["spikes_capped"] > 0
    quiet = random_chip(4, 4, 6, 2, 1, 1, v2=True)
    quiet.update({k: np.sign(quiet[k]) for k in ("w_in", "w_rec", "w_out")}, shifts=np.zeros(3, dtype=int))
    quiet.update(bias=np.zeros(6, dtype=int), bias_out=np.zeros(2, dtype=int), th=np.full(6, 100))
    counters = assert_same(core_from_chip(quiet), quiet, np.ones((10, 1, 4), dtype=int))
    assert counters["isyn_saturations"] == counters["v_saturations"] == 0


def test_chip_instances_are_a_batch_axis() -> None:
    """Per-instance weights and thresholds (instances, 1, n) run each instance's own chip."""
    base = random_chip(10, 6, 10, 3, 1, 1, v2=False)
    chips_ = []
    for i in range(3):  # same chip, other weights and hidden thresholds
        other = random_chip(20 + i, 6, 10, 3, 1, 1, v2=False)
        chips_.append({**base, **{k: other[k] for k in ("w_in", "w_rec", "w_out", "th")}})
    cores = [core_from_chip(c) for c in chips_]
    batched = cores[0]
    for pr in batched.projections:
        pr.weight = np.stack([c.projections[batched.projections.index(pr)].weight for c in cores])
    hid = batched.population("h0")
    hid.params["threshold"] = np.stack([c["th"] for c in chips_])[:, None, :]
    counts = np.random.default_rng(0).integers(0, 4, (25, 2, 6))
    got = simulate(batched, {"in": counts}, record=("spikes", "v"))
    for i, chip in enumerate(chips_):
        ref = run_xylosim(chip, counts)
        np.testing.assert_array_equal(got.spikes["h0"][:, i], ref["hid"])
        np.testing.assert_array_equal(got.v["out"][:, i], ref["v_out"])


def test_strict_mode_and_bad_networks_raise() -> None:
    chip = random_chip(5, 16, 8, 2, 1, 1, v2=False)
    chip.update(w_in=np.full_like(chip["w_in"], 127), shifts=np.array([7, 0, 0]))
    core = core_from_chip(chip)
    with pytest.raises(NeurodeployError, match="strict mode: Isyn saturation .* at step 0"):
        simulate(core, {"in": np.full((5, 1, 16), 15)}, strict=True)
    core.projections[0].weight = core.projections[0].weight * 2
    with pytest.raises(NeurodeployError, match="beyond int8"):
        simulate(core, {"in": np.ones((2, 1, 16))})
    core = core_from_chip(chip)
    core.projections[0].delay = 1
    with pytest.raises(NeurodeployError, match="delay 1 from input neurons"):
        simulate(core, {"in": np.ones((2, 1, 16))})
    core = core_from_chip(chip)
    with pytest.raises(NeurodeployError, match="non-negative integers"):
        simulate(core, {"in": -np.ones((2, 1, 16))})


# ------------------------------------------------------------------------------------------ compiler


def cuba_graph(sizes: tuple[int, ...] = (16, 64, 8), tau_syn: float = 4e-3, tau_mem: float = 8e-3, seed: int = 0):
    """Linear -> CubaLIF layers at dt = 1 ms, subtractive reset, no biases (what Xylo Audio 2 runs)."""
    rng = np.random.default_rng(seed)
    nodes: list = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        ones = np.ones(n_out)
        nodes.append(nir.Linear(weight=rng.normal(0, 2.0 / np.sqrt(n_in) * 4, (n_out, n_in))))
        nodes.append(nir.CubaLIF(tau_syn=tau_syn * ones, tau_mem=tau_mem * ones, r=ones, v_leak=0 * ones,
                                 v_threshold=ones, w_in=ones))  # fmt: skip
    graph = nir.NIRGraph.from_list(*nodes)
    graph.metadata.update({"neurodeploy.dt": 1e-3, "neurodeploy.reset": "subtract"})
    return graph


def test_compile_16_64_8_runs_like_the_float_reference_and_like_xylosim() -> None:
    graph = cuba_graph()
    x = np.random.default_rng(1).random((120, 8, 16)) < 0.2
    compiled = nd.compile(graph, "xylo-audio2", sample_inputs=x)
    core = compiled.core
    assert core.numerics == "xylo" and [p.model for p in core.populations] == ["input", "xylo", "xylo_output"]
    for pr in core.projections:
        assert pr.weight.dtype == np.int64 and 0 <= pr.weight_exp <= 7
        assert np.abs(pr.weight).max() == 127  # the largest weight of each layer is a full int8
    hid = core.populations[1].params
    assert set(hid) == {"dash_syn", "dash_mem", "threshold"}  # Audio 2: no bias
    assert np.all(hid["dash_syn"] == 2) and np.all(hid["dash_mem"] == 3) and 0 < hid["threshold"].max() <= 2**14
    assert core.latency() == {"input": 0, "cubalif": 0, "cubalif_1": 1}
    layers = compiled.evaluation["layers"]  # power-of-two time constants: the chip follows the reference
    assert min(v["count_correlation"] for v in layers.values()) > 0.99
    assert compiled.evaluation["prediction_agreement"]["cubalif_1"] >= 0.75
    result = nd.run(compiled, x)
    assert result.output().shape == (120, 8, 8) and result.counters["isyn_saturations"] == 0
    chip = chip_from_core(core)  # the compiled configuration, run by xylosim itself
    assert_same(core, chip, x.astype(np.int64))


def test_dash_rounding_error_and_lif_are_reported() -> None:
    compiled = nd.compile(cuba_graph(tau_syn=3e-3, tau_mem=20e-3), "xylo-audio2")
    rep = compiled.quantization[0]
    assert compiled.core.populations[1].params["dash_syn"][0] == 2  # log2(3) = 1.58 -> 2
    assert compiled.core.populations[1].params["dash_mem"][0] == 4  # log2(20) = 4.32 -> 4
    assert rep.decay_abs_error == pytest.approx(abs(0.25 - 1 / 3))
    rng = np.random.default_rng(0)
    lif = nir.NIRGraph.from_list(
        nir.Linear(weight=rng.normal(0, 1, (10, 4))), nir.LIF(tau=np.full(10, 8e-3), r=np.ones(10),
                                                              v_leak=np.zeros(10), v_threshold=np.ones(10)),
        nir.Linear(weight=rng.normal(0, 1, (2, 10))), nir.LIF(tau=np.full(2, 8e-3), r=np.ones(2),
                                                             v_leak=np.zeros(2), v_threshold=np.ones(2)),
    )  # fmt: skip
    compiled = nd.compile(lif, "xylo-audio2", dt=1e-3, reset="subtract")
    assert np.all(compiled.core.populations[1].params["dash_syn"] == 1)
    assert any("dash_syn = 1" in note for note in compiled.quantization[0].notes)


@pytest.mark.parametrize(
    ("sizes", "options", "message"),
    [
        ((17, 8, 2), {}, "input channels is 17, limit 16"),
        ((16, 1001, 2), {}, "hidden neurons is 1001, limit 1000"),
        ((16, 8, 9), {}, "output neurons is 9, limit 8"),
        ((16, 8), {}, "input to output neurons"),
        ((16, 8, 2), {"reset": "zero"}, "reset mode"),
    ],
)
def test_profile_limits_are_design_rules(sizes: tuple[int, ...], options: dict, message: str) -> None:
    with pytest.raises(CompileError, match=message):
        nd.compile(cuba_graph(sizes), "xylo-audio2", **options)


def test_audio2_refuses_biases_and_a_bias_profile_runs_them(tmp_path) -> None:
    from conftest import lif_graph

    with pytest.raises(CompileError, match="bias is .*neurons with a bias"):
        nd.compile(lif_graph(16, 20, 4), "xylo-audio2", reset="subtract")
    text = (nd.profiles.get("xylo-audio2").text.replace('name = "xylo-audio2"', 'name = "xylo-bias"')
            .replace("bias = { value = false", "bias = { value = true"))  # fmt: skip
    path = tmp_path / "xylo-bias.toml"
    path.write_text(text)
    compiled = nd.compile(lif_graph(16, 20, 4), str(path), reset="subtract")
    hid = compiled.core.populations[1].params
    assert "bias" in hid and np.any(hid["bias"] != 0) and np.abs(hid["bias"]).max() <= 2**15 - 1
    x = np.random.default_rng(0).random((30, 4, 16)) < 0.3
    out = simulate(compiled.core, {"input": x}, record=("spikes",))
    assert out.paths["update"] == "v2" and out.spikes["lif"].max() <= 31
    # a bias clock (a bias inside a loop) spikes exactly once per step, as in the float reference
    from neurodeploy.compiler.ir import Conventions, NetworkIR, Population, Projection
    from neurodeploy.compiler.lower_neurons import bias_clock
    from neurodeploy.compiler.quantize import quantize

    ones = np.ones(3)
    hidden = Population("h", 3, "cuba_lif", du=0.25 * ones, dv=0.125 * ones, v_th=ones, v_reset=0 * ones,
                        bias_u=0 * ones, bias_v=0 * ones, reset="subtract")  # fmt: skip
    readout = Population("o", 1, "cuba_lif", du=np.full(1, 0.25), dv=np.full(1, 0.125), v_th=np.ones(1),
                         v_reset=np.zeros(1), bias_u=np.zeros(1), bias_v=np.zeros(1), reset="subtract")  # fmt: skip
    pops = [Population("in", 2, "input"), hidden, bias_clock("clk"), readout]
    projs = [
        Projection("in>h", "in", "h", np.ones((3, 2))),
        Projection("clk>h", "clk", "h", np.full((3, 1), 0.1), 1),
        Projection("in>clk", "in", "clk", np.zeros((1, 2))),
        Projection("h>o", "h", "o", np.ones((1, 3))),
    ]
    ir = NetworkIR(pops, projs, ["in"], ["o"], Conventions(dt=1e-3, reset="subtract"))
    for factor in (1.0, 0.5):  # at 0.5, bias = 2 x threshold would give two spikes per step
        core, _ = quantize(ir, nd.profiles.get(str(path)), factors={"clk": factor})
        ticks = simulate(core, {"in": np.zeros((20, 1, 2), dtype=bool)}).spikes["clk"]
        assert np.all(ticks == 1)


def test_deeper_network_artifact_round_trip_and_scale_search(tmp_path) -> None:
    graph = cuba_graph((16, 24, 24, 4), seed=2)
    x = np.random.default_rng(3).random((60, 4, 16)) < 0.3
    compiled = nd.compile(graph, "xylo-audio2", scale_search=True, sample_inputs=x)
    assert compiled.core.latency() == {"input": 0, "cubalif": 0, "cubalif_1": 1, "cubalif_2": 2}
    assert [pr.delay for pr in compiled.core.projections] == [0, 1, 1]
    assert all(rep.search["factors"] for rep in compiled.quantization)
    path = compiled.save(tmp_path / "xylo.ndp")
    again = read_artifact(path)["core"]
    assert again.numerics == "xylo" and [p.model for p in again.populations] == ["input", "xylo", "xylo", "xylo_output"]
    np.testing.assert_array_equal(nd.run(compiled, x).output(), nd.run(nd.load_compiled(path), x).output())


def test_recurrent_fan_out_limit_and_skip_connection_timing(tmp_path) -> None:
    """A profile's recurrent fan-out limit (Xylo IMU: 512) is a rule; a skip connection is a timing warning."""
    text = nd.profiles.get("xylo-audio2").text.replace('name = "xylo-audio2"', 'name = "xylo-fan"')
    limit = 'recurrent_fan_out_per_neuron = { value = 4, source = "rockpool_mapper" }\n'
    text = text.replace("[limits]\n", "[limits]\n" + limit)
    path = tmp_path / "xylo-fan.toml"
    path.write_text(text)
    with pytest.raises(CompileError, match="recurrent fan-out per neuron is 8, limit 4"):
        nd.compile(cuba_graph((16, 8, 8, 2)), str(path))
    rng = np.random.default_rng(0)
    ones = np.ones(8)
    cuba = {"tau_syn": 4e-3 * ones, "tau_mem": 8e-3 * ones, "r": ones, "v_leak": 0 * ones, "v_threshold": ones}
    nodes = {
        "input": nir.Input(np.array([16])),
        "w1": nir.Linear(weight=rng.normal(0, 1, (8, 16))),
        "h1": nir.CubaLIF(**cuba, w_in=ones),
        "w2": nir.Linear(weight=rng.normal(0, 1, (8, 8))),
        "skip": nir.Linear(weight=rng.normal(0, 1, (8, 16))),
        "h2": nir.CubaLIF(**cuba, w_in=ones),
        "w3": nir.Linear(weight=rng.normal(0, 1, (2, 8))),
        "out": nir.CubaLIF(**{k: v[:2] for k, v in cuba.items()}, w_in=ones[:2]),
        "output": nir.Output(np.array([2])),
    }
    edges = [("input", "w1"), ("w1", "h1"), ("h1", "w2"), ("w2", "h2"), ("input", "skip"), ("skip", "h2"),
             ("h2", "w3"), ("w3", "out"), ("out", "output")]  # fmt: skip
    graph = nir.NIRGraph(nodes, edges, metadata={"neurodeploy.dt": 1e-3, "neurodeploy.reset": "subtract"})
    compiled = nd.compile(graph, "xylo-audio2")
    (warning,) = [v for v in compiled.violations if v.rule == "timing"]
    assert warning.severity == "warning" and warning.actual == "1 step(s) early"
    assert any("1 step(s) earlier" in note for rep in compiled.quantization for note in rep.notes)

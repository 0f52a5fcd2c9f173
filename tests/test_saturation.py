"""Saturation foreseen at compile time: per-layer u wraps, v saturations and headroom from the sample run.

Covered: the emulator's per-population counters and peaks (every state class the same, tracking changes
no number), the report, warning, CLI and HTML of a network that overflows and of one that does not, the
scale search rejecting scales that overflow, and predicted counts == the counts of ``neurodeploy.run``.
"""

from __future__ import annotations

import json
import warnings

import nir
import numpy as np
import pytest
from conftest import lif_graph, spikes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurodeploy as nd
from neurodeploy.compiler.saturation import LIMIT, SaturationWarning
from neurodeploy.emulator.kernels import LoihiCompiledState
from neurodeploy.emulator.kernels import available as kernels_available
from neurodeploy.emulator.loihi import LoihiCubaState, LoihiFastState
from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.emulator.simulate import collect_overflow, simulate
from neurodeploy.html_report import build_report
from neurodeploy.reports import evaluation_line

DT = 1e-3
KERNELS = ["numpy", "numba"] if kernels_available() else ["numpy"]


def recurrent_graph(
    n_in: int = 4,
    n: int = 8,
    w_in: float = 20.0,
    w_rec: float = -50.0,
    bias: float = 0.0,
    tau_syn: float = 10e-3,
    tau_mem: float = 40e-3,
    seed: int = 0,
) -> nir.NIRGraph:
    """Input -> Affine -> CubaLIF with inhibitory recurrence: the users' case. With the defaults, neurons
    that fire drive the others' v below -2^23 at the default (largest) voltage scale on loihi2."""
    rng = np.random.default_rng(seed)
    nodes = {
        "input": nir.Input(np.array([n_in])),
        "fc": nir.Affine(np.abs(rng.normal(0, 1, (n, n_in))) * w_in, np.full(n, bias)),
        "lif": nir.CubaLIF(
            tau_syn=np.full(n, tau_syn),
            tau_mem=np.full(n, tau_mem),
            r=np.ones(n),
            v_leak=np.zeros(n),
            v_threshold=np.ones(n),
            w_in=np.ones(n),
        ),
        "rec": nir.Linear(w_rec * np.abs(rng.normal(0, 1, (n, n)))),
        "output": nir.Output(np.array([n])),
    }
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges)
    graph.metadata.update({"neurodeploy.dt": DT, "neurodeploy.reset": "zero"})
    return graph


def inhibited_graph(
    w_scale: float = 5.0, n_in: int = 4, n: int = 6, seed: int = 0, tau_syn: float = 20e-3, tau_mem: float = 50e-3
) -> nir.NIRGraph:
    """Input -> Linear -> CubaLIF, all but one neuron inhibited: their v sinks far below -2^23 at the
    default scale, as the threshold sits near +2^23 and the inhibition is several thresholds deep."""
    rng = np.random.default_rng(seed)
    weight = -np.abs(rng.normal(0, 1, (n, n_in))) * w_scale
    weight[0] = -weight[0]  # one neuron is excited, so the layer spikes
    ones = np.ones(n)
    lif = nir.CubaLIF(
        tau_syn=tau_syn * ones, tau_mem=tau_mem * ones, r=ones, v_leak=0 * ones, v_threshold=ones, w_in=ones
    )
    graph = nir.NIRGraph.from_list(nir.Input(np.array([n_in])), nir.Linear(weight), lif, nir.Output(np.array([n])))
    graph.metadata.update({"neurodeploy.dt": DT, "neurodeploy.reset": "zero"})
    return graph


def sample(steps: int = 100, batch: int = 4, n: int = 4, p: float = 0.5, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((steps, batch, n)) < p


def compile_quiet(graph: nir.NIRGraph, **options: object) -> tuple[object, list[str]]:
    """Compile, returning the SaturationWarnings' texts instead of raising them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = nd.compile(graph, "loihi2", **options)
    return compiled, [str(w.message) for w in caught if issubclass(w.category, SaturationWarning)]


def predicted_totals(compiled: object) -> dict[str, int]:
    layers = compiled.report["evaluation"]["layers"]
    return {k: sum(e[k] for e in layers.values()) for k in ("u_wraps", "v_saturations")}


# ------------------------------------------------------------------ emulator: counters and peaks


def _hot_net(seed: int) -> CoreNetwork:
    """in -> h -> o, o -> o (delay 1), with weights, exponents and biases that wrap u and saturate v."""
    rng = np.random.default_rng(seed)
    n_in, n = 8, 16

    def lif() -> dict[str, np.ndarray]:
        return {"du": rng.integers(0, 400, n), "dv": rng.integers(0, 300, n), "vth": rng.integers(500, 4000, n),
                "bias_mant": rng.integers(-4000, 1000, n), "bias_exp": rng.integers(0, 8, n)}  # fmt: skip

    pops = [CorePopulation("in", n_in, "input"), CorePopulation("h", n, "loihi", lif()),
            CorePopulation("o", n, "loihi", lif())]  # fmt: skip
    projs = [
        CoreProjection("a", "in", "h", rng.integers(-256, 256, (n, n_in)), weight_exp=6),
        CoreProjection("b", "h", "o", rng.integers(-256, 256, (n, n)), weight_exp=3),
        CoreProjection("r", "o", "o", rng.integers(-256, 256, (n, n)), weight_exp=3, delay=1),
    ]
    return CoreNetwork(pops, projs, ["in"], ["o"], numerics="loihi")


@pytest.mark.parametrize("kernels", KERNELS)
def test_overflow_per_population_adds_up_and_tracking_changes_nothing(kernels: str) -> None:
    net = _hot_net(3)
    x = {"in": sample(60, 3, 8)}
    plain = simulate(net, x, record=("spikes", "u", "v"), kernels=kernels)
    tracked = simulate(net, x, record=("spikes", "u", "v"), kernels=kernels, peaks=True)
    for kind in ("spikes", "u", "v"):
        for name, arr in getattr(plain, kind).items():
            np.testing.assert_array_equal(getattr(tracked, kind)[name], arr)
    assert plain.counters == tracked.counters and plain.counters["v_saturations"] > 0
    for key in ("u_wraps", "v_saturations"):
        assert sum(o[key] for o in tracked.overflow.values()) == tracked.counters[key]
    for name, o in tracked.overflow.items():
        assert (o["first_violation"] is None) == (o["u_wraps"] + o["v_saturations"] == 0)
        # a peak bounds every stored value; one past the limit means the layer overflowed
        assert o["peak_u"] >= np.abs(tracked.u[name]).max() and o["peak_v"] >= np.abs(tracked.v[name]).max()
        assert (o["peak_v"] >= LIMIT) == (o["v_saturations"] > 0)  # v is clipped to +-(2^23 - 1)
        assert (o["peak_u"] > LIMIT) <= (o["u_wraps"] > 0) <= (o["peak_u"] >= LIMIT)  # u wraps past (-2^23, 2^23]
    assert "peak_u" not in plain.overflow["h"]


def test_numpy_and_numba_paths_report_the_same_peaks() -> None:
    if not kernels_available():
        pytest.skip("numba is not installed")
    net, x = _hot_net(4), {"in": sample(80, 2, 8, seed=5)}
    runs = [simulate(net, x, kernels=k, peaks=True).overflow for k in ("numpy", "numba")]
    for name in runs[0]:
        a, b = runs[0][name], runs[1][name]
        assert (a["u_wraps"], a["v_saturations"], a["peak_u"], a["peak_v"]) == (
            b["u_wraps"],
            b["v_saturations"],
            b["peak_u"],
            b["peak_v"],
        )
        assert vars(a["first_violation"]) == vars(b["first_violation"])


def test_every_state_class_tracks_the_same_peaks() -> None:
    """Per step, through int32 overflows, u wraps and v saturations: the peak is max |value before fix-up|."""
    rng = np.random.default_rng(11)
    shape = (3, 40)
    params = {"du": rng.integers(0, 4096, shape), "dv": rng.integers(0, 4096, shape),
              "vth": rng.integers(0, 131071, shape), "bias_mant": rng.integers(-200, 200, shape),
              "bias_exp": rng.integers(0, 4, shape)}  # fmt: skip
    states = [LoihiCubaState(shape, params), LoihiFastState(shape, params)]
    if kernels_available():
        states.append(LoihiCompiledState(shape, params))
    for s in states:
        s.track_peaks = True
    for t in range(200):
        a = rng.integers(-(2**27), 2**27, shape) * (rng.random(shape) < 0.3) >> rng.integers(0, 30)
        ref = states[0].step(a, t)
        for s in states[1:]:
            np.testing.assert_array_equal(s.step((a << 6).astype(float), t), ref)
        assert len({(s.peak_u, s.peak_v) for s in states}) == 1, [(s.peak_u, s.peak_v) for s in states]
    assert states[0].peak_u > LIMIT and states[0].u_wraps > 0


def test_collect_overflow_sees_the_run_and_nothing_outside() -> None:
    net, x = _hot_net(5), {"in": sample(30, 2, 8)}
    with collect_overflow() as runs:
        out = simulate(net, x)
    simulate(net, x)
    assert len(runs) == 1 and runs[0] == out.overflow and "peak_v" in runs[0]["h"]


# ------------------------------------------------------------------ compile: report, warning, CLI, HTML


def test_saturating_network_is_reported_per_layer_and_warned(tmp_path) -> None:
    x = sample()
    with pytest.warns(SaturationWarning, match=r"layer 'lif'.*v saturations.*at step \d+.*scale_search=True"):
        compiled = nd.compile(recurrent_graph(), "loihi2", sample_inputs=x)
    layer = compiled.report["evaluation"]["layers"]["lif"]
    assert layer["v_saturations"] > 0 and layer["peak_v"] > 1.0 and 0 < layer["peak_u"] < 1.0
    first = layer["first_violation"]
    assert first["kind"] == "v saturation" and abs(first["value"]) >= LIMIT and 0 <= first["sample"] < x.shape[1]
    assert compiled.report["evaluation"]["saturation"]["layers"] == ["lif"]
    assert any("overflows on the chip" in w for w in compiled.warnings)  # kept in the artifact
    json.dumps(compiled.report)  # plain JSON data
    lines = evaluation_line(compiled.report).splitlines()
    assert lines[1].startswith("u/v overflow") and lines[2].lstrip().startswith("lif:")
    assert all(len(line) <= 80 for line in lines[1:])
    page = build_report(compiled)
    assert "Saturation on the sample inputs" in page and 'class="bad"' in page
    again = nd.load_compiled(compiled.save(tmp_path / "m.ndp"))  # the artifact keeps the prediction
    assert again.report["evaluation"]["layers"]["lif"] == layer and again.warnings == compiled.warnings


def test_quiet_network_reports_zero_and_does_not_warn() -> None:
    compiled, warned = compile_quiet(lif_graph(), sample_inputs=spikes())
    assert warned == []
    layers = compiled.report["evaluation"]["layers"]
    for layer in layers.values():
        assert layer["u_wraps"] == layer["v_saturations"] == 0 and layer["first_violation"] is None
        assert 0 < layer["peak_v"] <= 1.0 and 0 <= layer["peak_u"] < 1.0
    assert len(evaluation_line(compiled.report).splitlines()) == 1
    assert "No layer wraps u or saturates v" in build_report(compiled)


def test_scale_search_avoids_the_saturation_the_default_scale_hits() -> None:
    x = sample()
    default, warned = compile_quiet(recurrent_graph(), sample_inputs=x)
    assert warned and nd.run(default, x).counters["v_saturations"] > 0
    searched, warned = compile_quiet(recurrent_graph(), sample_inputs=x, scale_search=True)
    assert warned == []
    search = searched.quantization[0].search
    assert 1.0 in search["rejected"] and search["chosen"] not in search["rejected"] and search["chosen"] < 1.0
    assert search["overflows"][search["factors"].index(search["chosen"])] == 0 and "rejected" in search["note"]
    run = nd.run(searched, x)
    assert run.counters["u_wraps"] == run.counters["v_saturations"] == 0
    assert predicted_totals(searched) == {"u_wraps": 0, "v_saturations": 0}


def test_scale_search_goes_below_an_octave_when_it_must() -> None:
    """Every standard factor (down to 2^-7/8) overflows here: smaller ones follow until one does not."""
    x = sample(steps=80)
    default, warned = compile_quiet(inhibited_graph(), sample_inputs=x)
    assert warned and default.report["evaluation"]["layers"]["cubalif"]["peak_v"] > 1
    searched, warned = compile_quiet(inhibited_graph(), sample_inputs=x, scale_search=True)
    search = searched.quantization[0].search
    assert len(search["factors"]) > 8 and search["chosen"] < 0.5 and warned == []
    assert search["overflows"][:8] == sorted(search["overflows"][:8], reverse=True)  # fewer as the scale shrinks
    assert nd.run(searched, x).counters["v_saturations"] == 0


def test_cli_compile_prints_the_overflow_lines(tmp_path) -> None:
    from test_cli import cli

    model = tmp_path / "model.nir"
    nir.write(str(model), recurrent_graph())
    np.save(tmp_path / "x.npy", sample())
    done = cli("compile", str(model), "-o", str(tmp_path / "m.ndp"), "--sample-inputs", str(tmp_path / "x.npy"))
    assert done.returncode == 0, done.stderr
    assert "u/v overflow on the sample inputs" in done.stdout and "overflows on the chip" in done.stderr


# ------------------------------------------------------------------ differential: predicted == run


def test_predicted_counts_equal_the_run_counters() -> None:
    x = sample(seed=7)
    compiled, _ = compile_quiet(recurrent_graph(w_rec=-200.0), sample_inputs=x)
    run = nd.run(compiled, x).counters
    predicted = predicted_totals(compiled)
    assert predicted["v_saturations"] > 0
    assert predicted == {k: run[k] for k in predicted}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    recurrent=st.booleans(),
    scale=st.floats(0.05, 1.0),
    tau_syn=st.sampled_from([2e-3, 10e-3, 100e-3, 1.0]),
    tau_mem=st.sampled_from([10e-3, 40e-3, 1.0]),
    n=st.integers(2, 6),
    p=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**16),
)
def test_predicted_counters_equal_run_counters_on_random_networks(
    recurrent: bool, scale: float, tau_syn: float, tau_mem: float, n: int, p: float, seed: int
) -> None:
    """Random small networks, overflowing or not: the compile-time prediction is the run's count, per kind."""
    if recurrent:
        graph = recurrent_graph(3, n, 60 * scale, -600 * scale, 0.0, tau_syn, tau_mem, seed)
    else:
        graph = inhibited_graph(20 * scale, 3, n, seed, tau_syn, tau_mem)
    x = sample(40, 3, 3, p, seed)
    compiled, warned = compile_quiet(graph, sample_inputs=x)
    run = nd.run(compiled, x).counters
    predicted = predicted_totals(compiled)
    assert predicted == {k: run[k] for k in predicted}
    assert bool(warned) == bool(sum(predicted.values()))
    for layer in compiled.report["evaluation"]["layers"].values():
        assert (layer["first_violation"] is None) == (layer["u_wraps"] + layer["v_saturations"] == 0)

"""Quantization: per-layer and per-channel scales, the scale search, analog weight grids, seeded rounding."""

from __future__ import annotations

import nir
import numpy as np
import pytest
from conftest import DT, lif_graph, spikes

import neurodeploy as nd
from neurodeploy.compiler.normalize import normalize
from neurodeploy.compiler.quantize import quantize, quantize_population
from neurodeploy.errors import CompileError
from neurodeploy.hw_profiles import get


def _uneven_graph() -> nir.NIRGraph:
    """One layer whose rows differ in scale by up to 1000x: a single per-layer scale wastes bits on most."""
    rng = np.random.default_rng(3)
    rows = 10.0 ** -np.linspace(0, 3, 12)
    weight = rng.normal(0, 1, (12, 6)) * rows[:, None]
    tau = DT / (1 - 0.9)
    thr = rows * 0.5
    graph = nir.NIRGraph.from_list(
        nir.Linear(weight=weight),
        nir.LIF(tau=np.full(12, tau), r=np.full(12, tau / DT), v_leak=np.zeros(12), v_threshold=thr),
    )
    graph.metadata.update({"neurodeploy.dt": DT, "neurodeploy.reset": "zero"})
    return graph


def test_per_channel_gives_every_row_its_own_scale() -> None:
    graph = _uneven_graph()
    layer = nd.compile(graph, "loihi2", strict=False)
    channel = nd.compile(graph, "loihi2", per_channel=True, strict=False)
    mant = channel.core.projections[0].weight
    # every row keeps at least 6 of its 8 bits (u's headroom, not the weight field, limits the rest)
    assert np.all(np.abs(mant).max(axis=1) >= 64)
    assert np.abs(layer.core.projections[0].weight).max(axis=1).min() < 4  # the per-layer scale does not
    q_channel = channel.quantization[0]
    assert q_channel.per_channel and q_channel.scale_min < q_channel.scale
    assert not layer.quantization[0].per_channel
    ir = normalize(graph)

    def row_errors(compiled: nd.CompiledNetwork) -> np.ndarray:
        """Largest weight error of each row relative to that row's largest weight."""
        lam = compiled.core.populations[1].params["vth"] / ir.populations[1].v_th
        w = compiled.core.projections[0].weight * 2.0 ** compiled.quantization[0].weight_exp["input->lif"]
        ref = ir.projections[0].weight
        return np.abs(w / lam[:, None] - ref).max(axis=1) / np.abs(ref).max(axis=1)

    assert row_errors(channel).max() < 0.02
    assert row_errors(layer).max() > 0.2  # the smallest rows lose most of their bits with one scale


def test_weight_bits_warning_points_to_per_channel() -> None:
    compiled = nd.compile(_uneven_graph(), "loihi2")
    warnings = [v for v in compiled.violations if v.rule == "weight bits"]
    assert warnings and warnings[0].severity == "warning" and "per_channel=True" in warnings[0].hint


def test_scale_search_reports_what_it_tried_and_never_does_worse() -> None:
    x = spikes(steps=60, batch=16)
    base = nd.compile(lif_graph(), "loihi2", sample_inputs=x)
    searched = nd.compile(lif_graph(), "loihi2", sample_inputs=x, scale_search=True)
    for rep in searched.quantization:
        s = rep.search
        assert len(s["factors"]) == 8 and s["factors"][0] == 1.0 and all(0.5 < f <= 1 for f in s["factors"])
        assert s["error"] == min(s["errors"]) and s["errors"][s["factors"].index(s["chosen"])] == s["error"]
        assert rep.factor == s["chosen"]
    for name, layer in searched.evaluation["layers"].items():
        assert layer["spike_agreement"] >= base.evaluation["layers"][name]["spike_agreement"] - 0.01
    out = searched.ir.outputs[0]
    assert searched.evaluation["layers"][out]["spike_agreement"] >= base.evaluation["layers"][out]["spike_agreement"]


def test_scale_search_needs_sample_inputs() -> None:
    with pytest.raises(CompileError, match="scale_search needs sample inputs"):
        nd.compile(lif_graph(), "loihi2", scale_search=True)


def test_scale_search_on_plain_float_core_is_a_no_op() -> None:
    compiled = nd.compile(lif_graph(), "spinnaker2", scale_search=True, sample_inputs=spikes())
    assert all("skipped" in rep.search for rep in compiled.quantization)


@pytest.mark.parametrize(("profile", "levels"), [("brainscales2", 63), ("dynapse2", 15)])
def test_analog_weights_sit_on_the_chip_grid(profile: str, levels: int) -> None:
    graph = lif_graph()
    compiled = nd.compile(graph, profile, strict=False)
    ir = compiled.ir
    for rep, pop in zip(compiled.quantization, ir.populations[1:], strict=True):
        proj = next(p for p in compiled.core.projections if p.dst == pop.name)
        grid = proj.weight * rep.scale
        np.testing.assert_allclose(grid, np.rint(grid), atol=1e-9)
        assert np.abs(np.rint(grid)).max() == levels
        assert rep.weight_snr_db[proj.name] > (30 if levels == 63 else 20)
    per_channel = nd.compile(graph, profile, per_channel=True, strict=False)
    proj = per_channel.core.projections[0]
    ir_w = ir.projections[0].weight
    scale_rows = levels / np.abs(ir_w).max(axis=1)
    np.testing.assert_allclose(np.abs(proj.weight * scale_rows[:, None]).max(axis=1), levels)


def test_clipping_factor_counts_saturated_weights() -> None:
    ir = normalize(lif_graph())
    cpop, cprojs, rep = quantize_population(ir, 1, get("brainscales2"), factor=3.0)
    assert rep.weights_saturated["input->lif"] > 0 and rep.factor == 3.0
    assert np.abs(cprojs[0].weight * rep.scale).max() <= 63 + 1e-9


def test_stochastic_rounding_is_seeded_and_unbiased() -> None:
    ir = normalize(lif_graph(hidden=200, seed=4))
    prof = get("loihi2")
    a, _ = quantize(ir, prof, rounding="stochastic", seed=7)
    b, _ = quantize(ir, prof, rounding="stochastic", seed=7)
    c, _ = quantize(ir, prof, rounding="stochastic", seed=8)
    n, _ = quantize(ir, prof, rounding="nearest")
    wa, wb, wc, wn = (net.projections[0].weight for net in (a, b, c, n))
    np.testing.assert_array_equal(wa, wb)
    assert np.any(wa != wc) and np.any(wa != wn)
    assert np.abs(wa - wn).max() <= 2  # one grid step at most
    # unbiased: over many seeds the mean lands on the exact target
    lam = n.populations[1].params["vth"][0] / ir.populations[1].v_th[0]
    target = ir.projections[0].weight * lam / 2.0 ** _exp(n)
    mean = np.mean(
        [quantize(ir, prof, rounding="stochastic", seed=s)[0].projections[0].weight for s in range(60)], axis=0
    )
    assert np.abs(mean - target).mean() < 0.25


def _exp(core) -> int:
    return int(core.projections[0].weight_exp)


def test_unknown_rounding_and_what_xylo_cannot_hold_give_clear_errors() -> None:
    with pytest.raises(CompileError, match="unknown rounding"):
        nd.compile(lif_graph(), "loihi2", rounding="up")
    with pytest.raises(CompileError, match="does not fit xylo-audio2: reset mode is zero, limit subtract"):
        nd.compile(lif_graph(), "xylo-audio2")

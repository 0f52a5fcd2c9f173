"""Design rules: a network over a limit fails naming the node (or core), the limit, the value and a way out."""

from __future__ import annotations

import nir
import numpy as np
import pytest
from conftest import DT, lif_graph

import neurodeploy as nd
from neurodeploy.errors import CompileError
from neurodeploy.hw_profiles import parse_profile


def tiny(limits: str = "", numerics: str = "") -> object:
    """A Loihi-numerics profile with the given extra limit/numerics lines."""
    return parse_profile(f"""schema_version = 1
name = "tiny"
title = "test chip"
kind = "digital"
core_model = "loihi"
[sources]
s = "test profile"
[numerics]
synaptic_latency = {{ value = 1, source = "s" }}
{numerics}
[limits]
{limits}
""")


def lif(n: int, thr: float = 1.0) -> nir.LIF:
    tau = DT / (1 - 0.9)
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / DT), v_leak=np.zeros(n), v_threshold=np.full(n, thr))


def dense(n_in: int, n: int, seed: int = 0) -> nir.NIRGraph:
    g = nir.NIRGraph.from_list(nir.Linear(weight=np.random.default_rng(seed).normal(0, 0.1, (n, n_in))), lif(n))
    g.metadata.update({"neurodeploy.dt": DT, "neurodeploy.reset": "zero"})
    return g


def raises(graph: nir.NIRGraph, profile: object, *fragments: str, **kwargs: object) -> CompileError:
    with pytest.raises(CompileError) as info:
        nd.compile(graph, profile, **kwargs)
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text, text
    return info.value


def test_neurons_per_core_from_a_placement_map() -> None:
    prof = tiny('neurons_per_core = { value = 16, source = "s" }')
    assert len(nd.compile(lif_graph(), prof).report["cores"]) == 3  # automatic: 16 | 14 | 3 neurons
    err = raises(
        lif_graph(),
        prof,
        "neurons per core is 30, limit 16",
        "core 0 (lif[0:16], lif[16:30])",
        "move blocks",
        placement={"lif": [0, 0]},
    )
    assert err.where.startswith("core 0")


def test_synapse_memory_of_one_neuron() -> None:
    prof = tiny('synapse_memory_bits_per_core = { value = 1024, source = "s" }')
    raises(
        dense(200, 4),
        prof,
        "synapse memory per core (bits) is 1600, limit 1024",
        "node 'lif'",
        "reduce its fan-in or the weight bits",
    )
    compiled = nd.compile(dense(100, 40), prof)  # 800 bits per neuron: one neuron per core
    assert len(compiled.report["cores"]) == 40


def test_fan_in_axons() -> None:
    raises(dense(5000, 2), "loihi2", "fan-in axons per core is 5000, limit 4096", "node 'lif'", "prune its inputs")


def test_fan_in_axons_count_both_signs_on_sign_by_row_chips() -> None:
    prof = tiny(
        'neurons_per_core = { value = 8, source = "s" }\nfan_in_axons_per_core = { value = 20, source = "s" }',
        'sign_by_rows = { value = true, source = "s" }',
    )
    weight = np.where(np.arange(8)[:, None] % 2 == 0, 1.0, -1.0) * np.ones((8, 15))  # every source drives both signs
    g = nir.NIRGraph.from_list(nir.Linear(weight=weight), lif(8))
    g.metadata.update({"neurodeploy.dt": DT, "neurodeploy.reset": "zero"})
    compiled = nd.compile(g, prof)  # 30 rows needed for 8 neurons: the block is split until it fits 20
    assert all(c["axons_in"] <= 20 for c in compiled.report["cores"]) and len(compiled.report["cores"]) == 8


def test_fan_out_axons() -> None:
    prof = tiny('neurons_per_core = { value = 10, source = "s" }\nfan_out_axons_per_core = { value = 5, source = "s" }')
    compiled = nd.compile(lif_graph(), prof)  # the placer cuts lif into blocks of 5: each sends 5 fan-out axons
    assert max(c["axons_out"] for c in compiled.report["cores"]) <= 5
    raises(lif_graph(), prof, "fan-out axons per core is 10, limit 5", "core 0 (lif[0:10])", "spread the sources",
           "the automatic placement cuts 'lif' as blocks [5, 5, 5, 5, 5, 5]",
           placement={"lif": {"blocks": [10, 10, 10], "cores": [0, 1, 2]}})  # fmt: skip


def test_delay_beyond_the_delay_field() -> None:
    g = nir.NIRGraph.from_list(nir.Linear(weight=np.eye(3)), nir.Delay(delay=np.full(3, 100 * DT)), lif(3))
    g.metadata.update({"neurodeploy.dt": DT, "neurodeploy.reset": "zero"})
    raises(g, "loihi2", "synaptic delay (steps) is 100, limit 63", "node 'lif'", "use a larger dt")
    assert nd.compile(g, "ideal").ir.projections[0].delay == 100


def test_reset_modes_and_reset_delay() -> None:
    prof = tiny(numerics='reset_modes = { value = ["subtract"], source = "s" }')
    raises(lif_graph(), prof, "reset mode is zero, limit subtract", "retrain with that reset")
    graph = lif_graph()
    graph.metadata["neurodeploy.reset_delay"] = True
    raises(graph, "loihi2", "reset delay", "reset_delay=False")


def test_weight_bits_rule_is_a_warning_only() -> None:
    weight = np.array([[1.0, 1e-4, 0.5], [0.3, -0.2, 1e-5]])
    g = nir.NIRGraph.from_list(nir.Linear(weight=weight), lif(2))
    g.metadata.update({"neurodeploy.dt": DT, "neurodeploy.reset": "zero"})
    compiled = nd.compile(g, "loihi2")
    (warning,) = [v for v in compiled.violations if v.rule == "weight bits"]
    assert warning.to_dict() == {
        "node": "lif",
        "rule": "weight bits",
        "limit": "127 levels per sign",
        "actual": "2 of 6 weights below half a step",
        "hint": warning.hint,
        "severity": "warning",
    }


def test_cores_per_chip_is_a_warning() -> None:
    prof = tiny('neurons_per_core = { value = 10, source = "s" }\ncores_per_chip = { value = 2, source = "s" }')
    compiled = nd.compile(lif_graph(), prof)
    (warning,) = [v for v in compiled.violations if v.rule == "cores per chip"]
    assert warning.severity == "warning" and warning.actual == 4 and "needs 2 chips" in warning.hint


def _fan_out_graph(n_targets: int, n_in: int = 6) -> nir.NIRGraph:
    """Input -> LIF(8) -> n_targets output layers with distinct thresholds (so distinct DYNAP cores)."""
    rng = np.random.default_rng(0)
    nodes = {
        "input": nir.Input(input_type=np.array([n_in])),
        "w": nir.Linear(weight=rng.normal(0, 1, (8, n_in))),
        "hidden": lif(8),
    }
    edges = [("input", "w"), ("w", "hidden")]
    for k in range(n_targets):
        nodes[f"w{k}"] = nir.Linear(weight=rng.normal(0, 1, (2, 8)))
        nodes[f"out{k}"] = lif(2, thr=0.5 + 0.1 * k)
        nodes[f"o{k}"] = nir.Output(output_type=np.array([2]))
        edges += [("hidden", f"w{k}"), (f"w{k}", f"out{k}"), (f"out{k}", f"o{k}")]
    g = nir.NIRGraph(nodes=nodes, edges=edges, metadata={}, type_check=False)
    g.metadata.update({"neurodeploy.dt": DT, "neurodeploy.reset": "zero"})
    return g


def test_dynapse2_rules() -> None:
    raises(dense(100, 4), "dynapse2", "synapses per neuron is 100, limit 64", "node 'lif'", "prune")
    graph = lif_graph()
    graph.nodes["lif"].tau = np.linspace(1e-3, 2e-3, 30)
    raises(
        graph,
        "dynapse2",
        "neuron parameters shared per core is 30 sets (different bias, membrane time constant), limit 1 set",
        "train with one value per layer",
    )
    # lif_graph's hidden Affine has one bias per neuron: the message names the bias and bias=False
    raises(lif_graph(), "dynapse2", "30 sets (different bias)", "without bias (bias=False)")
    ok = nd.compile(_fan_out_graph(3), "dynapse2")
    assert len(ok.report["cores"]) == 4  # populations with different thresholds never share a core
    raises(_fan_out_graph(5), "dynapse2", "target cores per neuron is 5, limit 4", "core 0 (hidden[0:8])")


ROUTES = [("xylo-audio2", "zero"), ("dynapse2", "subtract"), ("loihi2", "subtract")]


@pytest.mark.parametrize(("profile", "reset"), ROUTES)
def test_the_reset_hints_lead_to_a_compile(profile: str, reset: str) -> None:
    """An snnTorch export with a reset the chip lacks: follow each hint until the model compiles."""
    import re

    import nir
    import numpy as np

    import neurodeploy as nd
    from neurodeploy.errors import NeurodeployError

    def lif(n: int) -> nir.LIF:
        return nir.LIF(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n))

    def export(mode: str) -> nir.NIRGraph:  # what from_torch writes for snnTorch Leaky(reset_mechanism=mode)
        g = nir.NIRGraph.from_list(nir.Input(np.array([3])), nir.Linear(np.full((4, 3), 0.3)), lif(4),
                                   nir.Linear(np.full((2, 4), 0.3)), lif(2), nir.Output(np.array([2])))  # fmt: skip
        g.metadata = {"neurodeploy.dt": 1e-3, "neurodeploy.reset": mode, "neurodeploy.reset_rule": "snntorch",
                      "neurodeploy.reset_delay": False}  # fmt: skip
        return g

    options: dict[str, str] = {}
    graph = export(reset)
    for _ in range(3):
        try:
            nd.compile(graph, profile, **options)
            break
        except NeurodeployError as err:
            hint = err.hint
            mode = re.search(r'reset_mechanism="(\w+)"', hint)
            if mode:
                graph = export(mode.group(1))
            if 'reset_rule="nir"' in hint:
                options["reset_rule"] = "nir"
            assert mode or options, f"a hint that names no change: {hint}"
    else:
        pytest.fail("the hints did not lead to a compile")

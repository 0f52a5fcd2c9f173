"""Lowering of every NIR node type: the compiled ideal profile equals ``compiler.reference.simulate_nir``.

Two independent paths: the compiler folds stateless nodes into (sparse) matrices and runs the float
core emulator in float64; the reference walks the graph node by node (convolution window by window),
here also in float64. Spikes must agree exactly, non-spiking voltages to float rounding.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import nir
import numpy as np
import pytest

import neurodeploy as nd
from neurodeploy.compiler import weights as wt
from neurodeploy.compiler.normalize import normalize
from neurodeploy.compiler.reference import simulate_nir
from neurodeploy.errors import ArtifactError, CompileError

DT = 1e-4
RNG = np.random.default_rng(0)


def lif(shape: tuple[int, ...], tau: float = 1e-3, thr: float = 1.0) -> nir.LIF:
    return nir.LIF(
        tau=np.full(shape, tau), r=np.full(shape, tau / DT), v_leak=np.zeros(shape), v_threshold=np.full(shape, thr)
    )


def cuba(shape: tuple[int, ...]) -> nir.CubaLIF:
    return nir.CubaLIF(
        tau_syn=np.full(shape, 5e-4),
        tau_mem=np.full(shape, 1e-3),
        r=np.full(shape, 10.0),
        v_leak=np.zeros(shape),
        v_threshold=np.full(shape, 1.0),
        w_in=np.full(shape, 5.0),
    )


def graph_of(nodes: dict, edges: list[tuple[str, str]], **meta: object) -> nir.NIRGraph:
    g = nir.NIRGraph(nodes=nodes, edges=edges, metadata={}, type_check=False)
    g.metadata.update(
        {"neurodeploy.dt": DT, "neurodeploy.reset": "zero", **{f"neurodeploy.{k}": v for k, v in meta.items()}}
    )
    return g


def chain(in_shape: tuple[int, ...], *layers: nir.NIRNode) -> nir.NIRGraph:
    names = [f"n{i}" for i in range(len(layers))]
    nodes = {
        "input": nir.Input(input_type=np.array(in_shape)),
        **dict(zip(names, layers, strict=True)),
        "output": nir.Output(output_type=np.array([1])),
    }
    order = ["input", *names, "output"]
    return graph_of(nodes, list(zip(order[:-1], order[1:], strict=True)))


def assert_ideal_equals_reference(
    graph: nir.NIRGraph, steps: int = 40, batch: int = 5, p: float = 0.3, active: bool = True, **compile_args: object
) -> dict:
    n_in = int(np.prod(graph.nodes["input"].input_type["input"]))
    x = (np.random.default_rng(1).random((steps, batch, n_in)) < p).astype(float)
    ref = simulate_nir(graph, x, DT, precision="float64", loop_delay=compile_args.get("loop_delay"))
    compiled = nd.compile(graph, "ideal", **compile_args)
    # nd.run aligns by the compiler's recorded lag (0 on the ideal core), not by NIR Delay nodes' delays.
    got = nd.run(compiled, x, record=("spikes", "v"))
    for name, node in graph.nodes.items():
        if name not in ref or isinstance(node, nir.Output):
            continue
        if isinstance(node, (nir.LI, nir.CubaLI, nir.I)):
            np.testing.assert_allclose(got.v[name], ref[name], rtol=1e-9, atol=1e-9, err_msg=name)
        else:
            assert int((got.spikes[name] != ref[name]).sum()) == 0, f"{name}: spikes differ"
            if active:
                assert 0.01 < float(ref[name].mean()) < 0.99, f"{name}: rate {ref[name].mean():.3f} is trivial"
    return ref


@pytest.mark.parametrize(
    ("conv", "pool"),
    [
        (dict(stride=1, padding=1, dilation=1, groups=1), nir.SumPool2d),
        (dict(stride=2, padding=0, dilation=1, groups=2), nir.AvgPool2d),
        (dict(stride=1, padding="same", dilation=2, groups=1), nir.AvgPool2d),
    ],
)
def test_conv2d_pool_flatten_chain(conv: dict, pool: type) -> None:
    w = RNG.normal(0, 1.2, (4, 2 // conv["groups"], 3, 3))
    c = nir.Conv2d(input_shape=(9, 9), weight=w, bias=RNG.normal(0, 0.1, 4), **conv)
    c_out = tuple(int(v) for v in c.output_type["output"])
    p = pool(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    pooled = (c_out[0], c_out[1] // 2, c_out[2] // 2)
    flat = int(np.prod(pooled))
    graph = chain(
        (2, 9, 9),
        c,
        lif(c_out, thr=0.8),
        p,
        nir.Flatten(input_type={"input": np.array(pooled)}, start_dim=0),
        nir.Affine(weight=RNG.normal(0, 3 / np.sqrt(flat), (6, flat)), bias=np.zeros(6)),
        lif((6,), thr=0.5),
    )
    assert_ideal_equals_reference(graph, active=False)
    ir = normalize(graph)
    assert ir.populations[1].size == int(np.prod(c_out)) and ir.populations[2].size == 6


def test_conv1d_into_cubalif() -> None:
    c = nir.Conv1d(
        input_shape=12,
        weight=RNG.normal(0, 1.5, (3, 2, 4)),
        stride=2,
        padding=1,
        dilation=1,
        groups=1,
        bias=np.zeros(3),
    )
    graph = chain((2, 12), c, cuba((3, 6)))
    assert_ideal_equals_reference(graph)


def test_large_conv_is_sparse_compiles_runs_and_round_trips(tmp_path: Path) -> None:
    w = RNG.normal(0, 0.6, (16, 8, 3, 3))
    c = nir.Conv2d(input_shape=(32, 32), weight=w, stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(16))
    graph = chain((8, 32, 32), c, lif((16, 32, 32)))
    ir = normalize(graph)
    weight = ir.projections[0].weight
    assert wt.is_sparse(weight) and weight.shape == (16 * 32 * 32, 8 * 32 * 32)
    assert wt.nnz(weight) == 16 * 8 * 9 * 30 * 30 + 16 * 8 * 6 * 4 * 30 + 16 * 8 * 4 * 4  # interior, edges, corners
    compiled = nd.compile(graph, "loihi2")
    assert wt.is_sparse(compiled.core.projections[0].weight)
    assert sum(c["synapses"] for c in compiled.report["cores"]) == wt.nnz(weight)
    x = (np.random.default_rng(2).random((6, 2, 8 * 32 * 32)) < 0.2).astype(float)
    before = nd.run(compiled, x)
    path = compiled.save(tmp_path / "conv.ndp")
    with h5py.File(path, "r") as f:
        assert int(f.attrs["schema_version"]) == 2 and f["core/projections/0000/weight"].attrs["format"] == "csr"
    loaded = nd.load_compiled(path)
    assert wt.is_sparse(loaded.core.projections[0].weight)
    np.testing.assert_array_equal(nd.run(loaded, x).spikes["n1"], before.spikes["n1"])
    assert before.spikes["n1"].any()


def test_dense_artifacts_stay_version_1_and_unknown_versions_are_refused(tmp_path: Path) -> None:
    path = nd.compile(chain((3,), nir.Linear(weight=np.eye(3)), lif((3,))), "loihi2").save(tmp_path / "d.ndp")
    with h5py.File(path, "r+") as f:
        assert int(f.attrs["schema_version"]) == 1
        f.attrs["schema_version"] = 4
    with pytest.raises(ArtifactError, match="schema version 4 is not supported.*reads 1, 2, 3"):
        nd.load_compiled(path)


@pytest.mark.parametrize("delay", [np.full(8, 3 * DT), np.array([0, 1, 2, 3, 0, 1, 2, 5]) * DT])
def test_delay_node_becomes_projection_delays(delay: np.ndarray) -> None:
    graph = chain(
        (5,),
        nir.Affine(weight=RNG.normal(0, 1.5, (8, 5)), bias=RNG.normal(0, 0.1, 8)),
        nir.Delay(delay=delay),
        lif((8,), thr=0.7),
    )
    assert_ideal_equals_reference(graph)
    ir = normalize(graph)
    spikes_in = [pr for pr in ir.projections if pr.src == "input" and pr.dst == "n2"]
    assert sorted(pr.delay for pr in spikes_in) == sorted({int(round(d / DT)) for d in delay})
    # the Affine's bias sits behind the Delay too: it arrives late through the bias clock
    late = [pr for pr in ir.projections if pr.src == "bias_clock"]
    assert {pr.delay for pr in late} == {int(round(d / DT)) for d in delay} - {0}
    compiled = nd.compile(graph, "loihi2")
    assert max(p.delay for p in compiled.core.projections) == int(round(delay.max() / DT)) + 1  # + Dense latency


def test_delay_not_a_multiple_of_dt_names_the_node() -> None:
    graph = chain((3,), nir.Linear(weight=np.eye(3)), nir.Delay(delay=np.full(3, 2.5 * DT)), lif((3,)))
    with pytest.raises(CompileError, match=r"delay 0.00025 s is not .* whole number.*'n1'.*multiples of dt"):
        nd.compile(graph, "ideal")


def test_threshold_node_is_a_memoryless_spiking_population() -> None:
    graph = chain(
        (6,), nir.Affine(weight=RNG.normal(0, 1.0, (7, 6)), bias=np.zeros(7)), nir.Threshold(threshold=np.full(7, 0.3))
    )
    ref = assert_ideal_equals_reference(graph)
    pop = normalize(graph).populations[1]
    assert pop.kind == "cuba_lif" and np.all(pop.du == 1) and np.all(pop.dv == 1)
    compiled = nd.compile(graph, "loihi2")
    assert any("dv = 1" in n for n in compiled.quantization[0].notes)
    assert ref["n1"].any()


def test_integrator_node_is_a_non_spiking_population() -> None:
    graph = chain((4,), nir.Linear(weight=RNG.normal(0, 1.0, (3, 4))), nir.I(r=np.array([1.0, 2.0, 0.5])))
    assert_ideal_equals_reference(graph)
    with pytest.raises(CompileError, match="neuron model"):
        nd.compile(graph, "loihi2")


def test_non_spiking_node_feeding_a_layer_is_refused() -> None:
    li = nir.LI(tau=np.full(4, 1e-3), r=np.full(4, 10.0), v_leak=np.zeros(4))
    graph = chain((4,), nir.Linear(weight=np.eye(4)), li, nir.Linear(weight=np.eye(4)), lif((4,)))
    with pytest.raises(CompileError, match="non-spiking node 'n1' feeds 'n3'.*LI, CubaLI and I can only be"):
        nd.compile(graph, "ideal")


def test_same_padding_with_stride_is_refused() -> None:
    c = nir.Conv2d(
        input_shape=(6, 6),
        weight=np.ones((1, 1, 3, 3)),
        stride=1,
        padding="same",
        dilation=1,
        groups=1,
        bias=np.zeros(1),
    )
    c.stride = (2, 2)
    graph = chain((1, 6, 6), c, lif((1, 6, 6)))
    with pytest.raises(CompileError, match="'same' needs stride 1.*'n0'"):
        nd.compile(graph, "ideal")


def recurrent(bias: float, neuron: str = "lif") -> nir.NIRGraph:
    """snnTorch's RLeaky/RSynaptic export shape: a subgraph {input, lif, w_rec, output} with a 2-cycle."""
    n = 10
    cell = lif((n,), thr=1.0) if neuron == "lif" else cuba((n,))
    sub = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([n])),
            "lif": cell,
            "w_rec": nir.Affine(weight=RNG.normal(0, 0.6, (n, n)), bias=np.full(n, bias)),
            "output": nir.Output(output_type=np.array([n])),
        },
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
        metadata={},
        type_check=False,
    )
    nodes = {
        "input": nir.Input(input_type=np.array([6])),
        "fc": nir.Affine(weight=RNG.normal(0, 1.2, (n, 6)), bias=np.zeros(n)),
        "rec": sub,
        "out": nir.Linear(weight=RNG.normal(0, 1.0, (3, n))),
        "lif_out": lif((3,), thr=0.5),
        "output": nir.Output(output_type=np.array([3])),
    }
    edges = [("input", "fc"), ("fc", "rec"), ("rec", "out"), ("out", "lif_out"), ("lif_out", "output")]
    return graph_of(nodes, edges)


@pytest.mark.parametrize("loop_delay", ["out_of_neuron", "into_neuron"])
@pytest.mark.parametrize("neuron", ["lif", "cuba"])
def test_recurrent_subgraph_both_loop_delay_conventions(loop_delay: str, neuron: str) -> None:
    graph = recurrent(bias=0.15, neuron=neuron)
    ref = assert_ideal_equals_reference(graph, steps=60, loop_delay=loop_delay)
    ir = normalize(graph, loop_delay=loop_delay)
    rec = [pr for pr in ir.projections if pr.src == pr.dst == "rec.lif"]
    assert len(rec) == 1 and rec[0].delay == 1
    # the bias inside the loop is what tells the conventions apart (at step 0 only)
    clock = [p for p in ir.populations if p.source_node == "<bias clock>"]
    assert len(clock) == (1 if loop_delay == "into_neuron" else 0)
    other = simulate_nir(
        graph,
        (np.random.default_rng(1).random((60, 5, 6)) < 0.3).astype(float),
        DT,
        precision="float64",
        loop_delay="into_neuron" if loop_delay == "out_of_neuron" else "out_of_neuron",
    )
    assert int((other["rec.lif"] != ref["rec.lif"]).sum()) > 0


def test_recurrent_subgraph_without_bias_does_not_depend_on_the_convention() -> None:
    graph = recurrent(bias=0.0)
    ref = assert_ideal_equals_reference(graph, loop_delay="into_neuron")
    x = (np.random.default_rng(1).random((40, 5, 6)) < 0.3).astype(float)
    other = simulate_nir(graph, x, DT, precision="float64", loop_delay="out_of_neuron")
    np.testing.assert_array_equal(other["rec.lif"], ref["rec.lif"])


def test_recurrent_graph_compiles_for_loihi2() -> None:
    compiled = nd.compile(recurrent(bias=0.0), "loihi2")
    delays = {p.name: p.delay for p in compiled.core.projections}
    # feed-forward hops gain Loihi's one-step Dense latency; a self-loop keeps its one step (the same one)
    assert delays["rec.lif->rec.lif"] == 1 and delays["input->rec.lif"] == 1 and delays["rec.lif->lif_out"] == 1


def test_chip_latency_keeps_reference_timing_on_skips_and_self_loops() -> None:
    """A float core with one step of synaptic latency per hop, aligned by nd.run, equals the ideal core."""
    from neurodeploy.hw_profiles import parse_profile

    slow = parse_profile(
        'schema_version = 1\nname = "slow"\ntitle = "float core, 1-step latency"\nkind = "digital"\n'
        'core_model = "float"\n[sources]\ns = "test"\n[numerics]\n'
        'synaptic_latency = { value = 1, source = "s" }\n'
    )
    nodes = {
        "input": nir.Input(input_type=np.array([6])),
        "fc1": nir.Linear(weight=RNG.normal(0, 1.5, (8, 6))),
        "a": lif((8,), thr=0.6),
        "fc2": nir.Linear(weight=RNG.normal(0, 1.0, (5, 8))),
        "skip": nir.Linear(weight=RNG.normal(0, 1.0, (5, 6))),
        "b": lif((5,), thr=0.6),
        "w_rec": nir.Linear(weight=RNG.normal(0, 0.5, (5, 5))),
        "output": nir.Output(output_type=np.array([5])),
    }
    edges = [
        ("input", "fc1"),
        ("fc1", "a"),
        ("a", "fc2"),
        ("fc2", "b"),
        ("input", "skip"),
        ("skip", "b"),
        ("b", "w_rec"),
        ("w_rec", "b"),
        ("b", "output"),
    ]
    graph = graph_of(nodes, edges)
    x = (np.random.default_rng(5).random((50, 6, 6)) < 0.3).astype(float)
    ideal = nd.run(nd.compile(graph, "ideal"), x)
    compiled = nd.compile(graph, slow)
    delays = {p.name: p.delay for p in compiled.core.projections}
    assert delays == {"input->a": 1, "a->b": 1, "input->b": 2, "b->b": 1}
    late = nd.run(compiled, x)
    assert late.latency == {"input": 0, "a": 1, "b": 2}
    for name in ("a", "b"):
        np.testing.assert_array_equal(late.spikes[name], ideal.spikes[name])
    assert 0.05 < float(ideal.spikes["b"].mean()) < 0.95


def test_flatten_checks_its_declared_input() -> None:
    graph = chain(
        (2, 3, 4),
        nir.Flatten(input_type={"input": np.array([2, 3, 5])}, start_dim=0),
        nir.Linear(weight=np.ones((2, 24))),
        lif((2,)),
    )
    with pytest.raises(CompileError, match="Flatten declares an input of 30 values but 24 arrive.*'n0'"):
        nd.compile(graph, "ideal")
    ok = chain(
        (2, 3, 4),
        nir.Flatten(input_type={"input": np.array([2, 3, 4])}, start_dim=1),
        nir.Linear(weight=RNG.normal(0, 1, (2, 24))),
        lif((2,), thr=0.5),
    )
    assert_ideal_equals_reference(ok, active=False)
    assert normalize(ok).populations[0].size == 24

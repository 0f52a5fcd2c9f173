"""Placement: every per-core limit holds by construction, overrides set block sizes, and when no placement
exists the error names the binding limit and what would work."""

from __future__ import annotations

import nir
import numpy as np
import pytest
from conftest import lif_graph
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_compile_rules import tiny

import neurodeploy as nd
from neurodeploy.compiler import weights as wt
from neurodeploy.compiler.ir import NetworkIR, Population, Projection
from neurodeploy.compiler.place import caps, place
from neurodeploy.compiler.rules import check_placement
from neurodeploy.errors import CompileError

# ---------------------------------------------------------------- random networks and profiles


def _pop(name: str, n: int, rng: np.random.Generator, uniform: bool) -> Population:
    v_th = np.ones(n) if uniform else rng.choice([1.0, 2.0], n)
    return Population(name, n, "cuba_lif", du=np.full(n, 0.1), dv=np.full(n, 0.1), v_th=v_th,
                      v_reset=np.zeros(n), bias_u=np.zeros(n), bias_v=np.zeros(n))  # fmt: skip


@st.composite
def networks(draw: st.DrawFn) -> tuple[NetworkIR, object]:
    """A chain of layers (maybe with a skip, a self loop and a back edge) and a profile with random limits."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    sizes = [draw(st.integers(1, 10))] + draw(st.lists(st.integers(1, 40), min_size=1, max_size=3))
    density = draw(st.floats(0.05, 1.0))
    band = draw(st.one_of(st.none(), st.integers(1, 6)))  # conv-like: each neuron sees a window of its source
    uniform = draw(st.booleans())
    pops = [Population("in", sizes[0], "input")] + [_pop(f"h{i}", n, rng, uniform) for i, n in enumerate(sizes[1:])]

    def weight(n_dst: int, n_src: int) -> np.ndarray:
        keep = rng.random((n_dst, n_src)) < density
        if band is not None:  # every weight inside the window, none outside
            keep = np.abs(np.arange(n_src)[None, :] - np.arange(n_dst)[:, None] * n_src / n_dst) < band
        return np.where(keep, rng.normal(0, 1, (n_dst, n_src)), 0.0)

    projs = [
        Projection(f"w{i}", a.name, b.name, weight(b.size, a.size))
        for i, (a, b) in enumerate(zip(pops, pops[1:], strict=False))
    ]
    if draw(st.booleans()) and len(pops) > 2:
        projs.append(Projection("skip", "in", pops[-1].name, weight(pops[-1].size, sizes[0])))
    if draw(st.booleans()):
        rec = pops[draw(st.integers(1, len(pops) - 1))]
        projs.append(Projection("rec", rec.name, rec.name, weight(rec.size, rec.size), delay=1))
    if draw(st.booleans()) and len(pops) > 2:  # a back edge: its targets are placed after its sources
        projs.append(Projection("back", pops[-1].name, pops[1].name, weight(pops[1].size, pops[-1].size), delay=1))
    ir = NetworkIR(pops, projs, ["in"], [pops[-1].name])
    maybe = st.one_of(st.none(), st.integers(1, 80))
    lines = [f'neurons_per_core = {{ value = {draw(st.integers(1, 32))}, source = "s" }}']
    for key, value in (("synapse_memory_bits_per_core", draw(maybe)), ("fan_in_axons_per_core", draw(maybe)),
                       ("fan_out_axons_per_core", draw(maybe))):  # fmt: skip
        if value is not None:
            value = value * 8 if key.startswith("synapse") else value
            lines.append(f'{key} = {{ value = {value}, source = "s" }}')
    numerics = []
    if draw(st.booleans()):
        numerics.append('sign_by_rows = { value = true, source = "s" }')
    if draw(st.booleans()):
        numerics.append('shared_parameters = { value = "core", source = "s" }')
    return ir, tiny("\n".join(lines), "\n".join(numerics))


def _one_neuron_per_core_fits(ir: NetworkIR, profile: object) -> bool:
    """A placement exists: one neuron per core fits when each neuron's own inputs and targets fit a core."""
    c = caps(profile)
    for pop in ir.populations:
        if pop.kind == "input":
            continue
        fan_in = sum(np.count_nonzero(wt.to_dense(pr.weight), axis=1) for pr in ir.incoming(pop.name))
        fan_out = sum(np.count_nonzero(wt.to_dense(pr.weight), axis=0) for pr in ir.projections if pr.src == pop.name)
        for cap, need in ((c.synapses, fan_in), (c.axons_in, fan_in), (c.axons_out, fan_out)):
            if cap is not None and np.max(need, initial=0) > cap:
                return False
    return True


def _recount(ir: NetworkIR, placement: object, sign_rows: bool) -> dict[int, tuple[int, int, int, int]]:
    """Neurons, synapses, fan-in and fan-out axons per core, counted from scratch with dense matrices."""
    core_of = {p.name: np.full(p.size, -1) for p in ir.populations}
    out: dict[int, list[int]] = {}
    for b in placement.blocks:
        core_of[b.population][b.start : b.stop] = b.core
        row = out.setdefault(b.core, [0, 0, 0, 0])
        row[0] += b.stop - b.start
        for pr in ir.incoming(b.population):
            w = wt.to_dense(pr.weight)[b.start : b.stop]
            row[1] += int(np.count_nonzero(w))
            signs = (w > 0, w < 0) if sign_rows else (w != 0,)
            row[2] += sum(int(np.any(s, axis=0).sum()) for s in signs)
    for pop in ir.populations:
        for i in range(pop.size if pop.kind != "input" else 0):
            reached = set()
            for pr in (p for p in ir.projections if p.src == pop.name):
                reached |= set(core_of[pr.dst][np.flatnonzero(wt.to_dense(pr.weight)[:, i])].tolist())
            out[int(core_of[pop.name][i])][3] += len(reached)
    return {k: tuple(v) for k, v in out.items()}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_random_networks_place_within_every_limit(case: tuple[NetworkIR, object]) -> None:
    ir, profile = case
    placement = place(ir, profile)
    for pop in ir.populations[1:]:  # blocks cover each population once, in order
        bounds = [(b.start, b.stop) for b in placement.blocks if b.population == pop.name]
        assert bounds[0][0] == 0 and bounds[-1][1] == pop.size
        assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(bounds, bounds[1:], strict=False))
    sign_rows = bool(profile.numerics.get("sign_by_rows", False))
    counted = {c.core: (c.neurons, c.synapses, c.axons_in, c.axons_out) for c in placement.cores if c.blocks}
    assert counted == _recount(ir, placement, sign_rows)  # the placer counts what check_placement compares
    if _one_neuron_per_core_fits(ir, profile):
        assert check_placement(ir, placement, profile) == []


# ---------------------------------------------------------------- the N-MNIST conv net of the issue


def nmnist_graph(seed: int = 0) -> nir.NIRGraph:
    """2×34×34 events -> conv 2→16 k5 s2 p1 (16×16×16 = 4,096 LIF) -> conv 16→32 k3 p1 + sum-pool 2 (2,048)
    -> conv 32→64 k3 p1 (4,096) -> flatten -> linear 4096→256 -> linear 256→10."""
    rng = np.random.default_rng(seed)

    def lif(*shape: int) -> nir.LIF:
        return nir.LIF(tau=np.full(shape, 2e-3), r=np.ones(shape), v_leak=np.zeros(shape), v_threshold=np.ones(shape))

    def conv(cin: int, cout: int, k: int, stride: int, hw: tuple[int, int]) -> nir.Conv2d:
        w = rng.normal(0, 2 / np.sqrt(cin * k * k), (cout, cin, k, k))
        return nir.Conv2d(input_shape=hw, weight=w, stride=stride, padding=1, dilation=1, groups=1, bias=np.zeros(cout))

    nodes = {
        "input": nir.Input(input_type=np.array([2, 34, 34])),
        "conv1": conv(2, 16, 5, 2, (34, 34)),
        "lif1": lif(16, 16, 16),
        "conv2": conv(16, 32, 3, 1, (16, 16)),
        "pool2": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "lif2": lif(32, 8, 8),
        "conv3": conv(32, 64, 3, 1, (8, 8)),
        "lif3": lif(64, 8, 8),
        "flat": nir.Flatten(input_type={"input": np.array([64, 8, 8])}, start_dim=0),
        "fc1": nir.Linear(weight=rng.normal(0, 2 / 64, (256, 4096))),
        "lif4": lif(256),
        "fc2": nir.Linear(weight=rng.normal(0, 2 / 16, (10, 256))),
        "lif5": lif(10),
        "output": nir.Output(output_type=np.array([10])),
    }
    names = list(nodes)
    meta = {"neurodeploy.dt": 1e-3, "neurodeploy.reset": "zero"}
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:], strict=False)), metadata=meta, type_check=False)


@pytest.fixture(scope="module")
def nmnist() -> nir.NIRGraph:
    return nmnist_graph()


def test_nmnist_conv_net_compiles_strictly_on_loihi2(nmnist: nir.NIRGraph) -> None:
    compiled = nd.compile(nmnist, "loihi2")  # strict: any error would raise
    assert compiled.ir.population("lif1").size == 4096
    assert check_placement(compiled.ir, compiled.placement, compiled.profile) == []
    assert [v for v in compiled.violations if v.severity == "error"] == []
    cores = compiled.report["cores"]
    assert max(c["axons_out"] for c in cores) <= 4096 and max(c["axons_in"] for c in cores) <= 4096
    assert max(c["synapses"] * 8 for c in cores) <= 1 << 20 and len(cores) <= 128
    assert sum(c["neurons"] for c in cores) == 4096 + 2048 + 4096 + 256 + 10


def test_block_size_override(nmnist: nir.NIRGraph) -> None:
    both = nd.compile(nmnist, "loihi2", placement={"lif1": {"blocks": [1024, 1024, 1024, 1024], "cores": [9, 8, 7, 6]}})
    assert [(b.start, b.stop, b.core) for b in both.placement.blocks if b.population == "lif1"] == [
        (0, 1024, 9), (1024, 2048, 8), (2048, 3072, 7), (3072, 4096, 6)]  # fmt: skip
    assert all(c.core not in (6, 7, 8, 9) for c in both.placement.cores if any("lif2" in b for b in c.blocks))
    sizes = nd.compile(nmnist, "loihi2", placement={"lif1": {"blocks": [512] * 8}})  # sizes only: cores chosen
    assert [b.stop - b.start for b in sizes.placement.blocks if b.population == "lif1"] == [512] * 8
    assert check_placement(sizes.ir, sizes.placement, sizes.profile) == []


def test_a_bad_override_gives_one_clear_error(nmnist: nir.NIRGraph) -> None:
    with pytest.raises(CompileError) as info:  # the issue's 2,690 neurons on one core
        nd.compile(nmnist, "loihi2", placement={"lif1": {"blocks": [2690, 1406]}})
    text = str(info.value)
    assert "\n" not in text and "fan-out axons per core is 10760, limit 4096" in text and "(and 1 more)" in text
    assert "the automatic placement cuts 'lif1' as blocks [1024, 1024, 1024, 1024]" in text
    with pytest.raises(CompileError, match="add up to 4000 neurons, the population has 4096"):
        nd.compile(nmnist, "loihi2", placement={"lif1": {"blocks": [2000, 2000]}})


def test_list_form_is_kept_and_says_how_many_cores_it_needs() -> None:
    prof = tiny('neurons_per_core = { value = 10, source = "s" }')
    compiled = nd.compile(lif_graph(), prof, placement={"lif": [5, 4, 3]})
    assert [(b.core, b.fixed) for b in compiled.placement.blocks] == [(5, True), (4, True), (3, True), (0, False)]
    with pytest.raises(CompileError, match=r"gives 2 cores for 3 blocks.*automatic blocks: \[10, 10, 10\]"):
        nd.compile(lif_graph(), prof, placement={"lif": [0, 1]})


@pytest.mark.parametrize(
    ("placement", "fragment"),
    [
        ({"lif": {"sizes": [30]}}, "has keys ['sizes']"),
        ({"lif": {}}, "has no keys"),
        ({"lif": {"blocks": [10, "x", 10]}}, "block size 'x' is not valid"),
        ({"lif": {"blocks": [30, 0]}}, "block size 0 is not valid"),
        ({"lif": {"blocks": [15, 15], "cores": [0]}}, "gives 2 blocks and 1 cores"),
        ({"lif": {"cores": 3}}, "cores must be a list"),
        ({"input": [0]}, "network input"),
    ],
)
def test_override_errors_are_one_line(placement: dict, fragment: str) -> None:
    with pytest.raises(CompileError) as info:
        nd.compile(lif_graph(), "loihi2", placement=placement)
    assert fragment in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------- when no placement exists


def test_too_many_cores_names_the_binding_limit() -> None:
    prof = tiny('neurons_per_core = { value = 10, source = "s" }\ncores_per_chip = { value = 2, source = "s" }\n'
                'chips = { value = 1, source = "s" }')  # fmt: skip
    with pytest.raises(CompileError) as info:
        nd.compile(lif_graph(), prof)
    text = str(info.value)
    assert "cores is 4, limit 2" in text and "2 cores more than its 1 chip(s) of 2" in text
    assert "neurons per core binds: 33 neurons fill at least 4 cores" in text and "more cores or chips" in text


def test_fan_out_that_no_split_fixes_names_the_limit_and_a_way_out() -> None:
    prof = tiny('neurons_per_core = { value = 2, source = "s" }\nfan_out_axons_per_core = { value = 3, source = "s" }')
    with pytest.raises(CompileError) as info:  # every hidden neuron drives all 10 outputs: 5 cores of 2
        nd.compile(lif_graph(n_out=10), prof)
    text = str(info.value)
    assert "fan-out axons per core is 5, limit 3" in text and "no placement exists on tiny" in text
    assert "each reach up to 5 cores of ['lif_1']" in text and "more fan-out axons per core" in text


def test_recurrent_network_reaches_a_fixed_point() -> None:
    rng = np.random.default_rng(3)
    n = 60
    pops = [Population("in", 4, "input"), _pop("h", n, rng, True)]
    rec = np.where(rng.random((n, n)) < 0.05, 1.0, 0.0)
    ir = NetworkIR(pops, [Projection("w", "in", "h", np.ones((n, 4))), Projection("r", "h", "h", rec, delay=1)],
                   ["in"], ["h"])  # fmt: skip
    prof = tiny(
        'neurons_per_core = { value = 16, source = "s" }\nfan_out_axons_per_core = { value = 12, source = "s" }'
    )
    placement = place(ir, prof)
    assert check_placement(ir, placement, prof) == []
    assert max(c.axons_out for c in placement.cores) <= 12


def test_dense_recurrent_layer_over_the_fan_out_limit_is_reported() -> None:
    """All-to-all among n neurons sends n fan-out axons per core whatever the split: no placement exists."""
    n = 40
    pops = [Population("in", 2, "input"), _pop("h", n, np.random.default_rng(0), True)]
    ir = NetworkIR(pops, [Projection("w", "in", "h", np.ones((n, 2))), Projection("r", "h", "h", np.ones((n, n)))],
                   ["in"], ["h"])  # fmt: skip
    prof = tiny('neurons_per_core = { value = 8, source = "s" }\nfan_out_axons_per_core = { value = 30, source = "s" }')
    (first, *_) = check_placement(ir, place(ir, prof), prof)
    assert first.rule == "fan-out axons per core" and first.hint.startswith("no placement exists on tiny")


def test_shared_parameters_keep_layers_apart_and_ideal_uses_one_core() -> None:
    assert len(nd.compile(lif_graph(), "ideal").report["cores"]) == 1
    prof = tiny(
        'neurons_per_core = { value = 64, source = "s" }', 'shared_parameters = { value = "core", source = "s" }'
    )
    compiled = nd.compile(lif_graph(), prof, strict=False)  # lif's biases differ: its blocks take cores alone
    assert all(len({b.split("[")[0] for b in c["blocks"]}) == 1 for c in compiled.report["cores"])

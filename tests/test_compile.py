"""Compiler passes: normalize, quantize, rules, placement, artifact."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from conftest import DT, lif_graph, spikes

import neurodeploy as nd
from neurodeploy.compiler.normalize import normalize
from neurodeploy.errors import ArtifactError, CompileError


def test_normalize_lif_chain_gains_and_order(graph):
    ir = normalize(graph)
    assert [p.kind for p in ir.populations] == ["input", "cuba_lif", "cuba_lif"]
    hidden = ir.populations[1]
    # snnTorch's encoding (r = tau/dt) makes the LIF input gain exactly 1 and du = 1.
    np.testing.assert_allclose(hidden.du, 1.0)
    np.testing.assert_allclose(hidden.dv, 0.1)
    np.testing.assert_allclose(ir.projections[0].weight, graph.nodes["affine"].weight)
    np.testing.assert_allclose(hidden.bias_u, graph.nodes["affine"].bias)
    assert ir.is_feedforward() and ir.outputs == [ir.populations[2].name]


def test_missing_conventions_warn_and_are_recorded():
    graph = lif_graph()
    graph.metadata.clear()
    with pytest.warns(UserWarning, match="does not record dt"):
        ir = normalize(graph)
    assert set(ir.conventions.assumed) == {"dt", "reset", "reset_rule", "reset_delay"}  # no loop: no loop_delay


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda g: setattr(g.nodes["lif"], "tau", -np.ones(30)), "tau must be > 0"),
        (lambda g: g.nodes["affine"].weight.__setitem__((0, 0), np.nan), "NaN"),
        (lambda g: setattr(g.nodes["lif"], "v_threshold", np.ones(7)), "7 values for a layer of 30"),
    ],
)
def test_bad_parameters_name_the_node(mutate, message):
    graph = lif_graph()
    mutate(graph)
    with pytest.raises(CompileError, match=message):
        nd.compile(graph, "loihi2")


def test_unsupported_node_is_named():
    @dataclass(eq=False)
    class Softmax(nir.NIRNode):  # a node type the compiler does not know
        size: int

        def __post_init__(self):
            self.input_type = {"input": np.array([self.size])}
            self.output_type = {"output": np.array([self.size])}

    graph = lif_graph()
    graph.nodes["soft"] = Softmax(30)
    graph.edges.append(("lif", "soft"))
    with pytest.raises(CompileError, match="Softmax is not supported.*'soft'.*supported nodes"):
        nd.compile(graph, "loihi2")


def test_loihi_parameters_fit_their_fields(graph):
    compiled = nd.compile(graph, "loihi2")
    for pop in compiled.core.populations[1:]:
        p = pop.params
        assert p["du"].min() >= 0 and p["du"].max() <= 4095 and p["dv"].max() <= 4095
        assert 0 < p["vth"].max() <= 2**17 - 1
        assert p["bias_mant"].min() >= -4096 and p["bias_mant"].max() <= 4095
    for proj in compiled.core.projections:
        w = proj.weight
        assert w.min() >= -256 and w.max() <= 254 and np.all(w % 2 == 0)  # mixed 8-bit grid
        assert -8 <= proj.weight_exp <= 8
    layer = compiled.report["layers"][0]
    assert layer["weight_snr_db"]["input->lif"] > 30


def test_chip_agrees_with_float_reference(graph, inputs):
    compiled = nd.compile(graph, "loihi2", sample_inputs=inputs)
    ev = compiled.report["evaluation"]
    assert ev["layers"]["lif"]["spike_agreement"] > 0.97
    assert ev["layers"]["lif"]["rate_reference"] > 0.02  # the network is not silent
    assert min(ev["prediction_agreement"].values()) > 0.9


def test_ideal_profile_runs_the_float_reference_without_latency(graph, inputs):
    compiled = nd.compile(graph, "ideal")
    result = nd.run(compiled, inputs)
    assert result.latency == {"input": 0, "lif": 0, "lif_1": 0}
    assert result.output().shape == (40, 16, 3)


def test_subtract_reset_is_a_design_rule_violation_on_loihi2(graph):
    with pytest.raises(CompileError, match="reset mode"):
        nd.compile(graph, "loihi2", reset="subtract")
    assert nd.compile(graph, "ideal", reset="subtract").violations == []


def test_nonzero_reset_potential_violates_loihi(graph):
    graph.nodes["lif"].v_reset = np.full(30, 0.2)
    with pytest.raises(CompileError, match="reset potential"):
        nd.compile(graph, "loihi2")


def test_ten_thousand_neurons_split_over_cores_and_table_adds_up():
    """The shipped loihi1 profile (1,024 neurons per core) spreads 10,000 neurons over >= 10 cores."""
    rng = np.random.default_rng(0)
    n_in, n = 64, 10_000
    weight = np.where(rng.random((n, n_in)) < 0.2, rng.normal(0, 1, (n, n_in)), 0.0)
    graph = nir.NIRGraph.from_list(
        nir.Linear(weight=weight),
        nir.LIF(tau=np.full(n, 1e-3), r=np.full(n, 10.0), v_leak=np.zeros(n), v_threshold=np.ones(n)),
    )
    compiled = nd.compile(graph, "loihi1", dt=DT, reset="zero")
    assert compiled.profile.name == "loihi1" and compiled.profile.limit("neurons_per_core") == 1024
    cores = compiled.report["cores"]
    assert len(cores) >= 10
    assert sum(c["neurons"] for c in cores) == n
    assert sum(c["synapses"] for c in cores) == int(np.count_nonzero(weight))
    assert all(c["neurons"] <= 1024 for c in cores)


def test_placement_override(graph):
    compiled = nd.compile(graph, "loihi2", placement={"lif": [3], "lif_1": [1]})
    by_core = {c["core"]: c["blocks"] for c in compiled.report["cores"]}
    assert by_core[3] == ["lif[0:30]"] and by_core[1] == ["lif_1[0:3]"]


def test_artifact_round_trip_is_exact(tmp_path: Path, graph, inputs):
    compiled = nd.compile(graph, "loihi2")
    path = compiled.save(tmp_path / "m.ndp")
    loaded = nd.load_compiled(path)
    a, b = nd.run(compiled, inputs), nd.run(loaded, inputs)
    for name in a.spikes:
        np.testing.assert_array_equal(a.spikes[name], b.spikes[name])
    assert loaded.conventions == compiled.conventions
    assert loaded.profile.name == "loihi2"
    assert [p.name for p in tmp_path.iterdir()] == ["m.ndp"]  # no temporary file left behind


def test_corrupted_artifacts_give_one_clear_error(tmp_path: Path, graph):
    good = nd.compile(graph, "loihi2").save(tmp_path / "good.ndp")
    tampered = tmp_path / "tampered.ndp"
    shutil.copy(good, tampered)
    with h5py.File(tampered, "r+") as f:
        f["core/projections/0000/weight"][0, 0] += 2
    truncated = tmp_path / "truncated.ndp"
    truncated.write_bytes(good.read_bytes()[:2000])
    foreign = tmp_path / "foreign.ndp"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    for path, message in [
        (tampered, "checksum"),
        (truncated, "truncated"),
        (foreign, "not a neurodeploy"),
        (tmp_path / "missing.ndp", "not found"),
    ]:
        with pytest.raises(ArtifactError, match=message):
            nd.load_compiled(path)


def test_failed_save_keeps_the_previous_file(tmp_path: Path, graph, monkeypatch):
    compiled = nd.compile(graph, "loihi2")
    path = compiled.save(tmp_path / "m.ndp")
    before = path.read_bytes()
    import neurodeploy.compiler.artifact as artifact

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(artifact, "_write_core", boom)
    with pytest.raises(RuntimeError):
        compiled.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.ndp"]


def test_run_rejects_bad_inputs(graph):
    compiled = nd.compile(graph, "loihi2")
    for bad, message in [
        (np.zeros((10, 2, 4)), "does not fit"),
        (np.full((10, 2, 5), 0.5), "spikes"),
        (np.array([["a"]]), "not numeric"),
    ]:
        with pytest.raises(nd.NeurodeployError, match=message):
            nd.run(compiled, bad)
    with pytest.raises(nd.NeurodeployError, match="unknown backend"):
        nd.run(compiled, spikes(), backend="gpu")


def test_labels_add_accuracy_and_its_change(graph, inputs):
    labels = np.arange(inputs.shape[1]) % 3
    ev = nd.compile(graph, "loihi2", sample_inputs=inputs, sample_labels=labels).report["evaluation"]
    acc = ev["accuracy"]
    assert 0 <= acc["reference"] <= 1 and 0 <= acc["chip"] <= 1
    assert acc["change_points"] == pytest.approx(100 * (acc["chip"] - acc["reference"]))
    with pytest.raises(nd.NeurodeployError, match="labels"):
        nd.compile(graph, "loihi2", sample_inputs=inputs, sample_labels=labels[:3])

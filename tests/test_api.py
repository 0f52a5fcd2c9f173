"""The public API end to end on the demo's network: from_torch -> compile -> save -> load -> run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import lif_graph, spikes

import neurodeploy as nd
from neurodeploy.datasets import yin_yang_splits

pytest.importorskip("snntorch")


@pytest.fixture(scope="module")
def demo_net():
    """The demo's architecture and encoding, trained briefly (identity does not need accuracy)."""
    from neurodeploy.training import train_yinyang_snntorch

    trained = train_yinyang_snntorch(seed=1, hidden=32, epochs=3, n_train=1000)
    features, labels = yin_yang_splits()["test"]
    return trained, trained.encoder.encode(features[:200]), labels[:200]


def test_round_trip_preserves_every_spike(tmp_path: Path, demo_net):
    trained, spikes, labels = demo_net
    graph = nd.from_torch(trained.module, spikes[:, 0], framework="snntorch")
    assert graph.metadata["neurodeploy.source"] == "snntorch"
    compiled = nd.compile(graph, "loihi2", sample_inputs=spikes)
    path = compiled.save(tmp_path / "demo.ndp")
    loaded = nd.load_compiled(path)
    a = nd.run(compiled, spikes, record=("spikes", "v"))
    b = nd.run(loaded, spikes, record=("spikes", "v"))
    assert a.output().shape == (spikes.shape[0], 200, 3)
    assert set(a.v) == {"1", "3"}
    for kind in ("spikes", "v"):
        for name, expected in getattr(a, kind).items():
            np.testing.assert_array_equal(getattr(b, kind)[name], expected)
    # The chip keeps the float network's decisions on this QAT-trained network.
    from neurodeploy.training import predict_counts

    float_pred = predict_counts(trained.module, spikes).argmax(-1)
    assert np.mean(a.predictions() == float_pred) > 0.95
    assert a.output().sum() > 0


@pytest.mark.lava
def test_lava_spikes_identically_to_the_emulator_on_the_demo_network(demo_net):
    from neurodeploy.emulator.backends.lava import available

    ok, reason = available()
    if not ok:
        pytest.skip(reason)
    trained, spikes, _ = demo_net
    compiled = nd.compile(nd.from_torch(trained.module, spikes[:, 0], framework="snntorch"), "loihi2")
    emulator = nd.run(compiled, spikes, record=("spikes", "u", "v"))
    lava = nd.run(compiled, spikes, backend="lava", record=("spikes", "u", "v"))
    for kind in ("spikes", "u", "v"):
        for name, expected in getattr(emulator, kind).items():
            np.testing.assert_array_equal(getattr(lava, kind)[name], expected, err_msg=f"{kind} of {name}")
    assert sum(int(s.sum()) for s in emulator.spikes.values()) > 1000


def test_board_backend_explains_what_is_missing(demo_net):
    trained, spikes, _ = demo_net
    compiled = nd.compile(nd.from_torch(trained.module, spikes[:, 0], framework="snntorch"), "loihi2")
    with pytest.raises(nd.NeurodeployError, match="lava-loihi|board"):
        nd.run(compiled, spikes[:, :2], backend="board")


def test_conv_models_take_inputs_in_their_own_shape(tmp_path):
    """(time, batch, C, H, W) spikes for a conv model: flattened as the graph is, and the shape travels
    with the artifact; the flat form still works, and a wrong layout names both accepted shapes."""
    import subprocess
    import sys

    import nir

    rng = np.random.default_rng(0)
    conv = nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 0.5, (4, 2, 3, 3)), stride=1, padding=1, dilation=1,
                      groups=1, bias=np.zeros(4))  # fmt: skip
    lif = nir.LIF(tau=np.full((4, 8, 8), 0.01), r=np.ones((4, 8, 8)), v_leak=np.zeros((4, 8, 8)),
                  v_threshold=np.ones((4, 8, 8)))  # fmt: skip
    nodes = {
        "input": nir.Input(np.array([2, 8, 8])),
        "conv": conv,
        "lif": lif,
        "output": nir.Output(np.array([4, 8, 8])),
    }
    graph = nir.NIRGraph(nodes, [("input", "conv"), ("conv", "lif"), ("lif", "output")],
                         metadata={"neurodeploy.dt": 1e-3, "neurodeploy.reset": "zero"})  # fmt: skip
    compiled = nd.compile(graph, "loihi2")
    x = rng.random((20, 3, 2, 8, 8)) < 0.3
    own, flat = nd.run(compiled, x), nd.run(compiled, x.reshape(20, 3, 128))
    assert all(np.array_equal(own.spikes[k], flat.spikes[k]) for k in flat.spikes) and own.output().any()
    compiled.save(tmp_path / "c.ndp")
    loaded = nd.load_compiled(tmp_path / "c.ndp")
    assert loaded.ir.population("input").shape == (2, 8, 8)
    assert np.array_equal(nd.run(loaded, x).output(), own.output())
    with pytest.raises(nd.NeurodeployError, match=r"\(time, batch, 128\) or \(time, batch, 2, 8, 8\)"):
        nd.run(compiled, np.moveaxis(x, 2, -1))
    np.save(tmp_path / "x.npy", x)
    done = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "run", str(tmp_path / "c.ndp"), "-i",
                           str(tmp_path / "x.npy"), "--json"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_a_seed_numpy_refuses_is_one_clear_error(seed):
    """numpy's generators take non-negative integer seeds only; every verb names the seed before any run."""
    graph = lif_graph(n_in=4, hidden=8, n_out=3)
    with pytest.raises(nd.NeurodeployError, match="seed must be a non-negative integer") as err:
        nd.compile(graph, "loihi2", rounding="stochastic", seed=seed)
    assert err.value.where == "seed"
    with pytest.raises(nd.NeurodeployError, match="seed must be a non-negative integer"):
        nd.learn("fa", "loihi2", "yinyang", hidden=8, epochs=1, seed=seed)
    compiled = nd.compile(graph, "loihi2")
    with pytest.raises(nd.NeurodeployError, match="seed must be a non-negative integer"):
        nd.variability(compiled, spikes(steps=8, batch=4, n=4), np.zeros(4, dtype=int), instances=2, seed=seed)


def test_public_verbs_stay_functions_after_their_modules_are_imported():
    """No verb shares its name with a submodule of the package, whose import would replace it."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(nd.__path__):
        importlib.import_module(f"neurodeploy.{module.name}")
    for name in ("compile", "run", "learn", "variability", "run_study", "load_nir", "from_torch", "export_nir"):
        assert callable(getattr(nd, name)), name

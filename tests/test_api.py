"""The public API end to end on the demo's network: from_torch -> compile -> save -> load -> run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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

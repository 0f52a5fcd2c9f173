"""Smoke tests of the demo's training: runs, is deterministic, exports to NIR, evaluates as trained."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import snntorch as snn
import torch

from neurodeploy.datasets import EncoderSettings, yin_yang
from neurodeploy.training import (
    QUANT_LEVELS,
    SpikingMLP,
    TrainedModel,
    _fast_forward,
    accuracy,
    classify,
    export_nir,
    predict_counts,
    train_yinyang_snntorch,
)

TINY = dict(hidden=16, steps=12, epochs=2, n_train=400, batch_size=50)


@pytest.fixture(scope="module")
def tiny() -> TrainedModel:
    return train_yinyang_snntorch(seed=3, **TINY)


def test_training_runs_and_reports(tiny: TrainedModel) -> None:
    assert isinstance(tiny.module, SpikingMLP)
    assert tiny.encoder.steps == 12 and tiny.encoder.n_inputs == 5
    assert tiny.encoder.active < tiny.encoder.steps  # silent tail for the chip's latency
    for acc in (tiny.test_accuracy, tiny.val_accuracy, tiny.train_accuracy):
        assert 0.0 <= acc <= 1.0
    assert tiny.test_accuracy > 0.4  # better than chance even after two tiny epochs


def test_training_is_deterministic(tiny: TrainedModel) -> None:
    again = train_yinyang_snntorch(seed=3, **TINY)
    for (k, a), (_, b) in zip(tiny.module.state_dict().items(), again.module.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    assert again.test_accuracy == tiny.test_accuracy


def test_architecture_is_what_the_chip_compiles(tiny: TrainedModel) -> None:
    fc1, lif1, fc2, lif2 = tiny.module
    assert fc1.bias is None and fc2.bias is None
    for lif, size in ((lif1, 16), (lif2, 3)):
        assert isinstance(lif, snn.Leaky)
        assert lif.beta.shape == (size,) and lif.threshold.shape == (size,)
        assert not lif.reset_delay
        assert int(lif.reset_mechanism_val) == 1  # zero reset
        assert not isinstance(lif.beta, torch.nn.Parameter)
    # Weights lie on a 7-bit + sign grid with one scale per layer.
    for fc in (fc1, fc2):
        w = fc.weight.detach().numpy().astype(np.float64)
        k = w / (np.abs(w).max() / QUANT_LEVELS)
        np.testing.assert_allclose(k, np.rint(k), atol=1e-3)


def test_module_forward_matches_training_path_and_resets(tiny: TrainedModel) -> None:
    feats, labels = yin_yang(64, 5)
    spikes = torch.from_numpy(tiny.encoder.encode(feats))
    with torch.no_grad():
        out = tiny.module(spikes)
        again = tiny.module(spikes)
        fast = _fast_forward(tiny.module, spikes, quant=False)
    assert out.shape == (12, 64, 3)
    assert torch.equal(out, again)  # every call starts from rest
    assert torch.equal(out, fast)
    counts = predict_counts(tiny.module, spikes.numpy(), batch=20)
    np.testing.assert_array_equal(counts, out.sum(0).numpy())
    assert accuracy(tiny.module, spikes.numpy(), labels) == np.mean(classify(counts) == labels)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_exports_to_nir(tiny: TrainedModel, tmp_path) -> None:
    graph = export_nir(tiny.module)
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert sorted(kinds.values()) == ["Input", "LIF", "LIF", "Linear", "Linear", "Output"]
    lifs = [n for n in graph.nodes.values() if isinstance(n, nir.LIF)]
    assert sorted(n.tau.shape[0] for n in lifs) == [3, 16]
    np.testing.assert_allclose(sorted({float(t) for n in lifs for t in n.tau}), [8e-4, 1.6e-3])
    nir.write(tmp_path / "net.nir", graph)
    assert set(nir.read(tmp_path / "net.nir").nodes) == set(graph.nodes)
    # The exporter used directly, as the snnTorch docs show it, works too.
    from snntorch.export_nir import export_to_nir

    direct = export_to_nir(tiny.module, torch.zeros(1, 5), ignore_dims=[0])
    assert set(direct.nodes) == set(graph.nodes)


def test_classify_breaks_ties_to_lowest_index() -> None:
    counts = np.array([[0, 0, 0], [2, 5, 5], [1, 0, 1], [0, 3, 1]])
    assert classify(counts).tolist() == [0, 1, 0, 1]


def test_custom_encoder_is_used() -> None:
    enc = EncoderSettings(kind="latency", steps=10, t_min=0, t_max=6)
    model = train_yinyang_snntorch(hidden=8, epochs=1, n_train=100, encoder=enc)
    assert model.encoder is enc
    assert model.module[0].in_features == 5

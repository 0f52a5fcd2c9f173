"""PAL and SAL on the compiled network: noise populations while training, the host's correlations of the
recorded trains, and what their results say ran where."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurodeploy.emulator import learning_noise as ln
from neurodeploy.errors import NeurodeployError
from neurodeploy.learning import metrics
from neurodeploy.learning.tasks import get_task
from neurodeploy.studies.chip_learning import ChipLearnConfig, ChipTrainer, _forward_name


def _trainer(rule: str, profile: str, hidden: int = 16, **kw: float) -> ChipTrainer:
    cfg = ChipLearnConfig(rule=rule, profile=profile, seeds=1, epochs=1, hidden=(hidden,), **kw).resolved()
    return ChipTrainer(cfg, get_task("yinyang"))


def _noisy_batch(tr: ChipTrainer, n: int, seed: int) -> tuple:
    task, lnet = tr.task, tr.lnet
    idx = np.random.default_rng(seed).integers(0, len(task.x_train), n)
    target = np.eye(task.n_out)[task.y_train[idx]] * lnet.schedule.active
    return tr.run.present(tr.encode(task.x_train[idx]), target, noise=True)


def _readout_input(tr: ChipTrainer, act) -> np.ndarray:
    unit = 64.0 * tr.lnet.scale if tr.lnet.numerics == "loihi" else 1.0
    v = act.v_out.astype(np.float64) / unit
    return np.diff(v, axis=0, prepend=np.zeros_like(v[:1]))


def test_the_output_layer_reads_the_hidden_spikes_one_step_later() -> None:
    """The estimators pair a hidden spike at t with the output's input at t + 1: on the ideal profile the
    output membrane's increment is exactly W z(t − 1) + w_b·bias(t − 1)."""
    tr = _trainer("pal", "ideal")
    act = _noisy_batch(tr, 32, 0)
    lnet = tr.lnet
    names = [layer.name for layer in lnet.layers]
    w = np.asarray(lnet.projection(_forward_name(lnet, names[-1])).weight)[0]
    w_b = np.asarray(lnet.projection(f"bias->{names[-1]}").weight)[0]
    z = act.spikes[names[0]][:, 0].astype(float)
    bias = act.spikes["bias"][:, 0].astype(float)
    want = np.zeros_like(_readout_input(tr, act)[:, 0])
    want[1:] = z[:-1] @ w.T + bias[:-1] @ w_b.T
    np.testing.assert_allclose(_readout_input(tr, act)[:, 0], want, atol=1e-9)
    assert act.noise[names[0]].any()  # the noise populations fired while training ...
    quiet = tr.run.present(tr.encode(tr.task.x_test[:32]))
    assert not quiet.noise and quiet.v_out is None  # ... and not in tests


def test_pal_estimate_points_along_the_noise_gain_times_w_transpose() -> None:
    """On loihi2 integers, PAL's correlation of the noise with the output's high-passed input converges
    to D·Wᵀ, D each hidden neuron's own measured response to its noise: the paper's fixed point."""
    tr = _trainer("pal", "loihi2")
    lnet = tr.lnet
    names = [layer.name for layer in lnet.layers]
    w = np.asarray(lnet.projection(_forward_name(lnet, names[-1])).weight, float) / lnet.scale
    w_t = np.swapaxes(w, -1, -2)
    corr, own = 0.0, 0.0
    for k in range(80):
        act = _noisy_batch(tr, 64, k)
        z = act.spikes[names[0]].astype(np.float32)
        c, o = ln.pal_correlations(ln.signed(act.noise[names[0]]), z, _readout_input(tr, act).astype(np.float32),
                                   8.0, 8.0)  # fmt: skip
        corr, own = corr + c, own + o
    est = ln.feedback_estimate("pal", corr, own)
    pred = np.maximum(own, 0)[..., None] * w_t
    assert metrics.angle(est, pred)[0] < 20.0, metrics.angle(est, pred)  # 12° here, 6° after 4x the samples
    assert metrics.angle(est, w_t)[0] < 60.0  # D·Wᵀ itself is 45° from Wᵀ on this fresh network
    assert 0.5 < metrics.norm_ratio(est, w_t)[0] < 3.0  # B is scaled to W's units, not σ²/α


@pytest.mark.parametrize("rule", ["pal", "sal"])
def test_noise_rules_align_b_and_say_where_they_ran(rule: str) -> None:
    from neurodeploy.api_learn import learn

    r = learn(rule, "loihi2", "yinyang", seeds=2, epochs=3, hidden=(32,), noise_lr=0.01)
    first, last = (np.mean(h["weight_angle"]["B1"]) for h in (r.history[0], r.history[-1]))
    assert last < 80.0 and last <= first + 5.0, (first, last)
    assert (np.asarray(r.history[-1]["test_accuracy"]) > 0.6).all()
    fb = r.provenance["feedback_learning"]
    assert fb["where"].startswith("chip + host") and fb["host_ops_per_sample"] > 0
    assert {r.provenance[k]["where"] for k in ("forward", "output_error", "hidden_signal", "weight_write")} == {"chip"}


def test_evaluation_runs_without_noise() -> None:
    tr = _trainer("sal", "loihi2")
    a = tr.evaluate(tr.task.x_test[:200], tr.task.y_test[:200])
    b = tr.evaluate(tr.task.x_test[:200], tr.task.y_test[:200])
    np.testing.assert_array_equal(a, b)


def test_noise_rules_need_a_noise_source_and_sane_options() -> None:
    from neurodeploy.compiler import learning as lp
    from neurodeploy.compiler.normalize import normalize
    from neurodeploy.hw_profiles import get
    from neurodeploy.studies.chip_learning import builtin_graph

    ir = normalize(builtin_graph([4, 8, 3]))
    base = get("loihi2")
    quiet = dataclasses.replace(base, plasticity={**base.plasticity, "noise_source": False})
    with pytest.raises(NeurodeployError, match="noise source") as err:
        lp.build(ir, "pal", quiet, lp.LearnOptions(init_gain=1.0))
    assert "noise_source" in err.value.where
    with pytest.raises(NeurodeployError, match="out of range"):
        lp.build(ir, "sal", base, lp.LearnOptions(init_gain=1.0, noise_rate=1.5))
    lnet = lp.build(ir, "pal", base, lp.LearnOptions(init_gain=1.0))
    noise = lnet.projection(f"noise:{lnet.layers[0].name}->{lnet.layers[0].name}").weight[0]
    n = lnet.layers[0].size
    assert (np.diag(noise[:, :n]) > 0).all() and (np.diag(noise[:, n:]) == -np.diag(noise[:, :n])).all()
    assert np.count_nonzero(noise) == 2 * n  # one to one, two channels

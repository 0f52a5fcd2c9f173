"""On-chip learning: tasks, metrics, engine writers, rules in float and fixed point, refusals, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from neurodeploy.errors import NeurodeployError
from neurodeploy.learning import metrics
from neurodeploy.learning.harness import learn
from neurodeploy.learning.tasks import get_task

SMALL = {"epochs": 2, "hidden": (16,)}  # chip-path rules (``neurodeploy.rules.CHIP_RULES``): minibatch 16
HOST = {**SMALL, "batch": 64}  # rules that still run their signals on the host


def test_tasks_are_deterministic_and_split_as_published() -> None:
    a, b = get_task("yinyang"), get_task("yinyang")
    assert (len(a.x_train), len(a.x_val), len(a.x_test)) == (5000, 1000, 1000)
    assert np.bincount(a.y_test).tolist() == [350, 316, 334]
    np.testing.assert_array_equal(a.x_train, b.x_train)
    d = get_task("digits")
    assert d.n_in == 64 and d.n_out == 10 and np.bincount(d.y_test).tolist() == [25] * 10
    assert not set(map(tuple, d.x_test)) & set(map(tuple, d.x_train))
    t = get_task("teacher")
    assert t.kind == "regression" and t.y_train.min() >= 0.0 and t.y_train.max() <= 1.0
    with pytest.raises(NeurodeployError, match="unknown task"):
        get_task("mnist")


def test_angle_and_norm_ratio() -> None:
    w = np.random.default_rng(0).normal(size=(2, 5, 3))
    assert np.allclose(metrics.angle(w, 3 * w), 0.0, atol=1e-5)
    assert np.allclose(metrics.angle(w, -w), 180.0)
    e = np.zeros((1, 2, 2))
    e[0, 0, 0] = 1
    f = np.zeros((1, 2, 2))
    f[0, 1, 1] = 1
    assert metrics.angle(e, f)[0] == pytest.approx(90.0)
    assert metrics.norm_ratio(2 * w, w) == pytest.approx([2.0, 2.0])


def test_forward_writer_is_unbiased() -> None:
    """The engine's integer updates average to the float request (stochastic rounding, 7-bit factors)."""
    from neurodeploy.learning.onchip import ForwardWriter

    writer = ForwardWriter(lr=0.02, scale=64, active=26)
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 27, size=(1, 20000, 6)).astype(float)
    delta = rng.uniform(-1, 1, size=(1, 20000, 4)) + np.array([0.3, -0.3, 0.0, 0.1])
    got = sum(writer.update(counts[:, i : i + 32], delta[:, i : i + 32], rng) for i in range(0, 20000, 32))
    got = np.asarray(got).ravel().astype(float)
    assert writer.tag_saturated == 0 and writer.saturated == 0
    want = (-writer.realised_lr * 64 * np.einsum("sbo,sbi->soi", delta, counts / 26)).ravel()
    assert abs(writer.realised_lr / 0.02 - 1) < 0.15
    # each minibatch moves a weight by about one LSB, so single updates are mostly rounding noise;
    # over 625 minibatches the mean must come through: slope 1, strong correlation
    slope = float(got @ want / (want @ want))
    assert 0.9 < slope < 1.1 and np.corrcoef(got, want)[0, 1] > 0.97, (slope, got, want)


def test_refuses_profiles_without_learning() -> None:
    with pytest.raises(NeurodeployError, match=r"no on-chip long-term learning") as err:
        learn("fa", "dynapse2", seeds=1, **SMALL)
    assert "[plasticity].engine" in str(err.value)
    with pytest.raises(NeurodeployError, match="not model"):
        learn("kp", "brainscales2", seeds=1, **SMALL)
    with pytest.raises(NeurodeployError, match="power of two"):
        learn("fa", "loihi2", seeds=1, steps=80, active=70, **SMALL)
    with pytest.raises(NeurodeployError, match="longest learning epoch"):
        learn("pal", "loihi2", seeds=1, steps=80, active=70, **HOST)
    with pytest.raises(NeurodeployError, match="unknown rule"):
        learn("hebb", "loihi2", seeds=1, **SMALL)


@pytest.mark.parametrize("profile", ["ideal", "loihi2"])
def test_fa_learns_in_float_and_fixed_point(profile: str) -> None:
    r = learn("fa", profile, "yinyang", seeds=2, **SMALL)
    acc = np.asarray(r.history[-1]["test_accuracy"])
    assert (acc > 0.6).all(), acc  # chance is 1/3
    assert r.engine["numerics"] == ("float" if profile == "ideal" else "loihi")
    if profile == "loihi2":
        assert "y0*d*y3" in r.engine["rules"]["input->if0"]["dt"]
    assert set(r.history[-1]["weight_angle"]) == {"B1"}


def test_kolen_pollack_aligns_and_shares_the_rounding() -> None:
    """B gets exactly W's integer update transposed, so W − Bᵀ only shrinks (by the decay)."""
    r = learn("kp", "loihi2", "yinyang", seeds=2, **{**SMALL, "epochs": 3})
    angles = [np.mean(h["weight_angle"]["B1"]) for h in r.history]
    assert angles[-1] < angles[0] < 90.0
    bp = learn("bp", "ideal", "yinyang", seeds=2, **SMALL)
    assert np.allclose(bp.history[-1]["signal_angle"]["h1"], 0.0, atol=1e-3)
    bp = learn("bp", "loihi2", "yinyang", seeds=2, **SMALL)
    assert np.allclose(bp.history[-1]["weight_angle"]["B1"], 0.0, atol=1e-3)  # the host's copy of Wᵀ
    assert np.max(bp.history[-1]["signal_angle"]["h1"]) < 3.0  # δ's 7-bit rounding, nothing else


def test_frozen_and_sign_symmetry_signals() -> None:
    frozen = learn("frozen", "ideal", seeds=1, **SMALL)
    assert frozen.history[-1]["signal_angle"]["h1"] == [90.0]  # no hidden learning signal at all
    sign = learn("sign", "ideal", seeds=1, **SMALL)
    assert sign.history[-1]["signal_angle"]["h1"][0] < 60.0


def test_learn_cli_writes_json_and_html(tmp_path) -> None:
    out, page = tmp_path / "fa.json", tmp_path / "fa.html"
    cmd = [sys.executable, "-m", "neurodeploy.cli", "learn", "--rule", "fa", "--profile", "ideal", "--seeds", "1"]
    cmd += ["--epochs", "1", "--hidden", "8", "-o", str(out), "--plot", str(page)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert data["format"] == "neurodeploy.learn" and data["version"] == 2 and len(data["history"]) == 1
    assert "<img" in page.read_text()
    bad = subprocess.run(
        [sys.executable, "-m", "neurodeploy.cli", "learn", "--rule", "fa", "--profile", "xylo-audio2", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "[plasticity].engine" in bad.stderr
    assert json.loads(out.read_text())["history"], "a failed run must not touch the earlier output"


def _estimate(kind: str, samples: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The PAL / SAL correlation summed over a fixed random 4-64-3 network, with Wᵀ and D.

    PAL runs the loihi2 integers with its defaults (σ 0.3 into v, w 0.1, gated); D is Σ q p(1 − p)."""
    from neurodeploy.datasets import encode_rate
    from neurodeploy.learning.chipnet import ChipMLP, Numerics

    task, rng = get_task("yinyang"), np.random.default_rng(0)
    net = ChipMLP([4, 64, 3], 1, Numerics("float" if kind == "sal" else "fixed", du=511), rng)
    w = net.as_float(net.weights[1])
    acc, d = 0.0, 0.0
    for i in range(0, samples, 250):
        x = encode_rate(task.x_train[i : i + 250], 63, 56, bias_spike=False)[:, None]
        if kind == "sal":
            act = net.forward(x, 56, escape_width=0.5, rng=rng, record=True)
            prob = act.extra["escape_p"]
            acc = acc + metrics.stdp_corr(act.extra["trains"][1], w, prob).sum(1)
            d = d + (prob * (1 - prob)).mean(axis=(0, 2))
        else:
            act = net.forward(x, 56, noise_std=0.3, noise_tau=0, escape_width=0.1, rng=rng, record=True, noise_into="v")
            gate = metrics.sensitivity_gate(act.extra["margin"], 0.3, 0.1)
            prob = act.extra["escape_p"]
            noise = act.extra["noise"][: len(gate)] * gate
            acc = acc + metrics.noise_response_corr(noise, act.extra["trains"][1], w).sum(1)
            d = d + (gate * prob * (1 - prob)).sum(axis=(0, 2))
    return acc, np.swapaxes(w[..., :-1], -1, -2), d


def test_sal_estimator_converges_to_w_transpose_after_normalisation() -> None:
    """Spike-surprise STDP estimates (D W)ᵀ; dividing by each neuron's own p(1 − p) leaves Wᵀ."""
    est, wt, d = _estimate("sal")
    assert metrics.angle(est, wt * d[..., None])[0] < 8.0
    normed = est / np.maximum(d, 0.05 * d.mean())[..., None]
    assert metrics.angle(normed, wt)[0] < 20.0 < metrics.angle(est, wt)[0]


def test_pal_estimator_converges_to_w_transpose_after_normalisation() -> None:
    """Membrane noise against the high-passed response: Stein's lemma makes E[C] = (1 − 1/8)(σ²/w)·D·W
    exactly (slope 1), and dividing by the neuron's own gated p(1 − p) leaves Wᵀ on every neuron the
    noise reaches, where the paper's fixed point (D W)ᵀ is 30° or more away."""
    est, wt, d = _estimate("pal", 2000)
    pred = (1 - 1 / 8) * 0.3**2 / 0.1 * d[..., None] * wt
    slope = float((est * pred).sum() / (pred**2).sum())
    assert 0.9 < slope < 1.1 and metrics.angle(est, pred)[0] < 6.0, slope
    reached = (d > 0.2 * d.mean())[0]
    assert reached.sum() >= 16  # a fresh network: a third of its neurons never get near threshold
    normed = (est / np.maximum(d, 0.05 * d.mean())[..., None])[:, reached]
    assert metrics.angle(normed, wt[:, reached])[0] < 10.0
    assert metrics.angle(pred[:, reached], wt[:, reached])[0] > 25.0


def test_pal_trains_on_loihi2_with_its_engine_rule() -> None:
    """PAL's decay runs through the tag of its feedback synapses; a short run already aligns B."""
    r = learn("pal", "loihi2", "yinyang", seeds=2, **{**HOST, "epochs": 3})
    assert r.engine["feedback_rule"] == "dt = G·C - 2^-6*u0*w; dw = 2^-3*u5*t"
    angles = [np.mean(h["weight_angle"]["B1"]) for h in r.history]
    assert angles[-1] < angles[0] < 90.0
    assert (np.asarray(r.history[-1]["test_accuracy"]) > 0.6).all()


def test_tag_writer_moves_the_weight_every_2k_updates_without_bias() -> None:
    """Feedback updates sum in the tag and reach the weight every 8th update; the total matches η·C."""
    from neurodeploy.learning.onchip import TagWriter

    writer = TagWriter(lr=0.01, scale=64)
    rng = np.random.default_rng(3)
    corr = rng.uniform(-1, 1, size=(2, 6, 3))
    steps = [writer.update(corr, rng) for _ in range(256)]
    assert not np.any(steps[0]) and all(not np.any(s) for i, s in enumerate(steps) if (i + 1) % 8)
    total = np.sum(steps, axis=0)
    np.testing.assert_allclose(total, 256 * 64 * 0.01 * corr, atol=10.0)  # 32 moves: rounding std ~3 LSB
    assert writer.saturated == 0

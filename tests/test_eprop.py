"""e-prop on a recurrent spiking network: it learns in float and in the chip's fixed point, and its
learning-signal alignment is 0 for symmetric feedback and positive for random feedback."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from neurodeploy.errors import NeurodeployError
from neurodeploy.learning.eprop import initial_score, learn_eprop

QUICK = {"epochs": 2, "hidden": 32, "train_samples": 1500, "batch": 32}


@pytest.mark.parametrize("profile", ["ideal", "loihi2"])
def test_eprop_improves_on_yinyang(profile: str) -> None:
    before = initial_score(profile=profile, task="yinyang", seeds=2, hidden=QUICK["hidden"])
    res = learn_eprop(profile=profile, task="yinyang", seeds=2, **QUICK)
    after = np.asarray(res.history[-1]["test_accuracy"])
    assert after.shape == (2,)
    assert np.all(after > before + 0.1), (before, after)
    assert res.final["test_accuracy"]["per_seed"] == after.tolist()
    assert res.engine["mode"] == ("fixed" if profile == "loihi2" else "float")
    if profile == "loihi2":
        rule = res.engine["hidden_rules"][0]["rule"]
        assert "*t*y3" in rule and "*t*y2" in rule


def test_eprop_feedback_signal_angles() -> None:
    sym = learn_eprop(profile="ideal", seeds=2, feedback="symmetric", **{**QUICK, "epochs": 1})
    rnd = learn_eprop(profile="ideal", seeds=2, feedback="random", **{**QUICK, "epochs": 1})
    entry_s, entry_r = sym.history[-1], rnd.history[-1]
    assert np.allclose(entry_s["signal_angle"]["h1"], 0.0, atol=1e-3)
    assert entry_s["weight_angle"] == {}
    assert np.all(np.asarray(entry_r["signal_angle"]["h1"]) > 10.0)
    assert np.all(np.asarray(entry_r["weight_angle"]["B_out"]) > 10.0)
    assert set(entry_r) >= {"epoch", "lr", "test_accuracy", "signal_angle", "weight_angle", "norm_ratio"}


def test_eprop_teacher_regression_improves() -> None:
    before = initial_score(profile="ideal", task="teacher", seeds=2, hidden=QUICK["hidden"])
    res = learn_eprop(profile="ideal", task="teacher", seeds=2, **QUICK)
    assert np.all(np.asarray(res.history[-1]["test_mse"]) < before)


def test_eprop_rejects_bad_options() -> None:
    with pytest.raises(NeurodeployError):
        learn_eprop(profile="ideal", feedback="mirror", epochs=0)
    with pytest.raises(NeurodeployError):
        learn_eprop(profile="ideal", bogus=1)
    with pytest.raises(NeurodeployError, match="no on-chip long-term learning"):
        learn_eprop(profile="xylo-audio2", epochs=0)


@pytest.mark.lava
@pytest.mark.skipif(importlib.util.find_spec("lava") is None, reason="lava-nc is not installed (make venv)")
def test_eprop_network_runs_identically_on_lava() -> None:
    """e-prop's recurrent network (``EpropNet.core``, 9-bit weights, mismatch) on Lava's LIF and Dense gives
    the emulator's hidden spikes and readout membranes."""
    from dataclasses import replace

    from neurodeploy.datasets import encode_rate
    from neurodeploy.emulator.backends.lava import run_lava
    from neurodeploy.emulator.simulate import simulate
    from neurodeploy.learning.eprop import EpropConfig, EpropNet
    from neurodeploy.learning.tasks import get_task

    task = get_task("yinyang")
    cfg = EpropConfig(seeds=1, hidden=16, mismatch=0.1)
    net = EpropNet(cfg, task, True, np.random.default_rng(4))
    net.set_mismatch(0.1, np.random.default_rng(5))
    net.w_h = net.w_h | 1  # odd weights use the ninth bit
    net.w_h[:, np.arange(16), task.n_in + 1 + np.arange(16)] = 0
    core = net.core()
    x = encode_rate(task.x_test[:8], cfg.steps, cfg.active, bias_spike=False)
    on = np.zeros((cfg.steps, 8, 1), dtype=bool)
    on[: cfg.active] = True
    drive = {"input": x, "bias": on, "always": np.ones((cfg.steps, 8, 1), dtype=bool)}
    emu = simulate(core, drive, steps=cfg.steps, record=("spikes", "v"), populations=["hidden", "readout"])
    lava_core = replace(core, populations=[replace(p, spiking=True) if not p.spiking else p for p in core.populations])
    lava = run_lava(lava_core, drive, steps=cfg.steps, record=("spikes", "v"), populations=["hidden", "readout"])
    assert emu.spikes["hidden"].any()
    np.testing.assert_array_equal(lava.spikes["hidden"], emu.spikes["hidden"])
    np.testing.assert_array_equal(lava.v["hidden"], emu.v["hidden"])
    np.testing.assert_array_equal(lava.v["readout"], emu.v["readout"])

"""e-prop on a recurrent spiking network: it learns in float and in the chip's fixed point, and its
learning-signal alignment is 0 for symmetric feedback and positive for random feedback."""

from __future__ import annotations

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

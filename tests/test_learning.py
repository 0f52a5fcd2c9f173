"""On-chip learning: tasks, metrics, rules in float and fixed point, refusals, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from neurodeploy.api_learn import learn
from neurodeploy.errors import NeurodeployError
from neurodeploy.learning import metrics
from neurodeploy.learning.tasks import get_task

SMALL = {"epochs": 2, "hidden": (16,)}


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


def test_refuses_profiles_without_learning() -> None:
    with pytest.raises(NeurodeployError, match=r"no on-chip long-term learning") as err:
        learn("fa", "dynapse2", seeds=1, **SMALL)
    assert "[plasticity].engine" in str(err.value)
    with pytest.raises(NeurodeployError, match="not model"):
        learn("kp", "brainscales2", seeds=1, **SMALL)
    with pytest.raises(NeurodeployError, match="power of two"):
        learn("fa", "loihi2", seeds=1, steps=80, active=70, **SMALL)
    with pytest.raises(NeurodeployError, match="longest learning epoch"):
        learn("eprop", "loihi2", seeds=1, epochs=1, steps=80, active=70)

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
    best = r.final["best_epoch"]  # picked by validation accuracy, never by the test set
    assert best["chosen_by"] == "mean val_accuracy" and 1 <= best["epoch"] <= len(r.history)
    assert np.mean(r.history[best["epoch"] - 1]["val_accuracy"]) == max(np.mean(h["val_accuracy"]) for h in r.history)
    assert r.final["epoch"] == len(r.history)


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


def test_an_interrupted_learn_keeps_the_epochs_it_finished(tmp_path) -> None:
    import signal
    import time

    out = tmp_path / "run.json"
    cmd = [sys.executable, "-m", "neurodeploy.cli", "learn", "--rule", "fa", "--profile", "ideal", "--seeds", "1"]
    cmd += ["--epochs", "200", "--hidden", "8", "-o", str(out)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not out.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err
    data = json.loads(out.read_text())
    assert data["partial"] is True and data["epochs"] == 200 and data["epochs_done"] == len(data["history"]) >= 1
    assert {"test_accuracy", "signal_angle"} <= set(data["history"][0])


def test_version() -> None:
    done = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "--version"], capture_output=True, text=True)
    from neurodeploy import __version__

    assert done.returncode == 0 and done.stdout.strip() == f"neurodeploy {__version__}"

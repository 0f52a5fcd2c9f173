"""GLE's float reference against closed forms: the leaky neuron's lag, the prospective cancellation, the
error neuron's swapped constants, one hand-computed weight update; then options and short runs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurodeploy.errors import NeurodeployError
from neurodeploy.rules.systems import learn_system
from neurodeploy.rules.systems.gle import GLENet, Options, _angle

OMEGAS = np.array([0.3, 0.7, 1.0, 2.0, 3.0])


def _one_unit(tau_m: float, tau_r: float, dt: float) -> GLENet:
    """One linear unit (the output layer of a [1, 1] net) with weight 1, for a batch of drives."""
    net = GLENet([1, 1], [np.array([tau_m])], [np.array([tau_r])], [np.random.default_rng(0)], dt=dt)
    net.weights[0][:] = 1.0
    return net


def _fit(t: np.ndarray, y: np.ndarray, omegas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude and phase of y[:, k] ≈ A sin(ω_k t + φ) + c, by least squares per column."""
    amp, phase = [], []
    for k, w in enumerate(omegas):
        basis = np.stack([np.sin(w * t), np.cos(w * t), np.ones_like(t)], 1)
        a, b, _ = np.linalg.lstsq(basis, y[:, k], rcond=None)[0]
        amp.append(np.hypot(a, b))
        phase.append(np.arctan2(b, a))
    return np.array(amp), np.array(phase)


def _drive(tau_m: float, tau_r: float, *, error: bool, dt: float = 2e-3, settle: float = 8.0, span: float = 7.0):
    """Drive the representation (error=False) or the error neuron (error=True) with sin(ω t), one ω per
    batch element; return time, the response (ŭ for the representation, ĕ for the error)."""
    net = _one_unit(tau_m, tau_r, dt)
    net.reset(len(OMEGAS))
    steps = int(round((settle * max(tau_m, tau_r, 1.0) + span) / dt))
    t = np.arange(steps) * dt
    out = np.empty((steps, len(OMEGAS)))
    for i, ti in enumerate(t):
        drive = np.sin(OMEGAS * ti)[None, :, None]
        if error:
            net.forward(np.zeros((1, len(OMEGAS), 1)))
            net.backward(drive)
            out[i] = net.err[0][0, :, 0]
        else:
            out[i] = net.forward(drive)[0, :, 0]
    keep = t >= t[-1] - span
    return t[keep], out[keep]


def test_leaky_neuron_lags_by_arctan() -> None:
    """τ_r = 0: a leaky neuron driven by sin(ω t) answers with amplitude 1/√(1+ω²τ²), lagging arctan(ωτ)."""
    tau = 1.3
    t, y = _drive(tau, 0.0, error=False)
    amp, phase = _fit(t, y, OMEGAS)
    np.testing.assert_allclose(amp, 1 / np.sqrt(1 + (OMEGAS * tau) ** 2), rtol=5e-3)
    np.testing.assert_allclose(phase, -np.arctan(OMEGAS * tau), atol=1e-2)
    assert (phase < -0.3).all()  # the lag is real, so cancelling it below is a real check


def test_prospective_voltage_cancels_the_lag() -> None:
    """LE (τ_r = τ_m): ŭ = u + τ_r u̇ follows the drive with no lag and no loss of amplitude."""
    t, y = _drive(1.3, 1.3, error=False)
    amp, phase = _fit(t, y, OMEGAS)
    np.testing.assert_allclose(amp, 1.0, rtol=1e-3)
    np.testing.assert_allclose(phase, 0.0, atol=1e-3)


@settings(max_examples=4, deadline=None)
@given(tau_m=st.floats(0.3, 2.0), ratio=st.floats(0.1, 0.9))
def test_representation_and_error_neuron_are_inverse_filters(tau_m: float, ratio: float) -> None:
    """Forward: ŭ = (1 + iωτ_r)/(1 + iωτ_m) · drive. The error neuron swaps the constants, so it applies
    (1 + iωτ_m)/(1 + iωτ_r): the same gain inverted and the phase lag turned into an equal advance."""
    tau_r = ratio * tau_m
    forward = (1 + 1j * OMEGAS * tau_r) / (1 + 1j * OMEGAS * tau_m)
    t, y = _drive(tau_m, tau_r, error=False, settle=6.0, span=7.0)
    amp, phase = _fit(t, y, OMEGAS)
    np.testing.assert_allclose(amp, np.abs(forward), rtol=1e-2)
    np.testing.assert_allclose(phase, np.angle(forward), atol=2e-2)
    t, e = _drive(tau_m, tau_r, error=True, settle=6.0, span=7.0)
    amp_e, phase_e = _fit(t, e, OMEGAS)
    np.testing.assert_allclose(amp_e, 1 / np.abs(forward), rtol=1e-2)
    np.testing.assert_allclose(phase_e, -np.angle(forward), atol=2e-2)


def test_error_neuron_of_a_leaky_unit_looks_ahead_by_tau_m() -> None:
    """τ_r = 0 (an LI unit): its error neuron gives ĕ = e + τ_m ė, amplitude √(1+ω²τ²), advance arctan(ωτ)."""
    tau = 0.8
    t, e = _drive(tau, 0.0, error=True, dt=1e-3)
    amp, phase = _fit(t, e, OMEGAS)
    np.testing.assert_allclose(amp, np.sqrt(1 + (OMEGAS * tau) ** 2), rtol=1e-2)
    np.testing.assert_allclose(phase, np.arctan(OMEGAS * tau), atol=1e-2)


def test_two_steps_and_one_weight_update_by_hand() -> None:
    """A [2, 3, 2] net, tanh hidden, two Euler steps from rest; the second step's update is η dt ĕ rᵀ with
    ĕ computed by hand from the neuron equations."""
    rng = np.random.default_rng(3)
    tm = [np.array([1.0, 0.5, 2.0]), np.array([1.0, 0.7])]
    tr = [np.array([0.2, 0.5, 0.0]), np.array([1.0, 0.1])]
    dt, lr = 0.1, 0.3
    net = GLENet([2, 3, 2], tm, tr, [np.random.default_rng(0)], dt=dt)
    w1, w2 = rng.normal(size=(3, 2)), rng.normal(size=(2, 3))
    b1, b2 = rng.normal(size=3), rng.normal(size=2)
    net.weights = [w1[None].copy(), w2[None].copy()]
    net.biases = [b1[None].copy(), b2[None].copy()]
    xs = [np.array([0.4, -0.6]), np.array([0.5, 0.2])]
    target = np.array([0.3, -0.2])
    # by hand
    u1, u2, v1, v2 = np.zeros(3), np.zeros(2), np.zeros(3), np.zeros(2)
    for x in xs:
        du1 = (w1 @ x + b1 - u1) / tm[0]
        r1 = np.tanh(u1 + tr[0] * du1)
        u1 = u1 + dt * du1
        du2 = (w2 @ r1 + b2 - u2) / tm[1]
        r2 = u2 + tr[1] * du2
        u2 = u2 + dt * du2
        e2 = target - r2
        dv2 = (e2 - v2) / np.maximum(tr[1], dt)
        eb2 = v2 + tm[1] * dv2
        v2 = v2 + dt * dv2
        e1 = (1 - r1**2) * (w2.T @ eb2)
        dv1 = (e1 - v1) / np.maximum(tr[0], dt)
        eb1 = v1 + tm[0] * dv1
        v1 = v1 + dt * dv1
    # the network
    net.reset(1)
    for i, x in enumerate(xs):
        out = net.forward(x[None, None])
        net.backward(target[None, None] - out)
        if i == 0:
            before = [w.copy() for w in net.weights]
            net.update(0.0)  # lr 0 leaves the weights alone
            np.testing.assert_array_equal(net.weights[0], before[0])
    np.testing.assert_allclose(net.err[1][0, 0], eb2, rtol=1e-12)
    np.testing.assert_allclose(net.err[0][0, 0], eb1, rtol=1e-12)
    net.update(lr)
    np.testing.assert_allclose(net.weights[0][0], w1 + lr * dt * np.outer(eb1, xs[1]), rtol=1e-12)
    np.testing.assert_allclose(net.weights[1][0], w2 + lr * dt * np.outer(eb2, r1), rtol=1e-12)
    np.testing.assert_allclose(net.biases[1][0], b2 + lr * dt * eb2, rtol=1e-12)


def test_pal_feedback_turns_towards_w_transpose() -> None:
    """PAL with fixed forward weights: ∠(B, Wᵀ) falls from about 90° towards 0°."""
    sizes, dt = [3, 6, 4], 0.1
    taus = [np.ones(6), np.ones(4)]
    pal = {"sigma": 0.1, "lr": 100.0, "tau_xi": 1.0, "tau_hp": 1.0, "alpha": 0.005}
    net = GLENet(sizes, taus, taus, [np.random.default_rng(s) for s in (0, 1)], dt=dt, feedback="pal", pal=pal)
    start = np.array(net.weight_angles()["B2"])
    net.reset(32)
    x_rng = np.random.default_rng(5)
    for _ in range(1500):
        net.forward(x_rng.normal(0, 0.3, (2, 32, 3)), noise=True)
        net.pal_step()
    end = np.array(net.weight_angles()["B2"])
    assert (start > 60).all()
    assert (end < 25).all(), end


def test_options_are_checked() -> None:
    with pytest.raises(NeurodeployError, match="feedback"):
        Options(feedback="kp").checked()
    with pytest.raises(NeurodeployError, match="error_dynamics"):
        Options(error_dynamics="late").checked()
    with pytest.raises(NeurodeployError, match="lr"):
        Options(lr=-1.0).checked()
    with pytest.raises(NeurodeployError, match="tau_li_max"):
        Options(tau_li_min=4.0, tau_li_max=2.0).checked()
    with pytest.raises(NeurodeployError, match="does not apply"):
        learn_system("gle", "lagged-teacher", seeds=1, epochs=1, momentum=0.9)
    with pytest.raises(NeurodeployError, match="adam"):  # MNIST-1D defaults to Adam, which is no engine rule
        learn_system("gle", "mnist1d", variant="chip", seeds=1, epochs=1)
    assert learn_system("gle", variant="chip", seeds=1, epochs=1, window=40.0).config["task"] == "lagged-teacher"
    with pytest.raises(NeurodeployError, match="dt"):
        learn_system("gle", "lagged-teacher", seeds=1, epochs=1, dt=2.0)
    with pytest.raises(NeurodeployError, match="divide"):
        learn_system("gle", "digits", seeds=1, epochs=1, dt=0.3)


def test_divergence_names_the_learning_rate() -> None:
    with pytest.raises(NeurodeployError, match="lr"):
        learn_system("gle", "lagged-teacher", seeds=1, epochs=1, window=10.0, lr=50.0)


def test_lagged_teacher_is_learned_online_and_seeds_are_independent() -> None:
    res = learn_system("gle", "lagged-teacher", seeds=2, epochs=4, window=25.0)
    first, last = np.array(res.history[0]["test_mse"]), np.array(res.history[-1]["test_mse"])
    assert (last < first / 4).all(), (first, last)
    alone = learn_system("gle", "lagged-teacher", seeds=1, epochs=1, window=25.0)
    np.testing.assert_allclose(alone.history[-1]["test_mse"][0], res.history[1]["test_mse"][0], rtol=1e-12)
    assert res.provenance["all"]["where"].startswith("host float64")


def test_pal_feedback_records_weight_angles() -> None:
    res = learn_system("gle", "digits", seeds=2, epochs=1, feedback="pal", hidden=(12, 12))
    angles = res.history[-1]["weight_angle"]
    assert set(angles) == {"B2", "B3"} and all(len(v) == 2 for v in angles.values())
    assert len(res.history[-1]["test_accuracy"]) == 2


def test_default_task_is_mnist1d(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default task and architecture, on a tenth of MNIST-1D's training set to stay quick: the earlier,
    shorter protocol learns above chance in one epoch; the default one runs 360 steps per sample."""
    from neurodeploy.learning import tasks
    from neurodeploy.rules.systems import gle_tasks

    full = tasks.get_task("mnist1d")
    short = dataclasses.replace(
        full,
        x_train=full.x_train[:640],
        y_train=full.y_train[:640],
        x_val=full.x_val[:200],
        y_val=full.y_val[:200],
        x_test=full.x_test[:300],
        y_test=full.y_test[:300],
    )
    monkeypatch.setattr(tasks, "get_task", lambda name: short if name == "mnist1d" else full)
    res = learn_system("gle", seeds=1, epochs=1, **gle_tasks.EARLIER_MNIST1D_PROTOCOL)
    assert res.config["task"] == "mnist1d"
    assert res.config["sizes"] == [1] + [53] * 6 + [10]
    assert res.history[-1]["test_accuracy"][0] > 0.15  # chance is 0.1

    def stretched(length: int) -> tasks.Task:  # the 40 values interpolated, a stand-in for the generator's
        grid = np.linspace(0, 1, length)
        x = [
            np.stack([np.interp(grid, np.linspace(0, 1, 40), v) for v in xs[:40]])
            for xs in (short.x_train, short.x_val, short.x_test)
        ]
        return dataclasses.replace(
            short,
            x_train=x[0],
            y_train=short.y_train[:40],
            x_val=x[1],
            y_val=short.y_val[:40],
            x_test=x[2],
            y_test=short.y_test[:40],
        )

    monkeypatch.setattr(gle_tasks, "mnist1d_sequences", stretched)
    res = learn_system("gle", seeds=2, epochs=2, batch_size=20)
    cfg = res.config
    assert (cfg["dt"], cfg["sequence_length"], cfg["sequence_time"], cfg["steps_per_value"]) == (0.2, 360, 72.0, 1)
    assert cfg["readout_samples"] == 360 and cfg["tau_le"] == 1.2 and cfg["tau_r_li"] == 0.2
    assert cfg["lr"] == 1e-3 and cfg["batch_size"] == 20 and cfg["lr_schedule"] == "plateau"
    assert all(len(h["val_loss"]) == 2 and h["lr"] == [1e-3, 1e-3] for h in res.history)
    assert np.isfinite(res.history[-1]["val_loss"]).all()


def _update_and_gradient(tau_m: list[np.ndarray], tau_r: list[np.ndarray], xs: np.ndarray, ys: np.ndarray,
                         dt: float) -> tuple[list[np.ndarray], list[np.ndarray]]:  # fmt: skip
    """GLE's accumulated update Σ_t ĕ rᵀ (learning off) and the exact −∂L/∂W by central differences, for
    L = Σ_t ½‖y_t − r_L(t)‖² over the Euler steps of one sequence xs (T, n_in), targets ys (T, n_out)."""
    sizes = [xs.shape[1]] + [len(t) for t in tau_m]

    def make() -> GLENet:
        return GLENet(sizes, tau_m, tau_r, [np.random.default_rng(7)], dt=dt, gain=1.5)

    def loss(weights: list[np.ndarray]) -> float:
        net = make()
        net.weights = [w.copy() for w in weights]
        net.reset(1)
        return sum(0.5 * float(((y - net.forward(x[None, None])) ** 2).sum()) for x, y in zip(xs, ys, strict=True))

    net = make()
    start = [w.copy() for w in net.weights]
    net.reset(1)
    update = [np.zeros_like(w) for w in net.weights]
    for x, y in zip(xs, ys, strict=True):
        out = net.forward(x[None, None])
        net.backward(y[None, None] - out)
        for ell in range(net.n_layers):
            update[ell] += net.err[ell].transpose(0, 2, 1) @ net.rates[ell]
    gradient = []
    for ell, w in enumerate(start):
        g = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            plus, minus = [v.copy() for v in start], [v.copy() for v in start]
            plus[ell][idx] += 1e-6
            minus[ell][idx] -= 1e-6
            g[idx] = -(loss(plus) - loss(minus)) / 2e-6
        gradient.append(g)
    return update, gradient


def test_le_network_update_is_the_exact_gradient() -> None:
    """With only LE units (τ_r = τ_m) GLE is exact: its online update Σ ĕ rᵀ equals −∂L/∂W of the whole
    sequence's loss (finite differences), layer by layer; this pins the error path (Wᵀ, φ′, the output error)."""
    t = np.arange(12) * 0.5
    xs = np.stack([np.sin(0.7 * t), np.cos(1.3 * t)], 1)
    ys = np.stack([0.5 * np.sin(0.4 * t + 1.0)], 1)
    taus = [np.array([1.0, 0.5, 2.0]), np.array([0.7, 1.5]), np.array([1.0])]
    update, gradient = _update_and_gradient(taus, taus, xs, ys, dt=0.5)
    for u, g in zip(update, gradient, strict=True):
        np.testing.assert_allclose(u[0], g[0], rtol=1e-5, atol=1e-8)


def test_leaky_layer_update_follows_the_gradient_only_for_slow_signals() -> None:
    """A lag layer of LI units (τ_r = 0, τ_m = 1..3) under an LE output: GLE's update agrees with the exact
    gradient in direction when the input is slow against τ_m (ωτ_m ≪ 1), and loses it when the input is fast,
    because the advance 1 + iωτ_m amplifies fast components that the exact adjoint, a backward low-pass, damps."""
    tau_m = [np.array([1.0, 1.7, 3.0]), np.array([1.0])]
    tau_r = [np.zeros(3), np.array([1.0])]
    dt = 0.1
    t = np.arange(400) * dt
    angles = {}
    for omega in (0.05, 2.0):
        xs = np.stack([np.sin(omega * t), np.cos(0.6 * omega * t)], 1)
        ys = 0.3 * np.stack([np.sin(omega * t + 0.5)], 1)
        update, gradient = _update_and_gradient(tau_m, tau_r, xs, ys, dt)
        angles[omega] = float(_angle(update[0], gradient[0])[0])
    assert angles[0.05] < 5, angles
    assert angles[2.0] > 10, angles


# ---------------------------------------------------------------- the MNIST-1D protocol of the float reference


def _mnist1d_options(**kw: object) -> Options:
    from neurodeploy.rules.systems import gle_tasks

    opts = Options(**kw).checked()
    gle_tasks.resolved_settings(opts, "mnist1d", None)
    return opts


def test_mnist1d_time_constants_follow_the_released_configuration() -> None:
    """LE units τ_m = τ_r = τ = 1.2; LI units τ_r = dt (0 clamped up to dt), τ_m = τ/2 for the first half
    and τ for the rest; every constant clamped to [dt, 100]; the earlier protocol keeps τ_r = 0 and log-spaced
    τ_m; bad protocol options are refused."""
    from neurodeploy.rules.systems import gle_tasks

    opts = _mnist1d_options()
    tau_m, tau_r = gle_tasks.lag_layer_taus(opts)
    np.testing.assert_array_equal(tau_m, [1.2] * 17 + [0.6] * 18 + [1.2] * 18)
    np.testing.assert_array_equal(tau_r, [1.2] * 17 + [0.2] * 36)
    net = gle_tasks.task_network(opts, 1, 10, 1)
    np.testing.assert_array_equal(net.tau_m[-1], [1.2] * 10)
    np.testing.assert_array_equal(net.tau_r[-1], [1.2] * 10)
    np.testing.assert_array_equal(net.tau_r_err[0][17:], [0.2] * 36)
    low_m, low_r = gle_tasks.lag_layer_taus(_mnist1d_options(tau_le=0.3, tau_r_li=0.0))
    np.testing.assert_array_equal(low_m[17:], [0.2] * 18 + [0.3] * 18)  # τ/2 = 0.15 clamped up to dt
    np.testing.assert_array_equal(low_r[17:], [0.2] * 36)
    high_m, high_r = gle_tasks.lag_layer_taus(_mnist1d_options(tau_le=300.0))
    assert high_m.max() == 100.0 and high_m[17:35].tolist() == [100.0] * 18 and high_r[:17].tolist() == [100.0] * 17
    early = _mnist1d_options(**gle_tasks.EARLIER_MNIST1D_PROTOCOL)
    early_m, early_r = gle_tasks.lag_layer_taus(early)
    np.testing.assert_allclose(early_m[17:], np.geomspace(1.0, 16.0, 36))
    np.testing.assert_array_equal(early_r, [1.0] * 17 + [0.0] * 36)
    assert early.readout_samples == 10 and early.sequence_length == 40
    for bad in ({"tau_li_mode": "linear"}, {"lr_schedule": "cosine"}, {"tau_r_li": -0.1}, {"lr_factor": 1.5},
                {"sequence_length": 1}, {"sequence_time": 0.0}):  # fmt: skip
        with pytest.raises(NeurodeployError, match=next(iter(bad))):
            Options(**bad).checked()
    with pytest.raises(NeurodeployError, match="divide"):  # 72 time units over 360 values: 0.2 per value
        learn_system("gle", "mnist1d", seeds=1, epochs=1, dt=0.15)


def test_mnist1d_target_on_and_output_summed_at_every_step() -> None:
    """With the target on at every value, ``_present`` learns at each Euler step exactly as forward, backward
    and update by hand, returns r_L summed over all steps, and (scoring) the cross-entropy averaged over them;
    a readout of the last values sums and learns only there."""
    from neurodeploy.rules.systems import gle_tasks

    opts = _mnist1d_options(layers=2, le_units=2, li_units=2)
    xs = np.random.default_rng(3).normal(size=(1, 3, 6, 1))
    target = np.eye(4)[[0, 2, 3]][None]
    lr = np.array([1e-2])

    def softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    for readout in (6, 2):
        net, twin = gle_tasks.task_network(opts, 1, 4, 1), gle_tasks.task_network(opts, 1, 4, 1)
        net.reset(3)
        total, _ = gle_tasks._present(net, xs, target, kind="classification", steps=1, readout=readout, lr=lr,
                                      learn=True, noise=False)  # fmt: skip
        twin.reset(3)
        by_hand = np.zeros((1, 3, 4))
        for t in range(6):
            out = twin.forward(xs[:, :, t])
            if t >= 6 - readout:
                by_hand += out
                twin.backward(target - softmax(out))
                twin.update(lr)
        np.testing.assert_array_equal(total, by_hand)
        for w, w_twin in zip(net.weights, twin.weights, strict=True):
            np.testing.assert_array_equal(w, w_twin)
    start = gle_tasks.task_network(opts, 1, 4, 1)
    assert not np.array_equal(start.weights[0], net.weights[0])  # it learned
    start.reset(3)
    total, loss = gle_tasks._present(start, xs, target, kind="classification", steps=1, readout=6, lr=lr,
                                     learn=False, noise=False)  # fmt: skip
    probe = gle_tasks.task_network(opts, 1, 4, 1)
    probe.reset(3)
    outs = np.stack([probe.forward(xs[:, :, t]) for t in range(6)])
    np.testing.assert_allclose(total, outs.sum(0), rtol=1e-12)
    np.testing.assert_allclose(loss, -(target * np.log(softmax(outs))).sum(-1).mean(0), rtol=1e-12)


def test_plateau_schedule_matches_torch() -> None:
    """The per-seed ReduceLROnPlateau (patience 2, factor 0.5, floor) against torch's, on a noisy loss curve."""
    torch = pytest.importorskip("torch")
    from neurodeploy.rules.systems import gle_tasks

    losses = 1.0 / np.arange(1, 31)[:, None] + np.random.default_rng(0).uniform(0, 0.2, (30, 2))
    losses[10:15] = losses[9]  # a flat stretch: ties are no improvement
    together = gle_tasks.Plateau(1e-3, 2, patience=2, factor=0.5, floor=1e-4)  # both seeds side by side
    alone = []
    for seed in range(2):
        opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-3)
        theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=2, factor=0.5, min_lr=1e-4)
        mine = gle_tasks.Plateau(1e-3, 1, patience=2, factor=0.5, floor=1e-4)
        rates = []
        for loss in losses[:, seed]:
            mine.step(np.array([loss]))
            theirs.step(float(loss))
            rates.append((mine.lr[0], opt.param_groups[0]["lr"]))
        np.testing.assert_allclose(*np.array(rates).T, rtol=1e-12)
        assert rates[-1][0] < 1e-3
        alone.append(mine.lr[0])
    for loss in losses:
        together.step(loss)
    assert together.lr.tolist() == alone and alone[0] != alone[1]

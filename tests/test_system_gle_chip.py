"""GLE's chip version (loihi2, integer arithmetic): the neurons and engine rules by hand, the float twin, the
compiled network in the stepped loop, refusals and short runs."""

from __future__ import annotations

import numpy as np
import pytest
from test_system_gle import OMEGAS, _fit, _one_unit

from neurodeploy.errors import NeurodeployError
from neurodeploy.rules.systems import learn_system
from neurodeploy.rules.systems.gle import GLENet, Options


def _chip_unit(tau_m: float, tau_r: float, dt: float) -> tuple[GLENet, object]:
    """One linear unit with weight 1, float and on the chip (no learning)."""
    from neurodeploy import profiles
    from neurodeploy.rules.systems.gle_chip import ChipGLE, ChipOptions

    ref = _one_unit(tau_m, tau_r, dt)
    chip = ChipGLE(ref, ChipOptions(learning=False).checked(), 0.0, 1, 6, profiles.get("loihi2"))
    assert chip.W[0].weights[0, 0, 0] * 2.0 ** -chip.W[0].shift == 1.0 and chip.W[0].weights[0, 0, 1] == 0
    return ref, chip


def test_chip_neuron_updates_by_hand() -> None:
    """The integer representation and error neuron steps, and their 12-bit time-constant factors."""
    from neurodeploy.rules.systems import gle_chip_parts as cp

    f = cp.factors(np.array([2.0, 1.0]), np.array([0.0, 1.0]), 0.05)
    assert f["k_m"].tolist() == [102, 205] and f["k_r"].tolist() == [0, 4096]
    assert f["k_v"].tolist() == [4096, 205] and f["k_q"].tolist() == [163840, 4096]
    u, u_breve = cp.representation_step(np.array([1000, 1000]), np.array([5000, 5000]), f["k_m"], f["k_r"])
    # d = 4000: ŭ = u + (k_r·d + 2048) >> 12; u += (k_m·d + 2048) >> 12 = 410048 >> 12 = 100, 822048 >> 12 = 200
    assert u_breve.tolist() == [1000, 5000] and u.tolist() == [1100, 1200]
    v, e_breve = cp.error_step(np.array([40, 40]), np.array([140, 140]), f["k_v"], f["k_q"])
    # d = 100: ĕ = v + (163840·100 + 2048) >> 12 = 40 + 4000; the LE unit's error neuron: ĕ = e, v += 5
    assert e_breve.tolist() == [4040, 140] and v.tolist() == [140, 45]
    one = 1 << cp.POT_BITS
    u = np.arange(-5 * one, 5 * one, 37 * 16)
    assert np.abs(cp.tanh_lookup(u) / one - np.tanh(np.clip(u / one, -4, 4))).max() < 3e-5  # 1/128 steps
    r = np.array([0, one // 2, -one])
    assert cp.tanh_slope(r).tolist() == [one, 3 * one // 4, 0]


def test_chip_neurons_lag_and_advance_as_the_float_ones() -> None:
    """Driven by sin(ω t): the chip's LI unit lags by arctan(ωτ), its LE unit does not lag, and the LI unit's
    error neuron advances by arctan(ωτ), each within 0.01 rad of the float network at the same dt (and
    within 0.03 rad of the closed form); the amplitudes within 1 %."""
    tau, dt, span = 1.0, 1 / 64, 7.0
    steps = int(round((8 * tau + span) / dt))
    t = np.arange(steps) * dt
    keep = t >= t[-1] - span
    for tau_r, error, closed in ((0.0, False, -np.arctan(OMEGAS * tau)), (tau, False, 0 * OMEGAS),
                                 (0.0, True, np.arctan(OMEGAS * tau))):  # fmt: skip
        ref, chip = _chip_unit(tau, tau_r, dt)
        ref.reset(len(OMEGAS))
        chip.reset(len(OMEGAS))
        ys = np.empty((2, steps, len(OMEGAS)))
        for i, ti in enumerate(t):
            drive = np.sin(OMEGAS * ti)[None, :, None]
            if error:
                ref.forward(0 * drive)
                ref.backward(drive)
                chip.forward(np.zeros((1, len(OMEGAS), 1), np.int64))
                chip.backward(np.rint(drive * 2**16).astype(np.int64))
                ys[0, i], ys[1, i] = ref.err[0][0, :, 0], chip.err[0][0, :, 0] / 2.0**16
            else:
                ys[0, i] = ref.forward(drive)[0, :, 0]
                ys[1, i] = chip.forward(np.rint(drive * 2**16).astype(np.int64))[0, :, 0] / 2**16
        (amp_f, ph_f), (amp_c, ph_c) = (_fit(t[keep], y[keep], OMEGAS) for y in ys)
        np.testing.assert_allclose(ph_c, ph_f, atol=0.01)
        np.testing.assert_allclose(amp_c, amp_f, rtol=0.01)
        np.testing.assert_allclose(ph_c, closed, atol=0.03)
        if error:
            assert ph_c.min() > 0.25  # a real advance, as large as the forward lag


def test_chip_network_signals_follow_a_float_twin() -> None:
    """The lagged teacher's 2-8-8-2 network, no learning, 400 steps of sinusoids with a target: a float network
    with the chip's (dequantised) weights and its realised time constants gives the chip's rates within 2e-4
    and its ĕ within 0.1 % (output), 1.5 % (hidden 2) and 10 % (hidden 1) of each layer's largest |ĕ|. The
    hidden units lag (τ_r = 0), so their error neurons look ahead by τ_m/dt (up to 80) times a step's change,
    and the lowest layer sees that twice: it carries the quantisation, magnified."""
    from neurodeploy import profiles
    from neurodeploy.rules.systems import gle_chip_parts as cp
    from neurodeploy.rules.systems import gle_tasks
    from neurodeploy.rules.systems.gle_chip import ChipGLE, ChipOptions

    sizes, taus = gle_tasks.teacher_architecture(Options().checked())
    rngs = [np.random.default_rng(s) for s in (0, 1)]
    ref = GLENet(sizes, [t[0] for t in taus], [t[1] for t in taus], rngs, dt=0.05, gain=2.0)
    chip = ChipGLE(ref, ChipOptions(learning=False).checked(), 0.0, 1, 4, profiles.get("loihi2"))
    tau_m = [0.05 * 4096 / f["k_m"] for f in chip.f]
    twin = GLENet(sizes, tau_m, [f["k_r"] / 4096 * t for f, t in zip(chip.f, tau_m, strict=True)], rngs, dt=0.05)
    twin.weights = [w.as_float()[..., :-1] for w in chip.W]
    twin.biases = [w.as_float()[..., -1] for w in chip.W]
    twin.reset(1)
    one = 2.0**16
    for t in np.arange(400) * 0.05:
        x = np.stack([np.sin(0.7 * t + np.array([0, 1.0])), np.sin(1.3 * t + np.array([0.5, 2.0]))])[:, None, :]
        y = np.repeat(0.5 * np.cos(0.9 * t + np.array([0.0, 1.0]))[None, None, :], 2, 0)
        twin.backward(y - twin.forward(x))
        chip.forward(np.rint(x * one).astype(np.int64))
        chip.backward(np.rint(y * one).astype(np.int64))
    for k, tol in enumerate((0.10, 0.015, 0.001)):
        np.testing.assert_allclose(chip.rates[k + 1] / one, twin.rates[k + 1], atol=2e-4)
        scale = np.abs(twin.err[k]).max()
        assert np.abs(chip.err[k] / 2.0**cp.ERR_BITS - twin.err[k]).max() < tol * scale, k


def test_chip_engine_update_by_hand() -> None:
    """The W rule puts y′·p·2^e into the tag t (1/128 of a register unit, accumulator in 2^-7 units) and
    carries ±1 into w once |t| reaches 128; the transposed B rule, its operands' roles swapped, gives the same
    integers transposed; the mean change of w + t/128 is η dt ĕ r."""
    from neurodeploy.rules.systems import gle_chip_parts as cp

    lr_dt, shift = 0.01 * 0.05, 5
    proj = cp.plastic("W", np.zeros((1, 2, 3), np.int64), shift, lr_dt, 8.0, cp.ERR_BITS, 6)
    assert proj.exponent == -4 and proj.rule.dw == "2^-1*x0*sgn(t-127) + 2^-1*x0*sgn(t+128)"
    y, p = np.array([[[3, -2]]]), np.array([[[10, -5, 63]]])
    change = cp.engine_change(proj.rule, proj.weights, proj.tag, 64 + p, cp.signed_y(y))
    np.testing.assert_array_equal(change["dt"][0], 8 * np.outer([3, -2], [10, -5, 63]))  # y′·p·2^-4 in 2^-7
    np.testing.assert_array_equal(change["dw"][0], 0)
    tag_b = np.zeros((1, 3, 2), np.int64)
    change_b = cp.engine_change(proj.rule, tag_b, tag_b, 64 + 8 * y, {"y2": np.maximum(p, 0), "y3": np.maximum(-p, 0)})
    np.testing.assert_array_equal(change_b["dt"][0], change["dt"][0].T)
    # carries: t = 200 → w + 1, t − 128; t = −129 → w − 1, t + 128; t = 126 → none
    proj.tag[:] = [[[200, -129, 126], [0, 0, 0]]]
    change = cp.engine_change(proj.rule, proj.weights, proj.tag, np.full((1, 1, 3), 64), cp.signed_y(0 * y))
    np.testing.assert_array_equal(change["dw"][0, 0], [128, -128, 0])
    # a batch of copies carries once per synapse, not once per copy; their products still add up
    five = cp.engine_change(proj.rule, proj.weights, proj.tag, np.full((1, 5, 3), 64), cp.signed_y(np.zeros((1, 5, 2))))
    np.testing.assert_array_equal(five["dw"], change["dw"])
    np.testing.assert_array_equal(five["dt"], change["dt"])
    x5, y5 = np.repeat(64 + p, 5, axis=1), cp.signed_y(np.repeat(y, 5, axis=1))
    both = cp.engine_change(proj.rule, proj.weights, proj.tag, x5, y5)["dt"]
    one = cp.engine_change(proj.rule, proj.weights, proj.tag, 64 + p, cp.signed_y(y))["dt"]
    np.testing.assert_array_equal(both - change["dt"], np.clip(5 * (one - change["dt"]), -(2**30), 2**30))
    proj.learn(change, np.full((1, 2, 3), 0.5))
    np.testing.assert_array_equal(proj.weights[0, 0], [1, -1, 0])
    np.testing.assert_array_equal(proj.tag[0, 0], [72, -1, 126])
    # the mean: ĕ = 3.0 (2^-16 units) and r = 0.5 (p = 32) give Δw = η dt ĕ r on average
    rng = np.random.default_rng(0)
    e_int = np.full((1, 1, 200000), 3 * 2**16)
    yp = cp.y_prime(e_int, proj, rng.integers(0, 1 << 62, e_int.shape))
    mean_dw = yp.mean() * 32 * 2.0**proj.exponent / 128 * 2.0**-shift
    np.testing.assert_allclose(mean_dw, lr_dt * 3.0 * 0.5, rtol=0.02)


def test_chip_refusals() -> None:
    with pytest.raises(NeurodeployError, match="programmable neurons"):
        learn_system("gle", "lagged-teacher", variant="chip", profile="loihi1", seeds=1, epochs=1)
    with pytest.raises(NeurodeployError, match="Loihi learning engine"):
        learn_system("gle", "lagged-teacher", variant="chip", profile="spinnaker2", seeds=1, epochs=1)
    with pytest.raises(NeurodeployError, match="adam"):
        learn_system("gle", "lagged-teacher", variant="chip", seeds=1, epochs=1, optimizer="adam")
    with pytest.raises(NeurodeployError, match="mismatch"):
        learn_system("gle", "lagged-teacher", variant="chip", seeds=1, epochs=1, mismatch=-0.1)


@pytest.mark.parametrize("feedback", ["transpose", "pal"])
def test_chip_learns_the_lagged_teacher(feedback: str) -> None:
    """A short online run on the chip: the held-out MSE falls for every seed, on average by more than half
    (PAL learns B from noise, so its start is slower and noisier: one window more)."""
    epochs = 2 if feedback == "transpose" else 3
    res = learn_system("gle", "lagged-teacher", variant="chip", seeds=2, epochs=epochs, window=40.0,
                       feedback=feedback)  # fmt: skip
    ref = learn_system("gle", "lagged-teacher", seeds=2, epochs=1, window=40.0, feedback=feedback)
    assert set(res.history[-1]) == set(ref.history[-1])
    first, last = np.array(res.history[0]["test_mse"]), np.array(res.history[-1]["test_mse"])
    assert (last < first).all() and last.mean() < first.mean() / 2, (first, last)
    np.testing.assert_allclose(first, ref.history[0]["test_mse"], rtol=0.2)  # the same start, quantised
    assert res.provenance["plasticity"]["where"].startswith("chip (loihi2") and res.differences_from_paper
    if feedback == "transpose":
        assert res.config["transpose_gap"] == 0  # B stayed exactly Wᵀ


def test_chip_runs_a_static_task() -> None:
    """The chip version on a task of neurodeploy.learning.tasks (digits, sequences of held samples)."""
    res = learn_system("gle", "digits", variant="chip", seeds=1, epochs=1, hidden=(10,), feedback="fa")
    assert res.history[-1]["test_accuracy"][0] > 0.5  # chance is 0.1
    assert set(res.history[-1]) == {"epoch", "test_accuracy", "val_accuracy", "weight_angle"}


def test_chip_network_runs_in_the_stepped_loop_as_the_layer_steps_by_hand() -> None:
    """The chip version is a CoreNetwork of programmable populations whose W and B carry the learning engines;
    run by the emulator's stepped loop, its rates and ĕ equal the layer steps called by hand
    (ChipGLE.forward/backward) step for step, with γ > 0 (ĕ back into its representation neuron one step later)
    and the target switched on by the nudge input from the 6th step. With learning, the engines move W's tags
    and the transposed B stays exactly Wᵀ."""
    from neurodeploy import profiles
    from neurodeploy.emulator.network import CoreNetwork
    from neurodeploy.emulator.stepped import SteppedRun
    from neurodeploy.rules.systems import gle_chip_net as cn
    from neurodeploy.rules.systems import gle_tasks
    from neurodeploy.rules.systems.gle_chip import ChipGLE, ChipOptions

    opts = ChipOptions(learning=False, gamma=0.5).checked()
    sizes, taus = gle_tasks.teacher_architecture(opts)
    rngs = [np.random.default_rng(s) for s in (0, 1)]
    ref = GLENet(sizes, [t[0] for t in taus], [t[1] for t in taus], rngs, dt=0.05, gain=2.0)
    chip = ChipGLE(ref, opts, 0.0, 1, 4, profiles.get("loihi2"))
    net = cn.chip_network(chip, cn.engines(chip))
    layers = range(chip.L)
    assert isinstance(net, CoreNetwork) and set(net.inputs) == {"input", "target", "nudge"}
    programs = {p.name for p in net.populations if p.model == "program"}
    assert programs == {f"rep{k}" for k in layers} | {f"err{k}" for k in layers}
    assert {pr.name for pr in net.projections if pr.engine is not None} == {p.name for p in [*chip.W, *chip.B.values()]}
    steps, one = 60, 2.0**16
    t = np.arange(steps)[:, None, None, None] * 0.05
    xs = np.rint(np.sin(0.7 * t + np.array([0.0, 1.0])) * np.ones((1, 2, 1, 1)) * one).astype(np.int64)
    ys = np.rint(0.5 * np.cos(0.9 * t + np.array([0.0, 1.0])) * np.ones((1, 2, 1, 1)) * one).astype(np.int64)
    nudge = (np.arange(steps) >= 5).astype(np.int64)[:, None]
    run = SteppedRun(net, (2, 1))
    rec = run.run({"input": cn.stream(xs), "target": ys, "nudge": nudge}, record=("rate", "error"))
    for i in range(steps):
        chip.forward(xs[i])
        if nudge[i, 0]:
            chip.backward(ys[i])
        for k in layers:
            np.testing.assert_array_equal(rec["rate"][f"rep{k}"][i][..., : sizes[k + 1]], chip.rates[k + 1])
            np.testing.assert_array_equal(rec["error"][f"err{k}"][i], chip.err[k])
    assert np.abs(chip.err[0]).max() > 0
    learner = ChipGLE(ref, ChipOptions().checked(), 0.01, 1, 4, profiles.get("loihi2"))
    run = SteppedRun(cn.chip_network(learner, cn.engines(learner)), (2, 1))
    run.run({"input": cn.stream(xs), "target": ys, "nudge": nudge})
    assert all(w.tag.any() for w in learner.W) and learner.transpose_gap() == 0

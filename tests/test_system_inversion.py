"""Dynamic inversion (Podlaski & Machens 2020): the loop's steady state, time scale and inverse limit in closed
form, the stability refusals and repairs, and short end-to-end runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from neurodeploy.errors import NeurodeployError
from neurodeploy.rules.systems import learn_system
from neurodeploy.rules.systems.inversion import (
    Options,
    abscissa,
    loop_matrix,
    reduced_matrix,
    run_inversion,
    stabilise,
    steady_state,
)


def _stable_pair(rng: np.random.Generator, m: int, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    w = rng.normal(0.0, 1.0 / math.sqrt(n), (m, n))
    return w, -w.T + noise * rng.normal(0.0, 1.0 / math.sqrt(n), (n, m))


@settings(max_examples=12, deadline=None)
@given(m=st.integers(1, 4), extra=st.integers(0, 3), seed=st.integers(0, 10_000), alpha=st.floats(0.05, 0.5),
       noise=st.floats(0.0, 0.8))  # fmt: skip
def test_the_loop_settles_where_the_closed_form_says(m, extra, seed, alpha, noise):
    rng = np.random.default_rng(seed)
    w, b = _stable_pair(rng, m, m + extra, noise)
    dt = 0.05
    eig = np.linalg.eigvals(loop_matrix(w, b, alpha))
    radius = np.abs(1.0 + dt * eig).max()
    assume(abscissa(reduced_matrix(w, b, alpha)) < 0 and radius < 0.9995)
    steps = int(math.log(1e-11) / math.log(radius)) + 1
    delta0 = rng.normal(size=(1, 3, m))
    settled = run_inversion(w[None], b[None], alpha, delta0, dt, steps)[0]
    closed = steady_state(w[None], b[None], alpha, delta0)[0]  # B (W B − α I)⁻¹ δ₀
    # the fixed point of both equations, solved directly: −α r_y + W r_x = δ₀, B r_y − r_x = 0
    n = w.shape[1]
    rhs = np.concatenate([delta0[0].T, np.zeros((n, 3))])
    direct = np.linalg.solve(loop_matrix(w, b, alpha), rhs)[m:].T
    np.testing.assert_allclose(closed, direct, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(settled, direct, rtol=1e-6, atol=1e-7)


def test_the_convergence_time_scale_is_the_slowest_eigenvalue_in_one_dimension():
    w, b, alpha, dt = 1.0, -0.1, 0.1, 0.01
    # (λ + α)(λ + 1) = w b: the slower root of λ² + (1 + α) λ + α − w b = 0
    slowest = (-(1 + alpha) + math.sqrt((1 + alpha) ** 2 - 4 * (alpha - w * b))) / 2
    assert slowest == pytest.approx(-0.22984, abs=1e-5)
    W, B = np.array([[[w]]]), np.array([[[b]]])
    rx, trace = run_inversion(W, B, alpha, np.ones((1, 1, 1)), dt, 3000, record=True)
    target = b / (w * b - alpha)  # B (W B − α)⁻¹ δ₀ with δ₀ = 1
    gap = np.abs(trace[:, 0, 0, 0] - target)
    rate = math.log(gap[2500] / gap[1500]) / (1000 * dt)
    assert rate == pytest.approx(math.log(1 + dt * slowest) / dt, rel=1e-3)
    assert rate == pytest.approx(slowest, rel=5e-3)


@pytest.mark.parametrize("square", [True, False])
def test_with_negative_transpose_feedback_the_steady_state_tends_to_the_pseudo_inverse(square):
    rng = np.random.default_rng(3)
    w = rng.normal(size=(4, 4 if square else 7))
    delta0 = rng.normal(size=(1, 5, 4))
    target = delta0[0] @ (np.linalg.inv(w) if square else np.linalg.pinv(w)).T  # +W⁻¹ δ₀ (not its negative)
    errors = []
    for alpha in (1e-2, 1e-4, 1e-6):
        got = steady_state(w[None], -w.T[None], alpha, delta0)[0]
        errors.append(np.abs(got - target).max())
        np.testing.assert_allclose(got @ w.T, delta0[0], atol=50 * alpha)  # W δ_x → δ₀: the loop inverts W
    # the gap closes linearly in α (the leak regularises the inverse), to a part in 10⁴ at α = 10⁻⁶
    assert errors[0] / errors[1] == pytest.approx(100, rel=0.1) and errors[1] / errors[2] == pytest.approx(
        100, rel=0.01
    )
    assert errors[2] < 1e-4 * np.abs(target).max()


def test_stabilise_moves_a_random_feedback_below_the_margin():
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(3, 6)) / math.sqrt(6), rng.normal(size=(6, 3)) / math.sqrt(6)
    opts = Options(alpha=0.01)
    assert abscissa(reduced_matrix(w, b, 0.01)) > 0
    fixed, ok = stabilise(w, b, 0.01, opts, loop=True)
    assert ok and abscissa(reduced_matrix(w, fixed, 0.01)) <= -opts.margin
    assert abscissa(loop_matrix(w, fixed, 0.01)) <= -opts.margin


def test_an_unstable_start_is_refused_naming_the_layer_the_eigenvalue_and_the_fix():
    with pytest.raises(NeurodeployError, match=r"layer 'W1' is unstable before training .*eig\(W B − α I\) is \+0\.\d+"
                       ) as err:  # fmt: skip
        learn_system("di", task="linear", seeds=1, epochs=1, init_b="random")
    assert "init_b='negative_transpose'" in err.value.hint and "larger alpha" in err.value.hint
    with pytest.raises(NeurodeployError, match="Euler step dt=3 is too long") as err:
        learn_system("di", task="linear", seeds=1, epochs=1, dt=3.0)
    assert "use dt below" in err.value.hint


def test_training_that_destabilises_the_loop_is_refused_or_repaired():
    with pytest.raises(NeurodeployError, match=r"unstable after an update in epoch 1 .*is \+") as err:
        learn_system("di", task="linear", seeds=1, epochs=1, init_b="stability_optimised", stability="refuse",
                     form="least_squares")  # fmt: skip
    assert "stability='repair'" in err.value.hint
    res = learn_system("di", task="linear", seeds=2, epochs=2, init_b="stability_optimised", form="least_squares")
    last = res.history[-1]
    assert sum(last["repairs"]) > 0
    assert max(last["spectral_abscissa"]["W1"]) <= -Options().margin


def test_the_linear_network_learns_the_least_squares_solution():
    res = learn_system("di", task="linear", seeds=2, epochs=6)
    first, last = res.history[0], res.history[-1]
    assert max(last["solution_angle"]) < 1.0 < min(first["solution_angle"])
    assert max(last["test_mse"]) < 0.02  # the teacher's noise variance is 0.01
    assert max(last["steady_state_gap"]["W0"]) < 0.5  # 300 Euler steps reach the closed form
    assert max(last["spectral_abscissa"]["W1"]) < 0 and last["repairs"] == [0, 0]
    assert res.provenance["all"]["where"] == "host float64" and res.config["task"] == "linear"


def test_from_the_papers_small_start_the_inverse_leaves_the_plateau_before_bp():
    from neurodeploy.rules.systems.inversion import linear_task, train

    task, paper = linear_task(), {"init_scale": 0.01, "clip": 10.0}
    di = train(task, Options(form="least_squares", **paper).checked(), 2, 2, "di")
    bp = train(task, Options(**paper).checked(), 2, 2, "bp")
    assert max(di[0]["test_mse"]) < 0.5 * min(bp[0]["test_mse"])
    assert max(di[0]["pinv_angle"]["W0"]) < 30 < min(bp[0]["pinv_angle"]["W0"])


def test_digits_end_to_end_and_the_least_squares_form():
    res = learn_system("di", seeds=1, epochs=1, steps=150)
    last = res.history[-1]
    assert last["test_accuracy"][0] > 0.8 and res.config["task"] == "digits"
    assert set(last["pinv_angle"]) == {"W0"} and 0 < last["bp_angle"]["W0"][0] < 90
    fast = learn_system("di", seeds=1, epochs=1, form="least_squares")
    assert fast.history[-1]["test_accuracy"][0] == pytest.approx(last["test_accuracy"][0], abs=0.02)


@pytest.mark.parametrize(("options", "match"), [
    ({"form": "single_loop"}, "single_loop' is not built"), ({"form": "x"}, "form='x' is unknown"),
    ({"init_b": "transpose"}, "init_b='transpose' is unknown"), ({"stability": "ignore"}, "stability='ignore'"),
    ({"alpha": -0.1}, "must be ≥ 0"), ({"steps": 0}, "steps must be positive"), ({"dt": float("nan")}, "dt must"),
    ({"clip": 0.0}, "clip must be positive"), ({"beta": 1}, "option 'beta' does not apply"),
])  # fmt: skip
def test_bad_options_are_refused(options, match):
    with pytest.raises(NeurodeployError, match=match) as err:
        learn_system("di", task="linear", seeds=1, epochs=1, **options)
    assert err.value.hint  # every refusal says what to do


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("steps", 300.0),
        ("steps", 2.5),
        ("batch", "32"),
        ("batch", True),
        ("n_hidden", 20.0),
        ("n_hidden", False),
        ("repair_iterations", 1e3),
    ],
)
def test_integer_options_refuse_floats_bools_and_text_with_one_clear_error(name, value):
    with pytest.raises(NeurodeployError, match=f"option {name}=.* must be a whole number") as err:
        learn_system("di", task="linear", seeds=1, epochs=1, **{name: value})
    assert f"{name}=" in err.value.hint and err.value.where == f"option {name}"


@pytest.mark.parametrize("name", ["steps", "batch", "dt", "lr", "n_hidden", "margin", "init_scale", "clip"])
def test_a_non_positive_option_is_refused_with_a_value_to_use(name):
    with pytest.raises(NeurodeployError, match=f"{name} must be positive") as err:
        learn_system("di", task="linear", seeds=1, epochs=1, **{name: 0})
    assert err.value.hint.startswith(f"use a positive {name}, e.g. {name}=")


def test_the_weight_angle_is_taken_against_the_negative_transpose():
    # the default B = −W1ᵀ: with a learning rate too small to move W1, ∠(B, −W1ᵀ) stays 0 (and ∠(B, W1ᵀ) would be 180)
    res = learn_system("di", task="linear", seeds=2, epochs=1, lr=1e-12, steps=20)
    last = res.history[-1]
    assert "weight_angle" not in last and last["weight_angle_neg"]["W1"] == pytest.approx([0.0, 0.0], abs=1e-5)
    random = learn_system("di", task="linear", seeds=2, epochs=1, lr=1e-12, steps=20, init_b="random", alpha=5.0)
    assert 60 < min(random.history[-1]["weight_angle_neg"]["W1"]) < 120  # random B: about orthogonal


def test_an_unknown_task_names_the_linear_one_too():
    with pytest.raises(NeurodeployError, match="unknown task 'mnist'") as err:
        learn_system("di", task="mnist", seeds=1, epochs=1)
    assert "'linear'" in err.value.hint and "digits" in err.value.hint


# ------------------------------------------------------------------------------------------------ the chip
def test_the_integer_loop_step_matches_a_hand_computed_case():
    from neurodeploy.rules.systems.inversion_chip import TANH, lookup, loop_step

    # one controller, one hidden unit: W = 64/128 = 0.5, B = −0.5, δ₀ = 1.0 (4096 in units 2^-12), c = 410, d = 4
    w, b, delta0 = np.array([[64]]), np.array([[-64]]), np.array([[4096]])
    ry, rx = np.zeros((1, 1), np.int64), np.zeros((1, 1), np.int64)
    seen = []
    for _ in range(3):
        ry, rx = loop_step(ry, rx, w, b, delta0, 410, 4)
        seen.append((int(ry[0, 0]), int(rx[0, 0])))
    # step 1: r_y = (410·(0 − 4096) + 2048) >> 12 = −410; r_x gets nothing yet (one step of latency)
    # step 2: payload m_y = (−410 + 8) >> 4 = −26, B m_y = 1664 → (1664 + 4) >> 3 = 208, r_x = (410·208 + 2048) >> 12
    #         = 21; r_y = −410 + ((410·(0 − 4096) + 4·410 + 2048) >> 12) = −410 − 410
    # step 3: m_x = (21 + 8) >> 4 = 1, W m_x = 64 → 8; m_y = −51 → 408; r_y = −820 + ((410·(8 − 4096) + 4·820 + 2048)
    #         >> 12) = −820 − 408; r_x = 21 + ((410·(408 − 21) + 2048) >> 12) = 21 + 39
    assert seen == [(-410, 0), (-820, 21), (-1228, 60)]
    # tanh table: a = 4096 / 2^13 = 0.5 → 64·tanh(0.5) = 29.6 → 30; beyond the table the entry saturates at 63
    np.testing.assert_array_equal(lookup(TANH[6], np.array([4096, -4096, 10**6]), 8), [30, -30, 63])


def test_the_engine_rule_gathers_the_tag_and_moves_it_as_computed_by_hand():
    from neurodeploy.rules.systems.inversion_chip import engine_rules, plastic_projection, present

    dt, dw, realised = engine_rules(0.1, 32, 6, 7)  # Δw = (lr/32)·δ·x with x in 1/64 and δ in 1/128
    assert (dt, dw) == ("3*2^-7*y0*y2*(x1-64) - 3*2^-7*y0*y3*(x1-64) - y0*y1*t", "2^-6*y0*y1*t")
    # the tag gains y·p·3·2^-10 and the move takes 2^-6 of it; lr/32 per unit δ·x is 128·2^-13·lr/32 weight units
    assert realised == pytest.approx(3 * 2.0**-10 * 2.0**-6 * 32 * 2**13 / 128)  # 0.09375 for 0.1
    n = 4000
    plastic = plastic_projection(np.zeros((n, 1, 2), np.int64), dt, dw, seed=5)
    pre, delta = np.tile([32, -16], (n, 1)), np.full((n, 1), 64)
    present(plastic, pre, delta, move=False)
    # tag: (64·32·3) >> 3 = 768 = 6·2^7 and (64·(−16)·3) >> 3 = −384 = −3·2^7: +6 and −3 exactly, unless the
    # engine's once-per-epoch decay (τ = 65535) took one unit off y2 or x1 (probability ≈ 0.25 %)
    exact = (plastic.tag_1 == [[6, -3]]).all(axis=(1, 2))
    assert exact.mean() > 0.99 and not plastic.weights.any()
    present(plastic, pre, np.zeros((n, 1), np.int64), move=True)  # y1 = 32: (32·t) >> 5 = t moves, t clears
    assert not plastic.tag_1[exact].any()
    w = plastic.weights[exact][:, 0]
    # 2^-6·t: +6/64 and −3/64 of a unit, stochastically rounded per synapse: floor or ceil, unbiased
    assert set(np.unique(w[:, 0])) <= {0, 1} and set(np.unique(w[:, 1])) <= {-1, 0}
    assert w.mean(0) == pytest.approx([6 / 64, -3 / 64], abs=0.015)


@pytest.mark.parametrize("alpha", [0.01, 0.1])
def test_the_chip_loop_settles_near_the_float_steady_state_of_its_own_weights(alpha):
    from neurodeploy.rules.systems.inversion_chip import LOOP_BITS, WEIGHT_BITS, loop_constants, loop_step

    rng = np.random.default_rng(7)
    w_int = 2 * np.rint(rng.normal(0.0, 0.4, (1, 3, 6)) * 64).astype(np.int64)  # on the 8-bit grid
    b_int = -np.swapaxes(w_int, 1, 2)
    opts = Options(alpha=alpha, steps=600)
    c, d, dt, alpha_real = loop_constants(opts)
    assert (c, dt) == (410, pytest.approx(0.1001, abs=1e-4)) and alpha_real == pytest.approx(alpha, rel=0.03)
    delta0 = rng.uniform(-1, 1, (1, 4, 3))
    d_int = np.rint(delta0 * 2**LOOP_BITS).astype(np.int64)
    ry, rx = np.zeros_like(d_int), np.zeros((1, 4, 6), np.int64)
    for _ in range(opts.steps):
        ry, rx = loop_step(ry, rx, w_int, b_int, d_int, c, d)
    w, b = w_int / 2**WEIGHT_BITS, b_int / 2**WEIGHT_BITS
    closed = steady_state(w, b, alpha_real, d_int / 2**LOOP_BITS)
    euler = run_inversion(w, b, alpha_real, d_int / 2**LOOP_BITS, dt, opts.steps)
    # the 16-bit payloads (units 2^-8) and rounded updates leave the chip within 1 % of the float loop
    chip = rx / 2**LOOP_BITS
    assert np.abs(chip - euler).max() < 0.01 * np.abs(euler).max()
    assert np.abs(chip - closed).max() < 0.01 * np.abs(closed).max()


def test_a_profile_without_programmable_neurons_or_the_engine_is_refused_by_name():
    with pytest.raises(NeurodeployError, match="lacks programmable neurons") as err:
        learn_system("di", task="linear", variant="chip", profile="loihi1", seeds=1, epochs=1)
    assert "loihi2" in err.value.hint
    with pytest.raises(NeurodeployError, match="lacks the Loihi learning engine"):
        learn_system("di", task="linear", variant="chip", profile="spinnaker2", seeds=1, epochs=1)


@pytest.mark.parametrize(("options", "match"), [
    ({"form": "least_squares"}, "matrix inverse"), ({"clip": 1.0}, "option clip"), ({"mismatch": -0.1}, "mismatch"),
    ({"seed": 1.5}, "seed=1.5 must be a whole number"), ({"alpha": 20.0}, "exceeds the 12-bit decay"),
])  # fmt: skip
def test_options_the_chip_cannot_hold_are_refused(options, match):
    with pytest.raises(NeurodeployError, match=match) as err:
        learn_system("di", task="linear", variant="chip", seeds=1, epochs=1, **options)
    assert err.value.hint


def test_mismatch_gives_each_seed_its_own_chip_on_the_weight_grid():
    from neurodeploy import profiles
    from neurodeploy.learning.tasks import get_task
    from neurodeploy.rules.systems.inversion_chip import ChipNetwork, ChipOptions

    task, profile = get_task("digits"), profiles.get("loihi2")
    nominal = ChipNetwork(task, ChipOptions().checked(), 2, profile)
    varied = ChipNetwork(task, ChipOptions(mismatch=0.1).checked(), 2, profile)
    assert (nominal.w0 % 2 == 0).all() and (nominal.b == -np.swapaxes(nominal.w1[..., :-1], 1, 2)).all()
    ratio = varied.w1[nominal.w1 != 0] / nominal.w1[nominal.w1 != 0]
    assert 0.05 < np.std(ratio) < 0.2 and (varied.w0[0] != varied.w0[1]).any()


def test_a_short_chip_run_learns_digits_and_says_what_ran_where():
    res = learn_system("di", variant="chip", seeds=1, epochs=1, steps=100)
    last = res.history[-1]
    assert last["test_accuracy"][0] > 0.7 and res.config["variant"] == "chip" and res.config["profile"] == "loihi2"
    assert last["steady_state_gap"]["W0"][0] < 10 and max(last["spectral_abscissa"]["W1"]) < 0
    assert res.provenance["stability"]["where"] == "host float64" and "chip" in res.provenance["loop"]["where"]
    assert "learning engine" in res.provenance["learning"]["where"] and res.differences_from_paper
    assert "CoreNetwork" in res.provenance["network"]["how"] and "emulator.stepped" in res.provenance["network"]["how"]
    assert res.engine["rules"]["W1"]["dw"] == "2^-6*y0*y1*t" and res.engine["loop"]["d"] == 4
    # B starts at −W1ᵀ on the grid and stays there while W1 learns: the angle to −W1ᵀ grows from 0 but stays acute
    assert "weight_angle" not in last and 0 < last["weight_angle_neg"]["W1"][0] < 45


def test_on_the_chip_the_host_refuses_or_repairs_an_unstable_loop_between_updates():
    with pytest.raises(NeurodeployError, match=r"unstable after an update in epoch 1 .*loop's Jacobian") as err:
        learn_system("di", task="linear", variant="chip", seeds=1, epochs=1, init_b="stability_optimised",
                     stability="refuse", steps=150)  # fmt: skip
    assert "on the host" in err.value.hint
    res = learn_system("di", task="linear", variant="chip", seeds=1, epochs=1, init_b="stability_optimised", steps=150)
    last = res.history[-1]
    assert last["repairs"][0] > 0 and last["spectral_abscissa"]["W1"][0] <= -Options().margin
    assert "repair" in res.provenance["stability"]["how"]


def test_the_chip_network_is_a_core_network_whose_stepped_run_matches_the_integer_steps_by_hand():
    from neurodeploy import profiles
    from neurodeploy.emulator.network import CoreNetwork
    from neurodeploy.emulator.stepped import SteppedRun
    from neurodeploy.rules.systems.inversion import _targets, load_task
    from neurodeploy.rules.systems.inversion_chip import (
        ChipNetwork,
        ChipOptions,
        engine_rules,
        plastic_projection,
        present,
    )
    from neurodeploy.rules.systems.inversion_chip_net import LOOP, TagEngine, chip_network, run_presentations

    task, opts = load_task(None), ChipOptions(steps=20).checked()
    net = ChipNetwork(task, opts, 1, profiles.get("loihi2"))
    rules = {"W0": engine_rules(0.1, opts.batch, 6, 8), "W1": engine_rules(0.1, opts.batch, 6, 7)}
    core = chip_network(net, opts, rules)
    assert isinstance(core, CoreNetwork) and core.inputs == ["input", "target"]
    assert {p.name: p.model for p in core.populations} == {"input": "input", "target": "input", "hidden": "program",
                                                           "output": "program"}  # fmt: skip
    assert [pr.name for pr in core.projections if isinstance(pr.engine, TagEngine)] == ["W0", "W1"]
    # one minibatch of three presentations: forward, 20 loop steps and the bAP, in the stepped run loop
    run = SteppedRun(core, (1, 3))
    x, y = np.asarray(task.x_train[:3], float)[None], _targets(task, task.y_train[:3])[None]
    run_presentations(run, net, x, y, LOOP + opts.steps + 1)
    assert run.t == opts.steps + 4
    # the same integer steps by hand: ChipNetwork's forward pass and loop, then each presentation's bAP
    a, p_h, o = net.forward(net.payload(x), net.w0, net.w1)
    delta0 = net.output_error(o, y)
    delta1 = net.hidden_error(delta0, p_h, net.w1, net.b, opts)[0]
    n = p_h.shape[-1]
    np.testing.assert_array_equal(run.states["output"]["o"], o)
    np.testing.assert_array_equal(run.states["output"]["delta0"], delta0)
    np.testing.assert_array_equal(run.states["hidden"]["a"][..., :n], a)
    np.testing.assert_array_equal(run.states["hidden"]["delta1"][..., :n], delta1)
    assert np.abs(delta1).max() > 0
    plastic = {name: plastic_projection(w, *rules[name][:2], seed) for seed, (name, w) in
               enumerate((("W0", net.w0), ("W1", net.w1)))}  # fmt: skip
    for k in range(3):
        present(plastic["W1"], net.with_bias(p_h)[:, k], delta0[:, k], k == 2)
        present(plastic["W0"], net.payload(x)[:, k], delta1[:, k], k == 2)
    for name in ("W0", "W1"):
        np.testing.assert_array_equal(run.weights(name), plastic[name].weights)
        np.testing.assert_array_equal(run.delivery[name].plastic.tag_1, plastic[name].tag_1)
    assert (run.weights("W1") != net.w1).any()  # the last presentation's y1 moved the tags into the weights

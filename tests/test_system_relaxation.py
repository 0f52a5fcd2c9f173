"""Activation Relaxation and relaxed predictive coding: the relaxations against the chain rule done by hand,
their convergence rate, PC's closed-form equilibrium, the angle to BP, option checks and short runs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurodeploy.errors import NeurodeployError
from neurodeploy.rules.systems import learn_system
from neurodeploy.rules.systems.relaxation import (
    AROptions,
    Options,
    PCOptions,
    angle,
    ar_relax,
    backprop_deltas,
    descent_directions,
    forward,
    init_net,
    loss_gradient,
    pc_relax,
    train,
)


def tiny_net(sizes: list[int], seed: int) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray]:
    """One seed's weights, biases, a batch of 4 inputs and squared-error targets."""
    rng = np.random.default_rng(seed)
    W = [rng.normal(0.0, 1.0, (1, o, i)) for i, o in zip(sizes[:-1], sizes[1:], strict=True)]
    b = [rng.normal(0.0, 0.5, (1, o)) for o in sizes[1:]]
    return W, b, rng.uniform(0.0, 1.0, (1, 4, sizes[0])), rng.uniform(0.0, 1.0, (1, 4, sizes[-1]))


def chain_rule_by_hand(W, b, x, t) -> list[list[list[float]]]:
    """∂L/∂h_l for every layer of a ReLU net with a linear output and L = ½‖out − t‖², one sample at a time
    with plain loops: no matrices, no code shared with the module."""
    grads = []
    for n in range(x.shape[1]):
        hs, pres = [list(x[0, n])], []
        for k, (w, bias) in enumerate(zip(W, b, strict=True)):
            a = [sum(w[0, j, i] * hs[-1][i] for i in range(len(hs[-1]))) + bias[0, j] for j in range(w.shape[1])]
            pres.append(a)
            hs.append(a if k == len(W) - 1 else [max(v, 0.0) for v in a])
        g = [o - tt for o, tt in zip(hs[-1], t[0, n], strict=True)]  # ∂L/∂out
        per_layer = [g]
        for k in range(len(W) - 1, 0, -1):  # ∂L/∂h_{k} from ∂L/∂h_{k+1}
            slope_above = [1.0] * len(g) if k == len(W) - 1 else [float(v > 0) for v in pres[k]]
            g = [sum(W[k][0, j, i] * g[j] * slope_above[j] for j in range(len(g))) for i in range(W[k].shape[2])]
            per_layer.insert(0, g)
        grads.append(per_layer)
    return grads


@pytest.mark.parametrize("sizes", [[2, 3, 2], [2, 3, 3, 2]])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ar_fixed_point_with_transposed_weights_is_the_hand_computed_gradient(sizes, seed):
    W, b, x, t = tiny_net(sizes, seed)
    pre, post = forward(W, b, x, "relu")
    xs = ar_relax(W[1:], pre, post, loss_gradient(post[-1], t, "mse"), steps=400, rate=0.5)
    by_hand = chain_rule_by_hand(W, b, x, t)
    for layer in range(len(W)):
        want = np.array([sample[layer] for sample in by_hand])
        np.testing.assert_allclose(xs[layer][0], want, rtol=1e-10, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(rate=st.floats(0.01, 1.0), seed=st.integers(0, 1000))
def test_one_layer_relaxation_converges_geometrically_at_one_minus_rate(rate, seed):
    W, b, x, t = tiny_net([3, 5, 2], seed)
    pre, post = forward(W, b, x, "relu")
    grad_out = loss_gradient(post[-1], t, "mse")
    fixed_point = grad_out @ W[1]
    residual: list[np.ndarray] = []
    ar_relax(W[1:], pre, post, grad_out, steps=12, rate=rate, trace=lambda _, xs: residual.append(xs[0] - fixed_point))
    for before, after in zip(residual[:-1], residual[1:], strict=True):
        np.testing.assert_allclose(after, (1.0 - rate) * before, rtol=1e-9, atol=1e-13)
    assert np.abs(residual[0]).max() > 0.1  # it started away from the fixed point


@settings(max_examples=10, deadline=None)
@given(rate=st.floats(0.05, 1.0), steps=st.integers(2, 30))
def test_ar_from_zero_is_parallel_to_the_gradient_and_scaled_by_one_minus_decay(rate, steps):
    """From zero, every hidden node is a scalar multiple of its gradient once the output's signal reached it:
    the layer below the output holds exactly (1 − (1 − η)ᵗ) ∂L/∂h."""
    W, b, x, t = tiny_net([2, 3, 3, 2], 4)
    pre, post = forward(W, b, x, "relu")
    grad_out = loss_gradient(post[-1], t, "mse")
    xs = ar_relax(W[1:], pre, post, grad_out, steps=steps, rate=rate, start="zero")
    deltas = backprop_deltas(W, pre, grad_out, "relu")
    np.testing.assert_allclose(xs[1], (1.0 - (1.0 - rate) ** steps) * (grad_out @ W[2]), rtol=1e-10, atol=1e-14)
    assert angle(xs[0] * (pre[0] > 0), deltas[0])[0] < 1e-5


def test_pc_equilibrium_on_a_linear_net_closed_form_and_small_output_weight_limit():
    """Energy-descent PC (predictions recomputed while relaxing) on a linear 3-4-2 net with squared error:
    the equilibrium is ε_2 = (I + W₂W₂ᵀ)⁻¹ e₀, ε_1 = W₂ᵀ ε_2 with e₀ = t − out; it reaches −∂L/∂v_1 = W₂ᵀ e₀
    only in the limit of a small output weight W₂ (the relative error falls as |W₂|²)."""
    W, b, x, t = tiny_net([3, 4, 2], 5)
    gaps = []
    for scale in (0.3, 0.1, 0.03):
        Ws = [W[0], scale * W[1]]
        pre, post = forward(Ws, b, x, "linear")
        eps, _ = pc_relax(Ws, b, Ws[1:], pre, post, t, steps=3000, rate=0.2, loss="mse", activation="linear",
                          fixed_prediction=False)  # fmt: skip
        e0 = t - post[-1]
        w2 = Ws[1][0]
        closed = np.linalg.solve(np.eye(2) + w2 @ w2.T, e0[0].T).T
        np.testing.assert_allclose(eps[1][0], closed, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(eps[0][0], closed @ w2, rtol=1e-9, atol=1e-12)
        minus_grad = e0[0] @ w2
        gaps.append(np.linalg.norm(eps[0][0] - minus_grad) / np.linalg.norm(minus_grad))
    assert gaps[0] > 0.05  # not the gradient at a sizable output weight
    assert gaps[1] < gaps[0] / 4 and gaps[2] < gaps[1] / 4 and gaps[2] < 1e-2


def test_pc_with_fixed_predictions_reaches_minus_the_backprop_gradient_exactly():
    W, b, x, t = tiny_net([3, 5, 4, 2], 3)
    pre, post = forward(W, b, x, "relu")
    eps, _ = pc_relax(W, b, W[1:], pre, post, t, steps=300, rate=0.5, loss="mse")
    deltas = backprop_deltas(W, pre, loss_gradient(post[-1], t, "mse"), "relu")
    for e, d in zip(eps, deltas, strict=True):
        np.testing.assert_allclose(e, -d, rtol=1e-10, atol=1e-12)


def _small_problem(seeds: int = 2) -> tuple:
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, (seeds, 32, 8))
    t = np.eye(3)[rng.integers(0, 3, (seeds, 32))]
    return init_net([8, 24, 24, 16, 3], seeds), x, t


@pytest.mark.parametrize("system", ["ar", "pc"])
def test_update_is_within_five_degrees_of_backprop_at_equilibrium(system):
    """AR with Wᵀ and f′ and PC under the fixed-prediction assumption, 100 steps at rate 0.1 (the defaults)."""
    net, x, t = _small_problem()
    opts = (PCOptions if system == "pc" else AROptions)(loss="cross_entropy").checked()
    w_dirs, _, bp_dirs, _ = descent_directions(system, net, x, t, opts)
    angles = np.array([angle(w, g) for w, g in zip(w_dirs, bp_dirs, strict=True)])
    assert angles.max() < 5.0, angles


def test_an_unsettled_or_misaligned_relaxation_is_not_within_five_degrees():
    net, x, t = _small_problem()
    short = Options(loss="cross_entropy", steps=2).checked()
    w_dirs, _, bp_dirs, _ = descent_directions("ar", net, x, t, short)
    assert angle(w_dirs[0], bp_dirs[0]).min() > 5.0
    random_feedback = Options(loss="cross_entropy", backward="fixed").checked()
    w_dirs, _, bp_dirs, _ = descent_directions("ar", net, x, t, random_feedback)
    assert angle(w_dirs[0], bp_dirs[0]).min() > 30.0


def test_learned_feedback_follows_the_transpose_of_the_weight_update():
    """Without decay, Kolen-Pollack keeps B − Wᵀ constant: both receive the same update."""
    opts = Options(hidden=(16, 8), steps=20, backward="learned", lr=1e-3).checked()
    _, net = train("ar", "digits", 1, 1, opts)
    start = init_net([64, 16, 8, 10], 1)
    for g, w, g0, w0 in zip(net.G, net.W[1:], start.G, start.W[1:], strict=True):
        assert np.abs(w - w0).max() > 1e-3
        np.testing.assert_allclose(g - w, g0 - w0, atol=1e-10)


@pytest.mark.parametrize(
    ("option", "value"),
    [("rate", 0.0), ("rate", 1.5), ("steps", 0), ("lr", -1.0), ("backward", "bogus"), ("batch", 0),
     ("hidden", (4, 0)), ("decay", 1.0), ("activation", "sigmoid"), ("loss", "hinge"), ("start", "middle")],
)  # fmt: skip
def test_bad_options_are_refused_naming_the_option(option, value):
    with pytest.raises(NeurodeployError) as err:
        learn_system("ar", "digits", seeds=1, epochs=1, **{option: value})
    assert err.value.where == option
    assert option in str(err.value)


def test_an_option_of_the_other_system_is_refused():
    with pytest.raises(NeurodeployError, match="fixed_prediction"):
        learn_system("ar", "digits", seeds=1, epochs=1, fixed_prediction=False)


def test_a_diverging_relaxation_raises_one_error_naming_the_rate():
    with pytest.raises(NeurodeployError) as err:
        learn_system("pc", "digits", seeds=1, epochs=1, hidden=(8,), steps=50, rate=1.0, init_gain=30.0,
                     fixed_prediction=False, loss="mse")  # fmt: skip
    assert err.value.where == "rate" and "diverged" in str(err.value)


def test_diverging_weights_raise_one_error_naming_the_learning_rate():
    with pytest.raises(NeurodeployError) as err:
        learn_system("ar", "digits", seeds=1, epochs=1, hidden=(8,), steps=5, lr=1e3, loss="mse")
    assert err.value.where == "lr"


@pytest.mark.parametrize("system", ["ar", "pc"])
def test_short_digits_run_learns_and_records_angles_per_layer_and_seed(system):
    res = learn_system(system, "digits", seeds=2, epochs=2, hidden=(32,), lr=2e-3)
    last = res.history[-1]
    assert set(last["gradient_angle"]) == {"W1", "W2"}
    assert all(len(v) == 2 for v in last["gradient_angle"].values())
    assert max(max(v) for v in last["gradient_angle"].values()) < 5.0
    assert min(last["test_accuracy"]) > 0.6 and len(last["val_accuracy"]) == 2
    assert "host float64" in res.provenance["all"]["where"]


def test_bp_reference_shares_init_and_batches_across_systems():
    runs = [learn_system(s, "digits", seeds=1, epochs=1, hidden=(16,), backward="bp") for s in ("ar", "pc")]
    assert runs[0].history[0]["test_accuracy"] == runs[1].history[0]["test_accuracy"]
    assert runs[0].history[0]["gradient_angle"]["W1"][0] < 1e-6


def test_angle_is_exact_for_small_angles_and_right_for_a_zero_update():
    u = np.array([[1.0, 0.0, 0.0]])
    tiny = np.radians(1e-6)
    assert angle(u, np.array([[np.cos(tiny), np.sin(tiny), 0.0]]))[0] == pytest.approx(1e-6, rel=1e-6)
    assert angle(u, -u)[0] == pytest.approx(180.0)
    assert angle(np.zeros((1, 3)), u)[0] == 90.0


# ------------------------------------------------------------------------------------------------ the chip
def _chip_net(system: str, seeds: int = 1, **options):
    from types import SimpleNamespace

    from neurodeploy.rules.systems.relaxation_chip import ARChipOptions, ChipNet, PCChipOptions

    opts = (ARChipOptions if system == "ar" else PCChipOptions)(**options).checked()
    return ChipNet(system, SimpleNamespace(kind="classification", n_in=5, n_out=3), opts, seeds, None), opts


def test_the_integer_relaxation_step_matches_a_hand_computed_case():
    from neurodeploy.rules.systems.relaxation_chip import SIGMOID, rate_factor, relax_step

    # a chain of single neurons: B1 = 64/128 = 0.5, B2 = −32/128 = −0.25; hidden 1 open (gate 1), hidden 2 shut
    B, gates = [np.array([[64]]), np.array([[-32]])], [np.array([[1]]), np.array([[0]])]
    state, clamp = [np.array([[16384]]), np.array([[8192]])], np.array([[8192]])  # 1.0, 0.5, e_L = 0.5 (2^-14)
    assert rate_factor(0.1) == (410, 410 / 4096)
    # AR (f′ in the drive): payloads (2^-11) are 16384 >> 3 = 2048, 2·0 (shut gate), 8192 >> 3 = 1024.
    # hidden 1: drive 0, 16384 + ((410·(0 − 16384) + 2048) >> 12) = 16384 − 1640
    # hidden 2: drive (1024·(−32) + 8) >> 4 = −2048, 8192 + ((410·(−2048 − 8192) + 2048) >> 12) = 8192 − 1025
    ar = relax_step("ar", state, clamp, gates, B, 410, True)
    assert [int(s[0, 0]) for s in ar] == [14744, 7167]
    # PC (f′ on the receiving side): hidden 1 gets 1024·64 >> 4 = 4096 through its open gate: 16384 − 1230;
    # hidden 2's drive is shut by its own gate: 8192 + ((410·(−8192) + 2048) >> 12) = 8192 − 820
    pc = relax_step("pc", state, clamp, gates, B, 410, True)
    assert [int(s[0, 0]) for s in pc] == [15154, 7372]
    # without f′ AR passes hidden 2's state although its gate is shut: hidden 1 gets (1024·64 + 8) >> 4 = 4096
    assert int(relax_step("ar", state, clamp, gates, B, 410, False)[0][0, 0]) == 15154
    # sigmoid table (units 2^-7): σ(0) = 64, σ(8) = 128, σ(−1) = 128·0.269 = 34.4 → 34
    assert (SIGMOID[128], SIGMOID[256], SIGMOID[128 - 16]) == (64, 128, 34)


@pytest.mark.parametrize("system", ["ar", "pc"])
@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_the_chip_relaxes_to_the_float_equilibrium_of_its_own_dequantised_network(system, rate):
    """400 steps: the chip's nodes (dequantised) against the float relaxation with the chip's weights, gates,
    start and clamped error, within 0.5 % of the largest node (the payloads' 2^-11 and each step's rounding)."""
    from neurodeploy.rules.systems.relaxation_chip import DELTA_OUT, STATE_BITS

    net, opts = _chip_net(system, 2, hidden=(12, 8), backward="fixed", rate=rate, steps=400)
    rng = np.random.default_rng(3)
    p_in = rng.integers(0, 64, (2, 6, 5))
    p, gates, o = net.forward(p_in, net.W)
    e_out = net.output_error(o, np.eye(3)[rng.integers(0, 3, (2, 6))])
    chip = [s / 2**STATE_BITS for s in net.relax(e_out, p, gates, opts.steps)]
    feedback = [np.swapaxes(b, 1, 2) / 128 for b in net.B]
    pre = [g.astype(float) for g in gates] + [np.zeros(e_out.shape)]
    post = [p_in / 64] + [-q / 16 for q in p[1:]] + [None]  # AR's chip nodes carry −x: they start at −h
    if system == "ar":
        ref = ar_relax(feedback, pre, post, e_out / 2**DELTA_OUT, steps=opts.steps, rate=net.rate)
    else:
        ref, _ = pc_relax([None] * 3, None, feedback, pre, post, e_out / 2**DELTA_OUT, steps=opts.steps, rate=net.rate,
                          loss="mse")  # fmt: skip
    for c, f in zip(chip, ref[:-1], strict=True):
        assert np.abs(f).max() > 0.3
        assert np.abs(c - f).max() < 0.005 * np.abs(f).max()


def test_the_engine_learns_w_and_its_transpose_b_as_computed_by_hand():
    """One presentation on W2 (hidden 2 → output 1, plus bias) and B1 (its transpose's Dense): y·p·2^-10 in the
    tag (the pre payload as x1 = p⁺, x2 = p⁻; B1 gets the error there); a move with y1 = 32 and the same rounding draws
    transposed leaves B1 = W2ᵀ."""
    from neurodeploy.rules.systems.relaxation_chip import Engine

    n = 2000
    net, opts = _chip_net("ar", n, hidden=(2,))
    net.sizes[-1] = 1
    net.W[1], net.B[0] = np.zeros((n, 1, 3), np.int64), np.zeros((n, 2, 1), np.int64)
    engine = Engine(net, opts)
    assert engine.rules[1][:2] == ("2^-7*y0*y2*x1 - 2^-7*y0*y2*x2 - 2^-7*y0*y3*x1 + 2^-7*y0*y3*x2 - y0*y1*t",
                                   "2^-5*y0*y1*t")  # fmt: skip
    p = [np.zeros((n, 5), np.int64), np.tile([32, 16], (n, 1))]  # hidden activities 2.0 and 1.0 (units 1/16)
    deltas = [np.zeros((n, 2), np.int64), np.full((n, 1), -64)]  # e_L = −0.5 (units 2^-7)
    engine.present(p, deltas, move=False)
    # W2: (−64·32) >> 10 = −2, (−64·16) >> 10 = −1, bias (payload 16) −1; B1: (32·−64) >> 10 = −2, −1, the same
    exact = (engine.W[1].tag_1 == [[-2, -1, -1]]).all((1, 2)) & (engine.B[0].tag_1 == [[-2], [-1]]).all((1, 2))
    assert exact.mean() > 0.99  # except where the engine's τ = 65535 trace decay took a unit (≈ 0.3 %)
    engine.present(p, [np.zeros((n, 2), np.int64), np.zeros((n, 1), np.int64)], move=True)
    w, b = engine.W[1].weights[exact], engine.B[0].weights[exact]
    np.testing.assert_array_equal(b, np.swapaxes(w[..., :-1], 1, 2))  # shared draws: B stays Wᵀ exactly
    # 2^-5·t per weight, stochastically rounded: −2/32 and −1/32 of a unit on average
    assert w[:, 0].mean(0) == pytest.approx([-2 / 32, -1 / 32, -1 / 32], abs=0.02)
    assert set(np.unique(w)) <= {-1, 0}


def test_a_profile_without_programmable_neurons_or_the_engine_is_refused_by_name():
    for system in ("ar", "pc"):
        with pytest.raises(NeurodeployError, match="lacks programmable neurons") as err:
            learn_system(system, "digits", variant="chip", profile="loihi1", seeds=1, epochs=1)
        assert "loihi2" in err.value.hint
    with pytest.raises(NeurodeployError, match="lacks the Loihi learning engine"):
        learn_system("ar", "digits", variant="chip", profile="spinnaker2", seeds=1, epochs=1)


@pytest.mark.parametrize(("system", "options", "match"), [
    ("ar", {"backward": "bp"}, "option backward"), ("ar", {"activation": "tanh"}, "option activation"),
    ("pc", {"fixed_prediction": False}, "option fixed_prediction"), ("pc", {"mismatch": -0.1}, "mismatch"),
    ("ar", {"decay": 1e-4}, "option decay"), ("ar", {"lr": 1e-4}, "option lr"),
])  # fmt: skip
def test_options_the_chip_cannot_hold_are_refused(system, options, match):
    with pytest.raises(NeurodeployError, match=match):
        learn_system(system, "digits", variant="chip", seeds=1, epochs=1, hidden=(8,), **options)


def test_mismatch_gives_each_seed_its_own_chip_and_breaks_the_exact_transpose():
    nominal, _ = _chip_net("ar", 2, hidden=(16, 16))
    varied, _ = _chip_net("pc", 2, hidden=(16, 16), mismatch=0.1)
    assert (nominal.B[0] == np.swapaxes(nominal.W[1][..., :-1], 1, 2)).all()
    ratio = varied.W[1][nominal.W[1] != 0] / nominal.W[1][nominal.W[1] != 0]
    assert 0.05 < np.std(ratio) < 0.2 and (varied.W[0][0] != varied.W[0][1]).any()
    assert (varied.B[0] != np.swapaxes(varied.W[1][..., :-1], 1, 2)).any()


@pytest.mark.parametrize("system", ["ar", "pc"])
def test_a_short_chip_run_learns_digits_and_says_what_ran_where(system):
    res = learn_system(system, "digits", variant="chip", seeds=1, epochs=1, hidden=(24,), lr=4e-3, steps=60)
    last = res.history[-1]
    assert last["test_accuracy"][0] > 0.6 and res.config["variant"] == "chip" and res.config["profile"] == "loihi2"
    assert set(last["gradient_angle"]) == {"W1", "W2"} and max(last["gradient_angle"]["W1"]) < 10
    assert last["backward_angle"]["W2"][0] < 2  # B = Wᵀ kept by the engine's transposed updates
    assert "learning engine" in res.provenance["learning"]["where"]
    assert res.provenance["scoring"]["where"] == "host float64"
    assert "chip" in res.provenance["relaxation"]["where"] and res.differences_from_paper
    assert res.engine["rules"]["B1"]["dw"] == res.engine["rules"]["W2"]["dw"]


@pytest.mark.parametrize("system", ["ar", "pc"])
def test_the_chip_network_runs_in_the_stepped_loop_as_the_integer_steps_by_hand(system):
    """chip_network is a CoreNetwork of programs and engine projections; two presentations through SteppedRun
    give the activities, errors, tags and moved weights of ChipNet's steps and Engine.present called by hand."""
    from neurodeploy.emulator.network import CoreNetwork
    from neurodeploy.emulator.stepped import SteppedRun
    from neurodeploy.rules.systems.relaxation_chip import Engine
    from neurodeploy.rules.systems.relaxation_chip_net import BiasColumn, WeightEngine, chip_network, present

    options = dict(hidden=(12, 8), backward="learned", steps=30, rate=0.3, lr=4e-3)
    hand, opts = _chip_net(system, 2, **options)
    chip, _ = _chip_net(system, 2, **options)
    by_hand, engine = Engine(hand, opts), Engine(chip, opts)
    net = chip_network(chip, engine)
    assert isinstance(net, CoreNetwork) and net.inputs == ["x", "target"]
    assert [p.name for p in net.populations if p.model == "program"] == ["bias0", "bias1", "bias2", "h1", "h2", "out"]
    plastic = {pr.name: type(pr.engine) for pr in net.projections if pr.engine is not None}
    assert plastic == {"b0": BiasColumn, "b1": BiasColumn, "b2": BiasColumn, "W1": WeightEngine, "W2": WeightEngine,
                       "B1": WeightEngine, "W3": WeightEngine, "B2": WeightEngine}  # fmt: skip
    run = SteppedRun(net, (2,))
    rng = np.random.default_rng(5)
    start = [w.copy() for w in chip.W]
    for move in (False, True):
        p_in, target = rng.integers(0, 64, (2, 5)), np.eye(3)[rng.integers(0, 3, 2)]
        p, deltas = present(run, chip, p_in, target, move)
        q, gates, o = hand.forward(p_in[:, None], hand.W)  # a batch of one sample
        e_out = hand.output_error(o, target[:, None])
        d = hand.errors(hand.relax(e_out, q, gates, opts.steps), gates, e_out)
        q, d = [x[:, 0] for x in q], [x[:, 0] for x in d]
        for got, want in zip(p + deltas, q + d, strict=True):
            np.testing.assert_array_equal(got, want)
        assert all(np.abs(x).max() > 0 for x in d)
        by_hand.present(q, d, move)
        hand.W = [pl.weights for pl in by_hand.W]
        hand.B = [pl.weights for pl in by_hand.B]
    assert run.t == 2 * (opts.steps + 1)
    for mine, theirs in zip(engine.W, by_hand.W, strict=True):
        np.testing.assert_array_equal(mine.tag_1, theirs.tag_1)
        np.testing.assert_array_equal(mine.weights, theirs.weights)
    assert any((mine.weights != w0).any() for mine, w0 in zip(engine.W, start, strict=True))
    for l, theirs in enumerate(by_hand.B):
        np.testing.assert_array_equal(run.weights(f"B{l + 1}"), theirs.weights)
    np.testing.assert_array_equal(run.weights("W1"), by_hand.W[0].weights[..., :-1])

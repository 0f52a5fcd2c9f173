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
def test_chip_variant_is_not_built_yet(system):
    with pytest.raises(NeurodeployError, match="not built yet"):
        learn_system(system, "digits", variant="chip", seeds=1, epochs=1)


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

"""SAL in a spiking sampling network: the float sampler, the STDP kernel, the chip neuron and engine rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurodeploy.emulator.plasticity import PlasticDense
from neurodeploy.errors import NeurodeployError
from neurodeploy.rules.systems import learn_system
from neurodeploy.rules.systems.sampling import (
    Options,
    boltzmann,
    kl_from_counts,
    reciprocal_angle,
    run_float,
    stdp_delta,
)
from neurodeploy.rules.systems.sampling_chip import (
    PROB_BITS,
    REFUSAL_HINT,
    TABLE,
    chip_neuron_step,
    engine_rule,
    learning_rule,
    onset_offset_update,
    table_index,
)


def test_float_sampler_with_symmetric_weights_samples_the_boltzmann_distribution() -> None:
    w = np.array([[0.0, 0.8, -0.6], [0.8, 0.0, 0.5], [-0.6, 0.5, 0.0]])
    b = np.array([-0.4, 0.3, -0.2])
    energy = 0.5 * np.einsum("ki,ij,kj->k", _states(3), w, _states(3)) + _states(3) @ b
    p = boltzmann(w[None], b[None])
    assert p[0] == pytest.approx(np.exp(energy) / np.exp(energy).sum())
    copies = 4  # four independent chains side by side, pooled
    _, counts = run_float(np.repeat(w[None], copies, 0), np.repeat(b[None], copies, 0), 30_000,
                          np.random.default_rng(3), Options(neurons=3))  # fmt: skip
    kl = kl_from_counts(p[0], counts.sum(0))
    assert kl < 0.004, kl
    # the same network with one weight of a reciprocal pair changed samples something else
    skewed = w.copy()
    skewed[2, 0] = 0.6
    _, counts = run_float(np.repeat(skewed[None], copies, 0), np.repeat(b[None], copies, 0), 30_000,
                          np.random.default_rng(3), Options(neurons=3))  # fmt: skip
    assert kl_from_counts(p[0], counts.sum(0)) > 5 * kl


def _states(n: int) -> np.ndarray:
    return np.array([[(k >> (n - 1 - i)) & 1 for i in range(n)] for k in range(1 << n)], dtype=float)


def _pair_delta(t_pre: int, t_post: int, a_causal: float, a_anticausal: float, tau: float = 10.0) -> float:
    """ΔB_10 (post 1, pre 0) summed over a run in which neuron 0 spikes at t_pre and neuron 1 at t_post."""
    trace, total = np.zeros(2), np.zeros((2, 2))
    for t in range(max(t_pre, t_post) + 5):
        spikes = np.array([t == t_pre, t == t_post])
        trace = trace * math.exp(-1 / tau) + spikes
        total += stdp_delta(trace, trace, spikes, a_causal, a_anticausal)
    return float(total[1, 0])


def test_stdp_kernel_on_a_spike_pair_gives_the_hand_computed_change() -> None:
    # pre (0) at t = 2, post (1) at t = 5: causal, Δt = 3 -> a_c e^(-3/10)
    assert _pair_delta(2, 5, -1.0, 1.0) == pytest.approx(-0.7408182206817179)
    # post at t = 2, pre at t = 5: anti-causal -> a_a e^(-3/10)
    assert _pair_delta(5, 2, -1.0, 1.0) == pytest.approx(0.7408182206817179)
    # the Hebbian half alone sees only the anti-causal pairing
    assert _pair_delta(2, 5, 0.0, 1.0) == 0.0
    # a pair in the same step counts in both halves and cancels for SAL
    assert _pair_delta(4, 4, -1.0, 1.0) == 0.0


@settings(max_examples=25, deadline=None)
@given(dt=st.integers(0, 40), causal=st.booleans(), a=st.floats(-2, 2))
def test_stdp_kernel_is_exponential_in_the_delay(dt: int, causal: bool, a: float) -> None:
    first, second = 1, 1 + dt
    t_pre, t_post = (first, second) if causal else (second, first)
    got = _pair_delta(t_pre, t_post, a if causal else 0.0, 0.0 if causal else a)
    assert got == pytest.approx(a * math.exp(-dt / 10), abs=1e-12)


def test_reciprocal_angle_is_zero_for_symmetric_and_180_for_antisymmetric_weights() -> None:
    w = np.array([[0.0, 1.0, -2.0], [1.0, 0.0, 0.5], [-2.0, 0.5, 0.0]])
    anti = np.triu(w) - np.triu(w).T
    assert reciprocal_angle(w[None])[0] == pytest.approx(0.0, abs=1e-6)
    assert reciprocal_angle(anti[None])[0] == pytest.approx(180.0, abs=1e-6)


# --------------------------------------------------------------------------- chip


def test_sigmoid_table_follows_the_logistic_function() -> None:
    v = np.arange(-600, 601)  # u − offset in units of 1/64
    p = TABLE[table_index(v)] / 2**PROB_BITS
    exact = 1 / (1 + np.exp(-v / 64))
    # v is rounded to 1/16: the error is at most half a step times the largest slope, plus the 16-bit rounding
    assert np.max(np.abs(p - exact)) <= 0.25 * (1 / 32) + 2**-16
    assert TABLE[0] == round(2**16 / (1 + math.exp(8))) and TABLE[-1] == round(2**16 / (1 + math.exp(-8)))


@pytest.mark.parametrize("v", [-300, -64, 0, 37, 150])
def test_chip_neuron_fires_with_the_table_probability(v: int) -> None:
    rng = np.random.default_rng(5)
    trials = 200_000
    zeta = np.zeros(trials, dtype=np.int64)
    draw = rng.integers(0, 2**PROB_BITS, trials)
    new, spikes = chip_neuron_step(zeta, np.full(trials, v + 147), np.full(trials, 147), draw, 10)
    p = TABLE[table_index(np.array(v))] / 2**PROB_BITS
    assert abs(spikes.mean() - p) < 4 * math.sqrt(p * (1 - p) / trials) + 1e-9
    assert np.all(new[spikes] == 10) and np.all(new[~spikes] == 0)
    # a refractory neuron (counter >= 2) never fires and counts down
    new, spikes = chip_neuron_step(np.full(4, 5), np.full(4, 10_000), np.zeros(4), np.zeros(4), 10)
    assert not spikes.any() and np.all(new == 4)


def test_engine_rules_hold_the_float_learning_rate_exactly() -> None:
    assert engine_rule(Options()) == "2^-7*y1*x0 - 2^-7*x1*y0"
    assert engine_rule(Options(rule="hebbian")) == "2^-7*y1*x0 - 2^-7*u0*w"
    assert engine_rule(Options(rule="none")) is None


def _plastic(rule: str, w0: int, batch: int = 1) -> PlasticDense:
    weights = np.array([[0, 0], [w0, 0]])  # B_10: post 1, pre 0
    return PlasticDense(weights, learning_rule(Options(rule=rule), 7), batch_shape=(batch,), draws="hardware")


def _run_pair(plastic: PlasticDense, t_pre: int, t_post: int, rounding: float | None = None) -> None:
    for t in range(1, 11):  # one learning epoch of t_ref = 10 steps
        pre = np.array([t == t_pre, False])
        post = np.array([False, t == t_post])
        plastic.step(pre, post, rounding=rounding)


def test_chip_stdp_on_a_same_step_pair_is_the_exact_engine_integer() -> None:
    # traces at the spikes are exactly the impulse 64, so every number is hand-computable
    sal = _plastic("sal", 40)
    _run_pair(sal, 3, 3, rounding=0.0)  # -64 + 64 = 0 in 2^-7 units: no change at all
    assert sal.weights[0, 1, 0] == 40
    for rounding, expected in ((0.1, 41), (0.5, 40)):
        hebb = _plastic("hebbian", 40)
        _run_pair(hebb, 3, 3, rounding=rounding)  # +64 (y1·x0) − 40 (decay w) = 24/128 = 0.1875 of a unit
        assert hebb.weights[0, 1, 0] == expected


@pytest.mark.parametrize(("t_pre", "t_post", "sign"), [(2, 5, -1), (5, 2, 1)])
def test_chip_stdp_on_a_delayed_pair_matches_the_kernel(t_pre: int, t_post: int, sign: int) -> None:
    plastic = _plastic("sal", 0, batch=4000)
    _run_pair(plastic, t_pre, t_post)
    dw = plastic.weights[:, 1, 0]
    # the trace after 3 stochastically rounded decays of 64 is 46, 47 or 48: |Δw| = trace/128 rounds to 0 or 1
    assert set(np.unique(dw)) <= {0, sign}
    # on average the engine gives the float kernel: 64·2^-7·e^(-3/10) weight units
    assert dw.mean() == pytest.approx(sign * 0.5 * math.exp(-0.3), abs=0.03)


# --------------------------------------------------------------------------- learn_system


def test_sal_aligns_b_and_lowers_kl_end_to_end() -> None:
    res = learn_system("sampling", seeds=2, epochs=3, steps_per_epoch=8000)
    first, last = res.history[0], res.history[-1]
    assert len(last["kl"]) == 2 and set(last["weight_angle"]) == {"reciprocal"}
    assert np.all(np.array(last["weight_angle"]["reciprocal"]) < np.array(first["weight_angle"]["reciprocal"]) - 15)
    none = learn_system("sampling", seeds=2, epochs=1, steps_per_epoch=8000, rule="none")  # B stays where it began
    assert np.mean(last["kl"]) < np.mean(none.history[-1]["kl"])
    assert res.provenance["all"]["where"].startswith("host float64")


def test_on_the_chip_sal_lowers_the_kl_below_the_hebbian_half_and_aligns_b() -> None:
    # a short run at 4× the default η (2^-5, which the engine holds exactly): SAL's KL falls and ends well below
    # the Hebbian half's, and B turns towards the forward half's transpose
    short = {"variant": "chip", "seeds": 2, "epochs": 3, "steps_per_epoch": 3000, "lr": 2**-5}
    sal = learn_system("sampling", **short)
    hebbian = learn_system("sampling", rule="hebbian", **short)
    kl = np.array([h["kl"] for h in sal.history])
    assert kl[-1].mean() < 0.6 * kl[0].mean()
    assert kl[-1].mean() < 0.6 * np.mean(hebbian.history[-1]["kl"])
    angle = np.array([h["weight_angle"]["reciprocal"] for h in sal.history])
    assert np.all(angle[-1] < angle[0] - 10)
    assert "psp_residual" not in sal.history[-1]  # the default PSP is B z of the current B: nothing to drift


def test_an_onset_offset_psp_keeps_a_weight_change_made_while_it_was_on() -> None:
    # post 0, pre 1: the PSP starts with B = 40, B learns to 43 while it is on, and it ends
    dendrite = np.zeros((1, 2), dtype=np.int64)
    on, off = np.array([[0, 1]]), np.array([[0, 0]])
    dendrite = onset_offset_update(dendrite, np.array([[[0, 40], [0, 0]]]), on, off)
    assert dendrite.tolist() == [[40, 0]]  # the float PSP B z is 40 too
    dendrite = onset_offset_update(dendrite, np.array([[[0, 43], [0, 0]]]), on, on)  # refractory: no message
    assert dendrite.tolist() == [[40, 0]]  # the float PSP is now 43
    dendrite = onset_offset_update(dendrite, np.array([[[0, 43], [0, 0]]]), off, on)
    assert dendrite.tolist() == [[-3, 0]]  # the float PSP is 0; −ΔB stays in the dendrite for good
    res = learn_system("sampling", variant="chip", seeds=1, epochs=2, steps_per_epoch=2000, chip_psp="onset-offset")
    assert 0 < res.history[0]["psp_residual"][0] < res.history[1]["psp_residual"][0]  # it adds up over the run
    assert "onset/offset" in res.provenance["synapses"]["how"]


def test_chip_run_records_the_same_history_and_its_differences() -> None:
    res = learn_system("sampling", variant="chip", seeds=2, epochs=2, steps_per_epoch=500, mismatch=0.1)
    assert res.variant == "chip" and res.config["profile"] == "loihi2"
    assert len(res.history) == 2 and len(res.history[-1]["kl"]) == 2
    assert res.differences_from_paper and "learning engine" in res.provenance["stdp"]["where"]
    assert res.provenance["kl"]["where"] == "host float64"
    assert "bit-exact" not in str(res.provenance)  # this run draws per trace and per synapse, not as Lava does
    assert any("the same sum" in d for d in res.differences_from_paper)  # the PSP delivery is listed


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"rule": "oja"}, "rule"),
        ({"neurons": 1}, "neurons"),
        ({"lr": -1.0}, "lr"),
        ({"steps_per_epoch": 10}, "steps_per_epoch"),
        ({"mismatch": 0.1}, "mismatch"),  # paper variant
        ({"task": "digits"}, "task"),
        ({"variant": "chip", "lr": 0.01}, "lr"),
        ({"variant": "chip", "profile": "spinnaker2"}, "spinnaker2"),
        ({"variant": "chip", "profile": "loihi1"}, "programmable neurons"),
        ({"colour": "red"}, "colour"),
        ({"chip_psp": "ideal"}, "chip_psp"),
        ({"variant": "chip", "a_anticausal": 0.0, "a_causal": 0.0}, "no term left"),
    ],
)
def test_bad_options_raise_one_clear_error(kwargs: dict, where: str) -> None:
    with pytest.raises(NeurodeployError, match=where) as err:
        learn_system("sampling", seeds=1, epochs=1, **{"steps_per_epoch": 100, **kwargs})
    assert err.value.hint  # every refusal says what to do


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("neurons", 5.0),
        ("neurons", True),
        ("t_ref", 10.5),
        ("steps_per_epoch", "20000"),
        ("seed", False),
        ("steps_per_epoch", 1e4),
    ],
)
def test_integer_options_refuse_floats_bools_and_text(name: str, value: object) -> None:
    with pytest.raises(NeurodeployError, match=f"option {name}=.* must be an integer") as err:
        learn_system("sampling", seeds=1, epochs=1, **{name: value})
    assert err.value.hint.startswith(f"give {name} as a whole number, e.g. {name}=")


@pytest.mark.parametrize(("name", "value"), [("lr", "0.01"), ("tau_stdp", True), ("mismatch", None)])
def test_number_options_refuse_text_and_bools(name: str, value: object) -> None:
    with pytest.raises(NeurodeployError, match=f"option {name}=.* must be a number") as err:
        learn_system("sampling", seeds=1, epochs=1, **{name: value})
    assert f"{name}=" in err.value.hint


@pytest.mark.parametrize("profile", ["spinnaker2", "loihi1", "brainscales2"])
def test_a_chip_refusal_names_the_profile_and_the_variant_to_use(profile: str) -> None:
    with pytest.raises(NeurodeployError, match=f"profile {profile!r} cannot run") as err:
        learn_system("sampling", variant="chip", profile=profile, seeds=1, epochs=1, steps_per_epoch=100)
    assert err.value.hint == REFUSAL_HINT and "profile='loihi2'" in REFUSAL_HINT and "variant='paper'" in REFUSAL_HINT


def test_a_runaway_learning_rate_raises_one_error_naming_lr() -> None:
    with pytest.raises(NeurodeployError, match="lower lr"):
        learn_system("sampling", seeds=1, epochs=2, steps_per_epoch=1000, rule="hebbian", hebbian_decay=0.0, lr=1.0)

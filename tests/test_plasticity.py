"""The learning engine without Lava: rule strings, the product arithmetic, rounding, traces, epochs.

The accumulator is checked against a slow per-synapse reference written from the equations of
loihi-fixed-point.md §8.3 (plus Lava's int32 multiply-accumulate, read in its applier); Lava itself is
the reference in tests/test_plasticity_lava.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodeploy.emulator.learning_rule import (
    ACC_MAX,
    ACC_MIN,
    WIDTHS,
    Factor,
    Product,
    ProductSeries,
    RuleError,
    parse_rule,
    u_dependency,
)
from neurodeploy.emulator.plasticity import (
    LearningRule,
    PlasticDense,
    TraceSpec,
    add_impulse,
    apply_accumulator,
    clip_variable,
    decay_trace,
    round_accumulator,
    trace_step,
    variable_range,
)
from neurodeploy.errors import NeurodeployError

# --------------------------------------------------------------------------- parsing


def test_parse_examples():
    ps = parse_rule("2^-2*x1*y0 - 2^-2*y1*x0")
    assert ps.target == "dw" and ps.decimate_exponent is None
    assert ps.products == [
        Product("y0", 1, -2, (Factor("x1"),)),
        Product("x0", -1, -2, (Factor("y1"),)),
    ]
    ps = parse_rule("u0*t*y2 - 2^-4*u0*t", "dw")
    assert ps.decimate_exponent == 0
    assert ps.products == [Product("u0", 1, 0, (Factor("t"), Factor("y2"))), Product("u0", -1, -4, (Factor("t"),))]
    ps = parse_rule("3*2^-3*u0*x1*y3 - 3*2^-3*u0*x1*y2", "dt")
    assert [(p.mantissa, p.exponent) for p in ps.products] == [(3, -3), (-3, -3)]
    # Lava's own STDPLoihi string (float_to_literal output, with spaces and bracketed literals)
    ps = parse_rule("(1) * 2 ^ -2 * (-1) * x0 * y1 +(1) * 2 ^ -2 * (1) * y0 * x1")
    assert ps == parse_rule("-2^-2*x0*y1 + 2^-2*y0*x1")
    # brackets, sign factors, constants; a negated variable moves its sign to the scale
    ps = parse_rule("x0*(w-3)*sgn(t+2)*(3-y1)")
    assert ps.products == [Product("x0", -1, 0, (Factor("w", -3), Factor("t", 2, True), Factor("y1", -3)))]
    # Lava's normalisation: m halved while even and |m| > 7
    assert (parse_rule("16*x0").products[0].mantissa, parse_rule("16*x0").products[0].exponent) == (4, 2)
    assert (parse_rule("-8*y0").products[0].mantissa, parse_rule("-8*y0").products[0].exponent) == (-4, 1)
    assert (parse_rule("-8*2^8*y0").products[0].mantissa, parse_rule("-8*2^8*y0").products[0].exponent) == (-8, 8)
    # a second x0/y0 is a 1-bit factor, as in Lava
    assert parse_rule("x0*y0*w").products[0] == Product("x0", 1, 0, (Factor("y0"), Factor("w")))
    assert parse_rule("x0*y1").operand_keys == {"x0", "y1_x0"}
    assert parse_rule("u2*x1*w").operand_keys == {"u", "x1_u", "w"}


@st.composite
def products(draw) -> Product:
    dep = draw(st.sampled_from(["x0", "y0", "u0"]))
    exp = draw(st.integers(-7, 8))
    mant = draw(st.integers(-8 if exp == 8 else -7, 7))  # -8 with e < 8 normalises to -4·2^(e+1)
    factors = []
    for _ in range(draw(st.integers(0, 3))):
        sym = draw(st.sampled_from(sorted(WIDTHS)))
        const = draw(st.one_of(st.just(0), st.integers(-256, 255)))
        sign = sym in "wdt" and draw(st.booleans())
        factors.append(Factor(sym, const, sign))
    return Product(dep, mant, exp, tuple(factors))


@settings(max_examples=200, deadline=None)
@given(st.lists(products(), min_size=1, max_size=4), st.sampled_from(["dw", "dd", "dt"]))
def test_parse_round_trip(prods, target):
    ps = ProductSeries(target, prods, 0 if any(p.dependency == "u0" for p in prods) else None)
    text = str(ps)
    assert parse_rule(text, target) == ps
    assert parse_rule(text.replace("*", " * ").replace("+", " + "), target) == ps


@pytest.mark.parametrize(
    ("rule", "term", "message"),
    [
        ("x0*z1", "'z1'", "unknown symbol"),
        ("x0y1", "'x0y1'", "unknown symbol"),
        ("2x1*y0", "'x1'", "expected '*'"),
        ("x1*y1", "'x1*y1'", "no dependency"),
        ("9*x0", "'9*x0'", "mantissa in [-8, 7]"),
        ("x0*2^-8*2", "'x0*2^-8*2'", "exponent in [-7, 8]"),  # Lava does not normalise upwards
        ("x0*2^-9", "'x0*2^-9'", "exponent in [-7, 8]"),
        ("2^10*x0*y1", "'2^10*x0*y1'", "exponent in [-7, 8]"),
        ("(-x1)*x0", "'-x1'", "negated variable"),
        ("x0 + ", "'+'", "ends after"),
        ("x0 - -y1", "'-'", "two signs"),
        ("u10*x1", "'u10'", "one digit"),
        ("x0*(x1*2)", "'*'", "unexpected"),
        ("sgn(x1)*x0", "'x1'", "sgn() of"),
        ("x0*(w+300)", "300", "outside"),
        ("x0*(w+2^-1)", "1*2^-1", "not an integer"),
        ("u0*x1 + u1*x1", "[0, 1]", "different K"),
        ("x0*u0", "'u0'", "second dependency"),
        ("x0*3^2", "3", "powers of two"),
        ("x0*()", "(...)", "empty"),
        ("x0*(w+1", "')'", "missing"),
        ("x0*(x1+w)", "two vars", "holds"),
        ("x0*(u0+1)", "'u0'", "brackets"),
        ("x0*y1.5", "'.'", "unexpected character"),
        ("x0*07", "'07'", "leading zero"),
        ("x0*", "'*'", "must follow"),
        ("", "", "empty rule"),
    ],
)
def test_parse_errors_name_the_term(rule, term, message):
    with pytest.raises(RuleError) as err:
        parse_rule(rule)
    text = str(err.value)
    assert message in text and term in text, text
    assert "column" in text and isinstance(err.value, NeurodeployError)


def test_parse_bad_target():
    with pytest.raises(RuleError, match="target"):
        parse_rule("x0", "dx")


# --------------------------------------------------------------------------- accumulate vs a scalar reference


def reference(ps: ProductSeries, ops: dict[str, np.ndarray], start: np.ndarray, index: tuple[int, ...]) -> int:
    """One synapse, plain Python ints, from the facts-file equations (§8.3)."""

    def val(key: str, fallback: str) -> int:
        arr = ops[key] if key in ops else ops[fallback]
        return int(np.broadcast_to(arr, start.shape)[index])

    z0 = int(start[index]) * 128
    acc = z0
    for p in ps.products:
        dep = p.dependency_key
        prod = val(dep, dep)
        width_sum = 4
        for f in p.factors:
            v = val(f"{f.symbol}_{dep}", f.symbol) + f.constant
            if f.is_sign:
                v = (v > 0) - (v < 0)
            w = WIDTHS[f.symbol]
            width_sum += w
            prod *= min(max(v, -(2**w)), 2**w - 1)
        prod *= p.mantissa
        prod = (prod + 2**31) % 2**32 - 2**31  # Lava multiplies in int32
        prod >>= max(0, width_sum - 15)
        prod <<= p.exponent + 7
        prod = min(max(prod, -(2**15) - 1), 2**15 - 1)
        acc = min(max(acc + prod, -(2**15) - 1), 2**15 - 1)
    return acc - z0


RULES = [
    "2^-2*x1*y0 - 2^-2*y1*x0",
    "u0*t*y2 - 2^-4*u0*t",
    "3*2^-3*u0*x1*y3 - 3*2^-3*u0*x1*y2",
    "7*2^8*x0*w*t*d*y1 - 5*2^-7*y0*(x2-100)*sgn(w+3) + u0*(3-w)",
    "-8*2^8*y0*x1*y2*y3 + 7*2^8*x0*y0*x1*x2",
    "2^-7*u0*w*d*t + 2^8*x0*y0",
]


@st.composite
def operands(draw):
    batch = draw(st.sampled_from([(), (2,)]))
    n_post, n_pre = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    wide = draw(st.booleans())  # also out-of-range values, to exercise the factor clips
    rng = np.random.default_rng(seed)
    syn = (*batch, n_post, n_pre)
    lo, hi = (-300, 600) if wide else (0, 128)
    ops = {"x0": rng.random((*batch, 1, n_pre)) < 0.5, "y0": rng.random((*batch, n_post, 1)) < 0.5,
           "u": np.int64(rng.integers(0, 2))}  # fmt: skip
    for tr in ("x1", "x2"):
        ops[f"{tr}_x0"] = rng.integers(lo, hi, (*batch, 1, n_pre))
        ops[f"{tr}_y0"] = rng.integers(lo, hi, syn)
        ops[f"{tr}_u"] = rng.integers(lo, hi, (*batch, 1, n_pre))
    for tr in ("y1", "y2", "y3"):
        ops[f"{tr}_x0"] = rng.integers(lo, hi, syn)
        ops[f"{tr}_y0"] = rng.integers(lo, hi, (*batch, n_post, 1))
        ops[tr] = rng.integers(lo, hi, (*batch, n_post, 1))  # "_u" left out: the plain key is the fallback
    for v in ("w", "d", "t"):
        ops[v] = rng.integers(-700 if wide else -257, 700 if wide else 256, syn)
    start = rng.integers(-257, 256, syn)
    return ops, start


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operands(), st.sampled_from(RULES))
def test_accumulate_matches_reference(case, rule):
    ops, start = case
    ps = parse_rule(rule)
    got = ps.accumulate(ops, start=start)
    assert got.dtype == np.int64 and got.shape == start.shape
    for index in np.ndindex(start.shape):
        assert got[index] == reference(ps, ops, start, index), (rule, index)
    final = start * 128 + got
    assert final.min() >= ACC_MIN and final.max() <= ACC_MAX


def test_accumulate_widths_and_shifts():
    """x1·y1 (7 + 7 + 4 bits) loses 3 bits, trace·w (7 + 9 + 4) 5 bits; the scale then shifts by e + 7."""
    one = {"x0": 1, "y0": 1, "u": 1}
    ps = parse_rule("2^-7*x0*x1*y1")
    assert ps.products[0].shift == 3
    assert int(ps.accumulate({**one, "x1": 100, "y1": 100})) == 10000 >> 3
    assert int(parse_rule("x0*x1*y1").accumulate({**one, "x1": 100, "y1": 100})) == ACC_MAX  # product saturates
    ps = parse_rule("2^-7*u0*x1*w")
    assert ps.products[0].shift == 5
    assert int(ps.accumulate({**one, "x1": 127, "w": -256})) == (127 * -256) >> 5
    assert int(ps.accumulate({**one, "x1": 127, "w": -256}, start=-256)) == ACC_MIN + 256 * 128
    assert int(parse_rule("2^-2*y0*x1").accumulate({"y0": 1, "x1": 10})) == 10 * 32  # 2.5 in 2^-7 units
    assert int(parse_rule("x0*x1").accumulate({"x0": 0, "x1": 10})) == 0  # gated by the dependency
    with pytest.raises(KeyError, match="y1_x0"):
        parse_rule("x0*y1").accumulate({"x0": 1})


def test_u_dependency():
    assert [u_dependency(t, 2, 1) for t in (2, 4, 6, 8)] == [0, 1, 0, 1]
    assert all(u_dependency(t, 1, 0) for t in range(1, 9))


# --------------------------------------------------------------------------- rounding and clamps


def test_round_accumulator_unbiased_and_exact_at_integers():
    rng = np.random.default_rng(0)
    acc = np.array([-300, -129, -128, -1, 0, 1, 64, 127, 128, 200, 32767])
    draws = rng.random((20000, acc.size))
    mean = round_accumulator(acc, draws).mean(axis=0)
    np.testing.assert_allclose(mean, acc / 128, atol=0.02)
    whole = acc[acc % 128 == 0]
    assert np.array_equal(round_accumulator(whole, draws[0, : whole.size]), whole // 128)
    # scalar draw = Lava's one draw for all synapses: u = 0 rounds every fraction up, u -> 1 down
    assert np.array_equal(round_accumulator(acc, 0.0), -(-acc // 128))
    assert np.array_equal(round_accumulator(acc, 1 - 1e-12), acc // 128)


def test_round_accumulator_shared_draws_for_transposed_pairs():
    """Kolen-Pollack: W (n_post, n_pre) and B (n_pre, n_post) given the same draws get identical updates."""
    rng = np.random.default_rng(1)
    acc_w = rng.integers(-5000, 5000, (3, 6, 4))
    acc_b = acc_w.swapaxes(-1, -2).copy()
    u = rng.random(acc_w.shape)
    dw = round_accumulator(acc_w, u)
    db = round_accumulator(acc_b, u.swapaxes(-1, -2))
    assert np.array_equal(dw, db.swapaxes(-1, -2))
    z = rng.integers(-200, 200, acc_w.shape)
    new_w = apply_accumulator(z, acc_w, u, "weight")
    new_b = apply_accumulator(z.swapaxes(-1, -2), acc_b, u.swapaxes(-1, -2), "weight")
    assert np.array_equal(new_w, new_b.swapaxes(-1, -2))
    other = round_accumulator(acc_b, rng.random(acc_b.shape))  # independent draws: the pair drifts apart
    assert not np.array_equal(dw, other.swapaxes(-1, -2))


def test_clip_ranges():
    assert variable_range("weight") == (-256, 255)
    assert variable_range("weight", "excitatory") == (0, 255)
    assert variable_range("weight", "inhibitory") == (-255, 0)
    assert variable_range("weight", "mixed", weight_bits=6) == (-64, 63)
    assert variable_range("weight", "excitatory", weight_bits=4) == (0, 15)
    assert variable_range("delay") == (0, 255)
    assert variable_range("tag") == (-257, 255)
    z = np.array([-1000, -256, -1, 0, 300])
    assert clip_variable(z, "weight").tolist() == [-256, -256, -1, 0, 255]
    assert clip_variable(z, "weight", "inhibitory").tolist() == [-255, -255, -1, 0, 0]
    assert clip_variable(z, "tag").tolist() == [-257, -256, -1, 0, 255]
    assert clip_variable(z, "delay").tolist() == [0, 0, 0, 0, 255]
    with pytest.raises(ValueError):
        variable_range("weight", "both")
    # sign clamp before rounding: an excitatory weight pushed below zero ends at 0, never at -1
    assert int(apply_accumulator(1, -300, 0.0, "weight", "excitatory")) == 0
    assert int(apply_accumulator(10, 64, 0.0, "weight")) == 11 and int(apply_accumulator(10, 64, 0.9, "weight")) == 10


# --------------------------------------------------------------------------- traces


def test_trace_decay_statistics():
    rng = np.random.default_rng(2)
    x = np.full(200_000, 100)
    for tau in (2.0, 10.0, 37.5):
        got = decay_trace(x, TraceSpec(0, tau), rng.random(x.shape))
        assert abs(got.mean() - 100 * math.exp(-1 / tau)) < 0.01
        assert set(np.unique(got)) <= {math.floor(100 * math.exp(-1 / tau)), math.floor(100 * math.exp(-1 / tau)) + 1}
    assert not decay_trace(x[:5], TraceSpec(5, 0), 0.5).any()  # tau = 0: Lava's replay zeroes the trace
    assert np.array_equal(decay_trace(x[:5], TraceSpec(5, math.inf), 0.0), x[:5])


@pytest.mark.parametrize("impulse", [16.0, 16.25, 20.3, 18.6, 0.75])
def test_trace_impulse_statistics(impulse):
    """Hardware mode rounds the impulse without bias; Lava's 7-bit draw rounds up with probability 2·frac."""
    spec = TraceSpec(impulse, math.inf)
    x = np.full(200_000, 10)
    frac = spec.impulse_frac / 256
    hw = trace_step(x, True, spec, np.random.default_rng(3), mode="hardware")
    assert abs(hw.mean() - (10 + math.floor(impulse) + frac)) < 0.01  # the fraction is stored in 1/256
    assert abs(frac - impulse % 1) <= 1 / 512
    lava_means = [trace_step(x[:1], True, spec, np.random.default_rng(s), mode="lava")[0] for s in range(4000)]
    assert abs(np.mean(lava_means) - (10 + math.floor(impulse) + min(2 * frac, 1))) < 0.03
    assert trace_step(x[:3], False, spec, np.random.default_rng(0)).tolist() == [10, 10, 10]


def test_trace_clips_at_127_and_lava_draw_bias():
    spec = TraceSpec(100.5, math.inf)
    assert add_impulse(np.array([100, 20]), np.array([True, True]), spec, 0).tolist() == [127, 121]
    # r7 is in 0...127, so a fraction of 0.5 (128/256) always rounds up in Lava
    assert all(add_impulse(np.array([0]), True, spec, r)[0] == 101 for r in range(128))
    assert add_impulse(np.array([0]), True, spec, 200)[0] == 100  # an 8-bit draw can round down


def test_trace_spec_validation():
    with pytest.raises(NeurodeployError):
        TraceSpec(-1, 5)
    assert (TraceSpec(20.3).impulse_int, TraceSpec(20.3).impulse_frac) == (20, 77)


# --------------------------------------------------------------------------- PlasticDense

STDP = dict(dw="2^-2*y0*x1 - 2^-2*x0*y1", x1=TraceSpec(30, 8), y1=TraceSpec(30, 8))


def _pairs(lag: int, steps: int = 60, period: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """One pre and one post neuron; the post spikes ``lag`` steps after the pre (negative: before)."""
    pre, post = np.zeros((steps, 1), bool), np.zeros((steps, 1), bool)
    for t0 in range(5, steps - 5, period):
        pre[t0], post[t0 + lag] = True, True
    return pre, post


@pytest.mark.parametrize("draws", ["lava", "hardware"])
@pytest.mark.parametrize("t_epoch", [1, 2, 4])
def test_stdp_causal_potentiates_anticausal_depresses(draws, t_epoch):
    changes = {}
    for lag in (2, -2):
        pd = PlasticDense(np.array([[40]]), LearningRule(**STDP, t_epoch=t_epoch, rng_seed=3), draws=draws)
        pre, post = _pairs(lag)
        for t in range(len(pre)):
            pd.step(pre[t], post[t])
        changes[lag] = int(pd.weights[0, 0]) - 40
    assert changes[2] > 10 and changes[-2] < -10, changes


def test_plastic_dense_batch_equals_separate_runs():
    """Leading axes are independent copies (same draws in lava mode, as separate Lava runs with one seed)."""
    rng = np.random.default_rng(4)
    rule = LearningRule(**STDP, t_epoch=2, rng_seed=9)
    w0 = rng.integers(-100, 100, (3, 5))
    pre, post = rng.random((30, 2, 5)) < 0.3, rng.random((30, 2, 3)) < 0.3
    batch = PlasticDense(w0, rule, batch_shape=(2,))
    singles = [PlasticDense(w0, rule) for _ in range(2)]
    for t in range(30):
        assert np.array_equal(batch.forward(pre[t]), np.stack([s.forward(pre[t, i]) for i, s in enumerate(singles)]))
        batch.step(pre[t], post[t])
        for i, s in enumerate(singles):
            s.step(pre[t, i], post[t, i])
    assert np.array_equal(batch.weights, np.stack([s.weights for s in singles]))
    assert batch.epochs == 15 and batch.weights.shape == (2, 3, 5)


def test_forward_truncates_and_shifts():
    pd = PlasticDense(np.array([[3, -3, 5]]), LearningRule(dw="x0"), weight_exp=-1)
    assert pd.weights.tolist() == [[2, -4, 4]]  # 8-bit mixed: one low bit dropped (floor)
    assert pd.forward(np.array([1, 1, 1])).tolist() == [1]  # (2 - 4 + 4) >> 1
    pd = PlasticDense(np.array([[-7]]), LearningRule(dw="x0"), sign_mode="inhibitory", num_weight_bits=6)
    assert pd.weights.tolist() == [[-4]]  # |w| truncated


def test_three_factor_reward_gates_weight_change():
    rule = LearningRule(dw="u0*t*y2", dt="2^-2*y0*x1 - 2^-2*x0*y1 - 2^-3*u0*t", x1=TraceSpec(30, 8), three_factor=True)
    assert rule.y2 == TraceSpec(0, 65535)
    pre, post = _pairs(2)
    for reward in (0, 30):
        pd = PlasticDense(np.array([[40]]), rule)
        for t in range(len(pre)):
            pd.step(pre[t], post[t], {"y2": reward})
        assert (int(pd.weights[0, 0]) - 40 > 0) == (reward > 0)
        assert int(pd.tag_1[0, 0]) != 0
    with pytest.raises(ValueError, match="third_factor"):
        PlasticDense(np.array([[1]]), LearningRule(**STDP)).step([1], [1], {"y2": 1})


def test_learning_rule_validation():
    with pytest.raises(RuleError, match="no learning rule"):
        LearningRule()
    with pytest.raises(NeurodeployError, match="t_epoch"):
        LearningRule(dw="x0", t_epoch=64)
    with pytest.raises(NeurodeployError, match="y1"):
        LearningRule(dw="x0*y1", y1=TraceSpec(5, 5), three_factor=True)
    with pytest.raises(RuleError, match="different K"):
        LearningRule(dw="u1*w", dt="u2*t")
    with pytest.raises(RuleError, match="dd rule"):
        LearningRule(dw="x0", dd="x0*q")


def test_shared_rounding_argument():
    """step(rounding=u) fixes the epoch's draws: W and B = Wᵀ given u and uᵀ stay exact transposes.

    Integer impulses without decay make the traces deterministic, so only the weight rounding is random.
    """
    rng = np.random.default_rng(5)
    pre_spec, post_spec = TraceSpec(3, math.inf), TraceSpec(2, math.inf)
    rule = LearningRule(dw="2^-7*u0*x1*y1 - 2^-7*u0*w", x1=pre_spec, y1=post_spec, t_epoch=2)
    rule_b = LearningRule(dw="2^-7*u0*x1*y1 - 2^-7*u0*w", x1=post_spec, y1=pre_spec, t_epoch=2)  # sides swap
    w0 = rng.integers(-50, 50, (3, 4)) * 2
    pre, post = rng.random((40, 4)) < 0.4, rng.random((40, 3)) < 0.4
    for shared in (True, False):
        fwd = PlasticDense(w0, rule, draws="hardware")
        bwd = PlasticDense(w0.T, rule_b, draws="hardware")
        for t in range(40):
            u = rng.random((3, 4))
            fwd.step(pre[t], post[t], rounding=u if shared else None)
            bwd.step(post[t], pre[t], rounding=u.T if shared else None)
        assert np.array_equal(fwd.weights, bwd.weights.T) == shared
        assert not np.array_equal(fwd.weights, w0)

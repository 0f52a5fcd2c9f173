"""Lava 0.10 (fixed_pt LearningDense) as the reference for the learning engine.

Three levels: the parser against Lava's ProductSeries, the product arithmetic against Lava's
``LearningRuleApplierBitApprox`` (called directly, no runtime), and whole plastic networks (RingBuffer
-> LearningDense -> LIF, LIF spikes back as the learning engine's post spikes) against
``PlasticDense`` + our LIF. PlasticDense in ``draws="lava"`` mode re-creates Lava's generators (trace
streams seeded rng_seed ... rng_seed + 3, synaptic rounding seeded 2) and draws in Lava's order, so
weights, tags, traces and post spikes are asserted identical at every step, not just statistically.
The network helpers live in benchmarks/plasticity_vs_lava.py (loaded from its path below).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodeploy.emulator.learning_rule import WIDTHS, Factor, Product, ProductSeries, RuleError, parse_rule

HAVE_LAVA = importlib.util.find_spec("lava") is not None
pytestmark = [pytest.mark.lava, pytest.mark.skipif(not HAVE_LAVA, reason="lava-nc is not installed (make venv)")]

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "plasticity_vs_lava.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("plasticity_vs_lava", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("plasticity_vs_lava", module)
    spec.loader.exec_module(module)
    module.lava_modules()  # the Python 3.11 compatibility step, before any lava import below
    return module


@pytest.fixture(scope="module")
def lava_parse(bench):
    from lava.magma.core.learning.product_series import ProductSeries as LavaSeries
    from lava.magma.core.learning.symbolic_equation import SymbolicEquation

    def parse(text: str, target: str = "dw"):
        return LavaSeries(SymbolicEquation(target, text))

    return parse


def _same(ours: ProductSeries, lava) -> bool:
    if ours.decimate_exponent != lava.decimate_exponent or len(ours.products) != len(lava.products):
        return False
    for p, q in zip(ours.products, lava.products, strict=True):
        factors = [(f.state_var, f.const or 0, f.is_sgn) for f in q.factors]
        ours_p = (p.dependency_key, p.mantissa, p.exponent + 7, list(p.factors))
        if ours_p != (q.dependency, q.s_mantissa, q.s_exp, factors):
            return False
    return True


RULES = [
    "2^-2*x1*y0 - 2^-2*y1*x0",
    "u0*t*y2 - 2^-4*u0*t",
    "3*2^-3*u0*x1*y3 - 3*2^-3*u0*x1*y2",
    "(1) * 2 ^ -2 * (-1) * x0 * y1 +(1) * 2 ^ -2 * (1) * y0 * x1",
    "x0*(w-3)*sgn(t+2)*(3-y1) + (-3+x2)*y0 - 2^3*u1*sgn(d)",
    "7*2^8*x0*w*t*d*y1 - 5*2^-7*y0*(x2-100)*sgn(w+3) + u1*(3-w)",
    "-8*2^8*y0*x1*y2*y3 + 7*2^8*x0*y0*x1*x2 + 24*x0 - 2^-7*x0*(y0+1)",
    "2^-7*u0*w*d*t + 2^8*x0*y0 + 16*2^-3*x0 - (2)*(-3*2^-2)*y0",
]


def test_parser_matches_lava_examples(lava_parse):
    for rule in RULES:
        assert _same(parse_rule(rule), lava_parse(rule)), rule


@st.composite
def products(draw) -> Product:
    dep = draw(st.sampled_from(["x0", "y0", "u2"]))
    exp = draw(st.integers(-7, 8))
    mant = draw(st.integers(-8 if exp == 8 else -7, 7))
    factors = []
    for _ in range(draw(st.integers(0, 3))):
        sym = draw(st.sampled_from(sorted(WIDTHS)))
        factors.append(Factor(sym, draw(st.integers(-256, 255)), sym in "wdt" and draw(st.booleans())))
    return Product(dep, mant, exp, tuple(factors))


@settings(max_examples=150, deadline=None)
@given(st.lists(products(), min_size=1, max_size=4))
def test_parser_matches_lava_generated(lava_parse, prods):
    text = str(ProductSeries("dw", prods, 2 if any(p.dependency == "u2" for p in prods) else None))
    assert _same(parse_rule(text), lava_parse(text)), text


BAD = ["x0*z1", "x1*y1", "9*x0", "x0*2^-9", "x0 + ", "sgn(x1)*x0", "x0*(x1+w)", "x0*u0", "x0 - -y1",
       "", "u0*x1 + u1*x1", "x0*07", "(x0)*y1", "x0*(u0+1)", "x0*()", "x0*3^2"]  # fmt: skip


@pytest.mark.parametrize("rule", BAD)
def test_parser_rejects_what_lava_rejects(lava_parse, rule):
    with pytest.raises(Exception):  # noqa: B017 - Lava fails with ValueError, AttributeError or SyntaxError
        lava_parse(rule)
    with pytest.raises(RuleError):
        parse_rule(rule)


# Strings Lava accepts but reads differently from what they say; neurodeploy rejects them (RuleError).
MISREAD = {
    "(-x1)*x0": "x1*x0",  # the sign inside the brackets is dropped
    "x0*(x1*2)": "x0*(x1+2)",  # '*' in brackets is taken for '+'
    "x0*y12": "x0*y1*2",  # juxtaposition: y1 times 2
    "u10*x1": "u1*0*x1",  # one-digit K, then the literal 0
    "(y0)*x0*x1": "x0*x1",  # a lone dependency in brackets disappears
    "u0*u0*x1": "u0*x1",  # the second uK is ignored
    "sgn(-w)*x0": "sgn(w)*x0",  # the sign inside sgn() is dropped
}


@pytest.mark.parametrize(("rule", "lava_reads"), sorted(MISREAD.items()))
def test_lava_misreadings_are_rejected(lava_parse, rule, lava_reads):
    assert _same(parse_rule(lava_reads), lava_parse(rule))  # Lava accepts it, as lava_reads
    with pytest.raises(RuleError):
        parse_rule(rule)


# --------------------------------------------------------------------------- arithmetic vs Lava's applier


@st.composite
def applier_case(draw):
    n_post, n_pre = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    wide = draw(st.booleans())
    lo, hi = (-300, 600) if wide else (0, 128)
    syn = (n_post, n_pre)
    ops = {"x0": rng.random((1, n_pre)) < 0.5, "y0": rng.random((n_post, 1)) < 0.5, "u": int(rng.integers(0, 2))}
    for tr in ("x1", "x2", "y1", "y2", "y3"):
        for dep in ("x0", "y0", "u"):
            own = (tr[0] == "x") == (dep == "x0") or dep == "u"  # x at x0 / u: per pre; y at y0 / u: per post
            shape = ((1, n_pre) if tr[0] == "x" else (n_post, 1)) if own else syn
            ops[f"{tr}_{dep}"] = rng.integers(lo, hi, shape)
    for v in ("w", "d", "t"):
        ops[v] = rng.integers(-700 if wide else -257, 700 if wide else 256, syn)
    return ops, rng.integers(-257, 256, syn), draw(st.sampled_from(RULES))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(applier_case())
def test_accumulate_matches_lava_applier(lava_parse, case):
    from lava.magma.core.learning.learning_rule_applier import LearningRuleApplierBitApprox

    ops, start, rule = case
    args = {"shape": start.shape, "weights": ops["w"].astype(np.int32), "tag_2": ops["d"].astype(np.int32),
            "tag_1": ops["t"].astype(np.int32), **{k: v for k, v in ops.items() if k not in "wdt"}}  # fmt: skip
    want = LearningRuleApplierBitApprox(lava_parse(rule)).apply(start.astype(np.int32) << 7, **args)
    got = (start << 7) + parse_rule(rule).accumulate(ops, start=start)
    assert np.array_equal(got, want), rule


# --------------------------------------------------------------------------- whole plastic networks


def _assert_identical(bench, case, t_epoch: int) -> dict:
    lava, _ = bench.run_lava(case)
    ours, _ = bench.run_emulator(case, bench.from_lava_rule(case.lava_rule()), draws="lava")
    for name in bench.RECORDED:
        if not np.array_equal(ours[name], lava[name]):
            t = int(np.argwhere(np.any((ours[name] != lava[name]).reshape(case.steps, -1), axis=1))[0, 0])
            pytest.fail(f"{case.name}: {name} first differs at step {t}: ours {ours[name][t]} lava {lava[name][t]}")
    m = bench.compare(ours, lava, t_epoch)
    assert m["identical_w"] == m["identical_tag"] == m["identical_traces"] == m["identical_spikes"] == 1.0
    assert ours["spikes"].any() and not np.array_equal(ours["weights"][-1], ours["weights"][0])  # it learned
    return ours


@pytest.mark.parametrize("t_epoch", [1, 3])
def test_stdp_matches_lava(bench, t_epoch):
    """Lava's STDPLoihi with fractional impulses: every step identical (weights, traces, spikes)."""
    ours = _assert_identical(bench, bench.stdp_case(16, 8, 60, t_epoch, seed=1, p=0.2), t_epoch)
    assert np.any(np.diff(ours["weights"], axis=0) % 2)  # learned weights leave the truncated (even) grid


@pytest.mark.parametrize("t_epoch", [1, 4])
def test_three_factor_matches_lava(bench, t_epoch):
    """Lava's RewardModulatedSTDP (Loihi3FLearningRule): y1 and the reward y2 as graded per-neuron inputs."""
    ours = _assert_identical(bench, bench.rstdp_case(16, 8, 60, t_epoch, seed=2, p=0.2), t_epoch)
    assert ours["tag_1"].any()


@pytest.mark.parametrize(
    ("t_epoch", "sign_mode", "num_weight_bits", "weight_exp", "seed"),
    [(2, "mixed", 8, 0, 1), (3, "excitatory", 6, -1, 2), (1, "inhibitory", 7, 1, 3), (4, "mixed", 5, 2, 4)],
)
def test_rule_features_match_lava(bench, t_epoch, sign_mode, num_weight_bits, weight_exp, seed):
    """dw, dd and dt together: sgn, constants, uK, tau = 0, int32-wrapping w·t·d·y1, sign modes, weight bits."""
    lv = bench.lava_modules()
    rng = np.random.default_rng(seed)
    n_pre, n_post, steps = 10, 6, 48

    def rule():
        return lv["Loihi2FLearningRule"](
            dw="2^-3*x0*(y1-10) + 3*2^-4*y0*x2 - 2^-5*u1*w*sgn(t+1) + 2^-2*y0*x1*y3 - 7*2^-7*x0*w*t*d*y1",
            dd="x0*y2 - 2^-1*u1*d + y0*(3-x1)",
            dt="2*y0*(x1+5) - 2^-2*u1*t*y1 + x0*y0*w - 2^-3*x0*sgn(d-2)*y3",
            x1_impulse=20.3, x1_tau=8, x2_impulse=35.5, x2_tau=0, y1_impulse=12.25, y1_tau=6,
            y2_impulse=40.9, y2_tau=20, y3_impulse=7.75, y3_tau=3, t_epoch=t_epoch, rng_seed=seed,
        )  # fmt: skip

    lo, hi = {"mixed": (-200, 200), "excitatory": (0, 255), "inhibitory": (-40, 0)}[sign_mode]
    lif = {"du": 3000, "dv": 300, "vth": 30}
    if sign_mode == "inhibitory":
        lif.update(vth=60, bias_mant=4000)  # inhibitory input only: a bias makes the post neurons fire
    case = bench.Case(
        f"features T={t_epoch} {sign_mode}", rng.integers(lo, hi + 1, (n_post, n_pre)),
        rng.random((steps, n_pre)) < 0.35, rule, lif=lif, weight_exp=weight_exp,
        num_weight_bits=num_weight_bits, sign_mode=sign_mode,
        tags={"tag_1": rng.integers(-100, 100, (n_post, n_pre)), "tag_2": rng.integers(0, 60, (n_post, n_pre))},
    )  # fmt: skip
    ours = _assert_identical(bench, case, t_epoch)
    assert ours["tag_2"].any() and ours["tag_1"].any()

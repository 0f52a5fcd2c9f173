"""User-defined local rules: strings and functions on loihi2 and ideal, locality, engine limits."""

from __future__ import annotations

import keyword

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurodeploy
from neurodeploy.compiler import learning as lp
from neurodeploy.compiler.learning_custom import SYMBOLS, compile_rule
from neurodeploy.compiler.normalize import normalize
from neurodeploy.emulator.learning_rule import parse_rule
from neurodeploy.errors import NeurodeployError
from neurodeploy.hw_profiles import get
from neurodeploy.learning.tasks import get_task
from neurodeploy.rules import CHIP_RULES, LocalRule
from neurodeploy.studies.chip_learning import builtin_graph

KP_FORWARD = "dt = y0*d*y3 - y0*d*y2"
KP_FEEDBACK = "dt = -y0*(x1-64)*y1*y0*y0"  # the built-in KP's B product, padded to W's widths
KP_HALF = LocalRule("kp-half", KP_FORWARD, "dt = -2^-1*y0*(x1-64)*y1", summary="KP, B learns at half W's rate")


@pytest.fixture(scope="module")
def small_data() -> tuple[np.ndarray, ...]:
    """1000 Yin-Yang training samples: an epoch in seconds."""
    t = get_task("yinyang")
    return t.x_train[:1000], t.y_train[:1000], t.x_test, t.y_test


def _net(rule: object, profile: str = "loihi2", **opt: object) -> lp.LearningNetwork:
    ir = normalize(builtin_graph([4, 16, 16, 3]), dt=1e-3, reset="zero")
    return lp.build(ir, rule, get(profile), lp.LearnOptions(init_gain=1.0, **opt))


def _run(rule: object, profile: str, data: tuple, epochs: int = 2) -> object:
    return neurodeploy.learn(rule, profile, data, hidden=[16], seeds=1, epochs=epochs, init_gain=0.5)


def test_user_kp_reproduces_the_builtin_on_loihi2(small_data: tuple) -> None:
    mine = _run(LocalRule("my-kp", KP_FORWARD, KP_FEEDBACK), "loihi2", small_data, epochs=1)
    builtin = _run("kp", "loihi2", small_data, epochs=1)
    assert {n: (r["dt"], r["dw"]) for n, r in mine.engine["rules"].items()} == {
        n: (r["dt"], r["dw"]) for n, r in builtin.engine["rules"].items()
    }
    assert mine.final["test_accuracy"] == builtin.final["test_accuracy"]
    assert mine.engine["custom_rule"]["forward"] == KP_FORWARD


@pytest.mark.parametrize("profile", ["loihi2", "ideal"])
def test_kp_variant_learns_on_both_profiles(small_data: tuple, profile: str) -> None:
    res = _run(KP_HALF, profile, small_data)
    assert res.final["test_accuracy"]["mean"] > 0.55  # chance is about 0.35
    assert res.engine["numerics"] == ("loihi" if profile == "loihi2" else "float")
    if profile == "loihi2":  # B's scale is half of W's, times 2^-2 for its 2 bits less shift (7+7+4 vs 9+7+4)
        rules = res.engine["rules"]
        w, b = (parse_rule(rules[n]["dt"], "dt").products[0] for n in ("input->if0", "if1=>if0"))
        assert -b.mantissa * 2.0**b.exponent == pytest.approx(w.mantissa * 2.0**w.exponent / 8)


def test_function_form_runs_in_float_on_ideal(small_data: tuple) -> None:
    def forward(pre_trace: np.ndarray, third_factor: np.ndarray) -> np.ndarray:
        return -np.tanh(third_factor) * pre_trace  # not a sum of products: fine in float

    def feedback(pre_trace: np.ndarray, post_trace: np.ndarray) -> np.ndarray:
        return -pre_trace * post_trace

    res = _run(LocalRule("tanh-kp", forward, feedback), "ideal", small_data)
    assert res.final["test_accuracy"]["mean"] > 0.55
    with pytest.raises(NeurodeployError, match="not a sum of products.*engine string"):
        _net(LocalRule("tanh-kp", forward, feedback), "loihi2")


def test_function_form_translates_to_the_engine_terms_of_its_string() -> None:
    as_fn = LocalRule("fn-kp", lambda pre_trace, third_factor: -third_factor * pre_trace,
                      lambda pre_trace, post_trace: -0.5 * pre_trace * post_trace)  # fmt: skip
    a, b = _net(as_fn), _net(KP_HALF)
    for name, rule in a.engine.items():
        assert sorted(rule.dt.replace(" - ", " + -").split(" + ")) == sorted(
            b.engine[name].dt.replace(" - ", " + -").split(" + ")
        )
        assert rule.realised_lr == b.engine[name].realised_lr


def test_user_kp_matches_the_builtin_in_float() -> None:
    mine, builtin = _net(LocalRule("my-kp", KP_FORWARD, KP_FEEDBACK), "ideal"), _net("kp", "ideal")
    rng = np.random.default_rng(0)
    x = (rng.random((32, 16, 4)) < 0.3).astype(np.int8)
    y = rng.integers(0, 3, 16)
    runs = [lp_run(n) for n in (mine, builtin)]
    for run in runs:
        act = run.present(x, np.eye(3)[y] * run.lnet.schedule.active)
        run.learn(act)
    for pr in mine.core.projections:
        np.testing.assert_allclose(pr.weight, builtin.projection(pr.name).weight, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(mine.feedback[0].weight, builtin.feedback[0].weight, rtol=1e-12, atol=1e-15)
    assert runs[0].tags.keys() == runs[1].tags.keys()


def lp_run(lnet: lp.LearningNetwork) -> object:
    from neurodeploy.emulator.learning import LearningRun

    return LearningRun(lnet, seed=0)


NONLOCAL = ["W_up", "W_T", "B_other", "loss", "global_error", "output_error", "err_out", "w_up_T", "target"]
_ALLOWED = set(SYMBOLS["forward"]) | set(SYMBOLS["graded"]) | {"sgn"}
names = st.one_of(
    st.sampled_from(NONLOCAL),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True).filter(
        lambda n: (
            n not in _ALLOWED
            and not keyword.iskeyword(n)
            and n not in ("pre_trace", "post_trace", "weight", "tag", "third_factor")
        )  # fmt: skip
    ),
)


@settings(max_examples=25, deadline=None)
@given(name=names, part=st.sampled_from(["forward", "feedback"]))
def test_nonlocal_names_are_refused_by_name(name: str, part: str) -> None:
    good = {"forward": KP_FORWARD, "feedback": KP_FEEDBACK}
    body = f"dt = y0*{name}*y1"
    rule = LocalRule("probe", body if part == "forward" else good["forward"], body if part == "feedback" else None)
    with pytest.raises(NeurodeployError) as err:
        compile_rule(rule, get("loihi2"), "loihi")
    text = str(err.value)
    assert repr(name) in text and "probe" in text and f"{part} rule" in text and "may read" in text


@settings(max_examples=15, deadline=None)
@given(name=names.filter(lambda n: not n.startswith("__")))
def test_nonlocal_function_arguments_are_refused_by_name(name: str) -> None:
    fn = eval(f"lambda pre_trace, {name}: pre_trace * {name}")  # noqa: S307 - a generated test function
    for profile, numerics in (("loihi2", "loihi"), ("ideal", "float")):
        with pytest.raises(NeurodeployError, match=f"reads '{name}'"):
            compile_rule(LocalRule("probe", fn), get(profile), numerics)


def test_arrays_from_outside_the_synapse_are_refused() -> None:
    w_up = np.ones((16, 16))
    rule = LocalRule("transport", lambda pre_trace, third_factor: pre_trace * third_factor * w_up.mean())
    with pytest.raises(NeurodeployError, match="reads 'w_up'.*outside the synapse"):
        compile_rule(rule, get("ideal"), "float")


@pytest.mark.parametrize(
    ("forward", "feedback", "match"),
    [
        ("dt = y0*d*y3 - u9*t", None, "reads 'u9'.*belongs to the compiler"),
        ("dt = x0*y1", None, "reads 'x0'.*bAP"),
        ("dt = y0*x1*y3", None, "reads 'x1'.*not delivered to forward"),
        (KP_FORWARD, "dt = y0*(x1-64)*y2", "reads 'y2'.*not delivered to feedback"),
        (lambda pre_trace: pre_trace, lambda pre_trace, third_factor: pre_trace, "reads 'third_factor'"),
        ("dd = y0*d", None, "assigns 'dd'"),
        ("dt = y0*(d-3)*y3", None, "offsets"),
        ("dt = y0*d*y3 +", None, "the rule ends"),
    ],
)
def test_refusals_name_the_quantity(forward: object, feedback: object, match: str) -> None:
    with pytest.raises(NeurodeployError, match=match):
        compile_rule(LocalRule("bad", forward, feedback), get("loihi2"), "loihi")


def test_engine_limits_are_refused_by_name() -> None:
    many = "; ".join(f"dt = y0*d*{s}" for s in ("y1", "y2", "y3", "w", "t", "y1*y2", "y1*y3", "y2*y3"))
    with pytest.raises(NeurodeployError, match="8 products.*limit of 8.*max_products"):
        compile_rule(LocalRule("many", many), get("loihi2"), "loihi")
    with pytest.raises(NeurodeployError, match="int32 multiply-accumulate limit of 31 bits"):
        compile_rule(LocalRule("wide", "dt = y0*d*y1*y2*w"), get("loihi2"), "loihi")
    with pytest.raises(NeurodeployError, match=r"below the engine's range.*e in \[-7, 8\].*4-bit exponent"):
        _net(LocalRule("tiny", "dt = 2^-7*y0*d*y3 - 2^-7*y0*d*y2"))
    with pytest.raises(NeurodeployError, match=r"above the engine's range"):
        _net(LocalRule("huge", "dt = 7*2^8*y0*d*y3*w"), lr=0.5)
    assert _net(LocalRule("tiny", "dt = 2^-7*y0*d*y3 - 2^-7*y0*d*y2"), "ideal").custom is not None  # float: no grid


def test_rule_objects_are_checked_on_construction() -> None:
    with pytest.raises(NeurodeployError, match="built-in rule"):
        LocalRule("kp", KP_FORWARD)
    with pytest.raises(NeurodeployError, match="source='chain'"):
        LocalRule("x", KP_FORWARD, KP_FEEDBACK, source="error")
    with pytest.raises(NeurodeployError, match="rule must be a rule's name or a LocalRule"):
        neurodeploy.learn(3.0, "loihi2")
    with pytest.raises(NeurodeployError, match="cannot run learning rule 'dfa-like'"):
        _net(LocalRule("dfa-like", KP_FORWARD, source="error"), "xylo-audio2")


@pytest.mark.parametrize("rule", CHIP_RULES)
def test_builtin_rules_build_unchanged(rule: str) -> None:
    lnet = _net(rule)
    assert lnet.custom is None and lnet.rule == rule
    assert all(r.update is None for r in lnet.engine.values())
    scale = {"fa": "5*2^-4", "kp": "5*2^-3"}.get(rule)  # KP clips |δ| to 63: a δ LSB twice as large, twice the scale
    if scale:
        fwd = lnet.engine["input->if0"]
        assert fwd.dt == f"{scale}*y0*d*y3 - {scale}*y0*d*y2 - u9*t" and fwd.dw == "2^-4*u9*t"


def test_cli_reads_a_rule_file(tmp_path, small_data: tuple) -> None:
    import json
    import subprocess
    import sys

    rule = tmp_path / "kp-half.toml"
    rule.write_text(f'forward = "{KP_FORWARD}"\nfeedback = "dt = -2^-1*y0*(x1-64)*y1"\n', encoding="utf-8")
    data = tmp_path / "data.npz"
    x_tr, y_tr, x_te, y_te = small_data
    np.savez(data, x_train=x_tr[:400], y_train=y_tr[:400], x_test=x_te[:200], y_test=y_te[:200])
    cmd = [sys.executable, "-m", "neurodeploy.cli", "learn", "--rule", str(rule), "--profile", "ideal"]
    args = ["--data", str(data), "--epochs", "1", "--seeds", "1", "--hidden", "8", "--json"]
    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert report["config"]["rule"] == "kp-half"
    bad = tmp_path / "bad.toml"
    bad.write_text('forward = "dt = y0*d*W_up"\n', encoding="utf-8")
    proc = subprocess.run([*cmd[:5], str(bad), *args], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2 and "reads 'W_up'" in " ".join(proc.stderr.split()), proc.stderr

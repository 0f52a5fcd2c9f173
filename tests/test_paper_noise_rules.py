"""PAL and SAL as their papers write them (``neurodeploy.rules.paper``): the noise statistics, the feedback
fixed points, depth, and what the results say about where they ran."""

from __future__ import annotations

import numpy as np
import pytest

from neurodeploy.errors import NeurodeployError
from neurodeploy.rules.paper import PaperConfig, learn_paper, trainer_class
from neurodeploy.rules.paper.pal import PALOptions
from neurodeploy.rules.paper.sal import SALOptions
from neurodeploy.studies.chip_learning import data_task


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, ...]:
    """Three separable clusters in 4 features: small enough for a few seconds per run."""
    rng = np.random.default_rng(3)
    centres = rng.random((3, 4))
    y = rng.integers(0, 3, 360)
    x = np.clip(centres[y] + 0.08 * rng.standard_normal((360, 4)), 0, 1)
    return x[:300], y[:300], x[300:], y[300:]


def _trainer(rule: str, data: tuple, hidden: tuple[int, ...], opts: object, **cfg: object):
    task = data_task(data)
    config = PaperConfig(rule=rule, seeds=2, hidden=hidden, **cfg).checked()
    return trainer_class(rule)(config, task, None, opts), task


def test_ou_noise_has_the_published_stationary_variance() -> None:
    """ξ ← ξ + (1/τ)(√τ σ w − ξ) (dt = 1) is stationary at variance σ²/(2 − 1/τ) ≈ σ²/2."""
    o = PALOptions(sigma=0.3, tau_xi=10.0)
    rng = np.random.default_rng(0)
    xi = np.zeros(20000)
    kick = np.sqrt(o.tau_xi) * o.sigma / o.tau_xi
    samples = []
    for t in range(400):
        xi = xi + kick * rng.standard_normal(xi.shape) - xi / o.tau_xi
        if t > 100:
            samples.append(xi.copy())
    var = np.var(np.concatenate(samples))
    assert var == pytest.approx(o.sigma**2 / (2 - 1 / o.tau_xi), rel=0.05)


def test_pal_feedback_settles_at_its_fixed_point_while_w_stands_still(blobs: tuple) -> None:
    """With the forward weights frozen (lr → 0), B forgets its random start and settles at the paper's
    stationary value E[φ'_l φ'_{l+1}ᵀ] ∘ Wᵀ, far closer than the start."""
    tr, task = _trainer("pal", blobs, (12,), PALOptions(lr_bw=0.5, alpha=0.004), lr=1e-9)
    probe = (task.x_val, task.y_val)
    before = np.mean(tr.alignment(probe)["fixed_point_angle"]["B1"])
    for _ in range(8):  # 2400 steps: B averages over its last 1 / (η_bw α) = 500
        for i in range(0, 300, 20):
            tr.step(np.arange(i, i + 20), 1e-9)
    after = tr.alignment(probe)
    assert before > 60.0
    assert np.mean(after["fixed_point_angle"]["B1"]) < 15.0, after["fixed_point_angle"]
    # the fixed point differs from Wᵀ only by the neurons' slopes: the floor is what ∠(B, Wᵀ) can reach
    assert np.mean(after["weight_angle"]["B1"]) <= np.mean(after["fixed_point_floor"]["B1"]) + 15.0


def test_slope_weighted_decay_moves_pals_fixed_point_onto_w_transpose(blobs: tuple) -> None:
    """Weighting the decay with the same slopes the noise passes through, α φ'_l ∘ B ∘ φ'_{l+1}, cancels
    them entry by entry: on the same frozen network, B settles near Wᵀ itself, well inside the plain
    decay's floor, which is what ∠(B, Wᵀ) is bounded by there."""
    angles = {}
    for reg in ("plain", "slope"):
        opts = PALOptions(lr_bw=0.5, alpha=0.004, regularizer=reg)
        tr, task = _trainer("pal", blobs, (12, 12), opts, lr=1e-9, init_gain=1.5)  # steep: slopes spread
        for _ in range(8):
            for i in range(0, 300, 20):
                tr.step(np.arange(i, i + 20), 1e-9)
        angles[reg] = tr.alignment((task.x_val, task.y_val))
    plain, slope = angles["plain"], angles["slope"]
    for b in ("B1", "B2"):
        floor = np.mean(plain["fixed_point_floor"][b])
        assert floor > 15.0, floor  # the neurons' slopes differ, so Wᵀ is out of the plain decay's reach
        assert np.mean(plain["weight_angle"][b]) > floor - 3.0
        assert np.mean(slope["weight_angle"][b]) < floor - 7.0, (b, slope["weight_angle"][b], floor)
        assert np.max(slope["fixed_point_floor"][b]) < 1e-3  # its fixed point is Wᵀ itself


def test_pal_refuses_an_unknown_regularizer(blobs: tuple) -> None:
    with pytest.raises(NeurodeployError, match="regularizer"):
        _trainer("pal", blobs, (8,), PALOptions(regularizer="l1"))


def test_pal_without_feedback_learning_keeps_its_random_b(blobs: tuple) -> None:
    """η_bw = 0 is the paper's control: the noise runs, B stays where it started."""
    tr, _ = _trainer("pal", blobs, (8,), PALOptions(lr_bw=0.0))
    start = tr.feedback[0].copy()
    tr.step(np.arange(20), 0.1)
    np.testing.assert_array_equal(tr.feedback[0], start)


@pytest.mark.parametrize("rule", ["pal", "sal"])
@pytest.mark.parametrize("hidden", [(8, 8), (8, 8, 8)])
def test_paper_noise_rules_run_at_depth(blobs: tuple, rule: str, hidden: tuple[int, ...]) -> None:
    """One feedback pathway per layer: every B is reported, and the network learns above chance."""
    opts = {"pattern_steps": 20} if rule == "sal" else {}
    res = learn_paper(rule, blobs, seeds=2, epochs=2, hidden=hidden, **opts)
    assert set(res.final["weight_angle"]) == {f"B{k + 1}" for k in range(len(hidden))}
    assert np.isfinite(res.final["weight_angle"]["B1"]["mean"])
    assert res.final["test_accuracy"]["mean"] > 0.5
    assert res.variant == "paper" and res.differences_from_paper == []
    assert res.config["profile"] == "ideal" and "host float64" in res.provenance["all"]["where"]


def test_sal_anti_hebbian_half_removes_bs_own_echo(blobs: tuple) -> None:
    """B drives the lower layer, so upper-before-lower pairs grow with B itself: the causal (anti-Hebbian)
    half acts as B's decay. Without it B only grows; with it B turns towards Wᵀ and stays bounded."""
    both, task = _trainer("sal", blobs, (10,), SALOptions(lr_b=0.01, pattern_steps=40), lr=1e-9)
    hebb, _ = _trainer("sal", blobs, (10,), SALOptions(lr_b=0.01, pattern_steps=40, a_causal=0.0), lr=1e-9)
    probe = (task.x_val, task.y_val)
    start = np.mean(both.alignment(probe)["weight_angle"]["B1"])
    for tr in (both, hebb):
        for _ in range(3):
            for i in range(0, 300, 20):
                tr.step(np.arange(i, i + 20), 1e-9)
    a_both, a_hebb = both.alignment(probe), hebb.alignment(probe)
    assert np.mean(a_both["weight_angle"]["B1"]) < start - 20.0
    assert np.mean(a_both["norm_ratio"]["B1"]) < np.mean(a_hebb["norm_ratio"]["B1"])


def test_paper_variant_refuses_chip_options_and_unknown_rules(blobs: tuple) -> None:
    from neurodeploy.errors import NeurodeployError

    with pytest.raises(NeurodeployError, match="noise_rate"):
        learn_paper("pal", blobs, epochs=1, noise_rate=0.2)
    with pytest.raises(NeurodeployError, match="no paper variant"):
        learn_paper("eprop", blobs, epochs=1)


def test_a_diverging_paper_run_stops_with_the_learning_rate_to_lower() -> None:
    """A regression at a far too large rate overflows: one error naming the option, not NaN scores."""
    from neurodeploy.errors import NeurodeployError

    with pytest.raises(NeurodeployError, match="diverged") as err:
        learn_paper("bp", "teacher", seeds=1, epochs=1, hidden=(8,), lr=50.0)
    assert "lower the learning rate" in str(err.value)


def test_the_cli_sets_a_paper_variants_options_and_refuses_them_on_the_chip(tmp_path) -> None:
    """``--set`` reaches a rule's paper options (PAL's decay); on the chip variant it is refused by name."""
    import json

    from typer.testing import CliRunner

    from neurodeploy.cli import app

    runner = CliRunner()
    base = ["learn", "--rule", "pal", "--hidden", "8", "--epochs", "1", "--seeds", "1", "--set", "regularizer=slope"]
    out = tmp_path / "pal.json"
    done = runner.invoke(app, [*base, "--variant", "paper", "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert json.loads(out.read_text())["config"]["regularizer"] == "slope"
    chip = runner.invoke(app, base)
    assert isinstance(chip.exception, NeurodeployError) and "chip variant" in str(chip.exception)

"""The learning systems' shared entry points: registry, refusals, CLI options and the HTML report."""

from __future__ import annotations

import json

import pytest

import neurodeploy as nd
from neurodeploy.cli_studies import _parse_set
from neurodeploy.errors import NeurodeployError
from neurodeploy.learning.report import curves_of, final_text, learn_html
from neurodeploy.rules.systems import SYSTEMS, learn_system
from neurodeploy.rules.systems.base import final_of, make_options, system_result


def test_unknown_system_names_the_known_ones():
    with pytest.raises(NeurodeployError, match="unknown learning system 'nonsense'") as err:
        learn_system("nonsense")
    assert all(name in err.value.hint for name in SYSTEMS)


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_paper_variant_refuses_a_chip_profile(name):
    with pytest.raises(NeurodeployError, match="float on the ideal profile, not 'loihi2'"):
        learn_system(name, variant="paper", profile="loihi2")


@pytest.mark.parametrize(("kwargs", "arg"), [({"network": "x.nir"}, "network"), ({"backend": "lava"}, "backend")])
def test_learn_refuses_rule_arguments_for_a_system(kwargs, arg):
    with pytest.raises(NeurodeployError, match=f"{arg}= does not apply"):
        nd.learn("di", variant="paper", **kwargs)


def test_hidden_sets_a_systems_own_layer_sizes():
    from neurodeploy.api_learn import _system_hidden

    assert _system_hidden("microcircuit", [20, 10], {}) == {"hidden": (20, 10)}
    assert _system_hidden("pc", 32, {}) == {"hidden": (32,)}
    assert _system_hidden("di", [50], {}) == {"n_hidden": 50}
    with pytest.raises(NeurodeployError, match="one hidden layer"):
        _system_hidden("di", [50, 50], {})
    with pytest.raises(NeurodeployError, match="given twice"):
        _system_hidden("gle", [8], {"hidden": (8,)})
    with pytest.raises(NeurodeployError, match="does not apply to the learning system 'sampling'"):
        nd.learn("sampling", variant="paper", hidden=[8], seeds=1, epochs=1)
    res = nd.learn("pc", None, "digits", hidden=[16], variant="paper", seeds=1, epochs=1)
    assert res.config["hidden"] in ([16], (16,))


def test_the_cli_takes_a_systems_hidden_sizes_from_either_flag(tmp_path):
    from typer.testing import CliRunner

    from neurodeploy.cli import app

    runner = CliRunner()
    base = ["learn", "--rule", "pc", "--variant", "paper", "--task", "digits", "--seeds", "1", "--epochs", "1"]
    for extra in (["--hidden", "16"], ["--set", "hidden=16"]):
        out = tmp_path / f"run{len(extra[1])}.json"
        done = runner.invoke(app, [*base, *extra, "-o", str(out)])
        assert done.exit_code == 0, done.output
        assert json.loads(out.read_text())["config"]["hidden"] == [16]
    twice = runner.invoke(app, [*base, "--hidden", "16", "--set", "hidden=16"])
    assert isinstance(twice.exception, NeurodeployError) and "given twice" in str(twice.exception)  # main(): exit 2


def test_bad_seeds_and_epochs_are_refused():
    with pytest.raises(NeurodeployError, match="seeds must be at least 1"):
        learn_system("di", seeds=0)
    with pytest.raises(NeurodeployError, match="epochs must be at least 1"):
        learn_system("di", epochs=0)


def test_set_values_are_typed():
    assert _parse_set(["a=3", "b=0.5", "c=true", "d=pal", "e=30,30"]) == {
        "a": 3, "b": 0.5, "c": True, "d": "pal", "e": [30, 30]}  # fmt: skip
    with pytest.raises(NeurodeployError, match="not KEY=VALUE"):
        _parse_set(["novalue"])


def test_unknown_option_names_the_system_and_its_options():
    from dataclasses import dataclass

    @dataclass
    class Options:
        alpha: float = 0.1

    assert make_options(Options, "di", {"alpha": 0.2}).alpha == 0.2
    with pytest.raises(NeurodeployError, match="option 'beta' does not apply to the learning system 'di'") as err:
        make_options(Options, "di", {"beta": 1})
    assert "alpha" in err.value.hint


def test_a_system_result_reports_and_plots_its_own_series():
    import time

    history = [{"epoch": e, "kl": [1.0 / e, 2.0 / e], "weight_angle": {"reciprocal": [80.0 / e, 60.0 / e]}}
               for e in (1, 2)]  # fmt: skip
    res = system_result("sampling", "paper", "ideal", {"tau": 10}, history, equations=["K(Δt)"],
                        provenance={"all": {"where": "host float64"}}, started=time.perf_counter())  # fmt: skip
    fin = res.final
    assert fin["kl"]["mean"] == pytest.approx(0.75) and fin["kl"]["per_seed"] == [0.5, 1.0]
    assert fin["weight_angle"]["reciprocal"]["mean"] == pytest.approx(35.0)
    assert final_text(fin).startswith("kl 0.75 ± 0.25")
    curves = curves_of(res.to_dict())["sampling"]
    assert curves["kl"] == [1.5, 0.75] and curves["∠(B, Wᵀ) ° reciprocal"] == [70.0, 35.0]
    page = learn_html([res.to_dict()])
    assert "sampling · paper · ideal" in page and "data:image/png;base64," in page
    with pytest.raises(ValueError, match="no differences"):
        system_result("sampling", "paper", "ideal", {}, history, equations=[], provenance={}, differences=["x"],
                      started=0.0)  # fmt: skip


def test_best_epoch_is_picked_on_validation_not_test():
    history = [{"epoch": 1, "val_accuracy": [0.9], "test_accuracy": [0.5]},
               {"epoch": 2, "val_accuracy": [0.8], "test_accuracy": [0.9]}]  # fmt: skip
    assert final_of(history)["best_epoch"]["epoch"] == 1
    with pytest.raises(NeurodeployError, match="recorded no epoch"):
        final_of([])

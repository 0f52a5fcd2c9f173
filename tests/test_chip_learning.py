"""Learning on the compiled chip network: motif, engine in the run loop, provenance, user networks."""

from __future__ import annotations

import numpy as np
import pytest

import neurodeploy
from neurodeploy.compiler import learning as lp
from neurodeploy.compiler.normalize import normalize
from neurodeploy.emulator.learning import LearningRun
from neurodeploy.emulator.learning_rule import parse_rule
from neurodeploy.errors import NeurodeployError
from neurodeploy.hw_profiles import get
from neurodeploy.learning.tasks import get_task
from neurodeploy.studies.chip_learning import builtin_graph, learn_chip

QUICK = {"epochs": 2, "hidden": (16,), "lr": 0.02}


def _net(rule: str, profile: str = "loihi2", sizes=(4, 16, 16, 3), **opt) -> lp.LearningNetwork:
    ir = normalize(builtin_graph(list(sizes)), dt=1e-3, reset="zero")
    return lp.build(ir, rule, get(profile), lp.LearnOptions(init_gain=1.0, **opt))


@pytest.mark.parametrize("rule", ["fa", "dfa", "drtp", "kp"])
def test_provenance_has_no_host_signal_on_loihi2(rule: str) -> None:
    res = learn_chip(rule, "loihi2", "yinyang", seeds=1, epochs=1, hidden=(8, 8))
    assert set(res.provenance) == {"forward", "output_error", "hidden_signal", "feedback_learning", "weight_write"}
    for signal, entry in res.provenance.items():
        assert entry["where"] == "chip", (signal, entry)
        assert entry["host_ops_per_sample"] == 0
    assert res.engine["numerics"] == "loihi"
    for rule_entry in res.engine["rules"].values():  # every string parses as the engine's rule grammar
        parse_rule(rule_entry["dt"], "dt")
        parse_rule(rule_entry["dw"], "dw")


def test_host_rules_say_where_their_signals_run() -> None:
    res = neurodeploy.learn("eprop", "loihi2", "yinyang", hidden=[8], epochs=1, batch=64)
    assert res.provenance["hidden_signal"]["where"].startswith("host")
    assert res.provenance["hidden_signal"]["host_ops_per_sample"] > 0
    pal = neurodeploy.learn("pal", "loihi2", "yinyang", hidden=[8], epochs=1)
    assert pal.provenance["hidden_signal"]["where"] == "chip"
    fb = pal.provenance["feedback_learning"]  # per step: ξ̃ rᵀ (|B|), the traces; per minibatch: B's write
    assert fb["where"].startswith("chip + host") and fb["host_ops_per_sample"] == 32 * (8 * 3 + 8 + 2 * 3) + 2 * 24 / 16
    wm = neurodeploy.learn("wm", "loihi2", "yinyang", hidden=[8, 8], epochs=1)
    assert wm.provenance["hidden_signal"]["where"] == "chip"
    fb = wm.provenance["feedback_learning"]
    assert (
        fb["where"] == "chip + host (x86 or an embedded core)"
        and fb["host_ops_per_sample"] == 8 * 8 + 8 * 3 + 2 * (8 * 8 + 8 * 3) / 16
    )
    sign = neurodeploy.learn("sign", "loihi2", "yinyang", hidden=[8, 8], epochs=1)
    assert sign.provenance["hidden_signal"]["where"] == "chip"
    fb = sign.provenance["feedback_learning"]
    assert fb["where"].startswith("host") and fb["host_ops_per_sample"] == 3 * (8 * 8 + 8 * 3) / 16


def test_motif_structure_for_two_hidden_layers() -> None:
    lnet = _net("fa")
    assert [lay.name for lay in lnet.layers] == ["if0", "if1", "if2"]
    assert [(f.src, f.dst) for f in lnet.feedback] == [("if1", "if0"), ("if2", "if1")]
    assert all(not f.plastic for f in lnet.feedback)
    dfa = _net("dfa")
    assert [(f.src, f.weight.shape) for f in dfa.feedback] == [("error", (1, 16, 3)), ("error", (1, 16, 3))]
    kp = _net("kp", decay=5e-4)
    assert all(f.plastic and not f.weight.any() for f in kp.feedback)  # B starts at zero
    assert "2^-7*u9*w" in kp.engine["if1->if2"].dt and kp.engine["if1->if2"].realised_decay == 2.0**-11
    frozen = _net("frozen")
    assert frozen.layers[0].plastic == [] and frozen.layers[-1].plastic


def test_kp_keeps_w_and_b_transposed_updates_identical() -> None:
    lnet = _net("kp", sizes=(4, 16, 3), batch=16)
    run = LearningRun(lnet, seed=0)
    task = get_task("yinyang")
    from neurodeploy.datasets import encode_rate

    w0, b0 = lnet.projection("if0->if1").weight.copy(), lnet.feedback[0].weight.copy()
    for i in range(0, 128, 16):
        act = run.present(encode_rate(task.x_train[i : i + 16], 32, 24, bias_spike=False),
                          np.eye(3)[task.y_train[i : i + 16]] * 24)  # fmt: skip
        run.learn(act)
    dw = (lnet.projection("if0->if1").weight - w0)[0].T
    db = (lnet.feedback[0].weight - b0)[0]
    assert np.abs(dw).sum() > 50
    assert np.abs(dw - db).sum() <= 0.05 * np.abs(dw).sum()  # only rare one-LSB trace decays differ


@pytest.mark.parametrize("profile", ["ideal", "loihi2"])
def test_kp_learns_and_aligns(profile: str) -> None:
    res = learn_chip("kp", profile, "yinyang", seeds=2, epochs=3, hidden=(32,), lr=0.02)
    first, last = res.history[0], res.history[-1]
    assert np.mean(last["test_accuracy"]) > 0.72
    assert np.mean(last["weight_angle"]["B1"]) < np.mean(first["weight_angle"]["B1"]) < 60
    assert np.mean(last["weight_angle"]["B1"]) < 25


def test_user_nir_network_trains_with_kp(tmp_path) -> None:
    import nir

    task = get_task("yinyang")
    rng = np.random.default_rng(5)
    graph = builtin_graph([4, 24, 3])
    graph.nodes["fc0"] = nir.Linear(rng.normal(0, 0.5, (24, 4)))
    graph.nodes["fc1"] = nir.Linear(rng.normal(0, 0.2, (3, 24)))
    path = tmp_path / "model.nir"
    nir.write(str(path), graph)
    data = (task.x_train[:2000], task.y_train[:2000], task.x_test, task.y_test)
    kp = neurodeploy.learn("kp", "loihi2", data, network=str(path), epochs=4, seeds=2, lr=0.03)
    frozen = neurodeploy.learn("frozen", "loihi2", data, network=str(path), epochs=4, seeds=2, lr=0.03)
    assert kp.final["test_accuracy"]["mean"] > frozen.final["test_accuracy"]["mean"] + 0.02


def test_builtin_graph_round_trips_and_vanishing_weights_warn(tmp_path) -> None:
    import nir

    graph = builtin_graph([4, 8, 3])
    graph.nodes["fc0"] = nir.Linear(np.full((8, 4), 0.5))
    graph.nodes["fc1"] = nir.Linear(np.full((3, 8), 0.5))
    nir.write(str(tmp_path / "m.nir"), graph)
    back = normalize(nir.read(str(tmp_path / "m.nir")))
    assert back.conventions.dt == 1e-3 and not back.conventions.assumed
    lp.build(back, "fa", get("loihi2"), lp.LearnOptions())  # no warning: weights survive quantisation
    tiny = normalize(graph, dt=1e-5, reset="zero")  # a wrong dt shrinks the per-step weights 100-fold
    with pytest.warns(UserWarning, match=r"round to zero.*pass dt="):
        lp.build(tiny, "fa", get("loihi2"), lp.LearnOptions())


def test_bad_learning_setups_get_one_clear_error() -> None:
    with pytest.raises(NeurodeployError, match="power of two"):
        _net("fa", batch=24)
    with pytest.raises(NeurodeployError, match="graded spikes"):
        _net("fa", "loihi1")
    with pytest.raises(NeurodeployError, match="cannot run learning rule"):
        _net("fa", "dynapse2")
    with pytest.raises(NeurodeployError, match="steps per presentation"):
        _net("fa", sizes=(4, 8, 8, 8, 8, 8, 3), active=28)
    with pytest.raises(NeurodeployError, match="features"):
        task = get_task("yinyang")
        neurodeploy.learn("fa", "loihi2", (task.x_train, task.y_train, task.x_test[:, :2], task.y_test), epochs=1)
    with pytest.raises(NeurodeployError, match="built-in tasks only"):
        task = get_task("yinyang")
        neurodeploy.learn("eprop", "loihi2", (task.x_train, task.y_train, task.x_test, task.y_test), epochs=1)
    with pytest.raises(NeurodeployError, match="unknown rule"):
        neurodeploy.learn("hebb", "loihi2", "yinyang", epochs=1)


def test_snntorch_model_from_torch_trains_with_kp() -> None:
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 32),
        snn.Leaky(beta=0.95, init_hidden=True),
        torch.nn.Linear(32, 3),
        snn.Leaky(beta=0.95, init_hidden=True, output=True),
    )
    graph = neurodeploy.from_torch(model, torch.zeros(4), framework="snntorch")
    task = get_task("yinyang")
    data = (task.x_train[:1000], task.y_train[:1000], task.x_test, task.y_test)
    kp = neurodeploy.learn("kp", "loihi2", data, network=graph, epochs=5, seeds=2, lr=0.03)
    frozen = neurodeploy.learn("frozen", "loihi2", data, network=graph, epochs=5, seeds=2, lr=0.03)
    assert kp.final["test_accuracy"]["mean"] > frozen.final["test_accuracy"]["mean"] + 0.05
    assert kp.provenance["hidden_signal"]["where"] == "chip"


def test_compiled_engine_is_bit_identical_to_the_rule_strings() -> None:
    """The numba kernel and the ProductSeries path give the same weights and tags (KP, 2 hidden layers)."""
    pytest.importorskip("numba")
    from neurodeploy.datasets import encode_rate

    task = get_task("yinyang")
    results = []
    for kernels in ("numpy", "numba"):
        lnet = _net("kp", sizes=(4, 24, 12, 3), instances=2, decay=5e-4, batch=16)
        run = LearningRun(lnet, seed=4, kernels=kernels)
        for i in range(0, 48, 16):
            act = run.present(encode_rate(task.x_train[i : i + 16], 32, 24, bias_spike=False),
                              np.eye(3)[task.y_train[i : i + 16]] * 24)  # fmt: skip
            run.learn(act)
        results.append(({p.name: p.weight for p in lnet.core.projections}, run.tags, [f.weight for f in lnet.feedback]))
    (w_a, t_a, b_a), (w_b, t_b, b_b) = results
    for name in w_a:
        np.testing.assert_array_equal(w_a[name], w_b[name], err_msg=name)
    for name in t_a:
        np.testing.assert_array_equal(t_a[name], t_b[name], err_msg=name)
    for x, y in zip(b_a, b_b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_learn_cli_takes_hidden_list_and_data(tmp_path) -> None:
    import json
    import subprocess
    import sys

    task = get_task("yinyang")
    npz = tmp_path / "train.npz"
    np.savez(npz, x_train=task.x_train[:256], y_train=task.y_train[:256], x_test=task.x_test[:128],
             y_test=task.y_test[:128])  # fmt: skip
    out = tmp_path / "run.json"
    cmd = [sys.executable, "-m", "neurodeploy.cli", "learn", "--rule", "wm", "--profile", "loihi2", "--seeds", "1",
           "--mirror-rate", "0.3", "--epochs", "1", "--hidden", "8,8", "--data", str(npz), "-o", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "where each signal ran" in done.stdout and "hidden_signal" in done.stdout
    report = json.loads(out.read_text())
    assert report["provenance"]["hidden_signal"]["where"] == "chip"
    assert report["config"]["hidden"] == [8, 8]
    assert report["config"]["mirror_rate"] == 0.3 and report["config"]["mirror_lr"] == 0.05
    bad = subprocess.run([*cmd[:-4], "--data", str(tmp_path / "missing.npz")], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "missing.npz" in bad.stderr


@pytest.mark.parametrize("profile", ["ideal", "loihi2"])
def test_mirror_phase_runs_on_the_network_and_aligns_b(profile: str) -> None:
    """WM's mirror presentations run the chip's neurons: layer l fires about one spike per noise spike,
    and B turns towards Wᵀ; IA's B stays bounded (its fixed point is an inverse, not Wᵀ)."""
    from neurodeploy.emulator.learning_mirror import mirror_responses

    lnet = _net("wm", profile, sizes=(4, 16, 16, 3), mirror_rate=0.2)
    run = LearningRun(lnet, seed=0)
    xi, r = mirror_responses(run, "if0", "if1", 64, 0.2, np.random.default_rng(0))
    assert xi.shape == (1, 64, 16) and r.shape == (1, 64, 16)
    assert abs(xi.mean()) < 1e-9 and 0.05 < xi.std() < 0.12  # centred; one spike per noise spike: 0.08
    res = learn_chip("wm", profile, "yinyang", seeds=2, epochs=3, hidden=(16,), lr=0.02)
    angles = [np.mean(h["weight_angle"]["B1"]) for h in res.history]
    assert angles[-1] < 35.0, angles
    ia = learn_chip("ia", profile, "yinyang", seeds=1, epochs=1, hidden=(16,), lr=0.02)
    assert ia.final["test_accuracy"]["mean"] > 0.5


def test_results_list_their_differences_from_the_paper_and_paper_is_not_claimed() -> None:
    """A result says which variant ran and every way it departs from the published rule. The paper variant
    runs the published equations as host floats, says so, and is never run on a chip profile's name."""
    from neurodeploy.rules import motif

    x = np.random.default_rng(0).random((48, 4))
    data = (x[:32], (x[:32, 0] > 0.5).astype(int), x[32:], (x[32:, 0] > 0.5).astype(int))
    res = neurodeploy.learn("kp", "loihi2", data, hidden=[8], epochs=1)
    out = res.to_dict()
    assert out["variant"] == "chip" and out["differences_from_paper"] == list(motif("kp").chip_differences)
    assert any("9 bits" in d for d in out["differences_from_paper"])
    paper = neurodeploy.learn("kp", None, data, hidden=[8], epochs=1, variant="paper").to_dict()
    assert paper["variant"] == "paper" and paper["differences_from_paper"] == []
    assert paper["config"]["profile"] == "ideal" and "host float64" in paper["provenance"]["all"]["where"]
    with pytest.raises(NeurodeployError, match="float on the ideal profile") as err:
        neurodeploy.learn("kp", "loihi2", data, hidden=[8], epochs=1, variant="paper")
    assert "chip variant" in str(err.value)
    with pytest.raises(NeurodeployError, match="does not apply to the paper variant"):
        neurodeploy.learn("kp", None, data, hidden=[8], epochs=1, variant="paper", mirror_rate=0.2)
    ep = neurodeploy.learn("eprop", "loihi2", "yinyang", hidden=[8], epochs=1, batch=64, train_samples=64)
    assert any("9-bit tag" in d for d in ep.to_dict()["differences_from_paper"])


@pytest.mark.parametrize("profile", ["ideal", "loihi2"])
def test_weight_decay_reaches_the_forward_weights_of_every_rule(profile: str) -> None:
    """decay is L2 on the forward weights for FA and DFA too (Song, Xu and Lafferty's regulariser), not
    KP's alone: every forward engine rule carries the w term, and the run changes."""
    x = np.random.default_rng(1).random((64, 4))
    data = (x[:48], (x[:48, 0] > 0.5).astype(int), x[48:], (x[48:, 0] > 0.5).astype(int))
    for rule in ("fa", "dfa"):
        plain = neurodeploy.learn(rule, profile, data, hidden=[16], epochs=2, seed=3)
        decayed = neurodeploy.learn(rule, profile, data, hidden=[16], epochs=2, seed=3, decay=0.02)
        rules = decayed.engine["rules"]
        assert rules and all("*w" in r["dt"] and r["realised_decay"] > 0 for r in rules.values()), rules
        assert all("*w" not in r["dt"] for r in plain.engine["rules"].values())
        assert decayed.history != plain.history


@pytest.mark.parametrize("profile", ["ideal", "loihi2"])
def test_the_chip_path_regresses_the_deep_teacher(profile: str) -> None:
    """A regression trains on the chip path: the output rate is taught the target with the squared loss's
    two-sided error, and the readout ends below the error of predicting every target's mean."""
    task = get_task("deep-teacher")
    baseline = float(((task.y_test - task.y_train.mean(0)) ** 2).mean())
    res = learn_chip("bp", profile, "deep-teacher", hidden=[16], epochs=3, seeds=2)
    mse = res.final["test_mse"]["per_seed"]
    assert max(mse) < 0.9 * baseline, (mse, baseline)  # 3 epochs: 0.64 (ideal) and 0.81 (loihi2) of it
    assert np.mean(res.history[-1]["test_mse"]) < np.mean(res.history[0]["test_mse"])


def test_the_squared_error_acts_on_both_sides_of_the_target() -> None:
    """Classes use a hinge (an output above a positive target is left alone); a regression's error pushes
    from both sides. Same network, same presentations: only the error compartment's rule differs."""
    from neurodeploy.studies.chip_learning import ChipLearnConfig, ChipTrainer

    task = get_task("deep-teacher")
    cfg = ChipLearnConfig(rule="bp", profile="ideal", task="deep-teacher", seeds=1, hidden=[8]).resolved()
    trainer = ChipTrainer(cfg, task)
    assert trainer.run.error == "squared"
    lnet, x = trainer.lnet, trainer.encode(task.x_train[:50])
    target = np.full((50, task.n_out), 0.5 * lnet.schedule.active)
    deltas = {e: LearningRun(lnet, error=e).present(x, target).delta[lnet.layers[-1].name] for e in
              ("hinge", "squared")}  # fmt: skip
    assert (deltas["hinge"] <= 0).all() and (deltas["squared"] > 0).any() and (deltas["squared"] < 0).any()
    with pytest.raises(ValueError, match="error"):
        LearningRun(lnet, error="l1")

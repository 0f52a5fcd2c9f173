"""The paper variants of the feedback-alignment family: exact BP, the rules' defining identities, alignment on
Yin-Yang, and FA/DFA on a conv and a recurrent layer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurodeploy.learning.tasks import get_task
from neurodeploy.rules.paper import TRAINERS, PaperConfig, learn_paper, trainer_class
from neurodeploy.rules.paper.ann import DFATrainer, FATrainer, KPTrainer, SignTrainer
from neurodeploy.rules.paper.base import FloatNet
from neurodeploy.rules.paper.conv import ConvTrainer, RecurrentTrainer, StructConfig, learn_conv, learn_recurrent
from neurodeploy.studies.chip_learning import data_task

ANN_RULES = [r for r, where in TRAINERS.items() if where.startswith("ann:")]


def blob_arrays(n_train: int = 200, n_test: int = 100, n_in: int = 4, classes: int = 3, seed: int = 0) -> tuple:
    """A small separable task: Gaussian blobs around random centres, as (x_train, y_train, x_test, y_test)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 2.0, (classes, n_in))
    y = rng.integers(0, classes, n_train + n_test)
    x = centres[y] + rng.normal(0.0, 0.7, (len(y), n_in))
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def blobs():
    return data_task(blob_arrays())


def _torch_phi(z: torch.Tensor, kind: str) -> torch.Tensor:
    return torch.sigmoid(z) if kind == "sigmoid" else torch.tanh(z) if kind == "tanh" else torch.relu(z)


@settings(max_examples=12, deadline=None)
@given(
    hidden=st.lists(st.integers(2, 6), min_size=1, max_size=3),
    n_in=st.integers(2, 5),
    n_out=st.integers(2, 4),
    seeds=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    activation=st.sampled_from(["sigmoid", "tanh", "relu"]),
    mismatch=st.sampled_from([0.0, 0.3]),
    kind=st.sampled_from(["classification", "regression"]),
)
def test_bp_deltas_are_the_autograd_gradient(hidden, n_in, n_out, seeds, seed, activation, mismatch, kind) -> None:
    cfg = PaperConfig("bp", seeds=seeds, seed=seed, hidden=tuple(hidden), activation=activation, mismatch=mismatch)
    rng = np.random.default_rng(seed)
    net = FloatNet([n_in, *hidden, n_out], cfg, rng, kind=kind)
    x = rng.uniform(0.0, 1.0, (7, n_in))
    y = rng.integers(0, n_out, 7) if kind == "classification" else rng.normal(0.0, 1.0, (7, n_out))
    acts, hs = net.forward(x)
    e = net.output_error(acts[-1], y)
    deltas = [*net.bp_deltas(acts, hs, e), e]

    ws = [torch.tensor(w, requires_grad=True) for w in net.w]
    h = torch.tensor(x).expand(seeds, *x.shape)
    zs = []
    for k, (w, b) in enumerate(zip(ws, net.b, strict=True)):
        z = torch.einsum("sbi,sji->sbj", h, w) + torch.tensor(b)[:, None]
        z.retain_grad()
        zs.append(z)
        if k < len(hidden):
            h = _torch_phi(torch.tensor(net.gain[k])[:, None] * z + torch.tensor(net.offset[k])[:, None], activation)
        else:
            h = z
    if kind == "classification":
        loss = torch.nn.functional.cross_entropy(h.reshape(-1, n_out), torch.tensor(y).repeat(seeds), reduction="sum")
    else:
        loss = 0.5 * ((h - torch.tensor(y)) ** 2).sum()
    loss.backward()
    for k, d in enumerate(deltas):  # δ per sample = ∂L/∂(W h + b), and ΔW's direction = ∂(mean L)/∂W
        np.testing.assert_allclose(d, zs[k].grad.numpy(), rtol=1e-9, atol=1e-12)
        grad_w = np.einsum("sbj,sbi->sji", d, hs[k]) / len(x)
        np.testing.assert_allclose(grad_w, ws[k].grad.numpy() / len(x), rtol=1e-9, atol=1e-12)


def _batch(task, n: int = 16):
    idx = np.arange(n)
    return task.x_train[idx], task.y_train[idx]


def test_fa_and_dfa_coincide_at_one_hidden_layer_and_differ_deeper() -> None:
    task = blobs()
    cfg = PaperConfig("fa", seeds=2, hidden=(8,), lr=0.2).checked()
    fa, dfa = FATrainer(cfg, task), DFATrainer(dataclasses.replace(cfg, rule="dfa"), task)
    dfa.feedback = [b.copy() for b in fa.feedback]
    for trainer in (fa, dfa):
        for start in range(0, 200, 20):
            trainer.step(np.arange(start, start + 20), 0.2)
    for w_fa, w_dfa in zip(fa.net.w, dfa.net.w, strict=True):
        np.testing.assert_array_equal(w_fa, w_dfa)

    deep = PaperConfig("fa", seeds=2, hidden=(8, 8)).checked()
    fa, dfa = FATrainer(deep, task), DFATrainer(dataclasses.replace(deep, rule="dfa"), task)
    dfa.feedback[-1] = fa.feedback[-1].copy()  # the same B where both rules feed the same signal
    x, y = _batch(task)
    acts, hs = fa.net.forward(x)
    e = fa.net.output_error(acts[-1], y)
    d_fa, d_dfa = fa.hidden_deltas(acts, hs, e, y), dfa.hidden_deltas(acts, hs, e, y)
    np.testing.assert_allclose(d_fa[-1], d_dfa[-1])
    assert not np.allclose(d_fa[0], d_dfa[0])


@pytest.mark.parametrize(("shared_decay", "optimizer"), [(0.0, "sgd"), (0.01, "sgd"), (0.0, "adam")])
def test_kp_difference_shrinks_geometrically(shared_decay: float, optimizer: str) -> None:
    task = blobs()
    cfg = PaperConfig("kp", seeds=2, hidden=(8, 6), decay=shared_decay, optimizer=optimizer).checked()
    kp = trainer_class("kp")(cfg, task, None, trainer_class("kp").Options(kp_decay=0.05))
    lr, steps = 0.3, 25
    start = [np.linalg.norm(kp.net.w[k + 1] - np.swapaxes(b, -1, -2)) for k, b in enumerate(kp.feedback)]
    for t in range(steps):
        kp.step(np.arange(t * 8 % 192, t * 8 % 192 + 8), lr)
    end = [np.linalg.norm(kp.net.w[k + 1] - np.swapaxes(b, -1, -2)) for k, b in enumerate(kp.feedback)]
    expected = (1.0 - lr * (0.05 + shared_decay)) ** steps
    np.testing.assert_allclose(np.array(end) / np.array(start), expected, rtol=1e-9)
    assert isinstance(kp, KPTrainer)


def test_learned_feedback_aligns_on_yinyang_while_fa_does_not() -> None:
    common = {"seeds": 2, "epochs": 2, "hidden": (16, 16), "lr": 0.1}
    angles = {}
    for rule, extra in (("bp", {}), ("fa", {}), ("wm", {}), ("kp", {"kp_decay": 0.1})):
        result = learn_paper(rule, "yinyang", **common, **extra)
        angles[rule] = [v["mean"] for v in result.final["weight_angle"].values()]
        assert len(angles[rule]) == 2
    assert max(angles["bp"]) < 1e-4  # arccos of a cosine one rounding below 1
    assert max(angles["wm"]) < 15.0
    assert max(angles["kp"]) < 15.0
    assert min(angles["fa"]) > 45.0


@pytest.mark.parametrize("rule", ANN_RULES)
def test_every_ann_rule_trains_and_documents_itself(rule: str) -> None:
    cls = trainer_class(rule)
    assert cls.EQUATIONS and (cls.__doc__ or "").strip()
    result = learn_paper(rule, blob_arrays(n_train=400), seeds=2, epochs=15, hidden=(8, 8), lr=0.2)
    assert result.engine["equations"] == cls.EQUATIONS
    acc = result.final["test_accuracy"]["mean"]
    assert acc > {"frozen": 0.3, "drtp": 0.45}.get(rule, 0.7), acc  # chance is 1/3
    if rule in ("fa", "kp", "wm", "ia", "sign", "bp"):
        assert set(result.final["weight_angle"]) == {"B1", "B2"}
    if rule in ("dfa", "drtp"):
        assert set(result.final["weight_angle"]) == {"B2"}  # only the top B has a forward partner
    if rule == "frozen":
        assert result.final["signal_angle"] == {}


@pytest.mark.parametrize("rule", ["dfa", "drtp", "kp"])
def test_regression_task_runs(rule: str) -> None:
    result = learn_paper(rule, "teacher", seeds=1, epochs=1, hidden=(8,), lr=0.05)
    assert np.isfinite(result.final["test_mse"]["mean"])


def test_sign_feedback_tracks_the_forward_signs() -> None:
    task = blobs()
    sign = SignTrainer(PaperConfig("sign", seeds=2, hidden=(8, 8)).checked(), task)
    sign.step(np.arange(20), 0.5)
    for k, b in enumerate(sign.feedback):
        np.testing.assert_array_equal(np.sign(b), np.sign(np.swapaxes(sign.net.w[k + 1], -1, -2)))
        np.testing.assert_allclose(np.abs(b), 1.0 / np.sqrt(8))


@pytest.fixture
def one_thread():
    """Tiny tensors: one torch thread avoids hand-off overhead on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _autograd_matches(trainer, task) -> None:
    x, y = _batch(task, 12)
    for p in trainer.params:
        p.requires_grad_(True)
    logits = trainer.forward(trainer.tensor(x))["logits"]
    target = torch.as_tensor(y).repeat(logits.shape[0])
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target, reduction="sum")
    loss.backward()
    for p, g in zip(trainer.params, trainer.gradients(x, y, "bp"), strict=True):
        torch.testing.assert_close(g, p.grad / len(x), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
def test_conv_and_recurrent_bp_reference_is_autograd(activation: str, one_thread: None) -> None:
    task = get_task("digits")
    cfg = StructConfig("fa", seeds=2, hidden=12, channels=3, activation=activation).checked()
    _autograd_matches(ConvTrainer(cfg, task), task)
    _autograd_matches(RecurrentTrainer(cfg, task), task)


@pytest.mark.parametrize("rule", ["fa", "dfa"])
def test_conv_and_recurrent_feedback_rules_learn_digits(rule: str) -> None:
    conv = learn_conv(rule, seeds=2, epochs=2, hidden=32)
    rec = learn_recurrent(rule, seeds=2, epochs=2, hidden=32)
    for result in (conv, rec):
        assert result.final["test_accuracy"]["mean"] > 0.5  # chance is 0.1
        for name, angle in result.history[-1]["signal_angle"].items():
            assert len(angle) == 2 and all(0.0 <= a <= 180.0 for a in angle), name
    assert set(conv.history[-1]["signal_angle"]) == {"conv", "dense"}
    assert set(rec.history[-1]["signal_angle"]) == {"last", "all"}


def test_kp_trains_under_adam() -> None:
    result = learn_paper("kp", blob_arrays(n_train=400), seeds=2, epochs=5, hidden=(8, 8), lr=0.01, optimizer="adam",
                         kp_decay=0.03)  # fmt: skip
    assert result.final["test_accuracy"]["mean"] > 0.7
    assert all(np.isfinite(v["mean"]) for v in result.final["weight_angle"].values())

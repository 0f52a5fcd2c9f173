"""Learning tasks: features in [0, 1], integer labels (or regression targets), fixed splits.

Every task is generated or loaded deterministically, so float and chip runs, and every rule, see the
same samples. Yin-Yang follows the published generator (``neurodeploy.datasets``); digits are
scikit-learn's 8x8 handwritten digits (1797 samples, UCI ML repository); the teacher-student task is a
random two-layer ReLU network whose outputs a student regresses; the deep teacher is a random tanh network of
three hidden layers in its expressive regime (weight gain 2), where a student needs depth too. MNIST-1D
(Greydanus 2020) is generated procedurally by the ``mnist1d`` package with its default arguments: 40-step
sequences of 10 classes, 4000 / 1000 samples, of which the last 500 training samples validate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodeploy.errors import NeurodeployError

TASKS = ("yinyang", "digits", "teacher", "deep-teacher", "mnist1d")


@dataclass(frozen=True)
class Task:
    """Train / validation / test splits of one task; ``kind`` says how outputs are scored."""

    name: str
    kind: str  # "classification" or "regression"
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_in(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_out(self) -> int:
        if self.kind == "classification":
            return int(max(self.y_train.max(), self.y_test.max())) + 1
        return int(self.y_train.shape[1])


def yinyang_task() -> Task:
    """The published Yin-Yang splits: 5000 / 1000 / 1000 samples (seeds 42 / 41 / 40), 4 features."""
    from neurodeploy.datasets import yin_yang_splits

    s = yin_yang_splits()
    return Task("yinyang", "classification", *s["train"], *s["validation"], *s["test"])


def digits_task() -> Task:
    """scikit-learn's 8x8 digits, pixels scaled to [0, 1]; a fixed stratified 1297 / 250 / 250 split."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - the learn extra installs it
        raise NeurodeployError(
            "the digits task needs scikit-learn", "task digits", "pip install 'neurodeploy[learn]'"
        ) from exc
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(20161).permutation(len(y))
    test, val = [], []
    for c in range(10):  # stratified: 25 per class in test and in validation
        idx = order[y[order] == c]
        test.extend(idx[:25])
        val.extend(idx[25:50])
    held = np.zeros(len(y), dtype=bool)
    held[test + val] = True
    train = order[~held[order]]
    te, va = np.sort(test), np.sort(val)
    return Task("digits", "classification", x[train], y[train], x[va], y[va], x[te], y[te])


def teacher_task(n_in: int = 8, n_hidden: int = 16, n_out: int = 2, seed: int = 7) -> Task:
    """Regress the outputs of a fixed random 2-layer ReLU teacher; targets scaled into [0.1, 0.9]."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.0, 1.0 / np.sqrt(n_in), (n_hidden, n_in))
    b1 = rng.normal(0.0, 0.3, n_hidden)
    w2 = rng.normal(0.0, 1.0 / np.sqrt(n_hidden), (n_out, n_hidden))

    def draw(n: int, seed_: int) -> tuple[np.ndarray, np.ndarray]:
        x = np.random.default_rng(seed_).uniform(0.0, 1.0, (n, n_in))
        return x.astype(np.float32), np.maximum(x @ w1.T - 0.5 + b1, 0.0) @ w2.T

    splits = [draw(n, seed + k + 1) for k, n in enumerate((4000, 1000, 1000))]
    lo, hi = splits[0][1].min(0), splits[0][1].max(0)
    scaled = [(x, (0.1 + 0.8 * (y - lo) / (hi - lo)).astype(np.float32)) for x, y in splits]
    return Task("teacher", "regression", *scaled[0], *scaled[1], *scaled[2])


def deep_teacher_task(n_in: int = 8, width: int = 32, depth: int = 3, n_out: int = 4, seed: int = 11) -> Task:
    """Regress a random ``depth``-hidden-layer tanh teacher (W ~ N(0, 4/fan_in)); targets in [0.1, 0.9]."""
    rng = np.random.default_rng(seed)
    sizes = [n_in, *([width] * depth), n_out]
    ws = [rng.normal(0.0, 2.0 / np.sqrt(a), (b, a)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]

    def draw(n: int, seed_: int) -> tuple[np.ndarray, np.ndarray]:
        x = np.random.default_rng(seed_).uniform(0.0, 1.0, (n, n_in))
        h = 2.0 * x - 1.0
        for w in ws[:-1]:
            h = np.tanh(h @ w.T)
        return x.astype(np.float32), h @ ws[-1].T

    splits = [draw(n, seed + k + 1) for k, n in enumerate((4000, 1000, 1000))]
    lo, hi = splits[0][1].min(0), splits[0][1].max(0)
    scaled = [(x, (0.1 + 0.8 * (y - lo) / (hi - lo)).astype(np.float32)) for x, y in splits]
    return Task("deep-teacher", "regression", *scaled[0], *scaled[1], *scaled[2])


def mnist1d_task(n_val: int = 500, length: int = 40) -> Task:
    """MNIST-1D as ``mnist1d.make_dataset`` generates it (default arguments, seed 42): the train split's
    last ``n_val`` samples validate. Each sample is a ``length``-step sequence (the generator's
    ``final_seq_length``, default 40), scaled into [0, 1] with the training set's range (the generator's own
    output is standardised: zero mean, unit std)."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:  # pragma: no cover - the learn extra installs it
        raise NeurodeployError(
            "the mnist1d task needs the mnist1d package", "task mnist1d", "pip install 'neurodeploy[learn]'"
        ) from exc
    import random

    states = np.random.get_state(), random.getstate()  # the generator seeds both global states
    try:
        args = get_dataset_args()
        args.final_seq_length = int(length)
        data = make_dataset(args)
    finally:
        np.random.set_state(states[0])
        random.setstate(states[1])
    x, x_test = np.asarray(data["x"], float), np.asarray(data["x_test"], float)
    lo, hi = x.min(), x.max()
    x, x_test = ((x - lo) / (hi - lo)).astype(np.float32), ((x_test - lo) / (hi - lo)).astype(np.float32)
    y, y_test = np.asarray(data["y"], np.int64), np.asarray(data["y_test"], np.int64)
    n = len(y) - n_val
    return Task("mnist1d", "classification", x[:n], y[:n], x[n:], y[n:], x_test, y_test)


def get_task(name: str) -> Task:
    """A task by name, or one clear error listing the known ones."""
    if name == "yinyang":
        return yinyang_task()
    if name == "digits":
        return digits_task()
    if name == "teacher":
        return teacher_task()
    if name == "deep-teacher":
        return deep_teacher_task()
    if name == "mnist1d":
        return mnist1d_task()
    raise NeurodeployError(f"unknown task {name!r}", "--task", f"choose one of {', '.join(TASKS)}")

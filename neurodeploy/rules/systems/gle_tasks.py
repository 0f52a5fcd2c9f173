"""The tasks GLE learns: MNIST-1D as a sequence (the paper's), the lagged teacher, and the static tasks.

MNIST-1D feeds one value of the 40-step sequence per time unit into a net of hidden "lag" layers, each a
mix of LE units (τ_r = τ_m: instantaneous) and LI units (τ_r = 0: leaky integrators whose log-spaced τ_m
hold the past). The lagged teacher is a GLE network with random fixed weights and lagging units, driven by
a smooth sum of sinusoids; a student of the same architecture learns to follow it online, in real time.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError
from neurodeploy.rules.systems.gle import GLENet, Options

# per task: η, dt, batch and epochs when the options leave them None
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "mnist1d": {"lr": 1e-4, "optimizer": "adam", "dt": 1.0, "batch_size": 32, "epochs": 60, "init_gain": 1.5,
                "pal_sigma": 0.05, "pal_lr": 20.0},
    "lagged-teacher": {"lr": 0.01, "optimizer": "sgd", "dt": 0.05, "batch_size": 1, "epochs": 30, "hidden": (8, 8),
                       "init_gain": 2.0, "pal_sigma": 0.1, "pal_tau": 1.0, "pal_lr": 0.5},
    "static": {"lr": 0.2, "optimizer": "sgd", "dt": 0.5, "batch_size": 16, "epochs": 20, "hidden": (30,),
               "init_gain": 1.0, "pal_sigma": 0.05, "pal_lr": 20.0},
}  # fmt: skip
TEACHER_INPUTS, TEACHER_OUTPUTS, TEACHER_SINES = 2, 2, 6
TEACHER_TAU = (1.0, 4.0)  # the hidden units' τ_m range (τ_r = 0: they lag)
TEACHER_OMEGA = (0.5, 2.0)  # angular frequencies of the input sinusoids, per time unit
STATIC_LENGTH = 2  # a static sample is held for readout_samples × this many time units


def resolved_settings(opts: Options, kind: str, epochs: int | None) -> tuple[float, float, int, int]:
    """Fill the options left None with the task's defaults (so the result's config shows what ran)."""
    d = TASK_DEFAULTS[kind]
    for name in ("lr", "dt", "batch_size", "optimizer", "init_gain", "hidden"):
        if getattr(opts, name) is None and name in d:
            setattr(opts, name, d[name])
    # PAL: the noise must outlast the units' lag to be seen through it; B averages over 1/(η_bw α)
    pal = {"pal_sigma": d["pal_sigma"], "pal_tau_xi": d.get("pal_tau", 10 * opts.dt),
           "pal_tau_hp": d.get("pal_tau", 10 * opts.dt), "pal_lr": d["pal_lr"]}  # fmt: skip
    for name, value in pal.items():
        if getattr(opts, name) is None:
            setattr(opts, name, value)
    if opts.pal_alpha is None:
        opts.pal_alpha = opts.pal_sigma**2 / 2
    return opts.lr, opts.dt, opts.batch_size, d["epochs"] if epochs is None else epochs


def _pal(opts: Options, dt: float) -> dict[str, float]:
    return {"sigma": opts.pal_sigma, "lr": opts.pal_lr, "tau_xi": opts.pal_tau_xi, "tau_hp": opts.pal_tau_hp,
            "alpha": opts.pal_alpha}  # fmt: skip


def seed_rngs(seeds: int, stream: int) -> list[np.random.Generator]:
    """One generator per seed and purpose, so a seed's run does not depend on how many seeds run beside it."""
    return [np.random.default_rng([seed, stream]) for seed in range(seeds)]


def frozen_copy(net: GLENet, batch: int) -> GLENet:
    """A copy that shares the weights and has its own state, for evaluation."""
    clone = copy.copy(net)
    clone.reset(batch)
    return clone


def build_net(opts: Options, sizes: list[int], taus: list[tuple[np.ndarray, np.ndarray]], seeds: int, dt: float,
         stream: int, gain: float = 1.0) -> GLENet:  # fmt: skip
    return GLENet(sizes, [t[0] for t in taus], [t[1] for t in taus], seed_rngs(seeds, stream), dt=dt, gain=gain,
                  feedback=opts.feedback, error_dynamics=opts.error_dynamics, gamma=opts.gamma,
                  pal=_pal(opts, dt), optimizer=opts.optimizer)  # fmt: skip


# ---------------------------------------------------------------- sequences: MNIST-1D and static tasks


def lag_layer_taus(opts: Options) -> tuple[np.ndarray, np.ndarray]:
    """τ_m and τ_r of one hidden lag layer: LE units (τ_r = τ_m) then LI units (τ_r = 0, log-spaced τ_m)."""
    tau_li = np.geomspace(opts.tau_li_min, opts.tau_li_max, opts.li_units)
    tau_m = np.concatenate([np.full(opts.le_units, opts.tau_le), tau_li])
    tau_r = np.concatenate([np.full(opts.le_units, opts.tau_le), np.zeros(opts.li_units)])
    return tau_m, tau_r


def task_network(opts: Options, n_in: int, n_out: int, seeds: int, *, sequence: bool = True) -> GLENet:
    """The untrained network ``run_task`` learns (options already resolved): lag layers for a sequence task,
    LE layers of widths ``opts.hidden`` for a static one, a linear LE output; seed s draws from [s, 1]."""
    if sequence:
        hidden_taus = [lag_layer_taus(opts)] * opts.layers
    else:
        hidden_taus = [(np.full(h, opts.tau_le), np.full(h, opts.tau_le)) for h in opts.hidden]
    sizes = [n_in] + [len(t[0]) for t in hidden_taus] + [n_out]
    taus = hidden_taus + [(np.full(n_out, opts.tau_le), np.full(n_out, opts.tau_le))]
    net = build_net(opts, sizes, taus, seeds, opts.dt, stream=1, gain=opts.init_gain)
    net.beta = opts.beta
    return net


def _output_error(kind: str, out: np.ndarray, target: np.ndarray, beta: float) -> np.ndarray:
    if kind == "regression":
        return beta * (target - out)
    z = np.exp(out - out.max(-1, keepdims=True))
    return beta * (target - z / z.sum(-1, keepdims=True))


def _present(net: GLENet, xs: np.ndarray, target: np.ndarray | None, *, kind: str, steps: int, readout: int,
             lr: float, learn: bool, noise: bool) -> np.ndarray:  # fmt: skip
    """Run one batch of sequences xs (S or 1, N, T, n_in): each value held for ``steps`` Euler steps, the
    target on during the last ``readout`` values. Returns the output summed over the readout window."""
    length = xs.shape[2]
    total = 0.0
    for t in range(length):
        on = t >= length - readout
        for _ in range(steps):
            out = net.forward(xs[:, :, t], noise=noise)
            if on:
                total = total + out
                if learn:
                    net.backward(_output_error(kind, out, target, net.beta))
                    net.update(lr)
            if noise:
                net.pal_step()
    return total


Progress = Callable[[int, int, dict[str, Any]], None] | None


def run_task(name: str, opts: Options, seeds: int, epochs: int | None,
             progress: Progress) -> tuple[list[dict[str, Any]], dict]:  # fmt: skip
    """Train on a task of ``neurodeploy.learning.tasks``: MNIST-1D as a sequence, the others held static."""
    from neurodeploy.learning.tasks import get_task

    task = get_task(name)
    sequence = name == "mnist1d"
    lr, dt, batch, epochs = resolved_settings(opts, "mnist1d" if sequence else "static", epochs)
    steps = int(round(1.0 / dt))
    if steps < 1 or abs(steps * dt - 1.0) > 1e-9:
        raise NeurodeployError(f"dt={dt:g} does not divide the time unit of one sequence value",
                               "learn_system('gle')", "use dt = 1/k for an integer k, e.g. 0.5")  # fmt: skip
    classify = task.kind == "classification"
    kind = "classification" if classify else "regression"

    center, spread = float(task.x_train.mean()), float(task.x_train.std())

    def as_sequence(x: np.ndarray) -> np.ndarray:
        if sequence:  # standardised, the generator's own scale
            return ((x - center) / spread)[:, :, None]
        return np.repeat(x[:, None, :], STATIC_LENGTH * opts.readout_samples, axis=1)

    xs_train, xs_val, xs_test = (as_sequence(x) for x in (task.x_train, task.x_val, task.x_test))
    length = xs_train.shape[1]
    readout = min(opts.readout_samples, length)
    if classify:
        n_out = int(max(task.y_train.max(), task.y_val.max(), task.y_test.max())) + 1
        y_train = np.eye(n_out)[task.y_train]
    else:
        y_train = task.y_train.reshape(len(task.y_train), -1)
        n_out = y_train.shape[1]
    net = task_network(opts, xs_train.shape[2], n_out, seeds, sequence=sequence)
    sizes = net.sizes
    order_rngs = seed_rngs(seeds, 2)
    noise = opts.feedback == "pal"

    def score(xs: np.ndarray, y: np.ndarray) -> list[float]:
        total = _present(frozen_copy(net, len(xs)), xs[None], None, kind=kind, steps=steps, readout=readout, lr=lr,
                         learn=False, noise=False)  # fmt: skip
        if classify:
            return (total.argmax(-1) == y[None]).mean(1).tolist()
        pred = total / (readout * steps)
        return ((pred - y.reshape(len(y), -1)[None]) ** 2).mean((1, 2)).tolist()

    history: list[dict[str, Any]] = []
    n = len(xs_train)
    for epoch in range(1, epochs + 1):
        if opts.learning:
            order = np.stack([r.permutation(n) for r in order_rngs])
            for start in range(0, n, batch):
                idx = order[:, start : start + batch]
                net.reset(idx.shape[1])
                _present(net, xs_train[idx], y_train[idx], kind=kind, steps=steps, readout=readout, lr=lr,
                         learn=True, noise=noise)  # fmt: skip
                net.check_finite("lr")
        key = "accuracy" if classify else "mse"
        entry: dict[str, Any] = {"epoch": epoch, f"test_{key}": score(xs_test, task.y_test),
                                 f"val_{key}": score(xs_val, task.y_val)}  # fmt: skip
        if net.weight_angles():
            entry["weight_angle"] = net.weight_angles()
        history.append(entry)
        if progress is not None:
            progress(epoch, epochs, entry)
    extra = {"lr": lr, "dt": dt, "batch_size": batch, "sizes": sizes, "readout_samples": readout}
    return history, extra


# ---------------------------------------------------------------- the lagged teacher


def teacher_architecture(opts: Options) -> tuple[list[int], list[tuple[np.ndarray, np.ndarray]]]:
    """Sizes and (τ_m, τ_r) per layer: lagging hidden units (τ_r = 0), an instantaneous linear output."""
    hidden = opts.hidden or TASK_DEFAULTS["lagged-teacher"]["hidden"]
    sizes = [TEACHER_INPUTS, *hidden, TEACHER_OUTPUTS]
    taus = [(np.geomspace(*TEACHER_TAU, h), np.zeros(h)) for h in hidden]
    taus.append((np.full(TEACHER_OUTPUTS, TEACHER_TAU[0]), np.full(TEACHER_OUTPUTS, TEACHER_TAU[0])))
    return sizes, taus


class SineInput:
    """A smooth random input per seed: each channel a sum of sinusoids with unit variance."""

    def __init__(self, seeds: int, stream: int) -> None:
        rngs = seed_rngs(seeds, 10)  # the spectrum is the seed's; phases differ per stream
        shape = (TEACHER_INPUTS, TEACHER_SINES)
        self.omega = np.stack([r.uniform(*TEACHER_OMEGA, shape) for r in rngs])
        self.phase = np.stack([r.uniform(0, 2 * np.pi, shape) for r in seed_rngs(seeds, 10 + stream)])
        self.amp = np.sqrt(2.0 / TEACHER_SINES)

    def at(self, t: np.ndarray) -> np.ndarray:
        """Inputs at times t (T,) as (T, S, 1, n_in)."""
        arg = self.omega[None] * t[:, None, None, None] + self.phase[None]
        return (self.amp * np.sin(arg)).sum(-1)[:, :, None, :]


def run_lagged_teacher(opts: Options, seeds: int, epochs: int | None,
                       progress: Callable[[int, int, dict[str, Any]], None] | None,
                       traces: dict[str, np.ndarray] | None = None) -> tuple[list[dict], dict]:  # fmt: skip
    """A student follows a teacher with the same lagging architecture, learning online for ``epochs``
    windows of ``window`` time units; each window logs the online MSE and the MSE on a held-out stream.
    ``traces``, when given, receives the held-out outputs (time, S, n_out) of the teacher and of the
    student before and after learning, for figures."""
    lr, dt, batch, epochs = resolved_settings(opts, "lagged-teacher", epochs)
    if batch != 1:
        raise NeurodeployError("the lagged teacher runs one continuous stream per seed", "batch_size",
                               "leave batch_size at None or 1")  # fmt: skip
    sizes, taus = teacher_architecture(opts)
    teacher = build_net(opts, sizes, taus, seeds, dt, stream=3, gain=opts.init_gain)
    student = build_net(opts, sizes, taus, seeds, dt, stream=4, gain=opts.init_gain)
    student.beta = opts.beta
    noise = opts.feedback == "pal"
    train_in, test_in = SineInput(seeds, 1), SineInput(seeds, 2)
    steps = int(round(opts.window / dt))
    settle = int(round(5 * TEACHER_TAU[1] / dt))
    test_steps = settle + int(round(50.0 / dt))
    test_x = test_in.at(np.arange(test_steps) * dt)
    probe = frozen_copy(teacher, 1)
    test_y = np.stack([probe.forward(x) for x in test_x])[settle:]

    def test_mse(label: str) -> list[float]:
        net = frozen_copy(student, 1)
        out = np.stack([net.forward(x) for x in test_x])[settle:]
        if traces is not None:
            traces["time"] = np.arange(len(test_y)) * dt
            traces["teacher"], traces[label] = test_y[:, :, 0], out[:, :, 0]
        return ((out - test_y) ** 2).mean((0, 2, 3)).tolist()

    history: list[dict[str, Any]] = [{"epoch": 0, "test_mse": test_mse("before"), "time": 0.0}]
    for epoch in range(1, epochs + 1):
        xs = train_in.at((np.arange(steps) + (epoch - 1) * steps) * dt)
        sq = np.zeros(seeds)
        for x in xs:
            target = teacher.forward(x)
            out = student.forward(x, noise=noise)
            sq += ((out - target) ** 2).mean((1, 2))
            if opts.learning:
                student.backward(opts.beta * (target - out))
                student.update(lr)
            if noise:
                student.pal_step()
        student.check_finite("lr")
        entry: dict[str, Any] = {"epoch": epoch, "test_mse": test_mse("after"), "online_mse": (sq / steps).tolist(),
                                 "time": epoch * steps * dt}  # fmt: skip
        if student.weight_angles():
            entry["weight_angle"] = student.weight_angles()
        history.append(entry)
        if progress is not None:
            progress(epoch, epochs, entry)
    extra = {"lr": lr, "dt": dt, "sizes": sizes, "teacher_tau": list(TEACHER_TAU), "omega": list(TEACHER_OMEGA)}
    return history, extra


__all__ = [
    "TASK_DEFAULTS",
    "SineInput",
    "build_net",
    "frozen_copy",
    "lag_layer_taus",
    "resolved_settings",
    "run_lagged_teacher",
    "run_task",
    "seed_rngs",
    "task_network",
    "teacher_architecture",
]

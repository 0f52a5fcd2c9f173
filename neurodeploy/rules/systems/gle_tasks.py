"""The tasks GLE learns: MNIST-1D as a sequence (the paper's), the lagged teacher, and the static tasks.

MNIST-1D feeds one value per Euler step into a net of hidden "lag" layers, each a mix of LE units
(τ_r = τ_m: instantaneous) and LI units (leaky integrators, τ_r ≈ 0, whose τ_m hold the past). By default a
sample is generated at 360 values spanning 72 time units (the generator's template 12 plus its largest
padding 60), integrated at dt = 0.2, with the target on and the output read at every step, as in the
authors' released MNIST-1D configuration. The lagged teacher is a GLE network with random fixed weights and
lagging units, driven by a smooth sum of sinusoids; a student of the same architecture learns to follow it
online, in real time.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError
from neurodeploy.rules.systems.gle import GLENet, Options

# per task: the options left None take these values. MNIST-1D: the authors' released configuration (72 time
# units per sample, 360 values, dt = 0.2, τ = 1.2, Adam 1e-3 per Euler step, batch 100, the target on at every
# step, ReduceLROnPlateau on the validation loss); its earlier, reduced protocol is EARLIER_MNIST1D_PROTOCOL.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "mnist1d": {"lr": 1e-3, "optimizer": "adam", "dt": 0.2, "batch_size": 100, "epochs": 60, "init_gain": 1.5,
                "tau_le": 1.2, "tau_li_mode": "split", "sequence_length": 360, "sequence_time": 72.0,
                "lr_schedule": "plateau", "pal_sigma": 0.05, "pal_lr": 20.0},
    "lagged-teacher": {"lr": 0.01, "optimizer": "sgd", "dt": 0.05, "batch_size": 1, "epochs": 30, "hidden": (8, 8),
                       "init_gain": 2.0, "pal_sigma": 0.1, "pal_tau": 1.0, "pal_lr": 0.5},
    "static": {"lr": 0.2, "optimizer": "sgd", "dt": 0.5, "batch_size": 16, "epochs": 20, "hidden": (30,),
               "init_gain": 1.0, "tau_le": 1.0, "readout_samples": 10, "lr_schedule": "none", "pal_sigma": 0.05,
               "pal_lr": 20.0},
}  # fmt: skip
# the earlier MNIST-1D protocol, as options: the generator's 40 values, one per time unit and Euler step, LI
# units with τ_r = 0 and τ_m log-spaced over 1..16, the target on during the last 10 values, Adam 1e-4, batch 32
EARLIER_MNIST1D_PROTOCOL: dict[str, Any] = {
    "sequence_length": 40, "sequence_time": 40.0, "dt": 1.0, "tau_le": 1.0, "tau_li_mode": "log",
    "tau_li_min": 1.0, "tau_li_max": 16.0, "tau_r_li": 0.0, "readout_samples": 10, "lr": 1e-4, "batch_size": 32,
    "lr_schedule": "none",
}  # fmt: skip
TAU_CLAMP = 100.0  # tau_li_mode="split": every time constant is clamped to [dt, TAU_CLAMP]
TEACHER_INPUTS, TEACHER_OUTPUTS, TEACHER_SINES = 2, 2, 6
TEACHER_TAU = (1.0, 4.0)  # the hidden units' τ_m range (τ_r = 0: they lag)
TEACHER_OMEGA = (0.5, 2.0)  # angular frequencies of the input sinusoids, per time unit
STATIC_LENGTH = 2  # a static sample is held for readout_samples × this many time units


def resolved_settings(opts: Options, kind: str, epochs: int | None) -> tuple[float, float, int, int]:
    """Fill the options left None with the task's defaults (so the result's config shows what ran)."""
    d = TASK_DEFAULTS[kind]
    for name in ("lr", "dt", "batch_size", "optimizer", "init_gain", "hidden", "tau_le", "tau_li_mode",
                 "readout_samples", "sequence_length", "sequence_time", "lr_schedule"):  # fmt: skip
        if getattr(opts, name) is None and name in d:
            setattr(opts, name, d[name])
    if kind == "mnist1d":
        if opts.readout_samples is None:  # the target on, and the output read, at every value
            opts.readout_samples = opts.sequence_length
        if opts.tau_r_li is None:
            opts.tau_r_li = opts.dt
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
    """τ_m and τ_r of one hidden lag layer: LE units (τ_m = τ_r = τ) then LI units (τ_r = tau_r_li). With
    ``tau_li_mode="split"`` the first half of the LI units has τ_m = τ/2 and the rest τ, and every constant is
    clamped to [dt, 100] (so τ_r = 0 becomes dt); with ``"log"`` the LI units' τ_m are log-spaced over
    [tau_li_min, tau_li_max] and nothing is clamped."""
    tau = opts.tau_le
    if opts.tau_li_mode == "split":
        half = opts.li_units // 2
        tau_li = np.concatenate([np.full(half, tau / 2), np.full(opts.li_units - half, tau)])
    else:
        tau_li = np.geomspace(opts.tau_li_min, opts.tau_li_max, opts.li_units)
    tau_r_li = opts.dt if opts.tau_r_li is None else opts.tau_r_li
    tau_m = np.concatenate([np.full(opts.le_units, tau), tau_li])
    tau_r = np.concatenate([np.full(opts.le_units, tau), np.full(opts.li_units, tau_r_li)])
    if opts.tau_li_mode == "split":
        tau_m, tau_r = np.clip(tau_m, opts.dt, TAU_CLAMP), np.clip(tau_r, opts.dt, TAU_CLAMP)
    return tau_m, tau_r


def output_taus(opts: Options, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """The linear output layer: LE units with τ_m = τ_r = τ (clamped like the lag layers in "split" mode)."""
    tau = opts.tau_le if opts.tau_li_mode != "split" else float(np.clip(opts.tau_le, opts.dt, TAU_CLAMP))
    return np.full(n_out, tau), np.full(n_out, tau)


def mnist1d_sequences(length: int) -> Any:
    """MNIST-1D with ``length`` values per sample, interpolated by the generator itself (its
    ``final_seq_length``); 40 is the generator's default and ``get_task("mnist1d")``."""
    from neurodeploy.learning import tasks

    return tasks.get_task("mnist1d") if length == MNIST1D_LENGTH else tasks.mnist1d_task(length=length)


MNIST1D_LENGTH = 40  # the generator's default final_seq_length


def task_network(opts: Options, n_in: int, n_out: int, seeds: int, *, sequence: bool = True) -> GLENet:
    """The untrained network ``run_task`` learns (options already resolved): lag layers for a sequence task,
    LE layers of widths ``opts.hidden`` for a static one, a linear LE output; seed s draws from [s, 1]."""
    if sequence:
        hidden_taus = [lag_layer_taus(opts)] * opts.layers
    else:
        hidden_taus = [(np.full(h, opts.tau_le), np.full(h, opts.tau_le)) for h in opts.hidden]
    sizes = [n_in] + [len(t[0]) for t in hidden_taus] + [n_out]
    taus = hidden_taus + [
        output_taus(opts, n_out) if sequence else (np.full(n_out, opts.tau_le), np.full(n_out, opts.tau_le))
    ]
    net = build_net(opts, sizes, taus, seeds, opts.dt, stream=1, gain=opts.init_gain)
    net.beta = opts.beta
    return net


def _output_error(kind: str, out: np.ndarray, target: np.ndarray, beta: float) -> np.ndarray:
    if kind == "regression":
        return beta * (target - out)
    z = np.exp(out - out.max(-1, keepdims=True))
    return beta * (target - z / z.sum(-1, keepdims=True))


def _loss(kind: str, out: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The loss the output error descends, per sequence: cross-entropy, or ½ the squared error."""
    if kind == "regression":
        return 0.5 * ((target - out) ** 2).sum(-1)
    shifted = out - out.max(-1, keepdims=True)
    return -(target * (shifted - np.log(np.exp(shifted).sum(-1, keepdims=True)))).sum(-1)


def _present(net: GLENet, xs: np.ndarray, target: np.ndarray | None, *, kind: str, steps: int, readout: int,
             lr: float | np.ndarray, learn: bool, noise: bool) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Run one batch of sequences xs (S or 1, N, T, n_in): each value held for ``steps`` Euler steps, the
    target on during the last ``readout`` values. Returns the output summed over the readout window and,
    when scoring with a target (learn False), the loss per sequence averaged over that window's steps."""
    length = xs.shape[2]
    total, loss = 0.0, 0.0
    for t in range(length):
        on = t >= length - readout
        for _ in range(steps):
            out = net.forward(xs[:, :, t], noise=noise)
            if on:
                total = total + out
                if target is not None and not learn:
                    loss = loss + _loss(kind, out, target)
                if learn:
                    net.backward(_output_error(kind, out, target, net.beta))
                    net.update(lr)
            if noise:
                net.pal_step()
    return total, np.asarray(loss) / (readout * steps)


class Plateau:
    """ReduceLROnPlateau per seed: after ``patience`` epochs without the validation loss falling below its
    best by a relative 1e-4, the rate is multiplied by ``factor`` (not below ``floor``)."""

    def __init__(self, lr: float, seeds: int, patience: int, factor: float, floor: float) -> None:
        self.lr = np.full(seeds, float(lr))
        self.best = np.full(seeds, np.inf)
        self.bad = np.zeros(seeds, int)
        self.patience, self.factor, self.floor = patience, factor, floor

    def step(self, val_loss: np.ndarray) -> None:
        better = val_loss < self.best * (1 - 1e-4)
        self.best = np.where(better, val_loss, self.best)
        self.bad = np.where(better, 0, self.bad + 1)
        cut = self.bad > self.patience
        lowered = np.maximum(self.lr * self.factor, self.floor)
        self.lr = np.where(cut & (self.lr - lowered > 1e-12), lowered, self.lr)
        self.bad = np.where(cut, 0, self.bad)


Progress = Callable[[int, int, dict[str, Any]], None] | None


def run_task(name: str, opts: Options, seeds: int, epochs: int | None,
             progress: Progress) -> tuple[list[dict[str, Any]], dict]:  # fmt: skip
    """Train on a task of ``neurodeploy.learning.tasks``: MNIST-1D as a sequence, the others held static."""
    from neurodeploy.learning.tasks import get_task

    sequence = name == "mnist1d"
    lr, dt, batch, epochs = resolved_settings(opts, "mnist1d" if sequence else "static", epochs)
    value_time = opts.sequence_time / opts.sequence_length if sequence else 1.0  # time units per value
    steps = int(round(value_time / dt))
    if steps < 1 or abs(steps * dt - value_time) > 1e-9:
        raise NeurodeployError(f"dt={dt:g} does not divide the time of one sequence value ({value_time:g})",
                               "learn_system('gle')", f"use dt = {value_time:g}/k for an integer k")  # fmt: skip
    task = mnist1d_sequences(int(opts.sequence_length)) if sequence else get_task(name)
    if sequence and task.x_train.shape[1] != opts.sequence_length:
        raise NeurodeployError(f"the MNIST-1D data has {task.x_train.shape[1]} values per sample, not "
                               f"sequence_length={opts.sequence_length}", "learn_system('gle')",
                               "generate it with gle_tasks.mnist1d_sequences(sequence_length)")  # fmt: skip
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

    def score(xs: np.ndarray, y: np.ndarray, with_loss: bool = False) -> tuple[list[float], np.ndarray]:
        target = (np.eye(n_out)[y] if classify else y.reshape(len(y), -1))[None] if with_loss else None
        total, loss = _present(frozen_copy(net, len(xs)), xs[None], target, kind=kind, steps=steps, readout=readout,
                               lr=lr, learn=False, noise=False)  # fmt: skip
        if classify:
            return (total.argmax(-1) == y[None]).mean(1).tolist(), loss
        pred = total / (readout * steps)
        return ((pred - y.reshape(len(y), -1)[None]) ** 2).mean((1, 2)).tolist(), loss

    schedule = Plateau(lr, seeds, opts.lr_patience, opts.lr_factor, opts.lr_min)
    plateau = opts.lr_schedule == "plateau"
    history: list[dict[str, Any]] = []
    n = len(xs_train)
    for epoch in range(1, epochs + 1):
        rate = schedule.lr if plateau else lr
        if opts.learning:
            order = np.stack([r.permutation(n) for r in order_rngs])
            for start in range(0, n, batch):
                idx = order[:, start : start + batch]
                net.reset(idx.shape[1])
                _present(net, xs_train[idx], y_train[idx], kind=kind, steps=steps, readout=readout, lr=rate,
                         learn=True, noise=noise)  # fmt: skip
                net.check_finite("lr")
        key = "accuracy" if classify else "mse"
        val_score, val_loss = score(xs_val, task.y_val, with_loss=plateau)
        entry: dict[str, Any] = {"epoch": epoch, f"test_{key}": score(xs_test, task.y_test)[0],
                                 f"val_{key}": val_score}  # fmt: skip
        if plateau:
            entry["val_loss"] = val_loss.mean(-1).tolist()
            entry["lr"] = np.broadcast_to(rate, (seeds,)).tolist()
            schedule.step(val_loss.mean(-1))
        if net.weight_angles():
            entry["weight_angle"] = net.weight_angles()
        history.append(entry)
        if progress is not None:
            progress(epoch, epochs, entry)
    extra = {"lr": lr, "dt": dt, "batch_size": batch, "sizes": sizes, "readout_samples": readout,
             "steps_per_value": steps}  # fmt: skip
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
    "EARLIER_MNIST1D_PROTOCOL",
    "TASK_DEFAULTS",
    "Plateau",
    "SineInput",
    "build_net",
    "frozen_copy",
    "lag_layer_taus",
    "mnist1d_sequences",
    "output_taus",
    "resolved_settings",
    "run_lagged_teacher",
    "run_task",
    "seed_rngs",
    "task_network",
    "teacher_architecture",
]

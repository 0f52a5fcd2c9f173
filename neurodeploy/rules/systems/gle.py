"""Generalized Latent Equilibrium (GLE): online, phase-free learning in networks with time constants.

Ellenberger et al., "Backpropagation through space, time, and the brain", arXiv 2403.16933 (2024-25).
Every representation neuron has a membrane time constant τ_m and a prospective time constant τ_r; its
rate follows the prospective voltage ŭ = u + τ_r u̇. Every neuron has an error partner with the two
constants swapped: it low-passes its input error with τ_r and looks ahead with τ_m, which undoes in the
backward direction the lag the forward direction introduced. Plasticity is always on (Ẇ = η ĕ rᵀ), so a
network learns online while it runs: no phases, no stored history, no backpropagation through time.

The float reference here is vectorised over seeds (leading axis) and over a batch of sequences; it is
integrated with forward Euler at ``dt``. ``feedback`` picks what carries ĕ down a layer: ``"transpose"``
(Wᵀ, the paper), ``"pal"`` (B learned with phaseless alignment learning, Max et al. 2023) or ``"fa"``
(fixed random B, a control). Tasks live in ``gle_tasks``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError
from neurodeploy.rules.systems import base

EQUATIONS = (
    "τ_m u̇ = W_ℓ r_{ℓ−1} + b_ℓ + γ ĕ_ℓ − u  (Ellenberger et al. 2024, GLE representation neuron)",
    "ŭ = u + τ_r u̇,  r = φ(ŭ)  (prospective potential and rate; LE is τ_r = τ_m)",
    "e_ℓ = φ′(ŭ_ℓ) ⊙ (B_{ℓ+1} ĕ_{ℓ+1}),  B_{ℓ+1} = W_{ℓ+1}ᵀ  (error neuron input)",
    "τ_r v̇ = e − v,  ĕ = v + τ_m v̇  (error neuron: the time constants swapped)",
    "e_L = β (y* − r_L) (regression) or β (onehot(y*) − softmax(r_L)) (classification)  (output error)",
    "Ẇ_ℓ = η ĕ_ℓ r_{ℓ−1}ᵀ,  ḃ_ℓ = η ĕ_ℓ  (always-on plasticity)",
    "Ḃ_{ℓ+1} = η_bw [ξ_ℓ (r^HP_{ℓ+1})ᵀ − α B_{ℓ+1}]  (feedback='pal', Max et al. 2023)",
)

FEEDBACK = ("transpose", "pal", "fa")
ERROR_DYNAMICS = ("prospective", "instantaneous")
TAU_LI_MODES = ("split", "log")
LR_SCHEDULES = ("plateau", "none")
TASK_LAGGED_TEACHER = "lagged-teacher"


@dataclass
class Options:
    """GLE options. ``None`` means the task's own default (see ``gle_tasks.TASK_DEFAULTS``)."""

    lr: float | None = None  # η: Ẇ = η ĕ rᵀ, per unit time
    dt: float | None = None  # Euler step, in the task's time unit
    gamma: float = 0.0  # γ: how strongly ĕ nudges the representation voltage
    beta: float = 1.0  # β: output error gain
    feedback: str = "transpose"  # transpose | pal | fa
    error_dynamics: str = "prospective"  # prospective (GLE) | instantaneous (ĕ = e, the control)
    batch_size: int | None = None  # sequences learned side by side (their updates are averaged)
    optimizer: str | None = None  # sgd (Ẇ = η ĕ rᵀ) | adam (the same ĕ rᵀ, Adam-normalised per step)
    init_gain: float | None = None  # initial weights N(0, gain²/fan_in)
    learning: bool = True  # False runs the network without plasticity (the untrained baseline)
    # MNIST-1D network: hidden lag layers of LE and LI units
    layers: int = 6
    le_units: int = 17
    li_units: int = 36
    tau_le: float | None = None  # τ: τ_m = τ_r of the LE units and the output (MNIST-1D 1.2, static tasks 1.0)
    tau_li_mode: str | None = None  # LI τ_m: "split" (first half τ/2, the rest τ) | "log" (tau_li_min..max)
    tau_li_min: float = 1.0  # tau_li_mode="log": the LI units' τ_m, log-spaced from min to max
    tau_li_max: float = 16.0
    tau_r_li: float | None = None  # the LI units' τ_r; None: dt (the released configuration), 0: pure lag
    readout_samples: int | None = None  # the last sequence values with the target on and read out (None: all)
    sequence_length: int | None = None  # MNIST-1D values per sample, as the generator interpolates them
    sequence_time: float | None = None  # time units one MNIST-1D sample spans
    lr_schedule: str | None = None  # "plateau" (lr × factor after patience epochs without a lower val loss) | "none"
    lr_patience: int = 2
    lr_factor: float = 0.5
    lr_min: float = 1e-5
    # lagged teacher
    hidden: tuple[int, ...] | None = None  # hidden widths: lagged teacher (8, 8), static tasks (30,)
    window: float = 100.0  # task time per logged epoch
    # PAL
    pal_sigma: float | None = None  # OU noise amplitude σ
    pal_tau_xi: float | None = None  # OU correlation time τ_ξ
    pal_tau_hp: float | None = None  # high-pass time constant τ_HP
    pal_alpha: float | None = None  # default σ²/2, which puts B's fixed point at about (D W)ᵀ
    pal_lr: float | None = None  # η_bw; B averages over about 1/(η_bw α)

    def checked(self) -> Options:
        def bad(name: str, value: Any, hint: str) -> NeurodeployError:
            return NeurodeployError(f"GLE option {name}={value!r} is invalid", "learn_system('gle')", hint)

        if self.feedback not in FEEDBACK:
            raise bad("feedback", self.feedback, f"use one of {', '.join(FEEDBACK)}")
        if self.optimizer not in (None, "sgd", "adam"):
            raise bad("optimizer", self.optimizer, "use 'sgd', 'adam' or None for the task's default")
        if self.error_dynamics not in ERROR_DYNAMICS:
            raise bad("error_dynamics", self.error_dynamics, f"use one of {', '.join(ERROR_DYNAMICS)}")
        for name in ("lr", "dt", "init_gain", "pal_sigma", "pal_tau_xi", "pal_tau_hp", "pal_alpha", "pal_lr"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value > 0):
                raise bad(name, value, "use a positive finite number or None for the task's default")
        for name in ("beta", "tau_li_min", "tau_li_max", "window", "lr_factor"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise bad(name, value, "use a positive finite number")
        for name in ("tau_le", "sequence_time"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value > 0):
                raise bad(name, value, "use a positive finite number or None for the task's default")
        if self.tau_r_li is not None and not (np.isfinite(self.tau_r_li) and self.tau_r_li >= 0):
            raise bad("tau_r_li", self.tau_r_li, "use τ_r ≥ 0, or None for dt")
        if self.tau_li_mode not in (None, *TAU_LI_MODES):
            raise bad("tau_li_mode", self.tau_li_mode, f"use one of {', '.join(TAU_LI_MODES)} or None")
        if self.lr_schedule not in (None, *LR_SCHEDULES):
            raise bad("lr_schedule", self.lr_schedule, f"use one of {', '.join(LR_SCHEDULES)} or None")
        if not (self.lr_factor < 1 and np.isfinite(self.lr_min) and self.lr_min >= 0 and self.lr_patience >= 0):
            raise bad("lr_factor", (self.lr_factor, self.lr_min, self.lr_patience),
                      "use 0 < lr_factor < 1, lr_min ≥ 0 and lr_patience ≥ 0")  # fmt: skip
        if self.sequence_length is not None and int(self.sequence_length) < 2:
            raise bad("sequence_length", self.sequence_length, "use 2 or more values, e.g. 40 (the generator's own)")
        if not (np.isfinite(self.gamma) and self.gamma >= 0):
            raise bad("gamma", self.gamma, "use γ ≥ 0 (0 switches nudging off)")
        if self.tau_li_max < self.tau_li_min:
            raise bad("tau_li_max", self.tau_li_max, f"use a value ≥ tau_li_min={self.tau_li_min}")
        for name in ("layers", "readout_samples"):
            if getattr(self, name) is not None and int(getattr(self, name)) < 1:
                raise bad(name, getattr(self, name), "use 1 or more")
        if self.le_units < 0 or self.li_units < 0 or self.le_units + self.li_units < 1:
            raise bad("le_units", (self.le_units, self.li_units), "use non-negative counts with at least one unit")
        if self.batch_size is not None and self.batch_size < 1:
            raise bad("batch_size", self.batch_size, "use 1 or more")
        if self.hidden is not None:
            self.hidden = tuple(int(h) for h in self.hidden)
        if self.hidden is not None and (not self.hidden or min(self.hidden) < 1):
            raise bad("hidden", self.hidden, "use a non-empty tuple of positive layer widths, e.g. (16, 16)")
        return self


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between the matrices a[s] and b[s] per seed (leading axis), as flat vectors."""
    a2, b2 = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    cos = (a2 * b2).sum(1) / np.maximum(np.linalg.norm(a2, axis=1) * np.linalg.norm(b2, axis=1), 1e-300)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


class GLENet:
    """A layered GLE network for ``S`` seeds at once; state carries a batch axis: arrays are (S, N, n).

    ``tau_m[ℓ]`` and ``tau_r[ℓ]`` are per-unit constants of layer ℓ (hidden layers use tanh, the output
    layer is linear). ``weights`` are (S, n_out, n_in) per layer; the feedback into layer ℓ is stored with
    the shape of W_{ℓ+1} (``feedback_w[ℓ+1]``), so e_ℓ = φ′ ⊙ (ĕ_{ℓ+1} · feedback_w[ℓ+1]) and B = its
    transpose.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        tau_m: Sequence[np.ndarray],
        tau_r: Sequence[np.ndarray],
        rngs: Sequence[np.random.Generator],
        *,
        dt: float,
        gain: float = 1.0,
        feedback: str = "transpose",
        error_dynamics: str = "prospective",
        gamma: float = 0.0,
        pal: dict[str, float] | None = None,
        optimizer: str = "sgd",
    ) -> None:
        self.sizes = list(sizes)
        self.n_layers = len(sizes) - 1
        self.dt = float(dt)
        self.tau_m = [np.asarray(t, float) for t in tau_m]
        self.tau_r = [np.asarray(t, float) for t in tau_r]
        for ell, tm in enumerate(self.tau_m):
            if tm.min() < self.dt:
                raise NeurodeployError(
                    f"layer {ell + 1} has τ_m={tm.min():g} below the Euler step dt={self.dt:g}",
                    "learn_system('gle')",
                    "lower dt (Euler is unstable for dt > τ_m)",
                )
        # an error neuron with τ_r below dt follows its input within one Euler step
        self.tau_r_err = [np.maximum(t, self.dt) for t in self.tau_r]
        self.feedback, self.error_dynamics, self.gamma = feedback, error_dynamics, float(gamma)
        self.rngs = list(rngs)
        self.weights = [self._init(n_out, n_in, gain) for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)]
        self.biases = [np.zeros((len(self.rngs), n)) for n in sizes[1:]]
        self.feedback_w: list[np.ndarray | None] = [None] * self.n_layers
        if feedback in ("pal", "fa"):
            for ell in range(1, self.n_layers):
                self.feedback_w[ell] = self._init(sizes[ell + 1], sizes[ell], gain)
        self.pal = dict(pal or {})
        self.beta = 1.0
        self.optimizer = optimizer
        self.adam_t = 0
        self.adam_m = [np.zeros_like(p) for w, b in zip(self.weights, self.biases, strict=True) for p in (w, b)]
        self.adam_v = [np.zeros_like(p) for p in self.adam_m]
        self.reset(1)

    def _init(self, n_out: int, n_in: int, gain: float) -> np.ndarray:
        return np.stack([r.normal(0.0, gain / np.sqrt(n_in), (n_out, n_in)) for r in self.rngs])

    def reset(self, batch: int) -> None:
        """Zero all voltages and error neurons for a new batch of ``batch`` sequences."""
        s = len(self.rngs)
        self.u = [np.zeros((s, batch, n)) for n in self.sizes[1:]]
        self.v = [np.zeros((s, batch, n)) for n in self.sizes[1:]]
        self.err = [np.zeros((s, batch, n)) for n in self.sizes[1:]]
        self.rates: list[np.ndarray] = []
        self.slopes: list[np.ndarray] = []
        if self.feedback == "pal":
            self.xi = [np.zeros((s, batch, n)) for n in self.sizes[1:]]
            self.r_hp = [np.zeros((s, batch, n)) for n in self.sizes[1:]]
            self.r_prev: list[np.ndarray] | None = None  # the first step after a reset has no Δr

    def forward(self, x: np.ndarray, *, noise: bool = False) -> np.ndarray:
        """One Euler step of the representation neurons, bottom-up; x is (S, N, n_in). Returns r_L."""
        dt, last = self.dt, self.n_layers - 1
        r = x
        self.rates, self.slopes = [x], []
        for ell in range(self.n_layers):
            current = r @ self.weights[ell].transpose(0, 2, 1) + self.biases[ell][:, None, :]
            if self.gamma:
                current = current + self.gamma * self.err[ell]
            u_dot = (current - self.u[ell]) / self.tau_m[ell]
            u_breve = self.u[ell] + self.tau_r[ell] * u_dot
            self.u[ell] = self.u[ell] + dt * u_dot
            if ell == last:
                r = u_breve
                self.slopes.append(np.ones_like(r))
            else:
                if noise:
                    u_breve = u_breve + self.xi[ell]
                r = np.tanh(u_breve)
                self.slopes.append(1.0 - r * r)
            self.rates.append(r)
        return r

    def backward(self, output_error: np.ndarray) -> None:
        """One Euler step of the error neurons, top-down, from the output error e_L (S, N, n_L)."""
        e = output_error * self.slopes[-1]
        for ell in reversed(range(self.n_layers)):
            if ell < self.n_layers - 1:
                fb = self.weights[ell + 1] if self.feedback == "transpose" else self.feedback_w[ell + 1]
                e = self.slopes[ell] * (self.err[ell + 1] @ fb)
            if self.error_dynamics == "prospective":
                v_dot = (e - self.v[ell]) / self.tau_r_err[ell]
                self.err[ell] = self.v[ell] + self.tau_m[ell] * v_dot
                self.v[ell] = self.v[ell] + self.dt * v_dot
            else:
                self.err[ell] = e

    def update(self, lr: float | np.ndarray) -> None:
        """Ẇ = η ĕ rᵀ and ḃ = η ĕ, one Euler step, averaged over the batch. With ``optimizer="adam"`` the
        same per-step ĕ rᵀ goes through Adam's per-synapse normalisation instead of a fixed η."""
        batch = self.err[0].shape[1]
        # one rate for all seeds, or one per seed (S,) as a learning-rate schedule leaves them
        lr_w, lr_b = (lr, lr) if np.ndim(lr) == 0 else (np.asarray(lr)[:, None, None], np.asarray(lr)[:, None])
        for ell in range(self.n_layers):
            grad_w = self.err[ell].transpose(0, 2, 1) @ self.rates[ell] / batch
            grad_b = self.err[ell].mean(1)
            if self.optimizer == "adam":
                grad_w, grad_b = self._adam(ell, grad_w, grad_b)
                self.weights[ell] += lr_w * grad_w
                self.biases[ell] += lr_b * grad_b
            else:
                self.weights[ell] += lr_w * self.dt * grad_w
                self.biases[ell] += lr_b * self.dt * grad_b

    def _adam(self, ell: int, grad_w: np.ndarray, grad_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b1, b2, eps = 0.9, 0.999, 1e-8
        if ell == 0:
            self.adam_t += 1
        out = []
        for k, g in ((2 * ell, grad_w), (2 * ell + 1, grad_b)):
            self.adam_m[k] = b1 * self.adam_m[k] + (1 - b1) * g
            self.adam_v[k] = b2 * self.adam_v[k] + (1 - b2) * g * g
            m_hat = self.adam_m[k] / (1 - b1**self.adam_t)
            v_hat = self.adam_v[k] / (1 - b2**self.adam_t)
            out.append(m_hat / (np.sqrt(v_hat) + eps))
        return out[0], out[1]

    def pal_step(self) -> None:
        """PAL: B_{ℓ+1} learns from the OU noise ξ_ℓ and the high-passed rate of layer ℓ+1; then ξ moves."""
        dt, p = self.dt, self.pal
        prev = self.r_prev or self.rates[1:]
        for ell in range(self.n_layers):
            r = self.rates[ell + 1]
            self.r_hp[ell] = self.r_hp[ell] + (r - prev[ell]) - (dt / p["tau_hp"]) * self.r_hp[ell]
        self.r_prev = list(self.rates[1:])
        batch = self.xi[0].shape[1]
        for ell in range(1, self.n_layers):
            corr = self.r_hp[ell].transpose(0, 2, 1) @ self.xi[ell - 1] / batch
            self.feedback_w[ell] += p["lr"] * dt * (corr - p["alpha"] * self.feedback_w[ell])
        k = dt / p["tau_xi"]
        for ell in range(self.n_layers - 1):
            w = np.stack([r.standard_normal(self.xi[ell].shape[1:]) for r in self.rngs])
            self.xi[ell] = self.xi[ell] - k * self.xi[ell] + p["sigma"] * np.sqrt(k) * w

    def weight_angles(self) -> dict[str, list[float]]:
        """∠(B_{ℓ+1}, W_{ℓ+1}ᵀ) per feedback matrix and seed, in degrees (empty for ``transpose``)."""
        if self.feedback == "transpose":
            return {}
        return {f"B{ell + 1}": _angle(self.feedback_w[ell], self.weights[ell]).tolist()
                for ell in range(1, self.n_layers)}  # fmt: skip

    def check_finite(self, what: str = "lr") -> None:
        if not all(np.isfinite(w).all() for w in self.weights):
            raise NeurodeployError(
                "the GLE network diverged (non-finite weights)", "learn_system('gle')", f"lower the option {what}"
            )


def learn(
    *,
    variant: str,
    profile: str,
    task: str | None,
    seeds: int,
    epochs: int | None,
    progress: Callable[[int, int, dict[str, Any]], None] | None,
    **options: Any,
) -> Any:
    """Train GLE networks for ``seeds`` seeds side by side; ``task`` None is MNIST-1D (the paper's)."""
    from neurodeploy.rules.systems import gle_tasks

    if variant == "chip":
        from neurodeploy.rules.systems.gle_chip import learn_chip

        return learn_chip(profile=profile, task=task, seeds=seeds, epochs=epochs, progress=progress, **options)
    started = time.perf_counter()
    opts = base.make_options(Options, "gle", options)
    task = task or "mnist1d"
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run raises one error naming lr instead
        if task == TASK_LAGGED_TEACHER:
            history, extra = gle_tasks.run_lagged_teacher(opts, seeds, epochs, progress)
        else:
            history, extra = gle_tasks.run_task(task, opts, seeds, epochs, progress)
    how = "Euler integration of the GLE neuron and plasticity equations, vectorised over seeds and sequences"
    return base.system_result(
        "gle",
        variant,
        profile,
        opts,
        history,
        equations=EQUATIONS,
        provenance={"all": {"where": "host float64 (the paper's equations; no chip)", "how": how}},
        started=started,
        extra_config={"task": task, **extra},
    )


__all__ = ["EQUATIONS", "GLENet", "Options", "learn"]

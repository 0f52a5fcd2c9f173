"""Phaseless Alignment Learning in the dendritic cortical microcircuit: Max, Kriener, Pineda García,
Nowotny, Jaras, Senn and Petrovici, "Learning efficient backprojections across cortical hierarchies in
real time", ICANN 2023 (arXiv 2212.10249), on the microcircuit of Sacramento, Costa, Bengio and Senn,
"Dendritic cortical microcircuits approximate the backpropagation algorithm", NeurIPS 2018.

Every hidden pyramidal neuron has a basal compartment (forward input W r_{ℓ−1}), an apical compartment
(top-down input B r_{ℓ+1} plus the lateral interneurons' W_PI r_I) and a soma that integrates both. Each
hidden layer has as many interneurons as the layer above has pyramids; they are driven by the layer's
pyramids (W_IP) and weakly nudged by the layer above's somas, so they learn to predict the layer above.
Once they do (the self-predicting state), the apical potential is zero unless the output is nudged
towards a target: it then carries the error, and the forward weights learn by matching the soma to the
basal dendrite's prediction (Urbanczik and Senn 2014). The output pyramids are nudged towards the target.

Rates are prospective: r = φ(u + τ u̇) with τ = C / (g_l + g_B + g_A), which equals the compartments'
conductance-weighted average at every instant, so the network answers without lag and the time step only
has to resolve the noise and the high-pass filter. PAL teaches B from Ornstein-Uhlenbeck noise on the
hidden somas and the layer above's high-passed rate, always on, with no phases; FA keeps B at its random
start with no noise.

Patterns run in a batch, each with its own copy of the network's state (potentials, noise, filters), and
the weight updates of a step are summed over the batch (as if the batch's patterns followed one another).
Seeds run side by side on a leading axis.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError
from neurodeploy.learning import metrics
from neurodeploy.learning.tasks import Task, get_task
from neurodeploy.rules.systems import base

NAME = "microcircuit"
FEEDBACKS = ("pal", "fa", "frozen")

EQUATIONS = (
    "C u̇ = −g_l u + g_B (v_bas − u) + g_A (v_api − u),  v_bas = W_ℓ r_{ℓ−1},  v_api = B_ℓ r_{ℓ+1} + W_PI r_I  "
    "(Sacramento et al. 2018, Sec. 2, hidden pyramidal neuron)",
    "C u̇_N = −g_l u_N + g_B (v_bas − u_N) + g_som (u_tgt − u_N)  (Sacramento et al. 2018, Sec. 2, output neuron "
    "nudged towards the target)",
    "C u̇_I = −g_l u_I + g_D (W_IP r_ℓ − u_I) + g_som,I (u_{ℓ+1} − u_I)  (Sacramento et al. 2018, Sec. 2, "
    "interneuron nudged by the layer above)",
    "r = φ(u + τ u̇),  τ = C / (g_l + g_B + g_A)  (prospective rate; Max et al. 2023, Sec. 3, after Haider et al. 2021)",
    "Ẇ_ℓ = η_ℓ (φ(u_ℓ) − φ(v̂_bas)) r_{ℓ−1}ᵀ,  v̂_bas = g_B / (g_l + g_B + g_A) v_bas  (g_A = 0 at the output)  "
    "(Sacramento et al. 2018, Sec. 2; Urbanczik & Senn 2014)",
    "Ẇ_IP = η_IP (φ(u_I) − φ(v̂_I)) r_ℓᵀ,  v̂_I = g_D / (g_l + g_D) W_IP r_ℓ;  Ẇ_PI = −η_PI v_api r_Iᵀ  "
    "(Sacramento et al. 2018, Sec. 2)",
    "τ_ξ ξ̇ = −ξ + σ √τ_ξ η(t)  (OU noise on the hidden somas; Max et al. 2023, Sec. 2)",
    "τ_HP ṙ^HP = τ_HP ṙ_{ℓ+1} − r^HP  (high-pass of the upper rate; Max et al. 2023, Sec. 2)",
    "Ḃ_ℓ = η_bw [ξ_ℓ (r^HP_{ℓ+1})ᵀ − α B_ℓ]  (PAL; Max et al. 2023, Sec. 2)",
)


@dataclass(frozen=True)
class Options:
    """Time in the paper's units (a pattern lasts 1.0); learning rates per unit time, each step's update
    summed over the batch's patterns."""

    hidden: tuple[int, ...] = (30,)  # 4-30-3 on Yin-Yang
    feedback: str = "pal"  # "pal"; "fa": no noise, B fixed; "frozen": PAL's noise, B fixed
    dt: float = 0.1  # paper 0.01; at τ_ξ = τ_HP = dt the noise is white and the high-pass a difference
    pattern_time: float = 1.0
    batch: int = 20  # patterns presented side by side, updates summed (paper: one at a time)
    g_l: float = 0.1
    g_b: float = 1.0
    g_a: float = 0.8
    g_d: float = 1.0
    g_som: float = 0.8  # output nudging towards the target
    g_som_i: float = 0.2  # interneuron nudging by the layer above
    lr_up: tuple[float, ...] = (50.0, 0.1)  # η per forward layer, bottom first; (hidden, output) for any depth
    lr_ip: float = 0.65  # ≈ η_out (g_l + g_D + g_som,I) / g_som,I: the interneurons keep pace with the output
    lr_pi: float = 0.1  # W_PI follows −B as PAL changes B
    lr_bw: float = 20.0  # paper η_down 0.5
    sigma: float = 0.01
    tau_xi: float = 0.1
    tau_hp: float = 0.1
    alpha: float = 1e-6
    target_high: float = 1.0  # target potential of the correct output
    target_low: float = 0.1
    init_gain: float = 2.0  # forward weights ~ N(0, gain² / fan-in)
    settle_steps: int = 8  # loop iterations when scoring (no noise, no target)
    seed_offset: int = 0

    def checked(self) -> Options:
        def bad(name: str, why: str, hint: str) -> NeurodeployError:
            return NeurodeployError(f"option {name}={getattr(self, name)!r} {why}", f"{NAME} options", hint)

        numbers = ("dt", "pattern_time", "g_l", "g_b", "g_a", "g_d", "g_som", "g_som_i", "lr_ip", "lr_pi", "lr_bw",
                   "sigma", "tau_xi", "tau_hp", "alpha", "target_high", "target_low", "init_gain")  # fmt: skip
        for name in numbers:
            try:
                if not np.isfinite(float(getattr(self, name))):
                    raise ValueError
            except (TypeError, ValueError):
                raise bad(
                    name, "is not a finite number", f"use a number, e.g. the default {getattr(Options, name)}"
                ) from None
        if self.feedback not in FEEDBACKS:
            raise bad("feedback", "is not a feedback of the microcircuit", f"use one of {', '.join(FEEDBACKS)}")
        hidden = tuple(int(h) for h in np.atleast_1d(self.hidden))
        if not hidden or min(hidden) < 1:
            raise bad("hidden", "needs one or more positive layer sizes", "e.g. hidden=(30,)")
        lr_up = tuple(float(v) for v in np.atleast_1d(self.lr_up))
        if len(lr_up) == 2 and len(hidden) > 1:  # (hidden, output): one rate for every hidden layer
            lr_up = (lr_up[0],) * len(hidden) + (lr_up[1],)
        if len(lr_up) != len(hidden) + 1:
            raise bad("lr_up", f"needs one rate per forward layer ({len(hidden) + 1})", "e.g. lr_up=(50.0, 0.1)")
        for name in ("dt", "pattern_time", "g_l", "g_b", "tau_xi", "tau_hp"):
            if not float(getattr(self, name)) > 0:
                raise bad(name, "must be positive", f"use the default {getattr(Options, name)}")
        if self.dt > self.pattern_time:
            raise bad("dt", "is longer than a pattern", "use dt <= pattern_time")
        if self.dt > min(self.tau_xi, self.tau_hp):
            raise bad("dt", "is longer than τ_ξ or τ_HP, which it must resolve", "lower dt or raise tau_xi/tau_hp")
        for name in ("g_a", "g_d", "g_som", "g_som_i", "lr_ip", "lr_pi", "lr_bw", "sigma", "alpha"):
            if not float(getattr(self, name)) >= 0:
                raise bad(name, "must be zero or positive", f"use the default {getattr(Options, name)}")
        if min(lr_up) < 0:
            raise bad("lr_up", "must be zero or positive", "e.g. lr_up=(50.0, 0.1)")
        if int(self.batch) < 1 or int(self.settle_steps) < 1:
            raise bad("batch" if int(self.batch) < 1 else "settle_steps", "must be at least 1", "e.g. 20")
        out = replace(self, hidden=hidden, lr_up=lr_up, batch=int(self.batch), settle_steps=int(self.settle_steps))
        # FA runs without noise and B fixed, "frozen" with PAL's noise and B fixed: they set σ and η_bw to 0, and
        # refuse a value the caller chose that they would discard
        fixed = {"fa": ("sigma", "lr_bw"), "frozen": ("lr_bw",)}.get(self.feedback, ())
        for name in fixed:
            if float(getattr(self, name)) not in (0.0, float(getattr(Options, name))):
                raise bad(name, f"has no effect with feedback={self.feedback!r}, which sets it to 0",
                          f"leave {name} at its default, or use feedback='pal'"
                          + (" (or 'frozen' for PAL's noise with B fixed)" if name == "sigma" else ""))  # fmt: skip
            out = replace(out, **{name: 0.0})
        return out

    @property
    def steps_per_pattern(self) -> int:
        return max(1, int(round(self.pattern_time / self.dt)))


# ---- the neuron and plasticity equations, one function each ---------------------------------------------


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def soma_derivative(u: np.ndarray, v_bas: np.ndarray, v_api: np.ndarray, o: Options, c: float = 1.0) -> np.ndarray:
    """u̇ of a hidden pyramidal soma (Sacramento et al. 2018)."""
    return (-o.g_l * u + o.g_b * (v_bas - u) + o.g_a * (v_api - u)) / c


def soma_steady_state(v_bas: np.ndarray, v_api: np.ndarray, o: Options) -> np.ndarray:
    """The soma's fixed point: the conductance-weighted average of its compartments (and the leak's 0)."""
    return (o.g_b * v_bas + o.g_a * v_api) / (o.g_l + o.g_b + o.g_a)


def prospective_potential(
    u: np.ndarray, v_bas: np.ndarray, v_api: np.ndarray, o: Options, c: float = 1.0
) -> np.ndarray:
    """ŭ = u + τ u̇ with τ = C / (g_l + g_B + g_A): the rate's argument, ahead of the lagging soma."""
    return u + c / (o.g_l + o.g_b + o.g_a) * soma_derivative(u, v_bas, v_api, o, c)


def ou_step(xi: np.ndarray, normal: np.ndarray, o: Options) -> np.ndarray:
    """One Euler-Maruyama step of τ_ξ ξ̇ = −ξ + σ √τ_ξ η(t); stationary variance σ² / (2 − dt/τ_ξ)."""
    return xi + (np.sqrt(o.tau_xi * o.dt) * o.sigma * normal - o.dt * xi) / o.tau_xi


def high_pass_step(r_hp: np.ndarray, r_now: np.ndarray, r_before: np.ndarray, o: Options) -> np.ndarray:
    """r^HP ← r^HP + Δr − (dt/τ_HP) r^HP: the upper rate's change, forgotten over τ_HP."""
    return r_hp + (r_now - r_before) - o.dt / o.tau_hp * r_hp


def pal_feedback_update(b: np.ndarray, xi: np.ndarray, r_hp: np.ndarray, o: Options) -> np.ndarray:
    """ΔB = η_bw dt [Σ_batch ξ (r^HP)ᵀ − n_batch α B] for B of shape (seeds, n_ℓ, n_{ℓ+1})."""
    return o.lr_bw * o.dt * (np.swapaxes(xi, -1, -2) @ r_hp - xi.shape[-2] * o.alpha * b)


def self_predicting_weights(w_above: np.ndarray, b: np.ndarray, upper_is_output: bool, o: Options) -> tuple:
    """W_IP and W_PI of the self-predicting state: the interneurons' dendritic prediction equals the layer
    above's undisturbed soma, and W_PI = −B cancels the top-down input."""
    upper_gain = o.g_b / (o.g_l + o.g_b + (0.0 if upper_is_output else o.g_a))
    return upper_gain * (o.g_l + o.g_d) / o.g_d * w_above, -b.copy()


# ---- the network ------------------------------------------------------------------------------------------


class Microcircuit:
    """Weights (leading seed axis) and the per-pattern state of one run."""

    def __init__(self, sizes: list[int], seeds: int, o: Options, rng: np.random.Generator) -> None:
        self.o, self.sizes, self.seeds = o, sizes, seeds
        self.w = [o.init_gain * rng.standard_normal((seeds, n_out, n_in)) / np.sqrt(n_in)
                  for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)]  # fmt: skip
        self.b = [
            rng.standard_normal((seeds, n, n_up)) / np.sqrt(n_up)
            for n, n_up in zip(sizes[1:-1], sizes[2:], strict=True)
        ]
        self.w_ip, self.w_pi = [], []
        for k in range(len(self.b)):
            w_ip, w_pi = self_predicting_weights(self.w[k + 1], self.b[k], k + 2 == len(sizes) - 1, o)
            self.w_ip.append(w_ip)
            self.w_pi.append(w_pi)
        self.state: dict[str, list[np.ndarray]] = {}

    @property
    def depth(self) -> int:
        return len(self.sizes) - 2  # hidden layers

    def reset(self, batch: int) -> None:
        """Zero rates, filters and noise: ξ starts at 0 and reaches its stationary spread within a few τ_ξ (in
        one step at dt = τ_ξ, where each step's ξ is a fresh draw)."""
        shape = [(self.seeds, batch, n) for n in self.sizes]
        self.state = {
            "r": [np.zeros(s) for s in shape],
            "u": [np.zeros(s) for s in shape],
            "r_i": [np.zeros(s) for s in shape[2:]],
            "v_api": [np.zeros(s) for s in shape[1:-1]],
            "xi": [np.zeros(s) for s in shape[1:-1]],
            "hp": [np.zeros(s) for s in shape[2:]],
        }

    def forward(self, x: np.ndarray, u_target: np.ndarray | None) -> dict[str, list[np.ndarray]]:
        """One time step of the prospective network. Top-down and interneuron inputs arrive from the previous
        step (the loop's one-step delay); everything bottom-up is instantaneous."""
        o, st = self.o, self.state
        r, u, v_hat, v_api = [x], [x], [x], []
        for k in range(self.depth):
            v_bas = r[-1] @ np.swapaxes(self.w[k], -1, -2)
            api = st["r"][k + 2] @ np.swapaxes(self.b[k], -1, -2) + st["r_i"][k] @ np.swapaxes(self.w_pi[k], -1, -2)
            u_k = soma_steady_state(v_bas, api, o)
            r.append(sigmoid(u_k + st["xi"][k]))
            u.append(u_k + st["xi"][k])
            v_hat.append(o.g_b / (o.g_l + o.g_b + o.g_a) * v_bas)
            v_api.append(api)
        v_bas = r[-1] @ np.swapaxes(self.w[-1], -1, -2)
        g_nudge = 0.0 if u_target is None else o.g_som
        u_out = (o.g_b * v_bas + g_nudge * (0.0 if u_target is None else u_target)) / (o.g_l + o.g_b + g_nudge)
        r.append(sigmoid(u_out))
        u.append(u_out)
        v_hat.append(o.g_b / (o.g_l + o.g_b) * v_bas)
        u_i, v_hat_i, r_i = [], [], []
        for k in range(self.depth):
            v_dend = r[k + 1] @ np.swapaxes(self.w_ip[k], -1, -2)
            u_ik = (o.g_d * v_dend + o.g_som_i * u[k + 2]) / (o.g_l + o.g_d + o.g_som_i)
            u_i.append(u_ik)
            v_hat_i.append(o.g_d / (o.g_l + o.g_d) * v_dend)
            r_i.append(sigmoid(u_ik))
        return {"r": r, "u": u, "v_hat": v_hat, "v_api": v_api, "u_i": u_i, "v_hat_i": v_hat_i, "r_i": r_i}

    def step(self, x: np.ndarray, u_target: np.ndarray | None, normal: list[np.ndarray] | None, onset: bool) -> None:
        """Advance one dt: noise, rates, then every plasticity rule on what this step saw."""
        o, st = self.o, self.state
        if normal is not None:
            st["xi"] = [ou_step(xi, n, o) for xi, n in zip(st["xi"], normal, strict=True)]
        net = self.forward(x, u_target)
        r, u, v_hat = net["r"], net["u"], net["v_hat"]
        hp = []
        for k in range(self.depth):
            before = r[k + 2] if onset else st["r"][k + 2]  # a new pattern's jump is no noise response
            hp.append(high_pass_step(st["hp"][k], r[k + 2], before, o))
        dt = o.dt
        for k in range(len(self.w)):
            err = sigmoid(u[k + 1]) - sigmoid(v_hat[k + 1])
            self.w[k] += o.lr_up[k] * dt * (np.swapaxes(err, -1, -2) @ r[k])
        for k in range(self.depth):
            err_i = sigmoid(net["u_i"][k]) - sigmoid(net["v_hat_i"][k])
            self.w_ip[k] += o.lr_ip * dt * (np.swapaxes(err_i, -1, -2) @ r[k + 1])
            self.w_pi[k] -= o.lr_pi * dt * (np.swapaxes(net["v_api"][k], -1, -2) @ st["r_i"][k])
            if o.lr_bw > 0:
                self.b[k] += pal_feedback_update(self.b[k], st["xi"][k], hp[k], o)
        st.update(r=r, u=u, r_i=net["r_i"], v_api=net["v_api"], hp=hp)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Output potentials with no noise and no target, after the loop has settled."""
        self.reset(x.shape[-2])
        for _ in range(self.o.settle_steps):
            net = self.forward(x, None)
            self.state.update(r=net["r"], r_i=net["r_i"])
        return net["u"][-1]


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
    """Train the microcircuit on ``task`` (default Yin-Yang) with PAL (or FA) feedback, seeds side by side."""
    if variant == "chip":
        from neurodeploy.rules.systems.microcircuit_chip import learn_chip

        return learn_chip(profile=profile, task=task, seeds=seeds, epochs=epochs, progress=progress, **options)
    started = time.perf_counter()
    o: Options = base.make_options(Options, NAME, options)
    data: Task = get_task(task or "yinyang")
    if data.kind != "classification":
        raise NeurodeployError(f"the microcircuit classifies; task {data.name!r} is a regression", "task",
                               "use yinyang, digits or mnist1d")  # fmt: skip
    epochs = 30 if epochs is None else epochs
    sizes = [data.n_in, *o.hidden, data.n_out]
    rng = np.random.default_rng([o.seed_offset, 20180716])  # weights and data order: the same for PAL and FA
    noise_rng = np.random.default_rng([o.seed_offset, 20180716, 1])
    net = Microcircuit(sizes, seeds, o, rng)
    n_train, batch = len(data.y_train), min(o.batch, len(data.y_train))
    n_steps = o.steps_per_pattern
    targets = np.where(np.eye(data.n_out, dtype=bool), o.target_high, o.target_low)
    history: list[dict[str, Any]] = []
    for epoch in range(1, epochs + 1):
        order = np.stack([rng.permutation(n_train) for _ in range(seeds)])
        net.reset(batch)
        for start in range(0, n_train - batch + 1, batch):
            idx = order[:, start : start + batch]
            x, u_tgt = data.x_train[idx], targets[data.y_train[idx]]
            for t in range(n_steps):
                normal = [noise_rng.standard_normal(xi.shape) for xi in net.state["xi"]] if o.sigma > 0 else None
                net.step(x, u_tgt, normal, onset=t == 0)
        if not all(np.isfinite(w).all() and np.abs(w).max() < 1e6 for w in [*net.w, *net.b]):
            raise NeurodeployError(f"the microcircuit diverged in epoch {epoch}", "lr_up / lr_bw",
                                   "lower lr_up (or lr_bw, or batch)")  # fmt: skip
        entry = {"epoch": epoch, **score(net, data), "weight_angle": alignment(net)}
        history.append(entry)
        if progress is not None:
            progress(epoch, epochs, entry)
    provenance = {"all": {"where": "host float64 (the paper's equations; no chip)",
                          "how": f"microcircuit {'-'.join(map(str, sizes))}, {o.feedback} feedback, "
                                 f"{n_steps} steps of dt {o.dt} per pattern, batch {batch}"}}  # fmt: skip
    return base.system_result(NAME, variant, profile, o, history, equations=EQUATIONS, provenance=provenance,
                              started=started, extra_config={"task": data.name, "sizes": sizes})  # fmt: skip


def score(net: Microcircuit, data: Task) -> dict[str, list[float]]:
    """Test and validation accuracy per seed: the largest undisturbed output potential wins."""
    out = {}
    for key, x, y in (("test_accuracy", data.x_test, data.y_test), ("val_accuracy", data.x_val, data.y_val)):
        pred = net.predict(np.broadcast_to(x, (net.seeds, *x.shape))).argmax(-1)
        out[key] = (pred == y).mean(-1).tolist()
    return out


def alignment(net: Microcircuit) -> dict[str, list[float]]:
    """∠(B_ℓ, W_{ℓ+1}ᵀ) per seed; the single hidden layer is called "hidden"."""
    names = ["hidden"] if net.depth == 1 else [f"hidden{k + 1}" for k in range(net.depth)]
    return {
        n: metrics.angle(b, np.swapaxes(w, -1, -2)).tolist() for n, b, w in zip(names, net.b, net.w[1:], strict=True)
    }


__all__ = ["EQUATIONS", "Microcircuit", "Options", "learn"]

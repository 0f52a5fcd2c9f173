"""Dynamic inversion (Podlaski & Machens, NeurIPS 2020, arXiv 2007.05112): the backward pass as feedback control.

The output error δ₀ is clamped onto a leaky controller r_y that drives the layer below through fixed feedback
B, while the forward weights W carry the result back up; the loop settles where W r_x cancels δ₀:

    ṙ_y = −α r_y + W r_x − δ₀,   ṙ_x = −r_x + B r_y   →   δ_x = B (W B − α I)⁻¹ δ₀.

For α → 0 this is a right-inverse of W (with B = −Wᵀ its pseudo-inverse), so the hidden update is
Gauss–Newton-like rather than the gradient. The loop only settles when every eigenvalue of W B − α I has a
negative real part (and, for the Euler-integrated loop, when its full Jacobian does); the check runs before
training and after every update, and a violation is refused or repaired (B moved by gradient steps on the
spectral abscissa), never hidden: each repair is counted in the history.

Networks: the paper's linear regression (task ``"linear"``: a 30-20-10 linear network on a random linear
teacher, as in the paper's experiments), and one hidden tanh layer for the project's tasks (default digits;
softmax output with the error target − p on classification, a linear output on regression).
``form="least_squares"`` solves the steady state directly (the paper's non-dynamic form). The single-loop form
needs two or more hidden layers, which these networks do not have, so it is not built.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError
from neurodeploy.rules.systems import base

EQUATIONS = (
    "ṙ_y = −α r_y + W r_x − ŷ  (Podlaski & Machens 2020, the section introducing dynamic inversion: a leaky "
    "controller with the output error ŷ = δ₀ clamped)",
    "ṙ_x = −r_x + B r_y  (Podlaski & Machens 2020, same section: fixed feedback B into the layer below)",
    "δ_x = B (W B − α I)⁻¹ δ₀  (Podlaski & Machens 2020, same section: the steady state; α → 0 gives a "
    "right-inverse of W, the pseudo-inverse for B = −Wᵀ)",
    "max Re eig(W B − α I) < 0 for stability  (Podlaski & Machens 2020, same section and supplementary material)",
    "δ_ℓ = φ′(a_ℓ) ⊙ B_ℓ (W_ℓ B_ℓ − α I)⁻¹ δ_{ℓ+1},  ΔW_{ℓ−1} = η δ_ℓ h_{ℓ−1}ᵀ  (Podlaski & Machens 2020, the "
    "section mapping dynamic inversion onto feedforward networks)",
)
FORMS = ("dynamic", "least_squares")
INIT_B = ("random", "negative_transpose", "stability_optimised")
STABILITY = ("refuse", "repair")
LAYER = "W1"  # the inverted layer: hidden -> output; its feedback B carries the output error down
INTEGER_OPTIONS = ("steps", "batch", "n_hidden", "repair_iterations")
# what a refusal of a non-positive option suggests: the default, or for the task-dependent ones a typical value
POSITIVE_EXAMPLES = {"dt": 0.1, "steps": 300, "batch": 32, "margin": 0.01, "repair_iterations": 2000, "lr": 0.01,
                     "n_hidden": 100, "init_scale": 0.01, "clip": 10}  # fmt: skip


@dataclass
class Options:
    """The paper's settings where they fit; ``lr`` and ``n_hidden`` None take the task's default.

    ``alpha`` defaults to 0.01; the authors' released scripts use α ∈ {0, 0.001, 0.01} (linear regression) and
    {0, 0.01, 0.1} (nonlinear regression). ``dt`` = 0.1 is theirs; ``steps`` = 300 is not (they integrate
    10 000 Euler steps per sample). ``steps``, ``batch``, ``n_hidden`` and ``repair_iterations`` are integers."""

    form: str = "dynamic"
    init_b: str = "negative_transpose"
    stability: str = "repair"
    alpha: float = 0.01
    dt: float = 0.1
    steps: int = 300
    n_hidden: int | None = None
    lr: float | None = None
    batch: int = 32
    margin: float = 0.01  # repairs and the optimised start aim at max Re eig ≤ −margin
    repair_iterations: int = 2000
    init_scale: float | None = None  # None: W ~ N(0, 1/fan-in); a value s: W ~ U(−s, s) (the paper uses 0.01)
    clip: float | None = None  # cap on each sample's hidden-error norm (None: no cap)

    def checked(self) -> Options:
        for name, value, allowed in (("form", self.form, FORMS), ("init_b", self.init_b, INIT_B),
                                     ("stability", self.stability, STABILITY)):  # fmt: skip
            if value == "single_loop" and name == "form":
                raise NeurodeployError(
                    "form='single_loop' is not built: it feeds the output error back to the first of two or more "
                    "hidden layers, and these networks have one", "option form", "use form='dynamic' or "
                    "'least_squares'")  # fmt: skip
            if value not in allowed:
                raise NeurodeployError(f"option {name}={value!r} is unknown", f"option {name}",
                                       f"choose one of {', '.join(map(repr, allowed))}")  # fmt: skip
        for name in INTEGER_OPTIONS:
            value = getattr(self, name)
            if value is None and name == "n_hidden":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise NeurodeployError(
                    f"option {name}={value!r} must be a whole number",
                    f"option {name}",
                    f"give {name} as a positive integer, e.g. {name}={POSITIVE_EXAMPLES[name]}",
                )
        positive = {"dt": self.dt, "steps": self.steps, "batch": self.batch, "margin": self.margin,
                    "repair_iterations": self.repair_iterations, "lr": 1.0 if self.lr is None else self.lr,
                    "n_hidden": 1 if self.n_hidden is None else self.n_hidden,
                    "init_scale": 1.0 if self.init_scale is None else self.init_scale,
                    "clip": 1.0 if self.clip is None else self.clip}  # fmt: skip
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise NeurodeployError(
                    f"option {name}={value!r} must be a number",
                    f"option {name}",
                    f"give {name} as a positive number, e.g. {name}={POSITIVE_EXAMPLES[name]}",
                )
            if not np.isfinite(value) or value <= 0:
                default = POSITIVE_EXAMPLES[name]
                raise NeurodeployError(f"option {name} must be positive, got {value}", f"option {name}",
                                       f"use a positive {name}, e.g. {name}={default}")  # fmt: skip
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float, np.integer, np.floating)):
            raise NeurodeployError(f"option alpha={self.alpha!r} must be a number", "option alpha",
                                   "e.g. alpha=0.01")  # fmt: skip
        if not np.isfinite(self.alpha) or self.alpha < 0:
            raise NeurodeployError(
                f"option alpha (the controller's leak) must be ≥ 0, got {self.alpha}",
                "option alpha",
                "use alpha ≥ 0, e.g. alpha=0.01 (the authors' scripts use 0, 0.001, 0.01 and 0.1)",
            )
        return self


# ----------------------------------------------------------------------------------------------- the inversion
def reduced_matrix(w: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """W B − α I per seed: its eigenvalues decide whether the controller settles and what it settles to."""
    return w @ b - alpha * np.eye(w.shape[-2])


def loop_matrix(w: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """The Jacobian of (r_y, r_x) under the two Euler-integrated equations: [[−α I, W], [B, −I]]."""
    m, n = w.shape[-2:]
    top = np.concatenate([np.broadcast_to(-alpha * np.eye(m), w.shape[:-2] + (m, m)), w], axis=-1)
    bottom = np.concatenate([b, np.broadcast_to(-np.eye(n), w.shape[:-2] + (n, n))], axis=-1)
    return np.concatenate([top, bottom], axis=-2)


def abscissa(matrix: np.ndarray) -> np.ndarray:
    """The spectral abscissa (largest real part of an eigenvalue), per leading index."""
    return np.linalg.eigvals(matrix).real.max(axis=-1)


def steady_state(w: np.ndarray, b: np.ndarray, alpha: float, delta0: np.ndarray) -> np.ndarray:
    """δ_x = B (W B − α I)⁻¹ δ₀, the non-dynamic least-squares form; δ₀ is (seeds, batch, out)."""
    z = np.linalg.solve(reduced_matrix(w, b, alpha), np.swapaxes(delta0, -1, -2))
    return np.swapaxes(b @ z, -1, -2)


def run_inversion(w: np.ndarray, b: np.ndarray, alpha: float, delta0: np.ndarray, dt: float, steps: int,
                  record: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Euler-integrate ṙ_y = −α r_y + W r_x − δ₀, ṙ_x = −r_x + B r_y from rest for ``steps`` steps of ``dt``;
    returns r_x (and with ``record`` every r_x along the way, shape (steps, …))."""
    ry = np.zeros(delta0.shape)
    rx = np.zeros(delta0.shape[:-1] + (w.shape[-1],))
    wt, bt = np.swapaxes(w, -1, -2), np.swapaxes(b, -1, -2)
    trace = []
    for _ in range(steps):
        ry, rx = ry + dt * (-alpha * ry + rx @ wt - delta0), rx + dt * (-rx + ry @ bt)
        if record:
            trace.append(rx)
    return (rx, np.stack(trace)) if record else rx


def _eigen_gradient(matrix: np.ndarray, dt: float | None = None) -> np.ndarray:
    """The gradient, with respect to ``matrix``, of its spectral abscissa (``dt`` None) or of the squared
    spectral radius of its Euler map I + dt·matrix, from first-order eigenvalue perturbation:
    dλ = uᵀ dA v / (uᵀ v) for the critical eigenvalue λ with right eigenvector v and left eigenvector u."""
    vals, right = np.linalg.eig(matrix)
    k = int(np.argmax(vals.real if dt is None else np.abs(1.0 + dt * vals)))
    left_vals, left = np.linalg.eig(matrix.T)
    j = int(np.argmin(np.abs(left_vals - vals[k])))
    v, u = right[:, k], left[:, j]  # uᵀ A = λ uᵀ
    weight = 1.0 if dt is None else 2.0 * dt * np.conj(1.0 + dt * vals[k])  # d|1 + dt λ|² = Re(weight dλ)
    return np.real(weight * np.outer(u, v) / (u @ v))


def stabilise(w: np.ndarray, b: np.ndarray, alpha: float, opts: Options, loop: bool) -> tuple[np.ndarray, bool]:
    """Gradient steps on B (one seed) until max Re eig(W B − α I) ≤ −margin and, when ``loop`` (the dynamic
    form), the loop's Jacobian too, with its Euler map contracting (spectral radius ≤ 1 − dt·margin); each step
    descends the first criterion still violated. Returns the new B and whether it got there."""
    b = b.copy()
    step = 0.05 * max(np.linalg.norm(b), 1e-3)
    m = w.shape[0]
    for _ in range(opts.repair_iterations):
        red = reduced_matrix(w, b, alpha)
        if abscissa(red) > -opts.margin:
            grad = w.T @ _eigen_gradient(red)
        elif loop:
            full = loop_matrix(w, b, alpha)
            eig = np.linalg.eigvals(full)
            if eig.real.max() > -opts.margin:
                grad = _eigen_gradient(full)[m:, :m]
            elif np.abs(1.0 + opts.dt * eig).max() > 1.0 - opts.dt * opts.margin:
                grad = _eigen_gradient(full, opts.dt)[m:, :m]
            else:
                return b, True
        else:
            return b, True
        b -= step * grad / max(np.linalg.norm(grad), 1e-12)
    return b, False


def stability_report(w: np.ndarray, b: np.ndarray, opts: Options) -> dict[str, np.ndarray]:
    """Per seed: the reduced abscissa, and for the dynamic form the loop's and its Euler map's spectral radius."""
    out = {"reduced": abscissa(reduced_matrix(w, b, opts.alpha))}
    if opts.form == "dynamic":
        eig = np.linalg.eigvals(loop_matrix(w, b, opts.alpha))
        out["loop"] = eig.real.max(axis=-1)
        out["euler"] = np.abs(1.0 + opts.dt * eig).max(axis=-1)
        # explicit Euler contracts iff dt < −2 Re λ / |λ|² for every eigenvalue λ of the loop
        out["dt_limit"] = np.where(eig.real < 0, -2.0 * eig.real / np.maximum(np.abs(eig) ** 2, 1e-300), 0.0).min(-1)
    return out


def unstable_seeds(report: dict[str, np.ndarray]) -> np.ndarray:
    bad = report["reduced"] >= 0
    if "loop" in report:
        bad |= (report["loop"] >= 0) | (report["euler"] >= 1)
    return np.flatnonzero(bad)


def stability_error(report: dict[str, np.ndarray], seed: int, when: str, opts: Options, hint: str) -> NeurodeployError:
    """One clear refusal: the layer, the largest real part and what to change."""
    red = float(report["reduced"][seed])
    what = (f"dynamic inversion through layer {LAYER!r} is unstable {when} (seed {seed}): the largest real part "
            f"of eig(W B − α I) is {red:+.4g} with α={opts.alpha:g}")  # fmt: skip
    if red < 0 and "loop" in report:
        loop, euler = float(report["loop"][seed]), float(report["euler"][seed])
        what += f", and the loop's Jacobian [[−αI, W], [B, −I]] has largest real part {loop:+.4g}"
        if loop < 0:
            limit = float(report["dt_limit"][seed])
            what += f": the Euler step dt={opts.dt:g} is too long (|1 + dt·λ| reaches {euler:.6g} ≥ 1)"
            hint = f"use dt below {limit:.3g}" + ("" if when == "before training" else f", or {hint}")
    return NeurodeployError(what + "; the controller would not settle", f"di layer {LAYER}", hint)


# -------------------------------------------------------------------------------------------------- the tasks
def linear_task(n_in: int = 30, n_out: int = 10, noise: float = 0.1, seed: int = 2020) -> Any:
    """The paper's linear regression experiment: y = T x + noise, T ~ U(−1, 1), x ~ N(0, I); 2000/500/500."""
    from neurodeploy.learning.tasks import Task

    rng = np.random.default_rng(seed)
    teacher = rng.uniform(-1.0, 1.0, (n_out, n_in))
    splits = []
    for n in (2000, 500, 500):
        x = rng.normal(0.0, 1.0, (n, n_in))
        splits += [x, x @ teacher.T + noise * rng.normal(0.0, 1.0, (n, n_out))]
    return Task("linear", "regression", *splits)


def load_task(name: str | None) -> Any:
    """``"linear"`` is this system's own task; any other name comes from ``get_task`` (None: digits)."""
    from neurodeploy.learning.tasks import TASKS, get_task

    if name == "linear":
        return linear_task()
    if name is not None and name not in TASKS:
        hint = f"choose 'linear' (the paper's linear regression) or one of {', '.join(TASKS)}"
        raise NeurodeployError(f"unknown task {name!r} for dynamic inversion", "task", hint)
    return get_task(name or "digits")


# ------------------------------------------------------------------------------------------------ the training
def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per seed, the angle in degrees between two signals flattened over batch and units."""
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-300)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


class Network:
    """One hidden layer, all seeds side by side (leading axis); linear without biases on the linear task."""

    def __init__(self, task: Any, n_hidden: int, seeds: int, opts: Options, rng: np.random.Generator) -> None:
        self.linear = task.name == "linear"
        self.classify = task.kind == "classification"
        self.clip = opts.clip
        n_in, n_out = task.n_in, task.n_out

        def draw(rows: int, cols: int, fan_in: int) -> np.ndarray:
            if opts.init_scale is None:
                return rng.normal(0.0, 1.0 / np.sqrt(fan_in), (seeds, rows, cols))
            return rng.uniform(-opts.init_scale, opts.init_scale, (seeds, rows, cols))

        self.w0, self.w1 = draw(n_hidden, n_in, n_in), draw(n_out, n_hidden, n_hidden)
        self.b0, self.b1 = np.zeros((seeds, 1, n_hidden)), np.zeros((seeds, 1, n_out))
        random_b = rng.normal(0.0, 1.0 / np.sqrt(n_hidden), (seeds, n_hidden, n_out))
        init_b = opts.init_b
        self.feedback = -np.swapaxes(self.w1, 1, 2).copy() if init_b == "negative_transpose" else random_b
        self.fa_feedback = random_b.copy()

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a = x @ np.swapaxes(self.w0, 1, 2) + (0 if self.linear else self.b0)
        h = a if self.linear else np.tanh(a)
        return a, h, h @ np.swapaxes(self.w1, 1, 2) + (0 if self.linear else self.b1)

    def error(self, out: np.ndarray, target: np.ndarray) -> np.ndarray:
        """δ₀ = target − output: the change the output should make (softmax cross-entropy on classification)."""
        if not self.classify:
            return target - out
        p = np.exp(out - out.max(-1, keepdims=True))
        return target - p / p.sum(-1, keepdims=True)

    def slope(self, a: np.ndarray) -> np.ndarray:
        return np.ones_like(a) if self.linear else 1.0 - np.tanh(a) ** 2

    def hidden_error(self, credit: str, delta0: np.ndarray, a: np.ndarray, opts: Options) -> np.ndarray:
        """δ₁ by the chosen credit assignment; DI by its dynamics or by its steady state."""
        if credit == "bp":
            core = delta0 @ self.w1
        elif credit == "fa":
            core = delta0 @ np.swapaxes(self.fa_feedback, 1, 2)
        elif credit == "pinv":
            core = delta0 @ np.swapaxes(np.linalg.pinv(self.w1), 1, 2)
        elif opts.form == "least_squares":
            core = steady_state(self.w1, self.feedback, opts.alpha, delta0)
        else:
            core = run_inversion(self.w1, self.feedback, opts.alpha, delta0, opts.dt, opts.steps)
        delta = core * self.slope(a)
        if self.clip is None:
            return delta
        return delta * np.minimum(1.0, self.clip / np.maximum(np.linalg.norm(delta, axis=-1, keepdims=True), 1e-300))


def _targets(task: Any, y: np.ndarray) -> np.ndarray:
    return np.eye(task.n_out)[y] if task.kind == "classification" else np.asarray(y, float)


def _score(net: Network, task: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = net.forward(np.asarray(x, float)[None])[2]
    if task.kind == "classification":
        return (out.argmax(-1) == y[None]).mean(1)
    return ((out - np.asarray(y, float)[None]) ** 2).mean((1, 2))


def _check_start(net: Network, opts: Options) -> None:
    """Before training: optimise B where asked, then refuse an unstable loop (whatever ``stability`` says)."""
    if opts.init_b == "stability_optimised":
        for s in range(net.w1.shape[0]):
            net.feedback[s], ok = stabilise(net.w1[s], net.feedback[s], opts.alpha, opts, opts.form == "dynamic")
            if not ok:
                raise NeurodeployError(
                    f"init_b='stability_optimised' found no stable feedback for layer {LAYER!r} in "
                    f"{opts.repair_iterations} gradient steps (seed {s})", "option init_b",
                    "raise repair_iterations or alpha, or use init_b='negative_transpose'")  # fmt: skip
    report = stability_report(net.w1, net.feedback, opts)
    bad = unstable_seeds(report)
    if len(bad):
        hint = "use init_b='negative_transpose' or 'stability_optimised', or a larger alpha"
        if report["reduced"].max() >= 0:
            hint += f" (above {float(report['reduced'].max()) + opts.alpha:.3g})"
        raise stability_error(report, int(bad[0]), "before training", opts, hint)


def _guard(net: Network, opts: Options, epoch: int, repairs: np.ndarray) -> dict[str, np.ndarray]:
    """After an update: refuse or repair every seed whose loop lost stability; returns the stability report
    seen before any repair."""
    report = stability_report(net.w1, net.feedback, opts)
    for s in unstable_seeds(report):
        if opts.stability == "refuse":
            hint = "use stability='repair' (the paper's approach), a smaller lr or a larger alpha"
            raise stability_error(report, int(s), f"after an update in epoch {epoch}", opts, hint)
        net.feedback[s], ok = stabilise(net.w1[s], net.feedback[s], opts.alpha, opts, opts.form == "dynamic")
        if not ok:
            raise stability_error(stability_report(net.w1, net.feedback, opts), int(s),
                                  f"after a repair of {opts.repair_iterations} steps in epoch {epoch}", opts,
                                  "raise repair_iterations or alpha, or lower lr")  # fmt: skip
        repairs[s] += 1
    return report


def _signals(net: Network, task: Any, opts: Options, credit: str, entry: dict[str, Any]) -> None:
    """The epoch's signal angles on the validation inputs, and the learned map's angle to least squares."""
    x = np.asarray(task.x_val, float)[None]
    a, _, out = net.forward(x)
    delta0 = net.error(out, _targets(task, task.y_val)[None])
    signal = net.hidden_error(credit, delta0, a, opts)
    entry["pinv_angle"] = {"W0": _angle(signal, net.hidden_error("pinv", delta0, a, opts)).tolist()}
    entry["bp_angle"] = {"W0": _angle(signal, net.hidden_error("bp", delta0, a, opts)).tolist()}
    if credit == "di" and opts.form == "dynamic":
        exact = steady_state(net.w1, net.feedback, opts.alpha, delta0) * net.slope(a)
        entry["steady_state_gap"] = {"W0": _angle(signal, exact).tolist()}
    if net.linear:
        solution = (np.linalg.pinv(np.asarray(task.x_train, float)) @ np.asarray(task.y_train, float)).T
        entry["solution_angle"] = _angle(
            net.w1 @ net.w0, np.broadcast_to(solution, net.w1.shape[:1] + solution.shape)
        ).tolist()


def train(task: Any, opts: Options, seeds: int, epochs: int, credit: str = "di",
          progress: Callable[[int, int, dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Minibatch SGD of the one-hidden-layer network with hidden errors from ``credit``: ``di`` (dynamic
    inversion), or the baselines ``bp`` (Wᵀ), ``fa`` (fixed random B) and ``pinv`` (W⁺, Gauss–Newton-like)."""
    n_hidden = opts.n_hidden or (20 if task.name == "linear" else 100)
    lr = opts.lr or (0.01 if task.name == "linear" else 0.1)
    rng = np.random.default_rng(1000)
    net = Network(task, n_hidden, seeds, opts, rng)
    x_train, t_train = np.asarray(task.x_train, float), _targets(task, task.y_train)
    repairs = np.zeros(seeds, int)
    if credit == "di":
        _check_start(net, opts)
    score = "accuracy" if task.kind == "classification" else "mse"
    history: list[dict[str, Any]] = []
    for epoch in range(1, epochs + 1):
        worst = {"reduced": np.full(seeds, -np.inf), "loop": np.full(seeds, -np.inf)}
        order = np.stack([rng.permutation(len(x_train)) for _ in range(seeds)])
        for start in range(0, len(x_train), opts.batch):
            idx = order[:, start : start + opts.batch]
            x = x_train[idx]
            a, h, out = net.forward(x)
            delta0 = net.error(out, t_train[idx])
            delta1 = net.hidden_error(credit, delta0, a, opts)
            net.w1 += lr * np.swapaxes(delta0, 1, 2) @ h / idx.shape[1]
            net.w0 += lr * np.swapaxes(delta1, 1, 2) @ x / idx.shape[1]
            if not net.linear:
                net.b1 += lr * delta0.mean(1, keepdims=True)
                net.b0 += lr * delta1.mean(1, keepdims=True)
            if not (np.isfinite(net.w0).all() and np.isfinite(net.w1).all()):
                raise NeurodeployError(f"{credit} training diverged in epoch {epoch} (weights not finite)",
                                       "option lr", f"lower lr (now {lr:g})")  # fmt: skip
            if credit == "di":
                for key, value in _guard(net, opts, epoch, repairs).items():
                    if key in worst:
                        worst[key] = np.maximum(worst[key], value)
        entry: dict[str, Any] = {"epoch": epoch}
        entry[f"test_{score}"] = _score(net, task, task.x_test, task.y_test).tolist()
        entry[f"val_{score}"] = _score(net, task, task.x_val, task.y_val).tolist()
        _signals(net, task, opts, credit, entry)
        if credit == "di":
            report = stability_report(net.w1, net.feedback, opts)
            entry["spectral_abscissa"] = {LAYER: report["reduced"].tolist()}
            entry["worst_spectral_abscissa"] = {LAYER: worst["reduced"].tolist()}
            if "loop" in report:
                entry["loop_abscissa"] = {LAYER: report["loop"].tolist()}
                entry["worst_loop_abscissa"] = {LAYER: worst["loop"].tolist()}
            entry["repairs"] = repairs.tolist()
            entry["weight_angle_neg"] = {LAYER: _angle(net.feedback, -np.swapaxes(net.w1, 1, 2)).tolist()}
        history.append(entry)
        if progress is not None:
            progress(epoch, epochs, entry)
    return history


def learn(*, variant: str, profile: str, task: str | None, seeds: int, epochs: int | None,
          progress: Callable[[int, int, dict[str, Any]], None] | None, **options: Any) -> Any:  # fmt: skip
    """Train with dynamic inversion; ``task`` None runs digits, ``"linear"`` the paper's linear regression."""
    started = time.perf_counter()
    if variant == "chip":
        from neurodeploy.rules.systems.inversion_chip import learn_chip

        return learn_chip(task, profile, seeds, epochs, progress, options, started)
    opts = base.make_options(Options, "di", options)
    data = load_task(task)
    epochs = epochs or (20 if data.name == "linear" else 30)
    history = train(data, opts, seeds, epochs, "di", progress)
    where = {"where": "host float64", "how": "the paper's equations; no chip"}
    return base.system_result("di", variant, profile, opts, history, equations=EQUATIONS,
                              provenance={"all": where}, started=started,
                              extra_config={"task": data.name, "seeds": seeds, "epochs": epochs})  # fmt: skip


__all__ = [
    "EQUATIONS",
    "Options",
    "abscissa",
    "learn",
    "linear_task",
    "loop_matrix",
    "reduced_matrix",
    "run_inversion",
    "stabilise",
    "steady_state",
    "train",
]

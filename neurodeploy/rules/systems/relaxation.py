"""Activation Relaxation (AR) and relaxed predictive coding (PC): credit assignment by relaxing a second,
recurrent population of units to the backprop gradients.

Both keep the forward pass fixed, clamp the output to the loss gradient and let the hidden units settle:

* AR (Millidge, Tschantz, Seth & Buckley 2020, arXiv 2009.05359): activation nodes ``x_l`` relax as
  ``x_l ← x_l − η_inf (x_l − B_l (x_{l+1} ⊙ f′(a_{l+1})))``; with ``B_l = W_{l+1}ᵀ`` the fixed point is
  exactly ``∂L/∂h_l``; then ``ΔW_l = −η (x_l ⊙ f′(a_l)) h_{l−1}ᵀ``.
* PC (Millidge, Tschantz & Buckley 2020, arXiv 2006.04182): value nodes ``μ_l`` start at the predictions
  ``v̂_l``; errors ``ε_l = μ_l − v̂_l`` relax as ``μ_l ← μ_l − η_inf (ε_l − (∂v̂_{l+1}/∂μ_l)ᵀ ε_{l+1})`` to
  ``−∂L/∂v_l``; then ``ΔW_l = η ε_l φ(μ_{l−1})ᵀ``. ``fixed_prediction=True`` holds the predictions (and the
  Jacobians) at their feed-forward values during the relaxation, as the paper's algorithm computes them
  once per pass; the equilibrium is then exact. ``False`` recomputes them from the moving value nodes,
  the energy-descent form, whose equilibrium matches the gradient only for small errors.

The relaxations of "Relaxing the Constraints on Predictive Coding Models" (2020) are options of both:
``backward="learned"`` (backward weights trained with the transpose of W's update, Kolen-Pollack style),
``backward="fixed"`` (random feedback) and ``backward_derivative=False`` (no f′ in the backward dynamics).
``backward="bp"`` replaces the relaxation by the exact chain rule: the backprop reference with the same
architecture, initialisation and batches. Seeds run side by side on a leading axis (numpy, float64).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError
from neurodeploy.rules.systems import base

Array = np.ndarray
Progress = Callable[[int, int, dict[str, Any]], None]
Directions = tuple[list[Array], list[Array], list[Array], list[Array]]
BACKWARDS = ("transpose", "learned", "fixed", "bp")
ACTIVATIONS = ("relu", "tanh", "linear")
LOSSES = ("auto", "cross_entropy", "mse")
DIVERGED = 1e12  # a relaxed unit beyond this magnitude has left any gradient's scale

EQUATIONS_AR = (
    "x_L = ∂L/∂out (the output node clamped to the loss gradient)  (Millidge et al. 2020, arXiv 2009.05359, sec. 2)",
    "dx_l/dt = −x_l + (∂h_{l+1}/∂h_l)ᵀ x_{l+1}, discretised x_l ← x_l − η_inf (x_l − W_{l+1}ᵀ (x_{l+1} ⊙ f′(a_{l+1})))"
    "  (Millidge et al. 2020, arXiv 2009.05359, sec. 2)",
    "x_l* = ∂L/∂h_l at equilibrium  (Millidge et al. 2020, arXiv 2009.05359, sec. 2)",
    "ΔW_l = −η (x_l ⊙ f′(a_l)) h_{l−1}ᵀ  (Millidge et al. 2020, arXiv 2009.05359, sec. 2)",
    "B_l learned with ΔB_l = (ΔW_{l+1})ᵀ, or f′ dropped from the backward dynamics  "
    "(Millidge et al. 2020, arXiv 2009.05359, sec. 4)",
)
EQUATIONS_PC = (
    "v̂_l = W_l φ(μ_{l−1}) + b_l; μ_l starts at v̂_l  (Millidge, Tschantz & Buckley 2020, arXiv 2006.04182, sec. 2)",
    "ε_l = μ_l − v̂_l;  ε_L = −∂L/∂v̂_L  (Millidge, Tschantz & Buckley 2020, arXiv 2006.04182, sec. 2)",
    "μ_l ← μ_l − η_inf (ε_l − (∂v̂_{l+1}/∂μ_l)ᵀ ε_{l+1})  (Millidge, Tschantz & Buckley 2020, arXiv 2006.04182, sec. 2)",
    "ε_l* ≈ −∂L/∂v_l at equilibrium  (Millidge, Tschantz & Buckley 2020, arXiv 2006.04182, sec. 3)",
    "ΔW_l ∝ ε_l (∂v̂_l/∂W_l) = ε_l φ(μ_{l−1})ᵀ  (Millidge, Tschantz & Buckley 2020, arXiv 2006.04182, sec. 2)",
    "(∂v̂_{l+1}/∂μ_l)ᵀ → B_l (learned, ΔB_l = ΔW_{l+1}ᵀ) and φ′ dropped  "
    "(Millidge, Tschantz, Seth & Buckley 2020, 'Relaxing the Constraints on Predictive Coding Models', sec. 3)",
)


@dataclass
class Options:
    """Options shared by AR and PC; defaults are AR's published settings, the widths scaled to 64 inputs."""

    hidden: tuple[int, ...] = (300, 300, 100)
    steps: int = 100  # relaxation steps per batch
    rate: float = 0.1  # relaxation rate η_inf
    lr: float = 5e-4  # weight learning rate, per sample (a batch's per-sample updates are summed)
    batch: int = 64
    backward: str = "transpose"  # "transpose" | "learned" | "fixed" | "bp"
    backward_derivative: bool = True  # keep f′ in the backward dynamics
    decay: float = 0.0  # weight decay on W (and on a learned B: Kolen-Pollack's alignment)
    activation: str = "relu"  # hidden non-linearity; the output is linear
    loss: str = "auto"  # "auto": cross-entropy for classification, squared error for regression
    init_gain: float = 1.0  # W ~ N(0, 2 gain² / fan_in) (He)

    def checked(self) -> Options:
        self.hidden = tuple(int(h) for h in self.hidden)
        if any(h < 1 for h in self.hidden):
            raise NeurodeployError(
                f"hidden widths must be positive, got {self.hidden}", "hidden", "e.g. (300, 300, 100)"
            )
        if not (isinstance(self.steps, (int, np.integer)) and self.steps >= 1):
            raise NeurodeployError(f"steps must be a positive integer, got {self.steps!r}", "steps", "e.g. steps=100")
        if not 0.0 < float(self.rate) <= 1.0:
            raise NeurodeployError(f"rate must lie in (0, 1], got {self.rate}", "rate", "the paper uses rate=0.1")
        if not float(self.lr) > 0.0:
            raise NeurodeployError(f"lr must be positive, got {self.lr}", "lr", "the paper uses lr=5e-4")
        if not (isinstance(self.batch, (int, np.integer)) and self.batch >= 1):
            raise NeurodeployError(f"batch must be a positive integer, got {self.batch!r}", "batch", "e.g. batch=64")
        if not 0.0 <= float(self.decay) < 1.0:
            raise NeurodeployError(f"decay must lie in [0, 1), got {self.decay}", "decay", "e.g. decay=1e-4")
        if not float(self.init_gain) > 0.0:
            raise NeurodeployError(f"init_gain must be positive, got {self.init_gain}", "init_gain", "e.g. 1.0")
        for name, value, allowed in (("backward", self.backward, BACKWARDS), ("activation", self.activation,
                                     ACTIVATIONS), ("loss", self.loss, LOSSES)):  # fmt: skip
            if value not in allowed:
                raise NeurodeployError(f"unknown {name} {value!r}", name, f"choose one of {', '.join(allowed)}")
        return self


@dataclass
class AROptions(Options):
    """AR's options: ``start`` is where the hidden nodes begin each relaxation, the forward activations (the
    same neurons after the forward pass) or zero."""

    start: str = "forward"

    def checked(self) -> AROptions:
        super().checked()
        if self.start not in ("forward", "zero"):
            raise NeurodeployError(f"unknown start {self.start!r}", "start", "choose 'forward' or 'zero'")
        return self


@dataclass
class PCOptions(Options):
    """PC's options: ``fixed_prediction`` holds v̂ and ∂v̂/∂μ at their feed-forward values while relaxing."""

    fixed_prediction: bool = True


@dataclass
class Net:
    """Weights ``W[l]`` (seeds, out, in), biases ``b[l]`` (seeds, out) and feedback ``G[l]``, stored in the
    shape of ``W[l + 1]`` so that ``G[l]ᵀ`` is the backward matrix ``B_l`` (``G = W`` is exact feedback)."""

    W: list[Array]
    b: list[Array]
    G: list[Array] = field(default_factory=list)


def init_net(sizes: list[int], seeds: int, gain: float = 1.0) -> Net:
    """He-normal weights and zero biases per seed; the feedback is drawn too, so W does not depend on the mode."""
    ws: list[list[Array]] = [[] for _ in sizes[1:]]
    gs: list[list[Array]] = [[] for _ in sizes[2:]]
    for s in range(seeds):
        rng = np.random.default_rng(s)
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            ws[i].append(rng.normal(0.0, gain * np.sqrt(2.0 / n_in), (n_out, n_in)))
        for i, (n_in, n_out) in enumerate(zip(sizes[1:-1], sizes[2:], strict=True)):
            gs[i].append(rng.normal(0.0, gain * np.sqrt(2.0 / n_in), (n_out, n_in)))
    W = [np.stack(w) for w in ws]
    return Net(W, [np.zeros((seeds, n)) for n in sizes[1:]], [np.stack(g) for g in gs])


def act(a: Array, activation: str) -> Array:
    if activation == "relu":
        return np.maximum(a, 0.0)
    return np.tanh(a) if activation == "tanh" else a


def slope(a: Array, activation: str) -> Array:
    if activation == "relu":
        return (a > 0.0).astype(float)
    return 1.0 - np.tanh(a) ** 2 if activation == "tanh" else np.ones_like(a)


def forward(W: list[Array], b: list[Array], x: Array, activation: str) -> tuple[list[Array], list[Array]]:
    """Pre-activations ``a_l`` (l = 1..L) and outputs ``h_l`` (l = 0..L, ``h_0 = x``, ``h_L = a_L``) of a batch
    ``x`` (seeds, batch, in)."""
    pre, post = [], [x]
    for i, (w, bias) in enumerate(zip(W, b, strict=True)):
        a = post[-1] @ w.swapaxes(-1, -2) + bias[:, None, :]
        pre.append(a)
        post.append(a if i == len(W) - 1 else act(a, activation))
    return pre, post


def loss_gradient(out: Array, target: Array, loss: str) -> Array:
    """∂L/∂out per sample: softmax − one-hot for cross-entropy, out − target for squared error."""
    if loss == "mse":
        return out - target
    z = np.exp(out - out.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True) - target


def backprop_deltas(W: list[Array], pre: list[Array], grad_out: Array, activation: str) -> list[Array]:
    """∂L/∂a_l for every layer by the chain rule: the reference the relaxations are measured against."""
    deltas = [grad_out]
    for i in range(len(W) - 2, -1, -1):
        deltas.insert(0, (deltas[0] @ W[i + 1]) * slope(pre[i], activation))
    return deltas


def _diverged(values: list[Array]) -> bool:
    return any(not np.all(np.isfinite(v)) or np.abs(v).max(initial=0.0) > DIVERGED for v in values)


def _raise_diverged(system: str, rate: float) -> None:
    raise NeurodeployError(
        f"the {system} relaxation diverged (a unit grew beyond {DIVERGED:g} or became non-finite) at rate {rate}",
        "rate",
        "lower rate (the relaxation rate η_inf), or lower lr / init_gain so the weights stay smaller",
    )


def ar_relax(feedback: list[Array], pre: list[Array], post: list[Array], grad_out: Array, *, steps: int, rate: float,
             derivative: bool = True, activation: str = "relu", start: str = "forward",
             trace: Callable[[int, list[Array]], None] | None = None) -> list[Array]:  # fmt: skip
    """AR's activation nodes ``x_1..x_L`` after ``steps`` relaxation steps (all layers updated together).
    ``x_L`` is clamped to ``grad_out``; hidden nodes start at the forward activations (``start="forward"``)
    or at zero. ``feedback[l]`` has the shape of ``W[l + 1]``: the drive of layer l is
    ``(x_{l+1} ⊙ f′(a_{l+1})) feedback[l]``. ``trace(step, x)`` sees every step (0 = the start)."""
    n = len(pre)
    slopes = [slope(a, activation) for a in pre[:-1]] + [np.ones_like(pre[-1])]
    x = [post[i + 1].copy() if start == "forward" else np.zeros_like(post[i + 1]) for i in range(n - 1)]
    x.append(grad_out)
    if trace:
        trace(0, x)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            drive = [((x[i + 1] * slopes[i + 1]) if derivative else x[i + 1]) @ feedback[i] for i in range(n - 1)]
            x = [x[i] - rate * (x[i] - drive[i]) for i in range(n - 1)] + [grad_out]
            if trace:
                trace(t + 1, x)
    if _diverged(x):
        _raise_diverged("AR", rate)
    return x


def pc_relax(W: list[Array], b: list[Array], feedback: list[Array], pre: list[Array], post: list[Array],
             target: Array, *, steps: int, rate: float, loss: str, derivative: bool = True,
             activation: str = "relu", fixed_prediction: bool = True,
             trace: Callable[[int, list[Array]], None] | None = None) -> tuple[list[Array], list[Array]]:  # fmt: skip
    """PC's errors ``ε_1..ε_L`` and the presynaptic rates ``φ(μ_0..μ_{L−1})`` after ``steps`` steps. Value
    nodes are pre-activations; they start at the feed-forward predictions (``ε = 0`` in hidden layers) and
    the output error is ``ε_L = −∂L/∂v̂_L``. With ``fixed_prediction`` the predictions and Jacobians stay at
    their feed-forward values; otherwise every step recomputes them from the value nodes."""
    n = len(W)
    if fixed_prediction:
        slopes = [slope(a, activation) for a in pre[:-1]]
        eps = [np.zeros_like(a) for a in pre[:-1]] + [-loss_gradient(pre[-1], target, loss)]
        if trace:
            trace(0, eps)
        with np.errstate(over="ignore", invalid="ignore"):
            for t in range(steps):
                back = [eps[i + 1] @ feedback[i] for i in range(n - 1)]
                back = [g * s for g, s in zip(back, slopes, strict=True)] if derivative else back
                eps = [eps[i] - rate * (eps[i] - back[i]) for i in range(n - 1)] + [eps[-1]]
                if trace:
                    trace(t + 1, eps)
        if _diverged(eps):
            _raise_diverged("PC", rate)
        return eps, post[:-1]

    def errors(mu: list[Array]) -> tuple[list[Array], list[Array]]:
        rates = [post[0]] + [act(m, activation) for m in mu]
        pred = [pre[0]] + [r @ W[i].swapaxes(-1, -2) + b[i][:, None, :] for i, r in enumerate(rates[1:], start=1)]
        eps = [m - p for m, p in zip(mu, pred[:-1], strict=True)] + [-loss_gradient(pred[-1], target, loss)]
        return eps, rates

    mu = [a.copy() for a in pre[:-1]]
    eps, rates = errors(mu)
    if trace:
        trace(0, eps)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            back = [eps[i + 1] @ feedback[i] for i in range(n - 1)]
            if derivative:
                back = [g * slope(m, activation) for g, m in zip(back, mu, strict=True)]
            mu = [m - rate * (e - g) for m, e, g in zip(mu, eps[:-1], back, strict=True)]
            eps, rates = errors(mu)
            if trace:
                trace(t + 1, eps)
    if _diverged(eps):
        _raise_diverged("PC", rate)
    return eps, rates


def angle(u: Array, v: Array) -> Array:
    """Degrees between ``u`` and ``v`` per seed (leading axis), the rest flattened; a zero vector counts as
    orthogonal (90°), as an update that has not yet received any signal."""
    u, v = u.reshape(len(u), -1), v.reshape(len(v), -1)
    nu, nv = np.linalg.norm(u, axis=1, keepdims=True), np.linalg.norm(v, axis=1, keepdims=True)
    u, v = u / np.maximum(nu, 1e-300), v / np.maximum(nv, 1e-300)
    # 2 asin(|û − v̂| / 2) keeps small angles exact where arccos(û·v̂) loses them to rounding
    degrees = np.degrees(2.0 * np.arcsin(np.clip(np.linalg.norm(u - v, axis=1) / 2.0, 0.0, 1.0)))
    return np.where((nu[:, 0] > 0) & (nv[:, 0] > 0), degrees, 90.0)


def descent_directions(system: str, net: Net, x: Array, target: Array, opts: Options,
                       steps: int | None = None) -> Directions:  # fmt: skip
    """The system's descent direction per weight and bias (batch sums, the update before ``lr``), BP's for the
    same batch, and the presynaptic rates: everything one training step needs."""
    pre, post = forward(net.W, net.b, x, opts.activation)
    grad_out = loss_gradient(post[-1], target, opts.loss)
    bp = backprop_deltas(net.W, pre, grad_out, opts.activation)
    bp_dirs = [-(d.swapaxes(-1, -2) @ h) for d, h in zip(bp, post[:-1], strict=True)]
    steps = opts.steps if steps is None else steps
    feedback = net.W[1:] if opts.backward == "transpose" else net.G
    if opts.backward == "bp":
        deltas, rates = bp, post[:-1]
    elif system == "ar":
        xs = ar_relax(feedback, pre, post, grad_out, steps=steps, rate=opts.rate,
                      derivative=opts.backward_derivative, activation=opts.activation,
                      start=getattr(opts, "start", "forward"))  # fmt: skip
        deltas = [xi * slope(a, opts.activation) for xi, a in zip(xs[:-1], pre[:-1], strict=True)] + [xs[-1]]
        rates = post[:-1]
    else:
        eps, rates = pc_relax(net.W, net.b, feedback, pre, post, target, steps=steps, rate=opts.rate, loss=opts.loss,
                              derivative=opts.backward_derivative, activation=opts.activation,
                              fixed_prediction=getattr(opts, "fixed_prediction", True))  # fmt: skip
        deltas = [-e for e in eps]
    w_dirs = [-(d.swapaxes(-1, -2) @ r) for d, r in zip(deltas, rates, strict=True)]
    b_dirs = [-d.sum(1) for d in deltas]
    return w_dirs, b_dirs, bp_dirs, rates


def _resolve_task(task: str | None, opts: Options) -> Any:
    from neurodeploy.learning.tasks import get_task

    data = get_task(task or "digits")
    if opts.loss == "auto":
        opts.loss = "cross_entropy" if data.kind == "classification" else "mse"
    elif data.kind == "regression" and opts.loss == "cross_entropy":
        raise NeurodeployError(f"task {data.name!r} is a regression", "loss", "use loss='mse' or loss='auto'")
    return data


def _targets(data: Any, y: Array) -> Array:
    return np.eye(data.n_out)[y] if data.kind == "classification" else np.asarray(y, float)


def _score(net: Net, data: Any, x: Array, y: Array, activation: str, split: str) -> dict[str, list[float]]:
    out = forward(net.W, net.b, np.broadcast_to(np.asarray(x, float), (len(net.W[0]), *x.shape)), activation)[1][-1]
    if data.kind == "classification":
        return {f"{split}_accuracy": (out.argmax(-1) == y).mean(1).tolist()}
    return {f"{split}_mse": ((out - np.asarray(y, float)) ** 2).mean((1, 2)).tolist()}


def train(system: str, task: str | None, seeds: int, epochs: int, opts: Options,
          progress: Progress | None = None) -> tuple[list[dict[str, Any]], Net]:  # fmt: skip
    """Train ``seeds`` networks side by side; each epoch's entry holds validation and test scores, the mean
    angle between the system's update and BP's gradient over the epoch's batches, and for a learned or
    fixed feedback its angle to Wᵀ. Returns the history and the trained networks."""
    data = _resolve_task(task, opts)
    sizes = [data.n_in, *opts.hidden, data.n_out]
    net = init_net(sizes, seeds, opts.init_gain)
    x_train, t_train = np.asarray(data.x_train, float), _targets(data, data.y_train)
    n = len(x_train)
    shuffles = [np.random.default_rng(10_000 + s) for s in range(seeds)]
    names = [f"W{i + 1}" for i in range(len(net.W))]
    history: list[dict[str, Any]] = []
    for epoch in range(1, epochs + 1):
        order = np.stack([r.permutation(n) for r in shuffles])
        angles: list[list[Array]] = [[] for _ in names]
        for start in range(0, n, opts.batch):
            idx = order[:, start : start + opts.batch]
            w_dirs, b_dirs, bp_dirs, rates = descent_directions(system, net, x_train[idx], t_train[idx], opts)
            for i, (w, g) in enumerate(zip(w_dirs, bp_dirs, strict=True)):
                angles[i].append(angle(w, g))
            keep = 1.0 - opts.decay
            for i in range(len(net.W)):
                net.W[i] = keep * net.W[i] + opts.lr * w_dirs[i]
                net.b[i] = net.b[i] + opts.lr * b_dirs[i]
            if opts.backward == "learned":  # Kolen-Pollack: B follows the transpose of W's update
                for i in range(len(net.G)):
                    net.G[i] = keep * net.G[i] + opts.lr * w_dirs[i + 1]
            if _diverged(net.W + net.G):
                raise NeurodeployError(
                    f"the {system} weights diverged in epoch {epoch}", "lr", f"lower lr (now {opts.lr:g})"
                )
        entry: dict[str, Any] = {"epoch": epoch}
        entry.update(_score(net, data, data.x_val, data.y_val, opts.activation, "val"))
        entry.update(_score(net, data, data.x_test, data.y_test, opts.activation, "test"))
        entry["gradient_angle"] = {nm: np.mean(a, axis=0).tolist() for nm, a in zip(names, angles, strict=True)}
        if opts.backward in ("learned", "fixed"):
            entry["backward_angle"] = {names[i + 1]: angle(net.G[i], net.W[i + 1]).tolist() for i in range(len(net.G))}
        history.append(entry)
        if progress is not None:
            progress(epoch, epochs, entry)
    return history, net


def _learn(system: str, cls: type, *, variant: str, profile: str, task: str | None, seeds: int, epochs: int | None,
           progress: Progress | None, **options: Any) -> Any:  # fmt: skip
    started = time.perf_counter()
    if variant == "chip":
        from neurodeploy.rules.systems.relaxation_chip import learn_chip

        return learn_chip(system, task, profile, seeds, epochs, progress, options, started)
    opts = base.make_options(cls, system, options)
    epochs = epochs or 10
    history, _ = train(system, task, seeds, epochs, opts, progress)
    where = "host float64 (the paper's equations; no chip)"
    how = ("exact backprop reference (no relaxation)" if opts.backward == "bp"
           else f"{opts.steps} relaxation steps at rate {opts.rate} per batch, {opts.backward} feedback")  # fmt: skip
    return base.system_result(
        system, variant, profile, opts, history,
        equations=EQUATIONS_AR if system == "ar" else EQUATIONS_PC,
        provenance={"all": {"where": where, "how": how}},
        started=started, extra_config={"task": task or "digits", "epochs": epochs, "seeds": seeds},
    )  # fmt: skip


def learn_ar(*, variant: str, profile: str, task: str | None, seeds: int, epochs: int | None,
             progress: Progress | None = None, **options: Any) -> Any:  # fmt: skip
    """Activation Relaxation on ``task`` (None: digits, standing in for the paper's MNIST)."""
    return _learn("ar", AROptions, variant=variant, profile=profile, task=task, seeds=seeds, epochs=epochs,
                  progress=progress, **options)  # fmt: skip


def learn_pc(*, variant: str, profile: str, task: str | None, seeds: int, epochs: int | None,
             progress: Progress | None = None, **options: Any) -> Any:  # fmt: skip
    """Relaxed predictive coding on ``task`` (None: digits, standing in for the paper's MNIST)."""
    return _learn("pc", PCOptions, variant=variant, profile=profile, task=task, seeds=seeds, epochs=epochs,
                  progress=progress, **options)  # fmt: skip


__all__ = ["AROptions", "EQUATIONS_AR", "EQUATIONS_PC", "Net", "Options", "PCOptions", "ar_relax", "backprop_deltas",
           "descent_directions", "forward", "init_net", "learn_ar", "learn_pc", "pc_relax", "train"]  # fmt: skip

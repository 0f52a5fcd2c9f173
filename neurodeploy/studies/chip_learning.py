"""``learn`` on the chip path: the user's network (or a built-in one) compiled with the rule's motif and
trained by the emulator's learning run (``emulator.learning``).

Seeds are chip instances of one batched run. Per epoch the history holds test accuracy (or MSE), the
weight alignment angle ∠(B, Wᵀ) and norm ratio per feedback projection of a chain rule, and the signal
alignment angle ∠(δ_rule, δ_BP) per hidden layer on a probe batch: δ_BP is backprop through the chip's
own forward pass and its gate (a host-side measurement, not part of learning).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError
from neurodeploy.learning import metrics
from neurodeploy.learning.epochs import LearnResult, final_summary, train_epochs
from neurodeploy.learning.tasks import Task, get_task


@dataclass
class ChipLearnConfig:
    """Every knob of a chip-path run; defaults are the tuned Yin-Yang settings (4-64-3, 40 epochs)."""

    rule: str
    profile: str = "loihi2"
    task: str = "yinyang"
    mismatch: float = 0.0
    seeds: int = 5
    seed: int = 0
    epochs: int = 40
    hidden: tuple[int, ...] = (64,)
    lr: float = 0.0  # η per sample, halved at 50 % and cut to a quarter at 75 % of the epochs; 0: default_lr
    batch: int = 16
    steps: int = 32
    active: int = 24
    scale: int = 64
    tag_bits: int = 4
    decay: float = 0.0  # per weight move, on every rule's forward weights (L2) and KP's B; 0: off (KP's code)
    init_gain: float = 0.0  # 0: the rule's default for built-in networks (KP 0.5, others 1.0)
    delta_max: float = 2.0
    mirror_rate: float = 0.2  # WM/IA: noise spikes per input step in a mirror presentation
    mirror_lr: float = 0.05  # WM/IA: η_B per minibatch
    noise_rate: float = 0.2  # PAL/SAL: noise spikes per input step and channel into each hidden neuron
    noise_charge: float = 2.0  # PAL/SAL: thresholds of charge per noise spike
    noise_lr: float = 0.001  # PAL/SAL: the running sums' decay per minibatch (α)
    noise_tau: float = 8.0  # PAL: the noise trace's τ; SAL: the spike-timing kernel's τ (steps)
    hp_tau: float = 8.0  # PAL: the upper layer's high-pass τ (steps)
    variant: str = "chip"

    def resolved(self) -> ChipLearnConfig:
        out = ChipLearnConfig(**asdict(self))
        out.hidden = tuple(int(h) for h in self.hidden)
        if out.decay < 0:
            raise NeurodeployError(f"decay must be >= 0, got {out.decay}", "decay", "e.g. decay=0.0005")
        if out.lr < 0:
            raise NeurodeployError(f"lr must be > 0, got {out.lr}", "lr", "e.g. lr=0.01, or leave it out")
        if out.init_gain <= 0:
            out.init_gain = 0.5 if self.rule == "kp" else 1.0
        return out


def default_lr(hidden_layers: int, regression: bool = False) -> float:
    """η for a network of this many hidden layers. With one, 0.01 (the tuned Yin-Yang 4-64-3 rate). Deeper
    networks get 0.003: at 0.01, BP on Yin-Yang 4-30-30-30-3 (ideal, 5 seeds) peaks near 90 % by epoch 5 and
    then drifts down to 63-94 % by epoch 30, while at 0.003 it climbs to 94.5 ± 1.7 % by epoch 15.
    Regressions get 0.003 at every depth: their error is two-sided and never stops at the target's side,
    and at 0.01 the deep teacher's 8-30-4 frozen network (ideal) diverged in one seed of three."""
    return 0.01 if hidden_layers <= 1 and not regression else 0.003


def data_task(data: Sequence[np.ndarray]) -> Task:
    """A Task from the arrays (x_train, y_train, x_test, y_test): features min-max scaled per feature
    on x_train into [0, 1] (the rate code's range), integer labels from 0."""
    if len(data) != 4:
        raise NeurodeployError(
            f"data must be (x_train, y_train, x_test, y_test), got {len(data)} arrays", "data", "pass four arrays"
        )
    x_tr, y_tr, x_te, y_te = (np.asarray(a) for a in data)
    for name, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        if x.ndim != 2 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
            raise NeurodeployError(
                f"{name} data has x {x.shape} and y {y.shape}",
                f"data ({name})",
                "x is (samples, features), y (samples,) integer labels",
            )
        if y.dtype.kind not in "iu" or y.min() < 0:
            raise NeurodeployError(f"{name} labels must be integers >= 0", f"data ({name})", "encode classes as 0..C-1")
        if not np.isfinite(x).all():
            raise NeurodeployError(f"{name} features contain NaN or infinity", f"data ({name})", "clean the features")
    if x_tr.shape[1] != x_te.shape[1]:
        raise NeurodeployError("train and test feature counts differ", "data", "use the same features")
    lo, hi = x_tr.min(axis=0), x_tr.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)

    def scale(x: np.ndarray) -> np.ndarray:
        return np.clip((x - lo) / span, 0.0, 1.0).astype(np.float32)

    n_val = max(1, min(256, len(x_tr) // 10))
    return Task("data", "classification", scale(x_tr), y_tr.astype(np.int64), scale(x_tr[:n_val]),
                y_tr[:n_val].astype(np.int64), scale(x_te), y_te.astype(np.int64))  # fmt: skip


def builtin_graph(sizes: Sequence[int], dt: float = 1e-3, syn_steps: float = 8.0) -> Any:
    """Input → (Linear → CubaLIF) per hidden layer → Linear → IF → Output: the rate-coded ReLU network of
    the built-in tasks. Hidden neurons integrate without leak (τ_mem of 10^6 steps) and spread each input
    spike's charge over a synaptic current of τ_syn = ``syn_steps`` steps (du = 511 on Loihi) at unit
    gain (w_in = τ_syn/dt, r = τ_mem/dt): a smoother rate code than a one-step current, and the
    larger net drive per spike keeps more hidden neurons active."""
    import nir

    nodes: dict[str, Any] = {"input": nir.Input(np.array([sizes[0]]))}
    edges, prev = [], "input"
    tau_syn, tau_mem = syn_steps * dt, 1e6 * dt
    last = len(sizes) - 2
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        nodes[f"fc{k}"] = nir.Linear(np.zeros((b, a)))
        if k == last:
            nodes[f"if{k}"] = nir.IF(r=np.ones(b), v_threshold=np.ones(b))
        else:
            nodes[f"if{k}"] = nir.CubaLIF(
                tau_syn=np.full(b, tau_syn), tau_mem=np.full(b, tau_mem), r=np.full(b, tau_mem / dt),
                v_leak=np.zeros(b), v_threshold=np.ones(b), w_in=np.full(b, tau_syn / dt),
            )  # fmt: skip
        edges += [(prev, f"fc{k}"), (f"fc{k}", f"if{k}")]
        prev = f"if{k}"
    nodes["output"] = nir.Output(np.array([sizes[-1]]))
    edges.append((prev, "output"))
    # the conventions travel with the graph, so a written copy reads back as the same network
    return nir.NIRGraph(nodes, edges, metadata={"neurodeploy.dt": dt, "neurodeploy.reset": "zero"})


def _network_ir(network: Any, task: Task, cfg: ChipLearnConfig) -> tuple[Any, bool]:
    """The float IR to train, and whether its weights are fresh (built-in) or the user's."""
    from neurodeploy.compiler.ir import NetworkIR
    from neurodeploy.compiler.normalize import normalize

    if network is None:
        graph = builtin_graph([task.n_in, *cfg.hidden, task.n_out])
        return normalize(graph), True
    if isinstance(network, (str, Path)):
        from neurodeploy.nirio import load_nir

        network = load_nir(network)
    ir = network if isinstance(network, NetworkIR) else normalize(network)
    n_in, n_out = ir.population(ir.inputs[0]).size, ir.population(ir.outputs[0]).size
    if (n_in, n_out) != (task.n_in, task.n_out):
        raise NeurodeployError(
            f"the network maps {n_in} inputs to {n_out} outputs; the data has {task.n_in} features and "
            f"{task.n_out} classes",
            "network",
            "export the network for this data's shape",
        )
    return ir, False


class ChipTrainer:
    """One run on the chip path: the learning network, its run state and the per-epoch measurements."""

    def __init__(self, cfg: ChipLearnConfig, task: Task, network: Any = None, rule: Any = None) -> None:
        """``rule``: a user-defined ``LocalRule`` (``cfg.rule`` then holds its name)."""
        from neurodeploy.compiler import learning as lp
        from neurodeploy.emulator.learning import LearningRun
        from neurodeploy.hw_profiles import get

        self.cfg, self.task = cfg, task
        if task.kind != "classification":
            lo, hi = (float(f(np.concatenate([task.y_train.ravel(), task.y_test.ravel()]))) for f in (np.min, np.max))
            if lo < 0.0 or hi > 1.0:
                raise NeurodeployError(
                    f"regression targets span [{lo:.3g}, {hi:.3g}]; the chip path teaches them as output rates "
                    "per input step, which lie in [0, 1]",
                    "y_train / y_test",
                    "scale the targets into [0, 1], e.g. (y - y.min()) / (y.max() - y.min()), or use variant='paper'",
                )
        ir, fresh = _network_ir(network, task, cfg)
        if cfg.lr <= 0:
            cfg.lr = default_lr(len(lp.layered(ir)) - 1, task.kind != "classification")  # chain: + output
        profile = get(cfg.profile)
        self.opt = lp.LearnOptions(
            instances=cfg.seeds, seed=cfg.seed, lr=cfg.lr, batch=cfg.batch, steps=cfg.steps, active=cfg.active,
            scale=cfg.scale, tag_bits=cfg.tag_bits, decay=cfg.decay, mismatch=cfg.mismatch,
            init_gain=cfg.init_gain if fresh else 0.0, delta_max=cfg.delta_max, mirror_rate=cfg.mirror_rate,
            mirror_lr=cfg.mirror_lr, noise_rate=cfg.noise_rate, noise_charge=cfg.noise_charge,
            noise_lr=cfg.noise_lr, noise_tau=cfg.noise_tau, hp_tau=cfg.hp_tau,
        )  # fmt: skip
        self.lnet = lp.build(ir, cfg.rule if rule is None else rule, profile, self.opt, cfg.variant)
        # regression: the output neurons' rate is taught the target value itself (the tasks' targets lie in
        # [0, 1], a rate per active step), with the two-sided error of the squared loss
        self.regression = task.kind != "classification"
        self.run = LearningRun(self.lnet, seed=cfg.seed, error="squared" if self.regression else "hinge")
        self.rng = np.random.default_rng([cfg.seed, 7919])
        self.rules_used: list[dict[str, Any]] = []
        self._lr = None

    def encode(self, x: np.ndarray) -> np.ndarray:
        from neurodeploy.datasets import encode_rate

        return encode_rate(x, self.lnet.schedule.steps, self.lnet.schedule.active, bias_spike=False)

    def step(self, idx: np.ndarray, lr: float) -> None:
        from neurodeploy.compiler.learning import set_rates

        if lr != self._lr:
            set_rates(self.lnet, lr, self.lnet.decay)
            self.run.rates_changed()
            self._lr = lr
            first = next(iter(self.lnet.engine.values()), None)
            if first is not None:
                self.rules_used.append(first.to_dict())
        x, y = self.task.x_train[idx], self.task.y_train[idx]
        act = self.run.present(self.encode(x), self.target(y))
        self.run.learn(act)

    def target(self, y: np.ndarray) -> np.ndarray:
        """Target counts per presentation: every active step for the class (none for the others), or the
        regression target times the active steps (its rate)."""
        y = np.asarray(y)
        per_step = y.reshape(len(y), -1) if self.regression else np.eye(self.task.n_out)[y]
        return per_step * self.lnet.schedule.active

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Accuracy per instance, or for a regression the mean squared error of the readout's rate."""
        total = np.zeros(self.lnet.instances)
        for i in range(0, len(x), 500):
            act = self.run.present(self.encode(x[i : i + 500]))
            if self.regression:
                err = act.readout - np.asarray(y[i : i + 500]).reshape(act.readout.shape[1], -1)
                total += (err**2).mean(-1).sum(-1)
            else:
                total += (act.readout.argmax(-1) == y[i : i + 500]).sum(-1)
        return total / len(x)

    def alignment(self, probe: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
        x, y = probe
        act = self.run.present(self.encode(x), self.target(y), noise=False)
        lnet = self.lnet
        out: dict[str, Any] = {"signal_angle": {}, "weight_angle": {}, "norm_ratio": {}}
        layers = lnet.layers
        bp = act.delta[layers[-1].name] * layers[-1].delta_scale
        for k in range(len(layers) - 2, -1, -1):
            w_up = np.asarray(lnet.projection(_forward_name(lnet, layers[k + 1].name)).weight, dtype=float)
            gate = act.counts[layers[k].name] > 0
            bp = np.einsum("sbj,sji->sbi", bp, w_up) * gate
            rule_d = act.delta[layers[k].name] * layers[k].delta_scale
            out["signal_angle"][f"h{k + 1}"] = metrics.angle(rule_d, bp).tolist()
            for fb in lnet.feedback_of(layers[k].name):
                w_t = np.swapaxes(w_up, -1, -2)
                if fb.weight.shape == w_t.shape:
                    out["weight_angle"][f"B{k + 1}"] = metrics.angle(fb.weight, w_t).tolist()
                    out["norm_ratio"][f"B{k + 1}"] = metrics.norm_ratio(fb.weight, w_t).tolist()
        return out


def _forward_name(lnet: Any, layer: str) -> str:
    return next(pr.name for pr in lnet.core.projections if pr.dst == layer and pr.src != "bias")


def learn_chip(
    rule: Any,
    profile: str = "loihi2",
    task_or_data: str | Sequence[np.ndarray] = "yinyang",
    *,
    network: Any = None,
    mismatch: float = 0.0,
    seeds: int = 5,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    **overrides: Any,
) -> LearnResult:
    """Train ``network`` (or a built-in one of ``hidden`` sizes) with ``rule`` (a name or a ``LocalRule``)
    on ``profile``."""
    custom, rule = (None, rule) if isinstance(rule, str) else (rule, rule.name)
    unknown = set(overrides) - set(ChipLearnConfig.__dataclass_fields__)
    if unknown:
        raise NeurodeployError(f"unknown learning option {sorted(unknown)[0]!r}", "learn()", "see ChipLearnConfig")
    if seeds < 1 or mismatch < 0:
        raise NeurodeployError("seeds must be >= 1 and mismatch >= 0", "learn()", "e.g. --seeds 5 --mismatch 0.1")
    task = get_task(task_or_data) if isinstance(task_or_data, str) else data_task(task_or_data)
    name = task_or_data if isinstance(task_or_data, str) else "data"
    cfg = ChipLearnConfig(rule=rule, profile=profile, task=name, mismatch=mismatch, seeds=seeds, **overrides).resolved()
    if cfg.variant == "paper":  # the chip path never runs under the paper's name
        raise NeurodeployError(
            f"learn_chip runs the chip variant of {rule!r}, not its paper variant",
            "variant",
            "call neurodeploy.learn(..., variant='paper') for the published equations in float",
        )
    trainer = ChipTrainer(cfg, task, network, custom)
    t0 = time.perf_counter()
    history = train_epochs(trainer, task, cfg.epochs, cfg.lr, cfg.batch, len(task.x_train), 0.25, progress)
    final = final_summary(task, history)
    engine = {
        "rules": {n: r.to_dict() for n, r in trainer.lnet.engine.items()},
        "rate_changes": trainer.rules_used,
        "counters": dict(trainer.run.stats),
        "schedule": asdict(trainer.lnet.schedule),
        "numerics": trainer.lnet.numerics,
    }
    from neurodeploy.rules import motif

    mot = motif(rule) if custom is None else custom.motif()
    if custom is not None:
        engine["custom_rule"] = custom.to_dict()
    return LearnResult(asdict(cfg), history, final, engine, trainer.lnet.provenance, time.perf_counter() - t0,
                       cfg.variant, list(mot.chip_differences))  # fmt: skip

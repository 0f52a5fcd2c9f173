"""``learn``: train a spiking network on chip with a local rule and measure it against backprop.

Seeds run as independent chip instances in one batched pass (instance axis), so K seeds cost little
more than one. Per epoch the history holds test accuracy (or MSE), the weight alignment angle
∠(B, Wᵀ) and norm ratio ‖B‖/‖W‖ per feedback matrix, and the signal alignment angle ∠(δ_rule, δ_BP)
per hidden layer on a fixed probe batch, where δ_BP is an exact float backprop shadow of the same
spiking forward pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from neurodeploy.datasets import encode_rate
from neurodeploy.errors import NeurodeployError
from neurodeploy.learning import metrics, onchip
from neurodeploy.learning.chipnet import ChipMLP, Numerics
from neurodeploy.learning.rules import (
    Presentation,
    feedback_requests,
    init_feedback,
    learning_signals,
    rule_info,
    surrogate_slope,
)
from neurodeploy.learning.tasks import Task, get_task


@dataclass
class LearnConfig:
    """Every knob of a run; defaults are the tuned Yin-Yang settings (4-64-3, 40 epochs)."""

    rule: str
    profile: str = "loihi2"
    task: str = "yinyang"
    mismatch: float = 0.0
    seeds: int = 5
    seed: int = 0
    epochs: int = 40
    hidden: tuple[int, ...] = (64,)
    lr: float = 0.01  # per sample, float units; halved at 50 % and again at 75 % of the epochs
    batch: int = 32
    steps: int = 63  # one presentation = one learning epoch of the engine (<= 63)
    active: int = 56
    du: int = 511
    scale: int = 64
    feedback_lr: float = 0.0  # 0: the rule's default
    decay: float = -1.0  # per update, on W and B for kp/wm/ia/pal; < 0: the rule's default
    noise_std: float = -1.0  # PAL membrane noise (thresholds, 0.2); < 0: default
    escape_width: float = -1.0  # escape noise width (threshold units): SAL 0.5, PAL 0.1; < 0: the rule's default
    init_gain: float = 0.0  # initial weights ~ N(0, init_gain² / fan_in); 0: the rule's default

    def resolved(self) -> LearnConfig:
        # (feedback learning rate, decay per update): B settles at η_B·E[C]/α, which must stay well inside
        # the 8-bit range next to W (B entries that clip at ±255 cost 15-20° of alignment on loihi2)
        defaults = {
            "kp": (0.0, 1e-4),
            "wm": (0.001, 2e-3),
            "ia": (0.001, 2e-3),
            "pal": (0.001, 2e-3),
            "sal": (0.001, 2e-3),
        }
        fb, dec = defaults.get(self.rule, (0.0, 0.0))
        out = LearnConfig(**asdict(self))
        out.hidden = tuple(self.hidden)
        if out.feedback_lr <= 0:
            out.feedback_lr = fb
        if out.decay < 0:
            out.decay = dec
        if out.init_gain <= 0:  # KP: a small W₀ is all of W − Bᵀ at the start (B starts at 0)
            out.init_gain = 0.5 if self.rule == "kp" else 1.0
        # PAL: noise large enough that it, not the escape noise, drives most of the firing variance
        # (the estimator's signal-to-noise ratio grows with σ/w); w small keeps training close to the
        # deterministic network that is tested. On loihi2 (5 seeds, 40 epochs) σ = 0.2 gave 95.6 % and
        # 6° where σ = 0.3 gave 95.0 % and 7°: the noisier forward pass costs accuracy, not alignment.
        if out.noise_std < 0:
            out.noise_std = 0.2 if self.rule == "pal" else 0.1
        if out.escape_width < 0:
            out.escape_width = 0.1 if self.rule == "pal" else 0.5
        return out


@dataclass
class LearnResult:
    """The configuration, the per-epoch history and the final summary of one ``learn`` call."""

    config: dict[str, Any]
    history: list[dict[str, Any]]
    final: dict[str, Any]
    engine: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": "neurodeploy.learn", "version": 2, **asdict(self)}


def _numerics(profile_name: str, cfg: LearnConfig) -> tuple[Numerics, Any]:
    from neurodeploy import profiles

    profile = profiles.get(profile_name)
    engine = profile.plasticity.get("engine")
    if engine not in ("loihi", "float"):
        why = {
            "none": "the chip has no on-chip long-term learning",
            "programmable": "its plasticity is programmable software that neurodeploy does not model",
            None: "the profile declares no [plasticity] section",
        }.get(engine, f"engine {engine!r} is not modelled")
        raise NeurodeployError(
            f"profile {profile.name!r} cannot run learning rule {cfg.rule!r}: {why}",
            f"{profile.path}: [plasticity].engine",
            "use --profile loihi2 (fixed point) or --profile ideal (float)",
        )
    info = rule_info(cfg.rule)
    if (info.noise or info.mirror) and not profile.plasticity.get("noise_source", False):
        raise NeurodeployError(
            f"rule {cfg.rule!r} needs a noise source on the neurons, which profile {profile.name!r} lacks",
            f"{profile.path}: [plasticity].noise_source",
            "pick a rule without noise (fa, kp, ...) or a profile with a noise source",
        )
    if cfg.steps > int(profile.plasticity.get("max_epoch", 10**9)):
        raise NeurodeployError(
            f"a presentation of {cfg.steps} steps exceeds the chip's longest learning epoch",
            f"{profile.path}: [plasticity].max_epoch = {profile.plasticity['max_epoch']}",
            "use --steps 63 or fewer",
        )
    mode = "fixed" if engine == "loihi" else "float"
    return Numerics(mode, scale=cfg.scale, du=cfg.du), profile


class _Trainer:
    """One run: the network, the feedback, the engine writers and the per-epoch bookkeeping."""

    def __init__(self, cfg: LearnConfig, task: Task) -> None:
        self.cfg, self.task = cfg, task
        self.info = rule_info(cfg.rule)
        self.numerics, self.profile = _numerics(cfg.profile, cfg)
        self.rng = np.random.default_rng([cfg.seed, 7919])
        init_rng = np.random.default_rng([cfg.seed, 1])
        sizes = [task.n_in, *cfg.hidden, task.n_out]
        self.net = ChipMLP(sizes, cfg.seeds, self.numerics, init_rng, cfg.init_gain)
        if cfg.mismatch > 0:
            self.net.set_mismatch(cfg.mismatch, np.random.default_rng([cfg.seed, 2]))
        fb = init_feedback(cfg.rule, [self.net.as_float(w) for w in self.net.weights], init_rng)
        if cfg.rule == "kp":  # any start aligns; from zero, W - Bᵀ starts at W₀ instead of W₀ - B₀
            fb = [np.zeros_like(b) for b in fb]
        self.feedback = [self.net.to_storage(b, init_rng) for b in fb]
        self.fixed = self.numerics.mode == "fixed"
        self.engine: dict[str, Any] = {"mode": self.numerics.mode}
        self.corr_unit: dict[int, float] = {}
        self.variance: dict[int, np.ndarray] = {}

    # --- data ------------------------------------------------------------------------------------
    def encode(self, x: np.ndarray) -> np.ndarray:
        return encode_rate(x, self.cfg.steps, self.cfg.active, bias_spike=False)[:, None]

    def targets(self, y: np.ndarray) -> np.ndarray:
        if self.task.kind == "classification":
            return np.eye(self.task.n_out)[y]
        return np.asarray(y, dtype=float)

    def output_error(self, readout: np.ndarray, target: np.ndarray) -> np.ndarray:
        if self.task.kind == "classification":
            z = readout - readout.max(-1, keepdims=True)
            p = np.exp(z)
            return p / p.sum(-1, keepdims=True) - target
        return readout - target

    # --- one presentation ------------------------------------------------------------------------
    def present(self, x: np.ndarray, y: np.ndarray, learn: bool = True) -> tuple[Presentation, Any]:
        cfg, info = self.cfg, self.info
        record = learn and (info.noise or info.stochastic)
        act = self.net.forward(
            self.encode(x),
            cfg.active,
            noise_std=cfg.noise_std if (learn and info.noise) else 0.0,
            noise_tau=0.0,  # the noise source's draw of each step: white
            escape_width=cfg.escape_width if (learn and info.stochastic) else 0.0,
            rng=self.rng,
            record=record,
            noise_into="v",
        )
        rates = [c / cfg.active for c in act.counts]
        ones = np.ones(rates[0].shape[:-1] + (1,))
        pre = [np.concatenate([r, ones], axis=-1) for r in rates[:-1]]
        target = self.targets(y)[None]
        p = Presentation(
            rates=rates,
            pre=pre,
            fprime=[surrogate_slope(r) for r in rates[1:-1]],
            error=self.output_error(act.readout, target),
            target=np.broadcast_to(target, act.readout.shape),
        )
        if record:
            w_f = [self.net.as_float(w) for w in self.net.weights]
            trains = act.extra["trains"]
            prob = act.extra["escape_p"]
            if info.noise:  # PAL: gated noise against the response, normalised by the gated p(1 - p)
                gate = metrics.sensitivity_gate(act.extra["margin"], cfg.noise_std, cfg.escape_width)
                noise = act.extra["noise"][: len(gate)] * gate
                p.noise_corr = [metrics.noise_response_corr(noise, trains[1], w_f[1])]
                p.spike_variance = [(gate * prob * (1.0 - prob)).mean(axis=0)]
            else:
                p.stdp_corr = [metrics.stdp_corr(trains[1], w_f[1], prob)]
                p.spike_variance = [(prob * (1.0 - prob)).mean(axis=0)]
        return p, act

    # --- updates ---------------------------------------------------------------------------------
    def writers(self, lr: float) -> None:
        cfg = self.cfg
        if not self.fixed:
            return
        if getattr(self, "_lr", None) != lr:
            self._lr = lr
            self.fwd = onchip.ForwardWriter(lr, cfg.scale, cfg.active)
            self.engine.setdefault("forward_rules", []).append(
                {
                    "lr": lr,
                    "rule": self.fwd.rule,
                    "third_factor_gain": self.fwd.gain,
                    "realised_lr": self.fwd.realised_lr,
                }
            )
        if not hasattr(self, "tag"):
            # PAL: the decay joins the tag, which moves B every 32 updates (one rounding per move)
            pal = cfg.rule == "pal"
            period, tag_decay = (5, cfg.decay) if pal else (3, 0.0)
            self.tag = {
                k: onchip.TagWriter(cfg.feedback_lr, cfg.scale, period_exp=period, decay=tag_decay)
                for k in range(len(self.feedback))
            }
            if self.info.learns_feedback and cfg.rule != "kp":
                self.engine["feedback_rule"] = self.tag[0].rule
            self.decay_w = onchip.DecayWriter(cfg.decay)
            self.decay_b = onchip.DecayWriter(cfg.decay)

    def step(self, idx: np.ndarray, lr: float) -> None:
        cfg = self.cfg
        x, y = self.task.x_train[idx], self.task.y_train[idx]
        p, _ = self.present(x, y)
        w_f = [self.net.as_float(w) for w in self.net.weights]
        b_f = [self.net.as_float(b) for b in self.feedback]
        deltas = learning_signals(cfg.rule, w_f, self.feedback_gain(b_f), p)
        self.writers(lr)
        updates = []
        for k in range(len(self.net.weights)):
            if self.fixed:
                dw = self.fwd.update(p.pre[k] * cfg.active, deltas[k], self.rng)
            else:
                dw = -lr * np.einsum("sbo,sbi->soi", deltas[k], p.pre[k])
            updates.append(dw)
        requests = feedback_requests(cfg.rule, updates if self.fixed else [u / lr for u in updates], b_f, p)
        draws = [self.rng.random(w.shape) for w in self.net.weights] if self.fixed else [None] * len(updates)
        for k, dw in enumerate(updates):
            self.net.weights[k] = self.apply(self.net.weights[k], dw, cfg.rule == "kp", draws[k])
        for k, req in enumerate(requests):
            if req is None:
                continue
            if cfg.rule == "kp":  # B gets W's update transposed: the same integers, and W's decay draws
                db = np.swapaxes(updates[k + 1][..., :-1], -1, -2)
                u = None if draws[k + 1] is None else np.swapaxes(draws[k + 1][..., :-1], -1, -2)
                self.feedback[k] = self.apply(self.feedback[k], db, True, u)
                continue
            if p.spike_variance:
                req = self.per_neuron(k, req, p.spike_variance[k])
            if k not in self.corr_unit:  # fixed after the first update, like a chip's gain register
                self.corr_unit[k] = float(np.percentile(np.abs(req), 99)) or 1.0
            req = req / self.corr_unit[k]
            if self.fixed:
                db = self.tag[k].update(req, self.rng, self.feedback[k])
                self.feedback[k] = self.apply(self.feedback[k], db, self.tag[k].decay == 0)
            else:
                self.feedback[k] = self.apply(self.feedback[k], cfg.feedback_lr * req, True)

    def per_neuron(self, k: int, req: np.ndarray, variance: np.ndarray) -> np.ndarray:
        """SAL and PAL: divide hidden neuron i's feedback correlation by its own running spike variance D_i.

        SAL's surprise correlation and PAL's noise correlation both estimate (D W)ᵀ with D_i = E[p(1 − p)]
        (PAL: weighted by its gate), which differs a lot between neurons (47° from Wᵀ on a fresh network).
        Each neuron knows its own firing probability, so scaling its feedback synapses' updates by 1/D_i
        (its third-factor gain) is local and moves the fixed point to Wᵀ. The floor (5 % of the layer's
        mean) bounds the gain of near-silent neurons."""
        now = variance.mean(axis=1)  # (inst, n)
        prev = self.variance.get(k)
        self.variance[k] = now if prev is None else 0.99 * prev + 0.01 * now
        d = self.variance[k]
        return req / np.maximum(d, 0.05 * d.mean(axis=-1, keepdims=True) + 1e-12)[..., None]

    def feedback_gain(self, b_f: list[np.ndarray]) -> list[np.ndarray]:
        """Learned feedback (WM, IA, PAL, SAL) reaches the neurons through a per-projection gain that keeps
        ‖B‖ at its initial norm: the rules set B's direction, the projection's weight exponent its scale
        (KP's B shares W's scale by construction and is used as it is)."""
        if not self.info.learns_feedback or self.cfg.rule == "kp":
            return b_f
        out = []
        for b in b_f:
            norm = np.sqrt((b**2).sum(axis=(-1, -2), keepdims=True))
            target = np.sqrt(b.shape[-2])  # the norm of the N(0, 1/n_next) start
            out.append(np.divide(b * target, norm, out=np.zeros_like(b), where=norm > 0))
        return out

    def apply(self, z: np.ndarray, dz: np.ndarray, decays: bool, draws: np.ndarray | None = None) -> np.ndarray:
        """Add an update; ``decays``: also the rule's weight decay (KP: W and B; WM/IA/PAL/SAL: B).
        ``draws``: the decay's rounding draws (KP passes W's, transposed, to B)."""
        if self.fixed:
            z = onchip.apply(z, dz)
            if decays and self.cfg.decay > 0:
                writer = self.decay_b if z.shape[-1] == self.net.sizes[-1] else self.decay_w
                u = self.rng.random(z.shape) if draws is None else draws
                z = onchip.apply(z, writer.update(z, u))
            return z
        z = z + dz
        if decays and self.cfg.decay > 0:
            z = z * (1.0 - self.cfg.decay)
        return z

    # --- evaluation ------------------------------------------------------------------------------
    def evaluate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        scores = []
        for i in range(0, len(x), 500):
            _, act = self.present(x[i : i + 500], y[i : i + 500], learn=False)
            if self.task.kind == "classification":
                scores.append((act.readout.argmax(-1) == y[i : i + 500]).sum(-1))
            else:
                scores.append(((act.readout - y[i : i + 500]) ** 2).mean(-1).sum(-1))
        return np.sum(scores, axis=0) / len(x)

    def alignment(self, probe: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
        p, _ = self.present(*probe, learn=False)
        w_f = [self.net.as_float(w) for w in self.net.weights]
        b_f = [self.net.as_float(b) for b in self.feedback]
        rule_d = learning_signals(self.cfg.rule, w_f, self.feedback_gain(b_f), p)
        bp_d = learning_signals("bp", w_f, b_f, p)
        out: dict[str, Any] = {"signal_angle": {}, "weight_angle": {}, "norm_ratio": {}}
        for k in range(len(w_f) - 1):
            out["signal_angle"][f"h{k + 1}"] = metrics.angle(rule_d[k], bp_d[k]).tolist()
            fwd_t = np.swapaxes(w_f[k + 1][..., :-1], -1, -2)
            if self.cfg.rule in ("fa", "kp", "wm", "ia", "pal", "sal", "dfa", "drtp") and b_f[k].shape == fwd_t.shape:
                out["weight_angle"][f"B{k + 1}"] = metrics.angle(b_f[k], fwd_t).tolist()
                out["norm_ratio"][f"B{k + 1}"] = metrics.norm_ratio(b_f[k], fwd_t).tolist()
            elif self.cfg.rule == "sign":
                scale = np.sqrt(np.mean(fwd_t**2, axis=(-1, -2), keepdims=True))
                out["weight_angle"][f"B{k + 1}"] = metrics.angle(scale * np.sign(fwd_t), fwd_t).tolist()
        return out


def learn(
    rule: str,
    profile: str = "loihi2",
    task: str = "yinyang",
    mismatch: float = 0.0,
    seeds: int = 5,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    **overrides: Any,
) -> LearnResult:
    """Train with ``rule`` on ``profile`` for ``seeds`` chips at once; returns history and summary.

    Rules with a chip motif (``neurodeploy.rules.CHIP_RULES``) run on the compiled network
    (``neurodeploy.studies.chip_learning``); the others run here, with their learning signals on the host,
    which their ``provenance`` states."""
    from neurodeploy.rules import CHIP_RULES

    if rule in CHIP_RULES:
        from neurodeploy.studies.chip_learning import learn_chip

        return learn_chip(rule, profile, task, mismatch=mismatch, seeds=seeds, progress=progress, **overrides)
    if rule == "eprop":
        from neurodeploy.learning.eprop import learn_eprop

        return learn_eprop(profile=profile, task=task, mismatch=mismatch, seeds=seeds, progress=progress, **overrides)
    unknown = set(overrides) - set(LearnConfig.__dataclass_fields__)
    if unknown:
        raise NeurodeployError(f"unknown learning option {sorted(unknown)[0]!r}", "learn()", "see LearnConfig")
    if seeds < 1 or mismatch < 0:
        raise NeurodeployError("seeds must be >= 1 and mismatch >= 0", "learn()", "e.g. --seeds 5 --mismatch 0.1")
    cfg = LearnConfig(rule=rule, profile=profile, task=task, mismatch=mismatch, seeds=seeds, **overrides).resolved()
    info = rule_info(rule)
    if (info.noise or info.stochastic) and len(cfg.hidden) != 1:
        raise NeurodeployError(
            f"rule {rule!r} is implemented for one hidden layer, got {len(cfg.hidden)}",
            "hidden",
            "use one hidden layer (e.g. --hidden 64), or wm / kp for deeper networks",
        )
    data = get_task(task)
    tr = _Trainer(cfg, data)
    t0 = time.perf_counter()
    history = train_epochs(tr, data, cfg.epochs, cfg.lr, cfg.batch, len(data.x_train), 0.25, progress)
    final = _final(data, history, tr)
    eng = dict(tr.engine)
    if tr.fixed:
        eng["third_factor_saturations"] = tr.fwd.saturated
        eng["tag_saturations"] = sum(t.saturated for t in tr.tag.values())
        eng["decay_period_updates"] = tr.decay_w.period
    prov = host_provenance(rule, [data.n_in, *cfg.hidden, data.n_out], cfg.active, cfg.profile)
    return LearnResult(asdict(cfg), history, final, eng, time.perf_counter() - t0, prov)


def host_provenance(rule: str, sizes: list[int], steps: int, profile: str) -> dict[str, Any]:
    """Where the signals of a rule without a chip motif are computed: its learning signals on the host.

    Host operations per training sample are multiply-adds (and one exp per output for the softmax)."""
    pairs = sum(a * b for a, b in zip(sizes[1:-1], sizes[2:], strict=False))
    hidden = sum(sizes[1:-1])
    host = "host (float, CPU)"
    fb = {"pal": pairs * steps * 2 + hidden * steps, "sal": pairs * steps * 2, "wm": pairs * steps,
          "ia": 2 * pairs * steps, "sign": pairs}  # fmt: skip
    feedback_how = "B = s·sign(W)ᵀ copied from W" if rule == "sign" else "feedback correlations in numpy"
    return {
        "forward": {
            "where": f"chip numerics of {profile} in the learning simulator (not the compiled network)",
            "how": "integrate-and-fire layers with the engine's weights",
            "host_ops_per_sample": 0,
        },
        "output_error": {
            "where": host,
            "how": "softmax of the readout minus the target",
            "host_ops_per_sample": 4 * sizes[-1],
        },
        "hidden_signal": {
            "where": host,
            "how": "δ through B (or Wᵀ) as a float matrix product",
            "host_ops_per_sample": 2 * pairs + hidden,
        },
        "feedback_learning": {
            "where": host if rule in fb else "none",
            "how": feedback_how,
            "host_ops_per_sample": fb.get(rule, 0),
        },
        "weight_write": {
            "where": f"chip engine of {profile} (rule strings applied to host-computed δ)",
            "how": "tag writes from host third factors",
            "host_ops_per_sample": 0,
        },
    }


def train_epochs(
    trainer: Any,
    data: Task,
    epochs: int,
    lr: float,
    batch: int,
    n: int,
    last_factor: float,
    progress: Callable[[int, int, dict[str, Any]], None] | None,
) -> list[dict[str, Any]]:
    """The epoch loop every rule shares: shuffled minibatches of the first ``n`` training samples, the
    learning rate halved at 50 % of the epochs and cut to ``last_factor`` at 75 %, then the test score
    and the alignment on a fixed probe batch of 256 validation samples. ``trainer`` offers ``rng``,
    ``step(idx, lr)``, ``evaluate(x, y)`` and ``alignment(probe)``."""
    probe = (data.x_val[:256], data.y_val[:256])
    history: list[dict[str, Any]] = []
    for epoch in range(epochs):
        rate = lr * (last_factor if epoch >= 0.75 * epochs else 0.5 if epoch >= 0.5 * epochs else 1.0)
        order = trainer.rng.permutation(n)
        for i in range(0, n, batch):
            trainer.step(order[i : i + batch], rate)
        score = trainer.evaluate(data.x_test, data.y_test)
        entry = {"epoch": epoch + 1, "lr": rate, **_score(data, score), **trainer.alignment(probe)}
        history.append(entry)
        if progress is not None:
            progress(epoch + 1, epochs, entry)
    return history


def _score(task: Task, score: np.ndarray) -> dict[str, Any]:
    key = "test_accuracy" if task.kind == "classification" else "test_mse"
    return {key: score.tolist()}


def _final(task: Task, history: list[dict[str, Any]], tr: _Trainer) -> dict[str, Any]:
    last = history[-1]
    key = "test_accuracy" if task.kind == "classification" else "test_mse"
    vals = np.asarray(last[key])
    out: dict[str, Any] = {key: {"mean": float(vals.mean()), "std": float(vals.std()), "per_seed": vals.tolist()}}
    for group in ("weight_angle", "signal_angle", "norm_ratio"):
        out[group] = {
            name: {"mean": float(np.mean(v)), "std": float(np.std(v))} for name, v in last.get(group, {}).items()
        }
    return out

"""A learning run: the compiled learning network (``compiler.learning``) in the emulator's run loop.

Each minibatch of presentations runs as follows, exactly as the chip runs them one after another:

1. The spiking network (forward layers, bias neuron) runs through ``simulate``, the emulator's one run
   loop, with the presentations as a batch axis. Weights only move at the last bAP of a minibatch, and
   every neuron starts a presentation at rest, so presentations in a minibatch are independent.
2. The learning neurons' error compartments run at their scheduled steps: the output compartment
   subtracts the target spikes from its membrane and emits δ as a graded spike; feedback synapses B
   carry graded δ into the compartments below, which gate it by their soma's spikes and relay it on.
   These populations receive from the forward network and never drive it, so they run after it.
3. The learning engine applies the rule strings at every step. Only the pre-spike counter d, the bAP
   step and the tag moves do anything, so the engine evaluates those steps in closed form, in the
   order of the presentations, with Lava's fixed-point arithmetic (``learning_rule``, ``plasticity``)
   and stochastic rounding.

On the ``ideal`` profile (``numerics == "float"``) the same network runs in float64 and the updates are
exact: minibatch SGD on the chip's own spiking forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurodeploy.compiler.learning import GRADED_OFFSET, LearningNetwork, host_copy
from neurodeploy.emulator.learning_kernels import available as kernel_available
from neurodeploy.emulator.learning_kernels import compiled as compiled_engine
from neurodeploy.emulator.learning_kernels import draw_key, draws7, forward_family, graded_family
from neurodeploy.emulator.learning_noise import noise_spikes
from neurodeploy.emulator.learning_rule import parse_rule
from neurodeploy.emulator.plasticity import (
    THIRD_FACTOR_TAU,
    TraceSpec,
    apply_accumulator,
    decay_trace,
    round_accumulator,
)
from neurodeploy.emulator.simulate import simulate
from neurodeploy.errors import NeurodeployError

THIRD = TraceSpec(0.0, THIRD_FACTOR_TAU)  # y1-y3 from the neuron: Lava decays them with τ = 65535
GRADED = TraceSpec(0.0, THIRD_FACTOR_TAU)  # the graded pre trace of B (overwritten by each relay)
COUNTER_MAX = 255  # d (tag_2) is clipped to [0, 255]


@dataclass
class Activity:
    """One minibatch of presentations: spike counts, learning signals and readouts, (inst, batch, n)."""

    spikes: dict[str, np.ndarray]  # (steps, inst, batch, n) bool, forward layers and the bias neuron
    counts: dict[str, np.ndarray]
    readout: np.ndarray  # output membrane at the emit step, in float units (score per input step)
    delta: dict[str, np.ndarray] = field(default_factory=dict)  # δ per layer: ints (fixed) or floats
    payload: dict[str, np.ndarray] = field(default_factory=dict)  # graded spike sent by each source
    # PAL/SAL: the noise populations' spikes per hidden layer, (steps, inst, batch, 2n)
    noise: dict[str, np.ndarray] = field(default_factory=dict)
    v_out: np.ndarray | None = None  # PAL/SAL: the output membrane per step (steps, inst, batch, n_out)


def _shift_round(x: np.ndarray, s: int) -> np.ndarray:
    """x / 2^s rounded half up, as a programmable neuron computes it: (x + 2^(s-1)) >> s."""
    return (x + (1 << (s - 1))) >> s if s > 0 else x


def _one_sided(err: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The output error compartment's rule: a neuron with target spikes only learns while it is below
    its target, one without only while it is above zero (a hinge on the rate: what a softmax's error
    does for a confident, correct answer, computed from the compartment's sign alone)."""
    return np.where(target > 0, np.minimum(err, 0), np.maximum(err, 0))


class LearningRun:
    """State of one learning run: weights live in ``lnet`` (updated in place), tags and counters here."""

    def __init__(
        self, lnet: LearningNetwork, seed: int = 0, kernels: str = "auto", draws: str = "hardware", error: str = "hinge"
    ) -> None:
        """``error``: the output compartment's error, ``"hinge"`` for classes (a neuron learns only on the side
        of its target that a softmax would push it: see ``_one_sided``) or ``"squared"`` for regression
        (output − target on both sides, the gradient of the squared error; targets may be fractional counts).
        ``draws="hardware"``: every synapse rounds with its own hashed draw (``learning_kernels``);
        ``draws="lava"``: Lava's streams, so that LearningDense replays the run bit for bit: one rounding
        draw per step shared by all synapses (seed 2) and one third-factor decay draw per step shared by
        all neurons (the rule's trace stream, rng_seed = ``seed``). Lava mode covers fixed feedback."""
        if draws not in ("hardware", "lava"):
            raise ValueError(f"draws must be 'hardware' or 'lava', got {draws!r}")
        if error not in ("hinge", "squared"):
            raise ValueError(f"error must be 'hinge' or 'squared', got {error!r}")
        self.error = error
        if draws == "lava" and any(f.plastic for f in lnet.feedback):
            raise NeurodeployError(
                "draws='lava' needs fixed feedback: Lava has no graded pre trace for a plastic B",
                "draws",
                "use draws='hardware' for Kolen-Pollack",
            )
        self.lnet, self.kernels, self.seed, self.draws = lnet, kernels, int(seed), draws
        self.fixed = lnet.numerics == "loihi"
        self.rng = np.random.default_rng([seed, 11])
        self.mirror_rng = np.random.default_rng([seed, 13])
        self.mirror_noise: dict[str, np.ndarray] = {}  # WM/IA: the noise synapses per layer (learning_mirror)
        self.noise_rng = np.random.default_rng([seed, 17])  # PAL/SAL: the noise populations' spikes
        self.noise_sums: dict[str, tuple] = {}  # PAL/SAL: the host's running sums behind each B
        self.steps_done = 0
        self.tags = {name: np.zeros(self.weight(name).shape, dtype=np.int64 if self.fixed else float)
                     for name in lnet.engine}  # fmt: skip
        self.carry: dict[str, np.ndarray] = {}
        self.stats = {"tag_saturations": 0, "weight_saturations": 0, "counter_saturations": 0, "delta_clips": 0}
        self._parse()

    def _parse(self) -> None:
        self.series = {}
        if self.fixed:
            for name, rule in self.lnet.engine.items():
                self.series[name] = (parse_rule(rule.dt, "dt"), parse_rule(rule.dw, "dw"))

    def _neuron_kernels(self) -> str:
        """The compiled neuron kernel whenever the compiled engine runs too: a learning run calls
        ``simulate`` once per minibatch, so numba's load time is paid once."""
        if self.kernels == "auto" and self.fixed and kernel_available():
            return "numba"
        return self.kernels

    def rates_changed(self) -> None:
        """Call after ``compiler.learning.set_rates``: the engine reads the new rule strings."""
        self._parse()

    def weight(self, name: str) -> np.ndarray:
        for fb in self.lnet.feedback:
            if fb.name == name:
                return fb.weight
        return self.lnet.projection(name).weight

    def _set_weight(self, name: str, value: np.ndarray) -> None:
        for fb in self.lnet.feedback:
            if fb.name == name:
                fb.weight = value
                return
        self.lnet.projection(name).weight = value

    # ------------------------------------------------------------------ the network

    def present(
        self, spikes: np.ndarray, target_counts: np.ndarray | None = None, noise: bool | None = None
    ) -> Activity:
        """Run ``spikes`` (steps, batch, n_in) through the network; with ``target_counts`` (batch, n_out:
        target spikes per presentation) also the error compartments. PAL/SAL's noise populations fire
        when ``noise`` is true (default: while training, i.e. with targets)."""
        lnet, sched = self.lnet, self.lnet.schedule
        batch = spikes.shape[1]
        bias = np.zeros((sched.steps, 1, 1), dtype=bool)
        bias[: sched.active] = True
        names = [layer.name for layer in lnet.layers]
        inputs = {lnet.core.inputs[0]: spikes, "bias": bias}
        noisy = bool(lnet.train_noise) and (target_counts is not None if noise is None else noise)
        trains: dict[str, np.ndarray] = {}
        for name in lnet.core.inputs[2:]:  # the noise populations (compiler.learning_noise)
            size = lnet.core.population(name).size
            if noisy:
                trains[name] = noise_spikes((lnet.instances, batch, size), sched.steps, sched.active,
                                            lnet.train_noise[0], self.noise_rng)  # fmt: skip
                inputs[name] = trains[name]
            else:
                inputs[name] = np.zeros((sched.steps, 1, size), dtype=bool)
        out = simulate(lnet.core, inputs, steps=sched.steps, record=("spikes", "v"), populations=names,
                       kernels=self._neuron_kernels())  # fmt: skip
        shape = (lnet.instances, batch)
        spk = {n: out.spikes[n].reshape(sched.steps, *shape, -1) for n in names}
        spk["bias"] = np.broadcast_to(bias[:, None], (sched.steps, 1, batch, 1))
        spk[lnet.core.inputs[0]] = spikes[:, None] != 0
        counts = {n: spk[n].sum(axis=0, dtype=np.int64) for n in names}
        v_out = out.v[names[-1]].reshape(sched.steps, *shape, -1)[sched.emit]
        unit = 64.0 * lnet.scale if self.fixed else 1.0
        act = Activity(spk, counts, v_out / (unit * sched.active))
        if noisy:
            act.noise = {name.split(":", 1)[1]: t for name, t in trains.items()}
            act.v_out = out.v[names[-1]].reshape(sched.steps, *shape, -1)
        if target_counts is not None:
            self._signals(act, v_out, np.asarray(target_counts)[None])
        return act

    def _signals(self, act: Activity, v_out: np.ndarray, target: np.ndarray) -> None:
        lnet, sched = self.lnet, self.lnet.schedule
        out = lnet.layers[-1]
        hinge = self.error == "hinge"
        if self.fixed:
            # the target in membrane units: whole spike counts for classes, rounded for fractional targets
            mem = (
                64 * lnet.scale * target.astype(np.int64)
                if hinge
                else np.rint(64 * lnet.scale * target).astype(np.int64)
            )
            err = v_out.astype(np.int64) - mem
            err = _one_sided(err, target) if hinge else err
            act.delta[out.name] = self._clip(_shift_round(err, out.delta_shift), out.q_max)
            tgt = _shift_round(mem, out.delta_shift)
            act.payload["target"] = -np.minimum(tgt, out.q_max)
        else:
            err = v_out - target
            act.delta[out.name] = (_one_sided(err, target) if hinge else err) / sched.active
            act.payload["target"] = -np.broadcast_to(target / sched.active, v_out.shape)
        act.payload["error"] = act.delta[out.name]
        for k in range(len(lnet.layers) - 2, -1, -1):
            layer = lnet.layers[k]
            fbs = lnet.feedback_of(layer.name)
            if not fbs:
                act.delta[layer.name] = np.zeros_like(act.counts[layer.name])
                continue
            apical = 0
            for fb in fbs:
                src = act.delta[fb.src] if fb.src in act.delta else act.payload[fb.src]
                apical = apical + np.einsum("sbj,sij->sbi", src, fb.weight)
            gate = act.counts[layer.name] > 0
            if self.fixed:
                d = self._clip(_shift_round(np.asarray(apical, dtype=np.int64), layer.delta_shift), layer.q_max)
            else:
                d = apical
            act.delta[layer.name] = np.where(gate, d, 0)

    def _clip(self, d: np.ndarray, q: int) -> np.ndarray:
        self.stats["delta_clips"] += int(np.count_nonzero(np.abs(d) > q))
        return np.clip(d, -q, q)

    # ------------------------------------------------------------------ the engine

    def learn(self, act: Activity) -> None:
        """Apply the engine to a minibatch of presentations (in order); weights move at minibatch ends."""
        lnet, sched = self.lnet, self.lnet.schedule
        batch = next(iter(act.delta.values())).shape[1]
        period = sched.steps * lnet.batch
        moves = [(self.steps_done + (s + 1) * sched.steps) % period == 0 for s in range(batch)]
        steps = [self.steps_done + (s + 1) * sched.steps for s in range(batch)]
        counters = {}
        for layer in lnet.layers:
            for name in layer.plastic:
                pre = lnet.projection(name).src
                counters[name] = d = self._counter(name, act.spikes[pre])
                self._apply(name, moves, steps, d=d, delta=act.delta[layer.name], post=act.counts[layer.name])
        for fb in lnet.feedback:
            if fb.plastic:
                relay = self._relay_step(fb.src)
                # y1: the lower neuron's spikes since its last bAP, before this one: what W's d counts
                count = np.minimum(counters[self._partner(fb)], 127)
                self._apply(fb.name, moves, steps, graded=act.delta[fb.src], count=count, relay=relay)
        if lnet.mirror:
            self._mirror(batch)
        if act.noise:
            self._noise_update(act)
        if lnet.host_copy and any(moves):  # the host's part of sign symmetry or BP, after the weights moved
            for fb in lnet.feedback:
                fb.weight = host_copy(lnet, fb)
        self.steps_done += batch * sched.steps

    def _mirror(self, samples: int) -> None:
        """WM/IA: mirror presentations on the chip, then the host's write of B (``learning_mirror``)."""
        from neurodeploy.emulator import learning_mirror as lm

        rate, lr = self.lnet.mirror
        unit = float(self.lnet.scale) if self.fixed else 1.0
        for fb in self.lnet.feedback:
            xi, r = lm.mirror_responses(self, fb.dst, fb.src, samples, rate, self.mirror_rng)
            db = lm.mirror_update(self.lnet.rule, np.asarray(fb.weight, dtype=float) / unit, xi, r, lr)
            fb.weight = lm.host_write(fb.weight, db, self.lnet.scale, self.mirror_rng) if self.fixed else fb.weight + db

    def _noise_update(self, act: Activity) -> None:
        """PAL/SAL: the host adds the minibatch's correlations of the recorded trains to its running sums
        and writes B's rounding into the feedback synapses (``learning_noise``). The sums keep the small
        steps that a rounded write would lose: the estimate averages over many minibatches."""
        from neurodeploy.emulator import learning_mirror as lm
        from neurodeploy.emulator import learning_noise as ln

        _, _, lr, tau_a, tau_b = self.lnet.train_noise
        names = [layer.name for layer in self.lnet.layers]
        for fb in self.lnet.feedback:
            if fb.src == names[-1]:  # the output layer: its input per step, in thresholds
                v = act.v_out.astype(np.float32) / (64.0 * self.lnet.scale if self.fixed else 1.0)
                r = np.diff(v, axis=0, prepend=np.zeros_like(v[:1]))
            else:
                r = act.spikes[fb.src].astype(np.float32)
            z = act.spikes[fb.dst].astype(np.float32)
            if self.lnet.rule == "pal":
                corr, norm = ln.pal_correlations(ln.signed(act.noise[fb.dst]), z, r, tau_a, tau_b)
            else:
                corr, norm = ln.sal_correlations(z, r, tau_a, self.lnet.schedule.active)
            prev = self.noise_sums.get(fb.name)
            if prev is not None:
                corr, norm = prev[0] + lr * (corr - prev[0]), prev[1] + lr * (norm - prev[1])
            else:
                corr, norm = lr * corr, lr * norm
            self.noise_sums[fb.name] = (corr, norm)
            b = ln.feedback_estimate(self.lnet.rule, corr, norm)
            if self.fixed:
                fb.weight = lm.host_write(np.zeros_like(fb.weight), b, self.lnet.scale, self.noise_rng)
            else:
                fb.weight = b

    def _partner(self, fb: Any) -> str:
        """The forward projection whose transpose a plastic B follows (lower layer -> upper layer)."""
        return next(p.name for p in self.lnet.core.projections if p.src == fb.dst and p.dst != fb.dst)

    def _relay_step(self, src: str) -> int:
        names = [x.name for x in self.lnet.layers]
        sched = self.lnet.schedule
        if src in ("error", names[-1]):
            return sched.emit
        return sched.relay[len(names) - 2 - names.index(src)]

    def _counter(self, name: str, spikes: np.ndarray) -> np.ndarray:
        """d at each presentation's bAP: its pre spikes before the bAP step plus the previous bAP step's."""
        steps = spikes.shape[0]
        before = spikes[: steps - 1].sum(axis=0, dtype=np.int64)  # (inst or 1, batch, n_pre)
        last = spikes[steps - 1].astype(np.int64)
        carry = self.carry.get(name)
        prev = np.concatenate([np.zeros_like(last[:, :1]) if carry is None else carry, last[:, :-1]], axis=1)
        self.carry[name] = last[:, -1:]
        d = before + prev
        self.stats["counter_saturations"] += int(np.count_nonzero(d > COUNTER_MAX))
        return np.minimum(d, COUNTER_MAX)

    def _apply(self, name: str, moves: list[bool], steps: list[int], **sig: Any) -> None:
        w, tag = self.weight(name), self.tags[name]
        if not self.fixed:
            w, tag = self._apply_float(name, w, tag, moves, **sig)
        else:
            w, tag = self._apply_fixed(name, w, tag, moves, steps, **sig)
        self._set_weight(name, w)
        self.tags[name] = tag

    def _apply_float(self, name: str, w: np.ndarray, tag: np.ndarray, moves: list[bool], **sig: Any) -> tuple:
        lnet = self.lnet
        scale = lnet.lr / lnet.schedule.active
        update = lnet.engine[name].update
        if update is not None:  # a user-defined rule (compiler.learning_custom), per bAP in units of η/active
            shape = (tag.shape[0], next(iter(sig.values())).shape[1], *tag.shape[1:])  # (inst, batch, post, pre)
            incs = scale * np.broadcast_to(update(self._float_signals(w, tag, **sig)), shape)
        elif "d" in sig:  # ΔW = −η·δ·x̄, x̄ = d / active
            incs = -scale * sig["delta"][..., :, None] * sig["d"][..., None, :]
        else:  # KP's B: the transpose of the forward update
            incs = -scale * sig["graded"][..., None, :] * sig["count"][..., :, None]
        incs = np.moveaxis(incs, 1, 0)
        start = 0
        for s, move in enumerate(moves):
            if move:
                tag = tag + incs[start:s].sum(axis=0)
                w = w + tag - lnet.decay * w
                tag = incs[s].copy()
                start = s + 1
        return w, tag + incs[start:].sum(axis=0)

    @staticmethod
    def _float_signals(w: np.ndarray, tag: np.ndarray, **sig: Any) -> dict[str, Any]:
        """A synapse's engine symbols in float, shaped (inst, batch, post, pre): what a user rule reads."""
        out = {"y0": 1.0, "w": w[:, None], "t": tag[:, None]}
        if "d" in sig:
            delta = sig["delta"][..., :, None]
            out.update(d=sig["d"][..., None, :], y1=sig["post"][..., :, None], y2=np.maximum(delta, 0),
                       y3=np.maximum(-delta, 0))  # fmt: skip
        else:
            graded = sig["graded"][..., None, :]
            out.update({"x1": GRADED_OFFSET + graded, "x1-64": graded, "y1": sig["count"][..., :, None]})
        return out

    def _draw_source(self, name: str, shape: tuple[int, ...]) -> tuple[int, np.ndarray]:
        """The key and flat synapse indices of ``name``'s rounding draws. KP's B uses its partner W's
        draws at the transposed synapse, so identical integer updates round identically."""
        fb = next((f for f in self.lnet.feedback if f.name == name and f.plastic), None)
        if fb is None:
            return draw_key(self.seed, name), np.arange(int(np.prod(shape))).reshape(shape)
        partner = self._partner(fb)
        w_shape = self.weight(partner).shape
        return draw_key(self.seed, partner), np.swapaxes(np.arange(int(np.prod(w_shape))).reshape(w_shape), -1, -2)

    def _apply_fixed(
        self, name: str, w: np.ndarray, tag: np.ndarray, moves: list[bool], steps: list[int], **sig: Any
    ) -> tuple:
        dt, dw = self.series[name]
        batch = len(moves)
        w = np.ascontiguousarray(w, dtype=np.int64)
        tag = np.ascontiguousarray(tag, dtype=np.int64)
        if "d" in sig:
            y = self._decayed(np.abs(sig["delta"]), steps)
            y2, y3 = np.where(sig["delta"] > 0, y, 0), np.where(sig["delta"] < 0, y, 0)
            fast = self.kernels != "numpy" and self.draws == "hardware" and kernel_available()
            family = forward_family(dt, dw) if fast else None
            if family is not None:
                stats = np.zeros(w.shape[0] * w.shape[1], dtype=np.int64)
                d = np.ascontiguousarray(
                    np.broadcast_to(sig["d"], (sig["d"].shape[0], batch, w.shape[-1])).swapaxes(1, 2)
                )
                y2t, y3t = np.ascontiguousarray(y2.swapaxes(1, 2)), np.ascontiguousarray(y3.swapaxes(1, 2))
                compiled_engine()(w, tag, d, y2t, y3t, np.asarray(moves, dtype=np.bool_),
                                  np.asarray(steps, dtype=np.int64), np.uint64(draw_key(self.seed, name)),
                                  *family, stats)  # fmt: skip
                self.stats["tag_saturations"] += int(stats.sum())
                return w, tag
            base = {"y0": np.int64(1)}
            per = [
                {"d": sig["d"][:, s, None, :], "y2": y2[:, s, :, None], "y3": y3[:, s, :, None]} for s in range(batch)
            ]
            if any(key.startswith("y1") for key in dt.operand_keys):  # a user rule reads the post spike count
                y1 = self._decayed(sig["post"], steps)
                for s in range(batch):
                    per[s]["y1"] = y1[:, s, :, None]
        else:
            hold = self.lnet.schedule.steps - 1 - sig["relay"]
            x1 = np.clip(GRADED_OFFSET + sig["graded"], 0, 127).astype(np.int64)
            for _ in range(hold):
                x1 = decay_trace(x1, GRADED, self.rng.random(x1.shape))
            y1 = self._decayed(sig["count"], steps)
            fast = self.kernels != "numpy" and self.draws == "hardware" and kernel_available()
            family = graded_family(dt, dw) if fast else None
            if family is not None:  # B's products are W's with the roles swapped: run them on Bᵀ
                delta = np.clip(x1 - GRADED_OFFSET, -128, 127)
                partner = self._partner(next(f for f in self.lnet.feedback if f.name == name))
                w_t = np.ascontiguousarray(np.swapaxes(w, -1, -2))
                t_t = np.ascontiguousarray(np.swapaxes(tag, -1, -2))
                stats = np.zeros(w_t.shape[0] * w_t.shape[1], dtype=np.int64)
                pos = np.ascontiguousarray(np.maximum(delta, 0).swapaxes(1, 2))
                neg = np.ascontiguousarray(np.maximum(-delta, 0).swapaxes(1, 2))
                compiled_engine()(w_t, t_t, np.ascontiguousarray(y1.swapaxes(1, 2)), pos, neg,
                                  np.asarray(moves, dtype=np.bool_), np.asarray(steps, dtype=np.int64),
                                  np.uint64(draw_key(self.seed, partner)), *family, stats)  # fmt: skip
                self.stats["tag_saturations"] += int(stats.sum())
                return np.swapaxes(w_t, -1, -2).copy(), np.swapaxes(t_t, -1, -2).copy()
            base = {"y0": np.int64(1)}
            per = [{"x1": x1[:, s, None, :], "y1": y1[:, s, :, None]} for s in range(batch)]
        key, index = self._draw_source(name, w.shape)
        for s, move in enumerate(moves):
            ops = {**base, **per[s], "u": np.int64(move), "t": tag, "w": w}
            # per synapse and shared by the step's variables; Lava: one draw for every synapse
            u = lava_rounding(steps[s]) if self.draws == "lava" else draws7(key, steps[s], index) / 128.0
            acc = dt.accumulate(ops, start=tag)
            rounded = round_accumulator((tag << 7) + acc, u)
            self.stats["tag_saturations"] += int(np.count_nonzero((rounded > 255) | (rounded < -257)))
            new_tag = apply_accumulator(tag, acc, u, "tag")
            if move:
                acc_w = dw.accumulate(ops, start=w)
                w = apply_accumulator(w, acc_w, u, "weight", "mixed")
            tag = new_tag
        return w, tag

    def _decayed(self, y: np.ndarray, steps: list[int] | None = None) -> np.ndarray:
        """A third factor as the engine reads it at the bAP: the neuron's value after one step of decay
        (Lava's three-factor replay, τ = 65535). Lava mode: one uniform per step for all neurons."""
        y = np.minimum(np.asarray(y, dtype=np.int64), 127)
        if self.draws == "lava" and steps is not None:
            u = lava_trace_decay(self.seed, steps).reshape(1, -1, *([1] * (y.ndim - 2)))
            return decay_trace(y, THIRD, np.broadcast_to(u, y.shape))
        return decay_trace(y, THIRD, self.rng.random(y.shape))


def _stream(seed: int, draws: int) -> np.ndarray:
    """The first ``draws`` uniforms of numpy's default_rng(seed), cached (Lava's streams, drawn one by one,
    give the same numbers)."""
    cache = _STREAMS.get(seed)
    if cache is None or cache.size < draws:
        cache = _STREAMS[seed] = np.random.default_rng(seed).random(
            max(draws, 2 * (0 if cache is None else cache.size), 4096)
        )
    return cache[:draws]


_STREAMS: dict[int, np.ndarray] = {}
LAVA_ROUNDING_SEED = 2


def lava_rounding(step: int) -> float:
    """Lava's synaptic rounding draw at 1-based step ``step`` with t_epoch = 1 (one draw at construction,
    then one per epoch, from default_rng(2))."""
    return float(_stream(LAVA_ROUNDING_SEED, step + 1)[step])


def lava_trace_decay(rng_seed: int, steps: list[int]) -> np.ndarray:
    """Lava's post-trace decay uniform at each 1-based step: its y-decay generator (rng_seed + 2) advances
    once at construction and twice per step, and the replay uses the current draw."""
    idx = np.asarray(steps, dtype=np.int64) * 2
    return _stream(rng_seed + 2, int(idx.max()) + 1)[idx]


__all__ = ["LearningRun", "Activity"]

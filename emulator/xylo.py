"""SynSense Xylo IAF core numerics, bit-exact with xylosim 0.1.3 (v1: Xylo Audio 2; v2: Xylo IMU / Audio 3).

The integer update, as ``chips.md`` §3 states it (established there by running xylosim 0.1.3, the vendor's
C++ simulator behind Rockpool's ``XyloSim``, against a numpy re-implementation; ``tests/test_xylo.py``
re-checks this module against xylosim)::

    sat16(x) = clip(x, -32768, 32767);   D(x, dash) = x >> dash (floor), but sign(x) where that is 0
    1. input spikes of this step, min(count, 15) per channel, channel by channel,
    2. hidden spikes of the previous step (at most 31 per neuron) into hidden neurons,
    3. the same previous-step hidden spikes into output neurons;
       every single event adds Isyn[s] <- sat16(Isyn[s] + int16(w << shift)) (the shifted int8 weight is
       cast to int16 by two's-complement wrap, each addition saturates)
    4. hidden neurons in index order:  Isyn[s] <- Isyn[s] - D(Isyn[s], dash_syn[s])
       v1:  v <- v - D(v, dash_mem);  v <- sat16(v + sum_s Isyn[s])          (the sum is not saturated)
       v2:  dv = sat16(int16(-D(v, dash_mem)) + sum_s Isyn[s]);  dv = sat16(dv + bias);  v <- sat16(v + dv)
       while v >= threshold and count < 31: count += 1; v <- int16(v - threshold)   (multi-spike)
       alias target a: count_a <- min(count_a + count, 31)
    5. output neurons: the same, at most one spike per step.

A CoreNetwork with ``numerics = "xylo"`` holds input populations (the channels), populations of model
``"xylo"`` (hidden neurons) and ``"xylo_output"`` (output neurons). Projections go input -> hidden with
delay 0 and hidden -> hidden / output with delay 1; ``weight`` holds int8 values, ``weight_exp`` the
shift, ``synapse`` the synaptic state they feed. Per-neuron parameters: ``dash_syn`` (and ``dash_syn2``
for a second synaptic state), ``dash_mem``, ``threshold``, optionally ``bias`` (its presence selects the
v2 update) and, for hidden neurons, ``alias`` (target index in the same population, -1 for none).
Parameters broadcast over leading batch axes like the other core models. Spike trains hold counts.

Why a time loop of its own (``simulate`` hands numerics "xylo" here): saturating additions make the
result depend on the order of the events, so a step's input cannot simply be summed as the Loihi path
does. It is summed anyway, together with the sum of its positive and of its negative events: where
neither can leave int16 from the current Isyn, no partial sum can, and the plain sum is exact. Only
the (sample, state, neuron) entries where that bound fails replay the events source by source,
vectorised over those entries. A source's repeated spikes collapse into one addition of count * w:
same-sign additions to a value inside the range saturate at most once, at the bound they approach.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurodeploy.emulator.loihi import Violation
from neurodeploy.emulator.network import CoreNetwork, CoreProjection
from neurodeploy.emulator.simulate import SimulationOutput, population_batches
from neurodeploy.emulator.synapses import is_sparse
from neurodeploy.errors import NeurodeployError

STATE_MIN, STATE_MAX = -(1 << 15), (1 << 15) - 1
WEIGHT_RANGE = (-128, 127)
DASH_RANGE = (0, 15)
WEIGHT_SHIFT_RANGE = (0, 7)  # the chip's 3-bit shifts; the emulator also takes larger ones (int16 wrap)
MAX_INPUT_SPIKES = 15
MAX_HIDDEN_SPIKES = 31
MAX_OUTPUT_SPIKES = 1
HIDDEN, OUTPUT = "xylo", "xylo_output"
MAX_SPIKES = {HIDDEN: MAX_HIDDEN_SPIKES, OUTPUT: MAX_OUTPUT_SPIKES}
RECORDABLE = ("spikes", "u", "v", "isyn")


def wrap16(x: Any) -> Any:
    """Two's-complement cast to int16 (what C++ does when an int is stored in an int16_t)."""
    return ((np.asarray(x, dtype=np.int64) - STATE_MIN) & 0xFFFF) + STATE_MIN


def bitshift_decay(x: np.ndarray, dash: np.ndarray) -> np.ndarray:
    """D(x, dash): x >> dash (arithmetic), but +-1 where that is 0 and x is not, so small values still decay."""
    d = np.right_shift(x, dash)
    return np.where((d == 0) & (x != 0), np.sign(x), d)


def shifted_weights(weight: Any, shift: int, where: str) -> np.ndarray:
    """int16(w << shift) as int64, after checking that ``weight`` holds int8 values."""
    w = np.asarray(weight.toarray() if is_sparse(weight) else weight)
    if w.dtype.kind == "f" and not np.all(np.isfinite(w) & (w == np.rint(w))):
        raise NeurodeployError("Xylo weights must be integers", where, "quantize them first (neurodeploy.compile)")
    w = w.astype(np.int64)
    if w.size and (w.min() < WEIGHT_RANGE[0] or w.max() > WEIGHT_RANGE[1]):
        raise NeurodeployError(
            f"weights span [{w.min()}, {w.max()}], beyond int8", where, "keep weights in -128..127 and use the shift"
        )
    if shift < 0:
        raise NeurodeployError(f"weight shift {shift} is negative", where, "Xylo shifts weights left by 0..7 bits")
    return wrap16(w << shift)


class XyloState:
    """Isyn (*batch, synaptic states, n) and v (*batch, n) of a group of Xylo IAF neurons.

    ``deliver`` adds one step's events in the chip's order, ``evolve`` decays, integrates and fires and
    returns spike counts. Counters as in the Loihi classes: ``isyn_saturations`` (entries whose Isyn hit
    a bound in a step), ``v_saturations``, and ``spikes_capped`` (entries still at or above threshold after
    the per-step spike limit); ``first_violation`` keeps the first saturation for strict mode.
    """

    def __init__(self, shape: tuple[int, ...], params: Mapping[str, Any], max_spikes: int) -> None:
        p = {k: np.asarray(v, dtype=np.int64) for k, v in params.items()}
        dashes = np.broadcast_arrays(*(p[k] for k in ("dash_syn", "dash_syn2") if k in p))
        self.dash_syn = np.stack(dashes, axis=-2)  # (*lead, states, n)
        self.n_syn = self.dash_syn.shape[-2]
        self.dash_mem = p["dash_mem"]
        self.threshold = p["threshold"]
        self.bias = p.get("bias")  # None: the v1 update (Xylo Audio 2 has no bias)
        self.max_spikes = int(max_spikes)
        self.isyn = np.zeros((*shape[:-1], self.n_syn, shape[-1]), dtype=np.int64)
        self.v = np.zeros(shape, dtype=np.int64)
        self._positive = bool(np.all(self.threshold > 0))
        self.alias = p.get("alias")
        self._alias_order: list[int] | None = None
        if self.alias is not None and np.any(self.alias >= 0):
            src = np.flatnonzero(self.alias >= 0)
            self._alias_order = sorted(set(src.tolist()) | set(self.alias[src].tolist()))
        self.isyn_saturations = 0
        self.v_saturations = 0
        self.spikes_capped = 0
        self.first_violation: Violation | None = None

    @property
    def u(self) -> np.ndarray:
        """The synaptic current v integrates: the sum of the synaptic states."""
        return self.isyn.sum(axis=-2)

    def _note(self, t: int, kind: str, index: tuple[int, ...], value: float) -> None:
        if self.first_violation is None:
            self.first_violation = Violation(t, kind, tuple(int(i) for i in index), float(value))

    def deliver(self, events: list[tuple[np.ndarray, XyloSynapses]], t: int = 0) -> None:
        """Add events (source counts (*batch, n_src), projection) given in the chip's order."""
        if not events:
            return
        n = self.v.shape[-1]
        total = np.zeros(self.isyn.shape)
        up = np.zeros(self.isyn.shape)  # 2 x (sum of the positive events)
        down = np.zeros(self.isyn.shape)  # 2 x (sum of the negative events)
        for counts, syn in events:
            both = np.matmul(counts, syn.sum_and_abs)  # exact: integers far below 2^53
            s, b = both[..., :n], both[..., n:]
            total[..., syn.synapse, :] += s
            up[..., syn.synapse, :] += s + b
            down[..., syn.synapse, :] += s - b
        old = self.isyn
        new = old + total.astype(np.int64)
        bad = (2 * old + up > 2 * STATE_MAX) | (2 * old + down < 2 * STATE_MIN)
        if bad.any():
            self._replay(old, new, bad, events, t)
        self.isyn = new

    def _replay(self, old: np.ndarray, new: np.ndarray, bad: np.ndarray, events: list, t: int) -> None:
        """The events one source at a time, for the entries whose sums could leave int16."""
        idx = np.nonzero(bad)
        *b_idx, s_idx, j_idx = idx
        batch = self.v.shape[:-1]
        x = old[idx]
        hit = np.zeros(x.shape, dtype=bool)
        for counts, syn in events:
            sel = np.flatnonzero(s_idx == syn.synapse)
            if sel.size == 0:
                continue
            at = tuple(b[sel] for b in b_idx)
            n_src = counts.shape[-1]
            c = np.broadcast_to(counts, (*batch, n_src))[at] if at else np.broadcast_to(counts, (sel.size, n_src))
            w = np.broadcast_to(syn.weight_b, (*batch, *syn.weight.shape[-2:]))[(*at, j_idx[sel])]
            xs, hs = x[sel], hit[sel]
            for i in np.flatnonzero(np.any((c != 0) & (w != 0), axis=0)):
                y = xs + c[:, i].astype(np.int64) * w[:, i]
                over = (y > STATE_MAX) | (y < STATE_MIN)
                if over.any():
                    k = int(np.flatnonzero(over)[0])
                    where = (*(int(b[sel][k]) for b in b_idx), int(j_idx[sel][k]))
                    self._note(t, f"Isyn saturation (state {syn.synapse})", where, y[k])
                    hs |= over
                    xs = np.clip(y, STATE_MIN, STATE_MAX)
                else:
                    xs = y
            x[sel], hit[sel] = xs, hs
        new[idx] = x
        self.isyn_saturations += int(np.count_nonzero(hit))

    def evolve(self, t: int = 0) -> np.ndarray:
        """Decay, integrate and fire; returns spike counts (*batch, n) as uint8."""
        self.isyn = self.isyn - bitshift_decay(self.isyn, self.dash_syn)
        current = self.isyn.sum(axis=-2) if self.n_syn > 1 else self.isyn[..., 0, :]
        v = self.v
        stages = []
        if self.bias is None:
            stages.append(v - bitshift_decay(v, self.dash_mem) + current)
            v = np.clip(stages[-1], STATE_MIN, STATE_MAX)
        else:
            stages.append(wrap16(-bitshift_decay(v, self.dash_mem)) + current)
            dv = np.clip(stages[-1], STATE_MIN, STATE_MAX)
            stages.append(dv + self.bias)
            dv = np.clip(stages[-1], STATE_MIN, STATE_MAX)
            stages.append(self.v + dv)
            v = np.clip(stages[-1], STATE_MIN, STATE_MAX)
        sat = np.zeros(v.shape, dtype=bool)
        for raw in stages:
            over = (raw > STATE_MAX) | (raw < STATE_MIN)
            if over.any():
                sat |= over
                if self.first_violation is None:
                    index = np.unravel_index(int(np.flatnonzero(over)[0]), over.shape)
                    self._note(t, "v saturation", index, raw[index])
        self.v_saturations += int(np.count_nonzero(sat))
        counts, self.v = self._fire(v)
        capped = (counts == self.max_spikes) & (self.v >= self.threshold)
        self.spikes_capped += int(np.count_nonzero(capped))
        return counts.astype(np.uint8)

    def _count(self, v: np.ndarray, th: np.ndarray, preset: Any) -> tuple[np.ndarray, np.ndarray]:
        """(preset + new spikes, v after them): while v >= th and count < max: count += 1, v -= th."""
        if self._positive:  # closed form: v // th spikes, at most the room left
            k = np.where(v >= th, np.minimum(self.max_spikes - preset, v // th), 0)
            return preset + k, v - k * th
        count = np.broadcast_to(np.asarray(preset, dtype=np.int64), v.shape).copy()
        for _ in range(self.max_spikes):  # th <= 0: v - th grows and wraps in int16, as on the chip
            more = (v >= th) & (count < self.max_spikes)
            if not more.any():
                break
            count += more
            v = np.where(more, wrap16(v - th), v)
        return count, v

    def _fire(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Spike counts and v after firing; aliases in index order (a target may start with its sources' spikes)."""
        counts, v_out = self._count(v, self.threshold, 0)
        if self._alias_order is None:
            return counts, v_out
        th = np.broadcast_to(self.threshold, v.shape)
        buffer = np.zeros(v.shape, dtype=np.int64)
        for k in self._alias_order:
            ck, vk = self._count(v[..., k], th[..., k], buffer[..., k])
            counts[..., k], v_out[..., k], buffer[..., k] = ck, vk, ck
            target = int(self.alias[k])
            if target >= 0:
                buffer[..., target] = np.minimum(buffer[..., target] + ck, self.max_spikes)
                if target <= k:  # already fired: its count for this step grows
                    counts[..., target] = buffer[..., target]
        return counts, v_out


@dataclass(eq=False)
class XyloSynapses:
    """One projection ready for delivery: the int16-wrapped shifted weights and [W^T | |W|^T] for the sums."""

    proj: CoreProjection
    weight: np.ndarray  # (*instances, n_dst, n_src) int64
    synapse: int

    def __post_init__(self) -> None:
        w = self.weight.astype(np.float64)
        self.sum_and_abs = np.concatenate([w, np.abs(w)], axis=-2).swapaxes(-1, -2).copy()
        # per-instance weights count as batch (*instances, 1): one axis for the samples
        self.weight_b = self.weight[..., None, :, :] if self.weight.ndim > 2 else self.weight
        fan_out = np.count_nonzero(self.weight, axis=-2)
        self.fan_out_b = fan_out[..., None, :] if self.weight.ndim > 2 else fan_out


@dataclass
class XyloOutput(SimulationOutput):
    """``SimulationOutput`` plus each synaptic state: ``isyn[name]`` is (time, *batch, states, neurons).

    ``u`` is the sum of the states (what v integrates), ``spikes`` hold counts per step.
    """

    isyn: dict[str, np.ndarray] = field(default_factory=dict)


def _roles(net: CoreNetwork) -> dict[str, str]:
    """input / xylo / xylo_output per population, with the chip's wiring checked."""
    roles: dict[str, str] = {}
    for pop in net.populations:
        if pop.name in net.inputs:
            roles[pop.name] = "input"
        elif pop.model in MAX_SPIKES:
            roles[pop.name] = pop.model
        else:
            raise NeurodeployError(
                f"population model {pop.model!r} on a Xylo core",
                f"population {pop.name!r}",
                f'Xylo networks hold input populations, "{HIDDEN}" (hidden) and "{OUTPUT}" (output) neurons',
            )
    seen: set[tuple[str, str, int]] = set()
    for pr in net.projections:
        src, dst = roles[pr.src], roles[pr.dst]
        where = f"projection {pr.name!r}"
        allowed = {"input": ({HIDDEN}, 0), HIDDEN: ({HIDDEN, OUTPUT}, 1)}.get(src)
        if allowed is None or dst not in allowed[0]:
            raise NeurodeployError(
                f"{src} -> {dst} is not a Xylo connection",
                where,
                "inputs drive hidden neurons; hidden neurons drive hidden and output neurons",
            )
        if pr.delay != allowed[1]:
            raise NeurodeployError(
                f"delay {pr.delay} from {src} neurons; Xylo's is {allowed[1]}",
                where,
                "input events act in the same step, hidden spikes one step later; Xylo has no other delays",
            )
        states = 2 if "dash_syn2" in net.population(pr.dst).params else 1
        if not 0 <= pr.synapse < states:
            raise NeurodeployError(
                f"synaptic state {pr.synapse}, but {pr.dst!r} has {states}", where, "use 0 (or 1 with dash_syn2)"
            )
        key = (pr.src, pr.dst, pr.synapse)
        if key in seen:
            raise NeurodeployError(
                "two projections feed the same synaptic states from the same source",
                where,
                "Xylo holds one weight per (source, target, state): merge them",
            )
        seen.add(key)
    return roles


def _check_params(net: CoreNetwork, roles: dict[str, str]) -> bool:
    """Required parameters in range; returns whether the populations carry biases (the v2 update)."""
    with_bias = set()
    for pop in net.populations:
        if roles[pop.name] == "input":
            continue
        where, p = f"population {pop.name!r}", pop.params
        missing = [k for k in ("dash_syn", "dash_mem", "threshold") if k not in p]
        if missing:
            raise NeurodeployError(f"missing Xylo parameters {missing}", where, "compile for a Xylo profile")
        for key, (lo, hi) in {"dash_syn": DASH_RANGE, "dash_syn2": DASH_RANGE, "dash_mem": DASH_RANGE,
                              "threshold": (STATE_MIN, STATE_MAX), "bias": (STATE_MIN, STATE_MAX)}.items():  # fmt: skip
            value = np.asarray(p.get(key, lo))
            if value.size and (value.min() < lo or value.max() > hi or np.any(value != np.rint(value))):
                raise NeurodeployError(f"{key} outside the integers {lo}..{hi}", where, "recompile for Xylo")
        if "alias" in p:
            alias = np.asarray(p["alias"])
            if alias.shape != (pop.size,) or roles[pop.name] != HIDDEN or alias.min() < -1 or alias.max() >= pop.size:
                raise NeurodeployError(
                    "alias must hold one index per hidden neuron, within the population",
                    where,
                    "give each hidden neuron its alias target's index, or -1 for none",
                )
        with_bias.add("bias" in p)
    if len(with_bias) > 1:
        raise NeurodeployError(
            "some populations have a bias and others not",
            "Xylo network",
            "one core runs one update (v2 with biases, v1 without): give every population a bias (0 is fine)",
        )
    return with_bias == {True}


def _input_counts(train: Any, name: str) -> np.ndarray:
    x = np.asarray(train)
    if x.dtype.kind == "b":
        return x
    if x.dtype.kind not in "iuf" or (x.size and (x.min() < 0 or np.any(x != np.rint(x)))):
        raise NeurodeployError(
            "input spike counts must be non-negative integers", f"input {name!r}", "pass bool or integer counts"
        )
    return x


def simulate_xylo(
    net: CoreNetwork,
    inputs: Mapping[str, np.ndarray],
    steps: int | None = None,
    record: Iterable[str] = ("spikes",),
    populations: Iterable[str] | None = None,
    *,
    strict: bool = False,
) -> XyloOutput:
    """Run a Xylo CoreNetwork on input spike counts (time, *batch, channels); see ``simulate``.

    Counts above 15 per step act as 15 (the chip's limit); the recorded input spikes are those counts.
    ``record`` may add "isyn" (each synaptic state). ``strict=True`` raises at the first saturation.
    """
    record = tuple(record)
    unknown = set(record) - set(RECORDABLE)
    if unknown:
        raise ValueError(f"cannot record {sorted(unknown)}; choose from {RECORDABLE}")
    missing = [n for n in net.inputs if n not in inputs]
    if missing:
        raise NeurodeployError(f"no input spike trains for {missing}", where="simulate")
    trains = {n: _input_counts(inputs[n], n) for n in net.inputs}
    t_in = next(iter(trains.values())).shape[0] if trains else 0
    steps = t_in if steps is None else int(steps)
    wanted = set(populations) if populations is not None else {p.name for p in net.populations}
    roles = _roles(net)
    v2 = _check_params(net, roles)
    batch, _ = population_batches(net, trains)

    spk: dict[str, np.ndarray] = {}
    for pop in net.populations:
        spk[pop.name] = np.zeros((steps, *batch, pop.size), dtype=np.uint8)
        if pop.name in trains:
            x = trains[pop.name][:steps]
            missing_axes = (1,) * (len(batch) - (x.ndim - 2))  # batch axes align from the right
            capped = np.minimum(x, MAX_INPUT_SPIKES)
            spk[pop.name][: x.shape[0]] = capped.reshape(x.shape[0], *missing_axes, *x.shape[1:])
    order = [p for p in net.populations if roles[p.name] == HIDDEN] + [
        p for p in net.populations if roles[p.name] == OUTPUT
    ]
    rank = {p.name: (roles[p.name] != "input", i) for i, p in enumerate(net.populations)}
    states = {p.name: XyloState((*batch, p.size), p.params, MAX_SPIKES[p.model]) for p in order}
    synapses = {
        id(pr): XyloSynapses(pr, shifted_weights(pr.weight, int(pr.weight_exp), f"projection {pr.name!r}"), pr.synapse)
        for pr in net.projections
    }
    # the chip delivers the input channels first, then the hidden neurons' spikes, each in index order
    incoming = {p.name: sorted((pr for pr in net.projections if pr.dst == p.name), key=lambda pr: rank[pr.src])
                for p in order}  # fmt: skip
    rec: dict[str, dict[str, np.ndarray]] = {kind: {} for kind in ("u", "v", "isyn") if kind in record}
    for kind, per_pop in rec.items():
        for p in order:
            if p.name in wanted:
                shape = (states[p.name].n_syn, p.size) if kind == "isyn" else (p.size,)
                per_pop[p.name] = np.zeros((steps, *batch, *shape), dtype=np.int64)
    for t in range(steps):
        for pop in order:
            state = states[pop.name]
            events = []
            for pr in incoming[pop.name]:
                ts = t - pr.delay
                if ts >= 0 and spk[pr.src][ts].any():
                    events.append((spk[pr.src][ts], synapses[id(pr)]))
            state.deliver(events, t)
            spk[pop.name][t] = state.evolve(t)
            for kind, per_pop in rec.items():
                if pop.name in per_pop:
                    per_pop[pop.name][t] = getattr(state, kind)
        if strict and any(s.first_violation is not None for s in states.values()):
            name, state = next((n, s) for n, s in states.items() if s.first_violation is not None)
            raise NeurodeployError(
                f"strict mode: {state.first_violation.describe()}",
                where=f"population {name!r}",
                hint="the chip saturates Isyn / v here; lower the weights or the weight shift, or pass strict=False",
            )

    out = XyloOutput()
    if steps > 0:
        if "spikes" in record:
            out.spikes = {p.name: spk[p.name] for p in net.populations if p.name in wanted}
        out.u, out.v, out.isyn = (rec.get(kind, {}) for kind in ("u", "v", "isyn"))
    events = 0
    for pr in net.projections:
        if steps > pr.delay:
            delivered = spk[pr.src][: steps - pr.delay].sum(axis=0, dtype=np.int64)
            events += int((delivered * synapses[id(pr)].fan_out_b).sum())
    out.counters = {
        "isyn_saturations": sum(s.isyn_saturations for s in states.values()),
        "v_saturations": sum(s.v_saturations for s in states.values()),
        "spikes_capped": sum(s.spikes_capped for s in states.values()),
        "synaptic_events": events,
    }
    out.paths = {"states": {n: type(s).__name__ for n, s in states.items()}, "update": "v2" if v2 else "v1"}
    return out

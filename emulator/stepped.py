"""The run loop for networks with programmable neurons or plastic projections, one step at a time.

``simulate`` sends a ``CoreNetwork`` here when any population runs a ``NeuronProgram`` or any projection
carries a learning ``Engine``: their state changes every step (graded payloads, weights that move at each
learning epoch), so the block sums of the spike-only path do not apply. Per step ``t``:

1. every population, in ``update_order``, sums each input port's deliveries: a projection of delay ``d``
   applies its weights, as they stand, to what its source sent on its channel at ``t − d`` (``d = 0``:
   this step, from a population earlier in the order);
2. the population steps (a program, a native Loihi/float CUBA neuron, or an input replaying its train);
3. ``monitor(t, run)``, if given, reads what the host reads (states, emissions, the weights this step used);
4. every plastic projection's engine takes its learning step from both ends' emissions (the third factors
   from ``third_factor_from`` where a projection names another population for them).

A ``SteppedRun`` keeps neuron state, in-flight payloads and weights between calls, so a learning system
can present one sample after another (``reset`` returns the neurons to rest) without leaving the loop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from neurodeploy.emulator.floatcore import FloatCubaState
from neurodeploy.emulator.loihi import LoihiCubaState, prepare_weights
from neurodeploy.emulator.network import CoreNetwork, CoreProjection
from neurodeploy.emulator.programs import SPIKES, Emission, NeuronProgram, StaticDelivery
from neurodeploy.errors import NeurodeployError

Monitor = Callable[[int, "SteppedRun"], None]


def needs_stepping(net: CoreNetwork) -> bool:
    """Whether ``net`` has a programmable population or a plastic projection."""
    return any(p.model == "program" for p in net.populations) or any(pr.engine is not None for pr in net.projections)


def _check(net: CoreNetwork) -> None:
    names = {p.name for p in net.populations}
    if net.numerics == "loihi" and net.arithmetic != "lava":  # programmable neurons and this engine are Loihi 2's
        raise NeurodeployError(
            f"the stepped loop runs Loihi 2 (Lava) arithmetic, not {net.arithmetic!r}",
            "CoreNetwork.arithmetic",
            "programmable neurons and the learning engine exist on Loihi 2 only; compile for loihi2",
        )
    for pop in net.populations:
        if pop.model == "program" and not isinstance(pop.program, NeuronProgram):
            raise NeurodeployError(
                f"population {pop.name!r} has model 'program' but no NeuronProgram",
                "CoreNetwork",
                "set CorePopulation.program to an emulator.programs.NeuronProgram",
            )
        if pop.model not in ("input", "program", "loihi", "float"):
            raise NeurodeployError(
                f"population {pop.name!r} has model {pop.model!r}, which the stepped loop does not run",
                "CoreNetwork",
                "use 'loihi', 'float', 'program' or 'input'",
            )
    for pr in net.projections:
        if pr.src not in names or pr.dst not in names:
            raise NeurodeployError(f"projection {pr.name!r} joins unknown populations {pr.src!r} -> {pr.dst!r}",
                                   "CoreNetwork", "name populations of this network")  # fmt: skip
        dst = net.population(pr.dst)
        ports = dst.program.ports if dst.model == "program" else ("soma",)
        if pr.port not in ports:
            raise NeurodeployError(f"projection {pr.name!r} feeds port {pr.port!r} of {pr.dst!r}, which has "
                                   f"ports {list(ports)}", "CoreNetwork", f"use one of {list(ports)}")  # fmt: skip
        src = net.population(pr.src)
        channels = (SPIKES, *src.program.channels) if src.model == "program" else (SPIKES, "graded")
        if pr.channel not in channels:
            raise NeurodeployError(f"projection {pr.name!r} carries channel {pr.channel!r} of {pr.src!r}, which "
                                   f"sends {list(channels)}", "CoreNetwork",
                                   f"use one of {list(channels)}")  # fmt: skip
        if pr.third_factor_from is not None and pr.third_factor_from not in names:
            raise NeurodeployError(
                f"projection {pr.name!r} takes third factors from unknown population {pr.third_factor_from!r}",
                "CoreNetwork",
                "name a population of this network",
            )
        if pr.delay < 0:
            raise NeurodeployError(f"projection {pr.name!r} has delay {pr.delay}", "CoreNetwork", "use delay >= 0")


class SteppedRun:
    """State of a stepped network across calls: neurons, in-flight emissions, the engines' weights."""

    def __init__(self, net: CoreNetwork, batch_shape: tuple[int, ...] = ()) -> None:
        _check(net)
        self.net, self.batch_shape = net, tuple(batch_shape)
        self.integer = net.numerics == "loihi"
        self.order = [p for p in net.update_order() if p.name not in net.inputs]
        self.incoming = {p.name: [pr for pr in net.projections if pr.dst == p.name] for p in net.populations}
        self.delivery = {pr.name: pr.engine if pr.engine is not None else self._static(pr) for pr in net.projections}
        self.plastic = [pr for pr in net.projections if pr.engine is not None]
        # Per population, its incoming projections with how far back their source's emission lies: a source
        # that steps before it (an input, or earlier in the order) has this step's emission last, so t − delay
        # is ``delay`` back; any other source (itself, or later in the order) ``delay − 1``.
        rank = {n: -1 for n in net.inputs} | {p.name: i for i, p in enumerate(self.order)}
        self.plan = [(pop, [(pr, self.delivery[pr.name], pr.delay if rank[pr.src] < i else pr.delay - 1)
                            for pr in self.incoming[pop.name]]) for i, pop in enumerate(self.order)]  # fmt: skip
        self.silent = {n: np.zeros(net.population(n).size, dtype=np.int64) for n in net.inputs}
        self.depth = 1 + max((pr.delay for pr in net.projections), default=0)
        self.t = 0  # steps run so far, over all calls
        self.messages = 0  # nonzero entries sent along projections (spikes and graded spikes)
        self.reset()

    def _static(self, pr: CoreProjection) -> StaticDelivery:
        """A static projection as the core's Dense holds it: Loihi weights clipped and truncated once."""
        if not self.integer:
            return StaticDelivery(np.asarray(pr.weight, dtype=float), 0, False)
        return StaticDelivery(prepare_weights(pr.weight, pr.num_weight_bits, pr.sign_mode), pr.weight_exp, True)

    def reset(self, batch_shape: tuple[int, ...] | None = None) -> None:
        """Every neuron at rest and nothing in flight; weights and the engines' state stay."""
        if batch_shape is not None:
            self.batch_shape = tuple(batch_shape)
        self.states: dict[str, Any] = {}
        for pop in self.order:
            shape = (*self.batch_shape, pop.size)
            if pop.model == "program":
                self.states[pop.name] = pop.program.init(shape)
            elif pop.model == "loihi":
                self.states[pop.name] = LoihiCubaState(shape, pop.params, pop.reset, self.net.arithmetic)
            else:
                self.states[pop.name] = FloatCubaState(shape, pop.params, pop.reset, pop.spiking, pop.reset_rule,
                                                       pop.reset_delay)  # fmt: skip
        self.sent: dict[str, deque[Emission]] = {p.name: deque(maxlen=self.depth) for p in self.net.populations}

    def weights(self, projection: str) -> np.ndarray:
        """A projection's weights as they stand."""
        return self.delivery[projection].weights if hasattr(self.delivery[projection], "weights") else \
            self.delivery[projection].weight  # fmt: skip

    def emission(self, population: str, ago: int = 0) -> Emission | None:
        """What ``population`` sent ``ago`` steps before the last one (None before the first)."""
        sent = self.sent[population]
        return sent[-1 - ago] if ago < len(sent) else None

    def step(self, inputs: Mapping[str, np.ndarray], monitor: Monitor | None = None) -> None:
        """One time step: ``inputs`` maps each input population to this step's values (*batch, n);
        ``monitor(t, run)`` reads the step after the neurons and before the engines learn."""
        t = self.t
        for name in self.net.inputs:
            x = np.asarray(inputs[name]) if name in inputs else self.silent[name]
            self.sent[name].append(Emission(x != 0, {"graded": x}))
        for pop, incoming in self.plan:
            ports = self._ports(incoming)
            state = self.states[pop.name]
            if pop.model == "program":
                em = pop.program.step(state, ports, t)
            else:
                soma = ports.get("soma")
                if pop.model == "loihi":
                    spikes = state.step(np.zeros((), np.int64) if soma is None else soma.astype(np.int64), t)
                else:
                    spikes = state.step(0.0 if soma is None else soma)
                em = Emission(np.asarray(spikes, dtype=bool), {"graded": state.v})
            self.sent[pop.name].append(em)
        if monitor is not None:
            monitor(t, self)
        for pr in self.plastic:
            post = self.sent[pr.dst][-1]
            if pr.third_factor_from is not None:
                post = Emission(post.spikes, post.payload, self.sent[pr.third_factor_from][-1].third_factor)
            self.delivery[pr.name].learn(self.sent[pr.src][-1], post, t)
        self.t += 1

    def _ports(self, incoming: list[tuple[CoreProjection, Any, int]]) -> dict[str, np.ndarray]:
        """Each port's summed input this step (see ``plan``); a port nothing arrived at is left out."""
        ports: dict[str, np.ndarray] = {}
        for pr, delivery, ago in incoming:
            sent = self.sent[pr.src]
            if ago >= len(sent):
                continue
            em = sent[-1 - ago]
            x = em.spikes if pr.channel == SPIKES else em.payload.get(pr.channel)
            if x is None:
                continue
            nonzero = np.count_nonzero(x)
            if not nonzero:
                continue
            self.messages += int(nonzero)
            c = delivery.deliver(x)
            ports[pr.port] = c if pr.port not in ports else ports[pr.port] + c
        return ports

    def run(
        self,
        inputs: Mapping[str, np.ndarray] | None = None,
        steps: int | None = None,
        record: Iterable[str] = (SPIKES,),
        populations: Iterable[str] | None = None,
        monitor: Monitor | None = None,
    ) -> dict[str, dict[str, np.ndarray]]:
        """Run ``steps`` steps of ``inputs`` (time, *batch, n) per input population (silent past their end).

        Returns ``{channel: {population: (steps, *batch, n)}}`` for each channel in ``record`` ("spikes" or a
        payload channel) of the ``populations`` that send it.
        """
        inputs = {k: np.asarray(v) for k, v in (inputs or {}).items()}
        missing = [n for n in self.net.inputs if n not in inputs]
        if missing and steps is None:
            raise NeurodeployError(f"no input for {missing} and no step count", "SteppedRun.run",
                                   "pass the inputs (time, *batch, n) or steps=")  # fmt: skip
        if steps is None:
            steps = max(v.shape[0] for v in inputs.values())
        wanted = list(populations) if populations is not None else [p.name for p in self.net.populations]
        kinds = tuple(record)
        rec: dict[str, dict[str, list[np.ndarray]]] = {k: {n: [] for n in wanted} for k in kinds}
        for k in range(int(steps)):
            self.step({n: v[k] for n, v in inputs.items() if k < v.shape[0]}, monitor)
            for kind in kinds:
                for n in wanted:
                    em = self.sent[n][-1]
                    value = em.spikes if kind == SPIKES else em.payload.get(kind)
                    if value is not None:
                        rec[kind][n].append(np.array(value, copy=True))
        return {kind: {n: np.stack(v) for n, v in per.items() if v} for kind, per in rec.items()}


def simulate_stepped(net: CoreNetwork, inputs: Mapping[str, np.ndarray], steps: int | None,
                     record: Iterable[str], populations: Iterable[str] | None) -> Any:  # fmt: skip
    """``simulate`` for a network with programs or engines: a fresh ``SteppedRun`` over the inputs' batch."""
    from neurodeploy.emulator.simulate import SimulationOutput

    trains = {n: np.asarray(inputs[n]) for n in net.inputs if n in inputs}
    batch = np.broadcast_shapes(*(v.shape[1:-1] for v in trains.values())) if trains else ()
    run = SteppedRun(net, tuple(batch))
    record = tuple(record)
    channels = tuple(k for k in record if k not in ("u", "v"))
    rec = run.run(trains, steps, channels, populations)
    out = SimulationOutput()
    out.spikes = rec.get(SPIKES, {})
    out.graded = {k: v for k, v in rec.items() if k != SPIKES}
    out.counters = {"u_wraps": 0, "v_saturations": 0, "synaptic_events": run.messages}
    out.paths = {"loop": "stepped"}
    return out


__all__ = ["Monitor", "SteppedRun", "needs_stepping", "simulate_stepped"]

"""The SAL sampling network in the loihi2 profile's fixed-point arithmetic, STDP on the Loihi learning engine.

What runs on the chip (emulated): the sampling neurons, every synapse and the STDP on B. The host only
builds the target once (compile time) and counts the states the chip's neurons report, for the KL.

- Neurons: the escape-noise neuron is not a Loihi LIF; it needs Loihi 2's programmable neurons. Its
  integer update: u = bias + Σ inputs (units of 1/64, the weights' scale); v = u − ofs (ofs = round(64·ln
  t_ref), the sigmoid's offset held per neuron); the firing probability is a 257-entry table of
  σ(v/64) in 16 bits, indexed by v rounded to 1/16 and clipped to ±8, and a neuron whose refractory
  counter is 0 or 1 spikes when a 16-bit pseudo-random integer falls below the entry.
- Synapses: the forward half is a static Dense (8-bit mixed-sign weights: an even integer in [−256, 254]);
  B is a ``PlasticDense`` (``emulator.plasticity``). Both deliver with the Dense latency of one step. The
  rectangular PSP of length t_ref (``chip_psp``): "per-step" (default) has the neuron send its state z = 1
  as a graded spike on every step of its refractory period into a dendrite that holds only that step's input,
  so B's share of u is Σ_j B_kj z_j with B as it stands, as in the float network (t_ref messages per spike
  instead of 2). "onset-offset" sends a +1 graded spike at the PSP's onset and a −1 graded spike at its end
  into a dendrite without decay; each is weighted by B when it arrives, so a change of B_kj while j's PSP is
  on stays in k's dendrite after the PSP has ended (``onset_offset_update``; measured as ``psp_residual``).
  The static forward half sums to Σ_j W_kj z_j either way.
- STDP: the engine rule ``dw = a_c·s·x1·y0 + a_a·s·y1·x0`` (x1/y1: 7-bit traces, impulse 64 per spike,
  τ = 10 steps), learning epochs of t_ref steps (at most one spike per neuron per epoch), the engine's
  stochastic rounding of traces and weights drawn per trace and per synapse (``draws="hardware"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from neurodeploy.emulator.learning_rule import EXPONENT_RANGE, MANTISSA_RANGE
from neurodeploy.emulator.loihi import prepare_weights
from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.emulator.plasticity import LearningRule, PlasticDense, TraceSpec
from neurodeploy.emulator.programs import Emission, LoihiEngine
from neurodeploy.emulator.stepped import SteppedRun
from neurodeploy.errors import NeurodeployError
from neurodeploy.rules.systems import base
from neurodeploy.rules.systems.sampling import (
    EQUATIONS,
    SYSTEM,
    Options,
    boltzmann,
    kl_from_counts,
    make_network,
    reciprocal_angle,
    reciprocal_masks,
    state_index,
)

WEIGHT_SCALE_BITS = 6  # one unit of u is 64 weight units
SCALE = 1 << WEIGHT_SCALE_BITS
TRACE_IMPULSE = 64  # trace units per spike: one float trace unit (peak 101 of 127 at the fastest rate)
TABLE_SHIFT = 2  # the sigmoid table steps in 2^2 / 64 = 1/16 of u
TABLE_HALF = 128  # entries -128...128: v in [-8, 8]
PROB_BITS = 16


def sigmoid_table() -> np.ndarray:
    """P(spike)·2^16 for v = i·2^TABLE_SHIFT / 64, i = −128…128, rounded and kept in 16 bits."""
    v = np.arange(-TABLE_HALF, TABLE_HALF + 1) * (1 << TABLE_SHIFT) / SCALE
    return np.clip(np.rint((1 << PROB_BITS) / (1 + np.exp(-v))), 0, (1 << PROB_BITS) - 1).astype(np.int64)


TABLE = sigmoid_table()


def table_index(v: np.ndarray) -> np.ndarray:
    """Table row of an integer v: v / 2^TABLE_SHIFT rounded half up, clipped to the table."""
    i = (np.asarray(v, dtype=np.int64) + (1 << (TABLE_SHIFT - 1))) >> TABLE_SHIFT
    return np.clip(i, -TABLE_HALF, TABLE_HALF) + TABLE_HALF


def chip_neuron_step(zeta: np.ndarray, u: np.ndarray, offset: np.ndarray, draw: np.ndarray, t_ref: int
                     ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Integer sampling neuron: spike where the counter is 0 or 1 and ``draw`` (0…2^16 − 1) < TABLE[v]."""
    spikes = (zeta <= 1) & (np.asarray(draw, dtype=np.int64) < TABLE[table_index(u - offset)])
    return np.where(spikes, t_ref, np.maximum(zeta - 1, 0)), spikes


def onset_offset_update(dendrite: np.ndarray, weights: np.ndarray, z: np.ndarray, z_before: np.ndarray
                        ) -> np.ndarray:  # fmt: skip
    """The non-decaying dendrite of ``chip_psp="onset-offset"`` after one step: +B_kj for each PSP of j that
    starts (z_j 0 → 1) and −B_kj for each that ends (1 → 0), B as it stands now. A neuron that fires again as
    its refractory period ends keeps z_j = 1 and sends neither."""
    change = (np.asarray(z, dtype=np.int64) - np.asarray(z_before, dtype=np.int64))[..., None].astype(np.float64)
    return dendrite + np.matmul(np.asarray(weights, dtype=np.float64), change)[..., 0].astype(np.int64)


def engine_scales() -> np.ndarray:
    """Every nonzero m·2^e the learning engine holds (m in its 4-bit mantissa, e in its exponent range)."""
    values = {m * 2.0**e for m in range(MANTISSA_RANGE[0], MANTISSA_RANGE[1] + 1) if m
              for e in range(EXPONENT_RANGE[0], EXPONENT_RANGE[1] + 1)}  # fmt: skip
    return np.array(sorted(values))


def power_of_two_scale(value: float, product: str, factors: dict[str, float], adjust: str) -> tuple[int, int]:
    """(m, e) with value = m·2^e exactly, m in the engine's 4-bit mantissa and e in its exponent range.

    ``value`` is the product ``product`` of the options in ``factors``; if the engine cannot hold it, the
    error names that product and suggests the value of option ``adjust`` that makes it the nearest scale
    the engine holds.
    """
    if value == 0:
        return 0, 0
    for e in range(EXPONENT_RANGE[0], EXPONENT_RANGE[1] + 1):
        m = value / 2.0**e
        if m == round(m) and MANTISSA_RANGE[0] <= m <= MANTISSA_RANGE[1]:
            return int(m), e
    scales = engine_scales()
    same_sign = scales[np.sign(scales) == np.sign(value)]
    nearest = float(same_sign[np.argmin(np.abs(np.log(same_sign / value)))])
    given = ", ".join(f"{k}={v:g}" for k, v in factors.items())
    raise NeurodeployError(
        f"the learning engine cannot hold {product} = {value:g} ({given})",
        f"options {', '.join(factors)}",
        f"the engine takes m·2^e with m in {MANTISSA_RANGE[0]}...{MANTISSA_RANGE[1]} and e in "
        f"{EXPONENT_RANGE[0]}...{EXPONENT_RANGE[1]}; the nearest it holds is {nearest:g}, e.g. "
        f"{adjust}={nearest * factors[adjust] / value:.6g} with the other options unchanged",
    )


def _term(scale: float, body: str, product: str, factors: dict[str, float], adjust: str) -> str:
    m, e = power_of_two_scale(scale, product, factors, adjust)
    if m == 0:
        return ""
    scale = f"2^{e}" if abs(m) == 1 else f"{abs(m)}*2^{e}"
    return f"{'-' if m < 0 else '+'} {scale}*{body}"


def engine_rule(opts: Options) -> str | None:
    """The rule string for B: SAL's two halves, or the Hebbian half with a decay per learning epoch."""
    if opts.rule == "none":
        return None
    per_trace = SCALE / TRACE_IMPULSE  # Δw (weight units) per trace unit, per unit of η·a
    terms = [_term(opts.a_anticausal * opts.lr * per_trace, "y1*x0", "lr·a_anticausal",
                   {"lr": opts.lr, "a_anticausal": opts.a_anticausal}, "lr")]  # fmt: skip
    if opts.rule == "sal":
        terms.append(_term(opts.a_causal * opts.lr * per_trace, "x1*y0", "lr·a_causal",
                           {"lr": opts.lr, "a_causal": opts.a_causal}, "a_causal"))  # fmt: skip
    else:
        factors = {"lr": opts.lr, "hebbian_decay": opts.hebbian_decay, "t_ref": float(opts.t_ref)}
        terms.append(_term(-math.prod(factors.values()), "u0*w", "−lr·hebbian_decay·t_ref (the decay per "
                           "learning epoch)", factors, "hebbian_decay"))  # fmt: skip
    text = " ".join(t for t in terms if t).lstrip("+ ")
    if not text:
        raise NeurodeployError("the rule for B has no term left", "options a_causal, a_anticausal",
                               "give a_anticausal a nonzero value, e.g. a_anticausal=1.0 (SAL also uses "
                               "a_causal=-1.0), or use rule='none' for no plasticity")  # fmt: skip
    return text


def learning_rule(opts: Options, seed: int) -> LearningRule | None:
    text = engine_rule(opts)
    if text is None:
        return None
    trace = TraceSpec(impulse=float(TRACE_IMPULSE), tau=float(opts.tau_stdp))
    return LearningRule(dw=text, x1=trace, y1=trace, t_epoch=int(opts.t_ref), rng_seed=seed)


def integer_network(opts: Options, seeds: int, profile: Any) -> dict[str, np.ndarray]:
    """Per seed: forward weights, initial B, bias and sigmoid offset as the chip holds them (mismatched).

    The float target is rounded once: W*·64 to the 8-bit mixed-sign grid (even integers), b·64 to the
    13-bit bias mantissa, 64·ln t_ref to the offset. With ``mismatch`` each seed is one chip instance of
    ``emulator.mismatch.sample`` (weights per synapse, bias and offset per neuron, normal factors 1 + σ·e),
    rounded back to the registers by its Loihi mapping.
    """
    from neurodeploy.emulator import mismatch

    w_target, bias, b_init = make_network(opts, seeds)
    forward, backward = reciprocal_masks(opts.neurons)
    n = opts.neurons

    def grid(w: np.ndarray) -> np.ndarray:
        return prepare_weights(2 * np.rint(w * SCALE / 2), 8, "mixed")

    out: dict[str, list[np.ndarray]] = {"forward": [], "backward": [], "bias": [], "offset": []}
    for s in range(seeds):
        params = {"bias_mant": np.rint(bias[s] * SCALE).astype(np.int64), "bias_exp": np.zeros(n, dtype=np.int64),
                  "vth": np.full(n, round(SCALE * math.log(opts.t_ref)), dtype=np.int64)}  # fmt: skip
        pop = CorePopulation("sampling", n, "loihi", params)
        projs = [CoreProjection("forward", "sampling", "sampling", grid(w_target[s] * forward)),
                 CoreProjection("backward", "sampling", "sampling", grid(b_init[s] * backward))]  # fmt: skip
        core = CoreNetwork([pop], projs, [], ["sampling"], numerics="loihi")
        if opts.mismatch > 0:
            sigma = {"weight": opts.mismatch, "bias": opts.mismatch, "v_threshold": opts.mismatch}
            core = mismatch.sample(core, profile, instances=1, seed=int(opts.seed), sigma=sigma, first=s)
        pop = core.populations[0]
        out["bias"].append(np.asarray(pop.params["bias_mant"]).reshape(n))
        out["offset"].append(np.asarray(pop.params["vth"]).reshape(n))
        for pr in core.projections:
            out[pr.name].append(np.asarray(pr.weight, dtype=np.int64).reshape(n, n))
    arrays = {k: np.stack(v) for k, v in out.items()}
    arrays["forward"] *= forward  # a mismatch factor never creates a synapse
    arrays["backward"] *= backward
    arrays["target_w"], arrays["target_b"] = w_target, bias
    return arrays


def instance_boltzmann(net: dict[str, np.ndarray], t_ref: int) -> np.ndarray:
    """Per seed: the Boltzmann distribution this chip instance samples once B = its own forward halfᵀ.

    The instance's forward weights (mismatched and rounded) mirrored, and its bias less the offset's error
    (u − ofs/64 = u' − ln t_ref with u' = b_eff + W z), both in units of u; the sigmoid table is taken as exact.
    """
    w = net["forward"] / SCALE
    b_eff = (net["bias"] - net["offset"]) / SCALE + math.log(t_ref)
    return boltzmann(w + np.swapaxes(w, -1, -2), b_eff)


REFUSAL_HINT = (
    "use profile='loihi2' with variant='chip' (the only profile with both the Loihi learning engine and "
    "programmable neurons), or variant='paper' for the float run"
)


def check_profile(profile_name: str) -> Any:
    needs = {"programmable_neurons": "the escape-noise sampling neuron (integer sigmoid table, random draw, "
             "refractory counter) is not a LIF"}  # fmt: skip
    return base.chip_profile(SYSTEM, profile_name, "SAL's STDP on B runs as an engine rule on x1/y1 traces", needs,
                             REFUSAL_HINT)  # fmt: skip


DIFFERENCES = (
    "neuron: the escape-noise neuron runs as a Loihi 2 programmable neuron (not a native LIF) in integer "
    "arithmetic: u in units of 1/64, σ(u − ln t_ref) from a 257-entry 16-bit table indexed by u rounded to 1/16 "
    "and clipped to ±8, compared with a 16-bit pseudo-random integer (numpy's PCG64 stands in for the chip's "
    "generator)",
    "sigmoid offset ln t_ref rounded to 1/64 (t_ref = 10: 147/64 = 2.2969 for ln 10 = 2.3026)",
    "forward weights W* rounded to the 8-bit mixed-sign synapse grid (steps of 2/64 = 1/32 in u); biases to 1/64",
    "B is an integer weight of the learning engine (9 bits signed, [−256, 255], i.e. [−4, 3.98] in u); its "
    "initial value is truncated to the 8-bit grid once",
    "rectangular PSP (float: u_k gets Σ_j B_kj z_j with B as it stands, for exactly the t_ref steps z_j = 1). "
    "chip_psp='per-step' (the default) delivers the same sum: the neuron sends z_j = 1 as a graded spike on each "
    "of its t_ref refractory steps into a dendrite that holds only that step's input (t_ref spike messages per "
    "spike instead of 2). chip_psp='onset-offset' sends a +1 graded spike at the PSP's onset and a −1 graded spike "
    "at its end into a dendrite without decay, each weighted by B_kj when it arrives: a change ΔB_kj made by the "
    "learning engine while j's PSP is on leaves −ΔB_kj in k's dendrite for good, and a neuron that fires again "
    "as its refractory period ends sends neither, so its PSP keeps the onset's weight through the burst; these "
    "offsets add up over the run without decay (history psp_residual: the mean |dendrite − B z| per neuron and "
    "step in units of u, over the epoch). Either way the dendrite's input arrives with one step of Dense latency, "
    "as the float u uses the previous step's states",
    "the engine's pre and post traces (x0/x1, y0/y1) count the neurons' spikes only (the onsets), not the "
    "graded messages that carry the PSP",
    "STDP traces: 7-bit integers, impulse 64 per spike, decay e^(−1/τ) with stochastic rounding each step "
    "(Lava's bit-approximate model, not a 12-bit decay register); draws per trace and per synapse",
    "weight changes accumulate in 2^-7 units and are stochastically rounded to integers per synapse",
    "learning epochs of t_ref steps: B changes at the end of each epoch (the trace values at the spikes within "
    "the epoch are replayed exactly); the Hebbian control's decay acts once per epoch",
)


class SamplerProgram:
    """The escape-noise sampling neuron as a Loihi 2 programmable neuron (``emulator.programs``).

    Ports: "soma" holds only this step's input (the static forward half and, with per-step PSPs, B z);
    "dendrite" accumulates without decay (B's onset/offset messages). Channels: "state" sends z = 1 on every
    step of the refractory period (the rectangular PSP), "change" sends z − z_before (+1 at a PSP's onset,
    −1 at its end). Its random draws come from its own stream, one 16-bit integer per neuron and step.
    """

    ports = ("soma", "dendrite")
    channels = ("state", "change")

    def __init__(self, bias: np.ndarray, offset: np.ndarray, t_ref: int, seed: int) -> None:
        self.bias, self.offset, self.t_ref = bias, offset, int(t_ref)
        self.rng = np.random.default_rng([int(seed), 1 << 21])

    def init(self, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        return {k: np.zeros(shape, dtype=np.int64) for k in ("zeta", "z", "dendrite")}

    def step(self, state: dict[str, np.ndarray], inputs: Any, t: int) -> Emission:
        if "dendrite" in inputs:
            state["dendrite"] = state["dendrite"] + inputs["dendrite"]
        a_in = inputs.get("soma", 0) + state["dendrite"]
        draw = self.rng.integers(0, 1 << PROB_BITS, state["z"].shape)
        z_before = state["z"]
        state["zeta"], spikes = chip_neuron_step(state["zeta"], self.bias + a_in, self.offset, draw, self.t_ref)
        state["z"] = (state["zeta"] > 0).astype(np.int64)
        return Emission(spikes, {"state": state["z"], "change": state["z"] - z_before})


def chip_network(opts: Options, net: dict[str, np.ndarray], seeds: int) -> CoreNetwork:
    """The sampling network as the chip holds it: one population of sampler programs, the static forward
    half and B, each delivered with one step of Dense latency; B carries SAL's engine rule when it learns."""
    _, backward = reciprocal_masks(opts.neurons)
    program = SamplerProgram(net["bias"], net["offset"], opts.t_ref, int(opts.seed))
    pop = CorePopulation("sampling", opts.neurons, "program", program=program)
    rule = learning_rule(opts, int(opts.seed))
    onset_offset = rule is not None and opts.chip_psp == "onset-offset"
    engine = None
    if rule is not None:
        plastic = PlasticDense(net["backward"], rule, batch_shape=(seeds,), draws="hardware")
        engine = LoihiEngine(plastic, mask=backward)
    projections = [
        CoreProjection("forward", "sampling", "sampling", net["forward"], delay=1, channel="state"),
        CoreProjection("backward", "sampling", "sampling", net["backward"], delay=1, engine=engine,
                       channel="change" if onset_offset else "state", port="dendrite" if onset_offset else "soma"),
    ]  # fmt: skip
    return CoreNetwork([pop], projections, [], ["sampling"], numerics="loihi")


def learn_chip(opts: Options, profile_name: str, seeds: int, epochs: int,
               progress: Callable[[int, int, dict[str, Any]], None] | None, started: float) -> Any:  # fmt: skip
    """The chip run: the compiled sampling network in the emulator's stepped run loop; the host counts states."""
    profile = check_profile(profile_name)
    rule = learning_rule(opts, int(opts.seed))  # checks the rule fits the engine before any work
    net = integer_network(opts, seeds, profile)
    n, t_ref = opts.neurons, int(opts.t_ref)
    p_target = boltzmann(net["target_w"], net["target_b"])
    run = SteppedRun(chip_network(opts, net, seeds), (seeds,))
    counts = np.zeros((seeds, 1 << n))
    rows = np.arange(seeds)
    history: list[dict[str, Any]] = []
    p_instance = instance_boltzmann(net, t_ref)
    accumulate = rule is not None and opts.chip_psp == "onset-offset"
    residual = np.zeros(seeds)  # Σ over the epoch's steps of Σ_k |dendrite − B z| (weight units)

    def read(t: int, run: SteppedRun) -> None:
        """The host's reads each step: the state vector for the counts; B's dendrite against B z."""
        nonlocal residual
        z = run.emission("sampling").payload["state"]
        counts[rows, state_index(z)] += 1
        if accumulate:
            before = run.emission("sampling", 1)
            z_prev = before.payload["state"] if before is not None else np.zeros_like(z)
            b_z = run.delivery["backward"].deliver(z_prev)
            residual += np.abs(run.states["sampling"]["dendrite"] - b_z).sum(-1)

    for _ in range(epochs):
        run.run(steps=opts.steps_per_epoch, record=(), monitor=read)
        weights = net["forward"] + run.weights("backward")
        entry = {"epoch": len(history) + 1, "steps": run.t, "kl": kl_from_counts(p_target, counts).tolist(),
                 "kl_instance": kl_from_counts(p_instance, counts).tolist(),
                 "weight_angle": {"reciprocal": reciprocal_angle(weights).tolist()}}  # fmt: skip
        if accumulate:
            entry["psp_residual"] = (residual / (opts.steps_per_epoch * n * SCALE)).tolist()
            residual = np.zeros(seeds)
        history.append(entry)
        counts[...] = 0
        if progress is not None:
            progress(len(history), epochs, entry)
    chip = f"chip ({profile_name}, emulated; integer arithmetic throughout)"
    provenance = {
        "network": {"where": chip, "how": "compiled as a CoreNetwork (chip_network: one population of sampler "
                    "programs, a static and a plastic projection) and run by the emulator's stepped run loop "
                    "(emulator.stepped) with the learning engine inside"},
        "neurons": {"where": chip, "how": "escape-noise sampling neurons on Loihi 2 programmable neurons: integer "
                    "sum, 16-bit sigmoid table, 16-bit random draw, refractory counter"},
        "synapses": {"where": chip, "how": "forward half a static 8-bit Dense, B a learning Dense; rectangular PSPs "
                     + ("as a graded spike per refractory step" if opts.chip_psp == "per-step" else
                        "from onset/offset graded spikes into a non-decaying dendrite")
                     + ", one step of synaptic latency"},
        "stdp": {"where": f"{chip}: the learning engine model (emulator.plasticity.PlasticDense, draws per trace and "
                 "per synapse)",
                 "how": f"dw = {engine_rule(opts)}" if rule else "no plasticity"},
        "kl": {"where": "host float64", "how": "the neurons' states read each step, counted per epoch, D_KL to the "
               "exact Boltzmann target"},
    }  # fmt: skip
    trace = f"impulse {TRACE_IMPULSE}, tau {opts.tau_stdp:g}"
    rules = {"B": {"dw": engine_rule(opts), "x1": trace, "y1": trace, "t_epoch": t_ref}} if rule else {}
    result = base.system_result(SYSTEM, "chip", profile_name, opts, history, equations=EQUATIONS,
                                provenance=provenance, differences=DIFFERENCES, started=started,
                                extra_config={"epochs": epochs, "seeds": seeds})  # fmt: skip
    result.engine.update({"rules": rules})
    return result


__all__ = ["TABLE", "chip_neuron_step", "engine_rule", "integer_network", "learn_chip", "learning_rule",
           "onset_offset_update", "sigmoid_table", "table_index"]  # fmt: skip

"""GLE in the loihi2 profile's integer arithmetic, its always-on plasticity on the Loihi learning engine.

What runs on the chip (emulated): the representation and error neurons as Loihi 2 programmable neurons, every
synapse as an 8-bit Dense carrying graded spikes, the plasticity of W and the biases as three-factor engine
rules, the error path B (a second Dense: W's transpose kept equal by the same engine rule, or learned by PAL
with OU noise and a high-pass state in the neurons). All of it is compiled as a ``CoreNetwork``
(``gle_chip_net.chip_network``) and run by the emulator's stepped run loop (``emulator.stepped``). The host
supplies the task's streams (the inputs, the target and its on/off phase; the lagged teacher's inputs and the
teacher's outputs computed in float64 as data) and scores the outputs it reads. Scales and integer updates:
``gle_chip_parts``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurodeploy.emulator.stepped import SteppedRun
from neurodeploy.errors import NeurodeployError
from neurodeploy.rules.systems import base, gle_tasks
from neurodeploy.rules.systems import gle_chip_parts as cp
from neurodeploy.rules.systems.gle import EQUATIONS, TASK_LAGGED_TEACHER, Options
from neurodeploy.rules.systems.gle_chip_net import chip_network, engines, stream
from neurodeploy.rules.systems.gle_chip_parts import ChipGLE

NAME = "gle"


@dataclass
class ChipOptions(Options):
    """The float options plus the chip instance's: ``mismatch`` (relative spread of the initial weight
    registers per synapse, one emulator.mismatch instance per seed) and ``seed`` (mismatch, the engine's
    rounding, the neurons' random bits and the OU noise)."""

    mismatch: float = 0.0
    seed: int = 0

    def checked(self) -> ChipOptions:
        Options.checked(self)
        m = self.mismatch
        number = isinstance(m, (int, float, np.integer, np.floating)) and not isinstance(m, bool)
        if not (number and np.isfinite(float(self.mismatch)) and 0 <= float(self.mismatch) < 1):
            raise NeurodeployError(f"GLE option mismatch={self.mismatch!r} must be in [0, 1)",
                                   "learn_system('gle', variant='chip')",
                                   "e.g. mismatch=0.1 (10 % per synapse)")  # fmt: skip
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise NeurodeployError(f"GLE option seed={self.seed!r} must be a whole number",
                                   "learn_system('gle', variant='chip')", "e.g. seed=0")  # fmt: skip
        if self.optimizer == "adam":
            raise NeurodeployError("optimizer='adam' normalises each synapse's update by a running root mean "
                                   "square, which the learning engine's sum-of-products rules cannot compute",
                                   "learn_system('gle', variant='chip')",
                                   "use optimizer='sgd' on the chip (Ẇ = η ĕ rᵀ as an engine rule)")  # fmt: skip
        self.mismatch = float(self.mismatch)
        return self


def check_profile(profile_name: str) -> Any:
    needs = {"programmable_neurons": "the prospective representation and error neurons (two time constants, a "
             "tanh table, OU noise and a high-pass state) are not LIF neurons",
             "graded_spikes": "rates and errors travel as signed graded payloads",
             "third_factor": "ĕ reaches the synapses as the third factors y2, y3"}  # fmt: skip
    return base.chip_profile(NAME, profile_name, "Ẇ = η ĕ rᵀ and PAL's Ḃ run as three-factor engine rules", needs)


def to_payload(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(x) * (1 << cp.POT_BITS)), -cp.STATE_MAX, cp.STATE_MAX).astype(np.int64)


Progress = Callable[[int, int, dict[str, Any]], None] | None


def run_lagged_teacher(opts: ChipOptions, seeds: int, epochs: int | None, progress: Progress, profile: Any
                       ) -> tuple[list[dict[str, Any]], dict[str, Any], ChipGLE]:  # fmt: skip
    """The float run's schedule (``gle_tasks.run_lagged_teacher``) with the student on the chip: the same
    teacher, input streams and initial weights; the same history entries."""
    lr, dt, batch, epochs = gle_tasks.resolved_settings(opts, "lagged-teacher", epochs)
    if batch != 1:
        raise NeurodeployError("the lagged teacher runs one continuous stream per seed", "batch_size",
                               "leave batch_size at None or 1")  # fmt: skip
    sizes, taus = gle_tasks.teacher_architecture(opts)
    teacher = gle_tasks.build_net(opts, sizes, taus, seeds, dt, stream=3, gain=opts.init_gain)
    ref = gle_tasks.build_net(opts, sizes, taus, seeds, dt, stream=4, gain=opts.init_gain)
    bound = math.sqrt(2.0 / gle_tasks.TEACHER_SINES) * gle_tasks.TEACHER_SINES  # |input| ≤ Σ of the amplitudes
    in_bits = int(np.clip(6 - math.ceil(math.log2(bound)), 0, 6))
    net = ChipGLE(ref, opts, lr, 1, in_bits, profile)
    noise = opts.feedback == "pal"
    engine = engines(net)
    run = SteppedRun(chip_network(net, engine, noise=noise), (seeds, 1))  # one continuous stream
    frozen = SteppedRun(chip_network(net, engine, learn=False), (seeds, 1))
    top = f"rep{net.L - 1}"
    train_in, test_in = gle_tasks.SineInput(seeds, 1), gle_tasks.SineInput(seeds, 2)
    steps = int(round(opts.window / dt))
    settle = int(round(5 * gle_tasks.TEACHER_TAU[1] / dt))
    test_x = test_in.at(np.arange(settle + int(round(50.0 / dt))) * dt)
    probe = gle_tasks.frozen_copy(teacher, 1)
    test_y = np.stack([probe.forward(x) for x in test_x])[settle:]
    test_stream = stream(to_payload(test_x))

    def test_mse() -> list[float]:
        """The held-out stream through the frozen network from rest (no noise, no learning)."""
        frozen.reset()
        out = frozen.run({"input": test_stream}, record=("rate",), populations=[top])["rate"][top]
        out = out[settle:] / float(1 << cp.POT_BITS)
        return ((out - test_y) ** 2).mean((0, 2, 3)).tolist()

    history: list[dict[str, Any]] = [{"epoch": 0, "test_mse": test_mse(), "time": 0.0}]
    gaps = []
    for epoch in range(1, epochs + 1):
        xs = train_in.at((np.arange(steps) + (epoch - 1) * steps) * dt)
        targets = np.stack([teacher.forward(x) for x in xs])  # the teacher's outputs: data from the host
        inputs = {"input": stream(to_payload(xs))}
        if opts.learning:  # the target is on throughout
            inputs.update({"target": to_payload(targets), "nudge": np.ones((steps, 1), np.int64)})
        outs = run.run(inputs, steps, record=("rate",), populations=[top])["rate"][top] / float(1 << cp.POT_BITS)
        sq = np.zeros(seeds)
        for out, target in zip(outs, targets, strict=True):
            sq += ((out - target) ** 2).mean((1, 2))
        entry: dict[str, Any] = {"epoch": epoch, "test_mse": test_mse(), "online_mse": (sq / steps).tolist(),
                                 "time": epoch * steps * dt}  # fmt: skip
        if net.weight_angles():
            entry["weight_angle"] = net.weight_angles()
        gaps.append(net.transpose_gap())
        history.append(entry)
        if progress is not None:
            progress(epoch, epochs, entry)
    extra = {"lr": lr, "dt": dt, "sizes": sizes, "teacher_tau": list(gle_tasks.TEACHER_TAU),
             "omega": list(gle_tasks.TEACHER_OMEGA), "input_trace_bits": in_bits}  # fmt: skip
    extra["transpose_gap"] = max(gaps) if gaps else 0
    return history, extra, net


def present(run: SteppedRun, xs: np.ndarray, target: np.ndarray | None, *, steps: int, readout: int) -> np.ndarray:
    """``gle_tasks._present`` on the chip: xs (S or 1, N, T, n_in) payloads, each value held for ``steps``
    steps; with a ``target`` (S, N, n_out) the host streams it and the nudge during the last ``readout`` values
    (the error neurons and learning on). From rest; returns Σ r_L over the readout (2^-16)."""
    length = xs.shape[2]
    held = np.repeat(np.moveaxis(xs, 2, 0), steps, axis=0)  # (T·steps, S or 1, N, n_in)
    off = (length - readout) * steps
    inputs = {"input": stream(held)}
    if target is not None:
        on = np.zeros((len(held), 1), np.int64)
        on[off:] = 1
        inputs["nudge"] = on
        inputs["target"] = np.concatenate([np.zeros((off, *target.shape), np.int64),
                                           np.broadcast_to(target, (len(held) - off, *target.shape))])  # fmt: skip
    run.reset((run.batch_shape[0], xs.shape[1]))
    top = run.net.outputs[0]
    return run.run(inputs, record=("rate",), populations=[top])["rate"][top][off:].sum(0)


def run_task(name: str, opts: ChipOptions, seeds: int, epochs: int | None, progress: Progress, profile: Any
             ) -> tuple[list[dict[str, Any]], dict[str, Any], ChipGLE]:  # fmt: skip
    """``gle_tasks.run_task`` with the network on the chip: the same data, order, sizes and initial weights."""
    from neurodeploy.learning.tasks import get_task

    sequence = name == "mnist1d"
    lr, dt, batch, epochs = gle_tasks.resolved_settings(opts, "mnist1d" if sequence else "static", epochs)
    if opts.optimizer == "adam":
        raise NeurodeployError(f"task {name!r} defaults to optimizer='adam', which the learning engine cannot "
                               "compute (a per-synapse RMS normalisation)", "learn_system('gle', variant='chip')",
                               "pass optimizer='sgd' and an lr for plain Ẇ = η ĕ rᵀ, e.g. lr=0.2")  # fmt: skip
    value_time = opts.sequence_time / opts.sequence_length if sequence else 1.0  # time units per value
    steps = int(round(value_time / dt))
    if steps < 1 or abs(steps * dt - value_time) > 1e-9:
        raise NeurodeployError(f"dt={dt:g} does not divide the time of one sequence value ({value_time:g})",
                               "learn_system('gle')", "use dt = value time / k for an integer k")  # fmt: skip
    task = gle_tasks.mnist1d_sequences(int(opts.sequence_length)) if sequence else get_task(name)  # as the float run
    classify = task.kind == "classification"
    center, spread = float(task.x_train.mean()), float(task.x_train.std())

    def as_sequence(x: np.ndarray) -> np.ndarray:
        if sequence:
            return ((x - center) / spread)[:, :, None]
        return np.repeat(x[:, None, :], gle_tasks.STATIC_LENGTH * opts.readout_samples, axis=1)

    xs_train, xs_val, xs_test = (as_sequence(x) for x in (task.x_train, task.x_val, task.x_test))
    readout = min(opts.readout_samples, xs_train.shape[1])
    if classify:
        n_out = int(max(task.y_train.max(), task.y_val.max(), task.y_test.max())) + 1
        y_train = np.eye(n_out)[task.y_train]
    else:
        y_train = task.y_train.reshape(len(task.y_train), -1)
        n_out = y_train.shape[1]
    ref = gle_tasks.task_network(opts, xs_train.shape[2], n_out, seeds, sequence=sequence)  # the float start
    sizes = ref.sizes
    bound = float(np.abs(xs_train).max())
    in_bits = int(np.clip(6 - math.ceil(math.log2(max(bound, 1.0))), 0, 6))
    net = ChipGLE(ref, opts, lr, batch, in_bits, profile)
    order_rngs = gle_tasks.seed_rngs(seeds, 2)
    noise = opts.feedback == "pal"
    y_payload = to_payload(y_train)
    engine = engines(net)
    run = SteppedRun(chip_network(net, engine, classify=classify, noise=noise), (seeds, batch))
    frozen = SteppedRun(chip_network(net, engine, learn=False), (seeds, 1))

    def score(xs: np.ndarray, y: np.ndarray) -> list[float]:
        """The whole split as one batch through the frozen network, each sequence from rest."""
        total = present(frozen, to_payload(xs)[None], None, steps=steps, readout=readout) / float(1 << cp.POT_BITS)
        if classify:
            return (total.argmax(-1) == y[None]).mean(1).tolist()
        pred = total / (readout * steps)
        return ((pred - y.reshape(len(y), -1)[None]) ** 2).mean((1, 2)).tolist()

    history: list[dict[str, Any]] = []
    n = len(xs_train)
    train_payload = to_payload(xs_train)
    for epoch in range(1, epochs + 1):
        if opts.learning:
            order = np.stack([r.permutation(n) for r in order_rngs])
            for start in range(0, n, batch):
                idx = order[:, start : start + batch]
                present(run, train_payload[idx], y_payload[idx], steps=steps, readout=readout)
        key = "accuracy" if classify else "mse"
        entry: dict[str, Any] = {"epoch": epoch, f"test_{key}": score(xs_test, task.y_test),
                                 f"val_{key}": score(xs_val, task.y_val)}  # fmt: skip
        if net.weight_angles():
            entry["weight_angle"] = net.weight_angles()
        history.append(entry)
        if progress is not None:
            progress(epoch, epochs, entry)
    extra = {"lr": lr, "dt": dt, "batch_size": batch, "sizes": sizes, "readout_samples": readout,
             "steps_per_value": steps, "input_trace_bits": in_bits, "transpose_gap": net.transpose_gap()}  # fmt: skip
    return history, extra, net


DIFFERENCES = (
    "neurons: Loihi 2 programmable neurons in integer arithmetic; u, ŭ, rates and currents in 2^-16, error "
    "neurons (e, v, ĕ) in 2^-16, 24-bit states that saturate at ±128 (the float reference's lowest-layer ĕ "
    "exceeds that with PAL: its look-ahead amplifies the OU noise twice, median 25 and 1 % above 400 in the "
    "first 100 τ of the lagged teacher); each Euler step rounds half up: "
    "ŭ = u + (k_r·(I − u)) >> 12, u += (k_m·(I − u)) >> 12, ĕ = v + (k_q·(e − v)) >> 12, v += (k_v·(e − v)) >> 12",
    "time constants as integer factors in 2^-12: k_m = round(4096·dt/τ_m), k_r = round(4096·τ_r/τ_m), k_v = "
    "round(4096·dt/τ_r'), k_q = round(4096·τ_m/τ_r') (τ_r' = max(τ_r, dt) as in the float reference); on the "
    "lagged teacher dt/τ_m is realised within 0.7 % (0.05/3.28 as 62/4096, −0.66 %), τ_m/τ_r' within 0.001 % "
    "(k_q reaches 80·4096: a 19-bit multiplier)",
    "φ = tanh from a 1025-entry table every 1/128 on [−4, 4] (entries in 2^-16), linearly interpolated; ŭ "
    "beyond ±4 clips; φ′ = 1 − r² from the neuron's own rate; the linear output neuron's rate is ŭ. The error "
    "neurons of lagging units (τ_r' = dt) look ahead by τ_m/dt (up to 80) times a step's change, so the kinks "
    "of a coarser table (257 entries) showed up as 17 % errors in the lowest layer's ĕ; with this table the "
    "chip's ĕ is within 10 % of the float twin's there (tests/test_system_gle.py)",
    "synapses: 8-bit Dense registers with one exponent per projection (the largest initial weight times 1.25 "
    "fills the range for W, times 2 for a learned or fixed B), 9 bits signed once learned and clipped to "
    "[−256, 255]; sums are floored by the exponent (Lava's Dense); biases are the last column of W, from a "
    "bias neuron of payload 1.0",
    "rates and ĕ travel as graded spikes in 2^-16 (24-bit signed payloads); one Euler step is one pass "
    "bottom-up then top-down through the layers, as in the float reference: the compiled network's projections "
    "have delay 0 (the stepped loop runs rep0 … rep{L−1}, then err{L−1} … err0 within a time step), without "
    "the one-step latency of each Dense hop (on the chip an Euler step spans one time step per hop, or the hops "
    "are pipelined); each layer's bias neuron (payload 1.0) sits after its units in the layer's population, and "
    "partner neurons (a representation neuron and its error neuron) exchange φ′, r_L, ĕ (γ > 0), r^HP and ξ "
    "through one-to-one Dense links that pass the payload unchanged",
    "plasticity: Ẇ = η ĕ rᵀ and ḃ = η ĕ as engine rules (t_epoch = 1, x0 every step): the pre trace x1 = 64 + "
    "p, p the graded rate in 7 bits (1/64 for tanh rates, 1/16 for the lagged teacher's inputs, whose |x| "
    "reaches 3.5; the bias neuron's 1.0 becomes 63/64 in hidden layers), set by the spike and not decayed; the "
    "post error neuron writes y2 = 8·y′⁺, y3 = 8·y′⁻ with y′ = ĕ·gain (η·dt folded in), rounded "
    "stochastically with its random bits (drawn at the learning step, after all neurons have stepped) and "
    "clipped to −8…7 where a transposed B shares the products, to "
    "−15…15 elsewhere; the gains are sized for |ĕ| ≤ 8 (≤ 32 in the lowest layer, whose look-ahead is "
    "amplified twice and whose ĕ is heavy-tailed), larger ĕ saturate y′",
    "16-bit weights from the tag: with η = 0.01 and dt = 0.05 a step's change is far below one register unit, "
    "so the products land in the engine's tag t (dt = 2^e·y2·(x1 − 64) − 2^e·y3·(x1 − 64) − 2^6·sgn(t − 127) − "
    "2^6·sgn(t + 128), in 1/128 of a register unit) and a carry dw = 2^-1·sgn(t − 127) + 2^-1·sgn(t + 128) "
    "moves ±1 into w once |t| ≥ 128 (half a unit, stochastically, at t = 127 or −128): w + t/128 is the "
    "weight, its top 9 bits drive the Dense, at most one register unit moves per step, and the engine's "
    "stochastic rounding acts on the tag's fine units. Where a step's change can exceed a register unit (batch "
    "× η·dt × |ĕ| of 8 × the largest pre rate, in register units, above 1: the static tasks' η = 0.2, dt = 0.5, "
    "batch 16), the products go into w directly (dw = 2^e·y2·(x1 − 64) − …), rounded stochastically to whole "
    "units",
    "feedback='transpose': B = Wᵀ is a second Dense whose register starts as W's, transposed, and learns on the "
    "engine with the same rule string, the roles of its operands swapped (x1 = 64 + 8·y′ from the upper error "
    "neuron's graded spike, y2/y3 = p± from the lower one); its products equal W's integer for integer, and its "
    "stochastic rounding uses the same per-synapse draws (the two synapse groups' generators seeded alike), so "
    "B stays exactly Wᵀ (checked every epoch: transpose_gap in the config); no host copies weights",
    "feedback='pal': OU noise ξ on the hidden neurons' ŭ as an integer update (decay dt/τ_ξ in 2^-12, the "
    "Gaussian kick from the sum of four 8-bit pseudo-random integers, numpy's PCG64 standing in for the chip's "
    "generator), r^HP an integer state of each neuron in 2^-16 (decay dt/τ_HP in 2^-12); B learns with the "
    "rules above (into the tag) plus −y1·w: y′ from ξ of the post neuron, x1 = 64 + r^HP of the pre neuron "
    "in 1/64 (clipped to ±1), and the decay −η_bw α B as y1 = 32 set with probability 128·η_bw·dt·α per step "
    "(w/128 leaves the tag then: microcircuit_chip's scheme); ξ moves once per step after the step that used it "
    "(drawn at the start of the next step, after the engine's draws), so a sequence's last move, which the reset "
    "would discard, is not drawn",
    "output error e_L = β (y* − r_L) in the output neuron, the target arriving as a graded spike in 2^-16 (the "
    "error neurons, and with them learning, switched on by a nudge input while the target is on); on "
    "classification tasks each output neuron computes β (onehot(y*) − σ(r_L)) with σ from a 257-entry 16-bit "
    "table (microcircuit_chip's, read with r_L rounded to 2^-12), not the softmax, which needs every output in "
    "one neuron (sigmoid cross-entropy instead of softmax cross-entropy)",
    "batches (tasks other than the lagged teacher): each sequence runs on a copy of the network and the copies' "
    "engine products of a step are summed into the shared weights with the gain divided by the batch size "
    "(the float reference averages the batch's updates); PAL's decay step is set in one copy only",
    "mismatch (option mismatch): the initial weight registers per synapse (W, and B also with "
    "feedback='transpose', so B − Wᵀ starts at the mismatch and keeps it), one emulator.mismatch instance per "
    "seed; the programmable neurons' digital factors and tables have none",
    "not on the chip: optimizer='adam' (a per-synapse RMS normalisation) is refused; the task's streams (the "
    "lagged teacher's sinusoids and the teacher network's outputs) are data supplied by the host in float64",
)


def learn_chip(*, profile: str, task: str | None, seeds: int, epochs: int | None, progress: Progress,
               **options: Any) -> Any:  # fmt: skip
    """The chip run of GLE, with the float run's history entries."""
    started = time.perf_counter()
    opts: ChipOptions = base.make_options(ChipOptions, NAME, options)
    chip_profile = check_profile(profile)
    task = task or TASK_LAGGED_TEACHER  # MNIST-1D's default optimizer (Adam) is no engine rule
    if task == TASK_LAGGED_TEACHER:
        history, extra, net = run_lagged_teacher(opts, seeds, epochs, progress, chip_profile)
    else:
        history, extra, net = run_task(task, opts, seeds, epochs, progress, chip_profile)
    chip = f"chip ({profile}, emulated; integer arithmetic throughout)"
    transposed = "x1 = 64 + 8·y′ of W's post neuron, y2/y3 = p± of B's post neuron (W's numbers, roles swapped)"
    rules = {p.name: {"rule": p.text, "x1": "64 + graded rate (set by the spike, no decay)", "t_epoch": 1,
                      "weight_exp": -p.shift, "third_factor_gain": f"{p.gain[0]}/2^{p.gain[1]}",
                      "y_range": list(p.y_range)}
             if p.gain[0] else {"rule": p.text, "t_epoch": 1, "weight_exp": -p.shift, "operands": transposed}
             for p in [*net.W, *net.B.values()] if p.text}  # fmt: skip
    feedback = {"transpose": "B = Wᵀ: a second Dense learning with W's rule, operands swapped, same rounding draws",
                "pal": "B learned by PAL on the engine: OU noise and high-pass states in the neurons",
                "fa": "B fixed at its random start"}[opts.feedback]  # fmt: skip
    provenance = {
        "network": {"where": chip, "how": "compiled as a CoreNetwork (gle_chip_net.chip_network: program "
                    "populations rep0…rep{L−1} and err{L−1}…err0, input populations input, target and nudge; "
                    "projections W{k} and B{k} carrying the learning engines, one-to-one links between partner "
                    "neurons; each error neuron hands ĕ to the engine of its partner's W as the third factor) and "
                    "run by the emulator's stepped run loop (emulator.stepped) with the learning engine inside; "
                    "held-out scores run the same neurons and W, frozen, from rest"},
        "neurons": {"where": chip, "how": "representation and error neurons as Loihi 2 programmable neurons: "
                    "integer prospective updates, tanh table" + (", OU noise, high-pass" if opts.feedback == "pal"
                                                                  else "")},
        "synapses": {"where": chip, "how": "W (with bias column) and B as 8-bit Dense projections with graded "
                     "payloads; " + feedback},
        "plasticity": {"where": f"{chip}: learning engine (three-factor rules, Lava's LearningDense fixed point)",
                       "how": "; ".join(f"{n}: {r['rule']}" for n, r in rules.items()) or "none (learning=False)"},
        "task": {"where": "host float64", "how": ("the lagged teacher's input sinusoids and the teacher network's "
                 "outputs" if task == TASK_LAGGED_TEACHER else f"task {task!r}'s inputs and targets")
                 + " (data), sent as graded spikes; the nudge input marks when the target is on"},
        "metrics": {"where": "host float64", "how": "MSE of the output rates the chip reports; ∠(B, Wᵀ) from the "
                    "weight registers"},
    }  # fmt: skip
    result = base.system_result(NAME, "chip", profile, opts, history, equations=EQUATIONS,
                                provenance=provenance, differences=DIFFERENCES, started=started,
                                extra_config={"task": task, **extra})  # fmt: skip
    result.engine.update({"rules": rules, "saturated_weights": net.saturation()})
    return result


__all__ = ["DIFFERENCES", "ChipGLE", "ChipOptions", "check_profile", "learn_chip", "run_lagged_teacher"]

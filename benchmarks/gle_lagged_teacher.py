"""GLE's lagged teacher: a student learns online, in real time, to follow a teacher network whose neurons lag.

The teacher is a GLE network (2 inputs, hidden leaky-integrator layers with τ_m from 1 to 4 and τ_r = 0, a
linear output) with random fixed weights, driven by a smooth sum of sinusoids (ω from 0.5 to 2 per time
unit, so each hidden layer shifts the signal by up to 83°). A student of the same architecture starts
from other weights and learns while it runs: no phases, no stored history, no BPTT. The held-out MSE
between student and teacher is logged every window, for GLE's prospective error neurons, for the same
student with an instantaneous error (ĕ = e: the lag ignored), with no learning, with GLE whose feedback
is learned by PAL, and with fixed random feedback; then the chip version (loihi2, integer neurons and engine
rules) with B = Wᵀ, with 10 % weight mismatch, and with B learned by PAL on the chip. ``--write`` stores
docs/systems/gle-lagged-teacher.md and docs/img/gle-lagged-teacher.png.

    .venv/bin/python benchmarks/gle_lagged_teacher.py [--seeds 5] [--epochs 30] [--window 100] [--no-chip] [--write]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.rules.systems import gle_tasks, learn_system
from neurodeploy.rules.systems.gle import EQUATIONS, Options
from neurodeploy.rules.systems.gle_chip import DIFFERENCES

ROOT = Path(__file__).resolve().parent.parent
CONDITIONS = {  # label -> options
    "GLE (prospective error)": {},
    "instantaneous error (ĕ = e)": {"error_dynamics": "instantaneous"},
    "no learning": {"learning": False},
    "GLE, feedback learned by PAL": {"feedback": "pal"},
    "GLE, fixed random feedback (FA control)": {"feedback": "fa"},
}
CHIP = {  # label -> options of variant="chip" (profile loihi2)
    "chip (loihi2): GLE, B = Wᵀ": {},
    "chip (loihi2): GLE, B = Wᵀ, 10 % mismatch": {"mismatch": 0.1},
    "chip (loihi2): GLE, feedback learned by PAL": {"feedback": "pal"},
}
PAL_ROWS = ("GLE, feedback learned by PAL", "chip (loihi2): GLE, feedback learned by PAL")


def fmt(values: Any, digits: int = 4) -> str:
    v = np.asarray(values, float)
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=30, help="logged windows")
    ap.add_argument("--window", type=float, default=100.0, help="time units per window")
    ap.add_argument("--no-chip", action="store_true", help="only the float reference")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    started = time.perf_counter()
    runs = {}
    plan = [(label, "paper", o) for label, o in CONDITIONS.items()]
    plan += [] if args.no_chip else [(label, "chip", o) for label, o in CHIP.items()]
    for label, variant, options in plan:
        runs[label] = learn_system("gle", "lagged-teacher", variant=variant, seeds=args.seeds, epochs=args.epochs,
                                   window=args.window, **options)  # fmt: skip
        print(f"{label}: {runs[label].wall_s:.0f} s", flush=True)
    traces: dict[str, np.ndarray] = {}
    gle_tasks.run_lagged_teacher(Options(window=args.window).checked(), 1, args.epochs, None, traces)
    wall = time.perf_counter() - started

    third = max(1, args.epochs // 3)
    lines = [f"| student | test MSE at t = 0 | after {third * args.window:g} | after {args.epochs * args.window:g} "
             "| at the end, per seed | drop per seed (start / end) | median drop |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for label, res in runs.items():
        h = res.history
        start, mid, end = (np.array(h[i]["test_mse"]) for i in (0, third, -1))
        per_seed = " / ".join(f"{v:.3f}" for v in end)
        drops = " / ".join(f"{v:.0f}×" for v in start / end)
        lines.append(f"| {label} | {fmt(start)} | {fmt(mid)} | {fmt(end)} | {per_seed} | {drops} "
                     f"| {np.median(start / end):.1f}× |")  # fmt: skip
    angle_rows = [f"| {label} | {name} | {fmt(h[1]['weight_angle'][name], 1)}° "
                  f"| {fmt(h[-1]['weight_angle'][name], 1)}° |"
                  for label in PAL_ROWS if label in runs
                  for h in [runs[label].history] for name in h[-1]["weight_angle"]]  # fmt: skip
    table = "\n".join(lines)
    angles = ("| run | feedback | ∠(B, Wᵀ) after the first window | at the end |\n|---|---|---|---|\n"
              + "\n".join(angle_rows))  # fmt: skip
    chip_rows = ["| chip run | wall time | largest difference B − Wᵀ over the run (register units) "
                 "| weight registers at the clip at the end |", "|---|---|---|---|"]  # fmt: skip
    for label, res in runs.items():
        if label.startswith("chip"):
            gap = f"{res.config['transpose_gap']:g}" if res.config["feedback"] == "transpose" else "— (B learned)"
            chip_rows.append(f"| {label} | {res.wall_s:.0f} s | {gap} | {res.engine['saturated_weights']} |")
    chip_table = "\n".join(chip_rows)
    command = "python benchmarks/gle_lagged_teacher.py " + shlex.join(sys.argv[1:])
    print(table)
    print()
    print(angles)
    print()
    print(chip_table)
    print(f"\n{args.seeds} seeds; {wall:.0f} s; command: {command}")
    if args.write:
        write(args, runs, traces, table, angles, chip_table, command, wall)


def write(args: argparse.Namespace, runs: dict, traces: dict, table: str, angles: str, chip_table: str,
          command: str, wall: float) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), gridspec_kw={"width_ratios": [1.3, 1, 1]})
    for label, res in runs.items():
        t = [h["time"] for h in res.history]
        mse = np.array([h["test_mse"] for h in res.history])
        style = "--" if label.startswith("chip") else "-"
        line = axes[0].plot(t, np.median(mse, 1), style, label=label)[0]
        if not label.startswith("chip"):
            axes[0].fill_between(t, mse.min(1), mse.max(1), color=line.get_color(), alpha=0.15, lw=0)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("time learned online (τ units)")
    axes[0].set_ylabel("held-out MSE (student vs teacher)")
    axes[0].legend(fontsize=6)
    show = traces["time"] <= 30
    for ax, key, title in ((axes[1], "before", "before learning"), (axes[2], "after", "after learning (GLE)")):
        ax.plot(traces["time"][show], traces["teacher"][show, 0, 0], "k", lw=2, label="teacher")
        ax.plot(traces["time"][show], traces[key][show, 0, 0], "C1", lw=1.2, label="student")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("time on the held-out stream")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
    fig.savefig(ROOT / "docs" / "img" / "gle-lagged-teacher.png", dpi=120, metadata={"Software": None})
    equations = "\n".join(f"- {e}" for e in EQUATIONS)
    differences = "\n".join(f"- {d}" for d in DIFFERENCES)
    page = f"""# GLE: learning a lagged teacher online

Generalized Latent Equilibrium (Ellenberger et al., arXiv 2403.16933) gives every neuron a prospective
partner in the backward direction: the error neuron swaps the representation neuron's two time constants,
so it advances the error by as much as the forward direction delayed the signal. A network learns while it
runs, with no phases and no backpropagation through time. This page shows that on a task where the delay
matters.

## Equations (float reference, `learn_system("gle", variant="paper")`)

{equations}

Integrated with forward Euler at dt = 0.05 (τ units), float64, seeds side by side. The same student also
runs on the chip (`variant="chip"`, loihi2, emulated in integer arithmetic): see
[What runs on the chip](#what-runs-on-the-chip).

## Setup

- Teacher: a GLE network 2 → 8 → 8 → 2 with random fixed weights (N(0, 2²/fan_in)); hidden units are leaky
  integrators, τ_m log-spaced from {gle_tasks.TEACHER_TAU[0]:g} to {gle_tasks.TEACHER_TAU[1]:g} and τ_r = 0,
  so each hidden layer lags; the output is linear and instantaneous.
- Input: per channel a sum of {gle_tasks.TEACHER_SINES} sinusoids with ω drawn from
  {gle_tasks.TEACHER_OMEGA[0]:g} to {gle_tasks.TEACHER_OMEGA[1]:g} per τ unit and unit variance (a lag of up to
  arctan(8) ≈ 83° per hidden layer).
- Student: the same architecture and time constants, other initial weights, learning on one continuous
  stream (Ẇ = η ĕ rᵀ, η = 0.01, plain Euler steps of the plasticity). Every {args.window:g} τ units the
  student's output is compared with the teacher's on a held-out stream (same spectrum, new phases) with the
  weights frozen.
- Controls: the same student with an *instantaneous* error (ĕ = e: the error neurons' dynamics removed, so
  the error arrives in phase with the output and out of phase with the lagged hidden activity that caused
  it), no learning at all, and GLE with its feedback B learned by PAL instead of Wᵀ (B starts random; OU
  noise σ = 0.1 on the hidden prospective voltages, τ_ξ = τ_HP = 1 so that the noise outlasts the hidden
  units' lag, α = σ²/2, η_bw = 0.5, so B averages over about 1/(η_bw α) = 400 τ units), and the same with
  B fixed at its random start (feedback alignment, the control that tells what PAL's learning adds).
- Chip rows: the same teacher, streams and initial weights, the student on loihi2 (integer neurons, 8-bit
  synapses, the learning engine), with B = Wᵀ, with 10 % weight mismatch, and with B learned by PAL.

## Result ({args.seeds} seeds, mean ± std)

{table}

With PAL (float, and on the chip), the learned feedback's angle to Wᵀ. PAL's fixed point is (D W)ᵀ, the
layer's Jacobian, which equals Wᵀ only where all units share one slope; with saturating tanh units and
lagging upper units the angle to Wᵀ stays well above 0° even where B has settled:

{angles}

![lagged teacher](../img/gle-lagged-teacher.png)

Left: held-out MSE over the time the student has learned (median over seeds, band: min to max; dashed: the
chip runs, median only). Middle and right: the first output channel on the held-out stream, teacher and
student (seed 0, float), before and after learning with GLE.

No published number exists for this task: it is our construction to show the effect the paper describes,
learning in real time in a network of lagging neurons, so there is no anchor to put beside these numbers.

## What runs on the chip

`learn_system("gle", "lagged-teacher", variant="chip")` (profile loihi2, emulated in integer arithmetic;
`neurodeploy/rules/systems/gle_chip.py`): the student's representation and error neurons run as Loihi 2
programmable neurons; its synapses are 8-bit Dense projections carrying graded spikes (rates and ĕ in
2^-16); Ẇ = η ĕ rᵀ and ḃ = η ĕ are three-factor rules of the Loihi learning engine (`emulator.plasticity`:
the error neuron writes ĕ as the third factor y2/y3, the graded pre rate sets x1); and the error path B runs
there too. The chip version is compiled as a CoreNetwork (`gle_chip_net.chip_network`: programmable
populations of representation and error neurons, W and B carrying the learning engines) and runs in the
emulator's stepped run loop (`emulator.stepped`). With `feedback="transpose"`, B is a second Dense that the
same engine rule keeps exactly equal to Wᵀ, and no host copies weights: the table below gives the largest
difference between B and Wᵀ over the run, 0 without mismatch (with mismatch each register starts with its
own error, and B − Wᵀ keeps that start). With `feedback="pal"`, B is learned by PAL on the chip: OU noise
and high-pass states in the neurons, the decay α as rare engine steps. The host supplies the task's streams
(the input sinusoids and the teacher's outputs, as data) and computes the MSE from the output rates it
reads. loihi1 is refused (it lacks programmable neurons), and so is spinnaker2 (it lacks the Loihi learning
engine). Any task the float reference runs also runs on the chip with `optimizer="sgd"`; Adam's per-synapse
normalisation is refused.

The chip rows are in the result table above, beside the float rows they reproduce. Each engine change has
the float update as its mean (tested in `tests/test_system_gle.py`). With η = 0.01 and dt = 0.05 a step's
change is a small fraction of one weight-register unit (1/32 or 1/64 here), so the rules write it into the
engine's tag, a fraction of the weight in 1/128 of a register unit, which carries ±1 into the register once
it fills: the stochastic rounding then acts on 1/128 of a unit (a 16-bit weight whose top 9 bits drive the
Dense). The lowest layer's ĕ is heavy-tailed (its look-ahead τ_m/dt = 20…80 is
applied on top of the layer above's), and with PAL it is dominated by the OU noise amplified twice; the
chip clips it (ĕ at ±128, y′ at its range), as listed below.

{chip_table}

Every difference from the paper's equations (the result's `differences_from_paper`):

{differences}

## Deviations from the paper

- The task (sizes, time constants, input spectrum, η, dt) is ours.
- γ = 0: the error does not nudge the representation voltage (the option `gamma` turns it on).
- PAL (Max et al. 2023) is written for the dendritic microcircuit; here its noise goes onto the hidden units'
  prospective voltage ŭ and its high-pass reads the next layer's rate, with the settings above (ours).
- An error neuron whose τ_r is below dt (here the hidden units' τ_r = 0) follows its input within one Euler
  step: its τ_r is taken as dt, which makes ĕ = e(t − dt) + τ_m ė.

## Command

`{command}` ({wall:.0f} s on one core of a two-core machine)
"""
    (ROOT / "docs" / "systems").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs" / "systems" / "gle-lagged-teacher.md").write_text(page)


if __name__ == "__main__":
    main()

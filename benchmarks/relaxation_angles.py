"""Activation Relaxation and relaxed predictive coding: the angle of their update to BP's gradient against the
number of relaxation steps, for every variant, and their digits accuracy beside BP's.

Each variant trains ``--seeds`` networks (64-300-300-100-10 ReLU by default) on the digits task with the
papers' relaxation settings (100 steps at rate 0.1, lr 5e-4 per sample, batch 64); BP trains the same
networks from the same initialisation on the same batches. After training, and at initialisation, the
relaxation is rerun on the validation set for 1 to ``--max-steps`` steps and the angle between the
resulting weight update and BP's gradient is measured per layer. The chip versions (loihi2, and loihi2 with
10 % weight mismatch) train a smaller network (``--chip-hidden``) for fewer epochs beside float runs of the
same size, as the emulated learning engine is slow. ``--write`` stores docs/systems/relaxation.md and
docs/img/relaxation.png.

    .venv/bin/python benchmarks/relaxation_angles.py [--epochs 10] [--seeds 3] [--hidden 300,300,100]
        [--chip-hidden 64,64,32] [--chip-epochs 5] [--chip-seeds 2] [--write]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from neurodeploy.learning.tasks import get_task
from neurodeploy.rules.systems.relaxation import (
    EQUATIONS_AR,
    EQUATIONS_PC,
    AROptions,
    Options,
    PCOptions,
    angle,
    descent_directions,
    init_net,
    train,
)
from neurodeploy.rules.systems.relaxation_chip import (
    DIFFERENCES,
    ARChipOptions,
    PCChipOptions,
    check_profile,
    chip_directions,
    train_chip,
)

ROOT = Path(__file__).resolve().parent.parent

# label -> (system, options beyond the defaults)
VARIANTS: dict[str, tuple[str, dict]] = {
    "AR exact (Wᵀ, f′)": ("ar", {}),
    "AR learned B": ("ar", {"backward": "learned"}),
    "AR no f′": ("ar", {"backward_derivative": False}),
    "PC exact (fixed prediction, Wᵀ, f′)": ("pc", {}),
    "PC learned B": ("pc", {"backward": "learned"}),
    "PC no f′": ("pc", {"backward_derivative": False}),
    "PC energy form (predictions recomputed)": ("pc", {"fixed_prediction": False}),
}
BP = "BP (same init and batches)"
# relaxed again on another variant's trained weights, without training of their own
SWEEP_ONLY: dict[str, tuple[str, dict]] = {"AR exact, nodes starting at zero": ("AR exact (Wᵀ, f′)", {"start": "zero"})}
AR_EXACT, PC_EXACT = "AR exact (Wᵀ, f′)", "PC exact (fixed prediction, Wᵀ, f′)"


def steps_grid(max_steps: int) -> list[int]:
    grid = [s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if s <= max_steps]
    return grid if max_steps in grid else [*grid, max_steps]


def angles_vs_steps(system: str, opts: Options, net, x: np.ndarray, t: np.ndarray, grid: list[int]) -> np.ndarray:
    """Angles and norm ratios ‖update‖ / ‖BP gradient‖, (steps, 2, layers, seeds), on one batch."""
    out = []
    for steps in grid:
        w_dirs, _, bp_dirs, _ = descent_directions(system, net, x, t, opts, steps=steps)
        norm = [np.linalg.norm(w.reshape(len(w), -1), axis=1) for w in w_dirs]
        ref = [np.linalg.norm(g.reshape(len(g), -1), axis=1) for g in bp_dirs]
        out.append([[angle(w, g) for w, g in zip(w_dirs, bp_dirs, strict=True)],
                    [a / b for a, b in zip(norm, ref, strict=True)]])  # fmt: skip
    return np.array(out)


def fmt(values) -> str:
    v = 100 * np.asarray(values)
    return f"{v.mean():.1f} ± {v.std():.1f}"


PROSE = """# Activation Relaxation and relaxed predictive coding

Two systems that compute backprop's credit assignment with a second, recurrent population of units that
relaxes to the gradient while the forward pass is held fixed. `learn_system("ar", ...)` runs Activation
Relaxation (Millidge, Tschantz, Seth & Buckley 2020, arXiv 2009.05359); `learn_system("pc", ...)` runs
predictive coding as in Millidge, Tschantz & Buckley 2020 (arXiv 2006.04182), with the relaxations of
"Relaxing the Constraints on Predictive Coding Models" (Millidge, Tschantz, Seth & Buckley 2020) as options.

## Equations

Activation Relaxation:

{ar}

Predictive coding:

{pc}

Options of both: `steps` (relaxation steps per batch, 100), `rate` (η_inf, 0.1, must lie in (0, 1]), `lr`
(5e-4 per sample), `batch` (64), `backward` (`"transpose"`: B = Wᵀ; `"learned"`: B trained with the
transpose of W's update, Kolen-Pollack style; `"fixed"`: random B; `"bp"`: the exact chain rule, the BP
reference), `backward_derivative` (False drops f′ from the backward dynamics), `decay`, `activation`,
`loss`, `init_gain`, `hidden`. AR adds `start` (`"forward"`: the hidden nodes begin at the forward
activations, the same neurons after the forward pass; `"zero"`). PC adds `fixed_prediction` (True:
predictions and Jacobians held at their feed-forward values during the relaxation, which is how the
paper's algorithm computes them; False: the energy-descent form, recomputing them from the moving value
nodes). A relaxation that leaves any
gradient's scale raises one error naming `rate`; diverging weights raise one naming `lr`.

## Where it runs

`variant="paper"` runs the equations above in float64 on the host, seeds side by side in numpy.
`variant="chip"` (profile `loihi2`; `mismatch=0.1` for 10 % synapse mismatch) runs both systems in the
loihi2 profile's integer arithmetic with every weight update on the Loihi learning engine: see "What runs
on the chip" below. `loihi1` is refused (no programmable neurons, no graded spikes), and so is `spinnaker2`
(no Loihi learning engine).

## What the relaxation reaches

Both relaxations are linear, triangular recurrences: with B = Wᵀ every layer's residual decays as
(1 − η_inf)ᵗ times a polynomial in t of the depth's degree, so the fixed point is the exact gradient (AR: ∂L/∂h_l;
PC under the fixed-prediction assumption: −∂L/∂v_l). Started at zero, every layer is a scalar multiple of
its gradient as soon as the output's signal has reached it (all samples share the scalar), so the update's
angle to BP is zero after as many steps as the layer is deep and only its size still grows towards BP's:
that is PC, whose errors start at zero. AR's nodes start at the forward activations, far from the
gradient, and their decaying residual tilts the update until it has died away. Learned or fixed B and dropping
f′ move the fixed point itself away from the gradient; no number of steps removes that angle. PC's energy
form settles at (I + W Wᵀ)⁻¹-distorted errors (exact only as the output weights shrink), and its update
uses the relaxed rates.

![angle to BP against relaxation steps, and digits accuracy](../img/relaxation.png)

"""

DEVIATIONS = """## Deviations of this run from the papers

- Task: scikit-learn's 8×8 digits (64 features in [0, 1], 1297 / 250 / 250 train / validation / test),
  not MNIST; the network is 64-{hidden}-10, ReLU with a linear output (the AR paper's: 784-300-300-100-10).
- {epochs} epochs and {seeds} seeds; the papers' MNIST training runs are not reproduced here.
- Loss: softmax cross-entropy; the output node is clamped to ∂L/∂out (AR) or ε_L = −∂L/∂v̂_L (PC).
- A batch's per-sample updates are summed (lr 5e-4 per sample); plain SGD, He-normal initialisation, zero
  biases; biases learn with the same rule as the weights.
- AR's hidden nodes start each relaxation at the forward activations (`start="forward"`; `start="zero"` is
  an option); all layers update together (a Jacobi sweep).
- Learned B starts random (drawn like W) and receives exactly the transpose of W's update; `decay` is 0 here,
  so B − Wᵀ keeps its initial value and B aligns only as far as the updates outgrow it.
- The gradient angle in the history is the mean over an epoch's batches of the angle between the system's
  update and BP's gradient for the same batch and the same weights; the angle-versus-steps curves use
  the validation set as one batch.

## Published anchors

- AR: with B = Wᵀ the relaxation converges to the exact backprop gradients, and AR trains MNIST and
  Fashion-MNIST as well as BP; learned backward weights and dropping the nonlinear derivatives were
  shown not to harm learning noticeably (Millidge, Tschantz, Seth & Buckley 2020, arXiv 2009.05359).
- PC: the prediction errors converge to the backprop gradients at equilibrium, and PC networks train to
  BP's performance (Millidge, Tschantz & Buckley 2020, arXiv 2006.04182); the same relaxations (learned
  backward weights, no backward derivatives) keep performance close to BP's ("Relaxing the Constraints on
  Predictive Coding Models", 2020).
- Ours, after training (validation set as one batch, every layer): PC under the fixed-prediction assumption
  is within {pc_100:.2g}° of BP at {steps} steps. AR at the paper's {steps} steps is {ar_layers} from BP
  (W1 … W4): its nodes start at the forward activations, whose residual has not decayed yet in the
  first layers of this 4-layer network; W1 falls under 5° {ar_settled}, and every layer is within
  {ar_last:.2g}° at {last} steps. Started at zero, AR is parallel to BP as soon as the output's signal
  reaches a layer (the "AR exact, nodes starting at zero" row). The digits accuracies are in the table.

"""


CHIP = """## What runs on the chip

`learn_system("ar" | "pc", variant="chip")` (neurodeploy/rules/systems/relaxation_chip.py) runs, emulated
in the loihi2 profile's integer arithmetic: the forward network (ReLU neurons as Loihi 2 programmable
neurons sending 8-bit graded payloads through 8-bit Dense weights, a bias neuron per layer), the output
error (a sigmoid table and a target input), the relaxation (one integer compartment per hidden neuron, the
relaxing node AR's −x_l or PC's ε_l, exchanged as 16-bit graded payloads through the backward weights B,
their own 8-bit Dense), and every weight update: W and B learn on the Loihi learning engine
(`emulator.plasticity`, Loihi3FLearningRule), the activity as graded pre traces x1 = p⁺, x2 = p⁻, the error
as the third factors y2 = δ⁺, y3 = δ⁻ set by the post neuron, the minibatch gathered in the tag and moved
into the weight by y1 at its last presentation. B learns the transpose of W's product (the error as its pre
trace, the activity as its third factor) with W's rounding draws transposed, so `backward="transpose"` keeps
B = Wᵀ on the chip and `backward="learned"` is AR's and PC's learnable B. The chip version is compiled as a
CoreNetwork (`chip_network` in neurodeploy/rules/systems/relaxation_chip_net.py: programmable-neuron populations
for the hidden and output layers and the bias neurons, plastic projections whose Engine is the learning engine)
and runs in the emulator's stepped run loop (`emulator.stepped`), one presentation of steps + 1 loop steps per
sample, the host writing the y1 gate before a minibatch's last presentation. The host only reads the output
neurons' sums to score them, and measures the angles (the chip's dequantised Σ δ pᵀ against float64 BP on
the dequantised weights). The engine rules, the realised learning rate and the relaxation's integer factor
are in `result.engine`.

Every difference from the papers' equations:

{differences}

Chip runs: digits, 64-{hidden}-10, {seeds} seeds, {epochs} epochs, the papers' settings otherwise (100 steps at
rate 0.1, lr 5e-4 per sample, batch 64, Wᵀ feedback, f′ kept); the float rows train the same network from
the same start on the same batches. Angles: mean over the last epoch's batches (the history's
`gradient_angle`), and after training on the validation set as one batch at 100 and 500 relaxation steps;
a chip row's angle is to BP of the chip's own loss (sigmoid cross-entropy) on its dequantised weights,
so it measures what the integer arithmetic costs. ∠(B, Wᵀ): how far B has left Wᵀ by the end.

{table}

These runs are reduced from the float runs in the Results below (a 64-{hidden}-10 network, {epochs} epochs,
{seeds} seeds), because the emulated learning engine steps every synapse of W and B once per sample; their
accuracies are not converged and compare with the float runs of the same size only. No chip results are
published for AR or PC: the anchor is the float reference. What angle the chip keeps to BP is its
quantisation (hidden errors below 2^-8 round to zero, activities round to 1/16, the output's sigmoid comes
from a table); mismatch adds to it, since W and B then carry independent patterns (the ∠(B, Wᵀ) column).

"""


def chip_rows(hidden: tuple[int, ...], epochs: int, seeds: int, mismatch: float) -> tuple[list[str], dict]:
    """The chip runs and the float runs of the same size: table rows and per-label numbers."""
    task = get_task("digits")
    x_val = np.broadcast_to(np.asarray(task.x_val, float), (seeds, *task.x_val.shape))
    t_val = np.broadcast_to(np.eye(task.n_out)[task.y_val], (seeds, len(task.y_val), task.n_out))
    rows, numbers = [], {}
    runs = [(f"{s.upper()} float (same size)", s, None) for s in ("ar", "pc")]
    runs += [(f"{s.upper()} chip (loihi2{m})", s, mm) for s in ("ar", "pc")
             for m, mm in (("", 0.0), (f", mismatch {mismatch:g}", mismatch))]  # fmt: skip
    for label, system, mm in runs:
        tick = time.perf_counter()
        if mm is None:
            opts = (PCOptions if system == "pc" else AROptions)(hidden=hidden, loss="cross_entropy").checked()
            hist, net = train(system, "digits", seeds, epochs, opts)
            eq = angles_vs_steps(system, opts, net, x_val, t_val, [100, 500])[:, 0]
        else:
            opts = (PCChipOptions if system == "pc" else ARChipOptions)(hidden=hidden, loss="cross_entropy",
                                                                        mismatch=mm).checked()  # fmt: skip
            hist, net, _ = train_chip(system, task, opts, seeds, epochs, check_profile(system, "loihi2"))
            eq = []
            for steps in (100, 500):
                dirs, bp, _, _ = chip_directions(net, net.payload(task.x_val, seeds), t_val, steps=steps)
                eq.append([angle(d, g) for d, g in zip(dirs, bp, strict=True)])
            eq = np.array(eq)
        wall = time.perf_counter() - tick
        print(f"{label}: {wall:.0f} s", file=sys.stderr)
        last = hist[-1]
        names = list(last["gradient_angle"])
        ang = " / ".join(f"{np.mean(last['gradient_angle'][n]):.2g}" for n in names)
        at = [" / ".join(f"{a:.2g}" for a in eq[k].mean(-1)) for k in range(2)]
        back = " / ".join(f"{np.mean(v):.2g}" for v in last.get("backward_angle", {}).values()) or "— (exact Wᵀ)"
        rows.append(f"| {label} | {fmt(last['test_accuracy'])} | {ang} | {at[0]} | {at[1]} | {back} | {wall:.0f} |")
        numbers[label] = {"acc": np.mean(last["test_accuracy"]), "angle": eq[0].mean(-1)}
    head = ["| variant | test accuracy % (last epoch) | mean ∠ to BP in the last epoch, " + " / ".join(names)
            + " (°) | ∠ to BP after training, 100 steps (°) | same, 500 steps (°) | ∠(B, Wᵀ) (°) | wall (s) |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    return head + rows, numbers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--hidden", default="300,300,100")
    ap.add_argument("--max-steps", type=int, default=500)
    ap.add_argument("--chip-hidden", default="64,64,32")
    ap.add_argument("--chip-epochs", type=int, default=5)
    ap.add_argument("--chip-seeds", type=int, default=2)
    ap.add_argument("--chip-mismatch", type=float, default=0.1)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    started = time.perf_counter()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    task = get_task("digits")
    probe_x = np.broadcast_to(np.asarray(task.x_val, float), (args.seeds, *task.x_val.shape))
    probe_t = np.broadcast_to(np.eye(task.n_out)[task.y_val], (args.seeds, len(task.y_val), task.n_out))
    grid = steps_grid(args.max_steps)
    histories, at_init, trained, nets = {}, {}, {}, {}
    start = init_net([task.n_in, *hidden, task.n_out], args.seeds)
    for label, (system, extra) in [*VARIANTS.items(), (BP, ("ar", {"backward": "bp"}))]:
        opts = (PCOptions if system == "pc" else AROptions)(hidden=hidden, **extra).checked()
        tick = time.perf_counter()
        histories[label], net = train(system, "digits", args.seeds, args.epochs, opts)
        nets[label] = net
        if label != BP:
            at_init[label] = angles_vs_steps(system, opts, start, probe_x, probe_t, grid)
            trained[label] = angles_vs_steps(system, opts, net, probe_x, probe_t, grid)
        print(f"{label}: {time.perf_counter() - tick:.0f} s", file=sys.stderr)
    for label, (trained_as, extra) in SWEEP_ONLY.items():
        opts = AROptions(hidden=hidden, loss="cross_entropy", **extra).checked()
        at_init[label] = angles_vs_steps("ar", opts, start, probe_x, probe_t, grid)
        trained[label] = angles_vs_steps("ar", opts, nets[trained_as], probe_x, probe_t, grid)
    chip_hidden = tuple(int(h) for h in args.chip_hidden.split(","))
    chip_table, _ = chip_rows(chip_hidden, args.chip_epochs, args.chip_seeds, args.chip_mismatch)
    names = list(histories[BP][-1]["gradient_angle"])
    at100 = grid.index(100) if 100 in grid else len(grid) - 1

    acc = ["| variant | test accuracy % (last epoch) | test accuracy % (best-val epoch) | mean ∠ to BP in the last "
           "epoch, " + " / ".join(names) + " (°) |", "|---|---|---|---|"]  # fmt: skip
    for label, hist in histories.items():
        best = max(hist, key=lambda h: np.mean(h["val_accuracy"]))
        ang = " / ".join(f"{np.mean(hist[-1]['gradient_angle'][n]):.2g}" for n in names)
        acc.append(f"| {label} | {fmt(hist[-1]['test_accuracy'])} | {fmt(best['test_accuracy'])} "
                   f"(epoch {best['epoch']}) | {ang} |")  # fmt: skip
    steps_table = ["| variant | " + " | ".join(f"{s} steps" for s in grid) + " |", "|---|" + "---|" * len(grid)]
    for label in at_init:
        cells = [
            f"{trained[label][k, 0, 0].mean():.2g} ({at_init[label][k, 0, 0].mean():.2g})" for k in range(len(grid))
        ]
        steps_table.append(f"| {label} | " + " | ".join(cells) + " |")
    layer_table = ["| variant | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label in at_init:
        cells = [f"{trained[label][at100, 0, i].mean():.2g}" for i in range(len(names))]
        layer_table.append(f"| {label} | " + " | ".join(cells) + " |")
    ratio_table = ["| variant | " + " | ".join(f"{s} steps" for s in grid) + " |", "|---|" + "---|" * len(grid)]
    for label in at_init:
        cells = [f"{trained[label][k, 1, 0].mean():.3g}" for k in range(len(grid))]
        ratio_table.append(f"| {label} | " + " | ".join(cells) + " |")
    wall = time.perf_counter() - started
    command = "python benchmarks/relaxation_angles.py " + shlex.join(sys.argv[1:])
    ar_w1 = trained[AR_EXACT][:, 0, 0].mean(-1)
    settled = next((s for s, a in zip(grid, ar_w1, strict=True) if s >= grid[at100] and a < 5.0), None)
    findings = {
        "steps": grid[at100],
        "ar_100": ar_w1[at100],
        "ar_layers": " / ".join(f"{a:.2g}°" for a in trained[AR_EXACT][at100, 0].mean(-1)),
        "ar_settled": f"by {settled} steps" if settled else f"not within {grid[-1]} steps",
        "ar_last": trained[AR_EXACT][-1, 0].mean(-1).max(),
        "last": grid[-1],
        "pc_100": trained[PC_EXACT][at100, 0].mean(-1).max(),
    }
    text = (
        f"Digits, 64-{args.hidden.replace(',', '-')}-10, {args.seeds} seeds, {args.epochs} epochs; means ± std "
        "over seeds.\n\n" + "\n".join(acc)
        + "\n\nAngle (°) of the first layer's update (W1, farthest from the output) to BP's gradient on the "
        "validation set against the number of relaxation steps (rate 0.1): after training (at initialisation "
        "in brackets); mean over seeds.\n\n" + "\n".join(steps_table)
        + "\n\nNorm of the first layer's update over BP's gradient norm (same batch, after training): the angle "
        "measures direction only, and a relaxation that starts at zero is parallel to the gradient long before "
        "it reaches its size.\n\n" + "\n".join(ratio_table)
        + f"\n\nAngle (°) to BP per layer after training, {grid[at100]} steps:\n\n" + "\n".join(layer_table)
        + f"\n\nChip versions (digits, 64-{args.chip_hidden.replace(',', '-')}-10, {args.chip_seeds} seeds, "
        f"{args.chip_epochs} epochs) beside float runs of the same size:\n\n" + "\n".join(chip_table)
        + f"\n\nWall time {wall:.0f} s (one core of a two-core machine). Produced by:\n\n```\n{command}\n```\n"
    )  # fmt: skip
    print(text)
    if not args.write:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    colors = plt.cm.tab10(np.arange(len(at_init) + 1))
    for c, label in zip(colors, at_init, strict=False):
        ls = ":" if label in SWEEP_ONLY else "-"
        axes[0].plot(grid, at_init[label][:, 0, 0].mean(-1), marker="o", ms=3, ls=ls, color=c, label=label)
        axes[1].plot(grid, trained[label][:, 0, 0].mean(-1), marker="o", ms=3, ls=ls, color=c, label=label)
    for ax, title in zip(axes[:2], ("at initialisation", f"after training ({args.epochs} epochs)"), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=0.01)
        ax.set_ylim(0.0, 200.0)
        ax.axhline(5.0, color="grey", ls=":", lw=1)
        ax.set_xlabel("relaxation steps")
        ax.set_ylabel("∠(update of W1, BP gradient) (°)")
        ax.set_title(title)
    axes[0].legend(fontsize=7)
    for c, (label, hist) in zip(colors, histories.items(), strict=False):
        axes[2].plot([h["epoch"] for h in hist], [100 * np.mean(h["test_accuracy"]) for h in hist], label=label,
                     color="k" if label == BP else c, ls="--" if label == BP else "-", marker="o", ms=3)  # fmt: skip
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("digits test accuracy (%)")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "img" / "relaxation.png", dpi=110, metadata={"Software": None})
    out = ROOT / "docs" / "systems" / "relaxation.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    bullets = lambda eqs: "\n".join(f"- {e}" for e in eqs)  # noqa: E731
    out.write_text(
        PROSE.format(ar=bullets(EQUATIONS_AR), pc=bullets(EQUATIONS_PC))
        + DEVIATIONS.format(hidden=args.hidden.replace(",", "-"), epochs=args.epochs, seeds=args.seeds, **findings)
        + CHIP.format(differences=bullets(DIFFERENCES), hidden=args.chip_hidden.replace(",", "-"),
                      seeds=args.chip_seeds, epochs=args.chip_epochs, table="\n".join(chip_table))
        + "## Results\n\n" + text,
        encoding="utf-8",
    )  # fmt: skip


if __name__ == "__main__":
    main()

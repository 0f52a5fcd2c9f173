"""PAL against FA in the dendritic cortical microcircuit on Yin-Yang (Max et al. 2023): test accuracy and
∠(B, Wᵀ) per epoch, on the same network, seeds and data, in float and on the emulated chip.

All runs use the same microcircuit (4-30-3 sigmoid pyramids, interneurons, dendritic-prediction
plasticity); PAL learns B from OU noise on the hidden somas and the output's high-passed rate; FA keeps B
at its random start with no noise; frozen keeps B at its start with PAL's noise. The chip rows run PAL and
FA on loihi2 (emulated) and PAL with 10 % weight mismatch for ``--chip-epochs`` epochs, beside the float
runs' first epochs (helpers and the chip probe in ``microcircuit_probe.py``).
``--write`` stores docs/systems/microcircuit.md and docs/img/microcircuit.png.

    .venv/bin/python benchmarks/microcircuit_pal_fa.py [--seeds 10] [--epochs 100] [--chip-epochs 10]
        [--no-frozen] [--write]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from microcircuit_probe import (
    RULE_NAMES,
    ChipProbe,
    cell,
    chip_cause,
    chip_table,
    chip_verdict,
    last_epochs,
    paired,
    series,
)

from neurodeploy.rules.systems import learn_system
from neurodeploy.rules.systems import microcircuit as mc

ROOT = Path(__file__).resolve().parent.parent
PAGE, FIGURE = ROOT / "docs" / "systems" / "microcircuit.md", ROOT / "docs" / "img" / "microcircuit.png"

# the published GeNN Yin-Yang config (unibe-cns/pal_microcircuits_genn), against which deviations are listed
PAPER = {"hidden": (30,), "dt": 0.01, "pattern_time": 1.0, "epochs": 400, "seeds": 10, "sigma": 0.01,
         "tau_xi": 0.1, "tau_hp": 0.1, "alpha": 1e-6, "lr_bw": 0.5, "batch": 1, "n_train": 6000}  # fmt: skip


def run(
    name: str, feedback: str, args: argparse.Namespace, epochs: int, variant: str = "paper", **extra: Any
) -> tuple[Any, float]:
    started = time.perf_counter()

    def progress(done: int, total: int, entry: dict[str, Any]) -> None:
        if not args.quiet:
            acc, ang = np.mean(entry["test_accuracy"]), np.mean(entry["weight_angle"]["hidden"])
            print(f"  {name} epoch {done}/{total}: test {100 * acc:.1f} %, ∠(B, Wᵀ) {ang:.1f}°", flush=True)

    chip = {"variant": "chip", "profile": args.profile} if variant == "chip" else {}
    res = learn_system("microcircuit", args.task, seeds=args.seeds, epochs=epochs, progress=progress,
                       feedback=feedback, dt=args.dt, batch=args.batch, **chip, **extra)  # fmt: skip
    return res, time.perf_counter() - started


def first_epochs(res: Any, epochs: int) -> Any:
    """The first ``epochs`` of a run: the same numbers as a run of that length (same seeds, the same draws
    per epoch)."""
    return SimpleNamespace(history=res.history[:epochs], config=res.config)


def table(results: dict[str, Any]) -> str:
    acc = {name: 100 * series(res, "test_accuracy") for name, res in results.items()}
    ang = {name: series(results[name], "weight_angle") for name in ("PAL", "FA")}
    n = len(acc["PAL"])
    shown = sorted({*range(0, n, max(1, n // 20)), n - 1})
    head = [f"{name} test %" for name in acc] + [f"{name} ∠(B, Wᵀ) °" for name in ang]
    lines = ["| epoch | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for i in shown:
        cols = [cell(a[i]) for a in acc.values()] + [cell(a[i]) for a in ang.values()]
        lines.append(f"| {i + 1} | " + " | ".join(cols) + " |")
    return "\n".join(lines)


def summary(results: dict[str, Any]) -> str:
    out = []
    for name, res in results.items():
        last = 100 * series(res, "test_accuracy")[-1]
        k, tail = last_epochs(res)
        best = res.final["best_epoch"]
        acc = best["test_accuracy"]
        out.append(f"{name}: last epoch {cell(last)} % test; mean of the last {k} epochs {cell(tail)} %; at the best "
                   f"validation epoch ({best['epoch']}) {100 * acc['mean']:.1f} ± {100 * acc['std']:.1f} %; final "
                   f"∠(B, Wᵀ) {series(res, 'weight_angle')[-1].mean():.1f}°")  # fmt: skip
    return "\n".join(f"- {line}" for line in out)


def deviations(opts: mc.Options, args: argparse.Namespace, n_train: int) -> list[str]:
    return [
        f"time step dt = {opts.dt} ({opts.steps_per_pattern} steps per pattern) instead of {PAPER['dt']} "
        f"({int(PAPER['pattern_time'] / PAPER['dt'])} steps); τ_ξ = {opts.tau_xi} and τ_HP = {opts.tau_hp} as "
        "published"
        + (
            ", so at dt = τ_ξ = τ_HP the noise is white from step to step and the high-pass is the upper rate's "
            "change over one step"
            if opts.dt == opts.tau_xi == opts.tau_hp
            else ""
        ),
        f"{args.epochs} epochs and {args.seeds} seeds instead of {PAPER['epochs']} epochs and {PAPER['seeds']} seeds",
        f"{n_train} training patterns (this project's Yin-Yang split) instead of the config's {PAPER['n_train']}",
        f"{opts.batch} patterns run side by side, each with its own state, their weight updates summed per step "
        "(the paper presents one pattern at a time)",
        f"η_bw = {opts.lr_bw} instead of the paper's η_down {PAPER['lr_bw']}, so that B aligns within the short "
        "run; σ, τ_ξ, τ_HP and α are the paper's",
        f"forward rates η = {list(opts.lr_up)} (bottom first), η_IP = {opts.lr_ip}, η_PI = {opts.lr_pi} and the "
        f"conductances g_l = {opts.g_l}, g_B = {opts.g_b}, g_A = {opts.g_a}, g_D = {opts.g_d}, g_som = {opts.g_som}, "
        f"g_som,I = {opts.g_som_i} are chosen here for the shortened run (the config's η_up is [50, 0.01]; its "
        "conductances are not in this project's notes)",
        f"the output soma is nudged towards target potentials {opts.target_high} (correct class) / "
        f"{opts.target_low} (others); the class is the largest undisturbed output potential",
        "the network starts in the self-predicting state (W_IP and W_PI set from W and B) rather than learning it "
        "in a phase before training; W_IP and W_PI stay plastic throughout",
        "the high-pass filter ignores the jump of the upper rate at a pattern's onset (a new input, not the noise's "
        "response)",
        "the soma's potential is computed as its prospective value, the compartments' conductance-weighted average "
        "(equal to u + τ u̇ at every instant); top-down and interneuron inputs reach it one step late",
        "no biases",
    ]


PROSE = """# PAL in the dendritic cortical microcircuit

Phaseless Alignment Learning (Max et al., ICANN 2023, arXiv 2212.10249) in the dendritic cortical
microcircuit of Sacramento et al. (NeurIPS 2018). Each hidden pyramidal neuron has a basal compartment
(forward input), an apical compartment (top-down input through B plus lateral interneuron input) and a
soma that integrates both. Interneurons learn to predict the layer above, so that the apical potential
carries only the output's error once the output is nudged towards a target. Forward weights learn by
matching the soma to the basal dendrite's prediction. PAL teaches B from Ornstein-Uhlenbeck noise on the
hidden somas and the layer above's high-passed rate, always on, with no phases.

Two runs keep B at its random start, as baselines: **FA** (`feedback="fa"`, feedback alignment) has no
noise, and **frozen** (`feedback="frozen"`) has PAL's noise on the hidden somas but does not learn B, so
that it separates the effect of the noise from that of learning B. Both set σ or η_bw to 0 themselves and
refuse a value of those options that they would discard.

```python
from neurodeploy.rules.systems import learn_system

res = learn_system("microcircuit", seeds=2, epochs=3)  # PAL; feedback="fa" or "frozen" for the baselines
chip = learn_system("microcircuit", variant="chip", profile="loihi2", seeds=2, epochs=3)  # optional mismatch=0.1
```

## Equations

{equations}

## Where it runs

`variant="paper"` runs everything on the host in float64. `variant="chip"` runs the network and its
learning on the loihi2 profile's emulated chip: see [What runs on the chip](#what-runs-on-the-chip).

## Result

{setting}

![PAL, FA and frozen in the microcircuit, float and chip](../img/microcircuit.png)

{summary}

**Published anchor:** Max et al. 2023 show PAL clearly above FA on Yin-Yang at 30 hidden units
(GeNN, 400 epochs, 10 seeds). They give this in a figure only; there is no number to compare with.

{verdict}

{table}

Command: `{command}` ({wall:.0f} s wall time in all, on one core of a two-core machine shared with other
work, load average {load:.1f} over the run's last 15 minutes; the float runs: {walls}).

## What runs on the chip

`variant="chip"` (`neurodeploy/rules/systems/microcircuit_chip.py`; profile `loihi2`, emulated) runs
the pyramidal neurons, output neurons and interneurons as Loihi 2 programmable neurons in integer
arithmetic (potentials in 2^-12, rates in 2^-16, a sigmoid table, integer OU noise and high-pass
states), every synapse as an 8-bit Dense projection that carries rates as graded spikes, and all four
plasticity rules on the Loihi learning engine. It is compiled as a CoreNetwork
(`microcircuit_chip_net.chip_network`: pyramid and interneuron programs, engine projections for W_up,
W_IP, W_PI and B) and runs in the emulator's stepped run loop (`emulator.stepped`), the host writing
each pattern's target into the output neurons' bias. The host only reads the output potentials to score
and the weight registers for ∠(B, Wᵀ). A profile without programmable neurons, graded spikes or the
Loihi learning engine (e.g. loihi1, spinnaker2) is refused with the missing capability named.

The engine rules of the PAL run (`result.engine["rules"]`; x1 is the pre trace, y1…y3 the third
factors the post neuron sets, w the weight, t the tag that holds the weight's fraction in 1/128 of a
unit):

{rules}

Every difference from the paper's equations (`microcircuit_chip.DIFFERENCES`, also in each chip
result's `differences_from_paper`):

{differences}

### Chip result

{chip_setting}

{chip_table}

{chip_verdict}

{chip_cause}

Command: `{command}` (the chip rows: {chip_walls}).

## Deviations of the run from the paper

{deviations}
"""


def verdict(results: dict[str, Any]) -> str:
    """PAL against FA, seed by seed: a gap counts as clear when it exceeds twice its standard error."""
    k, diff, sem = paired(results["PAL"], results["FA"])
    n, wins = len(diff), int((diff > 0).sum())
    text = (f"Seed by seed (each seed's PAL and FA runs share their start), PAL's test accuracy minus FA's is "
            f"{diff.mean():+.1f} ± {sem:.1f} points (mean ± standard error over {n} seeds of the last {k} epochs' "
            f"mean); PAL is ahead in {wins} of {n} seeds: ")  # fmt: skip
    if diff.mean() > 2 * sem:
        text += "a clear gap in PAL's favour, as published."
    elif diff.mean() > 0:
        text += "PAL is ahead, but by less than twice the standard error: not a clear gap."
    else:
        text += "this run does not reproduce the published gap."
    if "frozen" in results:
        _, dc, sem_c = paired(results["PAL"], results["frozen"])
        text += (f" PAL minus frozen (PAL's noise, B fixed): {dc.mean():+.1f} ± {sem_c:.1f} points, PAL ahead "
                 f"in {int((dc > 0).sum())} of {n} seeds")  # fmt: skip
        text += ": the noise alone does not explain PAL's result." if dc.mean() > 2 * sem_c else "."
    return text


COLORS = {"PAL": "tab:blue", "FA": "tab:orange", "frozen": "tab:gray", "PAL, mismatch": "tab:purple"}
LABELS = {"frozen": "frozen (PAL's noise, B fixed)"}


def band(ax: Any, values: np.ndarray, color: str, label: str, style: str = "-") -> None:
    epochs = np.arange(1, len(values) + 1)
    ax.plot(epochs, values.mean(1), style, color=color, label=label)
    ax.fill_between(epochs, values.mean(1) - values.std(1), values.mean(1) + values.std(1), color=color, alpha=0.15)


def plot(results: dict[str, Any], chip_runs: dict[str, Any], chip_epochs: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 2 if chip_runs else 1
    fig, axes = plt.subplots(rows, 2, figsize=(10, 3.8 * rows), squeeze=False)
    for name, res in results.items():
        band(axes[0, 0], 100 * series(res, "test_accuracy"), COLORS[name], LABELS.get(name, name))
        if name != "frozen":  # B fixed: its angle is FA's up to the forward weights' drift
            band(axes[0, 1], series(res, "weight_angle"), COLORS[name], name)
    axes[0, 0].set(xlabel="epoch", ylabel="test accuracy %", title="Yin-Yang, microcircuit 4-30-3, float")
    axes[0, 1].set(xlabel="epoch", ylabel="∠(B, Wᵀ) °", title="feedback alignment of the hidden layer, float",
                   ylim=(0, 95))  # fmt: skip
    if chip_runs:
        for name in ("PAL", "FA"):
            res = first_epochs(results[name], chip_epochs)
            band(axes[1, 0], 100 * series(res, "test_accuracy"), COLORS[name], f"{name} float", ":")
            band(axes[1, 1], series(res, "weight_angle"), COLORS[name], f"{name} float", ":")
        for name, res in chip_runs.items():
            label = {"PAL, mismatch": "PAL chip, mismatch 0.1"}.get(name, f"{name} chip")
            band(axes[1, 0], 100 * series(res, "test_accuracy"), COLORS[name], label)
            band(axes[1, 1], series(res, "weight_angle"), COLORS[name], label)
        axes[1, 0].set(xlabel="epoch", ylabel="test accuracy %", title="chip (loihi2, emulated) and float")
        axes[1, 1].set(xlabel="epoch", ylabel="∠(B, Wᵀ) °", title="chip (loihi2, emulated) and float", ylim=(0, 95))
    for ax in axes.ravel():
        ax.legend(fontsize=7)
    fig.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--chip-epochs", type=int, default=10, help="epochs of the chip rows (0: no chip rows)")
    ap.add_argument("--profile", default="loihi2")
    ap.add_argument("--task", default="yinyang")
    ap.add_argument("--dt", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--no-frozen", action="store_true", help="skip the frozen run (PAL's noise, B fixed)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    chip_epochs = min(args.chip_epochs, args.epochs)
    started = time.perf_counter()
    runs = {"PAL": "pal", "FA": "fa"} | ({} if args.no_frozen else {"frozen": "frozen"})
    results, walls = {}, {}
    for name, feedback in runs.items():
        results[name], walls[name] = run(name, feedback, args, args.epochs)
    chip_runs, chip_walls, usage = {}, {}, {}
    if chip_epochs > 0:
        plan = {"PAL": ("pal", {}), "FA": ("fa", {}), "PAL, mismatch": ("pal", {"mismatch": 0.1})}
        for name, (feedback, extra) in plan.items():
            with ChipProbe() as probe:
                chip_runs[name], chip_walls[name] = run(f"{name} chip", feedback, args, chip_epochs, "chip", **extra)
            if name == "PAL":
                usage = probe.usage()
    wall = time.perf_counter() - started
    command = "python benchmarks/microcircuit_pal_fa.py " + shlex.join(sys.argv[1:])
    tab, summ, verd = table(results), summary(results), verdict(results)
    walls_text = ", ".join(f"{name} {w:.0f} s" for name, w in walls.items())
    print(tab)
    print(summ)
    print(verd)
    chip_text = ""
    if chip_runs:
        short = {name: first_epochs(res, chip_epochs) for name, res in results.items()}
        where = f"chip ({args.profile}, emulated)"
        rows = [(name, "host float64", res) for name, res in short.items()]
        rows += [(name, where + (", 10 % weight mismatch" if "mismatch" in name else ""), res)
                 for name, res in chip_runs.items()]  # fmt: skip
        ctab, cverd = chip_table(rows, chip_epochs), chip_verdict(short, chip_runs, chip_epochs)
        ccause = chip_cause(usage, short, chip_runs)
        chip_walls_text = ", ".join(f"{name} {w:.0f} s" for name, w in chip_walls.items())
        chip_text = "\n\n".join((ctab, cverd, ccause))
        print("\n" + chip_text)
    print(f"\ncommand: {command}; wall time {wall:.0f} s ({walls_text}"
          + (f"; chip: {chip_walls_text})" if chip_runs else ")"))  # fmt: skip
    if not args.write:
        return
    from neurodeploy.learning.tasks import get_task
    from neurodeploy.rules.systems import microcircuit_chip as chip

    opts = mc.Options(dt=args.dt, batch=args.batch).checked()
    n_train = len(get_task(args.task).y_train)
    sizes = "-".join(map(str, results["PAL"].config["sizes"]))
    setting = (f"{args.task}, microcircuit {sizes}, {args.seeds} seeds, {args.epochs} epochs; PAL, FA and frozen "
               "start from the same weights and see the data in the same order; test accuracy and ∠(B, Wᵀ) are "
               "mean ± std over seeds.")  # fmt: skip
    if chip_runs:
        rules = "\n".join(f"- {RULE_NAMES.get(n, n)}: `{r['rule']}` (learning epoch {r['t_epoch']} step, weight "
                          f"exponent {r['weight_exp']}, third-factor gain {r['third_factor_gain']})"
                          for n, r in chip_runs["PAL"].engine["rules"].items())  # fmt: skip
        chip_setting = (f"{args.task}, {args.seeds} seeds, {chip_epochs} epochs on the chip ({args.profile}, "
                        f"emulated), beside the float runs' first {chip_epochs} epochs (the same numbers as float "
                        f"runs of {chip_epochs} epochs: same seeds, same draws per epoch). The chip starts from the "
                        "float run's weights and sees the data in the same order; mismatch 0.1 spreads each initial "
                        "weight register by 10 % per synapse, one chip instance per seed (`emulator.mismatch`)."
                        )  # fmt: skip
    else:
        rules = chip_setting = ctab = cverd = ccause = chip_walls_text = "(not run: --chip-epochs 0)"
    deviation_list = deviations(opts, args, n_train)
    if chip_runs and chip_epochs < args.epochs:
        slower = (chip_walls["PAL"] / chip_epochs) / (walls["PAL"] / args.epochs)
        deviation_list.insert(2, f"the chip rows run {chip_epochs} epochs instead of {args.epochs}: the emulated chip "
                              f"takes {slower:.0f} times as long per epoch as the float network; they are compared "
                              f"with the float runs' first {chip_epochs} epochs ({PAPER['epochs']} epochs in the "
                              "paper)")  # fmt: skip
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(PROSE.format(
        equations="\n".join(f"- {e}" for e in mc.EQUATIONS), setting=setting, summary=summ, verdict=verd, table=tab,
        command=command, wall=wall, walls=walls_text, rules=rules, load=os.getloadavg()[2],
        differences="\n".join(f"- {d}" for d in chip.DIFFERENCES), chip_setting=chip_setting, chip_table=ctab,
        chip_verdict=cverd, chip_cause=ccause, chip_walls=chip_walls_text,
        deviations="\n".join(f"- {d}" for d in deviation_list),
    ))  # fmt: skip
    plot(results, chip_runs, chip_epochs)
    print(f"wrote {PAGE.relative_to(ROOT)} and {FIGURE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

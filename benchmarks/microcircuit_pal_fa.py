"""PAL against FA in the dendritic cortical microcircuit on Yin-Yang (Max et al. 2023): test accuracy per
epoch for both, and ∠(B, Wᵀ) per epoch, on the same network, seeds and data.

Both runs use the same microcircuit (4-30-3 sigmoid pyramids, interneurons, dendritic-prediction
plasticity); PAL learns B from OU noise on the hidden somas and the output's high-passed rate, FA keeps B
at its random start with no noise. ``--write`` stores docs/systems/microcircuit.md and
docs/img/microcircuit.png.

    .venv/bin/python benchmarks/microcircuit_pal_fa.py [--seeds 10] [--epochs 100] [--no-control] [--write]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.rules.systems import learn_system
from neurodeploy.rules.systems import microcircuit as mc

ROOT = Path(__file__).resolve().parent.parent
PAGE, FIGURE = ROOT / "docs" / "systems" / "microcircuit.md", ROOT / "docs" / "img" / "microcircuit.png"

# the published GeNN Yin-Yang config (unibe-cns/pal_microcircuits_genn), against which deviations are listed
PAPER = {"hidden": (30,), "dt": 0.01, "pattern_time": 1.0, "epochs": 400, "seeds": 10, "sigma": 0.01,
         "tau_xi": 0.1, "tau_hp": 0.1, "alpha": 1e-6, "lr_bw": 0.5, "batch": 1, "n_train": 6000}  # fmt: skip


def run(feedback: str, args: argparse.Namespace, log: bool) -> tuple[Any, float]:
    started = time.perf_counter()

    def progress(done: int, total: int, entry: dict[str, Any]) -> None:
        if log:
            acc, ang = np.mean(entry["test_accuracy"]), np.mean(entry["weight_angle"]["hidden"])
            print(f"  {feedback} epoch {done}/{total}: test {100 * acc:.1f} %, ∠(B, Wᵀ) {ang:.1f}°", flush=True)

    res = learn_system("microcircuit", args.task, seeds=args.seeds, epochs=args.epochs, progress=progress,
                       feedback=feedback, dt=args.dt, batch=args.batch)  # fmt: skip
    return res, time.perf_counter() - started


def series(res: Any, key: str) -> np.ndarray:
    """(epochs, seeds) of one per-seed series; ``weight_angle`` reads its hidden layer."""
    rows = [h[key]["hidden"] if key == "weight_angle" else h[key] for h in res.history]
    return np.asarray(rows, dtype=float)


def cell(values: np.ndarray) -> str:
    return f"{values.mean():.1f} ± {values.std():.1f}"


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


def last_epochs(res: Any) -> tuple[int, np.ndarray]:
    """The number of final epochs averaged, and each seed's mean test accuracy % over them."""
    k = min(5, len(res.history))
    return k, 100 * series(res, "test_accuracy")[-k:].mean(0)


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
hidden somas and the layer above's high-passed rate, always on, with no phases. FA, the control, keeps B
at its random start with no noise.

```python
from neurodeploy.rules.systems import learn_system

res = learn_system("microcircuit", seeds=2, epochs=3)  # PAL; feedback="fa" for the control
```

## Equations

{equations}

## Where it runs

Only on the host, in float64 (`variant="paper"`). The chip version of this system is not built yet:
`variant="chip"` raises an error that says so.

## Result

{setting}

![PAL and FA in the microcircuit](../img/microcircuit.png)

{summary}

**Published anchor:** Max et al. 2023 show PAL clearly above FA on Yin-Yang at 30 hidden units
(GeNN, 400 epochs, 10 seeds). They give this in a figure only; there is no number to compare with.

{verdict}

{table}

Command: `{command}` ({wall:.0f} s wall time on one core: {walls}).

## Deviations of the run from the paper

{deviations}
"""


def paired(better: Any, worse: Any) -> tuple[int, np.ndarray, float]:
    """Per-seed differences of the last epochs' mean test accuracy (the runs share each seed's start), and
    their standard error."""
    k, a = last_epochs(better)
    diff = a - last_epochs(worse)[1]
    sem = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("inf")
    return k, diff, sem


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
    if "control" in results:
        _, dc, sem_c = paired(results["PAL"], results["control"])
        text += (f" PAL minus the control (PAL's noise on, B fixed): {dc.mean():+.1f} ± {sem_c:.1f} points, PAL ahead "
                 f"in {int((dc > 0).sum())} of {n} seeds")  # fmt: skip
        text += ": the noise alone does not explain PAL's result." if dc.mean() > 2 * sem_c else "."
    return text


COLORS = {"PAL": "tab:blue", "FA": "tab:orange", "control": "tab:gray"}


def plot(results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, res in results.items():
        label = "control (noise, B fixed)" if name == "control" else name
        acc, ang = 100 * series(res, "test_accuracy"), series(res, "weight_angle")
        epochs = np.arange(1, len(acc) + 1)
        for ax, val in ((left, acc), (right, ang)):
            if ax is right and name == "control":
                continue  # B fixed: its angle is FA's up to the forward weights' drift
            ax.plot(epochs, val.mean(1), color=COLORS[name], label=label)
            ax.fill_between(epochs, val.mean(1) - val.std(1), val.mean(1) + val.std(1), color=COLORS[name], alpha=0.2)
    left.set(xlabel="epoch", ylabel="test accuracy %", title="Yin-Yang, microcircuit 4-30-3")
    right.set(xlabel="epoch", ylabel="∠(B, Wᵀ) °", title="feedback alignment of the hidden layer", ylim=(0, 95))
    left.legend()
    right.legend()
    fig.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--task", default="yinyang")
    ap.add_argument("--dt", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--no-control", action="store_true", help="skip PAL's control (noise on, B fixed)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    started = time.perf_counter()
    runs = {"PAL": "pal", "FA": "fa"} | ({} if args.no_control else {"control": "frozen"})
    results, walls = {}, {}
    for name, feedback in runs.items():
        results[name], walls[name] = run(feedback, args, not args.quiet)
    wall = time.perf_counter() - started
    command = "python benchmarks/microcircuit_pal_fa.py " + " ".join(sys.argv[1:])
    tab, summ, verd = table(results), summary(results), verdict(results)
    walls_text = ", ".join(f"{name} {w:.0f} s" for name, w in walls.items())
    print(tab)
    print(summ)
    print(verd)
    print(f"\ncommand: {command}; wall time {wall:.0f} s ({walls_text})")
    if not args.write:
        return
    from neurodeploy.learning.tasks import get_task

    opts = mc.Options(dt=args.dt, batch=args.batch).checked()
    n_train = len(get_task(args.task).y_train)
    sizes = "-".join(map(str, results["PAL"].config["sizes"]))
    setting = (f"{args.task}, microcircuit {sizes}, {args.seeds} seeds, {args.epochs} epochs; PAL, FA and the "
               "control (PAL's noise, B fixed) start from the same weights and see the data in the same order; "
               "test accuracy and ∠(B, Wᵀ) are mean ± std over seeds.")  # fmt: skip
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(PROSE.format(
        equations="\n".join(f"- {e}" for e in mc.EQUATIONS), setting=setting, summary=summ, verdict=verd, table=tab,
        command=command, wall=wall, walls=walls_text,
        deviations="\n".join(f"- {d}" for d in deviations(opts, args, n_train)),
    ))  # fmt: skip
    plot(results)
    print(f"wrote {PAGE.relative_to(ROOT)} and {FIGURE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

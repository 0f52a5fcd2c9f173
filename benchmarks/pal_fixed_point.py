"""Where PAL's feedback goes: ∠(B, Wᵀ), ∠(B, fixed point) and the fixed point's own angle to Wᵀ, per layer
and epoch, for PAL's paper variant on Yin-Yang, with each of its two decays.

With the paper's decay α B, PAL's B settles at E[φ'_l φ'_{l+1}ᵀ] ∘ W_{l+1}ᵀ (Max et al. 2023: the layer
above's Jacobian, its rows also scaled by the lower neurons' slopes). That equals Wᵀ only where all
neurons share one slope. As a network trains, its neurons spread over their non-linearity and the fixed
point turns away from Wᵀ: the least ∠(B, Wᵀ) PAL can reach (the "floor"). With the slope-weighted decay
α φ'_l ∘ B ∘ φ'_{l+1} (an option of the authors' released code), the same slopes multiply the decay and
cancel: the fixed point is Wᵀ and the floor is 0. This trains ``--seeds`` networks of ``--hidden`` layers
per decay and plots the three angles per feedback matrix, so a reader sees how much of ∠(B, Wᵀ) is PAL's
estimate and how much is the network. ``--write`` stores docs/img/pal-fixed-point.png and
docs/pal-fixed-point.md.

    .venv/bin/python benchmarks/pal_fixed_point.py [--hidden 30,30,30] [--epochs 30] [--seeds 3] [--write]
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from neurodeploy.studies.learning_grid import learning_cell
from neurodeploy.studies.study import run_study

ROOT = Path(__file__).resolve().parent.parent


REGULARIZERS = {"plain": "decay α B (the paper's)", "slope": "slope-weighted decay α φ'_l ∘ B ∘ φ'_{l+1}"}


def epoch_table(curves: list[dict], names: list[str]) -> str:
    head = "| epoch | accuracy % | " + " | ".join(f"{n}: ∠(B, Wᵀ) / ∠(B, fixed point) / floor" for n in names) + " |"
    lines = [head, "|" + "---|" * (len(names) + 2)]
    for c in curves:
        cols = [f"{c['weight_angle'][n]:.1f} / {c['fixed_point_angle'][n]:.1f} / {c['fixed_point_floor'][n]:.1f}"
                for n in names]  # fmt: skip
        lines.append(f"| {c['epoch']} | {100 * c['test_accuracy']:.1f} | " + " | ".join(cols) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", default="30,30,30")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--task", default="yinyang")
    ap.add_argument("--regularizers", default="plain,slope", help="PAL's decays to run: plain, slope or both")
    ap.add_argument("--store", type=Path, default=ROOT / "build" / "studies" / "pal-fixed-point")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    regs = [r.strip() for r in args.regularizers.split(",") if r.strip()]
    if not regs or any(r not in REGULARIZERS for r in regs):
        ap.error(f"--regularizers takes {', '.join(REGULARIZERS)}, comma separated")
    base = {"rule": "pal", "profile": "ideal", "seeds": args.seeds, "epochs": args.epochs, "task": args.task,
            "hidden": [int(h) for h in args.hidden.split(",")], "variant": "paper", "curves": True}  # fmt: skip
    # the plain cell keeps its earlier store key (no options)
    cells = [base if r == "plain" else {**base, "options": {"regularizer": r}} for r in regs]
    study = run_study(learning_cell, cells, store=args.store, cluster="serial", progress=True)
    if study.failed:
        raise SystemExit(study.summary())
    names = list(study.results[0]["weight_angle"])
    command = "python benchmarks/pal_fixed_point.py " + shlex.join(sys.argv[1:])
    sections, ends = [], []
    for reg, res, rec in zip(regs, study.results, study.cells, strict=True):
        curves, last = res["curves"], res["curves"][-1]

        def at_end(group: str, last: dict = last) -> str:
            return ", ".join(f"{n} {last[group][n]:.1f}°" for n in names)

        table = epoch_table(curves, names)
        print(f"\n{REGULARIZERS[reg]}\n{table}")
        ends.append(f"- {REGULARIZERS[reg]}: test accuracy {100 * last['test_accuracy']:.1f} %; ∠(B, Wᵀ) "
                    f"{at_end('weight_angle')}; ∠(B, fixed point) {at_end('fixed_point_angle')}; floor "
                    f"{at_end('fixed_point_floor')}.")  # fmt: skip
        sections.append(f"## {REGULARIZERS[reg]}\n\nWall time {rec['wall_s']:.0f} s.\n\n{table}\n")
    print(f"\n{study.summary()}; command: {command}")
    if args.write:
        write_page(args, regs, study.results, names, ends, sections, command)


def write_page(args: argparse.Namespace, regs: list[str], results: list[dict], names: list[str],
               ends: list[str], sections: list[str], command: str) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(regs), len(names), figsize=(3.4 * len(names), 3.0 * len(regs)), sharey=True,
                             squeeze=False)  # fmt: skip
    for row, reg, res in zip(axes, regs, results, strict=True):
        curves = res["curves"]
        ep = [c["epoch"] for c in curves]
        for ax, n in zip(row, names, strict=True):
            ax.plot(ep, [c["weight_angle"][n] for c in curves], label="∠(B, Wᵀ)")
            ax.plot(ep, [c["fixed_point_angle"][n] for c in curves], label="∠(B, fixed point)")
            ax.plot(ep, [c["fixed_point_floor"][n] for c in curves], "--", label="floor: ∠(fixed point, Wᵀ)")
            ax.set_title(f"{n}, {reg} decay", fontsize=9)
            ax.set_xlabel("epoch")
        row[0].set_ylabel("degrees")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "img" / "pal-fixed-point.png", dpi=120, metadata={"Software": None})
    (ROOT / "docs" / "pal-fixed-point.md").write_text(
        "# Where PAL's feedback settles\n\n"
        f"PAL's paper variant, {args.task}, hidden layers {args.hidden}, {args.seeds} seeds, {args.epochs} "
        "epochs; angles are means over seeds.\n\n"
        "- With the paper's decay α B, B settles at E[φ'_l φ'_{l+1}ᵀ] ∘ Wᵀ: the layer above's Jacobian, each "
        "row also scaled by the lower neuron's own slope, since the voltage noise reaches the layer above "
        "through both neurons' slopes. The floor, ∠(fixed point, Wᵀ), is set by how far the trained "
        "network's neurons spread over their non-linearity, and bounds ∠(B, Wᵀ) from below.\n"
        "- With the slope-weighted decay α φ'_l ∘ B ∘ φ'_{l+1}, an option of the authors' released code "
        "(kma-code/Phaseless-Alignment-Learning), the decay carries the same two slopes as the noise "
        "correlation, pattern by pattern, and they cancel entry by entry: the fixed point is (σ²/α) Wᵀ and "
        "the floor is 0. Both slopes are the synapse's own pre and post neurons', so the rule stays local.\n\n"
        "∠(B, fixed point) says how well PAL estimates its fixed point. Under the slope-weighted decay the "
        "fixed point is Wᵀ, so its two angle curves lie on top of each other.\n\n"
        "![PAL's angles per layer, one row per decay](img/pal-fixed-point.png)\n\n"
        "At the last epoch:\n\n"
        + "\n".join(ends)
        + "\n\n"
        + "\n".join(sections)
        + f"\nProduced by:\n\n```\n{command}\n```\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()

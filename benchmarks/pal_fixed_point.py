"""Where PAL's feedback goes: ∠(B, Wᵀ), ∠(B, fixed point) and the fixed point's own angle to Wᵀ, per layer
and epoch, for PAL's paper variant on Yin-Yang.

PAL's B settles at E[φ'_l φ'_{l+1}ᵀ] ∘ W_{l+1}ᵀ (Max et al. 2023: the layer above's Jacobian, its rows also
scaled by the lower neurons' slopes). That stationary value is what PAL aims at, and it equals Wᵀ only
where all neurons share one slope. As a network trains, its neurons spread over their non-linearity and
the fixed point turns away from Wᵀ: the least ∠(B, Wᵀ) PAL can reach (the "floor"). This trains
``--seeds`` networks of ``--hidden`` layers and plots the three angles per feedback matrix, so a reader
sees how much of ∠(B, Wᵀ) is PAL's estimate and how much is the network. ``--write`` stores
docs/img/pal-fixed-point.png and docs/pal-fixed-point.md.

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", default="30,30,30")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--task", default="yinyang")
    ap.add_argument("--store", type=Path, default=ROOT / "build" / "studies" / "pal-fixed-point")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    cell = {"rule": "pal", "profile": "ideal", "seeds": args.seeds, "epochs": args.epochs, "task": args.task,
            "hidden": [int(h) for h in args.hidden.split(",")], "variant": "paper", "curves": True}  # fmt: skip
    study = run_study(learning_cell, [cell], store=args.store, cluster="serial", progress=True)
    if study.failed:
        raise SystemExit(study.summary())
    res = study.results[0]
    curves = res["curves"]
    names = list(res["weight_angle"])
    head = "| epoch | accuracy % | " + " | ".join(f"{n}: ∠(B, Wᵀ) / ∠(B, fixed point) / floor" for n in names) + " |"
    lines = [head, "|" + "---|" * (len(names) + 2)]
    for c in curves:
        cols = [f"{c['weight_angle'][n]:.1f} / {c['fixed_point_angle'][n]:.1f} / {c['fixed_point_floor'][n]:.1f}"
                for n in names]  # fmt: skip
        lines.append(f"| {c['epoch']} | {100 * c['test_accuracy']:.1f} | " + " | ".join(cols) + " |")
    table = "\n".join(lines)
    command = "python benchmarks/pal_fixed_point.py " + shlex.join(sys.argv[1:])
    wall = study.cells[0]["wall_s"]
    print(table)
    print(f"\n{study.summary()}; {wall:.0f} s; command: {command}")
    if args.write:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 3.2), sharey=True, squeeze=False)
        ep = [c["epoch"] for c in curves]
        for ax, n in zip(axes[0], names, strict=True):
            ax.plot(ep, [c["weight_angle"][n] for c in curves], label="∠(B, Wᵀ)")
            ax.plot(ep, [c["fixed_point_angle"][n] for c in curves], label="∠(B, fixed point)")
            ax.plot(ep, [c["fixed_point_floor"][n] for c in curves], "--", label="floor: ∠(fixed point, Wᵀ)")
            ax.set_title(n)
            ax.set_xlabel("epoch")
        axes[0][0].set_ylabel("degrees")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(ROOT / "docs" / "img" / "pal-fixed-point.png", dpi=120, metadata={"Software": None})
        last = curves[-1]

        def at_end(group: str) -> str:
            return ", ".join(f"{n} {last[group][n]:.1f}°" for n in names)

        (ROOT / "docs" / "pal-fixed-point.md").write_text(
            "# Where PAL's feedback settles\n\n"
            f"PAL's paper variant, {args.task}, hidden layers {args.hidden}, {args.seeds} seeds, {args.epochs} "
            "epochs; angles are means over seeds. PAL's B settles at E[φ'_l φ'_{l+1}ᵀ] ∘ Wᵀ (the layer above's "
            "Jacobian with each row scaled by the lower neuron's own slope). ∠(B, fixed point) says how well PAL "
            "estimates it; the floor, ∠(fixed point, Wᵀ), is set by how far the trained network's neurons spread "
            "over their non-linearity, and bounds ∠(B, Wᵀ) from below.\n\n"
            "![PAL's angles per layer](img/pal-fixed-point.png)\n\n"
            f"At the last epoch: ∠(B, Wᵀ) {at_end('weight_angle')}; ∠(B, fixed point) "
            f"{at_end('fixed_point_angle')}; floor {at_end('fixed_point_floor')}.\n\n"
            f"{table}\n\nWall time {wall:.0f} s. Produced by:\n\n```\n{command}\n```\n",
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()

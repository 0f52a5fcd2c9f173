"""Feedback alignment with and without L2 weight decay on a wide two-layer network: ∠(B, Wᵀ) per epoch.

Song, Xu and Lafferty (NeurIPS 2021) show that in over-parameterised two-layer networks trained under
squared error, feedback alignment with fixed random B need not align W with B (the angle can stay
large), while L2 regularisation of the forward weights drives ∠(W, Bᵀ) down. This runs FA on a
4-``--width``-3 spiking network on Yin-Yang (the output error is rate minus one-hot target, a squared
error on rates) with ``--decays`` per weight move, ``--seeds`` chips each, on ``--profile``, as a study
(``--cluster``, default local processes). It prints the angle and the test accuracy per epoch, and with
``--write`` stores the figure as docs/img/fa-l2-alignment.png and the table as docs/fa-l2-alignment.md.

    .venv/bin/python benchmarks/fa_l2_alignment.py [--width 256] [--epochs 20] [--seeds 3] \
        [--decays 0,0.001,0.005] [--profile ideal] [--write]
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
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--decays", default="0,0.001,0.005")
    ap.add_argument("--profile", default="ideal")
    ap.add_argument("--cluster", default=None)
    ap.add_argument("--store", type=Path, default=ROOT / "build" / "studies" / "fa-l2-alignment")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    decays = [float(d) for d in args.decays.split(",")]
    base = {"rule": "fa", "profile": args.profile, "seeds": args.seeds, "epochs": args.epochs, "hidden": [args.width]}
    grid = [{**base, "options": {"decay": d} if d else None, "curves": True} for d in decays]
    study = run_study(learning_cell, grid, store=args.store, cluster=args.cluster, progress=True)
    if study.failed:
        raise SystemExit(study.summary())
    command = "python benchmarks/fa_l2_alignment.py " + shlex.join(sys.argv[1:])
    head = "| epoch | " + " | ".join(f"decay {d:g}: ∠(B, Wᵀ), accuracy" for d in decays) + " |"
    lines = [head, "|" + "---|" * (len(decays) + 1)]
    curves = [r["curves"] for r in study.results]
    for k in range(args.epochs):
        cells = [f"{c[k]['weight_angle']['B1']:.1f}°, {100 * c[k]['test_accuracy']:.1f} %" for c in curves]
        lines.append(f"| {k + 1} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    print(f"\n{study.summary()}; command: {command}")
    if args.write:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        for d, c in zip(decays, curves, strict=True):
            ax.plot([e["epoch"] for e in c], [e["weight_angle"]["B1"] for e in c], label=f"decay {d:g}")
        ax.axhline(90, color="grey", lw=0.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel("∠(B, Wᵀ) [°]")
        ax.set_title(f"FA, 4-{args.width}-3 on {args.profile}, mean over {args.seeds} seeds")
        ax.legend()
        fig.tight_layout()
        fig.savefig(ROOT / "docs" / "img" / "fa-l2-alignment.png", dpi=120, metadata={"Software": None})
        (ROOT / "docs" / "fa-l2-alignment.md").write_text(
            "# Feedback alignment and L2 regularisation\n\n"
            "Song, Xu and Lafferty (NeurIPS 2021): in over-parameterised two-layer networks, feedback alignment "
            "aligns W with the fixed feedback B only with L2 regularisation of the forward weights. Here FA trains "
            f"a 4-{args.width}-3 spiking network on Yin-Yang (squared error on output rates) on `{args.profile}`, "
            f"with weight decay per weight move (`--decay`), mean over {args.seeds} seeds.\n\n"
            "![angle per epoch](img/fa-l2-alignment.png)\n\n"
            f"{table}\n\nProduced by `{command}`.\n",
            encoding="utf-8",
        )
        print("wrote docs/fa-l2-alignment.md and docs/img/fa-l2-alignment.png")


if __name__ == "__main__":
    main()

"""Can the paper's PAL reach Wᵀ on a deep network? ∠(B, Wᵀ) and its floor across training settings.

With the paper's decay α B, PAL's B settles at E[φ'_l φ'_{l+1}ᵀ] ∘ Wᵀ, whose angle to Wᵀ (the floor) grows
as the neurons spread over their non-linearity. This trains PAL's paper variant on Yin-Yang with 3 hidden
layers under settings that change how the neurons spread (activation, optimiser, rate, weight decay on W),
then with the slope-weighted decay α φ'_l ∘ B ∘ φ'_{l+1}, whose fixed point is Wᵀ. A row gives the test
accuracy, ∠(B, Wᵀ) and the floor per layer at the last epoch, so a reader sees whether any setting of the
paper's decay trains the network well and ends under a given angle. ``--write`` stores
docs/pal-floor-sweep.md.

    .venv/bin/python benchmarks/pal_floor_sweep.py [--seeds 3] [--epochs 30] [--workers 2] [--write]
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from neurodeploy.studies.learning_grid import learning_cell
from neurodeploy.studies.study import run_study

ROOT = Path(__file__).resolve().parent.parent
# (label, PaperConfig and PALOptions settings); the first is the paper variant's default
SETTINGS: list[tuple[str, dict]] = [
    ("tanh, SGD η 0.1 (default)", {}),
    ("tanh, SGD η 0.03", {"lr": 0.03}),
    ("tanh, SGD, L2 on W 1e-3", {"decay": 1e-3}),
    ("tanh, Adam η 0.003", {"optimizer": "adam", "lr": 0.003}),
    ("sigmoid, SGD η 0.5", {"activation": "sigmoid", "lr": 0.5}),
    ("sigmoid, Adam η 0.01", {"activation": "sigmoid", "optimizer": "adam", "lr": 0.01}),
    ("ReLU, SGD η 0.03", {"activation": "relu", "lr": 0.03}),
    ("tanh, SGD η 0.1, slope-weighted decay", {"regularizer": "slope"}),
    ("tanh, Adam η 0.003, slope-weighted decay", {"regularizer": "slope", "optimizer": "adam", "lr": 0.003}),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--hidden", default="30,30,30")
    ap.add_argument("--workers", type=int, default=None, help="local worker processes (default: one per core)")
    ap.add_argument("--store", type=Path, default=ROOT / "build" / "studies" / "pal-floor-sweep")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    hidden = [int(h) for h in args.hidden.split(",")]
    cells = [{"rule": "pal", "profile": "ideal", "variant": "paper", "task": "yinyang", "seeds": args.seeds,
              "epochs": args.epochs, "hidden": hidden, **({"options": opts} if opts else {})}
             for _, opts in SETTINGS]  # fmt: skip
    study = run_study(learning_cell, cells, store=args.store, workers=args.workers, progress=True)
    if study.failed:
        raise SystemExit(study.summary())
    names = [f"B{k + 1}" for k in range(len(hidden))]
    lines = ["| setting | test % | ∠(B, Wᵀ) | floor | wall |", "|---|---|---|---|---|"]
    for (label, _), res, rec in zip(SETTINGS, study.results, study.cells, strict=True):
        acc = res["accuracy"]

        def per_layer(group: str, res: dict = res) -> str:
            return "/".join(f"{res[group][n]['mean']:.0f}" for n in names) + "°"

        lines.append(f"| {label} | {100 * acc['mean']:.1f} ± {100 * acc['std']:.1f} | {per_layer('weight_angle')} | "
                     f"{per_layer('fixed_point_floor')} | {rec['wall_s']:.0f} s |")  # fmt: skip
    table = "\n".join(lines)
    command = "python benchmarks/pal_floor_sweep.py " + shlex.join(sys.argv[1:])
    print(table)
    print(f"\n{study.summary()}; command: {command}")
    if args.write:
        (ROOT / "docs" / "pal-floor-sweep.md").write_text(
            "# PAL's floor across training settings\n\n"
            f"PAL's paper variant on Yin-Yang, hidden layers {args.hidden}, {args.seeds} seeds, {args.epochs} "
            "epochs: test accuracy (mean ± std over seeds) and, per feedback matrix bottom first, ∠(B, Wᵀ) and "
            "the floor ∠(fixed point, Wᵀ) at the last epoch (means over seeds). The first seven rows use the "
            "paper's decay α B, whose fixed point E[φ'_l φ'_{l+1}ᵀ] ∘ Wᵀ moves away from Wᵀ as the neurons "
            "spread over their non-linearity; the last two use the slope-weighted decay, whose fixed point is "
            "Wᵀ (floor 0). See [where PAL's feedback settles](pal-fixed-point.md).\n\n"
            f"{table}\n\nProduced by:\n\n```\n{command}\n```\n",
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()

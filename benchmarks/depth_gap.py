"""The gap to backprop per depth: rules × 1, 2, 3 hidden layers on tasks where depth matters.

Kunin et al. (ICML 2020) and the FA literature report that feedback alignment falls further behind
backprop as networks deepen, while rules that learn their feedback (KP, weight mirrors, PAL) stay close.
This trains every ``--rules`` entry at every ``--depths`` on every ``--tasks`` entry (``--width`` neurons
per hidden layer, ``--seeds`` networks each) as a study (``--cluster``, default local processes; finished
cells are kept under ``--store``, so a rerun resumes). It prints, per task, the score per rule and depth
with its gap to BP: accuracy points below BP for classification, and the ratio of test MSE to BP's for
regression. With ``--write`` the figure goes to docs/img/depth-gap.png and the tables to docs/depth-gap.md.

``--variant paper`` (default) runs the published equations in float; ``--variant chip --profile loihi2``
runs the chip adaptation on the profile's engine.

    .venv/bin/python benchmarks/depth_gap.py [--tasks yinyang,deep-teacher] [--rules bp,fa,dfa,kp,wm,pal] \
        [--depths 1,2,3] [--width 30] [--epochs 20] [--seeds 5] [--variant paper] [--write]
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

from neurodeploy.studies.learning_grid import learning_cell
from neurodeploy.studies.study import run_study

ROOT = Path(__file__).resolve().parent.parent


def gap(cell: dict, bp: dict) -> float:
    """Accuracy points below BP, or test MSE as a multiple of BP's."""
    a, b = cell["accuracy"]["mean"], bp["accuracy"]["mean"]
    return 100.0 * (b - a) if cell["score"] == "test_accuracy" else a / b


def task_table(cells: dict, rules: list[str], depths: list[int]) -> str:
    classify = next(iter(cells.values()))["score"] == "test_accuracy"
    unit = "accuracy %; gap: points below BP" if classify else "test MSE ×1000; gap: MSE / BP's"
    lines = [f"| rule ({unit}) | " + " | ".join(f"{d} hidden" for d in depths) + " |", "|---|" + "---|" * len(depths)]
    for r in rules:
        row = []
        for d in depths:
            c, bp = cells.get((r, d)), cells.get(("bp", d))
            if c is None:
                row.append("failed")
                continue
            scale = 100.0 if classify else 1000.0
            text = f"{scale * c['accuracy']['mean']:.1f} ± {scale * c['accuracy']['std']:.1f}"
            if bp is not None and r != "bp":
                g = gap(c, bp)
                text += f"; gap {g:+.1f}" if classify else f"; gap ×{g:.2f}"
            angles = c["weight_angle"]
            if angles:
                text += " (∠B " + "/".join(f"{a['mean']:.0f}" for a in angles.values()) + "°)"
            row.append(text)
        lines.append(f"| {r} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="yinyang,deep-teacher")
    ap.add_argument("--rules", default="bp,fa,dfa,kp,wm,pal")
    ap.add_argument("--depths", default="1,2,3")
    ap.add_argument("--width", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--variant", default="paper", choices=("paper", "chip"))
    ap.add_argument("--profile", default="loihi2", help="the chip variant's profile")
    ap.add_argument("--cluster", default=None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--store", type=Path, default=ROOT / "build" / "studies" / "depth-gap")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    tasks = [t for t in args.tasks.split(",") if t]
    rules = [r for r in args.rules.split(",") if r]
    if "bp" not in rules:
        ap.error("--rules must include bp, the reference every gap is measured against")
    depths = [int(d) for d in args.depths.split(",") if d]
    profile = "ideal" if args.variant == "paper" else args.profile
    cells = [{"rule": r, "profile": profile, "seeds": args.seeds, "epochs": args.epochs, "task": t,
              "hidden": [args.width] * d, "variant": args.variant}
             for t in tasks for d in sorted(depths, reverse=True) for r in rules]  # fmt: skip

    def show(state) -> None:  # noqa: ANN001
        print(f"  {state.line()}", file=sys.stderr, flush=True)

    study = run_study(learning_cell, cells, store=args.store, cluster=args.cluster, workers=args.workers,
                      progress=show)  # fmt: skip
    command = "python benchmarks/depth_gap.py " + shlex.join(sys.argv[1:])
    by_task: dict[str, dict] = {t: {} for t in tasks}
    walls: dict[str, list[float]] = {t: [] for t in tasks}
    for params, res, rec in zip(cells, study.results, study.cells, strict=True):
        if res is not None:
            by_task[params["task"]][(params["rule"], len(params["hidden"]))] = res
            walls[params["task"]].append(rec["wall_s"])
    texts = []
    for t in tasks:
        if not by_task[t]:
            continue
        mean_wall = float(np.mean(walls[t])) if walls[t] else 0.0
        texts.append(f"### {t}\n\n{task_table(by_task[t], rules, depths)}\n\nmean wall time per cell "
                     f"({args.seeds} networks): {mean_wall:.0f} s")  # fmt: skip
    print("\n\n".join(texts))
    print(f"\n{study.summary()}; command: {command}")
    if study.failed:
        for c in study.failed:
            print(f"failed: {c['params']}: {c['error']}", file=sys.stderr)
        raise SystemExit(1)
    if args.write:
        write_docs(by_task, rules, depths, texts, command, args)


def write_docs(by_task: dict, rules: list[str], depths: list[int], texts: list[str], command: str,
               args: argparse.Namespace) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in by_task if by_task[t]]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
    for ax, t in zip(axes[0], tasks, strict=True):
        cells = by_task[t]
        classify = next(iter(cells.values()))["score"] == "test_accuracy"
        for r in rules:
            if r == "bp":
                continue
            ys = [gap(cells[(r, d)], cells[("bp", d)]) if (r, d) in cells and ("bp", d) in cells else np.nan
                  for d in depths]  # fmt: skip
            ax.plot(depths, ys, marker="o", label=r)
        ax.axhline(0.0 if classify else 1.0, color="grey", lw=0.8)
        ax.set_xticks(depths)
        ax.set_xlabel("hidden layers")
        ax.set_ylabel("accuracy points below BP" if classify else "test MSE / BP's")
        ax.set_title(t)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "img" / "depth-gap.png", dpi=120, metadata={"Software": None})
    what = (
        "the published equations in float (variant paper, profile ideal)"
        if args.variant == "paper"
        else (f"the chip variant on {args.profile}")
    )
    body = "\n\n".join(texts)
    (ROOT / "docs" / "depth-gap.md").write_text(
        "# The gap to backprop per depth\n\n"
        f"Every rule trains networks of 1, 2 and 3 hidden layers of {args.width} neurons with {what}, "
        f"{args.seeds} seeds, {args.epochs} epochs; mean ± std over seeds, with each rule's gap to BP at the "
        "same depth and the final ∠(B, Wᵀ) per feedback matrix, bottom first.\n\n"
        "![gap to BP per depth](img/depth-gap.png)\n\n"
        f"{body}\n\nProduced by:\n\n```\n{command}\n```\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()

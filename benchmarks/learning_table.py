"""Rules × {float, fixed point on loihi2, fixed point + 10 % mismatch}, mean ± std over seeds.

Every cell is one ``neurodeploy.learn`` call training ``--seeds`` chips at once (4-64-3 spiking
network on Yin-Yang, 40 epochs by default; ``eprop`` trains a recurrent 4-64-3 network). The float
column runs on the ``ideal`` profile; the fixed-point columns run the loihi2 learning engine (8-bit
weights, 7-bit traces, stochastic rounding). ``frozen`` (only the output layer learns) is the baseline
each rule's gain is measured against; ``bp`` is the float reference.

The table is a study (``neurodeploy.studies``): cells run on ``--cluster`` (default: local worker
processes), each finished cell is kept under ``--store``, and a rerun skips finished cells, so an
interrupted table resumes. The table is assembled from the store. With ``--write`` it is stored as
``docs/learning-table.md`` together with the command that produced it. The default store,
``benchmarks/results/learning-table-TASK``, is part of the repository: a full table (3 tasks × 3 depths ×
4 conditions × 7 rules) is many hours of CPU, so its finished cells (about 1 kB each) are committed and
a later run, on any machine, trains only the cells still missing.

    .venv/bin/python benchmarks/learning_table.py [--epochs 40] [--seeds 5] [--rules bp,fa,kp] \
        [--conditions loihi2] [--cluster local|serial|tcp://host:port|slurm] [--write]
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from neurodeploy.studies.learning_grid import CONDITIONS, RULES, gap_table, grid, learning_cell, table
from neurodeploy.studies.study import run_study

TITLES = {
    "yinyang": "Yin-Yang (5000 / 1000 / 1000)",
    "digits": "scikit-learn digits (1297 / 250 / 250)",
    "deep-teacher": "Deep teacher-student regression",
}
SHAPES = {"yinyang": "4-64-3", "digits": "64-64-10"}
ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--task", default="yinyang")
    ap.add_argument("--rules", default=",".join(RULES))
    columns = ", ".join(CONDITIONS).replace("%", "%%")  # argparse formats help with %
    ap.add_argument("--conditions", default=",".join(CONDITIONS), help=f"columns: {columns}")
    ap.add_argument("--depths", default="1", help="hidden layers per network, comma separated, e.g. 1,2,3")
    ap.add_argument("--width", type=int, default=64, help="neurons per hidden layer")
    ap.add_argument("--cluster", default=None, help="serial, local (default), tcp://host:port or slurm")
    ap.add_argument("--cluster-config", type=Path, default=None, help="the [slurm] options for --cluster slurm")
    ap.add_argument("--workers", type=int, default=None, help="local worker processes (default: one per core)")
    ap.add_argument("--store", type=Path, default=None,
                    help="folder of finished cells (default benchmarks/results/learning-table-TASK)")  # fmt: skip
    ap.add_argument("--write", action="store_true", help="store the table as docs/learning-table.md")
    ap.add_argument("--from-store", action="store_true",
                    help="assemble the table from the store's finished cells; run nothing (missing: –)")  # fmt: skip
    ap.add_argument("--out", default=None, help="the docs file --write stores (default learning-table[-TASK].md)")
    args = ap.parse_args()
    rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        ap.error(f"unknown condition {unknown[0]!r}; choose from {', '.join(CONDITIONS)}")
    depths = [int(d) for d in args.depths.split(",") if d.strip()]
    cells = grid(rules, conditions, args.seeds, args.epochs, args.task, depths=depths, width=args.width)
    store = args.store or ROOT / "benchmarks" / "results" / f"learning-table-{args.task}"

    def show(state) -> None:  # noqa: ANN001
        if state.dashboard and state.done == state.reused:
            print(f"Dask dashboard: {state.dashboard}", flush=True)
        print(f"  {state.line()}", file=sys.stderr, flush=True)

    if args.from_store:
        study = stored_study(cells, store)
    else:
        study = run_study(learning_cell, cells, store=store, cluster=args.cluster, workers=args.workers,
                          cluster_config=args.cluster_config, progress=show)  # fmt: skip
    results = study.results
    text = table(results, conditions, walls=[c["wall_s"] for c in study.cells])
    command = "python benchmarks/learning_table.py " + shlex.join(sys.argv[1:])
    print(f"{args.task} test accuracy %, mean ± std over {args.seeds} seeds, {args.epochs} epochs; final ∠(B, Wᵀ)")
    print("(or ∠(δ, δ_BP) for rules without a feedback matrix) in brackets.\n")
    print(text)
    print(f"\n{study.summary()}; wall {study.wall_s:.0f} s; store {store}; command: {command}")
    if study.failed:
        for c in study.failed:
            print(f"failed: {c['params']}: {c['error']}", file=sys.stderr)
        raise SystemExit(1)
    if args.write:
        name = args.out or ("learning-table.md" if args.task == "yinyang" else f"learning-table-{args.task}.md")
        shape = (
            SHAPES.get(args.task, "") + " network"
            if (depths, args.width) == ([1], 64)
            else (f"network of {' or '.join(str(d) for d in depths)} hidden layers of {args.width}")
        )
        paper = (
            " Paper columns run the rule's published equations in float (variant paper; the network is a "
            "tanh rate network of the same shape), the others the chip variant."
            if any(c.startswith("paper") for c in conditions)
            else ""
        )
        done = [c["wall_s"] for c, r in zip(study.cells, results, strict=True) if r is not None]
        cell_s = float(np.mean(done)) if done else 0.0
        how = (
            f"assembled from the store's finished cells ({len(done)} of {len(cells)}; – marks a cell not run); "
            "the same command without --from-store trains the missing cells"
            if args.from_store
            else f"{len(cells)} cells, {study.ran} run now, {study.reused} from the store"
        )
        rows = (
            " Row pal-slope is PAL's paper variant with the decay weighted by both neurons' slopes, "
            "α φ'_l ∘ B ∘ φ'_{l+1}, an option of the authors' released code whose fixed point is Wᵀ (row pal: the "
            "paper's decay α B, which settles at the slope-scaled Jacobian; see "
            "[where PAL's feedback settles](pal-fixed-point.md))."
            if "pal-slope" in rules
            else ""
        )
        scores = {r.get("score", "test_accuracy") for r in results if r is not None}
        regression = "test MSE × 1000 (lower is better; the gain is the fall of the MSE below the baseline's)"
        metric = "test accuracy in %" if scores <= {"test_accuracy"} else regression
        gap_rows = gap_table(results, conditions)
        gaps = (
            f"Gap to BP per depth ({' / '.join(f'{d} hidden' for d in depths)}): BP's mean minus the rule's, in "
            "points of accuracy; for a regression, the rule's MSE × 1000 minus BP's.\n\n" + gap_rows + "\n\n"
            if gap_rows
            else ""
        )
        where = "on chip" if any(not c.startswith("paper") for c in conditions) else "as their papers define them"
        (ROOT / "docs" / name).write_text(
            f"# Learning rules {where}: {TITLES.get(args.task, args.task)}\n\n"
            f"{TITLES.get(args.task, args.task)}, {shape}, {args.epochs} epochs, "
            f"{metric}, "
            f"mean ± std over {args.seeds} seeds. In brackets: the final weight alignment angle ∠(B, Wᵀ), or "
            "for rules without a feedback matrix the signal alignment angle ∠(δ, δ_BP), per hidden layer, "
            "bottom first. After the semicolon: the gain over the frozen-hidden baseline in points and Welch's "
            "t-test p over the seeds; "
            f"after the dot, the cell's wall time.{paper}{rows}\n\n"
            f"{text}\n\n{gaps}Produced by `{command}` ({how}; {cell_s:.0f} s per cell on average).\n",
            encoding="utf-8",
        )
        print(f"wrote docs/{name}")


def stored_study(cells: list[dict], store: Path) -> SimpleNamespace:
    """The finished cells of ``cells`` in ``store`` (None where a cell has not run), shaped like a study."""
    from neurodeploy.studies.store import ResultStore, cell_key
    from neurodeploy.studies.study import function_name

    kept = ResultStore(store)
    records = [kept.get(cell_key(function_name(learning_cell), c)) for c in cells]
    found = [r for r in records if r is not None]
    return SimpleNamespace(
        results=[r["result"] if r else None for r in records],
        cells=[{"wall_s": r["wall_s"] if r else 0.0} for r in records],
        failed=[], ran=0, reused=len(found), wall_s=0.0,
        summary=lambda: f"{len(found)} of {len(cells)} cells from the store {store}, nothing run",
    )  # fmt: skip


if __name__ == "__main__":
    main()

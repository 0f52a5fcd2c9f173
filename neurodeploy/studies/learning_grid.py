"""Learning tables as studies: rules × conditions (profile, mismatch), each cell one ``learn`` call.

A cell trains ``seeds`` chips at once and returns the final test accuracy and alignment angles with
their spread over seeds. The table is assembled from the cells' records alone, so a study rerun from
its store prints the same table without training anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError
from neurodeploy.studies.chip_learning import default_lr

RULES = ["bp", "frozen", "fa", "dfa", "drtp", "sign", "kp", "wm", "ia", "pal", "pal-slope", "sal", "eprop"]
# rows that run a rule's paper variant with other settings than its defaults (paper conditions only):
# PAL with the decay weighted by both neurons' slopes, α φ'_l ∘ B ∘ φ'_{l+1}, an option of the authors'
# released code whose fixed point is Wᵀ itself (the default α B settles at the slope-scaled Jacobian)
PAPER_ROWS: dict[str, tuple[str, dict[str, Any]]] = {"pal-slope": ("pal", {"regularizer": "slope"})}
CONDITIONS = {"float": ("ideal", 0.0), "loihi2": ("loihi2", 0.0), "loihi2 + 10 % mismatch": ("loihi2", 0.1),
              "paper": ("ideal", 0.0), "paper + 10 % mismatch": ("ideal", 0.1)}  # fmt: skip
PAPER_CONDITIONS = ("paper", "paper + 10 % mismatch")  # the published equations in float (variant="paper")
SLOW_RULES = ("pal", "pal-slope", "sal", "wm", "ia")  # listed first, so the longest cells start first


def learning_cell(
    rule: str,
    profile: str = "loihi2",
    mismatch: float = 0.0,
    seeds: int = 5,
    epochs: int = 40,
    task: str = "yinyang",
    data: Sequence[np.ndarray] | None = None,
    hidden: Sequence[int] = (64,),
    seed: int = 0,
    options: Mapping[str, float] | None = None,
    curves: bool = False,
    variant: str = "chip",
) -> dict[str, Any]:
    """One ``learn`` run: final accuracy (or MSE) and angles, mean ± std over seeds, as plain JSON.

    Only what the parameters determine: the wall time is in the study's record, not in the result. With
    ``curves``, also the per-epoch test score and mean angles (over seeds) of every feedback projection."""
    from neurodeploy.api_learn import learn

    source: Any = task if data is None else tuple(np.asarray(a) for a in data)
    name, settings = PAPER_ROWS.get(rule, (rule, {}))
    if settings and variant != "paper":
        raise NeurodeployError(f"the row {rule!r} is a paper variant only", "variant", 'use variant="paper"')
    settings = {**settings, **dict(options or {})}
    result = learn(name, None if variant == "paper" else profile, source, hidden=list(hidden), mismatch=mismatch,
                   seeds=seeds, epochs=epochs, seed=seed, variant=variant, **settings)  # fmt: skip
    fin = result.final
    score = "test_accuracy" if "test_accuracy" in fin else "test_mse"
    out: dict[str, Any] = {
        "rule": rule,
        "depth": len(tuple(hidden)),
        "profile": profile,
        "variant": variant,
        "mismatch": float(mismatch),
        "score": score,
        "accuracy": fin[score],
        "weight_angle": fin.get("weight_angle", {}),
        "signal_angle": fin.get("signal_angle", {}),
        # PAL's paper variant: B's angle to its own fixed point, and the fixed point's to Wᵀ
        **{k: fin[k] for k in ("fixed_point_angle", "fixed_point_floor") if k in fin},
    }
    if curves:

        def means(h: Mapping[str, Any], group: str) -> dict[str, float]:
            return {k: float(np.mean(v)) for k, v in (h.get(group) or {}).items()}

        extra = ("fixed_point_angle", "fixed_point_floor")  # PAL's paper variant only
        out["curves"] = [
            {"epoch": h["epoch"], score: float(np.mean(h[score])), "weight_angle": means(h, "weight_angle"),
             **{g: means(h, g) for g in extra if g in h}}
            for h in result.history
        ]  # fmt: skip
    return out


def active_steps(depth: int, steps: int = 32, default: int = 24) -> int:
    """Input steps of a presentation that leave room for ``depth`` hidden layers to relay δ down (the same
    for every rule of a row, so the rules of one depth see the same input)."""
    return min(default, steps - 2 * (depth + 1) - 1)


def grid(
    rules: Sequence[str],
    conditions: Sequence[str],
    seeds: int,
    epochs: int,
    task: str = "yinyang",
    depths: Sequence[int] = (1,),
    width: int = 64,
    **extra: Any,
) -> list[dict[str, Any]]:
    """The cells of a table: every rule at every depth (hidden layers of ``width``) under every named
    condition, slow rules and deep networks first."""
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        hint = f"choose from {', '.join(CONDITIONS)}"
        raise NeurodeployError(f"unknown condition {unknown[0]!r}", "--conditions", hint)
    if not depths or min(depths) < 1:
        raise NeurodeployError(f"depths must be positive, got {list(depths)}", "--depths", "e.g. --depths 1,2,3")
    cells = []
    for d in depths:
        # the default depth-1 cell keeps the parameters (so the store key) of earlier tables
        shape = {} if (d, width) == (1, 64) else {"hidden": [width] * d}
        # deep chip cells name their schedule and rate (store keys change when either default does)
        opts = {"options": {"active": active_steps(d), "lr": default_lr(d)}} if d > 1 else {}
        for r in rules:
            for c in conditions:
                if r in PAPER_ROWS and c not in PAPER_CONDITIONS:
                    continue  # a paper-only row: its chip cells stay empty (–)
                prof, mm = CONDITIONS[c]
                # a paper cell has no chip options; chip cells keep their earlier store keys
                kind = {"variant": "paper"} if c in PAPER_CONDITIONS else opts
                cells.append({"rule": r, "profile": prof, "mismatch": mm, "seeds": seeds, "epochs": epochs,
                              "task": task, **shape, **kind, **extra})  # fmt: skip
    return sorted(cells, key=lambda c: (c["rule"] not in SLOW_RULES, -len(c.get("hidden", [0]))))


def cell_text(c: Mapping[str, Any], baseline: Mapping[str, Any] | None = None) -> str:
    """``95.1 ± 0.5 (∠B 7°) +1.8 p=0.003``: accuracy in % over seeds, the alignment angle of every layer if
    there is one, and with a baseline its gain over it and Welch's t-test p-value over the seeds. A regression
    cell shows its test MSE × 1000 instead, and the gain is the MSE's fall below the baseline's."""
    acc = c["accuracy"]
    unit = 100.0 if c.get("score", "test_accuracy") == "test_accuracy" else -1000.0  # lower MSE is a gain
    text = f"{abs(unit) * acc['mean']:.1f} ± {abs(unit) * acc['std']:.1f}" + ("" if unit > 0 else " (MSE×1e3)")
    angles = c["weight_angle"] or c["signal_angle"]
    if angles:  # every layer's, bottom first (B1/B2/…, h1/h2/…), whatever order the run recorded
        sym = "∠B" if c["weight_angle"] else "∠δ"
        means = "/".join(f"{angles[k]['mean']:.0f}" for k in sorted(angles, key=lambda k: (len(k), k)))
        text += f" ({sym} {means}°)"
    if baseline is not None:
        gain, p = welch(acc["per_seed"], baseline["accuracy"]["per_seed"])
        text += f"; {unit * gain:+.1f}" + (f" p={p:.2g}" if p == p else "")
    return text


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mean of ``a`` minus mean of ``b``, and the two-sided p-value of Welch's t-test (nan below 2 seeds
    each, or when neither varies)."""
    from scipy.stats import ttest_ind

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    gain = float(x.mean() - y.mean())
    if min(x.size, y.size) < 2 or (x.std() == 0 and y.std() == 0):
        return gain, float("nan")
    return gain, float(ttest_ind(x, y, equal_var=False).pvalue)


def table(results: Sequence[Mapping[str, Any] | None], conditions: Sequence[str],
          walls: Sequence[float] | None = None) -> str:  # fmt: skip
    """The markdown table of finished cells: a row per rule and depth (``RULES`` order), a column per
    condition. Where the frozen-hidden baseline ran too, each rule's gain over it and Welch's p follow;
    with ``walls`` (seconds, aligned with ``results``), each cell's wall time."""
    done = [(c, w) for c, w in zip(results, walls or [None] * len(results), strict=True) if c is not None]
    by_key = {(c["rule"], c.get("depth", 1), c["profile"], c["mismatch"], c.get("variant", "chip")): (c, w)
              for c, w in done}  # fmt: skip
    seen = {c["rule"] for c, _ in done}
    rules = [r for r in RULES if r in seen] + sorted(seen - set(RULES))
    depths = sorted({c.get("depth", 1) for c, _ in done})
    deep = len(depths) > 1
    head = "| rule | " + ("depth | " if deep else "") + " | ".join(conditions) + " |"
    lines = [head, "|" + "---|" * (len(conditions) + 1 + deep)]
    for d in depths:
        for r in rules:
            row = []
            for name in conditions:
                prof, mm = CONDITIONS[name]
                var = "paper" if name in PAPER_CONDITIONS else "chip"
                cell, wall = by_key.get((r, d, prof, mm, var), (None, None))
                base = by_key.get(("frozen", d, prof, mm, var), (None, None))[0] if r != "frozen" else None
                text = cell_text(cell, base) if cell else "–"  # not run (failures are listed apart)
                row.append(text + (f" · {wall:.0f} s" if cell and wall is not None else ""))
            lines.append(f"| {r} | " + (f"{d} | " if deep else "") + " | ".join(row) + " |")
    return "\n".join(lines)


def gap_table(results: Sequence[Mapping[str, Any] | None], conditions: Sequence[str]) -> str:
    """The markdown table of every rule's gap to BP per depth (``g1 / g2 / g3``) in each condition: BP's
    mean accuracy minus the rule's in points, or for a regression the rule's MSE × 1000 minus BP's. Empty
    without BP or with a single depth."""
    done = [c for c in results if c is not None]
    by_key = {(c["rule"], c.get("depth", 1), c["profile"], c["mismatch"], c.get("variant", "chip")): c for c in done}
    depths = sorted({c.get("depth", 1) for c in done})
    if len(depths) < 2 or not any(c["rule"] == "bp" for c in done):
        return ""
    seen = {c["rule"] for c in done} - {"bp", "frozen"}
    rules = [r for r in RULES if r in seen] + sorted(seen - set(RULES))
    lines = ["| rule | " + " | ".join(conditions) + " |", "|" + "---|" * (len(conditions) + 1)]
    for r in rules:
        row = []
        for name in conditions:
            prof, mm = CONDITIONS[name]
            var = "paper" if name in PAPER_CONDITIONS else "chip"
            gaps = []
            for d in depths:
                cell, bp = by_key.get((r, d, prof, mm, var)), by_key.get(("bp", d, prof, mm, var))
                if cell is None or bp is None:
                    gaps.append("–")
                    continue
                unit = 100.0 if cell.get("score", "test_accuracy") == "test_accuracy" else -1000.0
                gap = round(unit * (bp["accuracy"]["mean"] - cell["accuracy"]["mean"]), 1) + 0.0  # + 0.0: no -0.0
                gaps.append(f"{gap:.1f}")
            row.append(" / ".join(gaps))
        lines.append(f"| {r} | " + " | ".join(row) + " |")
    return "\n".join(lines)

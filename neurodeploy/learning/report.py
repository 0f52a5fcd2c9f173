"""Tables and plots of learning runs: the terminal summary and a self-contained HTML page."""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np

_GROUP_LABELS = {"weight_angle": "∠(B, Wᵀ) °", "weight_angle_neg": "∠(B, −Wᵀ) °", "signal_angle": "∠(δ, δ_BP) °"}
_NOT_PLOTTED = {"epoch", "lr", "val_accuracy", "val_mse"}


def score_key(fin_or_entry: dict[str, Any]) -> str | None:
    """The run's score: test accuracy, test MSE, or None for a system scored otherwise (e.g. by KL)."""
    return next((k for k in ("test_accuracy", "test_mse") if k in fin_or_entry), None)


def curves_of(result: dict[str, Any], stat: str = "mean") -> dict[str, dict[str, list[float]]]:
    """Per-epoch means (``stat="std"``: standard deviations) over seeds of every series the run logged:
    its score, every alignment angle, and a learning system's own series (KL, gradient angles, …)."""
    hist = result["history"]
    label = result["config"]["rule"]
    reduce = np.std if stat == "std" else np.mean
    per: dict[str, list[float]] = {}
    key = score_key(hist[0])
    if key is not None:
        per[key] = [float(reduce(h[key])) for h in hist]
    for name, value in hist[0].items():
        if name in _NOT_PLOTTED or name == key:
            continue
        if isinstance(value, dict):
            for sub in value:
                per[f"{_GROUP_LABELS.get(name, name)} {sub}"] = [float(reduce(h[name][sub])) for h in hist]
        elif isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
            per[name] = [float(reduce(h[name])) for h in hist]
    return {label: per}


def final_text(fin: dict[str, Any]) -> str:
    key = score_key(fin)
    if key is not None:
        return f"{key.removeprefix('test_')} {fin[key]['mean']:.4f} ± {fin[key]['std']:.4f}"
    shown = [(k, v) for k, v in fin.items() if isinstance(v, dict) and "per_seed" in v]
    return ", ".join(f"{k} {v['mean']:.4g} ± {v['std']:.2g}" for k, v in shown) or "–"


def learn_html(results: list[dict[str, Any]]) -> str:
    """One page: a summary table and the accuracy / alignment curves of every run."""
    from neurodeploy.plots import curves

    series: dict[str, dict[str, list[float]]] = {}
    spread: dict[str, dict[str, list[float]]] = {}
    rows = []
    for r in results:
        c = r["config"]
        tag = f"{c['rule']} · {c['variant']} · {c['profile']}" if "variant" in c else f"{c['rule']} · {c['profile']}"
        tag += f" · σ {c['mismatch']:g}" if c.get("mismatch") else ""
        for _label, per in curves_of(r).items():
            series[tag] = per
        for _label, per in curves_of(r, "std").items():
            spread[tag] = per
        fin = r["final"]
        angles = ", ".join(f"{k} {v['mean']:.1f}±{v['std']:.1f}°" for k, v in fin.get("weight_angle", {}).items())
        rows.append(
            f"<tr><td>{html.escape(tag)}</td><td>{html.escape(str(c.get('task', '–')))}</td>"
            f"<td>{html.escape(final_text(fin))}</td><td>{html.escape(angles or '–')}</td></tr>"
        )
    img = curves(series, spread=spread) if series else ""
    data = html.escape(json.dumps([r["config"] for r in results]))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>neurodeploy learn</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}td,th{padding:4px 10px;"
        "border-bottom:1px solid #ddd}img{max-width:100%}</style>"
        "</head><body><h1>Learning runs</h1><table><tr><th>run</th><th>task</th><th>final test score "
        "(mean ± std over seeds)</th><th>weight alignment</th></tr>" + "".join(rows) + "</table>"
        f"<h2>Curves (mean over seeds, shaded ± one std)</h2><img alt='learning curves' src='{img}'>"
        f"<details><summary>configurations</summary><pre>{data}</pre></details></body></html>\n"
    )

"""Tables and plots of learning runs: the terminal summary and a self-contained HTML page."""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np


def curves_of(result: dict[str, Any], stat: str = "mean") -> dict[str, dict[str, list[float]]]:
    """Per-epoch means (``stat="std"``: standard deviations) over seeds: accuracy (or MSE), and every
    alignment angle of the run."""
    hist = result["history"]
    key = "test_accuracy" if "test_accuracy" in hist[0] else "test_mse"
    label = result["config"]["rule"]
    reduce = np.std if stat == "std" else np.mean
    series: dict[str, dict[str, list[float]]] = {label: {key: [float(reduce(h[key])) for h in hist]}}
    for group, unit in (("weight_angle", "∠(B, Wᵀ) °"), ("signal_angle", "∠(δ, δ_BP) °")):
        for name in hist[0].get(group, {}):
            series[label][f"{unit} {name}"] = [float(reduce(h[group][name])) for h in hist]
    return series


def learn_html(results: list[dict[str, Any]]) -> str:
    """One page: a summary table and the accuracy / alignment curves of every run."""
    from neurodeploy.plots import curves

    series: dict[str, dict[str, list[float]]] = {}
    spread: dict[str, dict[str, list[float]]] = {}
    rows = []
    for r in results:
        c = r["config"]
        tag = f"{c['rule']} · {c['profile']}" + (f" · σ {c['mismatch']:g}" if c["mismatch"] else "")
        for _label, per in curves_of(r).items():
            series[tag] = per
        for _label, per in curves_of(r, "std").items():
            spread[tag] = per
        fin = r["final"]
        key = "test_accuracy" if "test_accuracy" in fin else "test_mse"
        angles = ", ".join(f"{k} {v['mean']:.1f}±{v['std']:.1f}°" for k, v in fin.get("weight_angle", {}).items())
        rows.append(
            f"<tr><td>{html.escape(tag)}</td><td>{html.escape(c['task'])}</td>"
            f"<td>{fin[key]['mean']:.4f} ± {fin[key]['std']:.4f}</td><td>{html.escape(angles or '–')}</td></tr>"
        )
    img = curves(series, spread=spread) if series else ""
    data = html.escape(json.dumps([r["config"] for r in results]))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>neurodeploy learn</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}td,th{padding:4px 10px;"
        "border-bottom:1px solid #ddd}img{max-width:100%}</style>"
        "</head><body><h1>On-chip learning</h1><table><tr><th>run</th><th>task</th><th>final test score "
        "(mean ± std over seeds)</th><th>weight alignment</th></tr>" + "".join(rows) + "</table>"
        f"<h2>Curves (mean over seeds, shaded ± one std)</h2><img alt='learning curves' src='{img}'>"
        f"<details><summary>configurations</summary><pre>{data}</pre></details></body></html>\n"
    )

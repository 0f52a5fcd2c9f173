"""Figures for the HTML report, rendered with matplotlib's Agg backend into base64 PNG data URIs.

Every function takes plain data (dicts, arrays) and returns ``data:image/png;base64,...`` so the report
stays one self-contained file. matplotlib is imported inside the functions: ``import neurodeploy`` and
the CLI's other verbs never pay for it.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

PALETTE = {"input": "#9aa5b1", "spiking": "#3b6ea8", "other": "#6d9f71", "bad": "#c0392b", "ok": "#2e7d32"}
DPI = 96
RASTER_BINS = 120


def _pyplot() -> Any:
    """pyplot on the Agg backend (no display needed, no window opened)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {"font.size": 9, "axes.titlesize": 10, "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": DPI}
    )
    return plt


def to_data_uri(fig: Any) -> str:
    """Encode a figure as a PNG data URI and close it (figures left open leak memory in loops)."""
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _depths(populations: Sequence[Mapping[str, Any]], projections: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Column of each population: longest forward path from an input (recurrent edges ignored)."""
    order = {p["name"]: i for i, p in enumerate(populations)}
    depth = {p["name"]: 0 for p in populations}
    forward = sorted(
        (pr for pr in projections if order.get(pr["src"], 0) < order.get(pr["dst"], 0)), key=lambda pr: order[pr["src"]]
    )
    for pr in forward:
        depth[pr["dst"]] = max(depth[pr["dst"]], depth[pr["src"]] + 1)
    return depth


def network_diagram(populations: Sequence[Mapping[str, Any]], projections: Sequence[Mapping[str, Any]]) -> str:
    """Populations as boxes in columns by depth, projections as labelled arrows (loops as arcs).

    ``populations``: dicts with name, size, kind. ``projections``: dicts with name, src, dst, shape,
    nonzero, delay.
    """
    plt = _pyplot()
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    depth = _depths(populations, projections)
    columns: dict[int, list[str]] = {}
    for p in populations:
        columns.setdefault(depth[p["name"]], []).append(p["name"])
    n_cols = max(columns) + 1 if columns else 1
    n_rows = max((len(v) for v in columns.values()), default=1)
    fig, ax = plt.subplots(figsize=(max(5.0, 2.7 * n_cols), 1.1 + 1.2 * n_rows))
    pos: dict[str, tuple[float, float]] = {}
    for col, names in columns.items():
        for row, name in enumerate(names):
            pos[name] = (col * 3.6, (len(names) - 1) / 2.0 - row)
    box_w, box_h = 1.7, 0.7
    info = {p["name"]: p for p in populations}
    for name, (x, y) in pos.items():
        kind = info[name].get("kind", "")
        color = PALETTE["input"] if kind == "input" else PALETTE["spiking"] if kind == "cuba_lif" else PALETTE["other"]
        ax.add_patch(
            FancyBboxPatch(
                (x - box_w / 2, y - box_h / 2),
                box_w,
                box_h,
                boxstyle="round,pad=0.05",
                facecolor=color,
                edgecolor="#1f2933",
                alpha=0.9,
            )
        )
        label = name if len(name) <= 18 else name[:16] + "…"
        ax.text(x, y + 0.12, label, ha="center", va="center", color="white", fontweight="bold", fontsize=10)
        ax.text(
            x,
            y - 0.17,
            f"{info[name].get('size', '?')} × {kind}",
            ha="center",
            va="center",
            color="white",
            fontsize=8.5,
        )
    for pr in projections:
        if pr["src"] not in pos or pr["dst"] not in pos:
            continue
        (x0, y0), (x1, y1) = pos[pr["src"]], pos[pr["dst"]]
        rows, cols = pr.get("shape", ("?", "?"))
        label = f"{rows}×{cols}, {pr.get('nonzero', '?')} w"
        if pr.get("delay"):
            label += f", d={pr['delay']}"
        if pr["src"] == pr["dst"]:
            arrow = FancyArrowPatch(
                (x0 - 0.4, y0 + box_h / 2),
                (x0 + 0.4, y0 + box_h / 2),
                connectionstyle="arc3,rad=-1.6",
                arrowstyle="-|>",
                mutation_scale=12,
                color="#52606d",
            )
            ax.text(x0, y0 + box_h / 2 + 0.72, label, ha="center", fontsize=7.5, color="#323f4b")
        else:
            backward = x1 <= x0
            rad = 0.35 if backward else 0.0
            start = (x0 + box_w / 2, y0) if not backward else (x0, y0 - box_h / 2)
            end = (x1 - box_w / 2, y1) if not backward else (x1, y1 - box_h / 2)
            arrow = FancyArrowPatch(
                start,
                end,
                connectionstyle=f"arc3,rad={rad}",
                arrowstyle="-|>",
                mutation_scale=12,
                color="#52606d",
                shrinkA=2,
                shrinkB=2,
            )
            ty = (y0 + y1) / 2 + (0.1 if not backward else -0.75)
            ax.text(
                (start[0] + end[0]) / 2,
                ty,
                label,
                ha="center",
                va="bottom",
                fontsize=7.5,
                color="#323f4b",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0},
            )
        ax.add_patch(arrow)
    xs = [p[0] for p in pos.values()] or [0.0]
    ys = [p[1] for p in pos.values()] or [0.0]
    loops = any(pr["src"] == pr["dst"] for pr in projections)
    backs = any(pos.get(pr["dst"], (0, 0))[0] < pos.get(pr["src"], (0, 0))[0] for pr in projections)
    ax.set_xlim(min(xs) - 1.0, max(xs) + 1.0)
    ax.set_ylim(min(ys) - (1.1 if backs else 0.5), max(ys) + (1.3 if loops else 0.5))
    ax.set_aspect("equal")
    ax.axis("off")
    return to_data_uri(fig)


def core_map(
    cores: Sequence[Mapping[str, Any]], limits: Mapping[str, Any], weight_bits: int, cores_per_chip: int | None
) -> str:
    """Left: the chip's cores as a grid coloured by utilisation. Right: each used core's resource fractions."""
    plt = _pyplot()
    used = {int(c["core"]): c for c in cores}
    total = max(len(used), min(int(cores_per_chip or len(used) or 1), 256), max(used, default=0) + 1)
    width = int(np.ceil(np.sqrt(total * 2)))
    height = int(np.ceil(total / width))
    grid = np.full((height, width), np.nan)
    for idx in range(total):
        grid[idx // width, idx % width] = used[idx]["utilisation"] if idx in used else -1.0
    n_bars = min(len(used), 24)
    fig, (ax0, ax1) = plt.subplots(
        1, 2, figsize=(11, max(2.8, 0.42 * height + 1.2, 0.35 * n_bars + 1.2)), gridspec_kw={"width_ratios": [1.3, 1]}
    )
    cmap = plt.get_cmap("viridis").with_extremes(under="#e4e7eb", bad="white")
    vmax = max(100.0, max((c["utilisation"] for c in cores), default=0.0))
    image = ax0.pcolormesh(
        np.ma.masked_invalid(grid), cmap=cmap, vmin=0.0, vmax=vmax, edgecolors="white", linewidth=1.5
    )
    ax0.set_aspect("equal")
    ax0.invert_yaxis()
    for idx, c in used.items():
        ax0.text(
            idx % width + 0.5,
            idx // width + 0.5,
            str(idx),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if c["utilisation"] < 60 else "black",
        )
    for side in ("top", "right", "bottom", "left"):
        ax0.spines[side].set_visible(False)
    ax0.set_xticks([])
    ax0.set_yticks([])
    ax0.set_title(f"{len(used)} of {total} cores used (grey: free)")
    fig.colorbar(image, ax=ax0, label="utilisation %", fraction=0.03, shrink=0.8)
    names = ["neurons", "synapse memory", "input axons", "output axons"]
    denom = [
        limits.get("neurons_per_core"),
        limits.get("synapse_memory_bits_per_core"),
        limits.get("fan_in_axons_per_core"),
        limits.get("fan_out_axons_per_core"),
    ]
    order = sorted(used)[:24]
    y = np.arange(len(order))
    for k, (name, limit) in enumerate(zip(names, denom, strict=True)):
        if not limit:
            continue
        vals = []
        for idx in order:
            c = used[idx]
            amount = [c["neurons"], c["synapses"] * weight_bits, c["axons_in"], c["axons_out"]][k]
            vals.append(100.0 * amount / float(limit))
        ax1.barh(y + (k - 1.5) * 0.2, vals, height=0.2, label=name)
    if not any(denom):
        ax1.text(0.5, 0.5, "this profile sets no per-core limits", ha="center", va="center", transform=ax1.transAxes)
    ax1.set_yticks(y, [f"core {i}" for i in order])
    pad = max(0.0, (4 - len(order)) / 2)  # few cores: keep bars thin and centred
    ax1.set_ylim(len(order) - 0.5 + pad, -0.5 - pad)
    ax1.set_xlabel("% of the per-core limit")
    ax1.set_title("resources per used core" + (" (first 24)" if len(used) > 24 else ""))
    if any(denom):
        ax1.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=4, fontsize=7, frameon=False)
    fig.tight_layout()
    return to_data_uri(fig)


def weight_error_histograms(rows: Sequence[Mapping[str, Any]]) -> str:
    """Per projection: float vs dequantised chip weights, and the error in quantization steps (LSB)."""
    plt = _pyplot()
    n = max(1, len(rows))
    fig, axes = plt.subplots(n, 2, figsize=(11, 2.5 * n), squeeze=False)
    for (ax0, ax1), row in zip(axes, rows, strict=False):
        ref = np.asarray(row["float"], dtype=float).ravel()
        chip = np.asarray(row["chip"], dtype=float).ravel()
        steps = row.get("steps")
        present = (ref != 0) | (chip != 0)  # absent synapses (zeros in both) would swamp sparse matrices
        ref, chip = ref[present], chip[present]
        steps = np.asarray(steps, dtype=float).ravel()[present] if steps is not None else None
        lo, hi = (float(min(ref.min(), chip.min())), float(max(ref.max(), chip.max()))) if ref.size else (-1, 1)
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        bins = np.linspace(lo, hi, 61)
        ax0.hist(ref, bins=bins, color=PALETTE["spiking"], alpha=0.55, label="float (IR)")
        ax0.hist(chip, bins=bins, histtype="step", color=PALETTE["bad"], linewidth=1.3, label="chip, dequantised")
        ax0.set_title(f"{row['projection']}: {ref.size} non-zero weights")
        ax0.set_xlabel("weight (float units)")
        ax0.legend(fontsize=7)
        if steps is not None:
            err, unit = steps, "error in quantization steps (LSB)"
        else:
            err, unit = chip - ref, "error (float units)"
        span = float(np.abs(err).max()) if err.size else 0.0
        span = max(span, 0.5) if steps is not None else (span or 1.0)
        ax1.hist(err, bins=np.linspace(-span, span, 41), color=PALETTE["other"])
        snr = row.get("snr_db")
        snr_text = f"{snr:.1f} dB" if isinstance(snr, (int, float)) and np.isfinite(snr) else str(snr)
        ax1.set_title(f"error: SNR {snr_text}, {row.get('saturated', 0)} clipped, w_exp {row.get('weight_exp')}")
        ax1.set_xlabel(unit)
    fig.tight_layout()
    return to_data_uri(fig)


def raster_comparison(spikes: Mapping[str, Mapping[str, np.ndarray]], sample: int, inputs: Sequence[str] = ()) -> str:
    """Spike rasters of one sample, one row per population and one column per run.

    ``spikes``: {run label: {population: (time, batch, neurons)}}. Populations named in ``inputs`` are
    the same in every run and are drawn once. Spikes that differ from the first run (the reference) are
    drawn in red in the other columns: a bar for an extra spike, a cross for a missing one.
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    labels = list(spikes)
    ref_label = labels[0]
    pops = [p for p in spikes[ref_label] if all(p in spikes[lab] for lab in labels)]
    steps = max((np.shape(spikes[ref_label][p])[0] for p in pops), default=1)
    fig, axes = plt.subplots(
        len(pops), len(labels), figsize=(5.4 * len(labels), 1.6 * len(pops) + 0.5), squeeze=False, sharex=True
    )
    for r, name in enumerate(pops):
        ref = np.asarray(spikes[ref_label][name])[:, sample].astype(bool)
        for c, label in enumerate(labels):
            ax = axes[r][c]
            if name in inputs and c > 0:
                ax.axis("off")
                continue
            cur = np.asarray(spikes[label][name])[:, sample].astype(bool)
            if name in inputs:
                _raster(ax, cur, None, PALETTE["input"])
                ax.set_title(f"input {name} (same in every run)")
            elif c:
                extra, missing = _raster(ax, cur, ref, PALETTE["spiking"])
                ax.set_title(f"{name} on {label}: {extra + missing} spikes differ")
            else:
                _raster(ax, cur, None, PALETTE["spiking"])
                ax.set_title(f"{name} on {label}")
            if not ax.get_ylabel():
                ax.set_ylabel("neuron")
            ax.set_xlim(-0.5, steps - 0.5)
            ax.set_ylim(-0.7, ref.shape[-1] - 0.3)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    for ax in axes[-1]:
        ax.set_xlabel("time step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return to_data_uri(fig)


def _raster(ax: Any, cur: np.ndarray, ref: np.ndarray | None, color: str) -> tuple[int, int]:
    """Spikes (time, neurons) as ticks, or binned into an image when there are too many neurons for ticks.

    With ``ref``, spikes only in ``cur`` (extra) and only in ``ref`` (missing) are drawn in red.
    """
    import matplotlib.colors as mcolors

    extra = cur & ~ref if ref is not None else np.zeros_like(cur)
    missing = ref & ~cur if ref is not None else np.zeros_like(cur)
    same = cur & ~extra
    if cur.shape[1] > RASTER_BINS:  # too many neurons for ticks: count spikes per group of neurons
        edges = np.linspace(0, cur.shape[1], RASTER_BINS + 1).astype(int)[:-1]
        same_n = np.add.reduceat(same.astype(int), edges, axis=1).T
        diff_n = np.add.reduceat((extra | missing).astype(int), edges, axis=1).T
        a_same = (same_n / max(1, same_n.max()))[..., None]
        a_diff = (diff_n / max(1, diff_n.max()))[..., None]
        image = 1.0 - a_same * (1.0 - np.array(mcolors.to_rgb(color)))
        image = image * (1.0 - a_diff) + a_diff * np.array(mcolors.to_rgb(PALETTE["bad"]))
        ax.imshow(
            image,
            extent=(-0.5, cur.shape[0] - 0.5, -0.5, cur.shape[1] - 0.5),
            aspect="auto",
            origin="lower",
            interpolation="nearest",
        )
        ax.set_ylabel(f"neuron (groups of {-(-cur.shape[1] // RASTER_BINS)})")
    else:
        t, i = np.nonzero(same)
        ax.scatter(t, i, s=14, marker="|", color=color, linewidths=1.2)
        t, i = np.nonzero(extra)
        ax.scatter(t, i, s=22, marker="|", color=PALETTE["bad"], linewidths=1.6)
        t, i = np.nonzero(missing)
        ax.scatter(t, i, s=14, marker="x", color=PALETTE["bad"])
    return int(extra.sum()), int(missing.sum())


def distributions(values: Mapping[str, Sequence[float]], xlabel: str) -> str:
    """Histogram of one scalar (e.g. accuracy per sampled chip instance) for each label."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3))
    finite = [np.asarray(v, dtype=float) for v in values.values()]
    allv = np.concatenate([v[np.isfinite(v)] for v in finite]) if finite else np.zeros(1)
    lo, hi = (float(allv.min()), float(allv.max())) if allv.size else (0.0, 1.0)
    bins = np.linspace(lo - 1e-9, hi + 1e-9, 31) if hi > lo else np.linspace(lo - 0.5, hi + 0.5, 11)
    for label, v in zip(values, finite, strict=True):
        ax.hist(v[np.isfinite(v)], bins=bins, alpha=0.6, label=f"{label} (n={v.size})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("instances")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return to_data_uri(fig)


def curves(
    series: Mapping[str, Mapping[str, Sequence[float]]],
    xlabel: str = "epoch",
    spread: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
) -> str:
    """One panel per metric, one line per label: ``{label: {metric: values per epoch}}``. ``spread``,
    in the same layout, shades ± that much around each line (e.g. the std over seeds). Panels wrap at
    two per row so the figure fits a page; epochs count from 1."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    metrics: list[str] = []
    for per_metric in series.values():
        metrics.extend(m for m in per_metric if m not in metrics)
    n = max(1, len(metrics))
    cols = min(2, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        for label, per_metric in series.items():
            if metric in per_metric:
                y = np.asarray(per_metric[metric], dtype=float)
                x = np.arange(1, y.size + 1)
                (line,) = ax.plot(x, y, label=label, linewidth=1.4)
                band = (spread or {}).get(label, {}).get(metric)
                if band is not None:
                    sd = np.asarray(band, dtype=float)
                    ax.fill_between(x, y - sd, y + sd, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_title(metric)
        ax.set_xlabel(xlabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    fig.tight_layout()
    return to_data_uri(fig)

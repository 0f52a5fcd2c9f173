"""Compare a compiled network with its float reference on sample inputs: what did the chip lose?"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurodeploy.compiler.quantize import quantize_float


def evaluate(
    compiled: Any, inputs: np.ndarray | dict[str, np.ndarray], labels: np.ndarray | None = None
) -> dict[str, Any]:
    """Per-population spike agreement, firing rates and spike-count correlation, chip vs float reference.

    Both runs are aligned to the input's time axis, so the chip's synaptic latency is not counted as
    disagreement. With ``labels`` (one class per sample), the accuracy of both, classifying by the first
    output population's spike counts (ties to the lowest index), and the change in points.

    On Loihi cores the same chip run also says, per layer, how often u wrapped and v saturated, when
    first, and the peak |u| and |v| as fractions of 2^23 (``compiler.saturation``); ``saturation``
    holds the totals.
    """
    from neurodeploy.compiler.saturation import layer_saturation, run_chip, totals
    from neurodeploy.runner import run_core

    reference_core, _ = quantize_float(compiled.ir, latency=0)
    ref = run_core(reference_core, inputs, backend="emulator")
    loihi = compiled.core.numerics == "loihi"
    chip, overflow = run_chip(compiled.core, inputs, peaks=loihi)
    layers = {}
    for name, ref_spikes in ref.spikes.items():
        if name in compiled.ir.inputs:
            continue
        chip_spikes = chip.spikes[name]
        ref_counts = ref_spikes.sum(axis=0).ravel().astype(float)
        chip_counts = chip_spikes.sum(axis=0).ravel().astype(float)
        corr = float(np.corrcoef(ref_counts, chip_counts)[0, 1]) if ref_counts.std() and chip_counts.std() else 1.0
        layers[name] = {
            "spike_agreement": float(np.mean(ref_spikes == chip_spikes)),
            "rate_reference": float(ref_spikes.mean()),
            "rate_chip": float(chip_spikes.mean()),
            "count_correlation": corr,
        }
        if loihi:
            layers[name].update(layer_saturation(overflow.get(name)))
    out: dict[str, Any] = {"layers": layers, "samples": int(ref.output(compiled.ir.outputs[0]).shape[1])}
    if loihi:
        out["saturation"] = totals(layers)
    for name in compiled.ir.outputs:  # a population's spikes, or a host readout's values
        ref_pred, chip_pred = ref.predictions(name), chip.predictions(name)
        out.setdefault("prediction_agreement", {})[name] = float(np.mean(ref_pred == chip_pred))
        if labels is not None and name == compiled.ir.outputs[0]:
            labels = np.asarray(labels).reshape(-1)
            if labels.shape != ref_pred.shape:
                from neurodeploy.errors import NeurodeployError

                raise NeurodeployError(
                    f"{labels.size} labels for {ref_pred.size} samples",
                    "sample_labels",
                    "give one class index per sample of sample_inputs",
                )
            acc_ref, acc_chip = float(np.mean(ref_pred == labels)), float(np.mean(chip_pred == labels))
            out["accuracy"] = {"reference": acc_ref, "chip": acc_chip, "change_points": 100 * (acc_chip - acc_ref)}
    synops = chip.counters.get("synaptic_events", 0) / max(out["samples"], 1)
    out["SynapticOperations"] = {"Effective_ACs": synops}
    out["ActivationSparsity"] = 1.0 - float(np.mean([chip.spikes[n].mean() for n in layers])) if layers else 1.0
    energy = compiled.profile.energy.get("synaptic_op_pj")
    if energy is not None:
        out["energy_per_sample_nj"] = synops * float(energy) / 1000.0
    return out

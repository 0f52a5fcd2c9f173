"""snnTorch 1.0.0 -> NIR through ``snntorch.export_nir``, with its traps worked around.

What ``export_to_nir`` does (facts ``nir-conventions.md`` §4, re-checked by running): it hard-codes
dt = 1e-4 and writes Leaky -> LIF(tau = dt/(1-beta), r = tau/dt) and Synaptic -> CubaLIF(tau_syn =
dt/(1-alpha), tau_mem = dt/(1-beta), r = tau_mem/dt, w_in = tau_syn/dt), always with reset-to-zero,
whatever ``reset_mechanism`` / ``reset_delay`` say. snnTorch's reset is not NIR's either: it is computed
from the previous step's membrane (``compiler.ir``, rule "snntorch"; Leaky's zero reset clears the
membrane before the decay: "snntorch_leaky"). A scalar beta gives a 0-d tau (type error) and a
vector beta with a scalar threshold trips a shape assertion; a batched sample fails NIR's type check.

So, on a deep copy: clamp and broadcast alpha/beta/threshold to (N,) (snnTorch clamps to [0, 1] in
its forward pass), export with one unbatched sample, and record each layer's real reset mechanism and
reset delay and reset rule in node and graph metadata. A ``dt`` other than 1e-4 rescales every tau by dt/1e-4, so the
graph simulated at ``dt`` still takes exactly one snnTorch step per step.
"""

from __future__ import annotations

import copy
import warnings
from typing import TYPE_CHECKING, Any

import nir
import numpy as np

from neurodeploy.errors import NeurodeployError
from neurodeploy.frontends import (
    META_PREFIX,
    broadcast,
    check_leaf_modules,
    graph_metadata,
    layer_widths,
    rebuild_graph,
    unbatched_sample,
)

if TYPE_CHECKING:
    import torch

SNNTORCH_DT = 1e-4  # hard-coded in snntorch/export_nir.py and import_nir.py
RESET_NAMES = {0: "subtract", 1: "zero", 2: "none"}  # snnTorch's reset_mechanism_val


def export_snntorch(module: torch.nn.Module, sample_input: Any, dt: float | None = None) -> nir.NIRGraph:
    """Export an snnTorch network (Linear/Conv2d/AvgPool2d/Flatten, Leaky, Synaptic, RLeaky, RSynaptic)."""
    import snntorch as snn
    import torch
    from snntorch import export_nir

    neuron_types = (snn.Leaky, snn.Synaptic)
    recurrent_types = (snn.RLeaky, snn.RSynaptic)
    supported = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.AvgPool2d, torch.nn.Flatten, *neuron_types)
    check_leaf_modules(module, supported + recurrent_types, recurrent_types, "snnTorch")
    dt = SNNTORCH_DT if dt is None else float(dt)
    if not dt > 0:
        raise NeurodeployError(f"dt must be positive, got {dt}", "from_torch(dt=...)", "pass seconds, e.g. 1e-4")

    sample = unbatched_sample(sample_input, module)
    model = copy.deepcopy(module)
    for sub in model.modules():
        if isinstance(sub, snn.RSynaptic):
            # RSynaptic.forward with reset_delay=False reads undefined locals (snnTorch 1.0.0 bug) and cannot
            # be traced; the exported parameters do not depend on it, and the real setting is recorded below.
            sub.reset_delay_requested = bool(sub.reset_delay)
            sub.reset_delay = True
    # Conv networks run batched (torch's Flatten assumes a batch dim); nirtorch strips it (ignore_dims).
    batched = sample.ndim > 1
    run_sample = sample.unsqueeze(0) if batched else sample
    widths = layer_widths(model, run_sample, neuron_types)
    if batched:
        widths = {name: shape[1:] for name, shape in widths.items()}
    conventions: dict[str, tuple[str, bool]] = {}
    rules: dict[str, str] = {}
    for name, sub in model.named_modules():
        if isinstance(sub, neuron_types + recurrent_types):
            conventions[name] = _check_neuron(name, sub)
            rules[name] = "snntorch_leaky" if isinstance(sub, snn.Leaky) else "snntorch"  # leaky.py: _base_zero
        if isinstance(sub, neuron_types):
            _vectorise(sub, widths[name])

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # nirtorch's extract_nir_graph notice
            graph = export_nir.export_to_nir(model, run_sample, ignore_dims=[0] if batched else [])
    except Exception as err:  # noqa: BLE001 - re-raised with context
        raise NeurodeployError(f"snntorch.export_nir failed: {err}", "export_to_nir", "see the cause above") from err

    scale = np.float32(dt / SNNTORCH_DT)

    def fix_node(name: str, node: nir.NIRNode, fields: dict[str, Any]) -> dict[str, Any]:
        owner = name if name in conventions else name.rsplit(".", 1)[0]
        shape = widths.get(owner) or np.shape(fields["v_threshold"])
        for key, value in fields.items():
            if key != "metadata" and isinstance(value, np.ndarray | float | int):
                fields[key] = broadcast(value, shape)
        if scale != 1:
            for key in ("tau", "tau_mem", "tau_syn"):
                if key in fields:
                    fields[key] = (fields[key] * scale).astype(np.float32)
        reset, delay = conventions.get(owner, ("zero", False))
        fields["metadata"].update(
            {
                META_PREFIX + "reset": reset,
                META_PREFIX + "reset_delay": delay,
                META_PREFIX + "reset_rule": rules.get(owner, "snntorch"),
            }
        )
        return fields

    resets = [r for r, _ in conventions.values()]
    delays = [d for _, d in conventions.values()]
    # RLeaky/RSynaptic add recurrent(spk_prev) + bias: the loop delay acts on the spikes, not the bias.
    meta = graph_metadata(dt, resets, delays, "snntorch", "out_of_neuron", rules.values())
    return rebuild_graph(graph, fix_node, meta)


def _check_neuron(name: str, neuron: torch.nn.Module) -> tuple[str, bool]:
    """Reject what NIR cannot carry; return (reset mechanism, reset_delay) to record."""
    reset = RESET_NAMES.get(int(neuron.reset_mechanism_val), "?")
    if reset not in ("zero", "subtract"):
        raise NeurodeployError(
            f"reset_mechanism={reset!r} cannot be represented", name, 'use reset_mechanism="zero" or "subtract"'
        )
    if getattr(neuron, "state_quant", False):
        raise NeurodeployError("state_quant is not exported to NIR", name, "quantise in the compiler instead")
    if getattr(neuron, "inhibition", False):
        raise NeurodeployError("inhibition=True is not representable in NIR", name, "set inhibition=False")
    gsf = neuron.graded_spikes_factor
    if not bool((gsf == 1).all()):
        raise NeurodeployError("graded_spikes_factor != 1 is not exported", name, "use binary spikes")
    return reset, bool(getattr(neuron, "reset_delay_requested", getattr(neuron, "reset_delay", False)))


def _vectorise(neuron: torch.nn.Module, shape: tuple[int, ...]) -> None:
    """Clamp decay factors like snnTorch's forward does and broadcast them and the threshold to (N,)."""
    import torch

    for key in ("alpha", "beta", "threshold"):
        if not hasattr(neuron, key):
            continue
        old = getattr(neuron, key)
        value = torch.as_tensor(old, dtype=torch.float32).detach()
        if key != "threshold":
            value = value.clamp(0, 1)
            if bool((value >= 1).any()):
                raise NeurodeployError(
                    f"{key} = 1 means an infinite time constant", key, "use beta < 1 (or an IF neuron)"
                )
        value = value.expand(shape).clone()
        with torch.no_grad():
            if isinstance(old, torch.nn.Parameter):
                setattr(neuron, key, torch.nn.Parameter(value, requires_grad=False))
            else:
                setattr(neuron, key, value)

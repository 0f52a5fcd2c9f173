"""Norse 1.1.0 -> NIR through ``norse.torch.utils.export_nir.to_nir``, with its bugs worked around.

What ``to_nir(module, sample, dt)`` does (facts ``nir-conventions.md`` §4, re-checked by running):
it writes ``tau = dt / tau_inv`` (so dt·τ with the default dt = 1e-3: norse#411), keeps a batch dim in
Input, exports LIFCell as CubaLIF with ``w_in = 1`` although Norse's current jumps by +x each step
(NIR's Euler step gives +(dt/τ_syn)·w_in·x, so w_in must be τ_syn/dt), gives size-1 layers for
scalar parameters (norse#412), and asserts "All parameters must have the same shape" when some are
vectors and some scalars. It maps only cells; the sequential ``LIF`` returns None and crashes.

So, on a deep copy: swap sequential ``LIF``/``LIFBox`` modules for their cells (same per-step maths),
broadcast every parameter to the layer width, export one unbatched sample with dt = 1.0 (τ then comes
out in seconds), set ``w_in = τ_syn/dt`` for CubaLIF, and record the reset and the cells' dt.
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

NORSE_DT = 1e-3  # the default dt of every Norse cell and of norse's from_nir


def export_norse(module: torch.nn.Module, sample_input: Any, dt: float | None = None) -> nir.NIRGraph:
    """Export a Norse network of Linear/Conv2d and LIFCell, LIFBoxCell, LIBoxCell, IAFCell (or LIF)."""
    import torch
    from norse.torch.module import iaf, leaky_integrator_box, lif, lif_box
    from norse.torch.utils.export_nir import to_nir

    cells = (lif.LIFCell, lif_box.LIFBoxCell, leaky_integrator_box.LIBoxCell, iaf.IAFCell)
    sequential = _sequential_to_cell()
    supported = (torch.nn.Linear, torch.nn.Conv2d, *cells, *sequential)
    check_leaf_modules(module, supported, (), "Norse")

    sample = unbatched_sample(sample_input, module)
    model = copy.deepcopy(module)
    _swap_sequential(model, sequential)
    widths = layer_widths(model, sample, cells)
    resets: dict[str, str] = {}
    params: dict[str, Any] = {}
    cell_dts: set[float] = set()
    for name, sub in model.named_modules():
        if isinstance(sub, cells):
            resets[name] = _reset_of(name, sub)
            cell_dts.add(float(sub.dt))
            sub.p = params[name] = _broadcast_params(sub.p, widths[name])

    if dt is None:
        if len(cell_dts) > 1:
            raise NeurodeployError(
                f"cells use different dt values {sorted(cell_dts)}", "Norse cells", "use one dt or pass dt=..."
            )
        dt = cell_dts.pop() if cell_dts else NORSE_DT
    dt = float(dt)
    if not dt > 0:
        raise NeurodeployError(f"dt must be positive, got {dt}", "from_torch(dt=...)", "pass seconds, e.g. 1e-3")
    if cell_dts and cell_dts != {dt}:
        warnings.warn(
            f"Norse cells step with dt={sorted(cell_dts)} but dt={dt} was requested; the graph keeps the "
            "cells' time constants, so simulating it at dt will not reproduce the module step for step",
            stacklevel=3,
        )

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # nirtorch's extract_nir_graph notice
            graph = to_nir(model, sample, dt=1.0)  # dt = 1.0: tau = 1/tau_inv, in seconds (norse#411)
    except Exception as err:  # noqa: BLE001 - re-raised with context
        raise NeurodeployError(f"norse to_nir failed: {err}", "to_nir", "see the cause above") from err

    def fix_node(name: str, node: nir.NIRNode, fields: dict[str, Any]) -> dict[str, Any]:
        shape = widths.get(name) or np.shape(fields["v_leak" if "v_leak" in fields else "v_threshold"])
        for key, value in fields.items():
            if key != "metadata" and isinstance(value, np.ndarray | float | int):
                fields[key] = broadcast(value, shape)
        if "v_reset" in fields and hasattr(params.get(name), "v_reset"):
            fields["v_reset"] = broadcast(params[name].v_reset, shape)  # to_nir drops v_reset
        if isinstance(node, nir.CubaLIF | nir.CubaLI):
            # Norse: i <- i + x, then decays; NIR Euler: i <- i + (dt/tau_syn)(w_in x - i).
            fields["w_in"] = (fields["tau_syn"].astype(np.float64) / dt).astype(np.float32)
        fields["metadata"].update(
            {
                META_PREFIX + "reset": resets.get(name, "zero"),
                META_PREFIX + "reset_delay": False,
                META_PREFIX + "reset_rule": "nir",
            }
        )  # Norse resets in the spiking step
        return fields

    return rebuild_graph(graph, fix_node, graph_metadata(dt, resets.values(), [False], "norse"))


def _sequential_to_cell() -> dict[type, type]:
    """Norse's time-looping modules and the cell each one applies per step."""
    from norse.torch.module import lif

    pairs: dict[type, type] = {lif.LIF: lif.LIFCell}
    try:
        from norse.torch.module import lif_box

        if hasattr(lif_box, "LIFBox"):
            pairs[lif_box.LIFBox] = lif_box.LIFBoxCell
    except ImportError:  # pragma: no cover - older Norse
        pass
    return pairs


def _swap_sequential(model: torch.nn.Module, pairs: dict[type, type]) -> None:
    """Replace each sequential module by its cell (same p and dt); to_nir only maps cells."""
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            cell_type = pairs.get(type(child))
            if cell_type is not None:
                setattr(parent, child_name, cell_type(p=child.p, dt=child.dt))


def _reset_of(name: str, cell: torch.nn.Module) -> str:
    """LIFBoxCell takes ``p.reset_method``; LIFCell always resets to v_reset."""
    method = getattr(cell.p, "reset_method", None)
    if method is None:
        return "zero"
    label = getattr(method, "__name__", str(method))
    if label == "reset_value":
        return "zero"
    if label == "reset_subtract":
        return "subtract"
    raise NeurodeployError(f"unknown Norse reset_method {label!r}", name, "use reset_value or reset_subtract")


def _broadcast_params(p: Any, shape: tuple[int, ...]) -> Any:
    """Every tensor field of a Norse parameter tuple at the layer's shape (avoids #412 and the assert)."""
    import torch

    values = {}
    for key in p._fields:
        value = getattr(p, key)
        if isinstance(value, torch.Tensor) and key != "alpha":
            value = value.detach().to(torch.float32).expand(shape).clone()
        values[key] = value
    return type(p)(**values)

"""Torch module -> ``nir.NIRGraph``, with the conventions NIR leaves out recorded in metadata.

The exporters of snnTorch 1.0.0 and Norse 1.1.0 each have bugs (see the facts file
``nir-conventions.md`` §4); the per-framework modules work around them on a deep copy of the user's
module and then rebuild a clean graph here: numpy float32 parameters, per-neuron vectors, no batch
dimension, and ``graph.metadata`` holding ``neurodeploy.{dt,reset,reset_delay,reset_rule,source,integrator}``.
Framework libraries are imported lazily so ``import neurodeploy`` never needs torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import nir
import numpy as np

from neurodeploy.errors import NeurodeployError

if TYPE_CHECKING:
    import torch

    from neurodeploy.compiler.ir import Conventions

FRAMEWORKS = ("snntorch", "norse")
META_PREFIX = "neurodeploy."
NEURON_NODES = (nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.CubaLI)

__all__ = ["FRAMEWORKS", "conventions_from_metadata", "from_torch"]


def from_torch(
    module: torch.nn.Module, sample_input: torch.Tensor, framework: str = "snntorch", dt: float | None = None
) -> nir.NIRGraph:
    """Export ``module`` to NIR via its framework's own exporter, with the known traps worked around.

    ``sample_input`` is one input step: ``(n_in,)`` or batched ``(batch, n_in, ...)`` (any sample with
    ``ndim >= 2`` is taken as batched; its first row is used). ``dt`` is the simulation step in
    seconds; default: snnTorch's implicit 1e-4 encoding, or the Norse cells' own ``dt`` (1e-3).
    The user's module is never modified.
    """
    name = str(framework).lower()
    if name == "snntorch":
        from neurodeploy.frontends.snntorch import export_snntorch

        return export_snntorch(module, sample_input, dt=dt)
    if name == "norse":
        from neurodeploy.frontends.norse import export_norse

        return export_norse(module, sample_input, dt=dt)
    raise NeurodeployError(
        f"unsupported framework {framework!r}", "from_torch(framework=...)", f"use one of {FRAMEWORKS}"
    )


def conventions_from_metadata(graph: nir.NIRGraph) -> Conventions | None:
    """The conventions a frontend recorded in ``graph.metadata``, or None for a graph without them."""
    from neurodeploy.compiler.ir import Conventions

    meta = graph.metadata or {}
    if META_PREFIX + "dt" not in meta:
        return None
    values = {
        key: _plain(meta[META_PREFIX + key])
        for key in ("dt", "reset", "reset_delay", "reset_rule", "integrator", "loop_delay", "source")
        if META_PREFIX + key in meta
    }
    if values.get("reset") not in (None, "zero", "subtract"):
        raise NeurodeployError(
            f"graph records reset={values['reset']!r}, which one Conventions cannot express",
            "graph.metadata['neurodeploy.reset']",
            "per-node resets are in each neuron node's metadata; use one reset mechanism per network",
        )
    return Conventions.from_dict(values)


# ---------------------------------------------------------------- helpers shared by the frontends


def _plain(value: Any) -> Any:
    """numpy scalars / bytes (what an HDF5 round-trip returns) -> Python scalars / str."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    return value.item() if isinstance(value, np.generic) else value


def unbatched_sample(sample_input: Any, module: torch.nn.Module | None = None) -> torch.Tensor:
    """One unbatched float sample: both exporters need it (nirtorch#17, norse Input batch dim).

    The unbatched rank comes from the module's first layer (Conv2d/AvgPool2d: (C, H, W), Conv1d: (C, L),
    Linear: (n_in,)); a sample with one more dimension is taken as batched and its first row is used.
    When the first layer does not fix the rank (e.g. Flatten), any sample with ``ndim >= 2`` is batched.
    """
    import torch

    sample = torch.as_tensor(sample_input).detach()
    rank = _input_rank(module) if module is not None else None
    if sample.ndim == 0:
        raise NeurodeployError("sample_input is a scalar", "from_torch(sample_input=...)", "pass shape (n_in,)")
    if (rank is None and sample.ndim >= 2) or (rank is not None and sample.ndim == rank + 1):
        sample = sample[0]
    elif rank is not None and sample.ndim != rank:
        raise NeurodeployError(
            f"sample_input has {sample.ndim} dimensions; the first layer expects {rank} (or {rank + 1} batched)",
            "from_torch(sample_input=...)",
            "pass one step of input, e.g. (C, H, W) for a Conv2d network",
        )
    return sample.to(torch.float32).clone()


def _input_rank(module: torch.nn.Module) -> int | None:
    """Rank of one unbatched input step, from the first layer that fixes it (None if it does not)."""
    import torch

    for sub in module.modules():
        if isinstance(sub, torch.nn.Conv2d | torch.nn.AvgPool2d):
            return 3
        if isinstance(sub, torch.nn.Conv1d):
            return 2
        if isinstance(sub, torch.nn.Linear):
            return 1
        if isinstance(sub, torch.nn.Flatten):
            return None
    return None


def check_leaf_modules(
    module: torch.nn.Module, supported: tuple[type, ...], opaque: tuple[type, ...], framework: str
) -> None:
    """Fail early, by name, on layers the exporter would silently drop (it returns None for them)."""
    skip: set[str] = set()
    bad: list[str] = []
    for name, sub in module.named_modules():
        if any(name.startswith(s + ".") for s in skip):
            continue
        if isinstance(sub, opaque):
            skip.add(name)
            continue
        if not list(sub.children()) and not isinstance(sub, supported):
            bad.append(f"{name or '<root>'}: {type(sub).__name__}")
    if bad:
        raise NeurodeployError(
            f"{framework} export does not support {len(bad)} layer(s)",
            "; ".join(bad),
            "supported: " + ", ".join(sorted(t.__name__ for t in supported)),
        )


def layer_widths(module: torch.nn.Module, sample: torch.Tensor, types: tuple[type, ...]) -> dict[str, tuple[int, ...]]:
    """Run ``sample`` once through ``module`` (a copy) and record each neuron layer's input shape."""
    import torch

    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name, sub in module.named_modules():
        if isinstance(sub, types):

            def hook(_mod: Any, args: tuple, _out: Any, name: str = name) -> None:
                shapes[name] = tuple(args[0].shape)

            handles.append(sub.register_forward_hook(hook))
    try:
        with torch.no_grad():
            module(sample)
    except Exception as err:  # noqa: BLE001 - re-raised with context
        raise NeurodeployError(
            f"running the module on the sample failed: {err}",
            f"sample shape {tuple(sample.shape)}",
            "the module must accept one unbatched step and return the next layer's input",
        ) from err
    finally:
        for h in handles:
            h.remove()
    return shapes


def broadcast(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A parameter as a float32 array of the layer's shape (exporters emit size-1 or 0-d arrays)."""
    arr = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=np.float32)
    return np.ascontiguousarray(np.broadcast_to(arr, shape))


def rebuild_graph(
    graph: nir.NIRGraph,
    fix_node: Callable[[str, nir.NIRNode, dict[str, Any]], dict[str, Any]],
    metadata: dict[str, Any],
) -> nir.NIRGraph:
    """Recreate every node with numpy float32 fields, letting ``fix_node`` patch neuron fields.

    Constructing a fresh ``NIRGraph`` re-runs NIR's type check, which the exporters' graphs fail.
    """
    nodes: dict[str, nir.NIRNode] = {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            nodes[name] = node  # recurrent subgraphs pass through as exported
            continue
        fields = {f.name: getattr(node, f.name) for f in dataclasses.fields(node) if f.init}
        for key, value in fields.items():
            if key != "metadata" and hasattr(value, "detach"):
                fields[key] = value.detach().cpu().numpy()
            if key != "metadata" and isinstance(fields[key], np.ndarray) and fields[key].dtype.kind == "f":
                fields[key] = fields[key].astype(np.float32)
        fields["metadata"] = dict(fields.get("metadata") or {})
        if isinstance(node, NEURON_NODES):
            fields = fix_node(name, node, fields)
        nodes[name] = type(node)(**fields)
    try:
        return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=dict(metadata))
    except Exception as err:  # noqa: BLE001 - re-raised with context
        raise NeurodeployError(
            f"the exported graph is not type-consistent: {err}", "nir.NIRGraph", "report this network"
        ) from err


def graph_metadata(
    dt: float,
    resets: Iterable[str],
    delays: Iterable[bool],
    source: str,
    loop_delay: str | None = None,
    rules: Iterable[str] = (),
) -> dict[str, Any]:
    """Graph-level conventions; a mix of reset mechanisms is recorded as "mixed" (per node it is exact).

    ``loop_delay`` (where a recurrent loop's one-step delay sits, see ``Conventions``) is recorded when
    the framework defines it. ``rules``: each layer's reset rule; a mix of snnTorch's two (Leaky and
    Synaptic layers) is recorded as "snntorch", each node keeping its own.
    """
    reset_set, delay_set, rule_set = set(resets), set(delays), set(rules) or {"nir"}
    reset = "mixed" if len(reset_set) > 1 else next(iter(reset_set), "zero")
    meta = {
        META_PREFIX + "dt": float(dt),
        META_PREFIX + "reset": reset,
        META_PREFIX + "reset_delay": bool(any(delay_set)),
        META_PREFIX + "reset_rule": rule_set.pop() if len(rule_set) == 1 else "snntorch",
        META_PREFIX + "source": source,
        META_PREFIX + "integrator": "euler",
    }
    if loop_delay is not None:
        meta[META_PREFIX + "loop_delay"] = loop_delay
    return meta

"""Stateless nodes between neuron layers: shape inference and the linear map each one applies.

Affine, Linear, Scale, Flatten, Conv1d/2d, SumPool2d/AvgPool2d and Delay act on the flattened vector
(C order) of their input. Flatten only renames the shape, so on the flat vector it is the identity,
whatever its start/end dims (NIR's default start_dim = 1 assumes a batch axis; the exporters shift it).
Delay is the identity with per-element integer step counts delay/dt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import nir
import numpy as np

from neurodeploy.compiler import weights as wt
from neurodeploy.compiler.lower_conv import conv_map, conv_out_shape, pool_map
from neurodeploy.compiler.lower_neurons import NEURON_TYPES, neuron_shape, vector
from neurodeploy.errors import CompileError
from neurodeploy.limits import check_count

CONV_TYPES = (nir.Conv1d, nir.Conv2d)
POOL_TYPES = (nir.SumPool2d, nir.AvgPool2d)
LINEAR_TYPES = (nir.Affine, nir.Linear, nir.Scale, nir.Flatten, *CONV_TYPES, *POOL_TYPES, nir.Delay)
Shape = tuple[int, ...]


@dataclass
class LinearMap:
    """y = M x + b on flat vectors; ``matrix`` None means identity, ``diag`` a diagonal; ``delays`` per row.

    A Delay node's map is the identity with ``delays`` (steps, per element): y(t) = x(t - delay).
    """

    n_in: int
    n_out: int
    matrix: wt.Matrix | None = None
    diag: np.ndarray | None = None
    bias: np.ndarray | None = None
    delays: np.ndarray | None = None

    def apply(self, op: wt.Matrix | None, n_origin: int) -> wt.Matrix | None:
        """Compose with ``op`` (None: identity on the origin)."""
        if self.matrix is not None:
            return self.matrix if op is None else wt.matmul(self.matrix, op)
        if self.diag is not None:
            return wt.scale_rows(wt.identity(n_origin) if op is None else op, self.diag)
        return op

    def apply_vector(self, v: np.ndarray) -> np.ndarray:
        """The map without its bias on one vector (how a bias from upstream passes through)."""
        if self.matrix is not None:
            return wt.mat_vec(self.matrix, v)
        return self.diag * v if self.diag is not None else v


def _size(shape: Shape) -> int:
    return int(np.prod(shape)) if shape else 1


def _declared_input(node: nir.NIRNode) -> Shape | None:
    value = (getattr(node, "input_type", None) or {}).get("input")
    if value is None:
        return None
    arr = np.asarray(value).reshape(-1)
    return tuple(int(v) for v in arr) if arr.size and np.all(arr > 0) else None


def flatten_shape(node: nir.Flatten, shape: Shape) -> Shape:
    nd = len(shape)
    start = node.start_dim + nd if node.start_dim < 0 else node.start_dim
    end = node.end_dim + nd if node.end_dim < 0 else node.end_dim
    if not (0 <= start <= end < nd):  # e.g. NIR's start_dim=1 on a 1-D input: nothing to flatten
        return (_size(shape),) if start >= nd else shape
    return (*shape[:start], _size(shape[start : end + 1]), *shape[end + 1 :])


def output_shape(name: str, node: nir.NIRNode, in_shape: Shape | None) -> Shape | None:
    """The node's output shape given its input shape (None while unknown)."""
    if isinstance(node, nir.Input):
        shape = _declared_input(node)
        if shape is None:
            raise CompileError(
                f"input shape {np.asarray(node.input_type.get('input')).tolist()} is empty or non-positive",
                f"node {name!r}",
                "give the Input node a shape such as [4]",
            )
        return shape
    if isinstance(node, NEURON_TYPES):
        own = neuron_shape(node)
        # keep a structured (C, H, W) shape arriving from a conv when the neuron stores flat vectors, and
        # broadcast scalar parameters to the layer that arrives
        return in_shape if in_shape is not None and _size(own) in (1, _size(in_shape)) else own
    if in_shape is None:
        return None
    declared = _declared_input(node)
    if declared is not None and len(declared) > len(in_shape) and _size(declared) == _size(in_shape):
        in_shape = declared  # a flat vector arriving at a node that knows its (C, H, W)
    if isinstance(node, (nir.Affine, nir.Linear)):
        return (int(np.shape(node.weight)[0]),)
    if isinstance(node, nir.Flatten):
        return flatten_shape(node, in_shape)
    if isinstance(node, CONV_TYPES + POOL_TYPES):
        return conv_out_shape(name, node, in_shape)
    return in_shape  # Scale, Delay, Output


def infer_shapes(nodes: dict[str, nir.NIRNode], edges: list[tuple[str, str]]) -> dict[str, Shape]:
    """Output shape of every node, propagated from the Input nodes and the neuron parameters."""
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for s, d in edges:
        preds[d].append(s)
    shapes: dict[str, Shape] = {}
    for _ in range(len(nodes) + 1):
        changed = False
        for name, node in nodes.items():
            known = [shapes[p] for p in preds[name] if p in shapes]
            arriving = max(known, key=len) if known else None
            shape = output_shape(name, node, arriving)
            if shape is not None:
                size = math.prod(int(d) for d in shape)
                check_count(size, "neurons", f"output shape {list(shape)}", f"node {name!r}")
            if shape is not None and shapes.get(name) != shape:
                shapes[name] = shape
                changed = True
        if not changed:
            break
    return shapes


def arriving_shape(name: str, node: nir.NIRNode, preds: list[str], shapes: dict[str, Shape]) -> Shape:
    """The shape entering ``name``; every predecessor must deliver the same number of values."""
    known = [shapes[p] for p in preds if p in shapes]
    if not known:
        raise CompileError(
            "the shape of this node's input cannot be inferred",
            f"node {name!r}",
            "connect it to an Input node, or give the Input node its shape",
        )
    sizes = {_size(s) for s in known}
    if len(sizes) > 1:
        raise CompileError(
            f"inputs of sizes {sorted(sizes)} arrive at one node",
            f"node {name!r}",
            "several edges into a node are summed, so they must have the same size",
        )
    shape = max(known, key=len)
    declared = _declared_input(node)
    if declared is not None and len(declared) > len(shape) and _size(declared) == _size(shape):
        shape = declared
    return shape


def linear_map(name: str, node: nir.NIRNode, in_shape: Shape, dt: float) -> LinearMap:
    """The LinearMap of a stateless node acting on a flat input of shape ``in_shape``."""
    n_in = _size(in_shape)
    if isinstance(node, (nir.Flatten, nir.Output)):
        declared = _declared_input(node) if isinstance(node, nir.Flatten) else None
        if declared is not None and _size(declared) != n_in:
            raise CompileError(
                f"Flatten declares an input of {_size(declared)} values but {n_in} arrive",
                f"node {name!r}",
                "fix the Flatten's input_type or the layer before it",
            )
        return LinearMap(n_in, n_in)
    if isinstance(node, nir.Scale):
        return LinearMap(n_in, n_in, diag=vector(name, "scale", node.scale, n_in))
    if isinstance(node, nir.Delay):
        steps = vector(name, "delay", node.delay, n_in) / dt
        rounded = np.rint(steps)
        if np.any(rounded < 0) or np.any(np.abs(steps - rounded) > 1e-6 * np.maximum(1.0, np.abs(steps))):
            bad = float(np.asarray(node.delay).reshape(-1)[np.argmax(np.abs(steps - rounded))])
            raise CompileError(
                f"delay {bad:g} s is not a non-negative whole number of steps of dt = {dt:g} s",
                f"node {name!r}",
                "delays are in seconds: use multiples of dt, or pass their dt",
            )
        return LinearMap(n_in, n_in, delays=rounded.astype(np.int64))
    if isinstance(node, CONV_TYPES):
        mat, bias, out_shape = conv_map(name, node, in_shape)
        return LinearMap(n_in, _size(out_shape), matrix=mat, bias=bias)
    if isinstance(node, POOL_TYPES):
        mat, out_shape = pool_map(name, node, in_shape)
        return LinearMap(n_in, _size(out_shape), matrix=mat)
    weight = np.asarray(node.weight, dtype=float)
    if weight.ndim != 2 or weight.shape[1] != n_in:
        raise CompileError(
            f"weight shape {weight.shape} does not accept {n_in} inputs",
            f"node {name!r}",
            "check the layer sizes on both sides of this node",
        )
    if not np.all(np.isfinite(weight)):
        raise CompileError("weight contains NaN or inf", f"node {name!r}", "replace them with finite numbers")
    bias = None
    if isinstance(node, nir.Affine) and node.bias is not None:
        bias = vector(name, "bias", node.bias, weight.shape[0])
    return LinearMap(n_in, weight.shape[0], matrix=weight, bias=bias)

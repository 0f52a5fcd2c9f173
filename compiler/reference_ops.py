"""Stateless NIR nodes for the golden reference, written directly on (batch, *shape) arrays.

Deliberately not the compiler's matrices (``compiler.lower_conv``): convolution and pooling are
computed window by window here, so a mistake in either implementation shows up as a mismatch.
PyTorch semantics: padding "same" pads d·(k − 1) with the smaller half first; AvgPool2d divides by the
kernel area (count_include_pad=True).
"""

from __future__ import annotations

import nir
import numpy as np

from neurodeploy.errors import NeurodeployError

STATELESS = (
    nir.Affine,
    nir.Linear,
    nir.Scale,
    nir.Flatten,
    nir.Conv1d,
    nir.Conv2d,
    nir.SumPool2d,
    nir.AvgPool2d,
    nir.Output,
)


def _ints(value: object, n: int) -> tuple[int, ...]:
    arr = np.asarray(value).reshape(-1)
    return tuple(int(v) for v in (np.repeat(arr, n) if arr.size == 1 else arr))


def _declared(node: nir.NIRNode) -> tuple[int, ...] | None:
    value = (getattr(node, "input_type", None) or {}).get("input")
    if value is None:
        return None
    arr = np.asarray(value).reshape(-1)
    return tuple(int(v) for v in arr) if arr.size and np.all(arr > 0) else None


def _structured(name: str, node: nir.NIRNode, x: np.ndarray, ndim: int) -> np.ndarray:
    """x as (batch, C, spatial...) with ``ndim`` dims after batch, using the node's declared input type."""
    if x.ndim == ndim + 1:
        return x
    shape = _declared(node)
    if shape is None or len(shape) != ndim or int(np.prod(shape)) != int(np.prod(x.shape[1:])):
        raise NeurodeployError(
            f"cannot view an input of shape {x.shape[1:]} as {ndim}-d",
            name,
            "give the Input node the full (C, H, W) shape",
        )
    return x.reshape(x.shape[0], *shape)


def _windows(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pad: tuple[int, int, int, int],
    dilation: tuple[int, int],
):
    """Yield (a, b, view): for each kernel offset the (batch, C, Ho, Wo) input values it sees."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[1]), (pad[2], pad[3])))
    ho = (xp.shape[2] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    wo = (xp.shape[3] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    for a in range(kernel[0]):
        for b in range(kernel[1]):
            h0, w0 = a * dilation[0], b * dilation[1]
            yield (
                a,
                b,
                xp[
                    :, :, h0 : h0 + stride[0] * (ho - 1) + 1 : stride[0], w0 : w0 + stride[1] * (wo - 1) + 1 : stride[1]
                ],
            )


def _conv(name: str, node: nir.NIRNode, x: np.ndarray) -> np.ndarray:
    one_d = isinstance(node, nir.Conv1d)
    w = np.asarray(node.weight, dtype=x.dtype)
    x = _structured(name, node, x, 2 if one_d else 3)
    if one_d:
        w, x = w[:, :, None, :], x[:, :, None, :]
    nd = 1 if one_d else 2
    stride, dilation = _ints(node.stride, nd), _ints(node.dilation, nd)
    kernel = w.shape[2:]
    if isinstance(node.padding, str):
        if node.padding == "valid":
            pad = (0,) * (2 * nd)
        else:
            tot = [d * (k - 1) for d, k in zip(dilation, kernel[-nd:], strict=True)]
            pad = tuple(v for t in tot for v in (t // 2, t - t // 2))
    else:
        pad = tuple(v for p in _ints(node.padding, nd) for v in (p, p))
    if one_d:
        stride, dilation, pad = (1, *stride), (1, *dilation), (0, 0, *pad)
    groups = int(node.groups or 1)
    c_out, c_group = w.shape[:2]
    out = None
    for a, b, view in _windows(x, kernel, stride, pad, dilation):
        part = np.concatenate(
            [
                np.einsum(
                    "oc,bchw->bohw",
                    w[g * (c_out // groups) : (g + 1) * (c_out // groups), :, a, b],
                    view[:, g * c_group : (g + 1) * c_group],
                )
                for g in range(groups)
            ],
            axis=1,
        )
        out = part if out is None else out + part
    bias = np.zeros(c_out, dtype=x.dtype) if node.bias is None else np.asarray(node.bias, dtype=x.dtype).reshape(-1)
    out = out + bias[None, :, None, None]
    return out[:, :, 0, :] if one_d else out


def _pool(name: str, node: nir.NIRNode, x: np.ndarray) -> np.ndarray:
    x = _structured(name, node, x, 3)
    kernel = _ints(node.kernel_size, 2)
    stride = _ints(node.stride if node.stride is not None else kernel, 2)
    p = _ints(node.padding if node.padding is not None else 0, 2)
    out = None
    for _, _, view in _windows(x, kernel, stride, (p[0], p[0], p[1], p[1]), (1, 1)):
        out = view.copy() if out is None else out + view
    if isinstance(node, nir.AvgPool2d):
        out = out / x.dtype.type(kernel[0] * kernel[1])
    return out


def _flatten(node: nir.Flatten, x: np.ndarray) -> np.ndarray:
    shape = x.shape[1:]
    nd = len(shape)
    start = node.start_dim + nd if node.start_dim < 0 else node.start_dim
    end = node.end_dim + nd if node.end_dim < 0 else node.end_dim
    if not (0 <= start <= end < nd):
        return x.reshape(x.shape[0], -1)
    return x.reshape(x.shape[0], *shape[:start], -1, *shape[end + 1 :])


def apply_stateless(name: str, node: nir.NIRNode, x: np.ndarray) -> np.ndarray:
    """One stateless node on a (batch, *shape) value, in x's dtype."""
    dt = x.dtype
    if isinstance(node, (nir.Affine, nir.Linear)):
        out = x.reshape(x.shape[0], -1) @ np.asarray(node.weight, dtype=dt).T
        if isinstance(node, nir.Affine) and node.bias is not None:
            out = out + np.asarray(node.bias, dtype=dt)
        return out
    if isinstance(node, nir.Scale):
        scale = np.asarray(node.scale, dtype=dt)
        return (x.reshape(x.shape[0], -1) * scale.reshape(-1)).reshape(x.shape) if scale.size > 1 else x * scale
    if isinstance(node, nir.Flatten):
        return _flatten(node, x)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        return _conv(name, node, x)
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        return _pool(name, node, x)
    return x  # Output


def add_values(a: np.ndarray | None, b: np.ndarray) -> np.ndarray:
    """Sum of two inputs of one node (same size, possibly different shapes: the first one's shape wins)."""
    if a is None:
        return b
    if a.shape != b.shape:
        b = b.reshape(a.shape)
    return a + b

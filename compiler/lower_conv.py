"""Conv1d / Conv2d / SumPool2d / AvgPool2d lowered to one weight matrix over flattened C×H×W.

A chip core sees only neurons and synapses, so a convolution becomes the (mostly zero) matrix that maps
the flattened input (C order, as numpy and torch flatten) to the flattened output. PyTorch semantics:
integer or per-axis stride / padding / dilation, ``padding="same"`` pads ``d·(k − 1)`` split with the
smaller half first, ``groups`` splits channels; AvgPool2d divides by the full kernel area (torch's
``count_include_pad=True``). The matrix is dense when small and CSR above ``weights.DENSE_LIMIT``.
"""

from __future__ import annotations

import nir
import numpy as np

from neurodeploy.compiler import weights as wt
from neurodeploy.errors import CompileError
from neurodeploy.limits import check_count

Shape = tuple[int, ...]


def _pair(name: str, field: str, value: object, ndim: int) -> tuple[int, ...]:
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, ndim)
    if arr.size != ndim or not np.all(arr == np.round(arr)):
        raise CompileError(
            f"{field} {np.asarray(value).tolist()} is not {ndim} integer(s)",
            f"node {name!r}",
            f"give {field} as an int or {ndim} ints",
        )
    return tuple(int(v) for v in arr)


def _as_2d(name: str, node: nir.NIRNode, in_shape: Shape) -> tuple[np.ndarray, Shape, dict]:
    """Weight (Cout, Cin/g, kH, kW), input (C, H, W) and 2-D stride/padding/dilation for any conv node."""
    weight = np.asarray(node.weight, dtype=float)
    one_d = isinstance(node, nir.Conv1d)
    ndim = 1 if one_d else 2
    if weight.ndim != ndim + 2:
        raise CompileError(
            f"weight has {weight.ndim} dimensions, expected {ndim + 2}",
            f"node {name!r}",
            "Conv weights are (C_out, C_in/groups, kernel...)",
        )
    if not np.all(np.isfinite(weight)):
        raise CompileError("weight contains NaN or inf", f"node {name!r}", "replace them with finite numbers")
    if len(in_shape) != ndim + 1:
        raise CompileError(
            f"input shape {list(in_shape)} is not (C, {'L' if one_d else 'H, W'})",
            f"node {name!r}",
            "give the Input node (or the conv's input_shape) the full channel/spatial shape",
        )
    stride = _pair(name, "stride", node.stride, ndim)
    dilation = _pair(name, "dilation", node.dilation, ndim)
    kernel = weight.shape[2:]
    if isinstance(node.padding, str):
        if node.padding == "valid":
            padding = (0,) * ndim
        else:  # same: torch pads d(k - 1) in total, the smaller half before
            if any(s != 1 for s in stride):
                raise CompileError("padding='same' needs stride 1", f"node {name!r}", "use integer padding")
            padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel, strict=True))
            extra = tuple(d * (k - 1) % 2 for d, k in zip(dilation, kernel, strict=True))
            if any(extra):
                raise CompileError(
                    "padding='same' with an even dilated kernel pads asymmetrically",
                    f"node {name!r}",
                    "use an odd kernel or explicit padding",
                )
    else:
        padding = _pair(name, "padding", node.padding, ndim)
    if one_d:
        weight = weight[:, :, None, :]
        in_shape = (in_shape[0], 1, in_shape[1])
        stride, padding, dilation = (1, *stride), (0, *padding), (1, *dilation)
    return weight, in_shape, {"stride": stride, "padding": padding, "dilation": dilation}


def _conv_matrix(
    name: str, weight: np.ndarray, in_shape: Shape, stride: Shape, padding: Shape, dilation: Shape, groups: int
) -> tuple[wt.Matrix, Shape]:
    c_out, c_group, kh, kw = weight.shape
    c_in, h, w = in_shape
    if groups < 1 or c_in % groups or c_out % groups or c_in // groups != c_group:
        raise CompileError(
            f"{c_in} input channels, {c_out} output channels and groups={groups} do not match "
            f"a weight of {c_group} input channels per group",
            f"node {name!r}",
            "check the conv's weight shape, groups and the input shape",
        )
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if ho < 1 or wo < 1:
        raise CompileError(
            f"the kernel does not fit the input {list(in_shape)}",
            f"node {name!r}",
            "use a smaller kernel or more padding",
        )
    check_count(c_out * ho * wo, "neurons", "its output", f"node {name!r}")
    check_count(c_out * ho * wo * c_group * kh * kw, "synapses", "the expanded convolution", f"node {name!r}")
    co = np.arange(c_out)[:, None, None, None]
    cl = np.arange(c_group)[None, :, None, None]
    ci = (co // (c_out // groups)) * c_group + cl
    rows_all, cols_all, data_all = [], [], []
    for a in range(kh):
        ih = np.arange(ho) * stride[0] - padding[0] + a * dilation[0]
        oh_ok = np.nonzero((ih >= 0) & (ih < h))[0]
        for b in range(kw):
            iw = np.arange(wo) * stride[1] - padding[1] + b * dilation[1]
            ow_ok = np.nonzero((iw >= 0) & (iw < w))[0]
            if not oh_ok.size or not ow_ok.size:
                continue
            oh = oh_ok[None, None, :, None]
            ow = ow_ok[None, None, None, :]
            rows = (co * ho + oh) * wo + ow
            cols = (ci * h + ih[oh]) * w + iw[ow]
            data = np.broadcast_to(weight[:, :, a, b][:, :, None, None], np.broadcast_shapes(rows.shape, cols.shape))
            rows, cols = np.broadcast_arrays(rows, cols)
            rows_all.append(rows.reshape(-1))
            cols_all.append(cols.reshape(-1))
            data_all.append(data.reshape(-1))
    shape = (c_out * ho * wo, c_in * h * w)
    if not rows_all:
        return wt.from_coo(np.zeros(0, int), np.zeros(0, int), np.zeros(0), shape), (c_out, ho, wo)
    mat = wt.from_coo(np.concatenate(rows_all), np.concatenate(cols_all), np.concatenate(data_all), shape)
    return mat, (c_out, ho, wo)


def conv_map(name: str, node: nir.NIRNode, in_shape: Shape) -> tuple[wt.Matrix, np.ndarray, Shape]:
    """(matrix, bias, output shape) of a Conv1d/Conv2d node on a (C, L) / (C, H, W) input."""
    weight, shape2d, geo = _as_2d(name, node, in_shape)
    groups = int(getattr(node, "groups", 1) or 1)
    mat, (c_out, ho, wo) = _conv_matrix(name, weight, shape2d, groups=groups, **geo)
    bias_raw = getattr(node, "bias", None)
    bias = np.zeros(c_out) if bias_raw is None else np.asarray(bias_raw, dtype=float).reshape(-1)
    if bias.size == 1 and c_out > 1:
        bias = np.full(c_out, float(bias[0]))
    if bias.size != c_out or not np.all(np.isfinite(bias)):
        raise CompileError(
            f"bias has {bias.size} finite values for {c_out} output channels",
            f"node {name!r}",
            "give one bias per output channel",
        )
    out_shape = (c_out, wo) if isinstance(node, nir.Conv1d) else (c_out, ho, wo)
    return mat, np.repeat(bias, ho * wo), out_shape


def pool_map(name: str, node: nir.NIRNode, in_shape: Shape) -> tuple[wt.Matrix, Shape]:
    """(matrix, output shape) of SumPool2d / AvgPool2d: a per-channel conv with a ones kernel."""
    if len(in_shape) != 3:
        raise CompileError(
            f"input shape {list(in_shape)} is not (C, H, W)",
            f"node {name!r}",
            "pooling needs channel and spatial dimensions; check the Input shape",
        )
    kernel = _pair(name, "kernel_size", node.kernel_size, 2)
    stride = _pair(name, "stride", node.stride if node.stride is not None else kernel, 2)
    padding = _pair(name, "padding", node.padding if node.padding is not None else 0, 2)
    channels = in_shape[0]
    value = 1.0 / (kernel[0] * kernel[1]) if isinstance(node, nir.AvgPool2d) else 1.0
    weight = np.full((channels, 1, *kernel), value)
    mat, out_shape = _conv_matrix(name, weight, tuple(in_shape), stride, padding, (1, 1), groups=channels)
    return mat, out_shape


def conv_out_shape(name: str, node: nir.NIRNode, in_shape: Shape) -> Shape:
    """Output shape only (cheap: no matrix), for shape inference."""
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        kernel = _pair(name, "kernel_size", node.kernel_size, 2)
        stride = _pair(name, "stride", node.stride if node.stride is not None else kernel, 2)
        padding = _pair(name, "padding", node.padding if node.padding is not None else 0, 2)
        dims = [(n + 2 * p - k) // s + 1 for n, p, k, s in zip(in_shape[1:], padding, kernel, stride, strict=True)]
        return (in_shape[0], *dims)
    weight, shape2d, geo = _as_2d(name, node, in_shape)
    _, _, kh, kw = weight.shape
    dims = [
        (n + 2 * p - d * (k - 1) - 1) // s + 1
        for n, p, d, k, s in zip(shape2d[1:], geo["padding"], geo["dilation"], (kh, kw), geo["stride"], strict=True)
    ]
    if isinstance(node, nir.Conv1d):
        return (weight.shape[0], dims[1])
    return (weight.shape[0], *dims)

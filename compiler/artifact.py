"""The .ndp artifact: one HDF5 file holding a compiled network, versioned, checksummed, written atomically.

Layout: root attributes (format, schema_version, neurodeploy_version, created, checksum); ``ir/`` and
``core/`` groups with one subgroup per population and projection; ``profile`` (the TOML snapshot);
``conventions`` and ``report`` as JSON attributes. The checksum is a SHA-256 over every dataset and
attribute except itself, so a flipped bit or a truncated file is caught on load.

A projection's ``weight`` is a dataset (dense) or, for scipy.sparse weights, a group with the CSR arrays
``data``, ``indices``, ``indptr`` and ``shape`` (attribute ``format = "csr"``). Files holding a CSR
weight are written as schema version 2, all others as version 1, so a release that reads only version
1 says so instead of failing on a missing dataset; this release reads both.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from neurodeploy.atomic import atomic_write
from neurodeploy.compiler import weights as wt
from neurodeploy.compiler.ir import Conventions, NetworkIR, Population, Projection
from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection, Readout, ReadoutTerm
from neurodeploy.errors import ArtifactError, NeurodeployError
from neurodeploy.nirio import refuse_outside_storage
from neurodeploy.textsafe import shown

FORMAT = "neurodeploy-compiled"
SCHEMA_VERSION = 3  # newest layout written (2 adds CSR weights, 3 host readouts)
READABLE_VERSIONS = (1, 2, 3)


def _digest(root: h5py.Group) -> str:
    sha = hashlib.sha256()

    def attrs(obj: h5py.HLObject, path: str) -> None:
        for key in sorted(obj.attrs):
            if path == "/" and key == "checksum":
                continue
            value = obj.attrs[key]
            sha.update(f"{path}@{key}=".encode())
            sha.update(np.asarray(value).tobytes() if not isinstance(value, str) else value.encode())

    def visit(group: h5py.Group, path: str) -> None:
        attrs(group, path)
        for key in sorted(group):
            item = group[key]
            sub = f"{path.rstrip('/')}/{key}"
            if isinstance(item, h5py.Group):
                visit(item, sub)
            else:
                data = item[()]
                sha.update(f"{sub}:{data.dtype.str}:{data.shape}".encode())
                sha.update(np.ascontiguousarray(data).tobytes())
                attrs(item, sub)

    visit(root, "/")
    return sha.hexdigest()


def _write_population(group: h5py.Group, attrs: dict[str, Any], params: dict[str, np.ndarray]) -> None:
    for key, value in attrs.items():
        group.attrs[key] = value
    for key, value in params.items():
        group.create_dataset(key, data=np.asarray(value))


def _write_weight(group: h5py.Group, weight: Any) -> None:
    if wt.is_sparse(weight):
        c = wt.csr(weight)
        sub = group.create_group("weight")
        sub.attrs["format"] = "csr"
        for key, value in (
            ("data", c.data),
            ("indices", c.indices),
            ("indptr", c.indptr),
            ("shape", np.asarray(c.shape, dtype=np.int64)),
        ):
            sub.create_dataset(key, data=value)
    else:
        group.create_dataset("weight", data=np.asarray(weight))


def _read_weight(group: h5py.Group) -> Any:
    item = group["weight"]
    if isinstance(item, h5py.Group):
        if item.attrs.get("format") != "csr":
            raise ValueError(f"unknown weight format {item.attrs.get('format')!r}")
        import scipy.sparse as sp

        shape = tuple(int(v) for v in item["shape"][()])
        return sp.csr_matrix((item["data"][()], item["indices"][()], item["indptr"][()]), shape=shape)
    return item[()]


def _write_readouts(group: h5py.Group, readouts: list[Readout]) -> None:
    """Host readouts (``emulator.network.Readout``): one group each, one subgroup per term."""
    for i, r in enumerate(readouts):
        sub = group.create_group(f"{i:04d}")
        sub.attrs.update({"name": r.name, "size": r.size, "nodes": json.dumps(r.nodes)})
        for d, bias in r.biases.items():
            sub.create_dataset(f"bias_{int(d):06d}", data=np.asarray(bias, dtype=float))
        for j, term in enumerate(r.terms):
            t = sub.create_group(f"terms/{j:04d}")
            t.attrs.update({"src": term.src, "delay": int(term.delay)})
            _write_weight(t, term.weight)


def _read_readouts(f: h5py.File, where: str) -> list[Readout]:
    if "readouts" not in f:
        return []
    out = []
    for g in _members(f, "readouts"):
        biases = {int(k[5:]): g[k][()] for k in g if k.startswith("bias_")}
        terms = [ReadoutTerm(str(t.attrs["src"]), _read_weight(t), int(t.attrs["delay"])) for t in _members(g, "terms")]
        out.append(Readout(str(g.attrs["name"]), _size(g, where), terms, biases, json.loads(g.attrs["nodes"])))
    return out


def _check_readouts(core: CoreNetwork) -> None:
    """A readout that reads an unknown population or has the wrong widths is a malformed file."""
    sizes = {p.name: p.size for p in core.populations}
    for r in core.readouts:
        for t in r.terms:
            if t.src not in sizes or tuple(t.weight.shape) != (r.size, sizes[t.src]) or t.delay < 0:
                raise ValueError(f"readout {r.name!r} does not fit its source {t.src!r}")
        if any(np.shape(b) != (r.size,) or d < 0 for d, b in r.biases.items()):
            raise ValueError(f"readout {r.name!r} has a bias of the wrong width")


def _write_ir(group: h5py.Group, ir: NetworkIR) -> None:
    group.attrs["inputs"] = json.dumps(ir.inputs)
    group.attrs["outputs"] = json.dumps(ir.outputs)
    for i, pop in enumerate(ir.populations):
        attrs = {
            "name": pop.name,
            "size": pop.size,
            "kind": pop.kind,
            "reset": pop.reset,
            "source_node": pop.source_node,
            "reset_rule": pop.reset_rule,
            "reset_delay": pop.reset_delay,
        }
        if pop.shape:
            attrs["shape"] = json.dumps([int(d) for d in pop.shape])
        _write_population(group.create_group(f"populations/{i:04d}"), attrs, pop.params())
    for i, pr in enumerate(ir.projections):
        attrs = {"name": pr.name, "src": pr.src, "dst": pr.dst, "delay": pr.delay, "source_node": pr.source_node}
        sub = group.create_group(f"projections/{i:04d}")
        _write_population(sub, attrs, {})
        _write_weight(sub, pr.weight)


def _write_core(group: h5py.Group, core: CoreNetwork) -> None:
    group.attrs["inputs"] = json.dumps(core.inputs)
    group.attrs["outputs"] = json.dumps(core.outputs)
    group.attrs["numerics"] = core.numerics
    group.attrs["arithmetic"] = core.arithmetic
    for i, pop in enumerate(core.populations):
        attrs = {
            "name": pop.name,
            "size": pop.size,
            "model": pop.model,
            "reset": pop.reset,
            "spiking": pop.spiking,
            "scale": pop.scale,
            "lag": -1 if pop.lag is None else pop.lag,
            "reset_rule": pop.reset_rule,
            "reset_delay": pop.reset_delay,
        }
        _write_population(group.create_group(f"populations/{i:04d}"), attrs, pop.params)
    for i, pr in enumerate(core.projections):
        attrs = {
            "name": pr.name,
            "src": pr.src,
            "dst": pr.dst,
            "delay": pr.delay,
            "weight_exp": pr.weight_exp,
            "num_weight_bits": pr.num_weight_bits,
            "sign_mode": pr.sign_mode,
            "synapse": pr.synapse,
        }
        sub = group.create_group(f"projections/{i:04d}")
        _write_population(sub, attrs, {})
        _write_weight(sub, pr.weight)


def write_artifact(
    path: str | Path, ir: NetworkIR, core: CoreNetwork, profile_text: str, report: dict[str, Any], version: str
) -> Path:
    """Write the artifact atomically (see ``neurodeploy.atomic``)."""

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            sparse = any(wt.is_sparse(p.weight) for p in [*ir.projections, *core.projections])
            # the oldest layout that holds the network, so older releases read what they can run
            f.attrs["schema_version"] = 3 if core.readouts else (2 if sparse else 1)
            f.attrs["neurodeploy_version"] = version
            f.attrs["conventions"] = json.dumps(ir.conventions.to_dict())
            f.attrs["profile"] = profile_text
            f.attrs["report"] = json.dumps(report, default=_json_default)
            _write_ir(f.create_group("ir"), ir)
            _write_core(f.create_group("core"), core)
            if core.readouts:
                _write_readouts(f.create_group("readouts"), core.readouts)
            f.attrs["checksum"] = _digest(f)

    try:
        return atomic_write(path, write, example="model.ndp", size_hint=_artifact_bytes(ir, core, profile_text))
    except NeurodeployError as err:
        raise ArtifactError(err.what, err.where, err.hint) from None


def _artifact_bytes(ir: NetworkIR, core: CoreNetwork, profile_text: str) -> int:
    """About what the artifact takes on disk: every array it stores plus the metadata."""
    total = len(profile_text.encode()) + (64 << 10)
    for pr in [*ir.projections, *core.projections]:
        w = pr.weight
        if wt.is_sparse(w):
            c = wt.csr(w)
            total += c.data.nbytes + c.indices.nbytes + c.indptr.nbytes
        else:
            total += np.asarray(w).nbytes
        total += 1024
    for pop in core.populations:
        total += sum(np.asarray(v).nbytes for v in pop.params.values()) + 1024
    for ipop in ir.populations:
        total += sum(v.nbytes for v in vars(ipop).values() if isinstance(v, np.ndarray)) + 1024
    return total


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _lag(group: h5py.Group) -> int | None:
    """A population's recorded lag; files written before it was stored derive it from delays (None)."""
    lag = int(group.attrs.get("lag", -1))
    return None if lag < 0 else lag


def _reset_rule(group: h5py.Group) -> dict[str, Any]:
    """A population's reset rule and delay; files written before they were stored used NIR's rule."""
    return {
        "reset_rule": str(group.attrs.get("reset_rule", "nir")),
        "reset_delay": bool(group.attrs.get("reset_delay", False)),
    }


def _members(group: h5py.Group, kind: str) -> list[h5py.Group]:
    return [group[kind][k] for k in sorted(group[kind])] if kind in group else []


def _shape(g: Any, where: str) -> tuple[int, ...]:
    """An input population's own shape, () when flat or written before shapes were kept."""
    if "shape" not in g.attrs:
        return ()
    try:
        shape = tuple(int(d) for d in json.loads(g.attrs["shape"]))
    except (TypeError, ValueError):
        raise ArtifactError("an input shape is not a list of integers", where, "recompile the model") from None
    if any(d < 1 for d in shape) or int(np.prod(shape, dtype=np.int64)) != int(g.attrs["size"]):
        raise ArtifactError(f"input shape {list(shape)} does not match its size", where, "recompile the model")
    return shape


def _size(g: Any, where: str) -> int:
    """A population's declared size, refused before anything is allocated for it when over the limit."""
    from neurodeploy.limits import check_count

    size, name = int(g.attrs["size"]), shown(str(g.attrs["name"]))
    if size < 0:
        raise ArtifactError(f"population {name!r} declares {size} neurons", where, "recompile the model")
    check_count(size, "neurons", f"population {name!r}", where)
    return size


def _params(group: h5py.Group) -> dict[str, np.ndarray]:
    return {k: group[k][()] for k in group}


def read_artifact(path: str | Path) -> dict[str, Any]:
    """Load and verify an artifact; every failure is one ArtifactError naming the file."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise ArtifactError("file not found", where, "check the path")
    try:
        refuse_outside_storage(path, where, "recompile the model with `neurodeploy compile`")
    except NeurodeployError as exc:
        raise ArtifactError(exc.what, where, exc.hint) from None
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise ArtifactError(
            "not an HDF5 file, or truncated", where, "recompile the model with `neurodeploy compile`"
        ) from None
    with f:
        try:
            if f.attrs.get("format") != FORMAT:
                raise ArtifactError(
                    "not a neurodeploy compiled artifact",
                    where,
                    "compile a NIR file first: neurodeploy compile MODEL.nir --profile loihi2",
                )
            version = int(f.attrs.get("schema_version", -1))
            if version not in READABLE_VERSIONS:
                raise ArtifactError(
                    f"artifact schema version {version} is not supported (this release reads "
                    f"{', '.join(map(str, READABLE_VERSIONS))})",
                    where,
                    "recompile the model with this release",
                )
            if f.attrs.get("checksum") != _digest(f):
                raise ArtifactError(
                    "checksum mismatch: the file was modified or corrupted",
                    where,
                    "recompile the model, or restore the file from a backup",
                )
            conventions = Conventions.from_dict(json.loads(f.attrs["conventions"]))
            ir_group, core_group = f["ir"], f["core"]
            ir_pops = [
                Population(
                    name=str(g.attrs["name"]),
                    size=_size(g, where),
                    kind=str(g.attrs["kind"]),
                    reset=str(g.attrs["reset"]),
                    source_node=str(g.attrs["source_node"]),
                    shape=_shape(g, where),
                    **_reset_rule(g),
                    **_params(g),
                )
                for g in _members(ir_group, "populations")
            ]
            ir_projs = [
                Projection(
                    str(g.attrs["name"]),
                    str(g.attrs["src"]),
                    str(g.attrs["dst"]),
                    _read_weight(g),
                    int(g.attrs["delay"]),
                    str(g.attrs["source_node"]),
                )
                for g in _members(ir_group, "projections")
            ]
            ir = NetworkIR(
                ir_pops,
                ir_projs,
                json.loads(ir_group.attrs["inputs"]),
                json.loads(ir_group.attrs["outputs"]),
                conventions,
            )
            core_pops = [
                CorePopulation(
                    str(g.attrs["name"]),
                    _size(g, where),
                    str(g.attrs["model"]),
                    _params(g),
                    str(g.attrs["reset"]),
                    bool(g.attrs["spiking"]),
                    float(g.attrs["scale"]),
                    _lag(g),
                    **_reset_rule(g),
                )
                for g in _members(core_group, "populations")
            ]
            core_projs = [
                CoreProjection(
                    str(g.attrs["name"]),
                    str(g.attrs["src"]),
                    str(g.attrs["dst"]),
                    _read_weight(g),
                    int(g.attrs["delay"]),
                    int(g.attrs["weight_exp"]),
                    int(g.attrs["num_weight_bits"]),
                    str(g.attrs["sign_mode"]),
                    int(g.attrs.get("synapse", 0)),  # artifacts written before Xylo's synaptic states: 0
                )
                for g in _members(core_group, "projections")
            ]
            core = CoreNetwork(
                core_pops,
                core_projs,
                json.loads(core_group.attrs["inputs"]),
                json.loads(core_group.attrs["outputs"]),
                str(core_group.attrs["numerics"]),
                arithmetic=str(core_group.attrs.get("arithmetic", "lava")),  # older artifacts: Lava's
            )
            core.readouts = ir.readouts = _read_readouts(f, where)
            _check_readouts(core)
            return {
                "ir": ir,
                "core": core,
                "profile_text": str(f.attrs["profile"]),
                "report": json.loads(f.attrs["report"]),
                "version": str(f.attrs["neurodeploy_version"]),
            }
        except ArtifactError:
            raise
        except (KeyError, ValueError, TypeError, OSError, RuntimeError) as exc:
            raise ArtifactError(f"artifact is incomplete or malformed: {exc}", where, "recompile the model") from None

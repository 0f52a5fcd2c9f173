"""The .ndp artifact: one HDF5 file holding a compiled network, versioned, checksummed, written atomically.

Layout: root attributes (format, schema_version, neurodeploy_version, created, checksum); ``ir/`` and
``core/`` groups with one subgroup per population and projection; ``profile`` (the TOML snapshot);
``conventions`` and ``report`` as JSON attributes. The checksum is a SHA-256 over every dataset and
attribute except itself, so a flipped bit or a truncated file is caught on load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from neurodeploy.compiler.ir import Conventions, NetworkIR, Population, Projection
from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.errors import ArtifactError

FORMAT = "neurodeploy-compiled"
SCHEMA_VERSION = 1


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


def _write_ir(group: h5py.Group, ir: NetworkIR) -> None:
    group.attrs["inputs"] = json.dumps(ir.inputs)
    group.attrs["outputs"] = json.dumps(ir.outputs)
    for i, pop in enumerate(ir.populations):
        attrs = {"name": pop.name, "size": pop.size, "kind": pop.kind, "reset": pop.reset,
                 "source_node": pop.source_node}
        _write_population(group.create_group(f"populations/{i:04d}"), attrs, pop.params())
    for i, pr in enumerate(ir.projections):
        attrs = {"name": pr.name, "src": pr.src, "dst": pr.dst, "delay": pr.delay, "source_node": pr.source_node}
        _write_population(group.create_group(f"projections/{i:04d}"), attrs, {"weight": pr.weight})


def _write_core(group: h5py.Group, core: CoreNetwork) -> None:
    group.attrs["inputs"] = json.dumps(core.inputs)
    group.attrs["outputs"] = json.dumps(core.outputs)
    group.attrs["numerics"] = core.numerics
    for i, pop in enumerate(core.populations):
        attrs = {"name": pop.name, "size": pop.size, "model": pop.model, "reset": pop.reset,
                 "spiking": pop.spiking, "scale": pop.scale}
        _write_population(group.create_group(f"populations/{i:04d}"), attrs, pop.params)
    for i, pr in enumerate(core.projections):
        attrs = {"name": pr.name, "src": pr.src, "dst": pr.dst, "delay": pr.delay, "weight_exp": pr.weight_exp,
                 "num_weight_bits": pr.num_weight_bits, "sign_mode": pr.sign_mode}
        _write_population(group.create_group(f"projections/{i:04d}"), attrs, {"weight": pr.weight})


def write_artifact(path: str | Path, ir: NetworkIR, core: CoreNetwork, profile_text: str,
                   report: dict[str, Any], version: str) -> Path:
    """Write atomically: a temporary file in the same folder, flushed, then renamed over ``path``."""
    path = Path(path)
    if path.is_dir():
        raise ArtifactError("the output path is a folder", str(path), "give a file name such as model.ndp")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ArtifactError("the output folder does not exist", str(folder), "create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["neurodeploy_version"] = version
            f.attrs["conventions"] = json.dumps(ir.conventions.to_dict())
            f.attrs["profile"] = profile_text
            f.attrs["report"] = json.dumps(report, default=_json_default)
            _write_ir(f.create_group("ir"), ir)
            _write_core(f.create_group("core"), core)
            f.attrs["checksum"] = _digest(f)
            f.flush()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _members(group: h5py.Group, kind: str) -> list[h5py.Group]:
    return [group[kind][k] for k in sorted(group[kind])] if kind in group else []


def _params(group: h5py.Group) -> dict[str, np.ndarray]:
    return {k: group[k][()] for k in group}


def read_artifact(path: str | Path) -> dict[str, Any]:
    """Load and verify an artifact; every failure is one ArtifactError naming the file."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise ArtifactError("file not found", where, "check the path")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise ArtifactError("not an HDF5 file, or truncated", where,
                            "recompile the model with `neurodeploy compile`") from None
    with f:
        try:
            if f.attrs.get("format") != FORMAT:
                raise ArtifactError("not a neurodeploy compiled artifact", where,
                                    "compile a NIR file first: neurodeploy compile MODEL.nir --profile loihi2")
            version = int(f.attrs.get("schema_version", -1))
            if version != SCHEMA_VERSION:
                raise ArtifactError(f"artifact schema version {version} is not supported (this release reads "
                                    f"{SCHEMA_VERSION})", where, "recompile the model with this release")
            if f.attrs.get("checksum") != _digest(f):
                raise ArtifactError("checksum mismatch: the file was modified or corrupted", where,
                                    "recompile the model, or restore the file from a backup")
            conventions = Conventions.from_dict(json.loads(f.attrs["conventions"]))
            ir_group, core_group = f["ir"], f["core"]
            ir_pops = [Population(name=str(g.attrs["name"]), size=int(g.attrs["size"]), kind=str(g.attrs["kind"]),
                                  reset=str(g.attrs["reset"]), source_node=str(g.attrs["source_node"]), **_params(g))
                       for g in _members(ir_group, "populations")]
            ir_projs = [Projection(str(g.attrs["name"]), str(g.attrs["src"]), str(g.attrs["dst"]), g["weight"][()],
                                   int(g.attrs["delay"]), str(g.attrs["source_node"]))
                        for g in _members(ir_group, "projections")]
            ir = NetworkIR(ir_pops, ir_projs, json.loads(ir_group.attrs["inputs"]),
                           json.loads(ir_group.attrs["outputs"]), conventions)
            core_pops = [CorePopulation(str(g.attrs["name"]), int(g.attrs["size"]), str(g.attrs["model"]), _params(g),
                                        str(g.attrs["reset"]), bool(g.attrs["spiking"]), float(g.attrs["scale"]))
                         for g in _members(core_group, "populations")]
            core_projs = [CoreProjection(str(g.attrs["name"]), str(g.attrs["src"]), str(g.attrs["dst"]),
                                         g["weight"][()], int(g.attrs["delay"]), int(g.attrs["weight_exp"]),
                                         int(g.attrs["num_weight_bits"]), str(g.attrs["sign_mode"]))
                          for g in _members(core_group, "projections")]
            core = CoreNetwork(core_pops, core_projs, json.loads(core_group.attrs["inputs"]),
                               json.loads(core_group.attrs["outputs"]), str(core_group.attrs["numerics"]))
            return {
                "ir": ir, "core": core, "profile_text": str(f.attrs["profile"]),
                "report": json.loads(f.attrs["report"]), "version": str(f.attrs["neurodeploy_version"]),
            }
        except ArtifactError:
            raise
        except (KeyError, ValueError, TypeError, OSError) as exc:
            raise ArtifactError(f"artifact is incomplete or malformed: {exc}", where, "recompile the model") from None

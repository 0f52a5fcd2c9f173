"""The public entry points ``compile``, ``load_compiled`` and ``run``, with checks at the boundary.

They call the compiler and the runner unchanged. What they add is the promise that bad input ends in a
``NeurodeployError`` (one line in the CLI, exit status 2), not a ZeroDivisionError from deep inside:
each check below names an input the bad-input fuzzer (``tests/test_fuzz.py``) found escaping.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.errors import ArtifactError, CompileError, NeurodeployError, check_seed

RECORDABLE = ("spikes", "u", "v")
MAX_CORE_INDEX = 1 << 20  # a placement naming core 10**9 would allocate a usage record per core before it
MAX_BLOCK = 1 << 31  # neurons in one block of a placement override
MAX_DELAY = 1 << 20  # the emulator keeps a spike history as long as the longest delay


def _check_conventions(graph: Any, dt: object, reset: object) -> None:
    """dt and reset from arguments or the file's metadata must be a number and a word before they reach float()."""
    meta = getattr(graph, "metadata", None) or {}
    for where, value in (("dt", dt), ("metadata neurodeploy.dt", meta.get("neurodeploy.dt"))):
        if value is None:
            continue
        number = np.asarray(value)
        if number.dtype.kind not in "iuf" or number.size != 1:
            raise CompileError(f"dt must be a number of seconds, got {value!r}", where, "pass dt=... in seconds")
        if not (math.isfinite(float(number)) and float(number) > 0):
            raise CompileError(f"dt must be a positive number, got {float(number)!r}", where, "pass dt=... in seconds")
    for where, value in (("reset", reset), ("metadata neurodeploy.reset", meta.get("neurodeploy.reset"))):
        if value is not None and not isinstance(value, (str, np.str_, bytes)):
            raise CompileError(f"reset must be a word, got {value!r}", where, 'use "zero" or "subtract"')


def _check_placement(placement: object) -> None:
    """``{population: [core, ...]}`` or ``{population: {"blocks": [size, ...], "cores": [core, ...]}}``."""
    if placement is None:
        return
    if not isinstance(placement, Mapping):
        raise CompileError(
            "placement must map population names to lists of cores", "placement", 'pass e.g. {"hidden": [0, 1]}'
        )
    for name, spec in placement.items():
        where = f"placement of {name!r}"
        if isinstance(spec, Mapping):
            unknown = sorted(map(str, set(spec) - {"blocks", "cores"}))
            if unknown or not spec:
                raise CompileError(
                    f"placement of {name!r} has {'keys ' + str(unknown) if unknown else 'no keys'}",
                    "placement",
                    'give "blocks" (neurons per block), "cores" (one per block) or both',
                )
            sizes = _integers(spec.get("blocks", []), where, "block size", 1, MAX_BLOCK)
            cores = _integers(spec.get("cores", []), where, "core", 0, MAX_CORE_INDEX - 1)
            if "blocks" in spec and "cores" in spec and len(sizes) != len(cores):
                raise CompileError(
                    f"placement gives {len(sizes)} blocks and {len(cores)} cores", where, "give one core per block"
                )
        else:
            _integers(spec, where, "core", 0, MAX_CORE_INDEX - 1)


def _integers(values: object, where: str, what: str, low: int, high: int) -> list[int]:
    """A list of integers from low to high, or a one-line error naming the first bad one."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise CompileError(f"{what}s must be a list, got {values!r:.40}", where, f"list one {what} per block")
    out = list(values)
    for value in out:
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or not low <= int(value) <= high:
            raise CompileError(f"{what} {value!r:.40} is not valid", where, f"use integers from {low} to {high}")
    return [int(v) for v in out]


def compile(graph: Any, profile: Any = "loihi2", **options: Any) -> Any:  # noqa: A001 - the public verb
    """Map a NIR graph (or a NetworkIR) onto a profile; returns a ``CompiledNetwork``.

    The keyword options are those of ``neurodeploy.compiler.compiled.compile_graph`` (``dt``, ``reset``,
    ``rounding``, ``seed``, ``per_channel``, ``placement``, ``sample_inputs``, ``strict``, ...), passed
    through unchanged. Bad input raises ``NeurodeployError`` (CompileError, ProfileError).
    """
    from neurodeploy.compiler.compiled import compile_graph
    from neurodeploy.hw_profiles import get

    _check_conventions(graph, options.get("dt"), options.get("reset"))
    _check_placement(options.get("placement"))
    if "seed" in options:
        options["seed"] = check_seed(options["seed"])
    prof = get(profile)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            compiled = compile_graph(graph, prof, **options)
    except (ZeroDivisionError, OverflowError, ValueError) as exc:
        # weight_bits = 1 leaves no mantissa in mixed sign mode (ZeroDivisionError); weight_exp = [-1e8, 1e8]
        # overflows 2**exp; a bias of 1e308 makes log2 fail ("math domain error")
        if isinstance(exc, ValueError) and "math domain error" not in str(exc):
            raise
        raise CompileError(
            f"the network's numbers do not fit the profile's formats ({exc})",
            f"profile {prof.name!r}",
            "check for extreme weights or biases, and the profile's weight_bits, weight_exp and bias_exp",
        ) from None
    # the warnings travel with the artifact (``inspect`` shows them) and are raised here as well
    compiled.warnings = list(dict.fromkeys(str(w.message) for w in caught))
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=2)
    return compiled


def _check_network(net: Any, params: Mapping[str, tuple[str, ...]], what: str, where: str) -> None:
    """Names, sizes, parameter arrays and weight shapes agree: a file can pass its checksum and still lie."""

    def bad(problem: str) -> ArtifactError:
        return ArtifactError(f"artifact is inconsistent: {what} {problem}", where, "recompile the model")

    sizes = {p.name: p.size for p in net.populations}
    if len(sizes) != len(net.populations):
        raise bad("has two populations with the same name")
    readouts = {r.name for r in getattr(net, "readouts", [])}
    missing = [n for n in [*net.inputs, *net.outputs] if n not in sizes and n not in readouts]
    if missing:
        raise bad(f"names inputs or outputs {missing} that are not populations or readouts")
    for pop in net.populations:
        kind = getattr(pop, "model", getattr(pop, "kind", ""))
        if not isinstance(pop.size, int) or pop.size < 0:
            raise bad(f"population {pop.name!r} has size {pop.size!r}")
        if kind == "input":
            continue
        if kind not in params:
            raise bad(f"population {pop.name!r} has unknown model {kind!r}")
        values = pop.params if isinstance(getattr(pop, "params", None), dict) else pop.params()
        for key in params[kind]:
            arr = np.asarray(values.get(key)) if values.get(key) is not None else None
            if (
                arr is None
                or arr.dtype.kind not in "biuf"
                or arr.ndim not in (1, 2)
                or arr.shape[-1] != pop.size
                or (arr.dtype.kind == "f" and np.isnan(arr).any())
            ):
                raise bad(f"population {pop.name!r} lacks a valid {key!r} array of {pop.size} numbers")
    for pr in net.projections:
        if pr.src not in sizes or pr.dst not in sizes:
            raise bad(f"projection {pr.name!r} connects unknown populations {pr.src!r} -> {pr.dst!r}")
        shape = getattr(pr.weight, "shape", None)
        kind = getattr(getattr(pr.weight, "dtype", None), "kind", "")
        if shape != (sizes[pr.dst], sizes[pr.src]) or kind not in "biuf" or not kind:
            raise bad(
                f"projection {pr.name!r} has weights {shape} of {kind or 'no'} type, "
                f"expected ({sizes[pr.dst]}, {sizes[pr.src]}) numbers"
            )
        if not isinstance(pr.delay, int) or not 0 <= pr.delay <= MAX_DELAY:
            raise bad(f"projection {pr.name!r} has delay {pr.delay!r}")
        bits, exp = getattr(pr, "num_weight_bits", 8), getattr(pr, "weight_exp", 0)
        if not 1 <= bits <= 9 or not -64 <= exp <= 64:
            raise bad(f"projection {pr.name!r} has num_weight_bits {bits} and weight_exp {exp}")


def load_compiled(path: str | Path) -> Any:
    """Read an .ndp artifact back into a ``CompiledNetwork`` (checksum verified, structure checked)."""
    from neurodeploy.compiler.compiled import load_compiled as _load
    from neurodeploy.emulator.network import FLOAT_PARAMS, LOIHI_PARAMS, XYLO_PARAMS
    from neurodeploy.nirio import probe_hdf5

    if Path(path).is_file():
        crash = probe_hdf5(path)
        if crash:
            raise ArtifactError(f"artifact is corrupted: {crash}", str(path), "recompile the model")
    try:
        compiled = _load(path)
    except RuntimeError as exc:  # h5py raises RuntimeError for some corrupted B-trees and heaps
        raise ArtifactError(f"artifact is corrupted: {exc}", str(path), "recompile the model") from None
    models = {"loihi": LOIHI_PARAMS, "float": FLOAT_PARAMS, "xylo": XYLO_PARAMS, "xylo_output": XYLO_PARAMS}
    _check_network(compiled.core, models, "core network", str(path))
    _check_network(compiled.ir, {"cuba_lif": ("du", "dv", "v_th"), "cuba_li": ("du", "dv")}, "float IR", str(path))
    return compiled


def run(
    compiled: Any,
    inputs: Any,
    backend: str = "emulator",
    record: Iterable[str] | str = ("spikes",),
    populations: Iterable[str] | str | None = None,
) -> Any:
    """Run a CompiledNetwork on ``backend`` ("emulator", "lava" or "board"); see ``neurodeploy.runner.run``.

    ``record``: any of "spikes", "u", "v" (a single name is accepted). ``populations``: the ones to record
    (default all). Results are aligned to input time; spikes are uint8 counts per step on every profile.
    """
    from neurodeploy.runner import run as _run

    kinds = (record,) if isinstance(record, str) else tuple(record)
    bad = [k for k in kinds if k not in RECORDABLE]
    if bad or not kinds:
        raise NeurodeployError(f"cannot record {bad or 'nothing'}", "record", f"choose from {', '.join(RECORDABLE)}")
    if populations is not None:
        populations = [populations] if isinstance(populations, str) else list(populations)
        if not populations:
            raise NeurodeployError("no populations to record", "populations", "pass None to record all of them")
    return _run(compiled, inputs, backend=backend, record=kinds, populations=populations)

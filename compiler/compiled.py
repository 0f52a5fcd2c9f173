"""The compile pipeline and its product, CompiledNetwork.

normalize -> rules -> quantize (or scale search) -> place -> placement rules (-> evaluate against the
float reference on sample inputs).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nir
import numpy as np

from neurodeploy._version import __version__
from neurodeploy.compiler import weights as wt
from neurodeploy.compiler.artifact import read_artifact, write_artifact
from neurodeploy.compiler.ir import Conventions, NetworkIR
from neurodeploy.compiler.normalize import normalize
from neurodeploy.compiler.place import Placement, place
from neurodeploy.compiler.quantize import LayerQuantization, check_core_model, quantize
from neurodeploy.compiler.rules import Violation, check, check_placement
from neurodeploy.emulator.network import CoreNetwork
from neurodeploy.errors import CompileError
from neurodeploy.hw_profiles import Profile, get, parse_profile


@dataclass(eq=False)
class CompiledNetwork:
    """A network mapped onto one profile: float IR, chip-format CoreNetwork, placement and report."""

    ir: NetworkIR
    core: CoreNetwork
    profile: Profile
    placement: Placement
    quantization: list[LayerQuantization]
    violations: list[Violation] = field(default_factory=list)
    evaluation: dict[str, Any] = field(default_factory=dict)
    compile_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)  # what compile warned about; kept in the artifact

    @property
    def conventions(self) -> Conventions:
        return self.ir.conventions

    @property
    def report(self) -> dict[str, Any]:
        """Everything a user asks after compiling, as plain JSON-ready data."""
        weights = sum(wt.nnz(p.weight) for p in self.core.projections)
        footprint_bits = sum(c.memory_words * 64 for c in self.placement.cores)
        out: dict[str, Any] = {
            "profile": {"name": self.profile.name, "title": self.profile.title, "core_model": self.profile.core_model},
            "conventions": self.conventions.to_dict(),
            "populations": [{"name": p.name, "size": p.size, "model": p.model} for p in self.core.populations],
            "latency_steps": self.core.latency(),
            "cores": [c.to_dict() for c in self.placement.cores],
            "layers": [q.to_dict() for q in self.quantization],
            "violations": [v.to_dict() for v in self.violations],
            "metrics": {
                "ParameterCount": weights,
                "Footprint": footprint_bits // 8,
                "Cores": len(self.placement.cores),
            },
            "compile_seconds": round(self.compile_seconds, 4),
        }
        if self.core.readouts:  # stateless nodes before an Output: computed on the host, never dropped
            out["readouts"] = [
                {
                    "name": r.name,
                    "nodes": list(r.nodes),
                    "sources": list(dict.fromkeys(t.src for t in r.terms)),
                    "size": r.size,
                    "runs_on": "host",
                    "host_ops_per_step": r.host_ops_per_step(),
                }
                for r in self.core.readouts
            ]
        if self.evaluation:
            out["evaluation"] = self.evaluation
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return _finite(out)

    def save(self, path: str | Path) -> Path:
        """Write the versioned, checksummed .ndp artifact atomically."""
        extra = {
            "placement": self.placement.to_dict(),
            "quantization": [q.to_dict() for q in self.quantization],
            "violations": [v.to_dict() for v in self.violations],
            "evaluation": self.evaluation,
            "warnings": list(self.warnings),
        }  # no timings: identical compiles give byte-identical artifacts
        return write_artifact(path, self.ir, self.core, self.profile.text, _finite(extra), __version__)


def _finite(obj: Any) -> Any:
    """JSON has no inf/NaN: write them as strings so reports stay valid JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def load_compiled(path: str | Path) -> CompiledNetwork:
    """Read an .ndp artifact back into a CompiledNetwork (checksum verified)."""
    data = read_artifact(path)
    extra = data["report"]
    profile = parse_profile(data["profile_text"], f"{path} (profile snapshot)")
    quant = [LayerQuantization(**{k: v for k, v in q.items()}) for q in extra.get("quantization", [])]
    violations = [Violation(**v) for v in extra.get("violations", [])]
    return CompiledNetwork(
        data["ir"],
        data["core"],
        profile,
        Placement.from_dict(extra["placement"]),
        quant,
        violations,
        extra.get("evaluation", {}),
        float(extra.get("compile_seconds", 0.0)),
        [str(w) for w in extra.get("warnings", [])],
    )


def compile_graph(
    graph: nir.NIRGraph | NetworkIR,
    profile: str | Path | Profile = "loihi2",
    *,
    dt: float | None = None,
    reset: str | None = None,
    reset_rule: str | None = None,
    reset_delay: bool | None = None,
    loop_delay: str | None = None,
    refractory: int | None = None,
    rounding: str = "nearest",
    seed: int = 0,
    per_channel: bool = False,
    scale_search: bool = False,
    placement: dict[str, Any] | None = None,
    sample_inputs: np.ndarray | None = None,
    sample_labels: np.ndarray | None = None,
    strict: bool = True,
) -> CompiledNetwork:
    """Map a NIR graph onto a profile. With ``strict``, any design-rule violation raises CompileError.

    ``reset_rule`` ("nir", "snntorch", "snntorch_leaky") overrides the rule recorded per node
    (``compiler.ir``); ``refractory`` (steps) gives every spiking neuron a refractory period, on profiles
    that have one. ``per_channel`` gives every neuron its own quantization scale; ``scale_search``
    tries scale factors per layer on ``sample_inputs`` and keeps those closest to the float reference
    (see ``compiler.scale_search``). ``placement`` overrides the placer per population: a list of cores
    (one per block) or ``{"blocks": [sizes], "cores": [cores]}`` (see ``compiler.place``). With
    ``sample_inputs`` the report compares chip and float reference spike by spike; ``sample_labels``
    (one class per sample) adds both accuracies and the change. On Loihi cores that run also foresees
    saturation: u wraps and v saturations per layer with their headroom, and a ``SaturationWarning``
    when any happen (``compiler.saturation``).
    """
    start = time.perf_counter()
    prof = get(profile)
    check_core_model(prof)
    if isinstance(graph, NetworkIR):
        ir = graph
    else:
        ir = normalize(graph, dt=dt, reset=reset, reset_rule=reset_rule, reset_delay=reset_delay, loop_delay=loop_delay,
                       refractory=refractory)  # fmt: skip
    routed: list[str] = []
    if prof.core_model == "loihi":  # v is the only place a Loihi bias goes: current biases travel as input
        from neurodeploy.compiler.current_bias import route_current_biases

        ir, routed = route_current_biases(ir)
    violations = check(ir, prof)
    _raise_errors(violations, prof, strict)
    if scale_search:
        from neurodeploy.compiler.scale_search import search_scales

        core, quant = search_scales(ir, prof, sample_inputs, rounding, seed, per_channel)
    else:
        core, quant = quantize(ir, prof, rounding=rounding, seed=seed, per_channel=per_channel)
    for rep in quant:
        if rep.population in routed:
            rep.notes.append("bias into the synaptic current delivered exactly through the bias clock "
                             "(cost: the clock's one neuron, shared, and one input axon)")  # fmt: skip
    placed = place(ir, prof, placement)
    late = check_placement(ir, placed, prof)
    _raise_errors(late, prof, strict)
    compiled = CompiledNetwork(ir, core, prof, placed, quant, violations + late)
    if sample_inputs is not None:
        from neurodeploy.compiler.evaluate import evaluate

        compiled.evaluation = evaluate(compiled, sample_inputs, sample_labels)
        from neurodeploy.compiler.saturation import SaturationWarning, warning_text

        message = warning_text(compiled.evaluation, searched=scale_search)
        if message:
            warnings.warn(message, SaturationWarning, stacklevel=2)
    compiled.compile_seconds = time.perf_counter() - start
    return compiled


def _raise_errors(violations: list[Violation], prof: Profile, strict: bool) -> None:
    errors = [v for v in violations if v.severity == "error"]
    if errors and strict:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise CompileError(
            f"does not fit {prof.name}: {first.rule} is {first.actual}, limit {first.limit}{more}",
            first.node if first.node.startswith("core ") else f"node {first.node!r}",
            first.hint,
        )

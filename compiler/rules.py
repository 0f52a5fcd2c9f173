"""Design-rule checks: what a profile cannot hold, each with the node, the limit, the value and a way out."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from neurodeploy.compiler.ir import NetworkIR
from neurodeploy.hw_profiles import Profile


@dataclass(frozen=True)
class Violation:
    node: str
    rule: str
    limit: object
    actual: object
    hint: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.node}: {self.rule} (limit {self.limit}, got {self.actual}); {self.hint}"

    def to_dict(self) -> dict:
        out = asdict(self)
        out["limit"], out["actual"] = str(self.limit), str(self.actual)
        return out


def check(ir: NetworkIR, profile: Profile) -> list[Violation]:
    """Every rule the network breaks on this profile (empty when it fits)."""
    out: list[Violation] = []
    num = profile.numerics
    conv = ir.conventions
    modes = num.get("reset_modes", ["zero", "subtract"])
    if conv.reset not in modes:
        out.append(Violation("graph", "reset mode", "/".join(modes), conv.reset,
                             f"{profile.name} resets v to 0 only; retrain with a zero reset"))
    if conv.reset_delay:
        out.append(Violation("graph", "reset delay", "none", "one step",
                             "export with reset_delay=False (snnTorch) so the reset happens in the spiking step"))
    max_delay = num.get("max_delay")
    for pr in ir.projections:
        if max_delay is not None and pr.delay > max_delay:
            out.append(Violation(pr.source_node or pr.name, "synaptic delay", max_delay, pr.delay,
                                 "shorten the delay or split it across relay neurons"))
    fan_in_limit = profile.limit("fan_in_axons_per_core")
    for pop in ir.populations:
        if pop.kind == "input":
            continue
        if profile.core_model == "loihi" and np.any(pop.v_reset != 0):
            out.append(Violation(pop.name, "reset potential", 0.0, float(np.abs(pop.v_reset).max()),
                                 "Loihi resets v to 0; shift v_leak and v_threshold so the reset is 0"))
        fan_in = sum(ir.population(pr.src).size for pr in ir.incoming(pop.name))
        if fan_in_limit is not None and fan_in > fan_in_limit:
            out.append(Violation(pop.name, "fan-in axons per core", fan_in_limit, fan_in,
                                 "no core can receive this many distinct inputs; reduce the layer's inputs"))
    return out

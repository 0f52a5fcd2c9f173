"""Design-rule checks: what a profile cannot hold, each with the node, the limit, the value and a way out.

``check`` runs on the float IR before quantization (what no placement can fix: a neuron with more
inputs than a core has axons, a delay beyond the delay field, a reset the neuron model lacks);
``check_placement`` runs on the placement (cores over their limits, from a user's placement map or when no
placement exists; more cores than a chip has, a warning, or than the profile's ``chips`` hold, an error).
Errors stop a strict compile; warnings are reported only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from neurodeploy.compiler import weights as wt
from neurodeploy.compiler.ir import NetworkIR
from neurodeploy.compiler.place import Placement, parameter_signature, synapse_bits
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


def _weight_levels(profile: Profile) -> int | None:
    """Largest weight magnitude in grid steps (127 for Loihi's 8-bit mixed mantissas), None for float."""
    num = profile.numerics
    if profile.core_model == "loihi":
        return (256 - 2 ** (9 - int(num.get("weight_bits", 8)))) // 2 ** (9 - int(num.get("weight_bits", 8)))
    if "weight_magnitude_bits" in num:
        return 2 ** int(num["weight_magnitude_bits"]) - 1
    return None


def _neuron_rules(ir: NetworkIR, profile: Profile) -> list[Violation]:
    out: list[Violation] = []
    loihi = profile.core_model == "loihi"
    shared = profile.numerics.get("shared_parameters") == "core"
    for pop in ir.populations:
        if pop.kind == "input":
            continue
        if loihi and pop.kind == "cuba_li":
            out.append(
                Violation(
                    pop.name,
                    "neuron model",
                    "spiking CUBA LIF",
                    "non-spiking (LI/CubaLI/I)",
                    "end the network in a spiking layer, or compile for the ideal profile",
                )
            )
        if loihi and np.any(pop.v_reset != 0):
            out.append(
                Violation(
                    pop.name,
                    "reset potential",
                    0.0,
                    float(np.abs(pop.v_reset).max()),
                    "Loihi resets v to 0; shift v_leak and v_threshold so the reset is 0",
                )
            )
        if loihi and pop.kind == "cuba_lif" and np.any(pop.v_th <= 0):
            out.append(
                Violation(
                    pop.name,
                    "threshold",
                    "> 0",
                    float(pop.v_th.min()),
                    "Loihi thresholds are unsigned; rescale so v_threshold > 0",
                )
            )
        if shared and parameter_signature(pop) is None:
            distinct = len({tuple(float(v[i]) for v in pop.params().values()) for i in range(pop.size)})
            varying = [k for k, v in pop.params().items() if v.size and np.any(v != v.reshape(-1)[0])]
            names = sorted({_PARAM_NAMES.get(k, k) for k in varying})
            fix = ("train the layers feeding it without bias (bias=False), or with one shared bias"
                   if names == ["bias"] else "train with one value per layer")  # fmt: skip
            out.append(
                Violation(
                    pop.name,
                    "neuron parameters shared per core",
                    "1 set per core",
                    f"{distinct} sets (different {', '.join(names)})",
                    f"{profile.name} shares each neuron parameter per core, and this layer's neurons have "
                    f"different {' and '.join(names)}: {fix}, or split the layer by parameter set",
                )
            )
    return out


_PARAM_NAMES = {"bias_u": "bias", "bias_v": "bias", "v_th": "threshold", "du": "synaptic time constant",
                "dv": "membrane time constant", "v_reset": "reset potential"}  # fmt: skip


def _reset_rules(ir: NetworkIR, profile: Profile) -> list[Violation]:
    """The profile's reset modes, and NIR's rule (reset in the spiking step) on every chip but the ideal one.

    snnTorch's rule (``compiler.ir``: reset from the previous step's membrane, optionally one step late)
    is what the frameworks compute, not what a chip's neuron circuit does, so only ``kind = "ideal"`` runs it.
    """
    out: list[Violation] = []
    reset = ir.conventions.reset
    modes = profile.numerics.get("reset_modes", ["zero", "subtract"])
    if reset not in modes:
        mode = "zero" if "zero" in modes else modes[0]
        out.append(
            Violation(
                "graph",
                "reset mode",
                "/".join(modes),
                reset,
                f"{profile.name} resets by {' or '.join(modes)} only; retrain with that reset (snnTorch: "
                f'reset_mechanism="{mode}", reset_delay=False), then compile with --reset-rule nir '
                '(Python: reset_rule="nir")',
            )
        )
    ideal = profile.kind == "ideal"
    spiking = [p for p in ir.populations if p.kind == "cuba_lif"]
    late = [p for p in spiking if p.reset_delay and (p.reset_rule == "nir" or not ideal)]
    if late:
        hint = "export with reset_delay=False (snnTorch) so the reset happens in the spiking step"
        if ideal:
            hint += '; or export with from_torch, which records snnTorch\'s late reset as reset_rule="snntorch"'
        elif any(p.reset_rule != "nir" for p in late):
            hint += ', or compile for "ideal", which runs snnTorch\'s late reset'
        out.append(Violation(late[0].name, "reset delay", "none", f"one step ({len(late)} layer(s))", hint))
    foreign = [p for p in spiking if p.reset_rule != "nir"]
    if foreign and not ideal:
        out.append(
            Violation(
                foreign[0].name,
                "reset rule",
                "nir (reset in the spiking step)",
                f"{foreign[0].reset_rule} ({len(foreign)} layer(s))",
                f"{profile.name} cannot reset from the previous step's membrane as snnTorch does; compile "
                'with --reset-rule nir (Python: reset_rule="nir") to reset in the spiking step as the chip '
                'does (a spike may come a step earlier or later than in snnTorch), or compile for "ideal"',
            )
        )
    out += _refractory_rules(ir, profile, spiking)
    return out


def _refractory_rules(ir: NetworkIR, profile: Profile, spiking: list) -> list[Violation]:
    """A refractory period needs the profile's ``refractory`` capability, within its ``max_refractory``,
    and NIR's reset rule (the hold starts in the spiking step)."""
    steps = ir.conventions.refractory
    if not steps or not spiking:
        return []
    num = profile.numerics
    if not num.get("refractory", False):
        loihi = profile.core_model == "loihi"
        capable = "loihi1 (its refractory counter)" if loihi else "a profile with refractory = true"
        return [
            Violation(
                "graph",
                "refractory period",
                "none",
                f"{steps} steps",
                f"{profile.name}'s neurons have no refractory period; compile with refractory=0, or for {capable}",
            )
        ]
    top = num.get("max_refractory")
    if top is not None and steps > int(top):
        return [
            Violation(
                "graph",
                "refractory period",
                f"{top} steps",
                f"{steps} steps",
                f"{profile.name}'s refractory counter holds at most {top} steps; shorten the period",
            )
        ]
    foreign = [p for p in spiking if p.reset_rule != "nir"]
    if foreign:
        return [
            Violation(
                foreign[0].name,
                "refractory period",
                "NIR reset rule",
                foreign[0].reset_rule,
                'a refractory period starts in the spiking step; compile with reset_rule="nir"',
            )
        ]
    return []


def check(ir: NetworkIR, profile: Profile) -> list[Violation]:
    """Every rule the network breaks on this profile before placement (empty when it fits)."""
    out: list[Violation] = []
    num = profile.numerics
    out += _reset_rules(ir, profile)
    out += _neuron_rules(ir, profile)
    max_delay = num.get("max_delay")
    for pr in ir.projections:
        if max_delay is not None and pr.delay > max_delay:
            out.append(
                Violation(
                    pr.source_node or pr.name,
                    "synaptic delay (steps)",
                    max_delay,
                    pr.delay,
                    f"projection {pr.name}: shorten the delay, use a larger dt, or relay the spikes "
                    "through intermediate neurons",
                )
            )
    axon_max = profile.limit("fan_in_axons_per_core")
    per_neuron_max = profile.limit("fan_in_per_neuron")
    mem_bits = profile.limit("synapse_memory_bits_per_core")
    bits = synapse_bits(profile)
    levels = _weight_levels(profile)
    for pop in ir.populations:
        incoming = ir.incoming(pop.name)
        if pop.kind == "input" or not incoming:
            continue
        fan_in = sum((wt.row_nnz(pr.weight) for pr in incoming), np.zeros(pop.size, dtype=np.int64))
        worst = int(fan_in.max())
        if axon_max is not None and worst > axon_max:
            out.append(
                Violation(
                    pop.name,
                    "fan-in axons per core",
                    axon_max,
                    worst,
                    f"a neuron has {worst} inputs and no core can receive more than {axon_max}; "
                    "prune its inputs or split the layer before it",
                )
            )
        if per_neuron_max is not None and worst > per_neuron_max:
            out.append(
                Violation(
                    pop.name,
                    "synapses per neuron",
                    per_neuron_max,
                    worst,
                    f"{profile.name} neurons have {per_neuron_max} input synapses; prune or use "
                    "sparser (e.g. convolutional) connectivity",
                )
            )
        if mem_bits is not None and worst * bits > mem_bits:
            out.append(
                Violation(
                    pop.name,
                    "synapse memory per core (bits)",
                    mem_bits,
                    worst * bits,
                    "one neuron's synapses do not fit a core; reduce its fan-in or the weight bits",
                )
            )
        if levels is not None:
            out += _dynamic_range(pop.name, incoming, levels, profile.name)
    if profile.core_model == "xylo":  # one fixed core: channel and neuron counts, wiring, no delays
        from neurodeploy.compiler.lower_xylo import xylo_rules

        out += xylo_rules(ir, profile)
    return out


def _dynamic_range(name: str, incoming: list, levels: int, profile: str) -> list[Violation]:
    """Warn when weights fall below half a grid step of their layer's largest weight (they round to 0)."""
    out = []
    w_max = max(wt.abs_max(pr.weight) for pr in incoming)
    if w_max == 0:
        return out
    for pr in incoming:
        vals = np.abs(wt.values(pr.weight))
        nonzero = int(np.count_nonzero(vals))
        lost = int(np.count_nonzero((vals > 0) & (vals < 0.5 * w_max / levels)))
        if lost:
            hint = (
                f"projection {pr.name}: with one scale per layer they round to zero on {profile}; "
                "compile with --per-channel (Python: per_channel=True) to give each neuron its own scale, or prune them"
            )
            out.append(
                Violation(
                    name,
                    "weight bits",
                    f"{levels} levels per sign",
                    f"{lost} of {nonzero} weights below half a step",
                    hint,
                    severity="warning",
                )
            )
    return out


_OVERRIDE_HINTS = {
    "neurons per core": "move blocks to other cores",
    "synapse memory per core (bits)": "move blocks to other cores or reduce the weight bits",
    "fan-in axons per core": "give the blocks their own cores",
    "fan-out axons per core": "spread the sources over more cores, or their targets over fewer cores",
    "target cores per neuron": "a neuron reaches too many cores: place its targets on fewer cores",
}


def check_placement(ir: NetworkIR, placement: Placement, profile: Profile) -> list[Violation]:
    """Cores over their limits, the network over the system's cores, neurons over their fan-out.

    ``place`` cuts and packs so that automatic placements break no per-core limit; what remains is either
    the user's override (the hint names the automatic blocks) or a network for which no placement exists
    (the hint says which limit binds and what would work).
    """
    out: list[Violation] = []
    bits = synapse_bits(profile)
    limits = [
        ("neurons per core", profile.limit("neurons_per_core"), lambda c: c.neurons),
        ("synapse memory per core (bits)", profile.limit("synapse_memory_bits_per_core"), lambda c: c.synapses * bits),
        ("fan-in axons per core", profile.limit("fan_in_axons_per_core"), lambda c: c.axons_in),
        ("fan-out axons per core", profile.limit("fan_out_axons_per_core"), lambda c: c.axons_out),
        ("target cores per neuron", profile.limit("fan_out_cores_per_neuron"), lambda c: c.max_neuron_fanout_cores),
    ]
    on_core: dict[int, list] = {}
    for block in placement.blocks:
        on_core.setdefault(block.core, []).append(block)
    for core in placement.cores:
        where = f"core {core.core} ({', '.join(core.blocks)})"
        for rule, limit, count in limits:
            if limit is not None and count(core) > limit:
                hint = _core_hint(ir, placement, profile, rule, core, on_core.get(core.core, []))
                out.append(Violation(where, rule, limit, count(core), hint))
    return out + _core_count(placement, profile)


def _core_hint(ir: NetworkIR, placement: Placement, profile: Profile, rule: str, core: object, blocks: list) -> str:
    """What would work: the automatic blocks after a user's override, else why no placement exists."""
    fixed = list(dict.fromkeys(b.population for b in blocks if getattr(b, "fixed", False)))
    if fixed:
        auto = [f"{p!r} as {_sizes(placement.automatic[p])}" for p in fixed if p in placement.automatic]
        return _OVERRIDE_HINTS[rule] + (f"; the automatic placement cuts {', '.join(auto)}" if auto else "")
    pops = list(dict.fromkeys(b.population for b in blocks))
    targets = list(dict.fromkeys(pr.dst for pr in ir.projections if pr.src in pops))
    start = f"no placement exists on {profile.name}"
    if rule == "fan-out axons per core":
        return (f"{start}: neurons of {pops} each reach up to {core.max_neuron_fanout_cores} cores of {targets}; "
                f"give {targets} fewer neurons or a smaller kernel fan-in so they need fewer cores, or use a profile "
                "with more fan-out axons per core")  # fmt: skip
    if rule == "target cores per neuron":
        return (f"{start}: the targets {targets} of {pops} take {core.max_neuron_fanout_cores} cores (their sizes, "
                "or neuron parameters that cannot share a core); use fewer or smaller target layers, one parameter "
                "set for them, or a profile that allows more target cores per neuron")  # fmt: skip
    return (f"{start}: one neuron of {pops} alone exceeds a core's {rule}; reduce its fan-in (prune it, or a "
            "smaller kernel) or the weight bits")  # fmt: skip


def _sizes(sizes: list[int]) -> str:
    return f"blocks {sizes}" if len(sizes) <= 8 else f"{len(sizes)} blocks of at most {max(sizes)} neurons"


def _core_count(placement: Placement, profile: Profile) -> list[Violation]:
    """More cores than a chip has is a warning (several chips); more than the profile's chips hold, an error."""
    per_chip, chips, used = profile.limit("cores_per_chip"), profile.limit("chips"), len(placement.cores)
    if per_chip is None or used <= per_chip:
        return []
    binding = _binding(placement, profile)
    if chips is not None and used > per_chip * chips:
        total = per_chip * chips
        return [
            Violation(
                "network",
                "cores",
                total,
                used,
                f"no placement exists on {profile.name}: {used - total} cores more than its {chips} chip(s) of "
                f"{per_chip}; {binding}; use fewer neurons per layer, smaller kernels (fewer synapses and fan-in "
                "axons), or a profile with more cores or chips",
            )
        ]
    needed = -(-used // per_chip)
    return [
        Violation(
            "network",
            "cores per chip",
            per_chip,
            used,
            f"needs {needed} chips; inter-chip traffic is not modelled ({binding})",
            severity="warning",
        )
    ]


def _binding(placement: Placement, profile: Profile) -> str:
    """The per-core limit whose network total needs the most cores: the one that sets the core count."""
    bits = synapse_bits(profile)
    totals = [
        ("neurons per core", "neurons_per_core", sum(c.neurons for c in placement.cores), "neurons"),
        ("synapse memory", "synapse_memory_bits_per_core", sum(c.synapses for c in placement.cores) * bits, "bits"),
        ("fan-in axons", "fan_in_axons_per_core", sum(c.axons_in for c in placement.cores), "fan-in axons"),
        ("fan-out axons", "fan_out_axons_per_core", sum(c.axons_out for c in placement.cores), "fan-out axons"),
    ]
    need = [(-(-total // limit), rule, total, unit)
            for rule, key, total, unit in totals if (limit := profile.limit(key))]  # fmt: skip
    if not need:
        return "no per-core limit is declared"
    cores, rule, total, unit = max(need)
    return f"{rule} binds: {total:,} {unit} fill at least {cores} cores"

"""Placement: split populations into core-sized blocks and pack blocks onto cores.

Each block of neurons needs its neurons, its incoming synapses (memory: synapses × bits per synapse) and
one input axon per distinct source neuron (two when the chip routes the sign by synapse row and the source
drives both signs). Blocks are packed greedily in network order, so consecutive layers share cores
when they fit, which keeps traffic between cores low for feed-forward networks; on chips whose neuron
parameters are shared per core, only populations with identical parameters share one. Users may override
the map with ``{population: [core, ...]}`` (one core per block); ``rules.check_placement`` then reports
any core over its limits instead of this module failing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from neurodeploy.compiler import weights as wt
from neurodeploy.compiler.ir import NetworkIR, Population
from neurodeploy.errors import CompileError
from neurodeploy.hw_profiles import Profile

WORD_BITS = 64


@dataclass
class Block:
    population: str
    start: int
    stop: int
    core: int = -1
    synapses: int = 0
    axons_in: int = 0


@dataclass
class CoreUsage:
    core: int
    neurons: int = 0
    synapses: int = 0
    memory_words: int = 0
    axons_in: int = 0
    axons_out: int = 0
    utilisation: float = 0.0
    blocks: list[str] = field(default_factory=list)
    max_neuron_fanout_cores: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Placement:
    blocks: list[Block]
    cores: list[CoreUsage]

    def to_dict(self) -> dict:
        return {"blocks": [asdict(b) for b in self.blocks], "cores": [c.to_dict() for c in self.cores]}

    @classmethod
    def from_dict(cls, data: dict) -> Placement:
        return cls([Block(**b) for b in data["blocks"]], [CoreUsage(**c) for c in data["cores"]])


def synapse_bits(profile: Profile) -> int:
    """Bits one stored synapse takes: the weight width (+ sign for magnitude grids), 32 for float cores."""
    num = profile.numerics
    if "synapse_bits" in num:
        return int(num["synapse_bits"])
    if "weight_bits" in num or profile.core_model == "loihi":
        return int(num.get("weight_bits", 8))
    if "weight_magnitude_bits" in num:
        return int(num["weight_magnitude_bits"]) + 1
    return 32


def _block_cost(ir: NetworkIR, name: str, start: int, stop: int, sign_rows: bool) -> tuple[int, int]:
    """(synapses, input axons) of neurons start..stop of a population."""
    synapses = axons = 0
    for pr in ir.incoming(name):
        rows = wt.rows(pr.weight, start, stop)
        synapses += wt.nnz(rows)
        if sign_rows:
            pos, neg = wt.signed_columns(rows)
            axons += int(pos.sum() + neg.sum())
        else:
            axons += int(wt.used_columns(rows).sum())
    return synapses, axons


def parameter_signature(pop: Population) -> tuple | None:
    """The population's neuron parameters if every neuron has the same ones, else None."""
    sig = []
    for key, value in sorted(pop.params().items()):
        if value.size and np.any(value != value.reshape(-1)[0]):
            return None
        sig.append((key, float(value.reshape(-1)[0]) if value.size else 0.0))
    return tuple(sig)


def _split(
    ir: NetworkIR, pop: Population, n_max: int, mem_bits: int | None, axon_max: int | None, bits: int, sign_rows: bool
) -> list[Block]:
    """Consecutive blocks of ``pop`` that each fit one core (a neuron too big alone gets its own block)."""
    row_syn = sum((wt.row_nnz(pr.weight) for pr in ir.incoming(pop.name)), np.zeros(pop.size, dtype=np.int64))
    cum = np.concatenate([[0], np.cumsum(row_syn)])
    blocks, start = [], 0
    while start < pop.size:
        stop = min(pop.size, start + n_max)
        if mem_bits is not None:  # largest stop whose synapses fit the memory
            fit = int(np.searchsorted(cum, cum[start] + mem_bits // bits, side="right")) - 1
            stop = max(start + 1, min(stop, fit))
        while True:
            syn, ax = _block_cost(ir, pop.name, start, stop, sign_rows)
            if axon_max is None or ax <= axon_max or stop - start == 1:
                break
            stop = start + max(1, (stop - start) // 2)
        blocks.append(Block(pop.name, start, stop, synapses=syn, axons_in=ax))
        start = stop
    return blocks


def place(ir: NetworkIR, profile: Profile, overrides: dict[str, list[int]] | None = None) -> Placement:
    """Split and pack every non-input population onto cores."""
    n_max = profile.limit("neurons_per_core") or 10**9
    mem_bits = profile.limit("synapse_memory_bits_per_core")
    axon_max = profile.limit("fan_in_axons_per_core")
    bits = synapse_bits(profile)
    sign_rows = bool(profile.numerics.get("sign_by_rows", False))
    shared = profile.numerics.get("shared_parameters") == "core"
    overrides = overrides or {}
    for name in overrides:
        try:
            ir.population(name)
        except KeyError:
            raise CompileError(
                f"placement names unknown population {name!r}",
                "placement",
                f"use one of {[p.name for p in ir.populations if p.kind != 'input']}",
            ) from None

    blocks: list[Block] = []
    signature: dict[str, tuple | None] = {}
    for pop in ir.populations:
        if pop.kind != "input":
            blocks.extend(_split(ir, pop, n_max, mem_bits, axon_max, bits, sign_rows))
            signature[pop.name] = parameter_signature(pop)

    cores: list[CoreUsage] = []
    core_sig: dict[int, tuple | None] = {}
    counters: dict[str, int] = {}
    for block in blocks:
        wanted = overrides.get(block.population)
        if wanted is not None:
            idx = counters.get(block.population, 0)
            counters[block.population] = idx + 1
            if idx >= len(wanted):
                raise CompileError(
                    f"placement gives {len(wanted)} cores but the population needs more blocks",
                    f"population {block.population!r}",
                    "list one core per block",
                )
            block.core = int(wanted[idx])
            while len(cores) <= block.core:
                cores.append(CoreUsage(len(cores)))
        else:
            core = cores[-1] if cores else None
            size = block.stop - block.start
            fits = core is not None and core.neurons + size <= n_max
            if fits and mem_bits is not None:
                fits = (core.synapses + block.synapses) * bits <= mem_bits
            if fits and axon_max is not None:
                fits = core.axons_in + block.axons_in <= axon_max
            if fits and shared:
                sig = signature[block.population]
                fits = sig is not None and core_sig.get(core.core) == sig
            if not fits:
                cores.append(CoreUsage(len(cores)))
            block.core = cores[-1].core
        core_sig.setdefault(block.core, signature[block.population])
        usage = cores[block.core]
        usage.neurons += block.stop - block.start
        usage.synapses += block.synapses
        usage.axons_in += block.axons_in
        usage.blocks.append(f"{block.population}[{block.start}:{block.stop}]")
    _fan_out(ir, blocks, cores)
    for usage in cores:
        usage.memory_words = math.ceil(usage.synapses * bits / WORD_BITS)
        fractions = [usage.neurons / n_max]
        if mem_bits:
            fractions.append(usage.synapses * bits / mem_bits)
        if axon_max:
            fractions.append(usage.axons_in / axon_max)
        usage.utilisation = round(100.0 * max(fractions), 2)
    return Placement(blocks, cores)


def _fan_out(ir: NetworkIR, blocks: list[Block], cores: list[CoreUsage]) -> None:
    """Output axons per core: for every neuron, one per distinct target core it reaches."""
    by_pop: dict[str, list[Block]] = {}
    for b in blocks:
        by_pop.setdefault(b.population, []).append(b)
    reach = {id(b): np.zeros((b.stop - b.start, len(cores)), dtype=bool) for b in blocks}
    for pr in ir.projections:
        src_blocks = by_pop.get(pr.src, [])
        if not src_blocks:
            continue  # network inputs arrive from the host, not from a core
        for dst_block in by_pop.get(pr.dst, []):
            used = wt.used_columns(wt.rows(pr.weight, dst_block.start, dst_block.stop))
            for src_block in src_blocks:
                reach[id(src_block)][:, dst_block.core] |= used[src_block.start : src_block.stop]
    for b in blocks:
        r = reach[id(b)]
        usage = cores[b.core]
        usage.axons_out += int(r.sum())
        if r.size:
            usage.max_neuron_fanout_cores = max(usage.max_neuron_fanout_cores, int(r.sum(axis=1).max()))

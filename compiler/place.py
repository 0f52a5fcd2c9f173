"""Placement: split populations into core-sized blocks and pack blocks onto cores.

Each block of neurons needs its neurons, its incoming synapses (memory) and one input axon per
distinct source neuron. Blocks are packed greedily in network order, so consecutive layers share
cores when they fit, which keeps traffic between cores low for feed-forward networks. Users may
override the map with ``{population: [core, ...]}`` (one core per block).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from neurodeploy.compiler.ir import NetworkIR
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


def _block_cost(ir: NetworkIR, name: str, start: int, stop: int) -> tuple[int, int]:
    """(synapses, distinct source axons) of neurons start..stop of a population."""
    synapses = axons = 0
    for pr in ir.incoming(name):
        rows = pr.weight[start:stop]
        synapses += int(np.count_nonzero(rows))
        axons += int(np.count_nonzero(np.any(rows != 0, axis=0)))
    return synapses, axons


def place(ir: NetworkIR, profile: Profile, overrides: dict[str, list[int]] | None = None) -> Placement:
    """Split and pack every non-input population; raise CompileError if a single neuron cannot fit."""
    n_max = profile.limit("neurons_per_core") or 10**9
    mem_bits = profile.limit("synapse_memory_bits_per_core")
    axon_max = profile.limit("fan_in_axons_per_core")
    bits = int(profile.numerics.get("weight_bits", 32))
    overrides = overrides or {}
    for name in overrides:
        try:
            ir.population(name)
        except KeyError:
            raise CompileError(f"placement names unknown population {name!r}", "placement",
                               f"use one of {[p.name for p in ir.populations if p.kind != 'input']}") from None

    blocks: list[Block] = []
    for pop in ir.populations:
        if pop.kind == "input":
            continue
        start = 0
        while start < pop.size:
            stop = min(pop.size, start + n_max)
            while True:
                syn, ax = _block_cost(ir, pop.name, start, stop)
                too_big = (mem_bits is not None and syn * bits > mem_bits) or (axon_max is not None and ax > axon_max)
                if not too_big or stop - start == 1:
                    break
                stop = start + max(1, (stop - start) // 2)
            if mem_bits is not None and syn * bits > mem_bits:
                raise CompileError(f"one neuron needs {syn * bits} bits of synapse memory, a core has {mem_bits}",
                                   f"population {pop.name!r}", "reduce its fan-in or the weight bits")
            blocks.append(Block(pop.name, start, stop, synapses=syn, axons_in=ax))
            start = stop

    cores: list[CoreUsage] = []
    counters: dict[str, int] = {}
    for block in blocks:
        wanted = overrides.get(block.population)
        if wanted is not None:
            idx = counters.get(block.population, 0)
            counters[block.population] = idx + 1
            if idx >= len(wanted):
                raise CompileError(f"placement gives {len(wanted)} cores but the population needs more blocks",
                                   f"population {block.population!r}", "list one core per block")
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
            if not fits:
                cores.append(CoreUsage(len(cores)))
            block.core = cores[-1].core
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
    for src_block in blocks:
        reach = np.zeros((src_block.stop - src_block.start, len(cores)), dtype=bool)
        for pr in ir.projections:
            if pr.src != src_block.population:
                continue
            for dst_block in by_pop.get(pr.dst, []):
                sub = pr.weight[dst_block.start:dst_block.stop, src_block.start:src_block.stop]
                reach[:, dst_block.core] |= np.any(sub != 0, axis=0)
        cores[src_block.core].axons_out += int(reach.sum())

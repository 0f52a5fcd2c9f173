"""Placement: cut populations into blocks and pack the blocks onto cores, every per-core limit respected.

A block needs neurons, synapse memory, fan-in axons and fan-out axons on its core (``compiler.split``
counts them as ``rules.check_placement`` does). A neuron's fan-out is the number of distinct cores its
targets lie on, so it is known only once the targets are placed: populations are therefore placed from
the outputs back to the inputs. When a population is cut, everything it drives already has its cores, its
fan-out adds up neuron by neuron like neurons and synapses, and every block is cut as large as all four
limits allow. A block goes to the core, among those with room for all four counts (and the same neuron
parameters, on chips that share them per core), that already holds most of the block's targets, so that
spikes stay on one core; else to the first core with room (first fit); else to a new core. In a
feed-forward network this one pass is exact. A population that drives itself is cut again until a bound
on its recurrent fan-out (the number of its own blocks each neuron drives) holds for the cut. Projections
back to earlier populations start from one core per target population, and the network is placed again
with the fan-out measured on the result until the cores fit or the counts stop growing (a fixed point,
at most ``ROUNDS`` passes).

Unlike nengo-loihi (even splits sized from totals, one block per core) and Sinabs' DynapcnnNetwork (a
max-flow matching of whole layers onto fixed cores), blocks are cut neuron by neuron against every limit
and several blocks share a core.

Overrides: ``{population: [core, ...]}`` gives one core per automatic block (as before), and
``{population: {"blocks": [sizes...], "cores": [core, ...]}}`` sets the block sizes too (either key alone
works). Cores named by an override hold only overridden populations; ``rules.check_placement`` reports
any core over a limit instead of this module failing. Cores are numbered in network order.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from neurodeploy.compiler import weights as wt
from neurodeploy.compiler.ir import NetworkIR, Population
from neurodeploy.compiler.split import Caps, Rows, axons_in, cut, reach
from neurodeploy.errors import CompileError
from neurodeploy.hw_profiles import Profile

WORD_BITS = 64
ROUNDS = 8  # placements of a network with back edges while their fan-out estimate grows
LOCAL_ROUNDS = 64  # cuts of a self-recurrent population while its bound on its own fan-out grows


@dataclass
class Block:
    population: str
    start: int
    stop: int
    core: int = -1
    synapses: int = 0
    axons_in: int = 0
    fixed: bool = False  # sized or placed by the user's placement override


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
    # block sizes the placer would choose for each overridden population (for hints; not saved)
    automatic: dict[str, list[int]] = field(default_factory=dict)

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


def caps(profile: Profile) -> Caps:
    """The profile's per-core limits in the units the counts use (synapse memory in synapses)."""
    mem_bits = profile.limit("synapse_memory_bits_per_core")
    return Caps(
        profile.limit("neurons_per_core"),
        None if mem_bits is None else mem_bits // synapse_bits(profile),
        profile.limit("fan_in_axons_per_core"),
        profile.limit("fan_out_axons_per_core"),
    )


def parameter_signature(pop: Population) -> tuple | None:
    """The population's neuron parameters if every neuron has the same ones, else None."""
    sig = []
    for key, value in sorted(pop.params().items()):
        if value.size and np.any(value != value.reshape(-1)[0]):
            return None
        sig.append((key, float(value.reshape(-1)[0]) if value.size else 0.0))
    return tuple(sig)


Spec = tuple[list[int] | None, list[int] | None]  # (block sizes, cores) of one overridden population


def _specs(ir: NetworkIR, overrides: Mapping[str, Any] | None) -> dict[str, Spec]:
    """The placement override per population name, checked against the network."""
    out: dict[str, Spec] = {}
    placeable = [p.name for p in ir.populations if p.kind != "input"]
    for name, spec in (overrides or {}).items():
        if name not in placeable:
            what = "is a network input (its spikes come from the host)" if name in ir.inputs else "is unknown"
            raise CompileError(f"placement names population {name!r}, which {what}", "placement",
                               f"use one of {placeable}")  # fmt: skip
        sizes, cores = (spec.get("blocks"), spec.get("cores")) if isinstance(spec, Mapping) else (None, spec)
        sizes = None if sizes is None else [int(s) for s in sizes]
        cores = None if cores is None else [int(c) for c in cores]
        size = ir.population(name).size
        if sizes is not None and (sum(sizes) != size or min(sizes, default=0) < 1):
            raise CompileError(f"placement blocks of {name!r} add up to {sum(sizes)} neurons, the population has "
                               f"{size}", f"placement of {name!r}",
                               f"give positive block sizes that add up to {size}")  # fmt: skip
        if sizes is not None and cores is not None and len(sizes) != len(cores):
            raise CompileError(f"placement gives {len(sizes)} blocks and {len(cores)} cores", f"placement of {name!r}",
                               "give one core per block")  # fmt: skip
        out[name] = (sizes, cores)
    return out


class _Net:
    """The network as the placer reads it: weights by row range, synapses per neuron, who drives whom."""

    def __init__(self, ir: NetworkIR, profile: Profile) -> None:
        self.ir = ir
        self.pops = [p for p in ir.populations if p.kind != "input"]
        self.sign_rows = bool(profile.numerics.get("sign_by_rows", False))
        self.rows = {id(pr): Rows(pr.weight) for pr in ir.projections}
        self.incoming = {p.name: [self.rows[id(pr)] for pr in ir.incoming(p.name)] for p in self.pops}
        self.row_syn = {
            p.name: sum((r.row_nnz() for r in self.incoming[p.name]), np.zeros(p.size, dtype=np.int64))
            for p in self.pops
        }
        self.outgoing = {p.name: [pr for pr in ir.projections if pr.src == p.name] for p in self.pops}

    def fan_out(
        self, pop: Population, placed: dict[str, list[Block]], skip_self: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(reach over placed targets (n, k), its k core ids, cores at least reached among unplaced targets (n,))."""
        rows, targets, unplaced = [], [], {}
        for pr in self.outgoing[pop.name]:
            if pr.dst in placed:
                rows.append(self.rows[id(pr)])
                targets.append([(b.start, b.stop, b.core) for b in placed[pr.dst]])
            elif not (skip_self and pr.dst == pop.name):  # a back edge: at least one core per target population
                used = wt.used_columns(pr.weight)
                unplaced[pr.dst] = unplaced.get(pr.dst, np.zeros(pop.size, dtype=bool)) | used
        known, ids = reach(rows, targets, pop.size)
        return known, ids, sum((u.astype(np.int64) for u in unplaced.values()), np.zeros(pop.size, np.int64))

    def self_blocks(self, pop: Population, ranges: list[tuple[int, int]]) -> np.ndarray:
        """Per neuron, how many of its own population's blocks it drives: a bound on its recurrent fan-out."""
        loops = [self.rows[id(pr)] for pr in self.outgoing[pop.name] if pr.dst == pop.name]
        blocks = [(a, b, i) for i, (a, b) in enumerate(ranges)]
        return reach(loops, [blocks] * len(loops), pop.size)[0].sum(axis=1, dtype=np.int64)

    def cut(self, pop: Population, fan: np.ndarray, limits: Caps) -> list[tuple[int, int]]:
        """Blocks as large as the limits allow; a self-recurrent population is cut until its bound holds."""
        extra = np.zeros(pop.size, dtype=np.int64)
        for _ in range(LOCAL_ROUNDS):
            ranges = cut(pop.size, self.row_syn[pop.name], fan + extra, self.incoming[pop.name], limits, self.sign_rows)
            loops = self.self_blocks(pop, ranges)
            if np.all(loops <= extra):
                break
            extra = np.maximum(extra, loops)
        return ranges


class _Cores:
    """Cores opened so far: what each holds, its parameter set, and the user's core index if it has one."""

    def __init__(self, limits: Caps) -> None:
        self.cap = limits.vector()
        self.used = np.zeros((16, 4))
        self.sig: list[tuple | None] = []
        self.user: list[int | None] = []
        self.by_user: dict[int, int] = {}

    def new(self, sig: tuple | None, user: int | None = None) -> int:
        k = len(self.sig)
        if k == len(self.used):
            self.used = np.concatenate([self.used, np.zeros_like(self.used)])
        self.sig.append(sig)
        self.user.append(user)
        return k

    def user_core(self, index: int) -> int:
        if index not in self.by_user:
            self.by_user[index] = self.new(None, user=index)
        return self.by_user[index]

    def choose(self, demand: np.ndarray, sig: tuple | None, shared: bool, affinity: np.ndarray) -> int:
        """The fitting core holding most of the block's targets, else the first fitting core, else a new one."""
        k = len(self.sig)
        ok = np.all(self.used[:k] + demand <= self.cap, axis=1)
        ok &= np.array([u is None and (not shared or (sig is not None and s == sig))
                        for u, s in zip(self.user, self.sig, strict=True)], dtype=bool)  # fmt: skip
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return self.new(sig)
        return int(idx[np.argmax(affinity[idx])]) if affinity[idx].max(initial=0) > 0 else int(idx[0])

    def add(self, core: int, demand: np.ndarray) -> None:
        self.used[core] += demand


def _sizes_text(sizes: list[int]) -> str:
    return str(sizes) if len(sizes) <= 8 else f"{len(sizes)} blocks of at most {max(sizes)} neurons"


def _pack(
    net: _Net, limits: Caps, specs: dict[str, Spec], estimate: dict[str, np.ndarray], shared: bool
) -> tuple[dict[str, list[Block]], _Cores, dict[str, list[int]]]:
    """One pass from the outputs back to the inputs: cut each population, then give each block a core."""
    cores = _Cores(limits)
    placed: dict[str, list[Block]] = {}
    automatic: dict[str, list[int]] = {}
    for pop in reversed(net.pops):
        known, ids, unplaced = net.fan_out(pop, placed, skip_self=True)
        fan = known.sum(axis=1, dtype=np.int64) + unplaced
        if pop.name in estimate:
            fan = np.maximum(fan, estimate[pop.name])
        auto = net.cut(pop, fan, limits)
        sizes, wanted = specs.get(pop.name, (None, None))
        ranges = auto
        if pop.name in specs:
            automatic[pop.name] = [b - a for a, b in auto]
        if sizes is not None:
            bounds = np.concatenate([[0], np.cumsum(sizes)])
            ranges = [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        fan = fan + net.self_blocks(pop, ranges)
        if wanted is not None and len(wanted) < len(ranges):
            raise CompileError(
                f"placement gives {len(wanted)} cores for {len(ranges)} blocks",
                f"population {pop.name!r}",
                f"list one core per block (the automatic blocks: {_sizes_text(automatic[pop.name])}), or give "
                'the sizes as well: {"blocks": [...], "cores": [...]}',
            )
        sig = parameter_signature(pop) if shared else None
        blocks = []
        for i, (start, stop) in enumerate(ranges):
            syn = int(net.row_syn[pop.name][start:stop].sum())
            ax = axons_in(net.incoming[pop.name], start, stop, net.sign_rows)
            demand = np.array([stop - start, syn, ax, int(fan[start:stop].sum())], dtype=float)
            if wanted is not None:
                core = cores.user_core(int(wanted[i]))
            else:
                affinity = np.zeros(len(cores.sig))
                affinity[ids] = known[start:stop].sum(axis=0)
                core = cores.choose(demand, sig, shared, affinity)
            cores.add(core, demand)
            blocks.append(Block(pop.name, start, stop, core, syn, ax, fixed=pop.name in specs))
        placed[pop.name] = blocks
    return placed, cores, automatic


def _finish(net: _Net, placed: dict[str, list[Block]], cores: _Cores, profile: Profile) -> Placement:
    """Number the cores in network order (users' cores keep theirs) and count every core exactly."""
    blocks = [b for pop in net.pops for b in placed[pop.name]]
    number = {internal: user for user, internal in cores.by_user.items()}
    free = (i for i in itertools.count() if i not in cores.by_user)
    for b in blocks:
        if b.core not in number:
            number[b.core] = next(free)
        b.core = number[b.core]
    usage = [CoreUsage(i) for i in range(max(number.values(), default=-1) + 1)]
    for b in blocks:
        u = usage[b.core]
        u.neurons += b.stop - b.start
        u.synapses += b.synapses
        u.axons_in += b.axons_in
        u.blocks.append(f"{b.population}[{b.start}:{b.stop}]")
    for pop in net.pops:
        known, _, _ = net.fan_out(pop, placed)
        per_neuron = known.sum(axis=1, dtype=np.int64)
        for b in placed[pop.name]:
            usage[b.core].axons_out += int(per_neuron[b.start : b.stop].sum())
            most = int(per_neuron[b.start : b.stop].max(initial=0))
            usage[b.core].max_neuron_fanout_cores = max(usage[b.core].max_neuron_fanout_cores, most)
    bits = synapse_bits(profile)
    limits = caps(profile)
    for u in usage:
        u.memory_words = math.ceil(u.synapses * bits / WORD_BITS)
        fractions = [
            amount / cap
            for amount, cap in (
                (u.neurons, limits.neurons),
                (u.synapses, limits.synapses),
                (u.axons_in, limits.axons_in),
            )
            if cap
        ]
        u.utilisation = round(100.0 * max(fractions, default=0.0), 2)
    return Placement(blocks, usage)


def place(ir: NetworkIR, profile: Profile, overrides: Mapping[str, Any] | None = None) -> Placement:
    """Cut every non-input population into blocks and give each block a core (see the module docstring)."""
    specs = _specs(ir, overrides)
    net = _Net(ir, profile)
    limits = caps(profile)
    shared = profile.numerics.get("shared_parameters") == "core"
    order = {p.name: i for i, p in enumerate(net.pops)}
    late = {p.name for p in net.pops if any(order[pr.dst] < order[p.name] for pr in net.outgoing[p.name])}
    estimate: dict[str, np.ndarray] = {}
    for _ in range(ROUNDS):
        placed, cores, automatic = _pack(net, limits, specs, estimate, shared)
        placement = _finish(net, placed, cores, profile)
        placement.automatic = automatic
        over = limits.axons_out is not None and any(c.axons_out > limits.axons_out for c in placement.cores)
        if not over or not late:
            break
        others = {n: {k: v for k, v in placed.items() if k != n} for n in late}  # fan-out beside the self loops
        grown = {
            n: np.maximum(estimate.get(n, 0), net.fan_out(net.ir.population(n), others[n], True)[0].sum(axis=1))
            for n in late
        }
        if all(np.array_equal(grown[n], estimate.get(n)) for n in late):
            break
        estimate = grown
    return placement

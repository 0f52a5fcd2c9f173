"""A conv network of 74,862 neurons placed on Loihi 2: every per-core limit holds, in one strict compile.

Network (DVS-like events; NIR built in code; every weight or pooling layer feeds a LIF layer):
  2×64×64 -> conv 2→12 k3 p1 (12×64×64 = 49,152) -> sum-pool 2 (12×32×32 = 12,288)
  -> sum-pool 2 (12×16×16 = 3,072) -> conv 12→32 k3 p1 (32×16×16 = 8,192) -> sum-pool 2 (32×8×8 = 2,048)
  -> flatten -> linear 2048→100 -> linear 100→10
Pooling layers are spiking (a pooling neuron fires on one input spike), so each is a population that the
placer cuts and packs like the others; the wide layers feed small ones, so each neuron reaches few cores.

Prints the compile time (target < 10 s; strict, so any design-rule error raises), the number of
violations (placement and all), the per-core table (``neurodeploy.reports.cores_table``, 80 columns) and,
on random input spikes (each sample with its own coarse random rate map), how often the Loihi 2 emulation
and the float ``ideal`` profile give the same winning output (argmax of spike counts; target >= 90 %).
The weights are random, not trained: layers differ from ``ideal`` only by Loihi's fixed-point numerics.

    .venv/bin/python benchmarks/place_conv.py [--samples 64] [--steps 200] [--rate 0.1] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import nir
import numpy as np
from rich.console import Console

import neurodeploy as nd
from neurodeploy.compiler.rules import check_placement
from neurodeploy.reports import cores_table

DT = 1e-3
SHAPE = (2, 64, 64)
POOL_R = 3.0  # a pooling neuron fires on about two input spikes close in time
POSITIVE = 0.85  # fraction of positive conv weights
GAINS = [4.0, 2.0, 5.0, 8.0]  # conv1, conv3, fc1, fc2: weight scale × sqrt(fan-in); every layer spikes


def build(seed: int = 0) -> nir.NIRGraph:
    """The conv network above; weights are random with magnitudes in [0.5, 1] × scale (none rounds to zero)."""
    rng = np.random.default_rng(seed)

    def lif(*shape: int, r: float = 1.0) -> nir.LIF:
        full = np.ones(shape)
        return nir.LIF(tau=4e-3 * full, r=r * full, v_leak=0 * full, v_threshold=full)

    def weights(shape: tuple[int, ...], gain: float, positive: float) -> np.ndarray:
        sign = np.where(rng.random(shape) < positive, 1.0, -1.0)
        return sign * rng.uniform(0.5, 1.0, shape) * gain / np.sqrt(np.prod(shape[1:]))

    def conv(cin: int, cout: int, hw: tuple[int, int], gain: float) -> nir.Conv2d:
        w = weights((cout, cin, 3, 3), gain, POSITIVE)
        return nir.Conv2d(input_shape=hw, weight=w, stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(cout))

    def pool() -> nir.SumPool2d:
        return nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))

    nodes = {
        "input": nir.Input(input_type=np.array(SHAPE)),
        "conv1": conv(2, 12, (64, 64), GAINS[0]),
        "lif1": lif(12, 64, 64),
        "pool1": pool(),
        "lif2": lif(12, 32, 32, r=POOL_R),
        "pool2": pool(),
        "lif3": lif(12, 16, 16, r=POOL_R),
        "conv3": conv(12, 32, (16, 16), GAINS[1]),
        "lif4": lif(32, 16, 16),
        "pool3": pool(),
        "lif5": lif(32, 8, 8, r=POOL_R),
        "flat": nir.Flatten(input_type={"input": np.array([32, 8, 8])}, start_dim=0),
        "fc1": nir.Linear(weight=weights((100, 2048), GAINS[2], 0.5)),
        "lif6": lif(100),
        "fc2": nir.Linear(weight=weights((10, 100), GAINS[3], 0.5)),
        "lif7": lif(10),
        "output": nir.Output(output_type=np.array([10])),
    }
    names = list(nodes)
    meta = {"neurodeploy.dt": DT, "neurodeploy.reset": "zero"}
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:], strict=False)), metadata=meta, type_check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rate", type=float, default=0.1, help="mean input spike probability per step")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    console = Console(width=80)
    graph = build(args.seed)

    start = time.perf_counter()
    chip = nd.compile(graph, "loihi2")  # strict: a violation raises CompileError
    seconds = time.perf_counter() - start
    ideal = nd.compile(graph, "ideal")
    neurons = sum(p.size for p in chip.ir.populations if p.kind != "input")
    synapses = sum(c["synapses"] for c in chip.report["cores"])
    left = check_placement(chip.ir, chip.placement, chip.profile)
    verdict = "OK" if seconds < 10 else "SLOW"
    print(f"network: {neurons:,} neurons, {synapses:,} synapses, {len(chip.report['cores'])} cores on loihi2")
    print(f"compile (strict, loihi2): {seconds:.2f} s (target < 10 s: {verdict}); "
          f"placement violations: {len(left)}; all violations: {len(chip.violations)}")  # fmt: skip
    console.print(cores_table(chip.report))

    spikes = random_inputs(args.samples, args.steps, args.rate, args.seed + 1)
    start = time.perf_counter()
    on_chip, on_ideal = nd.run(chip, spikes), nd.run(ideal, spikes)
    run_seconds = time.perf_counter() - start
    counts_chip, counts_ideal = on_chip.counts(), on_ideal.counts()
    agree = float(np.mean(counts_chip.argmax(axis=1) == counts_ideal.argmax(axis=1)))
    top = np.sort(counts_ideal, axis=1)
    ties = float(np.mean(top[:, -1] == top[:, -2]))
    classes = len(np.unique(counts_ideal.argmax(axis=1)))
    print(f"argmax agreement loihi2 vs ideal on {args.samples} random inputs of {args.steps} steps: "
          f"{100 * agree:.1f} % (target >= 90 %)")  # fmt: skip
    print(f"  ideal: {counts_ideal.sum(1).mean():.0f} output spikes per sample, {classes} distinct winners, "
          f"ties in {100 * ties:.0f} %; loihi2: {counts_chip.sum(1).mean():.0f} spikes; "
          f"both runs {run_seconds:.0f} s")  # fmt: skip
    mismatch = ", ".join(f"{k} {100 * np.mean(on_chip.spikes[k] != on_ideal.spikes[k]):.2f}"
                         for k in on_ideal.spikes if k != "input")  # fmt: skip
    print(f"  spikes that differ per layer, % of neuron-steps: {mismatch}")


def random_inputs(samples: int, steps: int, rate: float, seed: int) -> np.ndarray:
    """Random spikes, each sample with its own coarse random rate map (8×8 patches), so the outputs differ."""
    rng = np.random.default_rng(seed)
    patches = rng.random((samples, SHAPE[0], SHAPE[1] // 8, SHAPE[2] // 8)) ** 3
    rates = np.kron(patches, np.ones((1, 1, 8, 8)))
    rates *= rate / rates.mean(axis=(1, 2, 3), keepdims=True)
    return rng.random((steps, samples, *SHAPE)) < np.clip(rates, 0.0, 1.0)


if __name__ == "__main__":
    main()

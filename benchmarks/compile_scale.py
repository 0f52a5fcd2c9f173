"""Compile a network with about one million synapses for Loihi 2 and Loihi 1; print the time and the cores.

Network: Input(1000) -> Affine 1000x1000 (dense) -> LIF(1000) -> Affine 10x1000 -> LIF(10), i.e.
1,010,000 synapses, in snnTorch's dt = 1e-4 encoding. Target: each compile (normalize, rules,
quantization, placement, placement rules) under 2 s.

    .venv/bin/python benchmarks/compile_scale.py [--hidden 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import nir
import numpy as np

import neurodeploy as nd

DT = 1e-4


def build(n_in: int, hidden: int, n_out: int, seed: int = 0) -> nir.NIRGraph:
    rng = np.random.default_rng(seed)
    tau = DT / (1 - 0.9)

    def lif(n: int) -> nir.LIF:
        return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / DT), v_leak=np.zeros(n), v_threshold=np.ones(n))

    graph = nir.NIRGraph.from_list(
        nir.Affine(weight=rng.normal(0, 1 / np.sqrt(n_in), (hidden, n_in)), bias=np.zeros(hidden)),
        lif(hidden),
        nir.Affine(weight=rng.normal(0, 1 / np.sqrt(hidden), (n_out, hidden)), bias=np.zeros(n_out)),
        lif(n_out),
    )
    graph.metadata.update({"neurodeploy.dt": DT, "neurodeploy.reset": "zero"})
    return graph


def summary(compiled: nd.CompiledNetwork) -> str:
    cores = compiled.report["cores"]
    lines = [
        f"{'core':>4} {'neurons':>7} {'synapses':>9} {'mem words':>9} {'axons in':>8} {'axons out':>9} "
        f"{'util %':>6}  blocks"
    ]
    shown = cores if len(cores) <= 12 else cores[:10]
    for c in shown:
        lines.append(
            f"{c['core']:>4} {c['neurons']:>7} {c['synapses']:>9} {c['memory_words']:>9} {c['axons_in']:>8} "
            f"{c['axons_out']:>9} {c['utilisation']:>6.1f}  {', '.join(c['blocks'])}"
        )
    if len(cores) > len(shown):
        lines.append(f" ... {len(cores) - len(shown)} more cores")
    lines.append(
        f" sum {sum(c['neurons'] for c in cores):>7} {sum(c['synapses'] for c in cores):>9} "
        f"{sum(c['memory_words'] for c in cores):>9} {sum(c['axons_in'] for c in cores):>8} "
        f"{sum(c['axons_out'] for c in cores):>9}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--hidden", type=int, default=1000)
    parser.add_argument("--outputs", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    graph = build(args.inputs, args.hidden, args.outputs)
    synapses = args.inputs * args.hidden + args.hidden * args.outputs
    print(f"network: {args.inputs} -> {args.hidden} -> {args.outputs} LIF, {synapses:,} synapses")
    for profile in ("loihi2", "loihi1"):
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            compiled = nd.compile(graph, profile, strict=False)
            times.append(time.perf_counter() - start)
        errors = [v for v in compiled.violations if v.severity == "error"]
        verdict = "OK" if max(times) < 2.0 else "SLOW"
        print(
            f"\n{profile}: compile {min(times):.3f} s best, {max(times):.3f} s worst of {args.repeat} "
            f"(target < 2 s: {verdict}); {len(compiled.report['cores'])} cores; "
            f"{len(errors)} errors, {len(compiled.violations) - len(errors)} warnings"
        )
        print(summary(compiled))


if __name__ == "__main__":
    main()

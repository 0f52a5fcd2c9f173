"""Time many mismatched chip instances in one batched emulator run against one instance.

Target: running 100 instances of the 2x1024 benchmark network (1024 inputs -> 1024 -> 1024 CUBA LIF,
5 % input spike probability) for 500 steps takes at most 20x the time of one instance.

Two cases. ``loihi``: the emulator benchmark's network (``emulator_vs_lava.py`` case a) on Loihi
numerics, every instance with its own per-neuron du, dv, threshold and bias (weights shared, as on a
digital chip): one input projection serves all instances, and the hidden -> out sums of all instances
form one GEMM. ``dynapse2``: the same shape as a NIR graph compiled for ``dynapse2``, whose profile also
mismatches every synapse, so each instance has its own two 1024 x 1024 weight matrices and the synaptic
work itself grows 100-fold; its ratio is bounded by that, and is printed for comparison.

The dynapse2 network is compiled with ``strict=False``: 1024 inputs per neuron exceed its
64-synapse fan-in and 1024-neuron layers its 256 neurons per core, but the float core and 4-bit weights
still run, and its ``[mismatch]`` section (sigma 0.1 on tau, threshold, weight) is what is sampled.
``--profile ideal`` compiles for the limit-free ideal chip and applies the same sigmas explicitly.

    .venv/bin/python benchmarks/variability.py [--case loihi,dynapse2] [--instances 100] [--steps 500] [--quick]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import nir
import numpy as np

import neurodeploy as nd
from neurodeploy.emulator.mismatch import sample
from neurodeploy.runner import run_core

DT = 1e-4
TARGET = 20.0
DYNAPSE2_SIGMA = {"tau_mem": 0.1, "tau_syn": 0.1, "v_threshold": 0.1, "weight": 0.1}


def build(n: int = 1024, seed: int = 0) -> nir.NIRGraph:
    """Input(n) -> Affine -> CubaLIF(n) -> Affine -> CubaLIF(n), weights scaled to keep layers firing."""
    rng = np.random.default_rng(seed)
    tau_mem, tau_syn = DT / (1 - 0.9), DT / (1 - 0.8)

    def cuba(size: int) -> nir.CubaLIF:
        return nir.CubaLIF(
            tau_mem=np.full(size, tau_mem),
            tau_syn=np.full(size, tau_syn),
            r=np.full(size, tau_mem / DT),
            v_leak=np.zeros(size),
            v_threshold=np.ones(size),
            w_in=np.full(size, tau_syn / DT),
        )

    graph = nir.NIRGraph.from_list(
        nir.Affine(weight=rng.normal(0.0, 1.0 / np.sqrt(n), (n, n)), bias=np.zeros(n)),
        cuba(n),
        nir.Affine(weight=rng.normal(0.0, 1.0 / np.sqrt(n), (n, n)), bias=np.zeros(n)),
        cuba(n),
    )
    graph.metadata.update({"neurodeploy.dt": DT, "neurodeploy.reset": "zero"})
    return graph


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def loihi_case(n: int, instances: int, steps: int, repeat: int) -> float:
    """The emulator benchmark's network with per-neuron mismatch; returns the time ratio."""
    import importlib.util
    import sys
    from pathlib import Path

    from neurodeploy.emulator.simulate import simulate

    spec = importlib.util.spec_from_file_location("emulator_vs_lava", Path(__file__).with_name("emulator_vs_lava.py"))
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    print(f"\n[loihi] {n} inputs -> {n} -> {n} CUBA LIF on Loihi numerics, {steps} steps, per-neuron mismatch")
    print("[loihi] " + bench.warm_up())
    x = bench.inputs(n, steps)
    one, many = bench.build(n, 1), bench.build(n, instances)
    t_one = best_of(lambda: simulate(one, {"in": x}), repeat)
    t_many = best_of(lambda: simulate(many, {"in": x}), repeat)
    out = simulate(many, {"in": x})
    single = simulate(bench.one_instance(many, instances - 1), {"in": x})
    same = all(np.array_equal(out.spikes[k][:, instances - 1], single.spikes[k]) for k in single.spikes)
    ratio = t_many / t_one
    print(f"[loihi] 1 instance: {t_one:.3f} s; {instances} instances: {t_many:.3f} s (best of {repeat})")
    print(f"[loihi] instance {instances - 1} alone == instance {instances - 1} of the batch: {same}")
    print(f"[loihi] ratio: {ratio:.1f}x for {instances}x the instances; target <= {TARGET:.0f}x: "
          f"{'met' if ratio <= TARGET else 'NOT met'}; {instances / t_many:.0f} instances/s batched vs "
          f"{1 / t_one:.0f} alone")  # fmt: skip
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--neurons", type=int, default=1024)
    parser.add_argument("--profile", choices=("dynapse2", "ideal"), default="dynapse2")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="16 instances, 100 steps, 256 neurons, best of 1")
    parser.add_argument("--case", default="loihi,dynapse2", help="comma-separated subset of loihi,dynapse2")
    args = parser.parse_args()
    if args.quick:
        args.instances, args.steps, args.neurons, args.repeat = 16, 100, 256, 1
    n = args.neurons
    cases = set(args.case.split(","))
    if "loihi" in cases:
        loihi_case(n, args.instances, args.steps, args.repeat)
    if "dynapse2" not in cases:
        return
    print(f"\n[dynapse2] per-synapse weight mismatch: {args.instances} distinct weight sets per projection")

    compiled = nd.compile(build(n), args.profile, strict=False)
    sigma = DYNAPSE2_SIGMA if args.profile == "ideal" else None
    rules = sorted({v.rule for v in compiled.violations if v.severity == "error"})
    how = f"strict=False, violations ignored: {', '.join(rules) or 'none'}" if rules else "fits"
    print(f"network: {n} inputs -> {n} -> {n} CUBA LIF, 5 % input spikes, {args.steps} steps")
    print(f"profile: {args.profile} ({how}); mismatch sigma: {sigma or 'from the profile'}")

    x = np.random.default_rng(1).random((args.steps, 1, n)) < 0.05
    start = time.perf_counter()
    one = sample(compiled, instances=1, seed=0, sigma=sigma)
    many = sample(compiled, instances=args.instances, seed=0, sigma=sigma)
    print(f"sampling {1 + args.instances} instances: {time.perf_counter() - start:.2f} s")

    t_one = best_of(lambda: run_core(one, x), args.repeat)
    t_many = best_of(lambda: run_core(many, x), args.repeat)
    res = run_core(many, x)
    rate = float(res.spikes[compiled.core.outputs[0]].mean())
    ratio = t_many / t_one
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"output rate: {rate:.4f} spikes per neuron and step (mean over instances)")
    print(f"1 instance:   {t_one:.3f} s (best of {args.repeat})")
    print(f"{args.instances} instances: {t_many:.3f} s (best of {args.repeat}, one batched run)")
    print(f"ratio: {ratio:.1f}x for {args.instances}x the instances; target <= {TARGET:.0f}x: {verdict}")
    print(f"throughput: {args.instances / t_many:.1f} instances/s batched vs {1 / t_one:.1f} instances/s alone")


if __name__ == "__main__":
    main()

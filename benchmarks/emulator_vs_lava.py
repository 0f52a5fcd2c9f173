"""Emulator vs Lava 0.10 (CPU, fixed_pt): the same CoreNetwork in both, in one process.

Checks that spikes are identical, then prints wall time, the speed ratio and synaptic events per
second. Both timings cover the whole call (weight preparation included; for Lava also building,
compiling and starting its processes, which is what a user waits for).

Cases (CUBA LIF, dense, 5% input spike probability, ``--steps`` steps, default 500):
  a  1024 inputs -> 1024 -> 1024
  b  256 inputs -> 256 -> 256
  c  case a on 64 chip instances with per-neuron perturbed du, dv, vth and bias, in one emulator run,
     against sequential Lava runs (``--lava-instances`` of them are run and checked; the 64-run
     Lava time is extrapolated from their mean, and the table says so)
  n  Loihi 1: case a's network at 512 wide with the loihi1 arithmetic, against nengo-loihi 1.1.0's
     emulator (spikes, u and v checked identical at every step)
  scale  emulator only: case a's network at 4 widths, then on more and more instances; cost per
         synaptic event

The emulator runs its compiled neuron kernel (numba) and sums dense blocks with torch's int8 GEMM
when both are installed (``--kernels numpy`` for neither); one untimed warm-up call loads them.

Lava runs through neurodeploy's backend (Lava's own LIF/Dense models; recording via shared memory).
``--lava-stock-monitor`` also times case a in plain Lava with Lava's Monitor and ``get_data()``.

Usage: python benchmarks/emulator_vs_lava.py [--quick] [--cases a,b,c,n,scale] [--steps 500]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

from neurodeploy.emulator import events
from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.emulator.simulate import SimulationOutput, simulate

P_INPUT = 0.05
# Tuned so that both layers spike at plausible rates (about 9% and 4% of neurons per step).
DU, DV, VTH_HIDDEN, VTH_OUT = 1000, 300, 30000, 2000


def build(width: int, instances: int = 0, seed: int = 0) -> CoreNetwork:
    """width inputs -> width -> width; with ``instances``, parameters get an (instances, 1, n) axis."""
    rng = np.random.default_rng(seed)
    n_in = n = width

    def lif(vth: int) -> dict[str, np.ndarray]:
        vth = vth * width // 1024  # input sums grow with the fan-in
        base = {"du": DU, "dv": DV, "vth": vth, "bias_mant": 0, "bias_exp": 0}
        if not instances:
            return {k: np.full(n, v, dtype=np.int64) for k, v in base.items()}
        shape = (instances, 1, n)  # mismatch: every instance and neuron draws its own deviation
        return {
            "du": np.clip(DU + rng.integers(-100, 101, shape), 0, 4095),
            "dv": np.clip(DV + rng.integers(-30, 31, shape), 0, 4095),
            "vth": np.clip((vth * (1 + 0.05 * rng.standard_normal(shape))).astype(np.int64), 0, 2**17 - 1),
            "bias_mant": rng.integers(-64, 65, shape),
            "bias_exp": np.zeros(shape, dtype=np.int64),
        }

    wrng = np.random.default_rng(seed + 1)  # weights shared by all instances
    pops = [CorePopulation("in", n_in, "input"), CorePopulation("hidden", n, "loihi", lif(VTH_HIDDEN)),
            CorePopulation("out", n, "loihi", lif(VTH_OUT))]  # fmt: skip
    projs = [CoreProjection("in->hidden", "in", "hidden", wrng.integers(-60, 100, (n, n_in))),
             CoreProjection("hidden->out", "hidden", "out", wrng.integers(-80, 80, (n, n)))]  # fmt: skip
    return CoreNetwork(pops, projs, inputs=["in"], outputs=["out"], numerics="loihi")


def one_instance(net: CoreNetwork, k: int) -> CoreNetwork:
    """Instance k of a network with (instances, 1, n) parameters, as a plain network."""
    pops = [CorePopulation(p.name, p.size, p.model, {n: v[k, 0] for n, v in p.params.items()}) for p in net.populations]
    return CoreNetwork(pops, net.projections, net.inputs, net.outputs, net.numerics)


def inputs(width: int, steps: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed + 2).random((steps, 1, width)) < P_INPUT


KERNELS = "auto"


def time_emulator(net: CoreNetwork, x: np.ndarray, repeats: int) -> tuple[SimulationOutput, float]:
    """Median wall time of ``repeats`` full simulate() calls (they are short, so noise matters)."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = simulate(net, {"in": x}, record=("spikes",), kernels=KERNELS)
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def warm_up() -> str:
    """Load the compiled neuron kernel and torch's int8 GEMM once, outside the timings; say what runs."""
    global KERNELS
    from neurodeploy.emulator import kernels

    if KERNELS == "auto" and not kernels.available():
        KERNELS = "numpy"
    t = time.perf_counter()
    if KERNELS != "numpy":
        with contextlib.suppress(ImportError):
            import torch  # noqa: F401  (the emulator uses its int8 GEMM only once torch is loaded)
    simulate(build(64), {"in": inputs(64, 50)}, kernels="numpy" if KERNELS == "numpy" else "numba")
    sums = "int8 GEMM (torch)" if KERNELS != "numpy" and "torch" in sys.modules else "float32 BLAS (numpy)"
    neuron = "numba, compiled" if KERNELS != "numpy" else "numpy"
    if KERNELS != "numpy":
        sums = f"compiled event pass up to {events.MAX_DENSITY:.0%} spike density, else {sums}"
    return (f"emulator: neuron update {neuron}; spike sums {sums}; one warm-up call first "
            f"({time.perf_counter() - t:.2f} s: loading numba's cached kernel and torch, once per "
            f"process)")  # fmt: skip


def time_lava(net: CoreNetwork, x: np.ndarray) -> tuple[SimulationOutput, float]:
    from neurodeploy.emulator.backends.lava import run_lava

    t = time.perf_counter()
    out = run_lava(net, {"in": x}, record=("spikes",))
    return out, time.perf_counter() - t


def same_spikes(a: SimulationOutput, b: SimulationOutput, index: Any = ()) -> bool:
    return all(np.array_equal(a.spikes[n][(slice(None), *index)], b.spikes[n]) for n in b.spikes)


def rates(out: SimulationOutput, names: tuple[str, ...] = ("hidden", "out")) -> str:
    return " / ".join(f"{100 * out.spikes[n].mean():.1f}%" for n in names)


def row(cells: list[Any]) -> str:
    widths = [4, 20, 6, 12, 11, 8, 14, 13, 13, 9]
    return "  ".join(str(c).rjust(w) for c, w in zip(cells, widths, strict=True))


HEADER = ["case", "network", "steps", "spike rate", "emulator s", "lava s", "lava/emulator", "events/s emu",
          "events/s lava", "identical"]  # fmt: skip


def case_ab(name: str, width: int, steps: int, repeats: int) -> list[Any]:
    net, x = build(width), inputs(width, steps)
    emu, t_emu = time_emulator(net, x, repeats)
    lava, t_lava = time_lava(net, x)
    ok = same_spikes(emu, lava) and lava.counters["synaptic_events"] == emu.counters["synaptic_events"]
    events = emu.counters["synaptic_events"]
    return [name, f"{width}->{width}->{width}", steps, rates(emu), f"{t_emu:.3f}", f"{t_lava:.2f}",
            f"{t_lava / t_emu:.0f}x", f"{events / t_emu:.3g}", f"{events / t_lava:.3g}",
            "yes" if ok else "NO"]  # fmt: skip


def case_c(width: int, steps: int, instances: int, lava_runs: int, repeats: int) -> tuple[list[Any], str, float]:
    net, x = build(width, instances), inputs(width, steps)
    emu, t_emu = time_emulator(net, x, repeats)
    t_runs, ok, lava_events = [], True, 0
    for k in range(lava_runs):
        lava, t = time_lava(one_instance(net, k), x)
        t_runs.append(t)
        ok &= same_spikes(emu, lava, (k,))
        lava_events += lava.counters["synaptic_events"]
    t_lava = statistics.mean(t_runs) * instances
    measured = "measured" if lava_runs == instances else f"extrapolated from {lava_runs} measured runs"
    events = emu.counters["synaptic_events"]
    cells = ["c", f"{width}^3 x {instances} inst", steps, rates(emu), f"{t_emu:.3f}", f"{t_lava:.1f}*",
             f"{t_lava / t_emu:.0f}x", f"{events / t_emu:.3g}", f"{lava_events / sum(t_runs):.3g}",
             "yes" if ok else "NO"]  # fmt: skip
    note = (f"c: * Lava: {instances} sequential runs, {measured} (mean {statistics.mean(t_runs):.2f} s per "
            f"instance); spikes checked identical on instances 0..{lava_runs - 1}. lava/emulator per instance = "
            f"(Lava s per instance) / (emulator s / {instances}). Events count every instance; the emulator "
            f"sums the input projection once for all instances (same input, same weights).")  # fmt: skip
    return cells, note, t_emu / instances


def case_nengo(width: int, steps: int, repeats: int) -> None:
    """Loihi 1 arithmetic: the emulator against nengo-loihi's emulator on one network, in this process."""
    from dataclasses import replace

    from neurodeploy.emulator.backends.nengo_loihi import available, run_nengo_loihi

    ok, why = available()
    if not ok:
        print(f"\nn: skipped, {why} (pip install -e '.[oracles]')")
        return
    net, x = replace(build(width), arithmetic="loihi1"), inputs(width, steps)
    times, emu = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        emu = simulate(net, {"in": x}, record=("spikes", "u", "v"), kernels=KERNELS, strict=False)
        times.append(time.perf_counter() - t)
    t_emu = statistics.median(times)
    t = time.perf_counter()
    ref = run_nengo_loihi(net, {"in": x[:, 0, :]}, steps)
    t_ref = time.perf_counter() - t
    same = all(np.array_equal(np.asarray(getattr(emu, kind)[name])[:, 0], got)
               for name, kinds in ref.items() for kind, got in kinds.items())  # fmt: skip
    events = emu.counters["synaptic_events"]
    print(f"\nLoihi 1 (arithmetic loihi1), {width}->{width}->{width}, {steps} steps, spike rate {rates(emu)}")
    print("  ".join(s.rjust(w) for s, w in [("emulator s", 11), ("nengo-loihi s", 14), ("nengo-loihi/emulator", 21),
                                             ("events/s emu", 13), ("identical", 9)]))  # fmt: skip
    print("  ".join(s.rjust(w) for s, w in [(f"{t_emu:.3f}", 11), (f"{t_ref:.2f}", 14), (f"{t_ref / t_emu:.1f}x", 21),
                                             (f"{events / t_emu:.3g}", 13), ("yes" if same else "NO", 9)]))  # fmt: skip
    print(
        "n: identical = spikes, u and v equal at every step in both layers; the emulator runs Loihi 1's wraps in "
        "its int64 reference update (the compiled kernel implements Lava's arithmetic)"
    )


def lava_stock_monitor(steps: int) -> float:
    """Case a in plain Lava with its own Monitor + get_data (no neurodeploy backend), to show the readback cost."""
    from neurodeploy.emulator.backends.lava import _lava

    lv, net, x = _lava(), build(1024), inputs(1024, steps)
    t = time.perf_counter()
    src = lv["RingBuffer"](data=x[:, 0, :].T.astype(np.int32))
    lifs = [lv["LIF"](shape=(p.size,), **{k: v.astype(np.int64) for k, v in p.params.items()})
            for p in net.populations[1:]]  # fmt: skip
    port = src.s_out
    for pr, lif in zip(net.projections, lifs, strict=True):
        dense = lv["Dense"](weights=pr.weight)
        port.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        port = lif.s_out
    monitors = []
    for lif in lifs:
        monitors.append(lv["Monitor"]())
        monitors[-1].probe(lif.s_out, steps)
    lifs[0].run(condition=lv["RunSteps"](num_steps=steps), run_cfg=lv["Loihi2SimCfg"](select_tag="fixed_pt"))
    t_run = time.perf_counter() - t
    for m in monitors:
        m.get_data()
    t_all = time.perf_counter() - t
    lifs[0].stop()
    _, t_emu = time_emulator(net, x, 3)
    print(f"\nLava alone, case a, stock Monitor: build + run {t_run:.2f} s; with Monitor.get_data() of both "
          f"layers' spikes {t_all:.2f} s (the readback is one channel message per element); "
          f"against the emulator ({t_emu:.3f} s): {t_all / t_emu:.0f}x")  # fmt: skip
    return t_all


def width_scaling(steps: int, widths: list[int], repeats: int) -> None:
    print(f"\nScaling (emulator only, one instance, width -> width -> width, {steps} steps)")
    print("  ".join(s.rjust(w) for s, w in [("width", 9), ("synaptic events", 16), ("seconds", 8),
                                             ("events/s", 9), ("s per 1e9 events", 16)]))  # fmt: skip
    for width in widths:
        net, x = build(width), inputs(width, steps)
        out, t = time_emulator(net, x, repeats)
        ev = out.counters["synaptic_events"]
        print(f"{width:>9}  {ev:>16,}  {t:>8.3f}  {ev / t:>9.3g}  {t / ev * 1e9:>16.3f}")


def scaling(width: int, steps: int, sizes: list[int], repeats: int) -> None:
    print(f"\nScaling (emulator only, {width}->{width}->{width}, {steps} steps, instances of perturbed parameters)")
    print("  ".join(s.rjust(w) for s, w in [("instances", 9), ("synaptic events", 16), ("seconds", 8),
                                             ("events/s", 9), ("s per 1e9 events", 16)]))  # fmt: skip
    for k in sizes:
        net, x = build(width, k), inputs(width, steps)
        out, t = time_emulator(net, x, repeats)
        ev = out.counters["synaptic_events"]
        print(f"{k:>9}  {ev:>16,}  {t:>8.3f}  {ev / t:>9.3g}  {t / ev * 1e9:>16.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="a,b,c,n,scale", help="comma-separated subset of a,b,c,n,scale")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--instances", type=int, default=64, help="chip instances in case c")
    ap.add_argument("--lava-instances", type=int, default=4, help="Lava runs measured and checked in case c")
    ap.add_argument("--repeats", type=int, default=3, help="emulator runs per case (median reported)")
    ap.add_argument("--quick", action="store_true", help="100 steps, 1 Lava run in c, smaller scaling")
    ap.add_argument("--kernels", default="auto", choices=("auto", "numba", "numpy"),
                    help="emulator kernels (numpy: no compiled neuron update, no int8 GEMM)")  # fmt: skip
    ap.add_argument("--lava-stock-monitor", action="store_true",
                    help="also time case a in plain Lava with its stock Monitor and get_data() readback, and "
                         "compare case c per instance with it")  # fmt: skip
    args = ap.parse_args(argv)
    global KERNELS
    KERNELS = args.kernels
    cases = set(args.cases.split(","))
    if args.quick:
        args.steps, args.lava_instances = min(args.steps, 100), 1
    print(f"neurodeploy emulator vs Lava 0.10 fixed_pt, CPU: {os.cpu_count()} cores visible, "
          f"python {sys.version.split()[0]}, numpy {np.__version__}; input spike probability {P_INPUT}; "
          f"load average at start {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(warm_up())
    print("spike rate = hidden / out, fraction of neurons spiking per step; times are whole calls (setup included)\n")
    notes, per_instance = [], None
    if cases & {"a", "b", "c"}:
        print(row(HEADER))
        if "a" in cases:
            print(row(case_ab("a", 1024, args.steps, args.repeats)), flush=True)
        if "b" in cases:
            print(row(case_ab("b", 256, args.steps, args.repeats)), flush=True)
        if "c" in cases:
            cells, note, per_instance = case_c(1024, args.steps, args.instances, args.lava_instances, args.repeats)
            print(row(cells), flush=True)
            notes.append(note)
        for note in notes:
            print(note)
    if args.lava_stock_monitor:
        t_stock = lava_stock_monitor(args.steps)
        if per_instance is not None:
            print(f"c against stock Lava (one run as above, {t_stock:.2f} s, per instance): "
                  f"{t_stock / per_instance:.0f}x per instance")  # fmt: skip
    if "n" in cases:
        case_nengo(512, args.steps, args.repeats)
    if "scale" in cases:
        width_scaling(args.steps, [256, 512, 1024, 2048] if not args.quick else [128, 256], args.repeats)
        scaling(1024, args.steps, [4, 16, 64] if not args.quick else [2, 8], args.repeats)
    print(f"\nload average at end {os.getloadavg()[0]:.2f} (other work on the machine slows both sides)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
